//! `max_connections_per_user`: one user's connections counted (over the memory backplane
//! here; across instances over Redis in the workspace's end-to-end tests).

mod support;

use std::num::NonZeroU32;
use std::time::Duration;

use serde_json::json;
use support::{Client, SECRET, Server, WAIT, token, unix_now};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_metrics::Metrics;
use switchboard_transport::{Authenticator, TokenVerifier, Transport, TransportConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn attempt(server: &Server, user: &str) -> Result<Client, support::Refusal> {
    let token = token(&json!({"sub": user, "exp": unix_now() + 60}));
    Client::try_connect(
        format!("{}?token={token}", server.url())
            .into_client_request()
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn a_user_over_the_limit_is_refused_429_until_one_of_its_connections_ends() {
    let metrics = Metrics::new();
    let hub = switchboard_hub::Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::builder(hub)
        .auth(Authenticator::jwt(TokenVerifier::hs256(SECRET).unwrap()))
        .config(
            TransportConfig::default()
                .max_connections_per_user(NonZeroU32::new(2))
                .max_connections_per_ip(None),
        )
        .metrics(metrics.clone())
        .build();
    let server = Server::serving(transport).await;

    let first = attempt(&server, "ada").await.expect("ada's first");
    let _second = attempt(&server, "ada").await.expect("ada's second");
    let refused = attempt(&server, "ada")
        .await
        .err()
        .expect("ada's third is over");
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.body,
        json!({"error": "rate_limited", "message": "too many connections for this user"})
    );
    assert_eq!(refused.retry_after.as_deref(), Some("10"));
    assert!(
        metrics
            .encode_openmetrics()
            .unwrap()
            .contains(r#"websocket_connection_cap_rejections_total{cap="per_user"} 1"#)
    );
    // Another user is not counted with her.
    let _bob = attempt(&server, "bob").await.expect("bob");

    // One of ada's connections ends: its lease goes back, and a new one is admitted.
    drop(first);
    tokio::time::timeout(WAIT, async {
        loop {
            if attempt(&server, "ada").await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the ended connection's place is given back");
}

#[tokio::test]
async fn without_a_user_or_without_a_limit_nothing_is_counted() {
    // Open mode: connections have no user.
    let server = Server::start(
        TransportConfig::default().max_connections_per_user(NonZeroU32::new(1)),
        Authenticator::open(),
    )
    .await;
    let _one = server.connect().await;
    let _two = server.connect().await;
    // No limit (the default): any number of one user's connections.
    let server = Server::start(
        TransportConfig::default(),
        Authenticator::jwt(TokenVerifier::hs256(SECRET).unwrap()),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(attempt(&server, "ada").await.expect("no per-user limit"));
    }
}

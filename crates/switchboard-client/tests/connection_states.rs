//! The connection state a client reports, from connecting to closing or giving up.

mod support;

use std::time::{Duration, SystemTime};

use support::{Server, WAIT, fast_client, transport_config, wait_state};
use switchboard_backplane::MemoryBackplaneConfig;
use switchboard_client::{ConnectionState, DisconnectReason};
use switchboard_transport::{Authenticator, TokenVerifier};

const SECRET: &str = "test-secret-which-is-long-enough";

fn jwt_server_auth() -> Authenticator {
    Authenticator::jwt(TokenVerifier::hs256(SECRET).unwrap())
}

fn token(sub: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": sub, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test]
async fn client_connects_then_reports_disconnected_after_close() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    let connected = wait_state(&client, ConnectionState::is_connected).await;
    let ConnectionState::Connected {
        connection_id,
        user_id,
    } = connected
    else {
        unreachable!()
    };
    assert!(!connection_id.is_empty());
    assert_eq!(user_id, None);
    assert_eq!(server.transport.connection_count(), 1);

    client.close().await;
    assert_eq!(
        *client.state().borrow(),
        ConnectionState::Disconnected {
            reason: DisconnectReason::ClientClosed
        }
    );
    assert!(
        client.subscribe("anything").is_err(),
        "a closed client refuses work"
    );
}

#[tokio::test]
async fn client_sends_its_token_and_the_server_knows_the_user() {
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        jwt_server_auth(),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let client = fast_client(&server.url())
        .token(token("alice"))
        .build()
        .unwrap();
    let state = wait_state(&client, ConnectionState::is_connected).await;
    assert!(matches!(state, ConnectionState::Connected { user_id: Some(u), .. } if u == "alice"));
    assert!(!format!("{client:?}").contains(&token("alice")[..20]));
}

#[tokio::test]
async fn client_gives_up_with_error_when_the_server_refuses_its_credentials() {
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        jwt_server_auth(),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let client = fast_client(&server.url()).build().unwrap();
    let state = wait_state(&client, ConnectionState::is_final).await;
    let ConnectionState::Error { reason, attempts } = state else {
        panic!("expected Error, got {state:?}")
    };
    assert_eq!(attempts, 0, "a 401 is not retried");
    assert!(
        matches!(&reason, DisconnectReason::Rejected { status: 401, error: Some(e), .. } if e == "unauthorized"),
        "{reason:?}"
    );
    assert!(!reason.should_reconnect());
    assert_eq!(client.connected().await, Err(reason));
}

#[tokio::test]
async fn client_reconnects_by_itself_when_the_server_goes_away() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    client.connected().await.unwrap();

    server.stop().await;
    let state = wait_state(&client, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let ConnectionState::Reconnecting { attempt, delay, .. } = state else {
        unreachable!()
    };
    assert!(attempt >= 1);
    assert!(
        delay <= Duration::from_millis(200),
        "capped by the test backoff"
    );

    let _restarted = server.restart();
    tokio::time::timeout(WAIT, client.connected())
        .await
        .expect("reconnected in time")
        .unwrap();
}

//! The transport records what a dashboard needs.

mod support;

use std::num::NonZeroU32;

use support::{Client, Server};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_metrics::Metrics;
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn value(snapshot: &serde_json::Value, name: &str) -> f64 {
    let counters = &snapshot["counters"];
    let gauges = &snapshot["gauges"];
    counters
        .get(name)
        .or_else(|| gauges.get(name))
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("no metric {name} in {snapshot}"))
}

#[tokio::test]
async fn connections_messages_errors_and_rejections_are_counted() {
    let metrics = Metrics::new();
    let hub = Hub::builder(MemoryBackplane::new(MemoryBackplaneConfig::default()))
        .metrics(metrics.clone())
        .build();
    let transport = Transport::builder(hub)
        .auth(Authenticator::open())
        .config(TransportConfig::default().max_connections_per_ip(NonZeroU32::new(1)))
        .metrics(metrics.clone())
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = transport.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let mut events = transport.hub().events();
    let server = Server { addr, transport };

    let mut c = server.connect().await;
    c.subscribe("c").await;
    c.send(r#"{"type":"t","channel":"c","payload":1,"id":"m"}"#)
        .await;
    c.recv_of("ack").await;
    c.send(r#"{"type":"unsubscribe","channel":"nope","id":"u"}"#)
        .await;
    c.recv_of("error").await;
    let refused = Client::try_connect(server.url().into_client_request().unwrap()).await;
    assert_eq!(refused.err().unwrap().status, 429);

    let snapshot = serde_json::to_value(metrics.snapshot()).unwrap();
    assert_eq!(value(&snapshot, "websocket_connections_total"), 1.0);
    assert_eq!(value(&snapshot, "websocket_active_sessions"), 1.0);
    assert_eq!(value(&snapshot, "websocket_messages_received_total"), 3.0);
    assert!(
        value(&snapshot, "websocket_messages_sent_total") >= 4.0,
        "{snapshot}"
    );
    // Three frames handled; one message written to its one subscriber (the publisher).
    let histograms = &snapshot["histograms"];
    assert_eq!(
        histograms["websocket_frame_handling_ms"]["count"], 3,
        "{snapshot}"
    );
    assert_eq!(
        histograms["websocket_message_latency_ms"]["count"], 1,
        "{snapshot}"
    );
    let text = metrics.encode_openmetrics().unwrap();
    assert!(
        text.contains(r#"websocket_errors_total{code="not_subscribed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"websocket_connection_cap_rejections_total{cap="per_ip"} 1"#),
        "{text}"
    );

    drop(c);
    // The hub reports the disconnect after the session has recorded its end.
    support::disconnected(&mut events).await;
    let snapshot = serde_json::to_value(metrics.snapshot()).unwrap();
    assert_eq!(value(&snapshot, "websocket_connections_total"), 0.0);
    assert_eq!(value(&snapshot, "websocket_disconnections_total"), 1.0);
}

/// `websocket_connections_total` and `websocket_active_sessions`, as exported.
fn connection_gauges(metrics: &Metrics) -> (f64, f64) {
    let snapshot = serde_json::to_value(metrics.snapshot()).unwrap();
    (
        value(&snapshot, "websocket_connections_total"),
        value(&snapshot, "websocket_active_sessions"),
    )
}

#[tokio::test]
async fn active_sessions_count_every_running_session_as_the_connection_gauge_does() {
    let metrics = Metrics::new();
    let hub = Hub::builder(MemoryBackplane::new(MemoryBackplaneConfig::default()))
        .metrics(metrics.clone())
        .build();
    let transport = Transport::builder(hub)
        .auth(support::jwt_verifier())
        .metrics(metrics.clone())
        .build();
    let mut events = transport.hub().events();
    let server = Server::serving(transport).await;
    let with_token =
        |claims: serde_json::Value| format!("{}?token={}", server.url(), support::token(&claims));
    let exp = support::unix_now() + 600;

    // A token naming a user and one naming none: both are sessions, counted once each.
    let mut alice =
        Client::connect(&with_token(serde_json::json!({"sub": "alice", "exp": exp}))).await;
    let anonymous = Client::connect(&with_token(serde_json::json!({"exp": exp}))).await;
    assert_eq!(anonymous.welcome["userId"], serde_json::Value::Null);
    assert_eq!(connection_gauges(&metrics), (2.0, 2.0));

    // An upgrade refused for its token is neither a connection nor a session.
    let expired = with_token(serde_json::json!({"sub": "bob", "exp": exp - 3600}));
    let refused = Client::try_connect(expired.into_client_request().unwrap()).await;
    assert_eq!(refused.err().unwrap().status, 401);
    assert_eq!(connection_gauges(&metrics), (2.0, 2.0));

    // A session the client ends, then one the server ends: each leaves both gauges.
    drop(anonymous);
    support::disconnected(&mut events).await;
    assert_eq!(connection_gauges(&metrics), (1.0, 1.0));
    let closed = server
        .transport
        .hub()
        .disconnect_user("alice", 4003, "")
        .await
        .unwrap();
    assert_eq!(closed.value, 1);
    assert_eq!(alice.closed_with().await, 4003);
    drop(alice);
    support::disconnected(&mut events).await;
    assert_eq!(connection_gauges(&metrics), (0.0, 0.0));
}

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

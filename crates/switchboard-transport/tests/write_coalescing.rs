//! The opt-in write-coalescing window changes when frames are written, never what arrives:
//! every message still reaches every subscriber once and in order, and answers still come.

mod support;

use std::time::Duration;

use support::Server;
use switchboard_hub::ServerMessage;
use switchboard_protocol::{ChannelName, EventType, Payload};
use switchboard_transport::{Authenticator, TransportConfig};

async fn burst_arrives_whole_and_in_order(config: TransportConfig) {
    let server = Server::start(config, Authenticator::open()).await;
    let mut subscribers = Vec::new();
    for _ in 0..3 {
        let mut c = server.connect().await;
        c.subscribe("hot").await;
        subscribers.push(c);
    }
    // A burst much faster than any window: many messages per write.
    let hub = server.transport.hub().clone();
    for i in 0..300 {
        hub.publish(ServerMessage::new(
            ChannelName::new("hot").unwrap(),
            EventType::new("tick").unwrap(),
            Payload::from_json(&i.to_string()).unwrap(),
        ))
        .await
        .unwrap();
    }
    for c in &mut subscribers {
        for i in 0..300u64 {
            let message = c.recv().await;
            assert_eq!(message["type"], "tick");
            assert_eq!(message["payload"], i);
            assert_eq!(message["offset"], i + 1);
        }
    }
    // A request-answer still works while coalescing.
    let c = &mut subscribers[0];
    c.send(r#"{"type":"ping","id":"p"}"#).await;
    assert_eq!(c.recv_of("pong").await["id"], "p");
}

#[tokio::test]
async fn with_a_window_a_burst_arrives_whole_and_in_order() {
    burst_arrives_whole_and_in_order(
        TransportConfig::default().write_coalesce(Some(Duration::from_millis(2))),
    )
    .await;
}

#[tokio::test]
async fn without_a_window_a_burst_arrives_whole_and_in_order() {
    burst_arrives_whole_and_in_order(TransportConfig::default()).await;
}

//! Lifecycle events for the embedding service, and cleanup.

mod support;

use std::time::Duration;

use support::{Client, hub};
use switchboard_hub::{DisconnectReason, HubEvent, Identity};
use switchboard_protocol::CloseCode;

async fn next(rx: &mut tokio::sync::broadcast::Receiver<HubEvent>) -> HubEvent {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("an event within 5 s")
        .expect("event stream open")
}

#[tokio::test]
async fn connect_subscribe_publish_unsubscribe_and_disconnect_are_reported() {
    let hub = hub();
    let mut events = hub.events();
    let mut c = Client::connect(&hub, Identity::user("alice"));
    let id = c.conn.id().to_owned();
    assert!(matches!(next(&mut events).await,
        HubEvent::Connected { connection_id, user_id } if *connection_id == *id && user_id.as_deref() == Some("alice")));
    c.subscribe("c").await;
    assert!(
        matches!(next(&mut events).await, HubEvent::Subscribed { channel, .. } if channel == "c")
    );
    c.send(r#"{"type":"t","channel":"c","payload":1,"id":"m"}"#)
        .await;
    assert!(
        matches!(next(&mut events).await, HubEvent::Published { offset: 1, id, .. } if id == "m")
    );
    c.conn
        .disconnect(DisconnectReason::Closed(CloseCode::IdleTimeout))
        .await;
    assert!(
        matches!(next(&mut events).await, HubEvent::Unsubscribed { channel, .. } if channel == "c")
    );
    assert!(matches!(
        next(&mut events).await,
        HubEvent::Disconnected {
            reason: DisconnectReason::Closed(CloseCode::IdleTimeout),
            ..
        }
    ));
    assert_eq!(hub.connection_count(), 0);
    assert_eq!(hub.subscriber_count("c"), 0);
}

#[tokio::test]
async fn dropping_a_connection_without_disconnect_still_cleans_up() {
    let hub = hub();
    let mut events = hub.events();
    let mut watcher = Client::connect(&hub, Identity::user("w"));
    watcher.subscribe("room").await;
    let mut c = Client::connect(&hub, Identity::user("gone"));
    c.subscribe("room").await;
    c.send(r#"{"type":"presence-update","channel":"room"}"#)
        .await;
    watcher.next_of("presence-update").await;
    drop(c);
    let leave = watcher.next_of("presence-update").await;
    assert_eq!(leave["action"], "leave");
    loop {
        if let HubEvent::Disconnected { reason, .. } = next(&mut events).await {
            assert_eq!(reason, DisconnectReason::Error);
            break;
        }
    }
    assert_eq!(hub.connection_count(), 1);
    assert_eq!(hub.subscriber_count("room"), 1);
}

#[tokio::test]
async fn ping_is_answered_with_echoed_fields_only_when_given() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.send(r#"{"type":"ping"}"#).await;
    let pong = c.next().await;
    assert_eq!(pong["type"], "pong");
    assert!(pong.get("id").is_none() && pong.get("timestamp").is_none());
    assert!(pong["serverTime"].as_u64().is_some());
    c.send(r#"{"type":"ping","id":"p","timestamp":123}"#).await;
    let pong = c.next().await;
    assert_eq!(
        (pong["id"].as_str(), pong["timestamp"].as_u64()),
        (Some("p"), Some(123))
    );
}

//! Subscriptions the server makes and ends: the backend's subscribe and unsubscribe of a
//! user reach the Rust client's streams, against a real server.

mod support;

use support::{Server, WAIT, fast_client, next_event, user_token};
use switchboard_client::{Client, ServerSubscriptionEvent, SubscriptionEvent};
use switchboard_protocol::ChannelName;
use tokio::sync::broadcast;

async fn next_server_event(
    events: &mut broadcast::Receiver<ServerSubscriptionEvent>,
) -> ServerSubscriptionEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a server subscription event in time")
        .expect("the stream is open and did not lag")
}

/// A client signed in as ada.
fn ada(server: &Server) -> Client {
    fast_client(&server.url())
        .token(user_token("ada"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_server_subscription_streams_its_messages_until_the_server_ends_it() {
    let server = Server::jwt().await;
    let client = ada(&server);
    client.connected().await.unwrap();
    let mut events = client.server_subscriptions();
    let news = ChannelName::new("news").unwrap();
    server.publish("news", 1).await;

    let subscribed = server.hub.subscribe_user("ada", &news, None).await.unwrap();
    assert_eq!(subscribed.value, 1);
    match next_server_event(&mut events).await {
        ServerSubscriptionEvent::Subscribed {
            channel,
            position,
            recovered,
        } => {
            assert_eq!(
                (channel.as_str(), position.offset, recovered),
                ("news", 1, false)
            );
        }
        other => panic!("expected Subscribed, got {other:?}"),
    }
    for n in 2..=3 {
        let offset = server.publish("news", n).await;
        match next_server_event(&mut events).await {
            ServerSubscriptionEvent::Message(message) => assert_eq!(message.offset, offset),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    server.hub.unsubscribe_user("ada", &news).await.unwrap();
    assert_eq!(
        next_server_event(&mut events).await,
        ServerSubscriptionEvent::Unsubscribed {
            channel: news,
            reason: "server".into(),
        }
    );
}

#[tokio::test]
async fn an_application_subscription_the_server_ends_reports_why_and_is_not_made_again() {
    let server = Server::jwt().await;
    let client = ada(&server);
    let mut subscription = client.subscribe("room").unwrap();
    assert!(matches!(
        next_event(&mut subscription).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    let room = ChannelName::new("room").unwrap();
    let unsubscribed = server.hub.unsubscribe_user("ada", &room).await.unwrap();
    assert_eq!(unsubscribed.value, 1);
    assert_eq!(
        next_event(&mut subscription).await,
        SubscriptionEvent::Unsubscribed {
            reason: "server".into()
        }
    );
    // The stream ends, and the client does not subscribe again on its own.
    assert!(
        tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut subscription))
            .await
            .expect("the stream ends")
            .is_none()
    );
    assert_eq!(server.hub.subscriber_count("room"), 0);
}

#[tokio::test]
async fn server_subscriptions_end_with_their_connection() {
    let server = Server::jwt().await;
    let client = ada(&server);
    client.connected().await.unwrap();
    let mut events = client.server_subscriptions();
    let feed = ChannelName::new("feed").unwrap();
    server.hub.subscribe_user("ada", &feed, None).await.unwrap();
    assert!(matches!(
        next_server_event(&mut events).await,
        ServerSubscriptionEvent::Subscribed { .. }
    ));
    server.stop().await;
    assert_eq!(
        next_server_event(&mut events).await,
        ServerSubscriptionEvent::Unsubscribed {
            channel: feed,
            reason: "disconnected".into(),
        }
    );
}

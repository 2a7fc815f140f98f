//! Subscribing, publishing with acknowledgements, refusals and unsubscribing on drop.

mod support;

use support::{Server, WAIT, fast_client, next_event};
use switchboard_client::{ErrorCode, Priority, PublishError, SubscriptionEvent};
use switchboard_hub::HubEvent;

/// A token for bob with `claims` besides.
fn token(mut claims: serde_json::Value) -> String {
    claims["sub"] = "bob".into();
    support::signed(claims)
}

#[tokio::test]
async fn a_publish_resolves_with_its_offset_and_reaches_every_subscriber() {
    let server = Server::open().await;
    let publisher = fast_client(&server.url()).build().unwrap();
    let reader = fast_client(&server.url()).build().unwrap();
    let mut feed = reader.subscribe("chat:room").unwrap();
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    let mut outcomes = publisher.publish_outcomes();

    let handle = publisher
        .publish(
            "chat:room",
            "chat.message",
            serde_json::json!({"text": "hi"}),
            Priority::Normal,
        )
        .unwrap();
    let id = handle.id().to_owned();
    let ack = handle.await.unwrap();
    assert_eq!((ack.id.as_str(), ack.offset), (id.as_str(), 1));
    let outcome = outcomes.recv().await.unwrap();
    assert_eq!(outcome.id, id);
    assert_eq!(outcome.result, Ok(ack));

    let SubscriptionEvent::Message(message) = next_event(&mut feed).await else {
        panic!("expected the message")
    };
    assert_eq!(message.id, id);
    assert_eq!(message.event, "chat.message");
    assert_eq!(
        message.payload.to_value().unwrap(),
        serde_json::json!({"text": "hi"})
    );
    assert_eq!(message.from.user_id, None);
}

#[tokio::test]
async fn a_forbidden_subscription_yields_refused_and_ends() {
    let server = Server::jwt().await;
    let client = fast_client(&server.url())
        .token(token(serde_json::json!({ "channels": ["public:*"] })))
        .build()
        .unwrap();
    let mut secret = client.subscribe("admin:audit").unwrap();
    let event = next_event(&mut secret).await;
    assert!(
        matches!(
            &event,
            SubscriptionEvent::Refused {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{event:?}"
    );
    let end = tokio::time::timeout(WAIT, futures_util::StreamExt::next(&mut secret)).await;
    assert_eq!(end.unwrap(), None, "the stream ends after Refused");
}

#[tokio::test]
async fn a_forbidden_publish_is_refused_without_retrying() {
    let server = Server::jwt().await;
    let client = fast_client(&server.url())
        .token(token(
            serde_json::json!({ "channels": ["public:*"], "publish": [] }),
        ))
        .build()
        .unwrap();
    let result = client
        .publish(
            "public:news",
            "news.posted",
            serde_json::json!(1),
            Priority::High,
        )
        .unwrap()
        .await;
    assert!(
        matches!(
            &result,
            Err(PublishError::Refused {
                code: ErrorCode::Forbidden,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(client.queue_len(), 0);
}

#[tokio::test]
async fn dropping_a_subscription_unsubscribes_on_the_server() {
    let server = Server::open().await;
    let mut events = server.hub.events();
    let client = fast_client(&server.url()).build().unwrap();
    let mut feed = client.subscribe("chat:room").unwrap();
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    assert_eq!(server.hub.subscriber_count("chat:room"), 1);

    drop(feed);
    loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .unwrap()
            .unwrap();
        if let HubEvent::Unsubscribed { channel, .. } = event {
            assert_eq!(channel, "chat:room");
            break;
        }
    }
    assert_eq!(server.hub.subscriber_count("chat:room"), 0);
}

#[tokio::test]
async fn invalid_names_are_refused_before_anything_is_sent() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    assert!(client.subscribe("bad name").is_err());
    assert!(
        client
            .publish("ok", "subscribe", serde_json::json!(null), Priority::Low)
            .is_err()
    );
    assert_eq!(client.queue_len(), 0);
}

#[tokio::test]
async fn a_subscription_that_does_not_keep_up_is_told_how_much_it_missed() {
    let server = Server::open().await;
    let client = fast_client(&server.url())
        .subscription_buffer(std::num::NonZeroUsize::new(2).unwrap())
        .build()
        .unwrap();
    let mut feed = client.subscribe("chat:room").unwrap();
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    for n in 1..=5 {
        server.publish("chat:room", n).await;
    }
    // An acknowledged publish on another channel proves the five arrived before it.
    client
        .publish(
            "chat:other",
            "sync",
            serde_json::json!(null),
            Priority::Normal,
        )
        .unwrap()
        .await
        .unwrap();

    assert_eq!(support::next_offset(&mut feed).await, 1);
    assert_eq!(support::next_offset(&mut feed).await, 2);
    assert_eq!(
        next_event(&mut feed).await,
        SubscriptionEvent::Lagged { missed: 3 }
    );
    server.publish("chat:room", 6).await;
    assert_eq!(support::next_offset(&mut feed).await, 6);
}

#[tokio::test]
async fn a_publish_larger_than_the_server_accepts_is_refused_before_queueing() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    let big = "x".repeat(switchboard_protocol::DEFAULT_MAX_MESSAGE_BYTES);
    let result = client.publish("chat:room", "blob", serde_json::json!(big), Priority::Low);
    assert!(
        matches!(
            result,
            Err(switchboard_client::ClientError::TooLarge { .. })
        ),
        "{result:?}"
    );
    assert_eq!(client.queue_len(), 0);
}

#[tokio::test]
async fn presence_announced_by_one_client_reaches_the_others_subscriptions() {
    let server = Server::open().await;
    let alice = fast_client(&server.url()).build().unwrap();
    let bob = fast_client(&server.url()).build().unwrap();
    let mut alice_room = alice.subscribe("chat:room").unwrap();
    let mut bob_room = bob.subscribe("chat:room").unwrap();
    assert!(matches!(
        next_event(&mut alice_room).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    assert!(matches!(
        next_event(&mut bob_room).await,
        SubscriptionEvent::Subscribed { .. }
    ));

    alice
        .set_presence(switchboard_client::PresenceUpdate {
            status: Some("busy".into()),
            ..Default::default()
        })
        .unwrap();
    let SubscriptionEvent::Presence(event) = next_event(&mut bob_room).await else {
        panic!("expected a presence event")
    };
    assert_eq!(event.action, switchboard_protocol::PresenceAction::Join);
    assert_eq!(event.member.status, "busy");
}

#[tokio::test]
async fn a_publish_excluding_self_skips_only_the_publishers_own_subscription() {
    let server = Server::open().await;
    let me = fast_client(&server.url()).build().unwrap();
    let other = fast_client(&server.url()).build().unwrap();
    let mut mine = me.subscribe("chat:room").unwrap();
    let mut theirs = other.subscribe("chat:room").unwrap();
    for feed in [&mut mine, &mut theirs] {
        assert!(matches!(
            next_event(feed).await,
            SubscriptionEvent::Subscribed { .. }
        ));
    }

    let quiet = me
        .publish_with(
            "chat:room",
            "chat.typing",
            serde_json::json!({}),
            switchboard_client::PublishOptions::default().exclude_self(true),
        )
        .unwrap()
        .await
        .unwrap();
    assert_eq!(quiet.offset, 1);
    let loud = me
        .publish(
            "chat:room",
            "chat.message",
            serde_json::json!({}),
            Priority::Normal,
        )
        .unwrap()
        .await
        .unwrap();

    // The other subscriber gets both; the publisher's own feed only the second.
    for expected in ["chat.typing", "chat.message"] {
        let SubscriptionEvent::Message(message) = next_event(&mut theirs).await else {
            panic!("expected {expected}")
        };
        assert_eq!(message.event, expected);
    }
    let event = next_event(&mut mine).await;
    let SubscriptionEvent::Message(message) = event else {
        panic!("expected the publisher's second message, got {event:?}")
    };
    assert_eq!(
        (message.event.as_str(), message.offset),
        ("chat.message", loud.offset)
    );
}

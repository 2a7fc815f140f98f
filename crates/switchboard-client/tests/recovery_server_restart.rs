//! Subscriptions survive a server restart: the client resubscribes with `since` and every
//! message is delivered exactly once, in order — or it says `recovered: false`.

mod support;

use support::{Server, fast_client, next_event, next_offset, transport_config};
use switchboard_backplane::MemoryBackplaneConfig;
use switchboard_client::SubscriptionEvent;
use switchboard_transport::Authenticator;

#[tokio::test]
async fn server_restart_mid_stream_loses_nothing_and_duplicates_nothing() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    let mut feed = client.subscribe("ops:feed").unwrap();
    let SubscriptionEvent::Subscribed { position } = next_event(&mut feed).await else {
        panic!("expected Subscribed")
    };
    assert_eq!(position.offset, 0);

    for n in 1..=5 {
        server.publish("ops:feed", n).await;
    }
    for expected in 1..=5 {
        assert_eq!(next_offset(&mut feed).await, expected);
    }

    // The server goes away; server-side code keeps publishing into the shared history.
    server.stop().await;
    for n in 6..=10 {
        server.publish("ops:feed", n).await;
    }
    let restarted = server.restart();

    let SubscriptionEvent::Resubscribed {
        recovered,
        position,
    } = next_event(&mut feed).await
    else {
        panic!("expected Resubscribed")
    };
    assert!(recovered);
    assert_eq!(position.offset, 10);
    for n in 11..=15 {
        restarted.publish("ops:feed", n).await;
    }
    let mut offsets = Vec::new();
    let mut payloads = Vec::new();
    while offsets.len() < 10 {
        match next_event(&mut feed).await {
            SubscriptionEvent::Message(m) => {
                offsets.push(m.offset);
                payloads.push(m.payload.to_value().unwrap()["n"].as_u64().unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(offsets, (6..=15).collect::<Vec<_>>());
    assert_eq!(payloads, (6..=15).collect::<Vec<_>>());

    // Nothing more: no duplicate trails behind.
    let extra = tokio::time::timeout(std::time::Duration::from_millis(200), next_event(&mut feed));
    assert!(extra.await.is_err(), "no further event");
}

#[tokio::test]
async fn recovery_beyond_history_is_surfaced_as_not_recovered() {
    let server = Server::with(
        MemoryBackplaneConfig::default().history_size(3),
        Authenticator::open(),
        transport_config(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await;
    let client = fast_client(&server.url()).build().unwrap();
    let mut feed = client.subscribe("ops:feed").unwrap();
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    server.publish("ops:feed", 1).await;
    assert_eq!(next_offset(&mut feed).await, 1);

    server.stop().await;
    // More than history keeps: messages 2..=3 are gone by the time the client is back.
    for n in 2..=6 {
        server.publish("ops:feed", n).await;
    }
    let restarted = server.restart();

    let SubscriptionEvent::Resubscribed {
        recovered,
        position,
    } = next_event(&mut feed).await
    else {
        panic!("expected Resubscribed")
    };
    assert!(!recovered, "the application must refetch");
    assert_eq!(position.offset, 6);
    // Live delivery continues after the reported position.
    restarted.publish("ops:feed", 7).await;
    assert_eq!(next_offset(&mut feed).await, 7);
}

#[tokio::test]
async fn a_second_subscription_to_a_live_channel_starts_at_the_current_position() {
    let server = Server::open().await;
    let client = fast_client(&server.url()).build().unwrap();
    let mut first = client.subscribe("ops:feed").unwrap();
    assert!(matches!(
        next_event(&mut first).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    server.publish("ops:feed", 1).await;
    assert_eq!(next_offset(&mut first).await, 1);

    let mut second = client.subscribe("ops:feed").unwrap();
    let SubscriptionEvent::Subscribed { position } = next_event(&mut second).await else {
        panic!("expected Subscribed")
    };
    assert_eq!(position.offset, 1);
    server.publish("ops:feed", 2).await;
    assert_eq!(next_offset(&mut first).await, 2);
    assert_eq!(next_offset(&mut second).await, 2);
    assert_eq!(
        server.hub.subscriber_count("ops:feed"),
        1,
        "one server subscription"
    );
}

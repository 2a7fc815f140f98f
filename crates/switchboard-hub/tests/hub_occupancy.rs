//! Channel occupancy across instances: the first subscriber anywhere and the last to leave
//! are each reported once, by one instance.

mod support;

use std::time::Duration;

use support::Client;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Hub, HubConfig, HubEvent, Identity};
use tokio::sync::broadcast;

fn hub_over(backplane: MemoryBackplane) -> Hub<MemoryBackplane> {
    Hub::builder(backplane)
        .config(HubConfig::default().occupancy(Some(Duration::from_secs(30))))
        .build()
}

/// The next occupancy event, skipping the others.
async fn next_occupancy(events: &mut broadcast::Receiver<HubEvent>) -> HubEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.unwrap();
            if matches!(
                event,
                HubEvent::ChannelOccupied { .. } | HubEvent::ChannelVacated { .. }
            ) {
                return event;
            }
        }
    })
    .await
    .expect("an occupancy event in time")
}

/// Whether no occupancy event is waiting (after letting the trackers run).
async fn no_occupancy(events: &mut broadcast::Receiver<HubEvent>) -> bool {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    loop {
        match events.try_recv() {
            Ok(HubEvent::ChannelOccupied { .. } | HubEvent::ChannelVacated { .. }) => {
                return false;
            }
            Ok(_) => {}
            Err(_) => return true,
        }
    }
}

#[tokio::test]
async fn the_first_subscriber_anywhere_and_the_last_to_leave_are_told_once() {
    let store = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let (a, b) = (hub_over(store.clone()), hub_over(store.new_instance()));
    let (mut a_events, mut b_events) = (a.events(), b.events());

    let mut on_a = Client::connect(&a, Identity::anonymous());
    on_a.subscribe("room").await;
    match next_occupancy(&mut a_events).await {
        HubEvent::ChannelOccupied { channel } => assert_eq!(channel.as_str(), "room"),
        other => panic!("expected occupied, got {other:?}"),
    }
    let mut on_b = Client::connect(&b, Identity::anonymous());
    on_b.subscribe("room").await;
    let mut also_on_a = Client::connect(&a, Identity::anonymous());
    also_on_a.subscribe("room").await;
    on_a.send(r#"{"type":"unsubscribe","channel":"room"}"#)
        .await;
    on_a.next_of("unsubscribed").await;
    also_on_a
        .send(r#"{"type":"unsubscribe","channel":"room"}"#)
        .await;
    also_on_a.next_of("unsubscribed").await;
    assert!(
        no_occupancy(&mut a_events).await,
        "b still has a subscriber"
    );
    assert!(no_occupancy(&mut b_events).await);

    on_b.send(r#"{"type":"unsubscribe","channel":"room"}"#)
        .await;
    on_b.next_of("unsubscribed").await;
    match next_occupancy(&mut b_events).await {
        HubEvent::ChannelVacated { channel } => assert_eq!(channel.as_str(), "room"),
        other => panic!("expected vacated, got {other:?}"),
    }
    assert!(no_occupancy(&mut a_events).await, "told once, by b");

    // Without the option nothing is tracked.
    let plain = Hub::new(store.new_instance());
    let mut plain_events = plain.events();
    let mut c = Client::connect(&plain, Identity::anonymous());
    c.subscribe("elsewhere").await;
    assert!(no_occupancy(&mut plain_events).await);
}

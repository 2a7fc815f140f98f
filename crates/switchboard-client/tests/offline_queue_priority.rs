//! Publishes made while disconnected wait in the offline queue and are flushed after the
//! connection comes up, most important first.

mod support;

use std::num::NonZeroUsize;

use support::{Server, fast_client, free_addr, published, transport_config, wait_state};
use switchboard_backplane::MemoryBackplaneConfig;
use switchboard_client::{ClientError, ConnectionState, Priority, PublishError, QueueConfig};
use switchboard_transport::Authenticator;

#[tokio::test]
async fn publishes_made_offline_are_flushed_after_connecting_in_priority_order() {
    let addr = free_addr();
    let client = fast_client(&format!("ws://{addr}/ws")).build().unwrap();
    wait_state(&client, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let mut len = client.watch_queue_len();

    let sends = [
        ("low-1", Priority::Low),
        ("normal-1", Priority::Normal),
        ("critical-1", Priority::Critical),
        ("high-1", Priority::High),
        ("low-2", Priority::Low),
        ("normal-2", Priority::Normal),
    ];
    let mut handles = Vec::new();
    for (name, priority) in sends {
        let payload = serde_json::json!({ "name": name });
        handles.push((
            name,
            client
                .publish("jobs:results", "job.done", payload, priority)
                .unwrap(),
        ));
    }
    assert_eq!(client.queue_len(), 6);
    assert_eq!(*len.borrow_and_update(), 6);

    // The server comes up on the address the client keeps trying.
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        Authenticator::open(),
        transport_config(),
        addr,
    )
    .await;
    let mut events = server.hub.events();
    let order = published(&mut events, 6).await;

    let name_of = |id: &str| handles.iter().find(|(_, h)| h.id() == id).unwrap().0;
    let names: Vec<&str> = order.iter().map(|(id, _)| name_of(id)).collect();
    assert_eq!(
        names,
        [
            "critical-1",
            "high-1",
            "normal-1",
            "normal-2",
            "low-1",
            "low-2"
        ]
    );
    let offsets: Vec<u64> = order.iter().map(|(_, offset)| *offset).collect();
    assert_eq!(offsets, [1, 2, 3, 4, 5, 6]);

    for (name, handle) in handles {
        let ack = handle.await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(order.contains(&(ack.id, ack.offset)));
    }
    assert_eq!(client.queue_len(), 0);
    len.wait_for(|n| *n == 0).await.unwrap();
}

#[tokio::test]
async fn clear_queue_drops_waiting_publishes_and_resolves_their_handles() {
    let client = fast_client(&format!("ws://{}/ws", free_addr()))
        .build()
        .unwrap();
    let handles: Vec<_> = (0..3)
        .map(|n| {
            client
                .publish(
                    "jobs:results",
                    "job.done",
                    serde_json::json!(n),
                    Priority::Normal,
                )
                .unwrap()
        })
        .collect();
    let mut len = client.watch_queue_len();
    assert_eq!(*len.borrow_and_update(), 3);

    assert_eq!(client.clear_queue().unwrap(), 3);
    assert_eq!(client.queue_len(), 0);
    assert_eq!(*len.borrow_and_update(), 0);
    for handle in handles {
        assert_eq!(handle.await, Err(PublishError::Cleared));
    }
}

#[tokio::test]
async fn a_full_queue_evicts_less_important_publishes_and_refuses_the_rest() {
    let client = fast_client(&format!("ws://{}/ws", free_addr()))
        .queue(QueueConfig::default().with_capacity(NonZeroUsize::new(2).unwrap()))
        .build()
        .unwrap();
    let publish = |priority| {
        client.publish(
            "jobs:results",
            "job.done",
            serde_json::json!(null),
            priority,
        )
    };
    let low = publish(Priority::Low).unwrap();
    let _normal = publish(Priority::Normal).unwrap();
    let _high = publish(Priority::High).unwrap();
    assert_eq!(low.await, Err(PublishError::Evicted));
    assert!(matches!(
        publish(Priority::Low),
        Err(ClientError::QueueFull)
    ));
    assert_eq!(client.queue_len(), 2);
}

#[tokio::test]
async fn closing_the_client_resolves_waiting_publishes_as_closed() {
    let client = fast_client(&format!("ws://{}/ws", free_addr()))
        .build()
        .unwrap();
    let handle = client
        .publish(
            "jobs:results",
            "job.done",
            serde_json::json!(1),
            Priority::Normal,
        )
        .unwrap();
    client.close().await;
    assert_eq!(handle.await, Err(PublishError::Closed));
    assert!(matches!(
        client.publish(
            "jobs:results",
            "job.done",
            serde_json::json!(1),
            Priority::Normal
        ),
        Err(ClientError::Closed)
    ));
}

//! A file-backed offline queue: publishes survive a restart of the application.
#![cfg(feature = "persist")]

mod support;

use std::collections::HashSet;

use support::{Server, WAIT, fast_client, free_addr, published, transport_config, wait_state};
use switchboard_backplane::MemoryBackplaneConfig;
use switchboard_client::{ConnectionState, Priority, PublishError};
use switchboard_transport::Authenticator;

#[tokio::test]
async fn publishes_queued_offline_are_sent_by_the_next_client_on_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outbox.log");
    let addr = free_addr();
    let url = format!("ws://{addr}/ws");

    // The first run queues three publishes while the server is down, then exits.
    let first = fast_client(&url).queue_file(&file).build().unwrap();
    wait_state(&first, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let mut ids = HashSet::new();
    for (n, priority) in [
        (1, Priority::Low),
        (2, Priority::Critical),
        (3, Priority::Normal),
    ] {
        let handle = first
            .publish(
                "audit:log",
                "audit.entry",
                serde_json::json!({ "n": n }),
                priority,
            )
            .unwrap();
        ids.insert(handle.id().to_owned());
        drop(handle);
    }
    let pending = first
        .publish(
            "audit:log",
            "audit.entry",
            serde_json::json!({ "n": 4 }),
            Priority::Low,
        )
        .unwrap();
    ids.insert(pending.id().to_owned());
    first.close().await;
    assert_eq!(
        pending.await,
        Err(PublishError::Closed),
        "closed, but kept in the file"
    );
    drop(first);

    // The server is back; a new run of the application finds the queue and sends it.
    let server = Server::with(
        MemoryBackplaneConfig::default(),
        Authenticator::open(),
        transport_config(),
        addr,
    )
    .await;
    let mut events = server.hub.events();
    let second = fast_client(&url).queue_file(&file).build().unwrap();
    let mut outcomes = second.publish_outcomes();
    assert_eq!(second.queue_len(), 4);

    let sent = published(&mut events, 4).await;
    assert_eq!(
        sent.iter()
            .map(|(id, _)| id.clone())
            .collect::<HashSet<_>>(),
        ids
    );
    let mut acked = HashSet::new();
    while acked.len() < 4 {
        let outcome = tokio::time::timeout(WAIT, outcomes.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(outcome.result.is_ok(), "{outcome:?}");
        acked.insert(outcome.id);
    }
    assert_eq!(acked, ids);
    assert_eq!(second.queue_len(), 0);
    second.close().await;
    drop(second);

    // Nothing is left for a third run.
    let third = fast_client(&url).queue_file(&file).build().unwrap();
    assert_eq!(third.queue_len(), 0);
}

#[tokio::test]
async fn the_client_id_is_kept_beside_the_queue_file_so_restored_publishes_keep_their_scope() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outbox.log");
    let url = format!("ws://{}/ws", free_addr());

    let first = fast_client(&url).queue_file(&file).build().unwrap();
    let id = first.client_id().clone();
    first.close().await;
    drop(first);
    let again = fast_client(&url).queue_file(&file).build().unwrap();
    assert_eq!(
        again.client_id(),
        &id,
        "the same file, the same client instance"
    );
    again.close().await;

    // Another file is another client; without a file, every client is its own.
    let other = fast_client(&url)
        .queue_file(dir.path().join("other.log"))
        .build()
        .unwrap();
    let plain = fast_client(&url).build().unwrap();
    let plain_too = fast_client(&url).build().unwrap();
    let ids: HashSet<_> = [
        &id,
        other.client_id(),
        plain.client_id(),
        plain_too.client_id(),
    ]
    .into_iter()
    .collect();
    assert_eq!(ids.len(), 4);
    assert!(id.len() >= 22, "at least 128 random bits: {id}");
}

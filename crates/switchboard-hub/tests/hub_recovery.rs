//! Subscribing with `since`: everything missed, exactly as delivered, or nothing.

mod support;

use serde_json::json;
use support::{Client, hub};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Hub, Identity};

/// Publishes `n` messages with ids unique in the test binary (a repeated id would be an
/// idempotent retry, not a new message).
async fn publish_n(c: &mut Client, channel: &str, n: usize) {
    static NEXT_ID: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    for i in 0..n {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        c.send(&format!(
            r#"{{"type":"t","channel":"{channel}","payload":{i},"id":"m{id}"}}"#
        ))
        .await;
        assert_eq!(c.next_of("ack").await["id"], format!("m{id}"));
    }
}

#[tokio::test]
async fn subscribe_without_since_reports_the_position_and_recovered_false() {
    let hub = hub();
    let mut p = Client::connect(&hub, Identity::anonymous());
    publish_n(&mut p, "c", 3).await;
    let mut c = Client::connect(&hub, Identity::anonymous());
    let sub = c.subscribe("c").await;
    assert_eq!(sub["offset"], 3);
    assert_eq!(sub["recovered"], false);
    assert!(sub["epoch"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(c.is_quiet().await, "history was replayed without `since`");
}

#[tokio::test]
async fn recovery_replays_exactly_the_missed_messages_then_goes_live() {
    let hub = hub();
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("c").await;
    let mut p = Client::connect(&hub, Identity::anonymous());
    publish_n(&mut p, "c", 2).await;
    let originals = [reader.next().await, reader.next().await];
    let epoch = {
        let again = Client::connect(&hub, Identity::anonymous())
            .subscribe("c")
            .await;
        again["epoch"].as_str().unwrap().to_owned()
    };
    drop(reader);

    publish_n(&mut p, "c", 3).await; // offsets 3..=5 are missed
    let mut back = Client::connect(&hub, Identity::anonymous());
    back.send(&format!(
        r#"{{"type":"subscribe","channel":"c","id":"s","since":{{"offset":{},"epoch":"{epoch}"}}}}"#,
        originals[1]["offset"]
    ))
    .await;
    let sub = back.next().await;
    assert_eq!(
        sub,
        json!({"type":"subscribed","channel":"c","id":"s","offset":5,"epoch":epoch,"recovered":true})
    );
    let replayed: Vec<_> = [back.next().await, back.next().await, back.next().await].into();
    assert_eq!(
        replayed
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [3, 4, 5]
    );
    assert_eq!(replayed[0]["payload"], 0); // the second batch's payloads restart at 0

    // Replayed messages are byte-for-byte the originals: same id, offset, timestamp.
    let mut fresh = Client::connect(&hub, Identity::anonymous());
    fresh
        .send(&format!(
            r#"{{"type":"subscribe","channel":"c","since":{{"offset":0,"epoch":"{epoch}"}}}}"#
        ))
        .await;
    fresh.next().await;
    assert_eq!(fresh.next().await, originals[0]);
    assert_eq!(fresh.next().await, originals[1]);

    // And live delivery continues without a duplicate.
    publish_n(&mut p, "c", 1).await;
    assert_eq!(back.next().await["offset"], 6);
    assert!(back.is_quiet().await);
}

#[tokio::test]
async fn recovery_with_another_epoch_replays_nothing() {
    let hub = hub();
    let mut p = Client::connect(&hub, Identity::anonymous());
    publish_n(&mut p, "c", 2).await;
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.send(r#"{"type":"subscribe","channel":"c","since":{"offset":1,"epoch":"not-the-epoch"}}"#)
        .await;
    let sub = c.next().await;
    assert_eq!(sub["recovered"], false);
    assert_eq!(sub["offset"], 2);
    assert!(c.is_quiet().await, "a partial or foreign replay was sent");
}

#[tokio::test]
async fn recovery_after_history_was_trimmed_is_never_partial() {
    let memory = MemoryBackplane::new(MemoryBackplaneConfig::default().history_size(3));
    let hub = Hub::new(memory);
    let mut p = Client::connect(&hub, Identity::anonymous());
    publish_n(&mut p, "c", 1).await;
    let mut c = Client::connect(&hub, Identity::anonymous());
    let epoch = c.subscribe("c").await["epoch"].as_str().unwrap().to_owned();
    publish_n(&mut p, "c", 5).await; // history keeps offsets 4..=6 only

    let mut back = Client::connect(&hub, Identity::anonymous());
    back.send(&format!(
        r#"{{"type":"subscribe","channel":"c","since":{{"offset":1,"epoch":"{epoch}"}}}}"#
    ))
    .await;
    let sub = back.next().await;
    assert_eq!(sub["recovered"], false);
    assert!(back.is_quiet().await, "a partial replay was sent");

    // From a position still inside history, recovery succeeds.
    let mut near = Client::connect(&hub, Identity::anonymous());
    near.send(&format!(
        r#"{{"type":"subscribe","channel":"c","since":{{"offset":4,"epoch":"{epoch}"}}}}"#
    ))
    .await;
    assert_eq!(near.next().await["recovered"], true);
    assert_eq!(near.next().await["offset"], 5);
    assert_eq!(near.next().await["offset"], 6);
}

#[tokio::test]
async fn recovery_re_runs_authorization() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::user("u").with_channels(["public:*"]));
    c.send(r#"{"type":"subscribe","channel":"secret","id":"r","since":{"offset":0,"epoch":"x"}}"#)
        .await;
    let err = c.next().await;
    assert_eq!(err["code"], "forbidden");
    assert_eq!(err["id"], "r");
}

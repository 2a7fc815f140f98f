//! The memory backplane: the shared contract, and what is specific to it.

mod contract;

use std::time::Duration;

use switchboard_backplane::{
    Backplane, BackplaneError, BoxBackplane, HealthState, MemoryBackplane, MemoryBackplaneConfig,
    PublishOptions, Scope,
};

use contract::{Cluster, Options, next_message};

struct Memory {
    first: Option<MemoryBackplane>,
    store: MemoryBackplane,
}

impl Cluster for Memory {
    type B = MemoryBackplane;

    async fn start(options: Options) -> Self {
        let config = MemoryBackplaneConfig::default()
            .history_size(options.history_size)
            .presence_ttl(options.presence_ttl)
            .presence_sweep(options.presence_sweep)
            .event_capacity(options.event_capacity)
            .dedupe_window(options.dedupe_window);
        let config = options
            .history_overrides
            .into_iter()
            .fold(config, MemoryBackplaneConfig::history_override);
        let store = MemoryBackplane::new(config);
        Self {
            first: Some(store.clone()),
            store,
        }
    }

    async fn instance(&mut self) -> MemoryBackplane {
        self.first
            .take()
            .unwrap_or_else(|| self.store.new_instance())
    }
}

contract_tests!(Memory);

#[tokio::test(start_paused = true)]
async fn over_the_history_budget_the_least_recently_published_channels_lose_their_oldest_first() {
    let bp = MemoryBackplane::new(MemoryBackplaneConfig::default().history_max_bytes(10_000));
    let kb = || bytes::Bytes::from(vec![b'x'; 1000]);
    let mut epochs = std::collections::HashMap::new();
    for (channel, count) in [("old", 5), ("mid", 3), ("new", 2)] {
        for _ in 0..count {
            let published = bp.publish(channel, kb()).await.unwrap();
            epochs.insert(channel, published.epoch);
        }
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    // 10,000 bytes: at the budget, nothing trimmed yet.
    assert_eq!(
        bp.since("old", 0, epochs["old"].as_str())
            .await
            .unwrap()
            .messages
            .map(|m| m.len()),
        Some(5)
    );

    // One more kilobyte passes it: trimmed back to 9,000, from the least recently published
    // channel's oldest messages.
    bp.publish("new", kb()).await.unwrap();
    let old = |offset| {
        let bp = bp.clone();
        let epoch = epochs["old"].clone();
        async move {
            bp.since("old", offset, epoch.as_str())
                .await
                .unwrap()
                .messages
                .map(|m| m.iter().map(|e| e.offset).collect::<Vec<_>>())
        }
    };
    // Recovery across the trimmed messages says so; never a partial list.
    assert_eq!(old(0).await, None);
    assert_eq!(old(1).await, None);
    assert_eq!(old(2).await, Some(vec![3, 4, 5]));
    for (channel, kept) in [("mid", 3), ("new", 3)] {
        let recovered = bp
            .since(channel, 0, epochs[channel].as_str())
            .await
            .unwrap();
        assert_eq!(recovered.messages.map(|m| m.len()), Some(kept), "{channel}");
    }
}

#[tokio::test(start_paused = true)]
async fn history_older_than_its_age_bound_cannot_be_recovered() {
    let bp = MemoryBackplane::new(
        MemoryBackplaneConfig::default().history_ttl(Duration::from_secs(5 * 60)),
    );
    let first = bp.publish("room", "old".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(4 * 60)).await;
    bp.publish("room", "newer".into()).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;

    let epoch = first.epoch.as_str();
    assert_eq!(bp.since("room", 0, epoch).await.unwrap().messages, None);
    let recent = bp.since("room", 1, epoch).await.unwrap().messages.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].data, "newer");
}

#[tokio::test]
async fn publishes_reach_the_whole_store() {
    let bp = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let published = bp.publish("room", "x".into()).await.unwrap();
    assert_eq!(published.scope, Scope::Cluster);
    assert_eq!(bp.kind(), "memory");
}

#[tokio::test]
async fn shutdown_ends_events_refuses_calls_and_turns_health_down() {
    let a = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let b = a.new_instance();
    let mut rx_a = a.events();
    let mut rx_b = b.events();
    a.subscribe("room").await.unwrap();
    b.subscribe("room").await.unwrap();

    a.shutdown();
    assert_eq!(rx_a.recv().await, None);
    assert_eq!(a.events().recv().await, None);
    assert_eq!(a.health().borrow().state, HealthState::Down);
    assert!(matches!(
        a.publish("room", "x".into()).await,
        Err(BackplaneError::Closed)
    ));
    assert!(matches!(
        a.subscribe("room").await,
        Err(BackplaneError::Closed)
    ));

    // The other instance goes on.
    b.publish("room", "still here".into()).await.unwrap();
    assert_eq!(next_message(&mut rx_b).await.data, "still here");
    assert_eq!(b.health().borrow().state, HealthState::Up);
}

#[tokio::test]
async fn dropping_every_instance_ends_the_sweep_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let a = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let b = a.new_instance();
    assert_eq!(metrics.num_alive_tasks(), before + 1);
    drop(a);
    tokio::task::yield_now().await;
    assert_eq!(
        metrics.num_alive_tasks(),
        before + 1,
        "b still uses the store"
    );
    drop(b);
    // The task ends as soon as it is polled again.
    tokio::time::timeout(contract::WAIT, async {
        while metrics.num_alive_tasks() > before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the sweep task ended");
}

#[tokio::test]
async fn a_boxed_backplane_behaves_as_the_one_inside() {
    let inner = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let boxed = BoxBackplane::new(inner.new_instance());
    let mut rx = boxed.events();
    boxed.subscribe("room").await.unwrap();
    inner
        .publish("room", "through the box".into())
        .await
        .unwrap();
    assert_eq!(next_message(&mut rx).await.data, "through the box");
    assert_eq!(boxed.kind(), "memory");
    assert_eq!(format!("{boxed:?}"), r#"BoxBackplane("memory")"#);
}

#[tokio::test]
async fn unsubscribing_a_channel_never_subscribed_is_a_no_op() {
    let bp = MemoryBackplane::new(MemoryBackplaneConfig::default());
    bp.unsubscribe("never").await.unwrap();
}

#[tokio::test]
async fn publish_now_publishes_in_place_as_publish_with_does_boxed_or_not() {
    let store = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let other = store.new_instance();
    let boxed = BoxBackplane::new(store.new_instance());
    let mut rx = other.events();
    other.subscribe("room").await.unwrap();
    let key = |k| PublishOptions::default().dedupe_key(k);

    // Published before the call returns: the offset is the channel's next, and every
    // instance of the store has the message.
    let first = store
        .publish_now("room", &"now".into(), key("k1"))
        .expect("the memory backplane publishes in place")
        .unwrap();
    assert_eq!((first.offset, first.duplicate), (1, false));
    assert_eq!(next_message(&mut rx).await.data, "now");

    // Through a box, and with the same dedupe as publish_with: a repeated key publishes
    // nothing and answers with the first offset.
    let again = boxed
        .publish_now("room", &"now again".into(), key("k1"))
        .expect("a box publishes in place when the one inside does")
        .unwrap();
    assert_eq!((again.offset, again.duplicate), (1, true));
    let later = store
        .publish_with("room", "later".into(), key("k2"))
        .await
        .unwrap();
    assert_eq!(later.offset, 2);
    assert_eq!(next_message(&mut rx).await.data, "later");

    store.shutdown();
    assert!(matches!(
        store.publish_now("room", &"closed".into(), PublishOptions::default()),
        Some(Err(BackplaneError::Closed))
    ));
}

//! The backplane contract, written once and run against every implementation.
//!
//! Each test takes a [`Cluster`]: a fresh shared store from which instances are made, as
//! separate servers would connect to one Redis.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashSet;
use std::future::Future;
use std::num::NonZeroUsize;
use std::time::Duration;

use bytes::Bytes;
use std::sync::Arc;

use switchboard_backplane::{
    Backplane, Envelope, Event, EventReceiver, EventSink, GroupJoin, HealthState, HistoryOverride,
    PresenceAction, PresenceChange, PublishOptions,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Bounds every wait: a broken implementation fails the test instead of hanging it.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a test needs from its store.
#[derive(Debug, Clone)]
pub struct Options {
    pub history_size: usize,
    pub presence_ttl: Duration,
    pub presence_sweep: Duration,
    pub event_capacity: NonZeroUsize,
    pub dedupe_window: usize,
    pub history_overrides: Vec<HistoryOverride>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            history_size: 100,
            presence_ttl: Duration::from_secs(60),
            presence_sweep: Duration::from_secs(60),
            event_capacity: NonZeroUsize::new(16384).unwrap(),
            dedupe_window: 1024,
            history_overrides: Vec::new(),
        }
    }
}

/// A shared store and the instances made over it.
pub trait Cluster: Sized {
    type B: Backplane + Clone;
    fn start(options: Options) -> impl Future<Output = Self>;
    fn instance(&mut self) -> impl Future<Output = Self::B>;
}

/// The next event, or a panic after [`WAIT`].
pub async fn next_event(rx: &mut EventReceiver) -> Event {
    timeout(WAIT, rx.recv())
        .await
        .expect("no event in time")
        .expect("the event stream ended")
}

/// The next message, or a panic (on timeout or any other event).
pub async fn next_message(rx: &mut EventReceiver) -> Envelope {
    match next_event(rx).await {
        Event::Message(envelope) => envelope,
        other => panic!("expected a message, got {other:?}"),
    }
}

pub async fn next_presence(rx: &mut EventReceiver) -> PresenceChange {
    match next_event(rx).await {
        Event::Presence(change) => change,
        other => panic!("expected a presence change, got {other:?}"),
    }
}

pub async fn order_is_one_across_instances<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let (mut rx_a, mut rx_b) = (a.events(), b.events());
    a.subscribe("room").await.unwrap();
    b.subscribe("room").await.unwrap();

    let publish_from = |bp: C::B, tag: &'static str| async move {
        let mut offsets = Vec::new();
        for i in 0..50 {
            let published = bp
                .publish("room", format!("{tag}{i}").into())
                .await
                .unwrap();
            offsets.push(published.offset);
        }
        offsets
    };
    let (from_a, from_b) = tokio::join!(publish_from(a.clone(), "a"), publish_from(b.clone(), "b"));
    let assigned: HashSet<u64> = from_a.iter().chain(&from_b).copied().collect();
    assert_eq!(
        assigned,
        (1..=100).collect(),
        "offsets are unique and gapless"
    );

    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..100 {
        seen_a.push(next_message(&mut rx_a).await);
        seen_b.push(next_message(&mut rx_b).await);
    }
    let offsets: Vec<u64> = seen_a.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (1..=100).collect::<Vec<_>>());
    assert_eq!(seen_a, seen_b, "both instances see the same order");
}

pub async fn a_burst_of_concurrent_publishes_arrives_complete_and_in_order<C: Cluster>() {
    use futures_util::StreamExt;
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut rx = b.events();
    b.subscribe("burst").await.unwrap();
    let publish = futures_util::stream::iter(0..1000).for_each_concurrent(64, |i| {
        let a = &a;
        async move {
            a.publish("burst", format!("{i}").into()).await.unwrap();
        }
    });
    let receive = async {
        let mut offsets = Vec::new();
        for _ in 0..1000 {
            offsets.push(next_message(&mut rx).await.offset);
        }
        offsets
    };
    let ((), offsets) = tokio::join!(publish, receive);
    assert_eq!(offsets, (1..=1000).collect::<Vec<_>>());
}

pub async fn an_instance_receives_each_message_once_however_many_local_subscribers<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let mut rx = a.events();
    for _ in 0..3 {
        a.subscribe("room").await.unwrap();
    }
    a.publish("room", "one".into()).await.unwrap();
    a.publish("room", "two".into()).await.unwrap();
    a.subscribe("marker").await.unwrap();
    a.publish("marker", "end".into()).await.unwrap();
    let got: Vec<_> = [
        next_message(&mut rx).await,
        next_message(&mut rx).await,
        next_message(&mut rx).await,
    ]
    .into_iter()
    .map(|m| (m.channel.to_string(), m.data))
    .collect();
    assert_eq!(
        got,
        [
            ("room".to_string(), Bytes::from("one")),
            ("room".to_string(), Bytes::from("two")),
            ("marker".to_string(), Bytes::from("end")),
        ]
    );
}

pub async fn subscriptions_over_a_thousand_channels_are_reference_counted<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut rx = a.events();
    let channels: Vec<String> = (0..1000).map(|i| format!("ch:{i}")).collect();
    for ch in &channels {
        a.subscribe(ch).await.unwrap();
        a.subscribe(ch).await.unwrap();
    }
    for ch in &channels {
        a.unsubscribe(ch).await.unwrap();
    }
    for ch in &channels {
        b.publish(ch, "still subscribed".into()).await.unwrap();
    }
    let mut got = HashSet::new();
    for _ in 0..1000 {
        got.insert(next_message(&mut rx).await.channel.to_string());
    }
    assert_eq!(got.len(), 1000, "one message per channel, none twice");

    for ch in &channels {
        a.unsubscribe(ch).await.unwrap();
    }
    a.subscribe("marker").await.unwrap();
    for ch in &channels {
        b.publish(ch, "nobody listens".into()).await.unwrap();
    }
    b.publish("marker", "end".into()).await.unwrap();
    let next = next_message(&mut rx).await;
    assert_eq!(
        &*next.channel, "marker",
        "unsubscribed channels deliver nothing"
    );
}

pub async fn since_recovers_from_any_instance<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut epoch = None;
    for i in 1..=5 {
        let published = a.publish("room", format!("m{i}").into()).await.unwrap();
        assert_eq!(published.offset, i);
        epoch = Some(published.epoch);
    }
    let epoch = epoch.unwrap();
    let position = b.position("room").await.unwrap();
    assert_eq!((position.offset, &position.epoch), (5, &epoch));

    let recovery = b.since("room", 2, epoch.as_str()).await.unwrap();
    assert_eq!(recovery.position, position);
    let messages = recovery.messages.expect("recoverable");
    let got: Vec<_> = messages
        .iter()
        .map(|m| (m.offset, m.data.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (3, Bytes::from("m3")),
            (4, Bytes::from("m4")),
            (5, Bytes::from("m5"))
        ]
    );
    assert_eq!(&*messages[0].channel, "room");
}

pub async fn since_never_returns_a_partial_list<C: Cluster>() {
    let mut cluster = C::start(Options {
        history_size: 3,
        ..Options::default()
    })
    .await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut epoch = None;
    for i in 1..=5 {
        epoch = Some(
            a.publish("room", format!("m{i}").into())
                .await
                .unwrap()
                .epoch,
        );
    }
    let epoch = epoch.unwrap();
    let offsets = |r: switchboard_backplane::Recovery| {
        r.messages
            .map(|m| m.iter().map(|e| e.offset).collect::<Vec<_>>())
    };
    assert_eq!(
        offsets(b.since("room", 1, epoch.as_str()).await.unwrap()),
        None
    );
    assert_eq!(
        offsets(b.since("room", 2, epoch.as_str()).await.unwrap()),
        Some(vec![3, 4, 5])
    );
    assert_eq!(
        offsets(b.since("room", 5, epoch.as_str()).await.unwrap()),
        Some(vec![])
    );
    assert_eq!(
        offsets(b.since("room", 4, "another-epoch").await.unwrap()),
        None
    );
    assert_eq!(
        offsets(b.since("room", 6, epoch.as_str()).await.unwrap()),
        None,
        "an offset past the channel's position is not recoverable"
    );
}

pub async fn an_unused_channel_is_at_offset_zero_in_a_stable_epoch<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let first = a.position("fresh").await.unwrap();
    assert_eq!(first.offset, 0);
    assert_eq!(b.position("fresh").await.unwrap(), first);
    let recovery = b.since("fresh", 0, first.epoch.as_str()).await.unwrap();
    assert_eq!(recovery.messages, Some(vec![]));
    let published = b.publish("fresh", "first".into()).await.unwrap();
    assert_eq!((published.offset, published.epoch), (1, first.epoch));
}

pub async fn data_is_carried_byte_for_byte<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut rx = b.events();
    b.subscribe("bin").await.unwrap();
    let data = Bytes::from_static(b"m1:2:\x00\xff\n{\"x\":\"y\"}");
    let published = a.publish("bin", data.clone()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.data, data);
    let recovered = b.since("bin", 0, published.epoch.as_str()).await.unwrap();
    assert_eq!(recovered.messages.unwrap()[0].data, data);
    b.publish("bin", Bytes::new()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.data, Bytes::new());
}

pub async fn a_repeated_dedupe_key_is_published_once_from_any_instance<C: Cluster>() {
    let mut cluster = C::start(Options {
        dedupe_window: 2,
        ..Options::default()
    })
    .await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut rx = b.events();
    b.subscribe("room").await.unwrap();
    let key = |k| PublishOptions::default().dedupe_key(k);

    let first = a
        .publish_with("room", "m1".into(), key("k1"))
        .await
        .unwrap();
    assert_eq!((first.offset, first.duplicate), (1, false));
    // A retry through another instance: acknowledged with the first offset, not published.
    let retry = b
        .publish_with("room", "m1 again".into(), key("k1"))
        .await
        .unwrap();
    assert!(retry.duplicate, "{retry:?}");
    assert_eq!((retry.offset, &retry.epoch), (1, &first.epoch));

    // Unkeyed publishes never collide; other keys are other messages.
    assert_eq!(a.publish("room", "plain".into()).await.unwrap().offset, 2);
    assert_eq!(a.publish("room", "plain".into()).await.unwrap().offset, 3);
    let k2 = a
        .publish_with("room", "m2".into(), key("k2"))
        .await
        .unwrap();
    assert_eq!((k2.offset, k2.duplicate), (4, false));
    // The same key on another channel is independent.
    let elsewhere = b
        .publish_with("other", "m2".into(), key("k2"))
        .await
        .unwrap();
    assert_eq!((elsewhere.offset, elsewhere.duplicate), (1, false));
    // The window keeps the latest two keys: after k3, k1 is forgotten and is a new message.
    a.publish_with("room", "m3".into(), key("k3"))
        .await
        .unwrap();
    assert!(
        a.publish_with("room", "m2 again".into(), key("k2"))
            .await
            .unwrap()
            .duplicate
    );
    let late = a
        .publish_with("room", "m1 late".into(), key("k1"))
        .await
        .unwrap();
    assert_eq!((late.offset, late.duplicate), (6, false));

    let mut got = Vec::new();
    for _ in 0..6 {
        let m = next_message(&mut rx).await;
        got.push((m.offset, m.data));
    }
    let expected: Vec<(u64, Bytes)> = [
        (1, "m1"),
        (2, "plain"),
        (3, "plain"),
        (4, "m2"),
        (5, "m3"),
        (6, "m1 late"),
    ]
    .into_iter()
    .map(|(o, d)| (o, Bytes::from(d)))
    .collect();
    assert_eq!(
        got, expected,
        "each message once, duplicates never delivered"
    );
    let recovered = b.since("room", 0, first.epoch.as_str()).await.unwrap();
    let history: Vec<_> = recovered
        .messages
        .unwrap()
        .into_iter()
        .map(|m| (m.offset, m.data))
        .collect();
    assert_eq!(history, expected, "duplicates are not in history either");
}

pub async fn presence_is_shared_and_announced_across_instances<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut rx = a.events();
    a.subscribe("room").await.unwrap();

    assert_eq!(
        b.presence_set("room", "c1", "alice".into()).await.unwrap(),
        PresenceAction::Join
    );
    let change = next_presence(&mut rx).await;
    assert_eq!(
        (
            change.action,
            &*change.entry.connection_id,
            &change.entry.data[..]
        ),
        (PresenceAction::Join, "c1", &b"alice"[..])
    );
    assert_eq!(
        b.presence_set("room", "c1", "alice, away".into())
            .await
            .unwrap(),
        PresenceAction::Update
    );
    assert_eq!(next_presence(&mut rx).await.action, PresenceAction::Update);
    b.presence_touch("room", "c1").await.unwrap();

    let members = a.presence_list("room").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].data, "alice, away");

    let removed = b
        .presence_remove("room", "c1")
        .await
        .unwrap()
        .expect("present");
    assert_eq!(removed.data, "alice, away");
    let change = next_presence(&mut rx).await;
    assert_eq!(
        (change.action, change.entry.data),
        (PresenceAction::Leave, removed.data)
    );
    assert!(a.presence_list("room").await.unwrap().is_empty());
    assert_eq!(b.presence_remove("room", "c1").await.unwrap(), None);
}

pub async fn idle_presence_expires_with_a_leave_and_touched_presence_stays<C: Cluster>() {
    let mut cluster = C::start(Options {
        presence_ttl: Duration::from_millis(600),
        presence_sweep: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let mut rx = a.events();
    a.subscribe("room").await.unwrap();
    b.presence_set("room", "idle", "i".into()).await.unwrap();
    b.presence_set("room", "active", "a".into()).await.unwrap();
    next_presence(&mut rx).await;
    next_presence(&mut rx).await;

    // Activity from the member's own server, as the hub refreshes live connections.
    let toucher = b.clone();
    let activity = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        loop {
            every.tick().await;
            let _ = toucher.presence_touch("room", "active").await;
        }
    });
    let leave = next_presence(&mut rx).await;
    assert_eq!(
        (leave.action, &*leave.entry.connection_id),
        (PresenceAction::Leave, "idle")
    );
    let members = a.presence_list("room").await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(&*members[0].connection_id, "active");

    activity.abort();
    let leave = next_presence(&mut rx).await;
    assert_eq!(
        (leave.action, &*leave.entry.connection_id),
        (PresenceAction::Leave, "active")
    );
    assert!(a.presence_list("room").await.unwrap().is_empty());
}

pub async fn a_receiver_that_falls_behind_is_told_it_lagged<C: Cluster>() {
    let mut cluster = C::start(Options {
        event_capacity: NonZeroUsize::new(4).unwrap(),
        ..Options::default()
    })
    .await;
    let a = cluster.instance().await;
    let mut slow = a.events();
    let mut fast = a.events();
    a.subscribe("room").await.unwrap();
    for i in 1..=10 {
        a.publish("room", format!("m{i}").into()).await.unwrap();
        assert_eq!(next_message(&mut fast).await.offset, i);
    }
    assert!(matches!(
        next_event(&mut slow).await,
        Event::Lagged { missed: 6 }
    ));
    assert_eq!(next_message(&mut slow).await.offset, 7);
}

/// A sink that forwards every event to a test's queue.
struct Forward(mpsc::UnboundedSender<Event>);

impl EventSink for Forward {
    fn deliver(&self, event: Event) {
        let _ = self.0.send(event);
    }
}

pub async fn every_attached_sink_gets_every_event_and_never_lags<C: Cluster>() {
    // A queue of 4 events: a receiver would lag, an attached sink cannot.
    let mut cluster = C::start(Options {
        event_capacity: NonZeroUsize::new(4).unwrap(),
        ..Options::default()
    })
    .await;
    let a = cluster.instance().await;
    let (first_tx, mut first) = mpsc::unbounded_channel();
    let (second_tx, mut second) = mpsc::unbounded_channel();
    a.attach(Arc::new(Forward(first_tx))).unwrap();
    a.attach(Arc::new(Forward(second_tx))).unwrap();
    a.subscribe("room").await.unwrap();
    for i in 1..=50 {
        a.publish("room", format!("m{i}").into()).await.unwrap();
    }
    for sink in [&mut first, &mut second] {
        for i in 1..=50 {
            match timeout(WAIT, sink.recv()).await.expect("an event in time") {
                Some(Event::Message(envelope)) => {
                    assert_eq!(envelope.offset, i);
                    assert_eq!(envelope.data, Bytes::from(format!("m{i}")));
                }
                other => panic!("expected message {i}, got {other:?}"),
            }
        }
    }
}

pub async fn leases_are_counted_across_instances_up_to_the_limit<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let ttl = Duration::from_secs(60);
    assert!(a.lease_acquire("user:ada", "c1", 2, ttl).await.unwrap());
    assert!(b.lease_acquire("user:ada", "c2", 2, ttl).await.unwrap());
    // The third holder, on either instance, is over the limit; another key is not.
    assert!(!a.lease_acquire("user:ada", "c3", 2, ttl).await.unwrap());
    assert!(!b.lease_acquire("user:ada", "c3", 2, ttl).await.unwrap());
    assert!(b.lease_acquire("user:bob", "c3", 2, ttl).await.unwrap());
    // A holder renews its own lease whatever the count.
    assert!(b.lease_acquire("user:ada", "c1", 2, ttl).await.unwrap());
    // A released lease frees its place, from any instance; releasing twice is harmless.
    b.lease_release("user:ada", "c1").await.unwrap();
    b.lease_release("user:ada", "c1").await.unwrap();
    assert!(a.lease_acquire("user:ada", "c3", 2, ttl).await.unwrap());
    assert!(!a.lease_acquire("user:ada", "c4", 2, ttl).await.unwrap());
}

pub async fn an_unrenewed_lease_expires_and_frees_its_place<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    assert!(
        a.lease_acquire("user:ada", "gone", 1, Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !b.lease_acquire("user:ada", "next", 1, Duration::from_secs(60))
            .await
            .unwrap()
    );
    // The holder's instance stopped renewing (it died): the place frees at the expiry.
    timeout(WAIT, async {
        while !b
            .lease_acquire("user:ada", "next", 1, Duration::from_secs(60))
            .await
            .unwrap()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the expired lease frees its place");
    assert!(
        !a.lease_acquire("user:ada", "gone", 1, Duration::from_secs(60))
            .await
            .unwrap()
    );
}

pub async fn channels_under_an_override_keep_its_history_bounds_and_others_the_default<
    C: Cluster,
>() {
    let mut cluster = C::start(Options {
        history_size: 5,
        history_overrides: vec![
            HistoryOverride::new("chat:").size(2),
            HistoryOverride::new("chat:archive:").size(10),
            HistoryOverride::new("live:").size(0),
            HistoryOverride::new("brief:").ttl(Duration::from_millis(200)),
        ],
        ..Options::default()
    })
    .await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    for channel in ["chat:lobby", "chat:archive:2026", "live:scores", "plain"] {
        for i in 0..12 {
            a.publish(channel, Bytes::from(format!("{i}")))
                .await
                .unwrap();
        }
    }
    // What each keeps, read from either instance: the longest matching prefix decides.
    for (channel, kept) in [
        ("chat:lobby", 2),
        ("chat:archive:2026", 10),
        ("live:scores", 0),
        ("plain", 5),
    ] {
        let epoch = b.position(channel).await.unwrap().epoch;
        // Asking from just before the oldest kept message recovers them all; one earlier
        // cannot be recovered.
        let from = 12 - kept;
        let recovered = b.since(channel, from, epoch.as_str()).await.unwrap();
        assert_eq!(
            recovered.messages.map(|m| m.len()),
            Some(kept as usize),
            "{channel}"
        );
        if from > 0 {
            let too_old = b.since(channel, from - 1, epoch.as_str()).await.unwrap();
            assert!(too_old.messages.is_none(), "{channel} keeps only {kept}");
        }
    }
    // A shorter lifetime: the message leaves that channel's history, and only that one's.
    a.publish("brief:flash", Bytes::from_static(b"gone soon"))
        .await
        .unwrap();
    a.publish("plain:kept", Bytes::from_static(b"stays"))
        .await
        .unwrap();
    let epoch = b.position("brief:flash").await.unwrap().epoch;
    timeout(WAIT, async {
        while b
            .since("brief:flash", 0, epoch.as_str())
            .await
            .unwrap()
            .messages
            .is_some_and(|m| !m.is_empty())
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a message outlives its namespace's history ttl");
    let epoch = b.position("plain:kept").await.unwrap().epoch;
    let kept = b.since("plain:kept", 0, epoch.as_str()).await.unwrap();
    assert_eq!(kept.messages.map(|m| m.len()), Some(1));
}

pub async fn a_group_reports_its_first_member_and_its_last_leave_once_across_instances<
    C: Cluster,
>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let ttl = Duration::from_secs(60);
    assert_eq!(
        a.group_join("ch:news", "a", ttl).await.unwrap(),
        GroupJoin::First
    );
    assert_eq!(
        b.group_join("ch:news", "b", ttl).await.unwrap(),
        GroupJoin::Joined
    );
    // Renewing is joining again, and changes nothing for the group.
    assert_eq!(
        a.group_join("ch:news", "a", ttl).await.unwrap(),
        GroupJoin::Joined
    );
    assert!(
        !a.group_leave("ch:news", "a").await.unwrap(),
        "b is still in"
    );
    assert!(
        b.group_leave("ch:news", "b").await.unwrap(),
        "b was the last"
    );
    assert!(!b.group_leave("ch:news", "b").await.unwrap(), "told once");
    assert!(!a.group_leave("ch:other", "a").await.unwrap());
    assert_eq!(
        b.group_join("ch:news", "b", ttl).await.unwrap(),
        GroupJoin::First
    );
    assert!(a.group_reap().await.unwrap().is_empty(), "nothing lapsed");
}

pub async fn a_group_whose_members_died_is_reported_once_by_a_reaper_or_its_next_join<
    C: Cluster,
>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let brief = Duration::from_millis(150);
    let ttl = Duration::from_secs(60);
    assert_eq!(
        a.group_join("ch:reaped", "a", brief).await.unwrap(),
        GroupJoin::First
    );
    assert_eq!(
        a.group_join("ch:rejoined", "a", brief).await.unwrap(),
        GroupJoin::First
    );
    assert_eq!(
        a.group_join("ch:alive", "a", ttl).await.unwrap(),
        GroupJoin::First
    );
    // The instance holding them dies: nothing renews, nothing leaves. No signal can say
    // when a membership has expired but the clock.
    tokio::time::sleep(brief * 3).await;
    assert_eq!(
        b.group_join("ch:rejoined", "b", ttl).await.unwrap(),
        GroupJoin::FirstAfterLapse,
        "the join that finds the lapse reports it"
    );
    let (from_a, from_b) = (a.group_reap().await.unwrap(), b.group_reap().await.unwrap());
    let mut reaped: Vec<String> = from_a.into_iter().chain(from_b).collect();
    reaped.sort();
    assert_eq!(
        reaped,
        ["ch:reaped"],
        "each lapse is reported once, live groups never"
    );
    assert_eq!(
        b.group_join("ch:reaped", "b", ttl).await.unwrap(),
        GroupJoin::First
    );
}

/// A sink that answers surveys with its name and the request, and counts what it was asked.
struct Answering {
    name: &'static str,
    asked: std::sync::atomic::AtomicUsize,
}

impl EventSink for Answering {
    fn deliver(&self, _event: Event) {}

    fn answer(&self, request: &[u8]) -> Option<Bytes> {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (request != b"silence").then(|| {
            let mut answer = format!("{}=", self.name).into_bytes();
            answer.extend_from_slice(request);
            Bytes::from(answer)
        })
    }
}

fn answering(name: &'static str) -> Arc<Answering> {
    Arc::new(Answering {
        name,
        asked: std::sync::atomic::AtomicUsize::new(0),
    })
}

pub async fn a_survey_reaches_every_sink_of_every_instance_and_gathers_their_answers<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let (a1, a2, b1) = (answering("a1"), answering("a2"), answering("b1"));
    a.attach(a1.clone()).unwrap();
    a.attach(a2.clone()).unwrap();
    b.attach(b1.clone()).unwrap();

    // Bytes of any kind reach the sinks as sent, separators included.
    let request = Bytes::from_static(b"who:\0:is:there");
    let survey = timeout(WAIT, b.survey(request.clone(), WAIT))
        .await
        .expect("the survey ends within its timeout")
        .unwrap();
    assert!(survey.is_complete(), "{survey:?}");
    assert_eq!((survey.asked, survey.replied), (2, 2));
    let mut answers: Vec<Bytes> = survey.answers;
    answers.sort();
    let expected: Vec<Bytes> = ["a1", "a2", "b1"]
        .iter()
        .map(|n| {
            let mut answer = format!("{n}=").into_bytes();
            answer.extend_from_slice(&request);
            Bytes::from(answer)
        })
        .collect();
    assert_eq!(answers, expected);

    // Sinks with nothing to say add no answer, yet their instance counts as replied.
    let survey = a
        .survey(Bytes::from_static(b"silence"), WAIT)
        .await
        .unwrap();
    assert!(
        survey.is_complete() && survey.answers.is_empty(),
        "{survey:?}"
    );
    assert_eq!(survey.replied, 2);
    for sink in [&a1, &a2, &b1] {
        assert_eq!(sink.asked.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    assert_eq!(a.survey(Bytes::new(), WAIT).await.unwrap().answers.len(), 3);
}

pub async fn health_is_up_while_the_store_is_reachable<C: Cluster>() {
    let mut cluster = C::start(Options::default()).await;
    let a = cluster.instance().await;
    let mut health = a.health();
    let up = timeout(WAIT, health.wait_for(|h| h.state == HealthState::Up))
        .await
        .expect("up in time")
        .unwrap()
        .clone();
    assert!(up.detail.is_empty());
}

/// Declares one `#[tokio::test]` per contract test for cluster type `$cluster`.
#[macro_export]
macro_rules! contract_tests {
    ($cluster:ty) => {
        $crate::contract_tests!(@each $cluster;
            order_is_one_across_instances,
            a_burst_of_concurrent_publishes_arrives_complete_and_in_order,
            an_instance_receives_each_message_once_however_many_local_subscribers,
            subscriptions_over_a_thousand_channels_are_reference_counted,
            since_recovers_from_any_instance,
            since_never_returns_a_partial_list,
            an_unused_channel_is_at_offset_zero_in_a_stable_epoch,
            data_is_carried_byte_for_byte,
            a_repeated_dedupe_key_is_published_once_from_any_instance,
            presence_is_shared_and_announced_across_instances,
            idle_presence_expires_with_a_leave_and_touched_presence_stays,
            a_receiver_that_falls_behind_is_told_it_lagged,
            every_attached_sink_gets_every_event_and_never_lags,
            leases_are_counted_across_instances_up_to_the_limit,
            an_unrenewed_lease_expires_and_frees_its_place,
            a_survey_reaches_every_sink_of_every_instance_and_gathers_their_answers,
            channels_under_an_override_keep_its_history_bounds_and_others_the_default,
            a_group_reports_its_first_member_and_its_last_leave_once_across_instances,
            a_group_whose_members_died_is_reported_once_by_a_reaper_or_its_next_join,
            health_is_up_while_the_store_is_reachable,
        );
    };
    (@each $cluster:ty; $($name:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                contract::$name::<$cluster>().await;
            }
        )*
    };
}

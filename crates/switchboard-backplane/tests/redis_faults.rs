//! The Redis backplane under faults, against a real redis-server it spawns: killed,
//! restarted, flushed, frozen, and one instance cut off while others go on.

mod contract;
mod faults;

use std::time::Duration;

use switchboard_backplane::{
    Backplane, DegradedCause, Event, HealthState, RedisBackplane, ResetReason, Scope,
};
use switchboard_test_support::RedisServer;

use contract::{WAIT, next_event, next_message};
use faults::{PROBE, Proxy, fast_config, health_becomes};

/// Degraded within three probe intervals, plus scheduling slack.
const DETECTION: Duration = Duration::from_millis(3 * 200 + 400);
/// Back within the documented 10 s of Redis returning.
const RECOVERY: Duration = Duration::from_secs(10);

async fn instance(
    url: &str,
    config: &switchboard_backplane::RedisBackplaneConfig,
) -> RedisBackplane {
    let bp = RedisBackplane::connect(url, config.clone()).await.unwrap();
    health_becomes(&bp, HealthState::Up, WAIT).await;
    bp
}

/// The next message, after any resets (returned too).
async fn next_message_after_resets(
    rx: &mut switchboard_backplane::EventReceiver,
) -> (Vec<ResetReason>, switchboard_backplane::Envelope) {
    let mut resets = Vec::new();
    loop {
        match next_event(rx).await {
            Event::Message(m) => return (resets, m),
            Event::Reset { reason, .. } => resets.push(reason),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn killed_redis_keeps_local_delivery_and_turns_health_degraded_within_the_probe_interval() {
    let mut server = RedisServer::spawn();
    let config = fast_config();
    let a = instance(server.url(), &config).await;
    let mut rx = a.events();
    a.subscribe("room").await.unwrap();
    a.publish("room", "before".into()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.offset, 1);

    server.kill().unwrap();
    let health = health_becomes(&a, HealthState::Degraded, DETECTION).await;
    assert!(health.detail.starts_with("redis:"), "{}", health.detail);
    assert_eq!(
        health.cause,
        Some(DegradedCause::ConnectionLost),
        "{}",
        health.detail
    );

    let published = a.publish("room", "during".into()).await.unwrap();
    assert_eq!((published.scope, published.offset), (Scope::LocalOnly, 2));
    // Local delivery goes on, under a local epoch its subscribers are first reset into.
    let (resets, local) = next_message_after_resets(&mut rx).await;
    assert_eq!(resets, [ResetReason::EpochChanged]);
    assert_eq!((local.offset, local.data), (2, "during".into()));
    assert_eq!(a.stats().degraded_publishes, 1);
}

#[tokio::test]
async fn restarted_redis_is_resubscribed_and_cross_instance_delivery_resumes() {
    let mut server = RedisServer::spawn();
    let config = fast_config();
    let a = instance(server.url(), &config).await;
    let b = instance(server.url(), &config).await;
    let mut rx = b.events();
    b.subscribe("room").await.unwrap();
    a.publish("room", "before".into()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.data, "before");

    server.kill().unwrap();
    health_becomes(&b, HealthState::Degraded, DETECTION).await;
    server.restart().unwrap();
    health_becomes(&a, HealthState::Up, RECOVERY).await;
    health_becomes(&b, HealthState::Up, RECOVERY).await;

    a.publish("room", "after".into()).await.unwrap();
    let (resets, message) = next_message_after_resets(&mut rx).await;
    // The restarted Redis lost the history: B says so rather than pretending continuity.
    assert_eq!(resets, [ResetReason::EpochChanged]);
    assert_eq!((message.offset, message.data), (1, "after".into()));
    assert!(b.stats().reconnects >= 1);
}

#[tokio::test]
async fn flushed_redis_changes_the_epoch_and_recovery_says_false() {
    let server = RedisServer::spawn();
    let config = fast_config();
    let a = instance(server.url(), &config).await;
    let b = instance(server.url(), &config).await;
    let mut rx = b.events();
    b.subscribe("room").await.unwrap();
    let mut old = None;
    for i in 1..=3 {
        old = Some(
            a.publish("room", format!("m{i}").into())
                .await
                .unwrap()
                .epoch,
        );
        assert_eq!(next_message(&mut rx).await.offset, i);
    }
    let old = old.unwrap();

    server.command(&["FLUSHALL"]).unwrap();
    let published = a.publish("room", "after the flush".into()).await.unwrap();
    assert_ne!(published.epoch, old);
    assert_eq!(published.offset, 1);
    let (resets, message) = next_message_after_resets(&mut rx).await;
    assert_eq!(resets, [ResetReason::EpochChanged]);
    assert_eq!(message.data, "after the flush");

    let recovery = b.since("room", 3, old.as_str()).await.unwrap();
    assert_eq!(recovery.messages, None, "recovered: false");
    assert_eq!(recovery.position.epoch, published.epoch);
    assert_eq!(b.health().borrow().state, HealthState::Up);
}

#[tokio::test]
async fn a_frozen_redis_is_caught_by_the_probe_and_healed_after_it_resumes() {
    let server = RedisServer::spawn();
    let config = fast_config();
    let a = instance(server.url(), &config).await;
    let b = instance(server.url(), &config).await;
    let mut rx = b.events();
    b.subscribe("room").await.unwrap();

    // The connection stays open but nothing answers: only the probe can tell.
    server.pause().unwrap();
    let health = health_becomes(&b, HealthState::Degraded, DETECTION).await;
    assert!(
        health.detail.contains("probe") || health.detail.contains("circuit"),
        "{}",
        health.detail
    );
    assert!(
        matches!(
            health.cause,
            Some(DegradedCause::LivenessProbeFailed | DegradedCause::Timeout)
        ),
        "a frozen Redis answers nothing: {:?} ({})",
        health.cause,
        health.detail
    );
    server.resume().unwrap();
    health_becomes(&a, HealthState::Up, RECOVERY).await;
    health_becomes(&b, HealthState::Up, RECOVERY).await;
    a.publish("room", "after".into()).await.unwrap();
    let (resets, message) = next_message_after_resets(&mut rx).await;
    assert!(resets.is_empty(), "no history was lost: {resets:?}");
    assert_eq!(message.data, "after");
}

#[tokio::test]
async fn the_local_fallback_history_stays_within_its_memory_budget() {
    let server = RedisServer::spawn();
    let config = fast_config().history_max_bytes(12_000);
    let proxy = Proxy::start(server.addr()).await;
    let cut_off = instance(&proxy.url(), &config).await;
    proxy.cut();
    health_becomes(&cut_off, HealthState::Degraded, DETECTION).await;

    let kb = || bytes::Bytes::from(vec![b'x'; 1000]);
    let mut epochs = Vec::new();
    for channel in ["early", "late"] {
        for _ in 0..10 {
            let published = cut_off.publish(channel, kb()).await.unwrap();
            assert_eq!(published.scope, Scope::LocalOnly);
            epochs.push(published.epoch);
        }
    }
    // 20 KB published, 12 KB allowed: the channel published first lost its oldest messages,
    // and recovery across them says so; the newest channel is whole.
    let early = cut_off.since("early", 0, epochs[0].as_str()).await.unwrap();
    assert_eq!(early.messages, None);
    let late = cut_off.since("late", 0, epochs[10].as_str()).await.unwrap();
    assert_eq!(late.messages.map(|m| m.len()), Some(10));
}

#[tokio::test]
async fn a_cut_off_instance_catches_up_from_history_without_a_reset() {
    let server = RedisServer::spawn();
    let config = fast_config();
    let proxy = Proxy::start(server.addr()).await;
    let a = instance(server.url(), &config).await;
    let b = instance(&proxy.url(), &config).await;
    let mut rx = b.events();
    b.subscribe("room").await.unwrap();
    a.publish("room", "m1".into()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.offset, 1);

    proxy.cut();
    health_becomes(&b, HealthState::Degraded, DETECTION).await;
    for data in ["m2", "m3"] {
        assert_eq!(
            a.publish("room", data.into()).await.unwrap().scope,
            Scope::Cluster
        );
    }
    proxy.restore();
    // The gap is filled from the stream, in order, before anything newer.
    assert_eq!(next_message(&mut rx).await.data, "m2");
    assert_eq!(next_message(&mut rx).await.data, "m3");
    a.publish("room", "m4".into()).await.unwrap();
    let m4 = next_message(&mut rx).await;
    assert_eq!((m4.offset, m4.data), (4, "m4".into()));
    assert_eq!(b.stats().gap_fills, 2);
    assert_eq!(b.stats().resets, 0);
    health_becomes(&b, HealthState::Up, RECOVERY).await;
}

#[tokio::test]
async fn a_channel_catching_up_holds_up_no_other_channel() {
    let server = RedisServer::spawn();
    let prefix = faults::unique_prefix();
    // Probes and command timeouts far beyond the test's waits: holding the link must not
    // turn into an outage here.
    let config = fast_config()
        .prefix(prefix.clone())
        .probe_interval(Duration::from_secs(60))
        .command_timeout(Duration::from_secs(60));
    let proxy = Proxy::start(server.addr()).await;
    let publisher = instance(server.url(), &config).await;
    let here = instance(&proxy.url(), &config).await;
    let mut rx = here.events();
    here.subscribe("gappy").await.unwrap();
    here.subscribe("steady").await.unwrap();
    publisher.publish("gappy", "g1".into()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.data, "g1");

    // Two messages reach the channel's history but their pushes are lost (written straight
    // to Redis), then a third push arrives: `here` must catch up on 2 and 3 from history.
    let key = |suffix: &str| format!("{prefix}{{gappy}}:{suffix}");
    // A bulk-string reply: `$<len>`, then the epoch.
    let reply = server.command(&["HGET", &key("meta"), "e"]).unwrap();
    let epoch = reply.lines().nth(1).expect("the channel has an epoch");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    for offset in ["2", "3"] {
        let data = format!("g{offset}");
        let id = format!("{offset}-0");
        server
            .command(&["XADD", &key("history"), &id, "t", &now_ms, "d", &data])
            .unwrap();
    }
    server.command(&["HSET", &key("meta"), "o", "3"]).unwrap();
    // The catch-up's read is held in the proxy, so "gappy" stays mid-catch-up.
    proxy.hold();
    server
        .command(&["PUBLISH", &key("pubsub"), &format!("m{epoch}:3:g3")])
        .unwrap();

    // Meanwhile another channel keeps flowing.
    publisher.publish("steady", "s1".into()).await.unwrap();
    let steady = next_message(&mut rx).await;
    assert_eq!((&*steady.channel, &steady.data[..]), ("steady", &b"s1"[..]));

    // Once Redis hears the read, the gap is filled in order, exactly once, with no reset.
    proxy.release();
    for (offset, data) in [(2, "g2"), (3, "g3")] {
        let m = next_message(&mut rx).await;
        assert_eq!(
            (&*m.channel, m.offset, &m.data[..]),
            ("gappy", offset, data.as_bytes())
        );
    }
    publisher.publish("gappy", "g4".into()).await.unwrap();
    let g4 = next_message(&mut rx).await;
    assert_eq!((g4.offset, &g4.data[..]), (4, &b"g4"[..]));
    assert_eq!(here.stats().gap_fills, 2);
    assert_eq!(here.stats().resets, 0);
}

#[tokio::test]
async fn local_only_publishes_reset_the_channel_here_at_once_and_everywhere_when_redis_returns() {
    let server = RedisServer::spawn();
    let config = fast_config();
    let proxy = Proxy::start(server.addr()).await;
    let a = instance(server.url(), &config).await;
    let b = instance(&proxy.url(), &config).await;
    let (mut rx_a, mut rx_b) = (a.events(), b.events());
    a.subscribe("room").await.unwrap();
    b.subscribe("room").await.unwrap();
    let shared = a.publish("room", "shared".into()).await.unwrap();
    next_message(&mut rx_a).await;
    next_message(&mut rx_b).await;

    proxy.cut();
    health_becomes(&b, HealthState::Degraded, DETECTION).await;
    let local = b.publish("room", "only here".into()).await.unwrap();
    assert_eq!(local.scope, Scope::LocalOnly);
    assert_ne!(
        local.epoch, shared.epoch,
        "local publishes get a local epoch"
    );
    // B's subscribers were told the Redis epoch: they are reset before the first message
    // of the local one, so they never take it for a continuation.
    let (resets, message) = next_message_after_resets(&mut rx_b).await;
    assert_eq!(resets, [ResetReason::EpochChanged]);
    assert_eq!(message.data, "only here");
    let recovery = b.since("room", 1, shared.epoch.as_str()).await.unwrap();
    assert_eq!(
        recovery.messages, None,
        "the Redis epoch cannot be continued here"
    );
    assert_eq!(recovery.position.epoch, local.epoch);

    proxy.restore();
    health_becomes(&b, HealthState::Up, RECOVERY).await;
    // Both instances reset: A's subscribers never got "only here", and are told so.
    for rx in [&mut rx_a, &mut rx_b] {
        match next_event(rx).await {
            Event::Reset { channel, reason } => {
                assert_eq!((&*channel, reason), ("room", ResetReason::EpochChanged));
            }
            other => panic!("expected a reset, got {other:?}"),
        }
    }
    let back = b.publish("room", "back".into()).await.unwrap();
    assert_ne!(back.epoch, shared.epoch, "Redis started a new epoch");
    assert_eq!(next_message(&mut rx_b).await.data, "back");
    let at_a = next_message(&mut rx_a).await;
    assert_eq!((at_a.offset, at_a.data), (1, "back".into()));
    let stale = a.since("room", 1, shared.epoch.as_str()).await.unwrap();
    assert_eq!(stale.messages, None, "the old epoch is not recoverable");
}

#[tokio::test]
async fn subscribing_while_cut_off_takes_effect_after_the_reconnect_with_a_reset() {
    let server = RedisServer::spawn();
    let config = fast_config();
    let proxy = Proxy::start(server.addr()).await;
    let a = instance(server.url(), &config).await;
    let b = instance(&proxy.url(), &config).await;
    let mut rx = b.events();

    proxy.cut();
    health_becomes(&b, HealthState::Degraded, DETECTION).await;
    b.subscribe("late").await.unwrap();
    a.publish("late", "missed while cut off".into())
        .await
        .unwrap();
    proxy.restore();
    match next_event(&mut rx).await {
        Event::Reset { channel, reason } => {
            assert_eq!((&*channel, reason), ("late", ResetReason::MessagesMissed));
        }
        other => panic!("expected a reset, got {other:?}"),
    }
    a.publish("late", "after".into()).await.unwrap();
    assert_eq!(next_message(&mut rx).await.data, "after");
    assert!(PROBE < DETECTION);
}

#[tokio::test]
async fn members_of_a_cut_off_instance_are_re_announced_and_its_leaves_applied() {
    let server = RedisServer::spawn();
    let config = fast_config();
    let proxy = Proxy::start(server.addr()).await;
    let a = instance(server.url(), &config).await;
    let b = instance(&proxy.url(), &config).await;
    b.presence_set("room", "stays", "s".into()).await.unwrap();
    b.presence_set("room", "leaves", "l".into()).await.unwrap();

    proxy.cut();
    health_becomes(&b, HealthState::Degraded, DETECTION).await;
    assert!(b.presence_remove("room", "leaves").await.unwrap().is_some());
    b.presence_set("room", "joins", "j".into()).await.unwrap();
    server.command(&["FLUSHALL"]).unwrap();

    proxy.restore();
    health_becomes(&b, HealthState::Up, RECOVERY).await;
    let mut members: Vec<String> = a
        .presence_list("room")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.connection_id.to_string())
        .collect();
    members.sort();
    assert_eq!(members, ["joins", "stays"]);
}

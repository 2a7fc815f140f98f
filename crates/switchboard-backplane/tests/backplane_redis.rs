//! The Redis backplane against a real redis-server: the shared contract, and what is
//! specific to Redis (subscriptions, key layout, URLs, degraded start, shutdown).

mod contract;

use std::time::Duration;

use switchboard_backplane::{
    Backplane, BackplaneError, HealthState, PublishOptions, RedisBackplane, RedisBackplaneConfig,
    Scope,
};
use switchboard_test_support::RedisServer;
use tokio::time::timeout;

use contract::{Cluster, Options, WAIT, next_message};

/// A prefix no other test uses, so tests can share an external server.
fn unique_prefix() -> String {
    format!(
        "t{:x}:",
        std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::time::SystemTime::now(),
        )
    )
}

struct Redis {
    server: RedisServer,
    config: RedisBackplaneConfig,
}

impl Cluster for Redis {
    type B = RedisBackplane;

    async fn start(options: Options) -> Self {
        let mut cluster = Self {
            server: RedisServer::start(),
            config: RedisBackplaneConfig::default()
                .prefix(unique_prefix())
                .history_size(options.history_size)
                .presence_ttl(options.presence_ttl)
                .presence_sweep(options.presence_sweep)
                .event_capacity(options.event_capacity)
                .dedupe_window(options.dedupe_window),
        };
        cluster.config = options
            .history_overrides
            .into_iter()
            .fold(cluster.config, RedisBackplaneConfig::history_override);
        cluster
    }

    async fn instance(&mut self) -> RedisBackplane {
        let bp = RedisBackplane::connect(self.server.url(), self.config.clone())
            .await
            .unwrap();
        up(&bp).await;
        bp
    }
}

contract_tests!(Redis);

async fn up(bp: &RedisBackplane) {
    let mut health = bp.health();
    timeout(WAIT, health.wait_for(|h| h.state == HealthState::Up))
        .await
        .expect("the backplane did not come up")
        .unwrap();
}

/// How many Redis subscribers `channel` has (`PUBSUB NUMSUB`).
fn redis_subscribers(server: &RedisServer, prefix: &str, channel: &str) -> String {
    let name = format!("{prefix}{{{channel}}}:pubsub");
    let reply = server.command(&["PUBSUB", "NUMSUB", &name]).unwrap();
    reply.rsplit(':').next().unwrap().trim().to_owned()
}

#[tokio::test]
async fn a_channels_history_in_redis_keeps_within_its_byte_cap_oldest_first() {
    let server = RedisServer::start();
    let config = RedisBackplaneConfig::default()
        .prefix(unique_prefix())
        .history_size(100)
        .history_max_channel_bytes(10_000);
    let bp = RedisBackplane::connect(server.url(), config).await.unwrap();
    up(&bp).await;
    let mut epoch = None;
    for n in 1..=30u8 {
        let published = bp
            .publish("big", bytes::Bytes::from(vec![n; 1000]))
            .await
            .unwrap();
        epoch = Some(published.epoch);
    }
    let epoch = epoch.unwrap();
    // 30 KB published, 10,000 bytes kept: the newest ten, recoverable exactly; anything
    // older answers recovered: false, never a partial list.
    let recent = bp.since("big", 20, epoch.as_str()).await.unwrap();
    let offsets: Vec<u64> = recent.messages.unwrap().iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (21..=30).collect::<Vec<_>>());
    assert_eq!(
        bp.since("big", 19, epoch.as_str()).await.unwrap().messages,
        None
    );

    // A message larger than the cap is still kept (the newest always is), alone.
    bp.publish("big", bytes::Bytes::from(vec![0; 20_000]))
        .await
        .unwrap();
    let last = bp.since("big", 30, epoch.as_str()).await.unwrap();
    assert_eq!(last.messages.map(|m| m.len()), Some(1));
    assert_eq!(
        bp.since("big", 29, epoch.as_str()).await.unwrap().messages,
        None
    );
}

#[tokio::test]
async fn one_redis_subscription_per_channel_however_many_local_subscribers() {
    let mut cluster = Redis::start(Options::default()).await;
    let prefix = cluster.config.prefix.clone();
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    for _ in 0..3 {
        a.subscribe("room").await.unwrap();
    }
    b.subscribe("room").await.unwrap();
    assert_eq!(redis_subscribers(&cluster.server, &prefix, "room"), "2");
    a.unsubscribe("room").await.unwrap();
    a.unsubscribe("room").await.unwrap();
    assert_eq!(redis_subscribers(&cluster.server, &prefix, "room"), "2");
    a.unsubscribe("room").await.unwrap();
    assert_eq!(redis_subscribers(&cluster.server, &prefix, "room"), "1");
}

#[tokio::test]
async fn a_thousand_channels_subscribed_twice_and_released_twice_leave_no_redis_subscription() {
    let mut cluster = Redis::start(Options::default()).await;
    let prefix = cluster.config.prefix.clone();
    let a = cluster.instance().await;
    let pattern = format!("{prefix}{{*");
    for i in 0..1000 {
        a.subscribe(&format!("ch:{i}")).await.unwrap();
        a.subscribe(&format!("ch:{i}")).await.unwrap();
    }
    let reply = cluster.server.command(&["PUBSUB", "NUMPAT"]).unwrap();
    assert_eq!(reply, ":0\r\n", "no pattern subscriptions");
    let count = |server: &RedisServer| {
        let reply = server
            .command(&[
                "EVAL",
                "return #redis.call('PUBSUB', 'CHANNELS', ARGV[1])",
                "0",
                &pattern,
            ])
            .unwrap();
        reply.trim().trim_start_matches(':').to_owned()
    };
    assert_eq!(count(&cluster.server), "1000");
    for i in 0..1000 {
        a.unsubscribe(&format!("ch:{i}")).await.unwrap();
    }
    assert_eq!(count(&cluster.server), "1000");
    for i in 0..1000 {
        a.unsubscribe(&format!("ch:{i}")).await.unwrap();
    }
    assert_eq!(count(&cluster.server), "0");
}

#[tokio::test]
async fn keys_carry_the_prefix_and_the_channel_as_hash_tag() {
    let mut cluster = Redis::start(Options::default()).await;
    let prefix = cluster.config.prefix.clone();
    let a = cluster.instance().await;
    a.publish("room:1", "x".into()).await.unwrap();
    a.presence_set("room:1", "c1", "m".into()).await.unwrap();
    for suffix in ["meta", "history", "presence", "presence:expiry"] {
        let key = format!("{prefix}{{room:1}}:{suffix}");
        let reply = cluster.server.command(&["EXISTS", &key]).unwrap();
        assert_eq!(reply, ":1\r\n", "{key} exists");
    }
    let history = format!("{prefix}{{room:1}}:history");
    let reply = cluster
        .server
        .command(&["XRANGE", &history, "-", "+"])
        .unwrap();
    assert!(
        reply.contains("1-0"),
        "entries are keyed by offset: {reply}"
    );
}

#[tokio::test]
async fn a_url_with_a_password_authenticates_and_the_password_never_prints() {
    let server = RedisServer::spawn();
    server
        .command(&["CONFIG", "SET", "requirepass", "s3cret"])
        .unwrap();
    let config = RedisBackplaneConfig::default().prefix(unique_prefix());
    let url = format!("redis://:s3cret@127.0.0.1:{}", server.port());
    let bp = RedisBackplane::connect(&url, config.clone()).await.unwrap();
    up(&bp).await;
    assert!(!format!("{bp:?}").contains("s3cret"));

    let wrong = format!("redis://:nope@127.0.0.1:{}", server.port());
    let denied = RedisBackplane::connect(&wrong, config).await.unwrap();
    let health = denied.health().borrow().clone();
    assert_eq!(health.state, HealthState::Degraded);
    assert!(!health.detail.is_empty());
    assert!(!health.detail.contains("nope"));
}

#[tokio::test]
async fn an_invalid_url_or_config_is_refused_at_connect() {
    let err = RedisBackplane::connect("http://example.com", RedisBackplaneConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackplaneError::Config(_)), "{err}");
    let err = RedisBackplane::connect(
        "redis://127.0.0.1:1",
        RedisBackplaneConfig::default().probe_interval(Duration::ZERO),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, BackplaneError::Config(_)), "{err}");
}

#[cfg(feature = "redis-tls")]
#[tokio::test]
async fn rediss_urls_are_accepted_with_the_tls_feature() {
    // Nothing listens there: it starts degraded, which is all a URL check can show.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisBackplaneConfig::default()
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200));
    let bp = RedisBackplane::connect(&format!("rediss://127.0.0.1:{port}"), config)
        .await
        .unwrap();
    assert_eq!(bp.health().borrow().state, HealthState::Degraded);
}

#[tokio::test]
async fn an_unreachable_redis_starts_degraded_and_serves_this_instance_locally() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisBackplaneConfig::default()
        .connect_timeout(Duration::from_millis(200))
        .command_timeout(Duration::from_millis(200));
    let bp = RedisBackplane::connect(&format!("redis://127.0.0.1:{port}"), config)
        .await
        .unwrap();
    let health = bp.health().borrow().clone();
    assert_eq!(health.state, HealthState::Degraded);
    assert!(health.detail.starts_with("redis:"), "{}", health.detail);

    let mut rx = bp.events();
    bp.subscribe("room").await.unwrap();
    let published = bp.publish("room", "local".into()).await.unwrap();
    assert_eq!((published.offset, published.scope), (1, Scope::LocalOnly));
    assert_eq!(next_message(&mut rx).await.data, "local");
    assert_eq!(bp.position("room").await.unwrap().epoch, published.epoch);
    let recovered = bp.since("room", 0, published.epoch.as_str()).await.unwrap();
    assert_eq!(recovered.messages.unwrap().len(), 1);
    // A channel never seen here still answers, under a local epoch of its own, so a
    // subscribe during the outage works (and is reset when Redis returns).
    let elsewhere = bp.position("elsewhere").await.unwrap();
    assert_eq!(elsewhere.offset, 0);
    assert_ne!(elsewhere.epoch, published.epoch);
    assert!(matches!(
        bp.presence_list("room").await,
        Err(BackplaneError::Unavailable(_))
    ));
    assert_eq!(bp.stats().degraded_publishes, 1);
    // A survey asks this instance alone, and says that others may exist.
    let survey = bp
        .survey("who".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((survey.asked, survey.scope), (1, Scope::LocalOnly));
    assert!(!survey.is_complete());
}

#[tokio::test]
async fn instances_that_shut_down_are_no_longer_surveyed() {
    let mut cluster = Redis::start(Options::default()).await;
    let a = cluster.instance().await;
    let b = cluster.instance().await;
    let c = cluster.instance().await;
    assert_eq!(a.survey("q".into(), WAIT).await.unwrap().asked, 3);
    b.shutdown().await;
    c.shutdown().await;
    let survey = tokio::time::timeout(WAIT, async {
        loop {
            let survey = a.survey("q".into(), WAIT).await.unwrap();
            if survey.asked == 1 {
                return survey;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("instances that shut down stop being asked");
    assert!(survey.is_complete());
}

#[tokio::test]
async fn shutdown_stops_every_task_ends_events_and_turns_health_down() {
    let server = RedisServer::start();
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let config = RedisBackplaneConfig::default().prefix(unique_prefix());
    let bp = RedisBackplane::connect(server.url(), config).await.unwrap();
    up(&bp).await;
    let mut rx = bp.events();
    bp.subscribe("room").await.unwrap();
    bp.shutdown().await;
    assert_eq!(timeout(WAIT, rx.recv()).await.unwrap(), None);
    assert_eq!(bp.health().borrow().state, HealthState::Down);
    assert!(matches!(
        bp.publish("room", "x".into()).await,
        Err(BackplaneError::Closed)
    ));
    // The connection's own driver task ends once it sees its handles gone.
    timeout(WAIT, async {
        while metrics.num_alive_tasks() > before {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("every task ended");
}

#[tokio::test]
async fn dropping_the_last_handle_closes_the_redis_connection_and_its_subscriptions() {
    let mut cluster = Redis::start(Options::default()).await;
    let prefix = cluster.config.prefix.clone();
    let control = format!("{prefix}control");
    let listening = |server: &RedisServer| {
        let reply = server.command(&["PUBSUB", "NUMSUB", &control]).unwrap();
        reply
            .lines()
            .last()
            .unwrap_or_default()
            .trim_start_matches(':')
            .to_owned()
    };
    let a = cluster.instance().await;
    a.subscribe("room").await.unwrap();
    assert_eq!(listening(&cluster.server), "1");
    drop(a);
    tokio::time::timeout(WAIT, async {
        while listening(&cluster.server) != "0" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a dropped backplane leaves Redis");
}

#[tokio::test]
async fn redis_never_publishes_in_place_and_publish_now_leaves_the_channel_untouched() {
    let mut cluster = Redis::start(Options::default()).await;
    let bp = cluster.instance().await;
    up(&bp).await;
    assert!(
        bp.publish_now("room", &"not now".into(), PublishOptions::default())
            .is_none(),
        "a publish to Redis waits for a round trip"
    );
    // Nothing was published: the first real publish gets the first offset.
    let published = bp.publish("room", "now".into()).await.unwrap();
    assert_eq!(published.offset, 1);
}

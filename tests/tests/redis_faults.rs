//! Redis faults under a running publish stream, with two reference servers as real
//! processes sharing one real redis-server: Redis killed and restarted on its port, Redis
//! frozen (SIGSTOP) and continued, Redis flushed, and one instance cut off from Redis (a
//! partition, through a proxy) while the other stays connected.
//!
//! Each test checks what an operator and a client depend on: the servers never crash and
//! keep answering `/health`; local delivery (publisher and subscriber on one instance)
//! goes on during the outage; `/health` says `degraded` and `/ready` 503 during it and
//! `ok`/200 after, without restarting anything; cross-instance delivery comes back by
//! itself; and, reconciled message by message, nothing is silently missing: every
//! acknowledged publish reached every subscriber, or that subscriber was told continuity
//! was lost (`recovered: false` when it re-subscribed with `since`) — see
//! `tests::Reconciliation` for the exact rule.

use std::time::Duration;

use switchboard_test_support::RedisServer;
use tests::{
    Balancer, PublishLog, PublishStream, Reconciliation, RecoveringSubscriber, ServerProcess,
    SubscriberLog, e2e_binary,
};

const CHANNEL: &str = "ops:faults";
/// A publish every 20 ms from each instance.
const INTERVAL: Duration = Duration::from_millis(20);
/// Degraded is reported within three probe intervals (200 ms here) plus the command
/// timeout; this leaves room for a loaded CI machine.
const DETECT: Duration = Duration::from_secs(10);
/// Back within the backplane's reconnect backoff cap (5 s) plus resync; with room.
const RECOVER: Duration = Duration::from_secs(25);
/// One expected delivery.
const DELIVER: Duration = Duration::from_secs(10);

/// Two instances over one Redis, a publisher and a subscriber on each.
struct Cluster {
    redis: RedisServer,
    a: ServerProcess,
    b: ServerProcess,
    pub_a: PublishStream,
    pub_b: PublishStream,
    sub_a: RecoveringSubscriber,
    sub_b: RecoveringSubscriber,
}

impl Cluster {
    /// Starts everything and waits until each subscriber has messages from both
    /// instances.
    async fn start() -> Self {
        // Fault tests kill and pause Redis: always a server of their own.
        let redis = RedisServer::spawn();
        let url = redis.url().to_owned();
        Self::start_with(redis, &url).await
    }

    /// Like [`Cluster::start`], with instance B reaching Redis at `b_redis_url` (through a
    /// proxy that can partition it).
    async fn start_with(redis: RedisServer, b_redis_url: &str) -> Self {
        let env = |url| {
            [
                ("REDIS_URL", url),
                ("REDIS_PROBE_INTERVAL_MS", "200"),
                ("REDIS_TIMEOUT_MS", "300"),
            ]
        };
        let a = ServerProcess::start(e2e_binary!(), "A", &env(redis.url())).await;
        let b = ServerProcess::start(e2e_binary!(), "B", &env(b_redis_url)).await;
        a.wait_ok(RECOVER).await;
        b.wait_ok(RECOVER).await;
        let sub_a = RecoveringSubscriber::start("sub@A", &a.ws_url(), CHANNEL).await;
        let sub_b = RecoveringSubscriber::start("sub@B", &b.ws_url(), CHANNEL).await;
        let pub_a = PublishStream::start("PA", &a.ws_url(), CHANNEL, INTERVAL).await;
        let pub_b = PublishStream::start("PB", &b.ws_url(), CHANNEL, INTERVAL).await;
        let cluster = Self {
            redis,
            a,
            b,
            pub_a,
            pub_b,
            sub_a,
            sub_b,
        };
        for (sub, publisher) in [(&cluster.sub_a, "PB"), (&cluster.sub_b, "PA")] {
            sub.log().wait_for_seq_after(publisher, 5, RECOVER).await;
        }
        cluster
    }

    /// Each subscriber gets the next ten messages its own instance's publisher sends (the
    /// stream goes on through the outage).
    async fn local_delivery_continues(&self) {
        let (sent_a, sent_b) = (self.pub_a.sent(), self.pub_b.sent());
        self.sub_a
            .log()
            .wait_for_seq_after("PA", sent_a + 10, DELIVER)
            .await;
        self.sub_b
            .log()
            .wait_for_seq_after("PB", sent_b + 10, DELIVER)
            .await;
    }

    /// Each subscriber gets a message the *other* instance's publisher sends from now on.
    async fn cross_instance_delivery_resumes(&self) {
        let (sent_a, sent_b) = (self.pub_a.sent(), self.pub_b.sent());
        self.sub_b
            .log()
            .wait_for_seq_after("PA", sent_a, RECOVER)
            .await;
        self.sub_a
            .log()
            .wait_for_seq_after("PB", sent_b, RECOVER)
            .await;
    }

    async fn both_degraded(&self) {
        self.a.wait_degraded(DETECT).await;
        self.b.wait_degraded(DETECT).await;
    }

    async fn both_ok(&self) {
        self.a.wait_ok(RECOVER).await;
        self.b.wait_ok(RECOVER).await;
    }

    /// Stops the stream, lets the subscribers settle, checks both servers are alive and
    /// healthy, and reconciles every subscriber with every publish.
    async fn finish(mut self) {
        let logs: Vec<PublishLog> = vec![self.pub_a.stop().await, self.pub_b.stop().await];
        let last: Vec<(&str, Option<u64>)> = vec![
            ("PA", logs[0].last_acked_seq()),
            ("PB", logs[1].last_acked_seq()),
        ];
        // Settled when each subscriber has the last acknowledged message of each
        // publisher (earlier ones the checker accounts for); if that never happens the
        // reconciliation below says why.
        for sub in [&self.sub_a, &self.sub_b] {
            let settled = sub
                .log()
                .try_wait_until(DELIVER, |events| {
                    last.iter().all(|(p, seq)| {
                        seq.is_none_or(|seq| SubscriberLog::has_seq_at_least(events, p, seq))
                    })
                })
                .await;
            if !settled {
                eprintln!(
                    "{}: did not get the last message of each publisher",
                    sub.log().name()
                );
            }
        }
        let subscribers = [self.sub_a.stop().await, self.sub_b.stop().await];

        for server in [&mut self.a, &mut self.b] {
            assert!(
                server.is_running(),
                "server {} exited: {:?}",
                server.name(),
                server.exit_status()
            );
        }
        self.both_ok().await;

        let reconciliation = Reconciliation::new(&[&logs[0], &logs[1]]);
        let reports: Vec<_> = subscribers
            .iter()
            .map(|s| reconciliation.check(s))
            .collect();
        for report in &reports {
            eprintln!("{report}");
        }
        for report in &reports {
            assert!(report.required > 0, "nothing was checked: {report}");
            report.assert_clean();
        }
        drop(self.redis);
    }

    /// Whether each subscriber was told (`recovered: false`) that continuity was lost.
    async fn both_told_recovered_false(&self) {
        for sub in [&self.sub_a, &self.sub_b] {
            sub.log()
                .wait_until("a recovered: false", RECOVER, |events| {
                    events.iter().skip(1).any(|e| {
                        matches!(
                            e,
                            tests::SubscriberEvent::Subscribed {
                                recovered: false,
                                ..
                            }
                        )
                    })
                })
                .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_stream_and_restarted_loses_nothing_silently() {
    let mut cluster = Cluster::start().await;

    cluster.redis.kill().unwrap();
    cluster.both_degraded().await;
    cluster.local_delivery_continues().await;
    // Still an outage: the deliveries above happened without Redis.
    assert!(!cluster.redis.is_up());

    cluster.redis.restart().unwrap();
    cluster.both_ok().await;
    cluster.cross_instance_delivery_resumes().await;
    // Redis restarted empty: its history is gone, and every subscriber must be told.
    cluster.both_told_recovered_false().await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_by_sigstop_then_continued_loses_nothing_silently() {
    let cluster = Cluster::start().await;

    cluster.redis.pause().unwrap();
    cluster.both_degraded().await;
    cluster.local_delivery_continues().await;
    // Still frozen: the deliveries above happened without Redis.
    assert!(!cluster.redis.is_up());

    cluster.redis.resume().unwrap();
    cluster.both_ok().await;
    cluster.cross_instance_delivery_resumes().await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed_mid_stream_is_reported_as_lost_history_not_silence() {
    let cluster = Cluster::start().await;

    let reply = cluster.redis.command(&["FLUSHALL"]).unwrap();
    assert!(reply.starts_with("+OK"), "{reply}");
    // Not an outage: Redis answers throughout, so the servers stay ready. The flushed
    // history is a new epoch, which every subscriber must be told about.
    cluster.both_told_recovered_false().await;
    let (_, ready_a) = cluster.a.ready().await;
    let (_, ready_b) = cluster.b.ready().await;
    assert_eq!(
        (ready_a["status"].as_str(), ready_b["status"].as_str()),
        (Some("ready"), Some("ready"))
    );
    cluster.local_delivery_continues().await;
    cluster.cross_instance_delivery_resumes().await;
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_cut_off_from_redis_loses_nothing_silently() {
    // Instance B reaches Redis through a proxy that can partition it; A stays connected.
    let redis = RedisServer::spawn();
    let proxy = Balancer::start(vec![redis.addr()]).await;
    let cluster = Cluster::start_with(redis, &format!("redis://{}", proxy.addr())).await;

    proxy.partition();
    cluster.b.wait_degraded(DETECT).await;
    let (ready_a, _) = cluster.a.ready().await;
    assert_eq!(ready_a, 200, "A still reaches Redis");
    // Both sides go on publishing while cut off from each other.
    cluster.local_delivery_continues().await;

    proxy.set_backends(vec![cluster.redis.addr()]);
    cluster.both_ok().await;
    cluster.cross_instance_delivery_resumes().await;
    cluster.finish().await;
}

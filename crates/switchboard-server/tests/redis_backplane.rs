//! Two servers sharing one Redis: one set of channels, and health that reports Redis.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::{Binary, connect, get, next_of_type, send_json, start, subscribe, test_config};
use switchboard_server::Secret;
use switchboard_test_support::RedisServer;

#[tokio::test]
async fn two_servers_sharing_redis_deliver_each_others_messages() {
    let redis = RedisServer::start();
    let config = || test_config().redis_url(Some(Secret::new(redis.url())));
    let first = start(config()).await;
    let second = start(config()).await;
    assert_eq!(first.backplane_kind(), "redis");

    let health = get(first.local_addr(), "/health").await.json();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["backplane"]["kind"], "redis");
    assert_eq!(health["backplane"]["state"], "up");
    assert_eq!(get(second.local_addr(), "/ready").await.status, 200);

    let (mut alice, _) = connect(&first.ws_url()).await;
    let (mut bob, _) = connect(&second.ws_url()).await;
    subscribe(&mut alice, "room:shared").await;
    subscribe(&mut bob, "room:shared").await;
    send_json(
        &mut bob,
        &json!({"type": "chat.message", "channel": "room:shared", "payload": {"text": "hi"}, "id": "b1"}),
    )
    .await;
    let received = next_of_type(&mut alice, "chat.message").await;
    assert_eq!(received["payload"]["text"], "hi");
    assert_eq!(received["offset"], 1);
}

#[tokio::test]
async fn the_binary_logs_that_the_redis_backplane_is_connected() {
    let redis = RedisServer::start();
    let mut binary = Binary::spawn(&[("PORT", "0"), ("REDIS_URL", redis.url())], &[]);
    binary.wait_for_line("Redis backplane connected").await;
    binary.listening().await;
}

#[tokio::test]
async fn an_unreachable_redis_starts_degraded_and_ready_answers_503() {
    // A port nothing listens on: taken from a listener that is then closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = start(
        test_config()
            .redis_url(Some(format!("redis://127.0.0.1:{port}")))
            .redis_timeout(std::time::Duration::from_millis(100)),
    )
    .await;
    let health = get(server.local_addr(), "/health").await;
    assert_eq!(health.status, 200, "health answers while serving");
    let health = health.json();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["backplane"]["kind"], "redis");
    assert_ne!(health["backplane"]["state"], "up");
    assert!(!health["backplane"]["detail"].as_str().unwrap().is_empty());
    let ready = get(server.local_addr(), "/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "degraded");
}

/// How long an outage may take to be reported: two missed probes (200 ms apart) plus the
/// command timeout, with room for a loaded machine.
const DETECT: Duration = Duration::from_secs(10);
/// How long recovery may take: the backplane's reconnect backoff (at most 5 s) and its
/// resync, with room.
const RECOVER: Duration = Duration::from_secs(25);

/// The `websocket_backplane_state` series in `/metrics/prometheus`, by state.
fn backplane_states(openmetrics: &str) -> BTreeMap<String, String> {
    openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("websocket_backplane_state{state=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(state, value)| (state.to_owned(), value.to_owned()))
        .collect()
}

/// The `websocket_backplane_degradations_total` series, by reason, read as numbers.
fn degradations(openmetrics: &str) -> BTreeMap<String, u64> {
    openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("websocket_backplane_degradations_total{reason=\""))
        .filter_map(|rest| rest.split_once("\"} "))
        .map(|(reason, value)| (reason.to_owned(), value.trim().parse().unwrap()))
        .collect()
}

async fn degradations_now(addr: SocketAddr) -> BTreeMap<String, u64> {
    degradations(&get(addr, "/metrics/prometheus").await.text())
}

/// Polls `/metrics/prometheus` until the backplane state gauge reports `state` (1 for it,
/// 0 for the others), at most `within`.
async fn wait_for_backplane_state(addr: SocketAddr, state: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = BTreeMap::new();
    while tokio::time::Instant::now() < deadline {
        let metrics = get(addr, "/metrics/prometheus").await;
        assert_eq!(metrics.status, 200);
        last = backplane_states(&metrics.text());
        let expected = ["up", "degraded", "down"]
            .into_iter()
            .map(|s| (s.to_owned(), if s == state { "1" } else { "0" }.to_owned()))
            .collect::<BTreeMap<_, _>>();
        if last == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("websocket_backplane_state did not report {state:?} within {within:?}: {last:?}");
}

#[tokio::test]
async fn the_backplane_state_metric_reports_a_redis_outage_and_the_recovery() {
    // The test kills Redis: a server of its own.
    let mut redis = RedisServer::spawn();
    let mut binary = Binary::spawn(
        &[
            ("PORT", "0"),
            ("REDIS_URL", redis.url()),
            ("REDIS_PROBE_INTERVAL_MS", "200"),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
        &[],
    );
    binary.wait_for_line("Redis backplane connected").await;
    let addr = binary.listening().await;
    wait_for_backplane_state(addr, "up", DETECT).await;
    assert_eq!(get(addr, "/health").await.json()["status"], "ok");
    let before = degradations_now(addr).await;
    assert_eq!(
        before.values().sum::<u64>(),
        0,
        "connecting at start is not a degradation: {before:?}"
    );

    redis.kill().unwrap();
    wait_for_backplane_state(addr, "degraded", DETECT).await;
    let counted = degradations_now(addr).await;
    assert_eq!(
        counted.values().sum::<u64>(),
        1,
        "one outage, counted once with its cause: {counted:?}"
    );
    assert_eq!(
        counted.get("connection_lost"),
        Some(&1),
        "a killed Redis is a lost connection: {counted:?}"
    );
    let health = get(addr, "/health").await;
    assert_eq!(health.status, 200, "health answers while degraded");
    let health = health.json();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["backplane"]["state"], "degraded", "{health}");
    let ready = get(addr, "/ready").await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "degraded");

    redis.restart().unwrap();
    wait_for_backplane_state(addr, "up", RECOVER).await;
    let health = get(addr, "/health").await.json();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["backplane"]["state"], "up", "{health}");
    assert_eq!(get(addr, "/ready").await.status, 200);
    assert_eq!(
        degradations_now(addr).await,
        counted,
        "the recovery counts nothing"
    );
}

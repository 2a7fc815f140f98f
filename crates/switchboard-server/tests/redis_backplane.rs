//! Two servers sharing one Redis: one set of channels, and health that reports Redis.

mod support;

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

//! Two hubs over one real Redis: one order, recovery and presence across instances.

mod support;

use std::time::Duration;

use support::Client;
use switchboard_backplane::{RedisBackplane, RedisBackplaneConfig};
use switchboard_hub::{Hub, Identity};
use switchboard_test_support::RedisServer;

async fn instance(redis: &RedisServer) -> Hub<RedisBackplane> {
    let backplane = RedisBackplane::connect(redis.url(), RedisBackplaneConfig::default())
        .await
        .expect("redis backplane");
    let mut health = switchboard_backplane::Backplane::health(&backplane);
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| h.state == switchboard_backplane::HealthState::Up),
    )
    .await
    .expect("backplane up within 10 s")
    .expect("health watch open");
    Hub::new(backplane)
}

#[tokio::test]
async fn two_hubs_over_redis_deliver_in_one_order_and_recover_across_instances() {
    let redis = RedisServer::start();
    let hub_a = instance(&redis).await;
    let hub_b = instance(&redis).await;
    let mut a = Client::connect(&hub_a, Identity::anonymous());
    let mut b = Client::connect(&hub_b, Identity::anonymous());
    let epoch = a.subscribe("orders").await["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    b.subscribe("orders").await;

    for i in 0..10 {
        let publisher = if i % 2 == 0 { &mut a } else { &mut b };
        publisher
            .send(&format!(
                r#"{{"type":"t","channel":"orders","payload":{i},"id":"o{i}"}}"#
            ))
            .await;
    }
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    while seen_a.len() < 10 {
        let m = a.next().await;
        if m["type"] == "t" {
            seen_a.push((
                m["offset"].as_u64().unwrap(),
                m["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    while seen_b.len() < 10 {
        let m = b.next().await;
        if m["type"] == "t" {
            seen_b.push((
                m["offset"].as_u64().unwrap(),
                m["id"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(seen_a, seen_b, "instances saw different orders");
    assert_eq!(
        seen_a.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );

    // A client of instance A that saw up to offset 4 recovers the rest from instance B.
    let mut back = Client::connect(&hub_b, Identity::anonymous());
    back.send(&format!(
        r#"{{"type":"subscribe","channel":"orders","since":{{"offset":4,"epoch":"{epoch}"}}}}"#
    ))
    .await;
    let sub = back.next().await;
    assert_eq!(sub["recovered"], true, "{sub}");
    for expected in 5..=10 {
        assert_eq!(back.next().await["offset"], expected);
    }
}

#[tokio::test]
async fn presence_is_visible_across_instances() {
    let redis = RedisServer::start();
    let hub_a = instance(&redis).await;
    let hub_b = instance(&redis).await;
    let mut a = Client::connect(&hub_a, Identity::user("alice"));
    let mut b = Client::connect(&hub_b, Identity::user("bob"));
    a.subscribe("room").await;
    b.subscribe("room").await;
    a.send(r#"{"type":"presence-update","channel":"room","status":"online"}"#)
        .await;
    let join = b.next_of("presence-update").await;
    assert_eq!(
        (join["action"].as_str(), join["member"]["userId"].as_str()),
        (Some("join"), Some("alice"))
    );
    b.send(r#"{"type":"presence","channel":"room","id":"q"}"#)
        .await;
    let list = b.next_of("presence").await;
    assert_eq!(list["members"][0]["userId"], "alice");
    a.conn
        .disconnect(switchboard_hub::DisconnectReason::ClientClosed)
        .await;
    assert_eq!(b.next_of("presence-update").await["action"], "leave");
}

#[tokio::test]
async fn with_redis_unreachable_publishes_stay_local_and_presence_queries_are_unavailable() {
    // A port nothing listens on: the backplane starts degraded and keeps retrying.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let backplane = RedisBackplane::connect(
        &format!("redis://127.0.0.1:{port}"),
        RedisBackplaneConfig::default(),
    )
    .await
    .expect("an unreachable Redis is not a configuration error");
    let hub = Hub::new(backplane);
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.subscribe("room").await;

    c.send(r#"{"type":"t","channel":"room","payload":"local","id":"m"}"#)
        .await;
    // The ack and the sender's own copy may come in either order (docs/protocol.md).
    let frames = [c.next().await, c.next().await];
    assert!(
        frames.iter().any(|f| f["type"] == "ack" && f["id"] == "m"),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "t" && f["payload"] == "local"),
        "{frames:?}"
    );

    c.send(r#"{"type":"presence","channel":"room","id":"q"}"#)
        .await;
    let err = c.next_of("error").await;
    assert_eq!(err["code"], "unavailable");
    assert_eq!(err["id"], "q");
}

#[tokio::test]
async fn through_redis_a_publish_leaves_its_round_trip_to_await() {
    let redis = RedisServer::start();
    let hub = instance(&redis).await;
    let mut publisher = Client::connect(&hub, Identity::anonymous());
    let frame = switchboard_protocol::ClientFrame::decode(
        r#"{"type":"note","channel":"orders","payload":1,"id":"p-1"}"#,
    )
    .unwrap();
    let rest = publisher
        .conn
        .handle_now(frame)
        .expect("a publish to Redis waits for its answer");
    rest.await;
    let ack = publisher.next().await;
    assert_eq!(
        (ack["type"].as_str(), ack["offset"].as_u64()),
        (Some("ack"), Some(1))
    );
}

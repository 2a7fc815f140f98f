//! Run with `REDIS_URL=redis://127.0.0.1:6379 cargo run --example multi_instance`
//! (a Redis 6+ must be running there, e.g. `redis-server --port 6379`; the URL defaults to
//! that one).
//!
//! Two servers sharing one Redis, as two instances behind a load balancer. A message
//! published on one reaches subscribers on the other, in one order; and a client that drops
//! off one instance and reconnects to the *other* recovers exactly what it missed, because
//! history lives in Redis. No sticky sessions needed.
#![allow(clippy::print_stdout, reason = "an example prints what happens")]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchboard_backplane::{Backplane as _, HealthState};
use switchboard_server::{Server, ServerConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection is open")
            .expect("a valid frame");
        if let Message::Text(text) = message {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            if frame["type"] == kind {
                return frame;
            }
        }
    }
}

/// Connects to `url` and subscribes to `orders:eu`, recovering from `since` if given.
async fn subscribe(url: &str, since: Option<Value>) -> (Ws, Value) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    next_of(&mut ws, "welcome").await;
    let mut frame = json!({"type": "subscribe", "channel": "orders:eu", "id": "s1"});
    if let Some(since) = since {
        frame["since"] = since;
    }
    send(&mut ws, frame).await;
    let subscribed = next_of(&mut ws, "subscribed").await;
    (ws, subscribed)
}

async fn publish(ws: &mut Ws, order: u32) {
    send(
        ws,
        json!({"type": "order.created", "channel": "orders:eu", "id": format!("o{order}"), "payload": {"order": order}}),
    )
    .await;
    next_of(ws, "ack").await;
}

#[tokio::main]
async fn main() {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let config = ServerConfig::default()
        .port(0)
        .redis_url(Some(redis.as_str()));
    let first = Server::bind(config.clone())
        .await
        .expect("instance 1 starts");
    let second = Server::bind(config).await.expect("instance 2 starts");
    for (name, server) in [("instance 1", &first), ("instance 2", &second)] {
        let health = server.hub().backplane().health().borrow().clone();
        if health.state != HealthState::Up {
            eprintln!(
                "{name}: Redis at {redis} is not reachable ({}). Start one (redis-server) or set REDIS_URL.",
                health.detail
            );
            std::process::exit(1);
        }
        println!("{name}: {} on Redis", server.ws_url());
    }

    let (mut alice, _) = subscribe(&first.ws_url(), None).await;
    let (mut bob, subscribed) = subscribe(&second.ws_url(), None).await;
    let epoch = subscribed["epoch"].clone();

    publish(&mut alice, 1).await;
    let received = next_of(&mut bob, "order.created").await;
    println!(
        "bob (instance 2) received order {} published on instance 1, offset {}",
        received["payload"]["order"], received["offset"]
    );
    assert_eq!(
        received["payload"]["order"], 1,
        "instance 2 got what instance 1 published"
    );
    let last_seen = received["offset"].clone();

    // Bob's connection drops. Orders keep coming.
    bob.close(None).await.expect("close");
    publish(&mut alice, 2).await;
    publish(&mut alice, 3).await;

    // Bob reconnects, this time to instance 1, and recovers what he missed.
    let (mut bob, subscribed) = subscribe(
        &first.ws_url(),
        Some(json!({"offset": last_seen, "epoch": epoch})),
    )
    .await;
    println!(
        "bob reconnected to instance 1: recovered = {}, channel at offset {}",
        subscribed["recovered"], subscribed["offset"]
    );
    // What this example shows, checked (CI runs every example).
    assert_eq!(
        subscribed["recovered"], true,
        "history in Redis, seen from the other instance"
    );
    for order in [2, 3] {
        let missed = next_of(&mut bob, "order.created").await;
        assert_eq!(
            missed["payload"]["order"], order,
            "what was missed, in order"
        );
        println!(
            "bob recovered order {} (offset {})",
            missed["payload"]["order"], missed["offset"]
        );
    }

    first.shutdown().await;
    second.shutdown().await;
}

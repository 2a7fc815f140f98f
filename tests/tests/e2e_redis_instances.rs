//! Two server instances over one real Redis: clients on different instances talk to each
//! other over real sockets, in one order, and recover across instances.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use switchboard_backplane::{Backplane, HealthState, RedisBackplane, RedisBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_test_support::RedisServer;
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn instance(redis: &RedisServer) -> String {
    let backplane = RedisBackplane::connect(redis.url(), RedisBackplaneConfig::default())
        .await
        .unwrap();
    let mut health = backplane.health();
    tokio::time::timeout(
        Duration::from_secs(10),
        health.wait_for(|h| h.state == HealthState::Up),
    )
    .await
    .expect("backplane up in time")
    .unwrap();
    let transport = Transport::new(
        Hub::new(backplane),
        Authenticator::open(),
        TransportConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move { transport.serve(listener).await });
    url
}

async fn connect(url: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    ws
}

async fn recv(ws: &mut Ws) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

async fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).await.unwrap();
}

#[tokio::test]
async fn clients_on_two_instances_share_one_order_and_recover_across_instances() {
    let redis = RedisServer::start();
    let (one, two) = (instance(&redis).await, instance(&redis).await);
    let mut a = connect(&one).await;
    let mut b = connect(&two).await;
    send(&mut a, r#"{"type":"subscribe","channel":"ops"}"#).await;
    let epoch = recv(&mut a).await["epoch"].as_str().unwrap().to_owned();
    send(&mut b, r#"{"type":"subscribe","channel":"ops"}"#).await;
    recv(&mut b).await;

    for i in 0..6 {
        let ws = if i % 2 == 0 { &mut a } else { &mut b };
        send(
            ws,
            &format!(r#"{{"type":"incident.updated","channel":"ops","payload":{i}}}"#),
        )
        .await;
    }
    let mut order_a = Vec::new();
    let mut order_b = Vec::new();
    for _ in 0..6 {
        let m = recv(&mut a).await;
        order_a.push((m["offset"].as_u64().unwrap(), m["payload"].clone()));
        let m = recv(&mut b).await;
        order_b.push((m["offset"].as_u64().unwrap(), m["payload"].clone()));
    }
    assert_eq!(order_a, order_b);

    // A client that saw offset 2 on instance one recovers the rest from instance two.
    let mut back = connect(&two).await;
    send(
        &mut back,
        &format!(
            r#"{{"type":"subscribe","channel":"ops","since":{{"offset":2,"epoch":"{epoch}"}}}}"#
        ),
    )
    .await;
    let sub = recv(&mut back).await;
    assert_eq!(sub["recovered"], true, "{sub}");
    let mut replayed = Vec::new();
    for _ in 0..4 {
        replayed.push(recv(&mut back).await["offset"].as_u64().unwrap());
    }
    assert_eq!(replayed, [3, 4, 5, 6]);
}

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
    instance_with_hub(redis).await.0
}

async fn instance_with_hub(redis: &RedisServer) -> (String, Hub<RedisBackplane>) {
    instance_with(redis, Authenticator::open(), TransportConfig::default()).await
}

async fn instance_with(
    redis: &RedisServer,
    auth: Authenticator,
    config: TransportConfig,
) -> (String, Hub<RedisBackplane>) {
    instance_of(redis, auth, config, switchboard_hub::HubConfig::default()).await
}

/// An instance over `redis` with its own transport and hub configuration.
async fn instance_of(
    redis: &RedisServer,
    auth: Authenticator,
    config: TransportConfig,
    hub_config: switchboard_hub::HubConfig,
) -> (String, Hub<RedisBackplane>) {
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
    let hub = Hub::builder(backplane).config(hub_config).build();
    let transport = Transport::new(hub.clone(), auth, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move { transport.serve(listener).await });
    (url, hub)
}

async fn connect(url: &str) -> Ws {
    connect_with_id(url).await.0
}

/// A connection and its connection id.
async fn connect_with_id(url: &str) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    (ws, welcome["connectionId"].as_str().unwrap().to_owned())
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

/// The next application message (`said`), skipping answers.
async fn said(ws: &mut Ws) -> serde_json::Value {
    loop {
        let frame = recv(ws).await;
        if frame["type"] == "said" {
            return frame;
        }
    }
}

#[tokio::test]
async fn excluded_connections_are_skipped_on_every_instance_and_only_they() {
    let redis = RedisServer::start();
    let ((one, hub_one), two) = (instance_with_hub(&redis).await, instance(&redis).await);
    let (mut a1, _) = connect_with_id(&one).await;
    let (mut a2, _) = connect_with_id(&one).await;
    let (mut b, b_id) = connect_with_id(&two).await;
    for ws in [&mut a1, &mut a2, &mut b] {
        send(ws, r#"{"type":"subscribe","channel":"room"}"#).await;
        assert_eq!(recv(ws).await["type"], "subscribed");
    }

    // 1: b, on instance two, excludes itself: the ack carries the offset, the others get it.
    send(
        &mut b,
        r#"{"type":"said","channel":"room","payload":1,"id":"b1","excludeSelf":true}"#,
    )
    .await;
    // The ack, and the `excluded` frame the backplane delivers for b's own subscription,
    // in whichever order they come.
    let mut answers = vec![recv(&mut b).await, recv(&mut b).await];
    answers.sort_by_key(|f| f["type"].as_str().unwrap_or("").to_owned());
    assert_eq!(
        answers,
        [
            serde_json::json!({"type": "ack", "id": "b1", "offset": 1}),
            serde_json::json!({"type": "excluded", "channel": "room", "offset": 1}),
        ]
    );
    // 2: server-side code on instance one excludes b (a connection of instance two).
    let receipt = hub_one
        .publish(
            switchboard_hub::ServerMessage::new(
                switchboard_protocol::ChannelName::new("room").unwrap(),
                switchboard_protocol::EventType::new("said").unwrap(),
                switchboard_protocol::Payload::from_value(&serde_json::json!(2)),
            )
            .excluding([b_id.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(receipt.offset, 2);
    // 3: a1 excludes itself, on instance one.
    send(
        &mut a1,
        r#"{"type":"said","channel":"room","payload":3,"id":"a3","excludeSelf":true}"#,
    )
    .await;
    // 4: nobody is excluded.
    send(&mut a2, r#"{"type":"said","channel":"room","payload":4}"#).await;

    let offsets = |messages: Vec<serde_json::Value>| -> Vec<u64> {
        messages
            .iter()
            .map(|m| m["offset"].as_u64().unwrap())
            .collect()
    };
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(said(&mut a1).await);
    }
    assert_eq!(
        offsets(got),
        [1, 2, 4],
        "a1 skips only its own excluded publish"
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(said(&mut a2).await);
    }
    assert_eq!(offsets(got), [1, 2, 3, 4], "a2 is excluded from nothing");
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(said(&mut b).await);
    }
    assert_eq!(
        offsets(got),
        [3, 4],
        "b skips its own publish and the one excluding it"
    );
}

const SECRET: &str = "e2e-secret-which-is-long-enough!";

fn user_url(url: &str, user: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": user, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    format!("{url}?token={token}")
}

#[tokio::test]
async fn a_users_connections_are_counted_across_instances() {
    let redis = RedisServer::start();
    let limited = || {
        (
            Authenticator::jwt(switchboard_transport::TokenVerifier::hs256(SECRET).unwrap()),
            TransportConfig::default().max_connections_per_user(std::num::NonZeroU32::new(1)),
        )
    };
    let (auth, config) = limited();
    let (one, _) = instance_with(&redis, auth, config).await;
    let (auth, config) = limited();
    let (two, _) = instance_with(&redis, auth, config).await;

    let ada = connect(&user_url(&one, "ada")).await;
    // Her second connection, on the other instance, is over her limit of one.
    match tokio_tungstenite::connect_async(user_url(&two, "ada")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        other => panic!("expected 429, got {:?}", other.map(|(_, r)| r.status())),
    }
    let _bob = connect(&user_url(&two, "bob")).await;

    // Her connection ends: the other instance admits her (the lease was given back).
    drop(ada);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if tokio_tungstenite::connect_async(user_url(&two, "ada"))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("admitted once her first connection ended");
}

/// The reason and code of the close frame that ends `ws`.
async fn closed_with(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a close in time")
            .expect("a close frame before the end")
            .unwrap()
        {
            Message::Close(Some(frame)) => return (frame.code.into(), frame.reason.to_string()),
            Message::Close(None) => panic!("a close without a code"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn the_server_side_acts_on_a_users_connections_on_every_instance() {
    let redis = RedisServer::start();
    let jwt = || Authenticator::jwt(switchboard_transport::TokenVerifier::hs256(SECRET).unwrap());
    let (one, hub_one) = instance_with(&redis, jwt(), TransportConfig::default()).await;
    let (two, hub_two) = instance_with(&redis, jwt(), TransportConfig::default()).await;
    let mut ada_one = connect(&user_url(&one, "ada")).await;
    let mut ada_two = connect(&user_url(&two, "ada")).await;
    let mut bob_two = connect(&user_url(&two, "bob")).await;
    let news = switchboard_protocol::ChannelName::new("news").unwrap();

    // Instance one subscribes ada everywhere: her connection on instance two too.
    let subscribed = hub_one.subscribe_user("ada", &news, None).await.unwrap();
    assert_eq!((subscribed.value, subscribed.complete), (2, true));
    for ws in [&mut ada_one, &mut ada_two] {
        let frame = recv(ws).await;
        assert_eq!(
            (&frame["type"], &frame["server"]),
            (&"subscribed".into(), &true.into())
        );
    }
    send(&mut bob_two, r#"{"type":"subscribe","channel":"news"}"#).await;
    assert_eq!(recv(&mut bob_two).await["server"], serde_json::Value::Null);

    // Both instances see the whole cluster: three connections, two users.
    for hub in [&hub_one, &hub_two] {
        let occupancy = hub.occupancy(&news).await.unwrap();
        assert!(occupancy.complete);
        assert_eq!((occupancy.value.connections, occupancy.value.users), (3, 2));
        let channels = hub.channels("ne").await.unwrap();
        assert_eq!(channels.value.len(), 1);
        assert_eq!(
            (
                channels.value[0].channel.as_str(),
                channels.value[0].connections
            ),
            ("news", 3)
        );
    }

    // Instance two unsubscribes her; a publish then reaches bob alone.
    let unsubscribed = hub_two.unsubscribe_user("ada", &news).await.unwrap();
    assert_eq!(unsubscribed.value, 2);
    for ws in [&mut ada_one, &mut ada_two] {
        assert_eq!(
            recv(ws).await,
            serde_json::json!({"type": "unsubscribed", "channel": "news", "reason": "server"})
        );
    }
    send(
        &mut bob_two,
        r#"{"type":"said","channel":"news","payload":1}"#,
    )
    .await;
    assert_eq!(said(&mut bob_two).await["payload"], 1);

    // Instance two disconnects her: her connection on instance one closes too; bob stays.
    let disconnected = hub_two.disconnect_user("ada", 4003, "bye").await.unwrap();
    assert_eq!((disconnected.value, disconnected.complete), (2, true));
    for ws in [&mut ada_one, &mut ada_two] {
        assert_eq!(closed_with(ws).await, (4003, "bye".to_owned()));
    }
    send(&mut bob_two, r#"{"type":"ping","id":"still"}"#).await;
    assert_eq!(recv(&mut bob_two).await["id"], "still");
    let occupancy = hub_one.occupancy(&news).await.unwrap();
    assert_eq!(occupancy.value.connections, 1);
}

/// An instance whose hub reports channel occupancy.
async fn instance_with_occupancy(redis: &RedisServer) -> (String, Hub<RedisBackplane>) {
    instance_of(
        redis,
        Authenticator::open(),
        TransportConfig::default(),
        switchboard_hub::HubConfig::default().occupancy(Some(Duration::from_secs(30))),
    )
    .await
}

#[tokio::test]
async fn a_channel_is_occupied_and_vacated_once_for_the_whole_cluster() {
    use switchboard_hub::HubEvent;
    let redis = RedisServer::start();
    let (one, hub_one) = instance_with_occupancy(&redis).await;
    let (two, hub_two) = instance_with_occupancy(&redis).await;
    let (mut events_one, mut events_two) = (hub_one.events(), hub_two.events());
    // Every occupancy event of both instances, in the order each instance saw them.
    let occupancy = |events: &mut tokio::sync::broadcast::Receiver<HubEvent>| {
        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            match event {
                HubEvent::ChannelOccupied { channel } => seen.push(format!("+{channel}")),
                HubEvent::ChannelVacated { channel } => seen.push(format!("-{channel}")),
                _ => {}
            }
        }
        seen
    };

    let mut a = connect(&one).await;
    send(&mut a, r#"{"type":"subscribe","channel":"room"}"#).await;
    recv(&mut a).await;
    let mut b = connect(&two).await;
    send(&mut b, r#"{"type":"subscribe","channel":"room"}"#).await;
    recv(&mut b).await;
    // Each instance claims the channel on its own task, a Redis round trip after the
    // subscribe: wait until both claims are in (a subscriber that moved between instances
    // faster would show the channel vacated and occupied again, each once).
    tokio::time::timeout(Duration::from_secs(10), async {
        while redis
            .command(&["ZCARD", "switchboard:{room}:group"])
            .unwrap()
            .trim()
            != ":2"
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both instances claim the channel");
    send(&mut a, r#"{"type":"unsubscribe","channel":"room"}"#).await;
    recv(&mut a).await;
    send(&mut b, r#"{"type":"unsubscribe","channel":"room"}"#).await;
    recv(&mut b).await;

    // The trackers talk to Redis on their own task: wait for the vacated report.
    let mut seen = (Vec::new(), Vec::new());
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            seen.0.extend(occupancy(&mut events_one));
            seen.1.extend(occupancy(&mut events_two));
            if seen.0.contains(&"-room".to_owned()) || seen.1.contains(&"-room".to_owned()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the channel is reported vacated");
    assert_eq!(
        seen.0.first().map(String::as_str),
        Some("+room"),
        "instance one saw the first subscriber anywhere"
    );
    // The last leave is whichever reached Redis last (each instance claims and releases on
    // its own task): either instance may report it, and only one does.
    let mut all: Vec<&str> = seen.0.iter().chain(&seen.1).map(String::as_str).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        ["+room", "-room"],
        "one: {:?}, two: {:?}",
        seen.0,
        seen.1
    );
}

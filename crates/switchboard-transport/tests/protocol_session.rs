//! Protocol v1 over a real socket: every client frame and its answer.

mod support;

use serde_json::json;
use support::Server;
use switchboard_transport::{Authenticator, TransportConfig};

#[tokio::test]
async fn welcome_is_the_first_frame() {
    let server = Server::open().await;
    let c = server.connect().await;
    assert_eq!(c.welcome["type"], "welcome");
    assert_eq!(c.welcome["userId"], serde_json::Value::Null);
    assert_eq!(c.welcome["heartbeatMs"], 30000);
    assert!(
        c.welcome["connectionId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(c.welcome["timestamp"].as_u64().is_some());
}

#[tokio::test]
async fn subscribe_publish_ack_and_unsubscribe() {
    let server = Server::open().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    let sub = b.subscribe("tasks:updates").await;
    assert_eq!(sub["recovered"], false);
    assert_eq!(sub["offset"], 0);

    a.send(r#"{"type":"task-status-changed","channel":"tasks:updates","payload":{"id":1},"id":"m1","priority":"high"}"#)
        .await;
    assert_eq!(a.recv().await, json!({"type":"ack","id":"m1","offset":1}));
    let msg = b.recv().await;
    assert_eq!(msg["type"], "task-status-changed");
    assert_eq!(msg["payload"], json!({"id": 1}));
    assert_eq!(msg["priority"], "high");
    assert_eq!(msg["from"]["connectionId"], a.welcome["connectionId"]);

    b.send(r#"{"type":"unsubscribe","channel":"tasks:updates","id":"u1"}"#)
        .await;
    assert_eq!(
        b.recv().await,
        json!({"type":"unsubscribed","channel":"tasks:updates","id":"u1"})
    );
    b.send(r#"{"type":"unsubscribe","channel":"tasks:updates","id":"u2"}"#)
        .await;
    let err = b.recv().await;
    assert_eq!(
        (err["code"].as_str(), err["id"].as_str()),
        (Some("not_subscribed"), Some("u2"))
    );
}

#[tokio::test]
async fn ping_pong_echoes_id_and_timestamp() {
    let server = Server::open().await;
    let mut c = server.connect().await;
    c.send(r#"{"type":"ping","id":"p1","timestamp":1700000000000}"#)
        .await;
    let pong = c.recv().await;
    assert_eq!(pong["type"], "pong");
    assert_eq!(pong["id"], "p1");
    assert_eq!(pong["timestamp"], 1_700_000_000_000_u64);
    assert!(pong["serverTime"].as_u64().unwrap() > 1_700_000_000_000);
}

#[tokio::test]
async fn presence_update_and_presence_list() {
    let server = Server::open().await;
    let mut a = server.connect().await;
    let mut b = server.connect().await;
    a.subscribe("room").await;
    b.subscribe("room").await;
    a.send(
        r#"{"type":"presence-update","channel":"room","status":"online","currentFeature":"chat"}"#,
    )
    .await;
    for c in [&mut a, &mut b] {
        let ev = c.recv_of("presence-update").await;
        assert_eq!(ev["action"], "join");
        assert_eq!(ev["member"]["currentFeature"], "chat");
    }
    b.send(r#"{"type":"presence","channel":"room","id":"q"}"#)
        .await;
    let list = b.recv_of("presence").await;
    assert_eq!(list["id"], "q");
    assert_eq!(list["members"].as_array().unwrap().len(), 1);
    drop(a);
    assert_eq!(b.recv_of("presence-update").await["action"], "leave");
}

#[tokio::test]
async fn bad_requests_carry_the_request_id_and_the_session_continues() {
    let server = Server::open().await;
    let mut c = server.connect().await;
    for (frame, id) in [
        (
            r#"{"type":"subscribe","channel":"bad name","id":"a"}"#,
            Some("a"),
        ),
        (r#"{"type":"ack","id":"b"}"#, Some("b")),
        (r#"not json"#, None),
        (
            r#"{"type":"t","channel":"c","payload":1,"priority":"urgent","id":"d"}"#,
            Some("d"),
        ),
    ] {
        c.send(frame).await;
        let err = c.recv().await;
        assert_eq!(err["type"], "error", "{frame}");
        assert_eq!(err["code"], "bad_request", "{frame}");
        assert_eq!(err["id"].as_str(), id, "{frame}");
    }
    c.send(r#"{"type":"ping","id":"still-alive"}"#).await;
    assert_eq!(c.recv().await["id"], "still-alive");
}

#[tokio::test]
async fn binary_frames_are_unsupported() {
    use futures_util::SinkExt;
    let server = Server::open().await;
    let mut c = server.connect().await;
    c.ws.send(tokio_tungstenite::tungstenite::Message::binary(vec![
        1, 2, 3,
    ]))
    .await
    .unwrap();
    let err = c.recv().await;
    assert_eq!(err["code"], "unsupported");
}

#[tokio::test]
async fn recovery_over_the_socket_is_exact_or_refused() {
    let server = Server::open().await;
    let mut publisher = server.connect().await;
    let mut reader = server.connect().await;
    let sub = reader.subscribe("feed").await;
    let epoch = sub["epoch"].as_str().unwrap().to_owned();
    for i in 1..=3 {
        publisher
            .send(&format!(
                r#"{{"type":"item","channel":"feed","payload":{i},"id":"i{i}"}}"#
            ))
            .await;
        publisher.recv_of("ack").await;
    }
    let first = reader.recv().await;
    drop(reader);

    let mut back = server.connect().await;
    back.send(&format!(
        r#"{{"type":"subscribe","channel":"feed","since":{{"offset":1,"epoch":"{epoch}"}}}}"#
    ))
    .await;
    let sub = back.recv().await;
    assert_eq!(
        (sub["recovered"].as_bool(), sub["offset"].as_u64()),
        (Some(true), Some(3))
    );
    assert_eq!(back.recv().await["id"], "i2");
    assert_eq!(back.recv().await["id"], "i3");

    let mut again = server.connect().await;
    again
        .send(&format!(
            r#"{{"type":"subscribe","channel":"feed","since":{{"offset":0,"epoch":"{epoch}"}}}}"#
        ))
        .await;
    again.recv().await;
    assert_eq!(
        again.recv().await,
        first,
        "a replayed message differs from the original"
    );

    let mut wrong = server.connect().await;
    wrong
        .send(r#"{"type":"subscribe","channel":"feed","since":{"offset":1,"epoch":"other"}}"#)
        .await;
    assert_eq!(wrong.recv().await["recovered"], false);
}

#[tokio::test]
async fn two_servers_over_one_memory_backplane_share_channels() {
    use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
    let shared = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let one = Server::on(
        shared.new_instance(),
        TransportConfig::default(),
        Authenticator::open(),
    )
    .await;
    let two = Server::on(shared, TransportConfig::default(), Authenticator::open()).await;
    let mut a = one.connect().await;
    let mut b = two.connect().await;
    a.subscribe("x").await;
    b.subscribe("x").await;
    b.send(r#"{"type":"t","channel":"x","payload":"from two"}"#)
        .await;
    assert_eq!(a.recv().await["payload"], "from two");
    assert_eq!(b.recv().await["payload"], "from two");
}

#[tokio::test]
async fn redaction_applies_before_anything_leaves_the_server() {
    use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
    use switchboard_hub::{Hub, HubConfig};
    let hub = Hub::builder(MemoryBackplane::new(MemoryBackplaneConfig::default()))
        .config(HubConfig::default().redact_fields(["token"]))
        .build();
    let transport = switchboard_transport::Transport::new(
        hub,
        Authenticator::open(),
        TransportConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = transport.clone();
    tokio::spawn(async move { serving.serve(listener).await });
    let mut c = support::Client::connect(&format!("ws://{addr}/ws")).await;
    c.subscribe("c").await;
    c.send(r#"{"type":"t","channel":"c","payload":{"Token":"secret","keep":1}}"#)
        .await;
    assert_eq!(c.recv().await["payload"], json!({"keep": 1}));
}

#[tokio::test]
async fn frames_after_large_ones_are_read_complete_and_in_order() {
    // A frame larger than one read spans several and is kept on the heap only until it is
    // whole; when frames are sent back to back, the start of the next arrives in the same
    // read as the end of a large one and is kept for the next call. Either way every frame
    // after it is read once, in order, and a WebSocket ping sent next is answered.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = Server::open().await;
    let mut publisher = server.connect().await;
    let mut reader = server.connect().await;
    reader.subscribe("big").await;
    let sizes = [20, 60_000, 126, 600, 60_000, 40, 5_000, 60_000, 3];
    // Each group is written at once; the next is sent after the last group's acks came.
    let groups: [&[usize]; 6] = [&[0], &[1], &[2], &[3, 4, 5], &[6], &[7, 8]];
    let mut acks = Vec::new();
    let mut pongs = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for &i in *group {
            let text = format!(
                r#"{{"type":"t","channel":"big","id":"p{i}","payload":"{}"}}"#,
                "x".repeat(sizes[i])
            );
            // After the lone large frame, a ping first.
            if i == 2 {
                publisher
                    .ws
                    .feed(Message::Ping("after-big".into()))
                    .await
                    .unwrap();
            }
            publisher.ws.feed(Message::text(text)).await.unwrap();
        }
        publisher.ws.flush().await.unwrap();
        let expected_acks = groups[..=g].iter().map(|group| group.len()).sum::<usize>();
        while acks.len() < expected_acks {
            let frame = tokio::time::timeout(support::WAIT, publisher.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("no error");
            match frame {
                Message::Text(text) => {
                    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(v["type"], "ack", "{v}");
                    acks.push((
                        v["id"].as_str().unwrap().to_owned(),
                        v["offset"].as_u64().unwrap(),
                    ));
                }
                Message::Pong(data) => pongs.push(data),
                _ => {}
            }
        }
    }
    let expected: Vec<_> = (0..sizes.len())
        .map(|i| (format!("p{i}"), i as u64 + 1))
        .collect();
    assert_eq!(acks, expected);
    assert_eq!(pongs, vec![bytes::Bytes::from_static(b"after-big")]);
    for (i, &size) in sizes.iter().enumerate() {
        let msg = reader.recv().await;
        let id = format!("p{i}");
        assert_eq!(
            (msg["id"].as_str(), msg["offset"].as_u64()),
            (Some(id.as_str()), Some(i as u64 + 1))
        );
        assert_eq!(msg["payload"].as_str().map(str::len), Some(size));
    }
}

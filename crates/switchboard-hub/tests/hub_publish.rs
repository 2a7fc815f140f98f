//! Publishing and fan-out.

mod support;

use serde_json::json;
use support::{Client, hub, memory};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Hub, Identity, ServerMessage};
use switchboard_protocol::{ChannelName, ClientFrame, EventType, Payload, Priority};

#[tokio::test]
async fn a_publish_reaches_every_subscriber_once_with_the_server_built_envelope() {
    let hub = hub();
    let mut alice = Client::connect(&hub, Identity::user("alice"));
    let mut bob = Client::connect(&hub, Identity::user("bob"));
    alice.subscribe("room:1").await;
    bob.subscribe("room:1").await;

    alice
        .send(r#"{"type":"chat.message","channel":"room:1","payload":{"text":"hi"},"id":"m1","from":"forged","offset":99}"#)
        .await;

    let alice_id = alice.conn.id().to_owned();
    for client in [&mut alice, &mut bob] {
        let msg = client.next_of("chat.message").await;
        assert_eq!(msg["payload"], json!({"text": "hi"}));
        assert_eq!(msg["id"], "m1");
        assert_eq!(msg["offset"], 1);
        assert_eq!(msg["priority"], "normal");
        assert_eq!(msg["from"]["userId"], "alice");
        assert_eq!(msg["from"]["connectionId"], alice_id.as_str());
        assert!(msg["timestamp"].as_u64().unwrap() > 1_600_000_000_000);
    }
    assert!(bob.is_quiet().await, "bob got a second copy");
}

#[tokio::test]
async fn publishing_does_not_require_subscribing_and_acks_with_the_offset() {
    let hub = hub();
    let mut publisher = Client::connect(&hub, Identity::anonymous());
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("news").await;

    publisher
        .send(r#"{"type":"headline","channel":"news","payload":"x","id":"p-1"}"#)
        .await;
    let ack = publisher.next().await;
    assert_eq!(ack, json!({"type": "ack", "id": "p-1", "offset": 1}));
    let msg = reader.next().await;
    assert_eq!(msg["id"], "p-1");
    assert_eq!(msg["from"]["userId"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_publish_without_id_gets_a_generated_id_and_no_ack() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.subscribe("c").await;
    c.send(r#"{"type":"t","channel":"c","payload":1}"#).await;
    let msg = c.next().await;
    assert_eq!(msg["type"], "t");
    assert!(msg["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(
        c.is_quiet().await,
        "an ack was sent for a publish without id"
    );
}

#[tokio::test]
async fn messages_of_a_channel_arrive_in_ascending_offset_whatever_their_priority() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.subscribe("c").await;
    for (i, p) in ["low", "critical", "normal", "high"].iter().enumerate() {
        c.send(&format!(
            r#"{{"type":"t","channel":"c","payload":{i},"priority":"{p}"}}"#
        ))
        .await;
    }
    let mut offsets = Vec::new();
    for expected in [
        Priority::Low,
        Priority::Critical,
        Priority::Normal,
        Priority::High,
    ] {
        let (msg, priority) = c.next_with_priority().await;
        assert_eq!(
            priority, expected,
            "the outbox is told each message's priority"
        );
        offsets.push(msg["offset"].as_u64().unwrap());
    }
    assert_eq!(offsets, [1, 2, 3, 4]);
}

#[tokio::test]
async fn server_side_publishes_come_from_the_server() {
    let hub = hub();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.subscribe("tasks:updates").await;
    let receipt = hub
        .publish(
            ServerMessage::new(
                ChannelName::new("tasks:updates").unwrap(),
                EventType::new("task-status-changed").unwrap(),
                Payload::from(json!({"taskId": 7, "status": "done"})),
            )
            .with_id("srv-1")
            .with_priority(Priority::High),
        )
        .await
        .unwrap();
    assert_eq!((receipt.id.as_str(), receipt.offset), ("srv-1", 1));
    let msg = c.next().await;
    assert_eq!(
        msg["from"],
        json!({"userId": null, "connectionId": "$server"})
    );
    assert_eq!(msg["priority"], "high");
    assert_eq!(msg["payload"]["status"], "done");
}

#[tokio::test]
async fn two_hubs_over_one_memory_backplane_deliver_in_one_order() {
    let shared = memory();
    let hub_a = Hub::new(shared.new_instance());
    let hub_b = Hub::new(shared);
    let mut a = Client::connect(&hub_a, Identity::anonymous());
    let mut b = Client::connect(&hub_b, Identity::anonymous());
    a.subscribe("c").await;
    b.subscribe("c").await;
    for i in 0..20 {
        let (publisher, other) = if i % 2 == 0 {
            (&mut a, "a")
        } else {
            (&mut b, "b")
        };
        publisher
            .send(&format!(
                r#"{{"type":"t","channel":"c","payload":"{other}{i}"}}"#
            ))
            .await;
    }
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..20 {
        let m = a.next().await;
        seen_a.push((m["offset"].as_u64().unwrap(), m["payload"].clone()));
        let m = b.next().await;
        seen_b.push((m["offset"].as_u64().unwrap(), m["payload"].clone()));
    }
    assert_eq!(seen_a, seen_b);
    assert!(seen_a.windows(2).all(|w| w[1].0 == w[0].0 + 1));
}

#[tokio::test]
async fn hubs_sharing_one_backplane_instance_never_fall_behind_it() {
    // One instance, a 4-event queue, two hubs: a burst of 50 publishes reaches both hubs'
    // subscribers complete and in order, and nobody is closed (a hub that consumed through
    // the queue used to lag and close every subscriber it had with 4008).
    let instance = MemoryBackplane::new(
        MemoryBackplaneConfig::default().event_capacity(std::num::NonZeroUsize::new(4).unwrap()),
    );
    let hub_a = Hub::new(instance.clone());
    let hub_b = Hub::new(instance);
    let mut a = Client::connect(&hub_a, Identity::anonymous());
    let mut b = Client::connect(&hub_b, Identity::anonymous());
    let mut bystander = Client::connect(&hub_b, Identity::anonymous());
    a.subscribe("burst").await;
    b.subscribe("burst").await;
    bystander.subscribe("elsewhere").await;
    for i in 1..=50 {
        hub_a
            .publish(ServerMessage::new(
                ChannelName::new("burst").unwrap(),
                EventType::new("t").unwrap(),
                Payload::from(json!(i)),
            ))
            .await
            .unwrap();
    }
    for client in [&mut a, &mut b] {
        for i in 1..=50 {
            let msg = client.next().await;
            assert_eq!((&msg["offset"], &msg["payload"]), (&json!(i), &json!(i)));
        }
    }
    assert!(
        bystander.is_quiet().await,
        "the bystander was closed or sent something"
    );
}

#[tokio::test]
async fn redaction_removes_configured_fields_at_any_depth() {
    let hub = Hub::builder(memory())
        .config(switchboard_hub::HubConfig::default().redact_fields(["password", "SSN"]))
        .build();
    let mut c = Client::connect(&hub, Identity::anonymous());
    c.subscribe("c").await;
    c.send(r#"{"type":"t","channel":"c","payload":{"user":{"Password":"p","name":"n","list":[{"ssn":"1","ok":true}]}}}"#)
        .await;
    let msg = c.next().await;
    assert_eq!(
        msg["payload"],
        json!({"user": {"name": "n", "list": [{"ok": true}]}})
    );
}

#[tokio::test]
async fn a_retried_publish_id_is_acknowledged_with_its_first_offset_and_delivered_once() {
    // Two hubs over one store: the retry arrives through another instance, as after a
    // failover.
    let shared = memory();
    let hub_a = Hub::new(shared.new_instance());
    let hub_b = Hub::new(shared);
    let mut reader = Client::connect(&hub_b, Identity::user("reader"));
    reader.subscribe("orders").await;
    // The same client instance (its id kept across its reconnect).
    let mut first = Client::connect_as(&hub_a, Identity::user("alice"), "tab-1");
    let mut retry = Client::connect_as(&hub_b, Identity::user("alice"), "tab-1");

    first
        .send(r#"{"type":"order.placed","channel":"orders","payload":{"n":1},"id":"o-1"}"#)
        .await;
    assert_eq!(
        first.next().await,
        json!({"type": "ack", "id": "o-1", "offset": 1})
    );
    retry
        .send(r#"{"type":"order.placed","channel":"orders","payload":{"n":1},"id":"o-1"}"#)
        .await;
    assert_eq!(
        retry.next().await,
        json!({"type": "ack", "id": "o-1", "offset": 1}),
        "the retry is acknowledged with the first publish's offset"
    );
    let delivered = reader.next().await;
    assert_eq!(
        (delivered["id"].as_str(), delivered["offset"].as_u64()),
        (Some("o-1"), Some(1))
    );
    assert!(reader.is_quiet().await, "the retry was delivered again");
}

/// A server-side publish to `c` with id `1`.
fn message_with_id_1() -> ServerMessage {
    ServerMessage::new(
        ChannelName::new("c").unwrap(),
        EventType::new("t").unwrap(),
        Payload::from_json("null").unwrap(),
    )
    .with_id("1")
}

#[tokio::test]
async fn the_same_id_from_two_connections_of_one_user_or_two_anonymous_ones_is_two_messages() {
    // Two browser tabs of one user, each with its own client id; two anonymous connections
    // without one; a client that pre-publishes another's id. None may take another's place.
    let hub = hub();
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("c").await;
    let mut clients = [
        Client::connect_as(&hub, Identity::user("ada"), "tab-a"),
        Client::connect_as(&hub, Identity::user("ada"), "tab-b"),
        Client::connect(&hub, Identity::user("ada")),
        Client::connect(&hub, Identity::anonymous()),
        Client::connect(&hub, Identity::anonymous()),
        Client::connect_as(&hub, Identity::anonymous(), "tab-a"),
    ];
    let mut acked = Vec::new();
    for client in &mut clients {
        client
            .send(r#"{"type":"t","channel":"c","payload":null,"id":"m0"}"#)
            .await;
        acked.push(client.next_of("ack").await["offset"].as_u64().unwrap());
    }
    assert_eq!(
        acked,
        [1, 2, 3, 4, 5, 6],
        "each publish is acknowledged with its own offset"
    );
    for offset in 1..=6 {
        assert_eq!(reader.next_of("t").await["offset"], offset);
    }
    assert!(reader.is_quiet().await);
}

#[tokio::test]
async fn the_same_id_from_two_users_or_from_the_server_is_two_messages() {
    let hub = hub();
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("c").await;
    let mut alice = Client::connect(&hub, Identity::user("alice"));
    let mut bob = Client::connect(&hub, Identity::user("bob"));
    let mut anonymous = Client::connect(&hub, Identity::anonymous());
    for client in [&mut alice, &mut bob, &mut anonymous] {
        client
            .send(r#"{"type":"t","channel":"c","payload":null,"id":"1"}"#)
            .await;
    }
    let server = hub.publish(message_with_id_1()).await.unwrap();
    assert!(!server.duplicate);
    let mut offsets = Vec::new();
    for _ in 0..4 {
        offsets.push(reader.next_of("t").await["offset"].as_u64().unwrap());
    }
    offsets.sort_unstable();
    assert_eq!(offsets, [1, 2, 3, 4], "an id is scoped to its publisher");
    // A server-side retry of the same id is the duplicate.
    let again = hub.publish(message_with_id_1()).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.offset, server.offset);
    assert!(reader.is_quiet().await);
}

#[tokio::test]
async fn message_latency_is_observed_once_per_message_delivered_here_and_never_for_none() {
    let metrics = switchboard_metrics::Metrics::new();
    let hub = Hub::builder(memory()).metrics(metrics.clone()).build();
    let latency = |metrics: &switchboard_metrics::Metrics| metrics.snapshot().histograms["websocket_message_latency_ms"];
    let mut alice = Client::connect(&hub, Identity::user("alice"));
    let mut bob = Client::connect(&hub, Identity::user("bob"));
    alice.subscribe("room").await;
    bob.subscribe("room").await;

    // A channel nobody here reads: nothing was written, so nothing is measured.
    alice
        .send(r#"{"type":"t","channel":"empty","payload":1,"id":"e1"}"#)
        .await;
    assert_eq!(alice.next().await["type"], "ack");
    assert_eq!(latency(&metrics).count, 0);

    alice
        .send(r#"{"type":"t","channel":"room","payload":1,"id":"r1"}"#)
        .await;
    for client in [&mut alice, &mut bob] {
        assert_eq!(client.next_of("t").await["id"], "r1");
    }
    // Two subscribers, one message: one observation, from publish to both written.
    let observed = latency(&metrics);
    assert_eq!(observed.count, 1);
    assert!(
        observed.sum < 10_000.0,
        "publish → written took {} ms: the publish time was misread",
        observed.sum
    );
}

#[tokio::test]
async fn through_the_memory_backplane_a_publish_is_handled_in_place_and_the_rest_left_to_await() {
    let hub = hub();
    let mut publisher = Client::connect(&hub, Identity::anonymous());
    let mut reader = Client::connect(&hub, Identity::anonymous());
    reader.subscribe("news").await;

    // A publish leaves nothing to wait for: ack and delivery are there when it returns.
    let frame =
        ClientFrame::decode(r#"{"type":"headline","channel":"news","payload":1,"id":"p-1"}"#)
            .unwrap();
    assert!(publisher.conn.handle_now(frame).is_none());
    assert_eq!(
        publisher.rx.try_recv().ok(),
        Some(support::Out::Frame(
            json!({"type": "ack", "id": "p-1", "offset": 1}),
            Priority::High
        ))
    );
    assert_eq!(reader.next().await["payload"], 1);

    // A subscribe waits (history, presence): the rest is handed back, and nothing happens
    // before it is awaited.
    let frame = ClientFrame::decode(r#"{"type":"subscribe","channel":"news","id":"s-1"}"#).unwrap();
    let rest = publisher
        .conn
        .handle_now(frame)
        .expect("a subscribe has a rest");
    assert!(publisher.rx.try_recv().is_err());
    rest.await;
    assert_eq!(publisher.next().await["type"], "subscribed");
}

//! Two reference servers as real processes over one real redis-server: publishers on both
//! instances write to the same channels at once, and every client, on either instance,
//! sees one order; a client that leaves one instance recovers exactly what it missed on
//! the other.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::future::join_all;
use serde_json::{Value, json};
use switchboard_test_support::RedisServer;
use tests::{ServerProcess, WsClient, e2e_binary, unique};

/// Generous: two servers, Redis and the test share two cores with other test binaries.
const UP: std::time::Duration = std::time::Duration::from_secs(20);

async fn two_instances(redis: &RedisServer) -> (ServerProcess, ServerProcess) {
    let env = [("REDIS_URL", redis.url())];
    let a = ServerProcess::start(e2e_binary!(), "A", &env).await;
    let b = ServerProcess::start(e2e_binary!(), "B", &env).await;
    a.wait_ok(UP).await;
    b.wait_ok(UP).await;
    (a, b)
}

/// Reads application messages (skipping acks and other answers) until `n` arrived.
async fn messages(client: &mut WsClient, n: usize) -> Vec<Value> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let frame = client.next_frame().await;
        let kind = frame["type"].as_str().unwrap_or_default();
        if !matches!(
            kind,
            "ack"
                | "subscribed"
                | "unsubscribed"
                | "error"
                | "pong"
                | "presence"
                | "presence-update"
        ) {
            out.push(frame);
        }
    }
    out
}

/// Reads acks (failing on an error answer) until `n` arrived; returns id → offset.
async fn acks(client: &mut WsClient, n: usize) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    while out.len() < n {
        let frame = client.next_frame().await;
        match frame["type"].as_str() {
            Some("ack") => {
                out.insert(
                    frame["id"].as_str().unwrap().to_owned(),
                    frame["offset"].as_u64().unwrap(),
                );
            }
            Some("error") => panic!("a publish was refused: {frame}"),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_on_two_instances_give_every_client_one_identical_order() {
    const PER_PUBLISHER: u64 = 60;
    let channels = [unique("orders"), unique("audit")];
    let run = unique("run");
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;

    // Two subscribers on each instance, each on both channels.
    let mut subscribers = Vec::new();
    let mut starts: BTreeMap<&str, u64> = BTreeMap::new();
    let channels = channels.each_ref().map(String::as_str);
    for (name, server) in [("a1", &a), ("a2", &a), ("b1", &b), ("b2", &b)] {
        let mut client = WsClient::connect(&server.ws_url()).await;
        for channel in channels {
            let subscribed = client.subscribe(channel, None).await;
            let offset = subscribed["offset"].as_u64().unwrap();
            assert_eq!(*starts.entry(channel).or_insert(offset), offset);
        }
        subscribers.push((name, client));
    }

    // Two publishers on each instance, all at once, alternating channels; nothing waits
    // for an ack before sending the next.
    let mut publishers = Vec::new();
    for (name, server) in [("pa1", &a), ("pa2", &a), ("pb1", &b), ("pb2", &b)] {
        publishers.push((name, WsClient::connect(&server.ws_url()).await));
    }
    let run = run.as_str();
    let acked: Vec<BTreeMap<String, u64>> =
        join_all(publishers.iter_mut().map(|(name, client)| async move {
            for seq in 1..=PER_PUBLISHER {
                let channel = channels[usize::try_from(seq % 2).unwrap()];
                let payload = json!({"p": *name, "seq": seq});
                client
                    .publish(
                        channel,
                        "order.placed",
                        &payload,
                        &format!("{run}-{name}-{seq}"),
                    )
                    .await;
            }
            acks(client, usize::try_from(PER_PUBLISHER).unwrap()).await
        }))
        .await;
    let ack_offsets: BTreeMap<String, u64> = acked.into_iter().flatten().collect();

    // Every subscriber gets all of it.
    let total = usize::try_from(4 * PER_PUBLISHER).unwrap();
    let received: Vec<(&str, Vec<Value>)> = join_all(
        subscribers
            .iter_mut()
            .map(|(name, client)| async move { (*name, messages(client, total).await) }),
    )
    .await;

    for channel in channels {
        let per_subscriber: Vec<(&str, Vec<&Value>)> = received
            .iter()
            .map(|(name, frames)| {
                (
                    *name,
                    frames.iter().filter(|f| f["channel"] == channel).collect(),
                )
            })
            .collect();
        let (first_name, reference) = &per_subscriber[0];
        let count = u64::try_from(reference.len()).unwrap();
        assert_eq!(count, 2 * PER_PUBLISHER, "{first_name} on {channel}");

        // One order, whole and gap-free: offsets start+1..=start+count.
        let start = starts[channel];
        let offsets: Vec<u64> = reference
            .iter()
            .map(|f| f["offset"].as_u64().unwrap())
            .collect();
        assert_eq!(
            offsets,
            (start + 1..=start + count).collect::<Vec<_>>(),
            "{first_name} on {channel}: offsets not contiguous"
        );
        // Identical on every client, frame for frame (offset, id, payload, timestamp, from).
        for (name, frames) in &per_subscriber[1..] {
            assert_eq!(
                frames, reference,
                "{name} and {first_name} disagree on {channel}"
            );
        }
        // Nothing missing or duplicated: exactly the acknowledged publishes, at their acked
        // offsets.
        let ids: BTreeSet<&str> = reference
            .iter()
            .map(|f| f["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), reference.len(), "a duplicate id on {channel}");
        for frame in reference {
            let id = frame["id"].as_str().unwrap();
            assert_eq!(
                ack_offsets.get(id).copied(),
                frame["offset"].as_u64(),
                "{id} was delivered at another offset than its ack said"
            );
        }
        // Each publisher's messages in the order it sent them.
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for frame in reference {
            let p = frame["payload"]["p"].as_str().unwrap();
            let seq = frame["payload"]["seq"].as_u64().unwrap();
            let previous = last.insert(p, seq).unwrap_or(0);
            assert!(
                seq > previous,
                "{p} seq {seq} after {previous} on {channel}"
            );
        }
        assert_eq!(last.len(), 4, "every publisher reached {channel}");
    }
    // Both instances published into the one order.
    let origins: BTreeSet<&str> = received[0]
        .1
        .iter()
        .map(|f| &f["payload"]["p"].as_str().unwrap()[..2])
        .collect();
    assert_eq!(origins, BTreeSet::from(["pa", "pb"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_left_instance_a_recovers_exactly_what_it_missed_on_instance_b() {
    let channel = unique("rooms");
    let run = unique("m");
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;

    let mut leaver = WsClient::connect(&a.ws_url()).await;
    let epoch = leaver.subscribe(&channel, None).await["epoch"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut observer = WsClient::connect(&b.ws_url()).await;
    observer.subscribe(&channel, None).await;
    let mut on_a = WsClient::connect(&a.ws_url()).await;
    let mut on_b = WsClient::connect(&b.ws_url()).await;
    let mut seq = 0;
    let mut publish = async |on_a: &mut WsClient, on_b: &mut WsClient, count: usize| {
        for _ in 0..count {
            seq += 1;
            let publisher = if seq % 2 == 0 { &mut *on_a } else { &mut *on_b };
            let ack = publisher
                .publish_acked(
                    &channel,
                    "room.event",
                    &json!({"seq": seq}),
                    &format!("{run}-{seq}"),
                )
                .await;
            assert_eq!(ack["type"], "ack", "{ack}");
        }
    };

    publish(&mut on_a, &mut on_b, 6).await;
    let seen = messages(&mut leaver, 6).await;
    let last_seen = seen.last().unwrap()["offset"].as_u64().unwrap();
    leaver.close().await;

    // Published while it was gone, on both instances.
    publish(&mut on_a, &mut on_b, 9).await;
    let everything = messages(&mut observer, 15).await;
    let missed = &everything[6..];

    // Back on the other instance, with since: recovered, and exactly the missed messages,
    // in order, as originally delivered (same id, offset, timestamp, sender).
    let mut back = WsClient::connect(&b.ws_url()).await;
    let subscribed = back.subscribe(&channel, Some((last_seen, &epoch))).await;
    assert_eq!(subscribed["recovered"], true, "{subscribed}");
    assert_eq!(subscribed["epoch"], epoch.as_str());
    assert_eq!(subscribed["offset"], missed.last().unwrap()["offset"]);
    let replayed = messages(&mut back, missed.len()).await;
    assert_eq!(replayed, missed);

    // Live delivery continues right after the replay: the next offset, once.
    publish(&mut on_a, &mut on_b, 1).await;
    let next = back.next_frame().await;
    assert_eq!(next["payload"]["seq"], 16, "{next}");
    assert_eq!(
        next["offset"].as_u64(),
        missed.last().unwrap()["offset"].as_u64().map(|o| o + 1)
    );

    // An epoch the channel never had is told so on instance A too: nothing replayed.
    let mut stale = WsClient::connect(&a.ws_url()).await;
    let subscribed = stale.subscribe(&channel, Some((1, "not-an-epoch"))).await;
    assert_eq!(subscribed["recovered"], false, "{subscribed}");
    assert_eq!(subscribed["epoch"], epoch.as_str());
    publish(&mut on_a, &mut on_b, 1).await;
    let live = stale.next_frame().await;
    assert_eq!(
        live["payload"]["seq"], 17,
        "only live messages follow: {live}"
    );
}

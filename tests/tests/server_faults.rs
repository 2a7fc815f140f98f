//! Server faults: two reference servers as real processes over one real redis-server,
//! behind a TCP load balancer, with `switchboard-client` clients that know only the
//! balancer's URL. Killing (SIGKILL) or stopping (SIGTERM) the instance they are on must
//! cost them nothing: they reconnect to the other instance, recover what they missed from
//! history, and what was published offline is delivered exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use switchboard_client::{Client, Priority, RECONNECT_BACKOFF, Subscription, SubscriptionEvent};
use switchboard_test_support::RedisServer;
use tests::{Balancer, ServerProcess, WsClient, e2e_binary, unique};
use tokio::sync::watch;

const UP: Duration = Duration::from_secs(20);
const SETTLE: Duration = Duration::from_secs(20);

async fn two_instances(redis: &RedisServer) -> (ServerProcess, ServerProcess) {
    let env = [("REDIS_URL", redis.url())];
    let a = ServerProcess::start(e2e_binary!(), "A", &env).await;
    let b = ServerProcess::start(e2e_binary!(), "B", &env).await;
    a.wait_ok(UP).await;
    b.wait_ok(UP).await;
    (a, b)
}

/// A client of `url` that retries quickly (the defaults wait up to seconds).
fn client(url: &str) -> Client {
    Client::builder(url)
        .backoff(
            RECONNECT_BACKOFF
                .with_base(Duration::from_millis(100))
                .with_max(Duration::from_millis(300)),
        )
        .build()
        .expect("a valid client configuration")
}

/// Everything one subscription yielded, collected by a task.
struct Recorder {
    name: &'static str,
    events: Arc<Mutex<Vec<SubscriptionEvent>>>,
    changed: watch::Receiver<usize>,
}

impl Recorder {
    fn start(name: &'static str, mut subscription: Subscription) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let (tx, changed) = watch::channel(0);
        let sink = Arc::clone(&events);
        tokio::spawn(async move {
            while let Some(event) = subscription.next().await {
                let len = {
                    let mut events = sink.lock().unwrap();
                    events.push(event);
                    events.len()
                };
                tx.send_replace(len);
            }
        });
        Self {
            name,
            events,
            changed,
        }
    }

    fn events(&self) -> Vec<SubscriptionEvent> {
        self.events.lock().unwrap().clone()
    }

    fn messages(&self) -> Vec<switchboard_client::Message> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                SubscriptionEvent::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    async fn wait_until(&mut self, what: &str, mut done: impl FnMut(&[SubscriptionEvent]) -> bool) {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            if done(&self.events.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout_at(deadline, self.changed.changed())
                .await
                .is_err()
            {
                panic!(
                    "{}: {what} did not happen within {SETTLE:?}; events: {:#?}",
                    self.name,
                    self.events()
                );
            }
        }
    }

    async fn wait_for_offset(&mut self, offset: u64) {
        self.wait_until(&format!("offset {offset}"), |events| {
            events
                .iter()
                .any(|e| matches!(e, SubscriptionEvent::Message(m) if m.offset >= offset))
        })
        .await;
    }
}

/// Application messages on a raw connection until `n` arrived.
async fn raw_messages(client: &mut WsClient, channel: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let frame = client.next_frame().await;
        if frame["channel"] == channel
            && frame.get("offset").is_some()
            && frame["type"] != "subscribed"
        {
            out.push(frame);
        }
    }
    out
}

async fn disconnected(client: &Client) {
    let mut state = client.state();
    tokio::time::timeout(SETTLE, state.wait_for(|s| !s.is_connected()))
        .await
        .expect("the client notices the lost connection")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_instance_fail_over_recover_and_get_offline_publishes_once() {
    let channel = unique("tasks");
    let redis = RedisServer::start();
    let (mut a, b) = two_instances(&redis).await;
    let balancer = Balancer::start(vec![a.addr(), b.addr()]).await;

    // Two subscribers and a publisher, all through the balancer, so all on A.
    let subscribers = [client(&balancer.ws_url()), client(&balancer.ws_url())];
    let mut recorders = [
        Recorder::start("subscriber 1", subscribers[0].subscribe(&channel).unwrap()),
        Recorder::start("subscriber 2", subscribers[1].subscribe(&channel).unwrap()),
    ];
    for recorder in &mut recorders {
        recorder
            .wait_until("subscribed", |e| {
                matches!(e.first(), Some(SubscriptionEvent::Subscribed { .. }))
            })
            .await;
    }
    let publisher = client(&balancer.ws_url());
    publisher.connected().await.unwrap();
    assert_eq!(
        balancer.routed(),
        vec![Some(a.addr()); 3],
        "every client starts on A"
    );
    // The ground truth: a raw subscriber on B that never disconnects.
    let mut observer = WsClient::connect(&b.ws_url()).await;
    observer.subscribe(&channel, None).await;

    let mut acked: BTreeMap<String, u64> = BTreeMap::new();
    let publish = |n: u64, phase: &str| {
        publisher
            .publish(
                &channel,
                "task.updated",
                json!({"phase": phase, "n": n}),
                Priority::Normal,
            )
            .unwrap()
    };
    for n in 0..10 {
        let ack = publish(n, "before").await.unwrap();
        acked.insert(ack.id, ack.offset);
    }

    // Kill A while publishes are on their way: some may have reached A (and Redis)
    // without their ack making it back; the client sends those again.
    let mut pending: Vec<_> = (0..10).map(|n| publish(n, "in flight")).collect();
    // The balancer holds new connections off until the outage's messages are published,
    // so that the subscribers must recover them from history rather than live.
    balancer.set_backends(Vec::new());
    a.kill().await;
    for c in subscribers.iter().chain([&publisher]) {
        disconnected(c).await;
    }
    // Published on B while the clients are away...
    let mut direct = WsClient::connect(&b.ws_url()).await;
    let direct_prefix = unique("direct");
    for n in 0..5 {
        let id = format!("{direct_prefix}-{n}");
        let ack = direct
            .publish_acked(
                &channel,
                "task.updated",
                &json!({"phase": "outage", "n": n}),
                &id,
            )
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        acked.insert(id, ack["offset"].as_u64().unwrap());
    }
    // ...and by the offline client into its queue.
    pending.extend((0..10).map(|n| publish(n, "offline")));
    assert!(
        publisher.queue_len() >= 10,
        "the offline publishes wait in the queue"
    );

    // A is still first in line but dead: the balancer sends everyone to B.
    balancer.set_backends(vec![a.addr(), b.addr()]);
    for c in subscribers.iter().chain([&publisher]) {
        tokio::time::timeout(SETTLE, c.connected())
            .await
            .expect("reconnected in time")
            .unwrap();
    }
    for handle in pending {
        let ack = tokio::time::timeout(SETTLE, handle)
            .await
            .expect("every queued publish is acknowledged in time")
            .expect("acknowledged, not failed");
        acked.insert(ack.id, ack.offset);
    }
    assert_eq!(publisher.queue_len(), 0);
    // Attempts made while the balancer held connections off were refused (`None`); every
    // connection it did make after the kill went to B, past the dead A.
    let reconnections: Vec<_> = balancer.routed()[3..].iter().flatten().copied().collect();
    assert!(
        reconnections.len() >= 3 && reconnections.iter().all(|r| *r == b.addr()),
        "after the kill every client reconnected to B: {reconnections:?}"
    );

    // The ground truth on B: every acknowledged message exactly once, at its acked offset.
    let last = *acked.values().max().unwrap();
    let first = *acked.values().min().unwrap();
    let truth = raw_messages(
        &mut observer,
        &channel,
        usize::try_from(last - first + 1).unwrap(),
    )
    .await;
    let truth_ids: Vec<&str> = truth.iter().map(|f| f["id"].as_str().unwrap()).collect();
    assert_eq!(
        truth_ids.iter().collect::<BTreeSet<_>>().len(),
        truth.len(),
        "an id was delivered twice: the server did not dedupe a resent publish: {truth_ids:?}"
    );
    for frame in &truth {
        let id = frame["id"].as_str().unwrap();
        assert_eq!(acked.get(id).copied(), frame["offset"].as_u64(), "{frame}");
    }
    assert_eq!(
        truth.len(),
        acked.len(),
        "every acknowledged publish, nothing else"
    );

    for recorder in &mut recorders {
        recorder.wait_for_offset(last).await;
        let events = recorder.events();
        let name = recorder.name;
        // Subscribed, then — after the kill — resubscribed with since, recovered.
        let resubscribed: Vec<&SubscriptionEvent> = events
            .iter()
            .filter(|e| matches!(e, SubscriptionEvent::Resubscribed { .. }))
            .collect();
        assert!(
            matches!(
                resubscribed.as_slice(),
                [SubscriptionEvent::Resubscribed {
                    recovered: true,
                    ..
                }]
            ),
            "{name}: one recovery, complete: {resubscribed:?}"
        );
        // No gap, no duplicate by offset, each id once: exactly the ground truth.
        let messages = recorder.messages();
        let offsets: Vec<u64> = messages.iter().map(|m| m.offset).collect();
        assert_eq!(
            offsets,
            (first..=last).collect::<Vec<_>>(),
            "{name}: offsets with a gap or a duplicate"
        );
        let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, truth_ids, "{name}: not the ground truth");
    }
    assert!(b.health().await.1["status"] == "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_repeated_on_another_instance_is_acked_with_its_first_offset_and_delivered_once()
{
    let channel = unique("tasks");
    let (retried, next_id) = (unique("retry-me"), unique("next-one"));
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    let mut on_a = WsClient::connect(&a.ws_url()).await;
    on_a.subscribe(&channel, None).await;
    let mut on_b = WsClient::connect(&b.ws_url()).await;
    on_b.subscribe(&channel, None).await;

    // A client whose ack was lost sends the same frame again, through another instance. It
    // is the same client instance: it sends the same client id on both connections.
    let payload = json!({"task": 7, "status": "done"});
    let client_id = unique("client");
    let mut first = WsClient::connect(&format!("{}?client={client_id}", a.ws_url())).await;
    let first_ack = first
        .publish_acked(&channel, "task.done", &payload, &retried)
        .await;
    let mut retry = WsClient::connect(&format!("{}?client={client_id}", b.ws_url())).await;
    let retry_ack = retry
        .publish_acked(&channel, "task.done", &payload, &retried)
        .await;
    assert_eq!(first_ack["type"], "ack", "{first_ack}");
    assert_eq!(retry_ack["type"], "ack", "{retry_ack}");
    assert_eq!(
        retry_ack["offset"], first_ack["offset"],
        "the repeat is acknowledged with the first publish's offset"
    );
    let next = retry
        .publish_acked(&channel, "task.done", &payload, &next_id)
        .await;

    // Delivered once on each instance: the next message is the following publish.
    let offset = first_ack["offset"].as_u64().unwrap();
    for subscriber in [&mut on_a, &mut on_b] {
        let got = raw_messages(subscriber, &channel, 2).await;
        assert_eq!(
            (got[0]["id"].as_str(), got[0]["offset"].as_u64()),
            (Some(retried.as_str()), Some(offset))
        );
        assert_eq!(
            (got[1]["id"].as_str(), got[1]["offset"].as_u64()),
            (Some(next_id.as_str()), Some(offset + 1)),
            "the repeat was delivered again: {got:?}"
        );
    }
    assert_eq!(next["offset"].as_u64(), Some(offset + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_instance_says_going_away_exits_zero_and_its_clients_recover_elsewhere() {
    let channel = unique("tasks");
    let redis = RedisServer::start();
    let (mut a, b) = two_instances(&redis).await;
    let balancer = Balancer::start(vec![a.addr(), b.addr()]).await;
    let subscriber = client(&balancer.ws_url());
    let mut recorder = Recorder::start("subscriber", subscriber.subscribe(&channel).unwrap());
    recorder
        .wait_until("subscribed", |e| {
            matches!(e.first(), Some(SubscriptionEvent::Subscribed { .. }))
        })
        .await;
    let mut raw = WsClient::connect(&a.ws_url()).await;
    raw.subscribe(&channel, None).await;
    let mut publisher = WsClient::connect(&b.ws_url()).await;
    let ack = publisher
        .publish_acked(&channel, "task.updated", &json!(1), &unique("before-term"))
        .await;
    let before = ack["offset"].as_u64().unwrap();
    recorder.wait_for_offset(before).await;

    // SIGTERM: a drain that closes every connection with 1001, then exit code 0.
    let mark = a.log().len();
    let exit = tokio::join!(a.terminate(Duration::from_secs(10)), raw.close_code());
    assert_eq!(exit, (Some(0), Some(1001)));
    a.log()
        .wait_for_after(mark, "shut down", Duration::from_secs(1))
        .await
        .unwrap();

    // The client went to B and lost nothing.
    let ack = publisher
        .publish_acked(&channel, "task.updated", &json!(2), &unique("after-term"))
        .await;
    let after = ack["offset"].as_u64().unwrap();
    recorder.wait_for_offset(after).await;
    let offsets: Vec<u64> = recorder.messages().iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (before..=after).collect::<Vec<_>>());
    assert!(
        recorder.events().iter().any(|e| matches!(
            e,
            SubscriptionEvent::Resubscribed {
                recovered: true,
                ..
            }
        )),
        "{:?}",
        recorder.events()
    );
}

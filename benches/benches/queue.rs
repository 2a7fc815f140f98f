//! Queue costs: push+pop on the server's outbound queue and the client's delivery queue in
//! memory, and persisted pushes per second under each fsync policy.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use switchboard_protocol::{ChannelName, EventType, Message, Payload, Sender};
use switchboard_queue::{
    DeliveryConfig, DeliveryQueue, OutboundConfig, OutboundQueue, PopOrder, Priority, StoreConfig,
    SyncPolicy,
};

/// A message encoded once for fan-out, as the hub pushes it into each connection's queue.
fn message() -> Message {
    Message {
        event: EventType::new("task-status-changed").unwrap(),
        channel: ChannelName::new("tasks:updates").unwrap(),
        payload: Payload::from_json(r#"{"taskId":"t-1842","status":"done","progress":100}"#)
            .unwrap(),
        id: "m-9f1c".into(),
        timestamp: 1_700_000_000_000,
        priority: switchboard_protocol::Priority::Normal,
        offset: 42,
        from: Sender {
            user_id: Some("u-7".into()),
            connection_id: "c-5b2e".into(),
        },
    }
}

fn outbound(c: &mut Criterion) {
    let mut g = c.benchmark_group("outbound");
    // `bytes::Bytes`, the outbound queue's default item.
    let frame = message().encode().into_bytes();
    for (name, order) in [
        ("push_pop_fifo", PopOrder::Fifo),
        ("push_pop_priority", PopOrder::Priority),
    ] {
        let mut q = OutboundQueue::new(OutboundConfig::default().with_order(order));
        // A writer a little behind: a few frames already waiting.
        for _ in 0..8 {
            q.push(frame.clone(), Priority::Normal).unwrap();
        }
        g.bench_function(name, |b| {
            b.iter(|| {
                q.push(black_box(frame.clone()), Priority::High).unwrap();
                black_box(q.pop())
            })
        });
    }
    // A slow consumer: the queue is full of low frames and every push evicts one.
    g.bench_function("push_evicting_full_64", |b| {
        b.iter_batched_ref(
            || {
                let capacity = NonZeroUsize::new(64).unwrap();
                let mut q = OutboundQueue::new(OutboundConfig::default().with_capacity(capacity));
                for _ in 0..64 {
                    q.push(frame.clone(), Priority::Low).unwrap();
                }
                q
            },
            |q| black_box(q.push(frame.clone(), Priority::Normal).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("pop_batch_64", |b| {
        b.iter_batched_ref(
            || {
                let mut q = OutboundQueue::new(OutboundConfig::default());
                for _ in 0..64 {
                    q.push(frame.clone(), Priority::Normal).unwrap();
                }
                (q, Vec::with_capacity(64))
            },
            |(q, out)| q.pop_batch(out, 64, 1 << 20),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn delivery(c: &mut Criterion) {
    let mut g = c.benchmark_group("delivery");
    let now = Instant::now();
    let mut q = DeliveryQueue::new(DeliveryConfig::default().with_seed(Some(1)));
    g.bench_function("push_pop_ack", |b| {
        b.iter(|| {
            q.push(black_box(42u64), Priority::Normal).unwrap();
            let lease = q.pop(now).unwrap().unwrap();
            q.ack(lease.id).unwrap();
        })
    });
    g.finish();
}

fn persisted(c: &mut Criterion) {
    let mut g = c.benchmark_group("persisted_push");
    g.throughput(Throughput::Elements(1));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("queue-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let payload = "m".repeat(100);
    for (name, sync) in [
        ("every_write", SyncPolicy::EveryWrite),
        (
            "interval_10ms",
            SyncPolicy::Interval(Duration::from_millis(10)),
        ),
    ] {
        let path = dir.join(format!("{name}.log"));
        let _fresh = std::fs::remove_file(&path);
        let config =
            DeliveryConfig::default().with_capacity(NonZeroUsize::new(usize::MAX).unwrap());
        let store = StoreConfig::default().with_sync(sync);
        let (mut q, _) = DeliveryQueue::<String>::open(&path, config, store).unwrap();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    q.push(payload.clone(), Priority::Normal).unwrap();
                }
                let elapsed = start.elapsed();
                q.clear().unwrap();
                elapsed
            })
        });
        drop(q);
        let _cleanup = std::fs::remove_file(&path);
    }
    g.finish();
}

criterion_group!(benches, outbound, delivery, persisted);
criterion_main!(benches);

//! In-process fan-out through the hub: one publish delivered to N local subscribers over the
//! memory backplane, measured from `Hub::publish` until every subscriber's outbox has the
//! frame. What the transport's sockets add is measured by the load tool, not here.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Hub, Identity, Outbox, ServerMessage};
use switchboard_protocol::{
    ChannelName, ClientFrame, CloseCode, EncodedFrame, EventType, Payload, Priority,
};
use tokio::sync::Notify;

/// Counts frames and wakes the bench when the expected number arrived. Holding the frame
/// would measure the allocator; a real outbox writes the shared bytes to the socket, or
/// queues a reference-counted clone when the socket would block.
struct Counting {
    delivered: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Outbox for Counting {
    fn push(&self, _frame: &EncodedFrame, _priority: Priority) {
        if self.delivered.fetch_add(1, Ordering::AcqRel) + 1 == self.target.load(Ordering::Acquire)
        {
            self.done.notify_one();
        }
    }
    fn close(&self, _code: CloseCode) {}
}

fn fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("hub_fanout");
    group.measurement_time(Duration::from_secs(3));
    for subscribers in [1usize, 100, 1_000, 10_000] {
        let delivered = Arc::new(AtomicUsize::new(0));
        let target = Arc::new(AtomicUsize::new(usize::MAX));
        let done = Arc::new(Notify::new());
        let (hub, _connections) = runtime.block_on(async {
            let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
            let mut connections = Vec::with_capacity(subscribers);
            for _ in 0..subscribers {
                let outbox = Arc::new(Counting {
                    delivered: Arc::clone(&delivered),
                    target: Arc::clone(&target),
                    done: Arc::clone(&done),
                });
                let mut conn = hub.connect(Identity::anonymous(), outbox);
                conn.handle(
                    ClientFrame::decode(r#"{"type":"subscribe","channel":"bench"}"#).unwrap(),
                )
                .await;
                connections.push(conn);
            }
            (hub, connections)
        });
        let message = ServerMessage::new(
            ChannelName::new("bench").unwrap(),
            EventType::new("task-status-changed").unwrap(),
            Payload::from_json(r#"{"taskId":"t-1842","status":"done","progress":100}"#).unwrap(),
        );
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &n| {
                b.iter_custom(|iterations| {
                    runtime.block_on(async {
                        let start = Instant::now();
                        for _ in 0..iterations {
                            delivered.store(0, Ordering::Release);
                            target.store(n, Ordering::Release);
                            let notified = done.notified();
                            hub.publish(message.clone()).await.unwrap();
                            notified.await;
                        }
                        start.elapsed()
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);

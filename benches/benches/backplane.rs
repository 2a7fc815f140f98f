//! Backplane publish→receive latency and throughput, memory against Redis.
//!
//! Each sample publishes on one instance and receives on another (sharing a memory store, or
//! connected to one redis-server spawned for the run, or `SWITCHBOARD_TEST_REDIS_URL`).
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use switchboard_backplane::{
    Backplane, Event, EventReceiver, HealthState, MemoryBackplane, MemoryBackplaneConfig,
    RedisBackplane, RedisBackplaneConfig,
};
use switchboard_test_support::RedisServer;
use tokio::runtime::Runtime;

const PAYLOAD: &[u8] = br#"{"type":"task-status-changed","channel":"tasks:updates","payload":{"taskId":"t-1842","status":"done"},"id":"m-9f1c","priority":"high","offset":"#;
const BURST: u64 = 1000;
const CONCURRENT_PUBLISHES: usize = 64;

/// Multi-threaded, so the backplanes' probes and pumps keep running between samples (a
/// runtime parked during criterion's analysis would miss probe echoes and reconnect).
fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits for the next message (the bench instance only subscribes to one channel).
async fn receive(rx: &mut EventReceiver) {
    match rx.recv().await {
        Some(Event::Message(_)) => {}
        other => panic!("expected a message, got {other:?}"),
    }
}

/// A publisher and a subscribed receiver over one store.
struct Pair<B> {
    publisher: B,
    _receiver: B,
    events: EventReceiver,
}

async fn memory_pair() -> Pair<MemoryBackplane> {
    let publisher = MemoryBackplane::new(MemoryBackplaneConfig::default());
    let receiver = publisher.new_instance();
    let events = receiver.events();
    receiver.subscribe("bench").await.unwrap();
    Pair {
        publisher,
        _receiver: receiver,
        events,
    }
}

async fn redis_pair(url: &str, config: RedisBackplaneConfig) -> Pair<RedisBackplane> {
    let publisher = RedisBackplane::connect(url, config.clone()).await.unwrap();
    let receiver = RedisBackplane::connect(url, config).await.unwrap();
    for bp in [&publisher, &receiver] {
        let mut health = bp.health();
        tokio::time::timeout(
            Duration::from_secs(10),
            health.wait_for(|h| h.state == HealthState::Up),
        )
        .await
        .expect("redis backplane up")
        .unwrap();
    }
    let events = receiver.events();
    receiver.subscribe("bench").await.unwrap();
    Pair {
        publisher,
        _receiver: receiver,
        events,
    }
}

/// One publish, then its arrival at the other instance, `iters` times.
async fn latency<B: Backplane>(pair: &mut Pair<B>, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        pair.publisher
            .publish("bench", PAYLOAD.into())
            .await
            .unwrap();
        receive(&mut pair.events).await;
    }
    start.elapsed()
}

/// [`BURST`] publishes (up to [`CONCURRENT_PUBLISHES`] in flight) until the other instance
/// has received them all, `iters` times.
async fn throughput<B: Backplane>(pair: &mut Pair<B>, iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let publisher = &pair.publisher;
        let publish = futures_util::stream::iter(0..BURST).for_each_concurrent(
            CONCURRENT_PUBLISHES,
            |_| async move {
                publisher.publish("bench", PAYLOAD.into()).await.unwrap();
            },
        );
        let events = &mut pair.events;
        let receive_all = async move {
            for _ in 0..BURST {
                receive(events).await;
            }
        };
        tokio::join!(publish, receive_all);
    }
    start.elapsed()
}

fn backplane(c: &mut Criterion) {
    let rt = runtime();
    let server = RedisServer::start();
    let mut memory = rt.block_on(memory_pair());
    let mut redis = rt.block_on(redis_pair(
        server.url(),
        RedisBackplaneConfig::default().prefix("bench:"),
    ));
    // The same without the per-channel byte cap (the publish script's XADD MAXLEN path), to
    // show what the cap costs.
    let mut redis_uncapped = rt.block_on(redis_pair(
        server.url(),
        RedisBackplaneConfig::default()
            .prefix("bench-uncapped:")
            .history_max_channel_bytes(0),
    ));

    let mut g = c.benchmark_group("backplane/publish_to_receive");
    g.throughput(Throughput::Elements(1));
    g.bench_function(BenchmarkId::from_parameter("memory"), |b| {
        b.iter_custom(|iters| rt.block_on(latency(&mut memory, iters)));
    });
    // Uncapped first: each pair is measured in the same order in both groups below.
    g.bench_function(BenchmarkId::from_parameter("redis_without_byte_cap"), |b| {
        b.iter_custom(|iters| rt.block_on(latency(&mut redis_uncapped, iters)));
    });
    g.bench_function(BenchmarkId::from_parameter("redis"), |b| {
        b.iter_custom(|iters| rt.block_on(latency(&mut redis, iters)));
    });
    g.finish();

    let mut g = c.benchmark_group("backplane/burst_of_1000");
    g.throughput(Throughput::Elements(BURST));
    g.sample_size(20);
    g.bench_function(BenchmarkId::from_parameter("memory"), |b| {
        b.iter_custom(|iters| rt.block_on(throughput(&mut memory, iters)));
    });
    g.bench_function(BenchmarkId::from_parameter("redis_without_byte_cap"), |b| {
        b.iter_custom(|iters| rt.block_on(throughput(&mut redis_uncapped, iters)));
    });
    g.bench_function(BenchmarkId::from_parameter("redis"), |b| {
        b.iter_custom(|iters| rt.block_on(throughput(&mut redis, iters)));
    });
    g.finish();
}

criterion_group!(benches, backplane);
criterion_main!(benches);

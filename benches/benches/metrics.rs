//! Recording costs of the metrics handle: what every connection and message pays.
#![allow(missing_docs)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use switchboard_metrics::{ErrorCode, Metrics};

fn record(c: &mut Criterion) {
    let metrics = Metrics::new();
    let noop = Metrics::noop();
    let latency = Duration::from_micros(1_800);

    let mut g = c.benchmark_group("record");
    g.bench_function("counter_increment", |b| {
        b.iter(|| black_box(&metrics).message_received())
    });
    g.bench_function("labelled_counter_increment", |b| {
        b.iter(|| black_box(&metrics).error(black_box(ErrorCode::RateLimited)))
    });
    g.bench_function("gauge_adjustment", |b| {
        b.iter(|| black_box(&metrics).outbound_enqueued(black_box(1)))
    });
    g.bench_function("histogram_observation", |b| {
        b.iter(|| black_box(&metrics).observe_latency(black_box(latency)))
    });
    g.bench_function("noop_counter_increment", |b| {
        b.iter(|| black_box(&noop).message_received())
    });
    g.bench_function("noop_histogram_observation", |b| {
        b.iter(|| black_box(&noop).observe_latency(black_box(latency)))
    });
    g.finish();
}

/// The same counter incremented from this thread while another thread hammers it: the cost
/// of a contended cache line, which a lock would add to.
fn contended(c: &mut Criterion) {
    let metrics = Metrics::new();
    let mut g = c.benchmark_group("record_contended");
    g.bench_function("counter_increment_two_threads", |b| {
        b.iter_custom(|iters| {
            let other = metrics.clone();
            thread::scope(|s| {
                s.spawn(move || {
                    for _ in 0..iters {
                        black_box(&other).message_received();
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(&metrics).message_received();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn export(c: &mut Criterion) {
    let metrics = Metrics::new();
    metrics.connection_opened();
    metrics.observe_latency(Duration::from_millis(3));
    let mut g = c.benchmark_group("export");
    g.bench_function("encode_openmetrics", |b| {
        b.iter(|| black_box(&metrics).encode_openmetrics().unwrap())
    });
    g.bench_function("snapshot", |b| b.iter(|| black_box(&metrics).snapshot()));
    g.finish();
}

criterion_group!(benches, record, contended, export);
criterion_main!(benches);

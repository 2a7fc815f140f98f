//! Rate-limit checks: switchboard-limiter against governor, with the same quotas.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::clock::Clock as _;
use switchboard_limiter::{Clock as _, KeyedLimiterConfig, KeyedRateLimiter, Quota, TokenBucket};

/// So generous that every check is granted: measures the path that writes the state.
const GRANTED_PER_SECOND: u32 = 1_000_000_000;
const KEYS: u32 = 1_000;

fn rate(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn keys() -> Vec<IpAddr> {
    (0..KEYS)
        .map(|n| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)))
        .collect()
}

/// Runs `check` `iters` times on each of two threads at once; returns the wall time, which is
/// the time per check as each thread sees it under contention.
fn on_two_threads(iters: u64, check: impl Fn(u64) + Sync) -> Duration {
    let barrier = Barrier::new(3);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                barrier.wait();
                for i in 0..iters {
                    check(i);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Joining the scope waits for both threads.
        start
    })
    .elapsed()
}

fn direct(c: &mut Criterion) {
    let mut g = c.benchmark_group("direct");

    let ours = TokenBucket::new(Quota::per_second(rate(GRANTED_PER_SECOND)));
    let theirs =
        governor::RateLimiter::direct(governor::Quota::per_second(rate(GRANTED_PER_SECOND)));
    g.bench_function("granted/switchboard", |b| {
        b.iter(|| black_box(&ours).try_acquire_one().is_ok())
    });
    g.bench_function("granted/governor", |b| {
        b.iter(|| black_box(&theirs).check().is_ok())
    });

    // The default quota (100 per minute, burst 100), exhausted: every check is refused.
    let ours = TokenBucket::new(Quota::default());
    let theirs = governor::RateLimiter::direct(governor::Quota::per_minute(rate(100)));
    while ours.try_acquire_one().is_ok() {}
    while theirs.check().is_ok() {}
    g.bench_function("refused/switchboard", |b| {
        b.iter(|| black_box(&ours).try_acquire_one().is_err())
    });
    g.bench_function("refused/governor", |b| {
        b.iter(|| black_box(&theirs).check().is_err())
    });

    let ours = TokenBucket::new(Quota::per_second(rate(GRANTED_PER_SECOND)));
    let theirs =
        governor::RateLimiter::direct(governor::Quota::per_second(rate(GRANTED_PER_SECOND)));
    g.bench_function("contended_2_threads/switchboard", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |_| {
                black_box(ours.try_acquire_one().is_ok());
            })
        })
    });
    g.bench_function("contended_2_threads/governor", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |_| {
                black_box(theirs.check().is_ok());
            })
        })
    });
    g.finish();
}

fn keyed(c: &mut Criterion) {
    let mut g = c.benchmark_group("keyed_1000_ips");
    let keys = keys();
    let quota = Quota::per_second(rate(GRANTED_PER_SECOND));
    let ours = KeyedRateLimiter::<IpAddr>::new(KeyedLimiterConfig::default().quota(quota));
    let theirs = governor::RateLimiter::<IpAddr, _, _, _>::keyed(governor::Quota::per_second(
        rate(GRANTED_PER_SECOND),
    ));
    // Every key is known: the steady state of a per-IP limiter.
    for key in &keys {
        ours.try_acquire_one(key).unwrap();
        theirs.check_key(key).unwrap();
    }
    let key = |i: u64| &keys[(i % u64::from(KEYS)) as usize];

    g.bench_function("granted/switchboard", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(&ours).try_acquire_one(key(i)).is_ok()
        })
    });
    g.bench_function("granted/governor", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(&theirs).check_key(key(i)).is_ok()
        })
    });
    g.bench_function("contended_2_threads/switchboard", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |i| {
                black_box(ours.try_acquire_one(key(i)).is_ok());
            })
        })
    });
    g.bench_function("contended_2_threads/governor", |b| {
        b.iter_custom(|iters| {
            on_two_threads(iters, |i| {
                black_box(theirs.check_key(key(i)).is_ok());
            })
        })
    });
    g.finish();
}

/// What each check pays to read the time.
fn clock(c: &mut Criterion) {
    let mut g = c.benchmark_group("clock_now");
    let ours = switchboard_limiter::SystemClock;
    let theirs = governor::clock::DefaultClock::default();
    g.bench_function("switchboard_system_clock", |b| {
        b.iter(|| black_box(&ours).now_nanos())
    });
    g.bench_function("governor_default_clock", |b| {
        b.iter(|| black_box(&theirs).now())
    });
    g.bench_function("std_instant", |b| b.iter(Instant::now));
    g.finish();
}

criterion_group!(benches, direct, keyed, clock);
criterion_main!(benches);

//! Retry waits grow exponentially up to a cap, with jitter that is reproducible from a seed.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use switchboard_queue::{Backoff, DeliveryConfig, DeliveryQueue, Nacked, Priority};

fn nth(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

#[test]
fn the_wait_doubles_from_the_base_up_to_the_cap() {
    let backoff = Backoff::default()
        .with_base(Duration::from_millis(100))
        .with_factor(2.0)
        .with_max(Duration::from_millis(500))
        .with_jitter(0.0);
    let waits: Vec<_> = (1..=5).map(|n| backoff.delay(nth(n), 0.9)).collect();
    let ms = |n| Duration::from_millis(n);
    assert_eq!(waits, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
    assert_eq!(backoff.delay(nth(u32::MAX), 0.0), ms(500));
}

#[test]
fn jitter_takes_off_at_most_its_fraction_of_the_wait() {
    let backoff = Backoff::default()
        .with_base(Duration::from_secs(1))
        .with_jitter(0.5);
    assert_eq!(backoff.delay(nth(1), 0.0), Duration::from_secs(1));
    assert_eq!(backoff.delay(nth(1), 0.5), Duration::from_millis(750));
    assert_eq!(backoff.delay(nth(1), 1.0), Duration::from_millis(500));
}

#[test]
fn out_of_range_settings_are_clamped() {
    let backoff = Backoff::default().with_factor(0.1).with_jitter(7.0);
    assert_eq!((backoff.factor, backoff.jitter), (1.0, 1.0));
    let backoff = Backoff::default().with_jitter(f64::NAN);
    assert_eq!(backoff.jitter, 0.0);
}

fn retry_times(seed: u64) -> Vec<Duration> {
    let t0 = Instant::now();
    let config = DeliveryConfig::default().with_seed(Some(seed));
    let mut q = DeliveryQueue::new(config);
    let mut times = Vec::new();
    for i in 0..8 {
        q.push(i, Priority::Normal).unwrap();
        let lease = q.pop(t0).unwrap().unwrap();
        let Nacked::RetryAt(at) = q.nack(lease.id, t0).unwrap() else {
            unreachable!("first failure")
        };
        times.push(at - t0);
    }
    times
}

#[test]
fn the_same_seed_gives_the_same_jittered_retry_times() {
    let times = retry_times(42);
    assert_eq!(times, retry_times(42));
    assert_ne!(times, retry_times(43));
    let (low, high) = (Duration::from_millis(250), Duration::from_millis(500));
    assert!(times.iter().all(|t| (low..=high).contains(t)), "{times:?}");
}

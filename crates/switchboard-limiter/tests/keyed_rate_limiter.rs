//! A bucket per key: isolation between keys, idle eviction, and a bound on remembered keys.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use switchboard_limiter::{AcquireError, KeyedLimiterConfig, KeyedRateLimiter, ManualClock, Quota};

fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    capacity: u32,
    max_keys: usize,
) -> (KeyedRateLimiter<K, ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let config = KeyedLimiterConfig::default()
        .quota(Quota::new(capacity, 1, Duration::from_secs(1)).unwrap())
        .max_keys(NonZeroUsize::new(max_keys).unwrap());
    (KeyedRateLimiter::with_clock(config, clock.clone()), clock)
}

#[test]
fn each_key_has_its_own_bucket() {
    let (limiter, _clock) = limiter::<IpAddr>(2, 1000);
    limiter.try_acquire(&ip(1), 2).unwrap();
    assert!(limiter.try_acquire_one(&ip(1)).is_err());
    limiter.try_acquire(&ip(2), 2).unwrap();
    assert_eq!(limiter.available(&ip(3)), 2);
}

#[test]
fn a_limited_key_does_not_delay_another() {
    let (limiter, clock) = limiter::<IpAddr>(1, 1000);
    limiter.try_acquire_one(&ip(1)).unwrap();
    for _ in 0..100 {
        assert!(limiter.try_acquire_one(&ip(1)).is_err());
    }
    limiter.try_acquire_one(&ip(2)).unwrap();
    clock.advance(Duration::from_secs(1));
    limiter.try_acquire_one(&ip(1)).unwrap();
}

#[test]
fn a_refused_key_is_told_the_exact_wait() {
    let (limiter, clock) = limiter::<String>(3, 1000);
    let user = "alice".to_owned();
    limiter.try_acquire(&user, 3).unwrap();
    clock.advance(Duration::from_millis(250));
    let refused = limiter.try_acquire(&user, 2).unwrap_err();
    assert_eq!(refused.retry_after(), Some(Duration::from_millis(1750)));
    clock.advance(Duration::from_millis(1750));
    limiter.try_acquire(&user, 2).unwrap();
}

#[test]
fn a_request_larger_than_the_capacity_is_refused_and_remembers_nothing() {
    let (limiter, _clock) = limiter::<IpAddr>(3, 1000);
    assert_eq!(
        limiter.try_acquire(&ip(1), 4),
        Err(AcquireError::ExceedsCapacity {
            requested: 4,
            capacity: 3
        })
    );
    limiter.try_acquire(&ip(1), 0).unwrap();
    assert!(limiter.is_empty());
}

#[test]
fn len_counts_the_keys_remembered() {
    let (limiter, _clock) = limiter::<IpAddr>(5, 1000);
    for last in 0..10 {
        limiter.try_acquire_one(&ip(last)).unwrap();
        limiter.try_acquire_one(&ip(last)).unwrap();
    }
    assert_eq!(limiter.len(), 10);
}

#[test]
fn idle_keys_are_evicted_and_busy_keys_kept() {
    let (limiter, clock) = limiter::<IpAddr>(2, 1000);
    limiter.try_acquire_one(&ip(1)).unwrap();
    limiter.try_acquire(&ip(2), 2).unwrap();
    clock.advance(Duration::from_secs(1));
    // ip(1) has refilled completely; ip(2) still lacks a token.
    assert_eq!(limiter.evict_idle(), 1);
    assert_eq!(limiter.len(), 1);
    assert_eq!(limiter.available(&ip(2)), 1);
}

#[test]
fn evicting_an_idle_key_changes_no_decision() {
    let (limiter, clock) = limiter::<IpAddr>(2, 1000);
    limiter.try_acquire(&ip(1), 2).unwrap();
    clock.advance(Duration::from_secs(2));
    limiter.evict_idle();
    limiter.try_acquire(&ip(1), 2).unwrap();
    assert!(limiter.try_acquire_one(&ip(1)).is_err());
}

#[test]
fn the_keys_remembered_never_exceed_max_keys() {
    let (limiter, _clock) = limiter::<IpAddr>(1, 64);
    assert_eq!(limiter.max_keys(), 64);
    for n in 0..10_000u32 {
        let key = IpAddr::V6(Ipv6Addr::from(u128::from(n)));
        limiter.try_acquire_one(&key).unwrap();
        assert!(limiter.len() <= 64);
    }
    assert!(limiter.len() > 32);
}

#[test]
fn a_full_limiter_makes_room_by_evicting_idle_keys_first() {
    let clock = ManualClock::new();
    let config = KeyedLimiterConfig::default()
        .quota(Quota::new(1, 1, Duration::from_secs(1)).unwrap())
        .max_keys(NonZeroUsize::new(64).unwrap())
        .shards(NonZeroUsize::new(1).unwrap());
    let limiter = KeyedRateLimiter::with_clock(config, clock.clone());
    for key in 0..64 {
        limiter.try_acquire_one(&key).unwrap();
    }
    assert_eq!(limiter.len(), 64);
    clock.advance(Duration::from_secs(1));
    for key in 100..164 {
        limiter.try_acquire_one(&key).unwrap();
    }
    assert_eq!(limiter.len(), 64);
    // Every old key was idle, so none of the new ones was forgotten to make room.
    for key in 100..164 {
        assert_eq!(limiter.available(&key), 0, "key {key}");
    }
}

#[test]
fn concurrent_checks_of_one_key_never_share_a_token() {
    let (limiter, _clock) = limiter::<IpAddr>(500, 1000);
    let limiter = Arc::new(limiter);
    let granted: usize = (0..4)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            thread::spawn(move || {
                (0..1000)
                    .filter(|_| limiter.try_acquire_one(&ip(7)).is_ok())
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum();
    assert_eq!(granted, 500);
}

#[test]
fn the_default_config_is_the_default_quota_for_up_to_100_000_keys() {
    let config = KeyedLimiterConfig::default();
    assert_eq!(config.quota, Quota::default());
    assert_eq!(config.max_keys.get(), 100_000);
    let limiter = KeyedRateLimiter::<IpAddr>::new(config);
    assert_eq!(limiter.max_keys(), 100_000 / 64 * 64);
    limiter.try_acquire_one(&ip(1)).unwrap();
    assert_eq!(limiter.available(&ip(1)), 99);
}

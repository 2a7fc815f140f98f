//! A token bucket: burst, continuous refill, exact waits, all-or-nothing acquisitions.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use switchboard_limiter::{AcquireError, ManualClock, Quota, SystemClock, TokenBucket};

fn bucket(capacity: u32, refill: u32, period: Duration) -> (TokenBucket<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let quota = Quota::new(capacity, refill, period).unwrap();
    (TokenBucket::with_clock(quota, clock.clone()), clock)
}

#[test]
fn a_fresh_bucket_grants_its_whole_burst_at_once() {
    let (bucket, _clock) = bucket(10, 1, Duration::from_secs(1));
    for _ in 0..10 {
        bucket.try_acquire_one().unwrap();
    }
    assert!(bucket.try_acquire_one().is_err());
}

#[test]
fn rate_limit_rejects_the_101st_message_in_a_minute() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(Quota::default(), clock.clone());
    for _ in 0..100 {
        bucket.try_acquire_one().unwrap();
        clock.advance(Duration::from_millis(5));
    }
    let refused = bucket.try_acquire_one().unwrap_err();
    // 500 ms have passed of the 600 ms that refill one token.
    assert_eq!(refused.retry_after_ms(), 100);
}

#[test]
fn a_steady_sender_gets_the_burst_plus_one_message_per_refill_interval() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(Quota::default(), clock.clone());
    let mut granted = 0;
    for _ in 0..600 {
        if bucket.try_acquire_one().is_ok() {
            granted += 1;
        }
        clock.advance(Duration::from_millis(99));
    }
    // The last message goes at 599 × 99 ms = 59.301 s: 98 whole refills of 600 ms.
    assert_eq!(granted, 100 + 98);
}

#[test]
fn tokens_refill_continuously_one_per_interval() {
    let (bucket, clock) = bucket(5, 5, Duration::from_secs(1));
    bucket.try_acquire(5).unwrap();
    clock.advance(Duration::from_millis(199));
    assert!(bucket.try_acquire_one().is_err());
    clock.advance(Duration::from_millis(1));
    bucket.try_acquire_one().unwrap();
    clock.advance(Duration::from_millis(600));
    assert_eq!(bucket.available(), 3);
    bucket.try_acquire(3).unwrap();
    assert!(bucket.try_acquire_one().is_err());
}

#[test]
fn a_long_idle_period_refills_no_more_than_the_capacity() {
    let (bucket, clock) = bucket(3, 1, Duration::from_millis(10));
    bucket.try_acquire(3).unwrap();
    clock.advance(Duration::from_secs(3600));
    assert_eq!(bucket.available(), 3);
    bucket.try_acquire(3).unwrap();
    assert!(bucket.try_acquire_one().is_err());
}

#[test]
fn retry_after_is_exact_to_the_nanosecond() {
    let (bucket, clock) = bucket(2, 3, Duration::from_secs(1));
    bucket.try_acquire(2).unwrap();
    clock.advance(Duration::from_millis(100));
    let refused = bucket.try_acquire(2).unwrap_err();
    // Two tokens take 2 × 333 333 334 ns (the interval rounded up); 100 ms have passed.
    let wait = Duration::from_nanos(2 * 333_333_334) - Duration::from_millis(100);
    assert_eq!(refused.retry_after(), Some(wait));

    clock.advance(wait - Duration::from_nanos(1));
    assert!(bucket.try_acquire(2).is_err());
    clock.advance(Duration::from_nanos(1));
    bucket.try_acquire(2).unwrap();
}

#[test]
fn retry_after_ms_rounds_up_so_waiting_it_always_suffices() {
    let (bucket, clock) = bucket(1, 3, Duration::from_secs(1));
    bucket.try_acquire_one().unwrap();
    let refused = bucket.try_acquire_one().unwrap_err();
    assert_eq!(refused.retry_after(), Duration::from_nanos(333_333_334));
    assert_eq!(refused.retry_after_ms(), 334);
    assert_eq!(refused.checked_at(), Duration::ZERO);
    assert_eq!(refused.earliest(), Duration::from_nanos(333_333_334));

    clock.advance(Duration::from_millis(refused.retry_after_ms()));
    bucket.try_acquire_one().unwrap();
}

#[test]
fn a_refusal_takes_nothing_and_does_not_push_the_wait_back() {
    let (bucket, clock) = bucket(1, 1, Duration::from_secs(1));
    bucket.try_acquire_one().unwrap();
    for _ in 0..1000 {
        assert!(bucket.try_acquire_one().is_err());
    }
    clock.advance(Duration::from_secs(1));
    bucket.try_acquire_one().unwrap();
}

#[test]
fn acquiring_n_tokens_is_all_or_nothing() {
    let (bucket, _clock) = bucket(5, 1, Duration::from_secs(1));
    bucket.try_acquire(3).unwrap();
    let refused = bucket.try_acquire(3).unwrap_err();
    assert!(refused.is_retryable());
    assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(bucket.available(), 2);
    bucket.try_acquire(2).unwrap();
}

#[test]
fn acquiring_more_than_the_capacity_can_never_succeed() {
    let (bucket, _clock) = bucket(5, 1, Duration::from_secs(1));
    let refused = bucket.try_acquire(6).unwrap_err();
    assert_eq!(
        refused,
        AcquireError::ExceedsCapacity {
            requested: 6,
            capacity: 5
        }
    );
    assert!(!refused.is_retryable());
    assert_eq!(refused.retry_after(), None);
    assert_eq!(bucket.available(), 5);
}

#[test]
fn acquiring_zero_tokens_always_succeeds() {
    let (bucket, _clock) = bucket(1, 1, Duration::from_secs(1));
    bucket.try_acquire_one().unwrap();
    bucket.try_acquire(0).unwrap();
}

#[test]
fn concurrent_acquirers_never_share_a_token() {
    let clock = ManualClock::new();
    let quota = Quota::new(1000, 1, Duration::from_secs(1)).unwrap();
    let bucket = Arc::new(TokenBucket::with_clock(quota, clock));
    let granted: u32 = (0..4)
        .map(|_| {
            let bucket = Arc::clone(&bucket);
            thread::spawn(move || {
                (0..1000)
                    .filter(|_| bucket.try_acquire_one().is_ok())
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| u32::try_from(handle.join().unwrap()).unwrap())
        .sum();
    assert_eq!(granted, 1000);
}

#[test]
fn a_bucket_on_the_system_clock_starts_full() {
    let bucket = TokenBucket::new(Quota::default());
    assert_eq!(bucket.available(), 100);
    bucket.try_acquire(100).unwrap();
    assert!(bucket.try_acquire_one().is_err());
    assert_eq!(size_of::<TokenBucket<SystemClock>>(), 32);
}

//! Quotas are validated at construction; the defaults are the documented ones.

use std::num::NonZeroU32;
use std::time::Duration;

use switchboard_limiter::{Quota, QuotaError};

#[test]
fn a_zero_capacity_is_rejected_with_a_clear_error() {
    let err = Quota::new(0, 1, Duration::from_secs(1)).unwrap_err();
    assert_eq!(err, QuotaError::ZeroCapacity);
    assert_eq!(
        err.to_string(),
        "rate limit capacity (burst) must be at least 1 token"
    );
}

#[test]
fn a_zero_refill_is_rejected() {
    assert_eq!(
        Quota::new(1, 0, Duration::from_secs(1)),
        Err(QuotaError::ZeroRefill)
    );
}

#[test]
fn a_zero_period_is_rejected_with_a_clear_error() {
    let err = Quota::new(1, 1, Duration::ZERO).unwrap_err();
    assert_eq!(err, QuotaError::ZeroPeriod);
    assert_eq!(
        err.to_string(),
        "rate limit period must be longer than zero"
    );
}

#[test]
fn a_quota_too_slow_to_count_is_rejected() {
    let err = Quota::new(u32::MAX, 1, Duration::from_secs(3600)).unwrap_err();
    assert_eq!(err, QuotaError::TooSlow { capacity: u32::MAX });
    assert!(Quota::new(1, 1, Duration::MAX).is_err());
}

#[test]
fn the_default_quota_is_100_messages_per_60_seconds_with_a_burst_of_100() {
    let quota = Quota::default();
    assert_eq!(quota.capacity(), 100);
    assert_eq!(quota.refill(), 100);
    assert_eq!(quota.period(), Duration::from_secs(60));
    assert_eq!(quota.refill_interval(), Duration::from_millis(600));
    assert_eq!(quota.full_refill(), Duration::from_secs(60));
}

#[test]
fn per_second_and_per_minute_set_the_burst_to_the_rate() {
    let quota = Quota::per_second(NonZeroU32::new(50).unwrap());
    assert_eq!(quota, Quota::new(50, 50, Duration::from_secs(1)).unwrap());
    let quota = Quota::per_minute(NonZeroU32::new(30).unwrap());
    assert_eq!(quota, Quota::new(30, 30, Duration::from_secs(60)).unwrap());
}

#[test]
fn a_quota_prints_as_its_configuration() {
    let quota = Quota::new(20, 5, Duration::from_secs(1)).unwrap();
    assert_eq!(
        format!("{quota:?}"),
        "Quota { capacity: 20, refill: 5, period: 1s }"
    );
}

//! Telling a burst of refusals from sustained abuse.

use std::time::Duration;

use switchboard_limiter::{Clock, ManualClock, Quota, RejectionWindow, TokenBucket};

#[test]
fn as_many_refusals_as_the_capacity_within_one_window_are_tolerated() {
    let mut window = RejectionWindow::new(Duration::from_secs(60), 3);
    for second in 0..3 {
        assert!(!window.record_at(Duration::from_secs(second)));
    }
    assert_eq!(window.count(), 3);
}

#[test]
fn more_refusals_than_the_capacity_within_one_window_is_abuse() {
    let mut window = RejectionWindow::new(Duration::from_secs(60), 3);
    for second in 0..3 {
        window.record_at(Duration::from_secs(second));
    }
    assert!(window.record_at(Duration::from_secs(59)));
}

#[test]
fn refusals_spread_over_separate_windows_are_not_abuse() {
    let mut window = RejectionWindow::new(Duration::from_secs(60), 3);
    for minute in 0..10 {
        for second in 0..3 {
            assert!(!window.record_at(Duration::from_secs(minute * 60 + second)));
        }
    }
}

#[test]
fn the_transport_rule_flags_the_101st_refusal_in_a_minute() {
    let clock = ManualClock::new();
    let bucket = TokenBucket::with_clock(Quota::default(), clock.clone());
    let mut window = RejectionWindow::for_quota(bucket.quota());
    assert_eq!(window.window(), Duration::from_secs(60));
    assert_eq!(window.limit(), 100);

    bucket.try_acquire(100).unwrap();
    let mut refused = 0;
    let abusive = loop {
        clock.advance(Duration::from_millis(10));
        if let Err(not_until) = bucket.try_acquire_one() {
            refused += 1;
            if window.record(&not_until) {
                break true;
            }
        }
        if clock.now() >= Duration::from_secs(60) {
            break false;
        }
    };
    assert!(abusive);
    assert_eq!(refused, 101);
}

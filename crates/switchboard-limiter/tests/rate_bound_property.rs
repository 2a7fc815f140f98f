//! Properties of a token bucket under any sequence of requests.

use std::time::Duration;

use proptest::prelude::*;
use switchboard_limiter::{Clock, ManualClock, Quota, TokenBucket};

fn quotas() -> impl Strategy<Value = Quota> {
    (1u32..=20, 1u32..=20, 1u64..=5_000).prop_map(|(capacity, refill, ms)| {
        Quota::new(capacity, refill, Duration::from_millis(ms)).unwrap()
    })
}

/// Steps: wait this many nanoseconds (up to about 2 refill intervals), then ask for n tokens.
fn steps() -> impl Strategy<Value = Vec<(u64, u32)>> {
    prop::collection::vec((0u64..=2_000_000_000, 0u32..=21), 1..150)
}

proptest! {
    #[test]
    fn over_any_window_granted_is_at_most_capacity_plus_rate_times_window(
        quota in quotas(),
        steps in steps(),
    ) {
        let clock = ManualClock::new();
        let bucket = TokenBucket::with_clock(quota, clock.clone());
        let mut grants: Vec<(u128, u128)> = Vec::new();
        for (wait, n) in steps {
            // Scale the wait to the quota's interval so both busy and idle phases occur.
            let interval = quota.refill_interval().as_nanos();
            let wait = u128::from(wait) * interval / 1_000_000_000;
            clock.advance(Duration::from_nanos(u64::try_from(wait).unwrap()));
            if bucket.try_acquire(n).is_ok() {
                grants.push((clock.now().as_nanos(), u128::from(n)));
            }
        }
        let capacity = u128::from(quota.capacity());
        let refill = u128::from(quota.refill());
        let period = quota.period().as_nanos();
        for (i, &(start, _)) in grants.iter().enumerate() {
            let mut granted = 0;
            for &(at, n) in &grants[i..] {
                granted += n;
                let window = at - start;
                // granted ≤ capacity + (refill / period) × window, without rounding.
                prop_assert!(
                    granted * period <= capacity * period + refill * window,
                    "{granted} tokens granted within {window} ns for {quota:?}"
                );
            }
        }
    }

    #[test]
    fn a_refused_request_succeeds_exactly_after_its_wait(
        quota in quotas(),
        steps in steps(),
    ) {
        let clock = ManualClock::new();
        let bucket = TokenBucket::with_clock(quota, clock.clone());
        for (wait, n) in steps {
            clock.advance(Duration::from_nanos(wait % 1_000_000));
            let n = n.min(quota.capacity());
            if let Err(refused) = bucket.try_acquire(n) {
                let wait = refused.retry_after().unwrap();
                prop_assert!(wait > Duration::ZERO);
                clock.advance(wait - Duration::from_nanos(1));
                prop_assert!(bucket.try_acquire(n).is_err());
                clock.advance(Duration::from_nanos(1));
                prop_assert!(bucket.try_acquire(n).is_ok());
            }
        }
    }
}

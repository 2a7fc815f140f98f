use std::num::NonZeroU32;
use std::time::Duration;

/// Exponential backoff with jitter: the one schedule of switchboard, used between the
/// attempts of a [`DeliveryQueue`](crate::DeliveryQueue) entry, by `switchboard-client`
/// between reconnects, and by the Redis backplane between connection attempts.
///
/// After the `n`th failure the wait is `cap(n) × (1 − jitter × r)`, with
/// `cap(n) = min(max, base × factor^(n-1))` and `r` uniform in `[0, 1)`: jitter spreads the
/// retries of many clients that failed together. `jitter` 1 is "full jitter" (anywhere
/// between zero and the cap), 0 none (exactly the cap).
///
/// ```
/// use std::{num::NonZeroU32, time::Duration};
/// use switchboard_queue::Backoff;
///
/// let backoff = Backoff::default().with_jitter(0.0);
/// let third = NonZeroU32::new(3).unwrap();
/// assert_eq!(backoff.delay(third, 0.0), Duration::from_secs(2)); // 500 ms × 2²
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Backoff {
    /// The wait after the first failure. Default 500 ms.
    pub base: Duration,
    /// How much each further failure multiplies the wait; at least 1. Default 2.
    pub factor: f64,
    /// The longest wait. Default 30 s.
    pub max: Duration,
    /// The fraction of the wait that is random, from 0 (none) to 1 (anywhere between zero
    /// and the full wait). Default 0.5.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            factor: 2.0,
            max: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl Backoff {
    /// A backoff of `base`, `factor`, `max` and `jitter`, usable in a `const`. `factor`
    /// below 1 counts as 1 and `jitter` is clamped to `0.0..=1.0` when a delay is computed.
    #[must_use]
    pub const fn new(base: Duration, factor: f64, max: Duration, jitter: f64) -> Self {
        Self {
            base,
            factor,
            max,
            jitter,
        }
    }

    /// Sets the wait after the first failure.
    #[must_use]
    pub fn with_base(mut self, base: Duration) -> Self {
        self.base = base;
        self
    }

    /// Sets the growth factor; values below 1 (and NaN) become 1.
    #[must_use]
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = if factor >= 1.0 { factor } else { 1.0 };
        self
    }

    /// Sets the longest wait.
    #[must_use]
    pub fn with_max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Sets the random fraction, clamped to `0.0..=1.0` (NaN becomes 0).
    #[must_use]
    pub fn with_jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        self
    }

    /// The largest wait after failure number `failures`:
    /// `min(max, base × factor^(failures-1))`.
    #[must_use]
    pub fn cap(&self, failures: NonZeroU32) -> Duration {
        let exponent = i32::try_from(failures.get() - 1).unwrap_or(i32::MAX);
        let max = self.max.as_secs_f64();
        let cap = (self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent)).min(max);
        Duration::try_from_secs_f64(cap).unwrap_or(self.max)
    }

    /// The wait after failure number `failures`, for a random draw `random` in `[0, 1)`
    /// (values outside are clamped). Deterministic: the caller supplies `random` from its
    /// own (seedable) generator.
    #[must_use]
    pub fn delay(&self, failures: NonZeroU32, random: f64) -> Duration {
        let max = self.max.as_secs_f64();
        let full = self.cap(failures).as_secs_f64();
        let random = if random.is_nan() {
            0.0
        } else {
            random.clamp(0.0, 1.0)
        };
        let jitter = self.jitter.clamp(0.0, 1.0);
        let waited = (full * (1.0 - jitter * random)).clamp(0.0, max);
        Duration::try_from_secs_f64(waited).unwrap_or(self.max)
    }
}

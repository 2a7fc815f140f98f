use std::num::NonZeroU32;
use std::time::Duration;

/// Exponential backoff with jitter between the attempts of a
/// [`DeliveryQueue`](crate::DeliveryQueue) entry.
///
/// After the `n`th failed attempt the entry waits
/// `min(max, base × factor^(n-1)) × (1 − jitter × r)` with `r` uniform in `[0, 1)`: jitter
/// spreads the retries of many clients that failed together.
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

    /// The wait after failure number `failures`, for a random draw `random` in `[0, 1)`
    /// (values outside are clamped). Deterministic: the queue supplies `random` from its
    /// own seedable generator.
    #[must_use]
    pub fn delay(&self, failures: NonZeroU32, random: f64) -> Duration {
        let exponent = i32::try_from(failures.get() - 1).unwrap_or(i32::MAX);
        let max = self.max.as_secs_f64();
        let full = (self.base.as_secs_f64() * self.factor.max(1.0).powi(exponent)).min(max);
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

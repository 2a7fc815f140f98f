//! The validated shape of a token bucket: capacity and refill rate.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// How many tokens a bucket holds and how fast it refills.
///
/// A bucket starts full with [`capacity`](Self::capacity) tokens (the burst) and regains
/// [`refill`](Self::refill) tokens per [`period`](Self::period), continuously: one token every
/// `period / refill`, rounded **up** to whole nanoseconds, so the effective rate never exceeds the
/// configured one.
///
/// The default is the transport's per-connection message rate: 100 messages per 60 s with a burst
/// of 100.
///
/// ```
/// use std::time::Duration;
/// use switchboard_limiter::{Quota, QuotaError};
///
/// let quota = Quota::new(20, 5, Duration::from_secs(1)).unwrap();
/// assert_eq!(quota.capacity(), 20);
/// assert_eq!(quota.refill_interval(), Duration::from_millis(200));
///
/// assert_eq!(Quota::new(0, 5, Duration::from_secs(1)), Err(QuotaError::ZeroCapacity));
/// assert_eq!(Quota::default(), Quota::new(100, 100, Duration::from_secs(60)).unwrap());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Nanoseconds to regain one token, at least 1.
    interval_ns: u64,
    period_ns: u64,
    capacity: NonZeroU32,
    refill: NonZeroU32,
}

/// Why a [`Quota`] was rejected. Every variant is a configuration mistake to fix, not to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuotaError {
    /// The capacity (burst) is zero: such a bucket could never grant anything. Use at least 1.
    #[error("rate limit capacity (burst) must be at least 1 token")]
    ZeroCapacity,
    /// The refill amount is zero: such a bucket would never refill. Use at least 1.
    #[error("rate limit refill must be at least 1 token per period")]
    ZeroRefill,
    /// The refill period is zero: the rate would be infinite. Use a positive duration.
    #[error("rate limit period must be longer than zero")]
    ZeroPeriod,
    /// Refilling a full bucket would take longer than this crate can count (about 584 years).
    /// Use a shorter period or a smaller capacity.
    #[error("rate limit too slow: refilling {capacity} tokens would take more than 584 years")]
    TooSlow {
        /// The capacity that was asked for.
        capacity: u32,
    },
}

impl Quota {
    /// `capacity` tokens at most, regaining `refill` tokens every `period`.
    ///
    /// # Errors
    ///
    /// [`QuotaError`] when `capacity`, `refill` or `period` is zero, or when refilling the whole
    /// capacity would take more than `u64::MAX` nanoseconds.
    pub fn new(capacity: u32, refill: u32, period: Duration) -> Result<Self, QuotaError> {
        let capacity = NonZeroU32::new(capacity).ok_or(QuotaError::ZeroCapacity)?;
        let refill = NonZeroU32::new(refill).ok_or(QuotaError::ZeroRefill)?;
        if period.is_zero() {
            return Err(QuotaError::ZeroPeriod);
        }
        let too_slow = QuotaError::TooSlow {
            capacity: capacity.get(),
        };
        let period_ns = u64::try_from(period.as_nanos()).map_err(|_| too_slow)?;
        let interval_ns = period_ns.div_ceil(u64::from(refill.get()));
        // The burst tolerance (capacity × interval) must fit the state word.
        interval_ns
            .checked_mul(u64::from(capacity.get()))
            .ok_or(too_slow)?;
        Ok(Self {
            interval_ns,
            period_ns,
            capacity,
            refill,
        })
    }

    /// `rate` tokens per second with a burst of `rate`.
    #[must_use]
    pub const fn per_second(rate: NonZeroU32) -> Self {
        Self::per_period_unchecked(rate, 1_000_000_000)
    }

    /// `rate` tokens per minute with a burst of `rate`.
    #[must_use]
    pub const fn per_minute(rate: NonZeroU32) -> Self {
        Self::per_period_unchecked(rate, 60_000_000_000)
    }

    /// Valid for any `rate` while `period_ns` ≤ 60 s: capacity × interval < period + rate, far
    /// below `u64::MAX`.
    const fn per_period_unchecked(rate: NonZeroU32, period_ns: u64) -> Self {
        Self {
            interval_ns: period_ns.div_ceil(rate.get() as u64),
            period_ns,
            capacity: rate,
            refill: rate,
        }
    }

    /// The most tokens the bucket holds: the largest burst.
    #[must_use]
    pub const fn capacity(&self) -> u32 {
        self.capacity.get()
    }

    /// Tokens regained per [`period`](Self::period).
    #[must_use]
    pub const fn refill(&self) -> u32 {
        self.refill.get()
    }

    /// The refill period.
    #[must_use]
    pub const fn period(&self) -> Duration {
        Duration::from_nanos(self.period_ns)
    }

    /// The time to regain one token: `period / refill`, rounded up to whole nanoseconds.
    #[must_use]
    pub const fn refill_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns)
    }

    /// The time for an empty bucket to fill up again: `capacity × refill_interval`.
    #[must_use]
    pub const fn full_refill(&self) -> Duration {
        Duration::from_nanos(self.tolerance_ns())
    }

    #[inline]
    pub(crate) const fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// The burst tolerance: how far ahead of now the theoretical arrival time may run.
    /// Cannot overflow: checked at construction.
    #[inline]
    pub(crate) const fn tolerance_ns(&self) -> u64 {
        self.interval_ns * self.capacity.get() as u64
    }
}

impl Default for Quota {
    /// 100 tokens per 60 s, with a burst of 100.
    fn default() -> Self {
        Self::per_minute(NonZeroU32::new(100).unwrap())
    }
}

impl fmt::Debug for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quota")
            .field("capacity", &self.capacity)
            .field("refill", &self.refill)
            .field("period", &self.period())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_interval_rounds_up_so_the_rate_is_never_exceeded() {
        let quota = Quota::new(3, 3, Duration::from_secs(1)).unwrap();
        assert_eq!(quota.refill_interval(), Duration::from_nanos(333_333_334));
    }

    #[test]
    fn per_minute_with_the_largest_rate_is_valid() {
        let quota = Quota::per_minute(NonZeroU32::MAX);
        let checked = Quota::new(u32::MAX, u32::MAX, Duration::from_secs(60)).unwrap();
        assert_eq!(quota, checked);
    }
}

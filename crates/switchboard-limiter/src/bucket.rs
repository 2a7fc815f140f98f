//! The lock-free token bucket (GCRA over one atomic word) and its rejection values.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::quota::Quota;

/// A request was refused because the bucket holds too few tokens; it succeeds after
/// [`retry_after`](Self::retry_after).
///
/// The wait is exact to the nanosecond for the clock the bucket reads: retrying the same request
/// after exactly that long succeeds (unless someone else spent the tokens first), a nanosecond
/// earlier fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("rate limited: retry after {} ms", self.retry_after_ms())]
pub struct NotUntil {
    checked_at_ns: u64,
    wait_ns: u64,
}

impl NotUntil {
    /// How long until the request would succeed.
    #[must_use]
    pub const fn retry_after(&self) -> Duration {
        Duration::from_nanos(self.wait_ns)
    }

    /// [`retry_after`](Self::retry_after) in whole milliseconds, rounded **up** so that a client
    /// waiting this long is never refused again for the same reason. Never zero: a refused
    /// request always waits.
    #[must_use]
    pub const fn retry_after_ms(&self) -> u64 {
        self.wait_ns.div_ceil(1_000_000)
    }

    /// The clock reading at which the request was refused (see [`Clock::now`]).
    ///
    /// Feed it to a [`RejectionWindow`](crate::RejectionWindow) to detect sustained abuse.
    #[must_use]
    pub const fn checked_at(&self) -> Duration {
        Duration::from_nanos(self.checked_at_ns)
    }

    /// The clock reading from which the request would succeed: `checked_at + retry_after`.
    #[must_use]
    pub const fn earliest(&self) -> Duration {
        Duration::from_nanos(self.checked_at_ns.saturating_add(self.wait_ns))
    }
}

/// Why [`TokenBucket::try_acquire`] (or a keyed limiter) refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum AcquireError {
    /// Too few tokens now: retry after [`NotUntil::retry_after`].
    #[error(transparent)]
    RateLimited(#[from] NotUntil),
    /// More tokens were asked for than the bucket can ever hold: retrying never succeeds. Split
    /// the request or raise the capacity.
    #[error("{requested} tokens requested, but the bucket holds at most {capacity}")]
    ExceedsCapacity {
        /// The tokens asked for.
        requested: u32,
        /// The bucket's capacity.
        capacity: u32,
    },
}

impl AcquireError {
    /// How long to wait before retrying, or `None` when retrying can never succeed.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited(not_until) => Some(not_until.retry_after()),
            Self::ExceedsCapacity { .. } => None,
        }
    }

    /// Whether the same request can succeed later.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::RateLimited(_))
    }
}

/// Spends `n` (1 ..= capacity) tokens from the bucket whose theoretical arrival time is `tat`.
///
/// GCRA: the bucket is the time `tat` at which it would be full again. Spending `n` tokens
/// pushes it `n × interval` later; that is allowed while it stays within the burst tolerance
/// (`capacity × interval`) of now. A `tat` in the past means a full bucket.
#[inline]
pub(crate) fn spend(tat: &AtomicU64, quota: &Quota, n: u32, now: u64) -> Result<(), NotUntil> {
    let cost = quota.interval_ns() * u64::from(n);
    let tolerance = quota.tolerance_ns();
    // Relaxed is enough: the word publishes no other data, and read-modify-write atomicity alone
    // guarantees that no two callers spend the same tokens.
    let mut current = tat.load(Ordering::Relaxed);
    loop {
        let next = current.max(now).saturating_add(cost);
        let ahead = next - now;
        if ahead > tolerance {
            return Err(NotUntil {
                checked_at_ns: now,
                wait_ns: ahead - tolerance,
            });
        }
        match tat.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(()),
            Err(actual) => current = actual,
        }
    }
}

/// The whole tokens available at `now` in a bucket whose theoretical arrival time is `tat`.
#[inline]
pub(crate) fn available(tat: u64, quota: &Quota, now: u64) -> u32 {
    let debt = tat.saturating_sub(now);
    let free = (quota.tolerance_ns() - debt.min(quota.tolerance_ns())) / quota.interval_ns();
    // free ≤ capacity, which is a u32.
    u32::try_from(free).unwrap_or(u32::MAX)
}

/// A token bucket: a burst of [`Quota::capacity`] tokens, refilled continuously.
///
/// Lock-free: the whole state is one `AtomicU64` (the GCRA "theoretical arrival time"), so a
/// check is a clock read and one compare-and-swap, and needs only `&self`. Share it by reference
/// or in an `Arc`. With the default [`SystemClock`] it takes 32 bytes
/// (`size_of::<TokenBucket>()`): the state word and the [`Quota`] inline.
///
/// ```
/// use std::time::Duration;
/// use switchboard_limiter::{ManualClock, Quota, TokenBucket};
///
/// let clock = ManualClock::new();
/// let bucket = TokenBucket::with_clock(Quota::default(), clock.clone());
/// for _ in 0..100 {
///     bucket.try_acquire_one().unwrap();
/// }
/// let refused = bucket.try_acquire_one().unwrap_err();
/// assert_eq!(refused.retry_after(), Duration::from_millis(600));
///
/// clock.advance(Duration::from_millis(600));
/// assert!(bucket.try_acquire_one().is_ok());
/// ```
pub struct TokenBucket<C = SystemClock> {
    tat: AtomicU64,
    quota: Quota,
    clock: C,
}

impl TokenBucket<SystemClock> {
    /// A full bucket on the system clock.
    #[must_use]
    pub const fn new(quota: Quota) -> Self {
        Self::with_clock(quota, SystemClock)
    }
}

impl<C> TokenBucket<C> {
    /// A full bucket reading `clock`.
    #[must_use]
    pub const fn with_clock(quota: Quota, clock: C) -> Self {
        Self {
            tat: AtomicU64::new(0),
            quota,
            clock,
        }
    }

    /// The bucket's quota.
    #[must_use]
    pub const fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The clock the bucket reads.
    #[must_use]
    pub const fn clock(&self) -> &C {
        &self.clock
    }
}

impl<C: Clock> TokenBucket<C> {
    /// Takes one token, or says how long until one is available.
    ///
    /// # Errors
    ///
    /// [`NotUntil`] when the bucket is empty; nothing is taken.
    #[inline]
    pub fn try_acquire_one(&self) -> Result<(), NotUntil> {
        spend(&self.tat, &self.quota, 1, self.clock.now_nanos())
    }

    /// Takes `n` tokens at once, or none. Taking zero tokens always succeeds.
    ///
    /// # Errors
    ///
    /// [`AcquireError::RateLimited`] when fewer than `n` tokens are available now;
    /// [`AcquireError::ExceedsCapacity`] when `n` is more than the capacity. Nothing is taken.
    #[inline]
    pub fn try_acquire(&self, n: u32) -> Result<(), AcquireError> {
        if n == 0 {
            return Ok(());
        }
        if n > self.quota.capacity() {
            return Err(AcquireError::ExceedsCapacity {
                requested: n,
                capacity: self.quota.capacity(),
            });
        }
        Ok(spend(&self.tat, &self.quota, n, self.clock.now_nanos())?)
    }

    /// The whole tokens available now.
    #[must_use]
    pub fn available(&self) -> u32 {
        available(
            self.tat.load(Ordering::Relaxed),
            &self.quota,
            self.clock.now_nanos(),
        )
    }
}

impl<C: fmt::Debug> fmt::Debug for TokenBucket<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("quota", &self.quota)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    #[test]
    fn a_bucket_on_the_system_clock_is_one_word_plus_its_quota() {
        assert_eq!(size_of::<TokenBucket>(), 32);
        assert_eq!(size_of::<Quota>(), 24);
    }

    #[test]
    fn available_counts_whole_tokens_only() {
        let clock = ManualClock::new();
        let quota = Quota::new(4, 1, Duration::from_secs(1)).unwrap();
        let bucket = TokenBucket::with_clock(quota, clock.clone());
        bucket.try_acquire(4).unwrap();
        clock.advance(Duration::from_millis(1999));
        assert_eq!(bucket.available(), 1);
        clock.advance(Duration::from_millis(1));
        assert_eq!(bucket.available(), 2);
    }
}

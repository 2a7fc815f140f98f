//! Counting refusals to tell a burst from sustained abuse.

use std::time::Duration;

use crate::bucket::NotUntil;
use crate::clock::duration_to_nanos;
use crate::quota::Quota;

/// Counts refused requests in a window, to tell an occasional burst from sustained abuse.
///
/// A window opens at the first refusal recorded after the previous window ended and lasts
/// [`window`](Self::window); [`record`](Self::record) answers `true` once the refusals in the
/// current window exceed [`limit`](Self::limit). [`for_quota`](Self::for_quota) gives the
/// transport's rule: more refused messages within one period than the bucket's capacity.
///
/// It reads the time from each [`NotUntil`] (the bucket's own clock), so it needs no clock and
/// takes 24 bytes. It belongs to one connection and needs `&mut self`.
///
/// ```
/// use std::time::Duration;
/// use switchboard_limiter::{ManualClock, Quota, RejectionWindow, TokenBucket};
///
/// let clock = ManualClock::new();
/// let quota = Quota::new(2, 2, Duration::from_secs(60)).unwrap();
/// let bucket = TokenBucket::with_clock(quota, clock.clone());
/// let mut refusals = RejectionWindow::for_quota(&quota);
///
/// let mut abusive = false;
/// for _ in 0..5 {
///     if let Err(refused) = bucket.try_acquire_one() {
///         abusive = refusals.record(&refused);
///     }
/// }
/// // 2 granted, 3 refused: more refusals than the capacity within one minute.
/// assert!(abusive);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RejectionWindow {
    window_ns: u64,
    started_ns: u64,
    count: u32,
    limit: u32,
}

impl RejectionWindow {
    /// Flags more than `limit` refusals within `window`.
    #[must_use]
    pub fn new(window: Duration, limit: u32) -> Self {
        Self {
            window_ns: duration_to_nanos(window),
            started_ns: 0,
            count: 0,
            limit,
        }
    }

    /// Flags more refusals within one [`Quota::period`] than [`Quota::capacity`].
    #[must_use]
    pub fn for_quota(quota: &Quota) -> Self {
        Self::new(quota.period(), quota.capacity())
    }

    /// Records a refusal; returns whether the refusals in the current window now exceed the
    /// limit.
    pub fn record(&mut self, refused: &NotUntil) -> bool {
        self.record_at(refused.checked_at())
    }

    /// Records a refusal at clock reading `now` (see [`Clock::now`](crate::Clock::now)); returns
    /// whether the refusals in the current window now exceed the limit.
    pub fn record_at(&mut self, now: Duration) -> bool {
        let now = duration_to_nanos(now);
        if self.count == 0 || now.saturating_sub(self.started_ns) >= self.window_ns {
            self.started_ns = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count > self.limit
    }

    /// The refusals counted in the current window (which may have ended: the count resets at
    /// the next [`record`](Self::record)).
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// The number of refusals within one window that is still tolerated.
    #[must_use]
    pub const fn limit(&self) -> u32 {
        self.limit
    }

    /// The window's length.
    #[must_use]
    pub const fn window(&self) -> Duration {
        Duration::from_nanos(self.window_ns)
    }
}

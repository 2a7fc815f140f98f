//! Injectable time: the real monotonic clock and a manual one for tests.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonic source of time for the limiters.
///
/// A reading is the time elapsed since the clock's own origin; only differences between readings
/// of one clock are meaningful. Readings should never go backwards (a limiter tolerates a small
/// step back, as between the timestamp counters of two cores). A limiter reads its clock once per
/// check, so an implementation should be cheap.
pub trait Clock: Send + Sync {
    /// The time elapsed since this clock's origin.
    fn now(&self) -> Duration;

    /// [`now`](Self::now) in whole nanoseconds, saturating at `u64::MAX` (about 584 years).
    ///
    /// The limiters call this one. Override it only to skip the conversion from a clock that
    /// counts nanoseconds natively; it must agree with `now`.
    #[inline]
    fn now_nanos(&self) -> u64 {
        duration_to_nanos(self.now())
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
    fn now(&self) -> Duration {
        (**self).now()
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    #[inline]
    fn now(&self) -> Duration {
        (**self).now()
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        (**self).now_nanos()
    }
}

/// The process's monotonic clock.
///
/// With the default `quanta` feature it reads the CPU's timestamp counter, calibrated to
/// nanoseconds (about half the cost of [`std::time::Instant::now`]), and falls back to the OS
/// clock on machines without an invariant counter. Without the feature it reads
/// [`std::time::Instant`]. The first reading in a process calibrates the counter, once (up to
/// 200 ms); a server can take that reading at startup.
///
/// Its origin is shared by the whole process, so the type is zero-sized and adds nothing to a
/// bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Duration {
        Duration::from_nanos(system_nanos())
    }

    #[inline]
    fn now_nanos(&self) -> u64 {
        system_nanos()
    }
}

/// Counter ticks scaled to nanoseconds since the counter's zero (usually boot).
#[cfg(feature = "quanta")]
#[inline]
fn system_nanos() -> u64 {
    static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
    let clock = CLOCK.get_or_init(quanta::Clock::new);
    clock.delta_as_nanos(0, clock.raw())
}

#[cfg(not(feature = "quanta"))]
#[inline]
fn system_nanos() -> u64 {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    duration_to_nanos(ORIGIN.get_or_init(std::time::Instant::now).elapsed())
}

/// A clock that moves only when told to; its clones share one time.
///
/// Give one clone to a limiter and keep another in the test to [`advance`](Self::advance) it:
/// tests are exact and never sleep.
///
/// ```
/// use std::time::Duration;
/// use switchboard_limiter::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(shared.now(), Duration::from_millis(1500));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock reading zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves this clock and all its clones forward by `by`.
    ///
    /// Saturates at `u64::MAX` nanoseconds (about 584 years).
    pub fn advance(&self, by: Duration) {
        let by = duration_to_nanos(by);
        // fetch_update never fails here: the closure always returns Some.
        let _ = self
            .nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                Some(now.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::Relaxed)
    }
}

/// Whole nanoseconds in `d`, saturating at `u64::MAX` (about 584 years).
#[inline]
pub(crate) fn duration_to_nanos(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_never_goes_backwards() {
        let clock = SystemClock;
        let a = clock.now();
        let b = clock.now();
        assert!(b >= a);
    }

    #[test]
    fn manual_clock_saturates_instead_of_wrapping() {
        let clock = ManualClock::new();
        clock.advance(Duration::MAX);
        clock.advance(Duration::from_secs(1));
        assert_eq!(clock.now(), Duration::from_nanos(u64::MAX));
    }
}

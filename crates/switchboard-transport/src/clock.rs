//! The limiter's clock on Tokio time, so paused-time tests drive rate limits too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchboard_limiter::Clock;
use tokio::time::Instant;

/// Reads [`tokio::time::Instant`]: follows `tokio::time::pause` and `advance` in tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A connection's bucket clock: the moment its session read the frame being charged, set
/// by the session, so that a charge reads no clock of its own (the session has read one
/// for the frame already). On Tokio time, as the session's reads are.
#[derive(Debug, Default)]
pub(crate) struct FrameClock(AtomicU64);

/// Where the bucket's count starts, in nanoseconds before the session's tick origin: the
/// ticks are signed (a paused test clock may run before the origin), the bucket's
/// nanoseconds are not. 2^62 ns is 146 years.
const FRAME_CLOCK_SHIFT: i64 = 1 << 62;

impl FrameClock {
    /// The frame being charged was read `nanos` after the session's tick origin.
    pub(crate) fn set(&self, nanos: i64) {
        // Before the shift's 146 years (never): the start of the count.
        let shifted = u64::try_from(nanos.saturating_add(FRAME_CLOCK_SHIFT)).unwrap_or(0);
        self.0.store(shifted, Ordering::Relaxed);
    }
}

impl Clock for FrameClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }

    fn now_nanos(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_clock_keeps_moments_before_and_after_the_origin_in_order() {
        let clock = FrameClock::default();
        let mut seen = Vec::new();
        for nanos in [-5_000_000_000, -1, 0, 1, 3_600_000_000_000] {
            clock.set(nanos);
            seen.push(clock.now_nanos());
        }
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
        assert_eq!(seen[3] - seen[2], 1);
        assert_eq!(clock.now(), Duration::from_nanos(seen[4]));
    }
}

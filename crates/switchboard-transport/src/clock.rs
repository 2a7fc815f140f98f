//! The limiter's clock on Tokio time, so paused-time tests drive rate limits too.

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

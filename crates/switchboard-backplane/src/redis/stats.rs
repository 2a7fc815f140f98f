//! The Redis backplane's counters, for the metrics layer.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters for the metrics layer; every one only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBackplaneStats {
    /// Publishes delivered to this instance only because Redis was unreachable.
    pub degraded_publishes: u64,
    /// Successful reconnections after a lost connection (the first connection not counted).
    pub reconnects: u64,
    /// Times the liveness probe's echo did not come back in time.
    pub probe_failures: u64,
    /// [`Event::Reset`](crate::Event::Reset)s emitted.
    pub resets: u64,
    /// Messages delivered from history to fill a gap (after a reconnect or a lost push).
    pub gap_fills: u64,
    /// Pub/sub pushes dropped because processing fell behind (each triggers a catch-up).
    pub dropped_pushes: u64,
}

/// The counters behind [`RedisBackplaneStats`], updated without a lock.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) degraded_publishes: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) probe_failures: AtomicU64,
    pub(super) resets: AtomicU64,
    pub(super) gap_fills: AtomicU64,
}

impl Counters {
    /// The counters now, with `dropped_pushes` counted by the push callback.
    pub(super) fn snapshot(&self, dropped_pushes: u64) -> RedisBackplaneStats {
        RedisBackplaneStats {
            degraded_publishes: self.degraded_publishes.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            probe_failures: self.probe_failures.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            gap_fills: self.gap_fills.load(Ordering::Relaxed),
            dropped_pushes,
        }
    }
}

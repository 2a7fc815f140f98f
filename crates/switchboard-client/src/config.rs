//! Plain, validated settings with documented defaults.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

pub use switchboard_queue::Backoff;

/// When to reconnect by default: the cap of reconnect attempt `n` (from 1) is
/// `min(30 s, 1 s × 1.5ⁿ⁻¹)`, and the delay is drawn uniformly below it ("full jitter"), so
/// clients that lost the same server do not come back in lockstep. The browser client's
/// schedule too. Attempts are unlimited unless
/// [`ClientBuilder::max_reconnect_attempts`](crate::ClientBuilder::max_reconnect_attempts)
/// says otherwise.
///
/// ```
/// use std::{num::NonZeroU32, time::Duration};
/// use switchboard_client::RECONNECT_BACKOFF;
///
/// let third = NonZeroU32::new(3).unwrap();
/// assert_eq!(RECONNECT_BACKOFF.cap(third), Duration::from_millis(2250)); // 1 s × 1.5²
/// assert_eq!(RECONNECT_BACKOFF.delay(third, 0.5), Duration::from_millis(1125)); // half of the cap
/// assert_eq!(RECONNECT_BACKOFF.with_jitter(0.0).delay(third, 0.5), Duration::from_millis(2250));
/// ```
pub const RECONNECT_BACKOFF: Backoff =
    Backoff::new(Duration::from_secs(1), 1.5, Duration::from_secs(30), 1.0);

/// The client's own application-level heartbeat: a `ping` frame every `interval`, answered
/// by a `pong`. It measures the connection (see [`Quality`](crate::Quality)) and detects a
/// silently dead one, which TCP alone may take minutes to notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Heartbeat {
    /// How often a ping is sent; the first one right after connecting. Default 10 s.
    pub interval: Duration,
    /// A ping not answered within this time counts as lost. Default 5 s.
    pub timeout: Duration,
    /// After this many lost pings in a row the connection is deemed dead and replaced
    /// ([`DisconnectReason::Unresponsive`](crate::DisconnectReason::Unresponsive)); `None`
    /// only measures. Default 3.
    pub dead_after: Option<NonZeroU32>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            dead_after: NonZeroU32::new(3),
        }
    }
}

impl Heartbeat {
    /// Sets [`Heartbeat::interval`].
    #[must_use]
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets [`Heartbeat::timeout`].
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Heartbeat::dead_after`].
    #[must_use]
    pub fn with_dead_after(mut self, dead_after: Option<NonZeroU32>) -> Self {
        self.dead_after = dead_after;
        self
    }
}

/// What [`Quality`](crate::Quality) is computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QualityConfig {
    /// Latency and jitter are computed over the last this many answered pings, and loss
    /// over the last this many pings that were answered or timed out. Default 10.
    pub samples: NonZeroUsize,
    /// Reconnects within this window make a connection less stable. Default 5 minutes.
    pub stability_window: Duration,
}

impl Default for QualityConfig {
    fn default() -> Self {
        Self {
            samples: NonZeroUsize::new(10).expect("10 is not zero"),
            stability_window: Duration::from_secs(300),
        }
    }
}

impl QualityConfig {
    /// Sets [`QualityConfig::samples`].
    #[must_use]
    pub fn with_samples(mut self, samples: NonZeroUsize) -> Self {
        self.samples = samples;
        self
    }

    /// Sets [`QualityConfig::stability_window`].
    #[must_use]
    pub fn with_stability_window(mut self, window: Duration) -> Self {
        self.stability_window = window;
        self
    }
}

/// The offline publish queue: every publish goes through it, is sent when connected, and
/// stays until the server acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Most publishes held, in any state. When full, a publish evicts the oldest waiting
    /// publish of a strictly lower priority, or is refused. Default 1000.
    pub capacity: NonZeroUsize,
    /// A sent publish not acknowledged within this time counts as a failed attempt.
    /// Default 10 s.
    pub ack_timeout: Duration,
    /// Failed attempts after which a publish is reported failed. Default 3.
    pub max_attempts: NonZeroU32,
    /// The wait before a failed publish is sent again. Default [`Backoff::default`]
    /// (500 ms, ×2, at most 30 s, half jittered).
    pub retry_backoff: Backoff,
    /// Publishes sent and not yet acknowledged, at most. Keeps a long offline queue from
    /// tripping the server's rate limit in one burst. Default 32.
    pub max_in_flight: NonZeroUsize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(1000).expect("1000 is not zero"),
            ack_timeout: Duration::from_secs(10),
            max_attempts: NonZeroU32::new(3).expect("3 is not zero"),
            retry_backoff: Backoff::default(),
            max_in_flight: NonZeroUsize::new(32).expect("32 is not zero"),
        }
    }
}

impl QueueConfig {
    /// Sets [`QueueConfig::capacity`].
    #[must_use]
    pub fn with_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets [`QueueConfig::ack_timeout`].
    #[must_use]
    pub fn with_ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// Sets [`QueueConfig::max_attempts`].
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: NonZeroU32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets [`QueueConfig::retry_backoff`].
    #[must_use]
    pub fn with_retry_backoff(mut self, backoff: Backoff) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets [`QueueConfig::max_in_flight`].
    #[must_use]
    pub fn with_max_in_flight(mut self, max: NonZeroUsize) -> Self {
        self.max_in_flight = max;
        self
    }
}

//! Configuration of the Redis backplane.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use crate::error::{BackplaneError, Result};
use crate::history::HistoryOverride;

/// The default bound on one channel's history in Redis: 4 MiB of message data.
pub const DEFAULT_HISTORY_MAX_CHANNEL_BYTES: usize = 4 << 20;

/// Configuration of a [`RedisBackplane`](crate::RedisBackplane). Plain data with documented
/// defaults; change it with the by-value setters. [`RedisBackplane::connect`] validates it.
///
/// [`RedisBackplane::connect`]: crate::RedisBackplane::connect
///
/// ```
/// use std::time::Duration;
/// use switchboard_backplane::RedisBackplaneConfig;
///
/// let config = RedisBackplaneConfig::default()
///     .prefix("chat:")
///     .probe_interval(Duration::from_millis(500));
/// assert_eq!(config.prefix, "chat:");
/// assert_eq!(config.command_timeout, Duration::from_secs(1));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBackplaneConfig {
    /// Prefix of every key and pub/sub channel (default `"switchboard:"`). Instances sharing
    /// channels must use the same prefix; it must not contain `{` or `}`.
    pub prefix: String,
    /// How many messages each channel's history keeps (default 100; 0 keeps none).
    pub history_size: usize,
    /// How long a message stays recoverable (default 5 minutes).
    pub history_ttl: Duration,
    /// How many dedupe keys each channel remembers: those of its latest keyed publishes
    /// (default 1024; 0 disables deduplication). See
    /// [`Backplane::publish_with`](crate::Backplane::publish_with).
    pub dedupe_window: usize,
    /// The most bytes of message history this instance holds in memory across all channels
    /// of its local fallback (the history it keeps while Redis is unreachable; default
    /// 256 MiB; 0: no bound beyond each channel's own). Over it, the oldest messages of the
    /// least recently published channels are trimmed. The history in Redis is bounded per
    /// channel by [`history_size`](Self::history_size) messages of at most the server's
    /// message size each; bound Redis itself with `maxmemory` (docs/operations.md).
    pub history_max_bytes: usize,
    /// The most bytes of message data one channel's history keeps in Redis (default 4 MiB;
    /// 0: bounded by [`history_size`](Self::history_size) alone). The oldest messages go
    /// first; the newest is always kept. With the count, it bounds what Redis holds per
    /// channel: bound Redis as a whole with `maxmemory`.
    pub history_max_channel_bytes: usize,
    /// How long a channel's epoch and last offset are kept after its last publish (default
    /// 24 hours). Past it the channel starts a new epoch.
    pub channel_ttl: Duration,
    /// How long a presence member lives without activity (default 30 minutes).
    pub presence_ttl: Duration,
    /// How often expired members of this instance's channels are removed, with a leave event
    /// (default 5 minutes).
    pub presence_sweep: Duration,
    /// How often the liveness probe publishes to this instance's probe channel (default 2 s).
    /// Health turns degraded when no echo has come back for twice this long.
    pub probe_interval: Duration,
    /// Timeout of every Redis command (default 1 s).
    pub command_timeout: Duration,
    /// Timeout of a connection attempt, handshake included (default 1 s).
    pub connect_timeout: Duration,
    /// First reconnection delay (default 100 ms). Each further attempt doubles the cap, up to
    /// [`backoff_max`](Self::backoff_max); the delay is random below the cap (full jitter).
    pub backoff_initial: Duration,
    /// Largest reconnection delay (default 5 s).
    pub backoff_max: Duration,
    /// Consecutive failed or timed-out commands that open the circuit (default 3): the
    /// connection is dropped, calls go local until a reconnect succeeds.
    pub failure_threshold: NonZeroU32,
    /// How many events a receiver may fall behind before it gets
    /// [`Event::Lagged`](crate::Event::Lagged) (default 16384).
    pub event_capacity: NonZeroUsize,
    /// How many pub/sub pushes may wait for processing (default 65536). Past it, pushes are
    /// dropped and every channel catches up from history.
    pub push_capacity: NonZeroUsize,
    /// Other history bounds for some channels, by name prefix (default none), in Redis and
    /// in the local fallback. See [`HistoryOverride`].
    pub history_overrides: Vec<HistoryOverride>,
}

impl Default for RedisBackplaneConfig {
    /// History, dedupe and presence default as in the memory backplane (one definition):
    /// switching backplanes changes where they live, not how long.
    fn default() -> Self {
        let shared = crate::MemoryBackplaneConfig::default();
        Self {
            prefix: "switchboard:".into(),
            history_size: shared.history_size,
            history_ttl: shared.history_ttl,
            dedupe_window: shared.dedupe_window,
            history_max_bytes: shared.history_max_bytes,
            history_max_channel_bytes: DEFAULT_HISTORY_MAX_CHANNEL_BYTES,
            channel_ttl: Duration::from_secs(24 * 60 * 60),
            presence_ttl: shared.presence_ttl,
            presence_sweep: shared.presence_sweep,
            probe_interval: Duration::from_secs(2),
            command_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            failure_threshold: NonZeroU32::new(3).expect("nonzero"),
            event_capacity: shared.event_capacity,
            push_capacity: NonZeroUsize::new(65536).expect("nonzero"),
            history_overrides: Vec::new(),
        }
    }
}

impl RedisBackplaneConfig {
    /// Adds a [`HistoryOverride`] to [`history_overrides`](Self::history_overrides).
    #[must_use]
    pub fn history_override(mut self, rule: HistoryOverride) -> Self {
        self.history_overrides.push(rule);
        self
    }

    /// Sets [`prefix`](Self::prefix).
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    switchboard_types::setters! {
        /// Sets [`history_size`](Self::history_size).
        history_size: usize,
        /// Sets [`history_ttl`](Self::history_ttl).
        history_ttl: Duration,
        /// Sets [`dedupe_window`](Self::dedupe_window).
        dedupe_window: usize,
        /// Sets [`history_max_bytes`](Self::history_max_bytes).
        history_max_bytes: usize,
        /// Sets [`history_max_channel_bytes`](Self::history_max_channel_bytes).
        history_max_channel_bytes: usize,
        /// Sets [`channel_ttl`](Self::channel_ttl).
        channel_ttl: Duration,
        /// Sets [`presence_ttl`](Self::presence_ttl).
        presence_ttl: Duration,
        /// Sets [`presence_sweep`](Self::presence_sweep).
        presence_sweep: Duration,
        /// Sets [`probe_interval`](Self::probe_interval).
        probe_interval: Duration,
        /// Sets [`command_timeout`](Self::command_timeout).
        command_timeout: Duration,
        /// Sets [`connect_timeout`](Self::connect_timeout).
        connect_timeout: Duration,
        /// Sets [`backoff_initial`](Self::backoff_initial).
        backoff_initial: Duration,
        /// Sets [`backoff_max`](Self::backoff_max).
        backoff_max: Duration,
        /// Sets [`failure_threshold`](Self::failure_threshold).
        failure_threshold: NonZeroU32,
        /// Sets [`event_capacity`](Self::event_capacity).
        event_capacity: NonZeroUsize,
        /// Sets [`push_capacity`](Self::push_capacity).
        push_capacity: NonZeroUsize,
    }

    /// Checks the values that have no meaningful zero or order.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.prefix.contains(['{', '}']) {
            return Err(BackplaneError::Config(
                format!("prefix {:?} must not contain '{{' or '}}'", self.prefix).into(),
            ));
        }
        let at_least_a_millisecond = [
            ("history_ttl", self.history_ttl),
            ("channel_ttl", self.channel_ttl),
            ("presence_ttl", self.presence_ttl),
            ("presence_sweep", self.presence_sweep),
            ("probe_interval", self.probe_interval),
            ("command_timeout", self.command_timeout),
            ("connect_timeout", self.connect_timeout),
            ("backoff_initial", self.backoff_initial),
        ];
        for (name, value) in at_least_a_millisecond {
            if value < Duration::from_millis(1) {
                return Err(BackplaneError::Config(
                    format!("{name} must be at least 1 ms, got {value:?}").into(),
                ));
            }
        }
        if self.backoff_max < self.backoff_initial {
            return Err(BackplaneError::Config(
                format!(
                    "backoff_max ({:?}) is shorter than backoff_initial ({:?})",
                    self.backoff_max, self.backoff_initial
                )
                .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_as_documented() {
        let config = RedisBackplaneConfig::default();
        assert!(config.validate().is_ok());
        assert_eq!(config.history_size, 100);
        assert_eq!(config.probe_interval, Duration::from_secs(2));
        assert_eq!(config.backoff_max, Duration::from_secs(5));
    }

    #[test]
    fn zero_timeouts_braces_in_the_prefix_and_inverted_backoff_are_rejected() {
        let zero = RedisBackplaneConfig::default().command_timeout(Duration::ZERO);
        assert!(matches!(zero.validate(), Err(BackplaneError::Config(_))));
        let braces = RedisBackplaneConfig::default().prefix("a{b}");
        assert!(matches!(braces.validate(), Err(BackplaneError::Config(_))));
        let inverted = RedisBackplaneConfig::default()
            .backoff_initial(Duration::from_secs(2))
            .backoff_max(Duration::from_secs(1));
        assert!(matches!(
            inverted.validate(),
            Err(BackplaneError::Config(_))
        ));
    }
}

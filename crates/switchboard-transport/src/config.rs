//! Transport configuration.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use switchboard_limiter::Quota;

/// How WebSocket sessions behave. Plain data with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransportConfig {
    /// Largest inbound message in bytes (default 65536). A message of exactly this size is
    /// accepted; a larger one closes the connection with 1009.
    pub max_message_bytes: usize,
    /// How often the server sends a WebSocket ping (default 30 s); also announced in
    /// `welcome.heartbeatMs`.
    pub heartbeat: Duration,
    /// A connection from which no frame (pongs included) arrives for this long is closed
    /// with 4000 (default 5 minutes).
    pub idle_timeout: Duration,
    /// Longest time a client may take to send its upgrade request (default 10 s): slowloris
    /// protection.
    pub handshake_timeout: Duration,
    /// Messages per connection (default 100 per 60 s, burst 100). Every frame but `ping`
    /// counts.
    pub rate_limit: Quota,
    /// Messages per user — the token's `sub`, or for connections without a user, the client
    /// IP — across all of its connections and reconnects (default 1000 per 60 s, burst
    /// 1000; `None`: off). Charged beside [`rate_limit`](Self::rate_limit), for the same
    /// frames, with the same `rate_limited` answer: reconnecting does not refill it. At most
    /// 100,000 users or addresses are remembered at once (idle ones are forgotten first).
    pub user_rate_limit: Option<Quota>,
    /// Frames held for a slow client before evicting low priority ones (default 1024).
    pub outbound_capacity: NonZeroUsize,
    /// Bytes held for a slow client (default 4 MiB).
    pub outbound_max_bytes: NonZeroUsize,
    /// Concurrent connections in total; `None` is unlimited (default).
    pub max_connections: Option<NonZeroU32>,
    /// Concurrent connections per client IP; `None` is unlimited (default 10).
    pub max_connections_per_ip: Option<NonZeroU32>,
    /// Concurrent connections of one user (`sub`), counted on every instance of the
    /// backplane; `None` is unlimited (default). Each connection holds a lease renewed every
    /// third of [`user_lease_ttl`](Self::user_lease_ttl): a crashed instance's connections
    /// stop counting when their leases expire. While the backplane cannot count (Redis
    /// down), connections are admitted, with a warning: refusing every user would turn a
    /// Redis outage into a full one.
    pub max_connections_per_user: Option<NonZeroU32>,
    /// How long a connection's lease lasts without renewal (default 60 s).
    pub user_lease_ttl: Duration,
    /// `Retry-After` sent with a 429 for the per-IP cap (default 10 s).
    pub retry_after: Duration,
    /// Allowed `Origin` values; `None` allows any (default). Requests without `Origin`
    /// (non-browser clients) are always allowed.
    pub allowed_origins: Option<Vec<String>>,
    /// On shutdown, sessions are closed with 1001 at random moments within this window, so
    /// clients do not all reconnect at once (default 5 s).
    pub drain_window: Duration,
    /// Opt-in write coalescing (default `None`: off). With a window, frames for a connection
    /// are never written the moment they are published: the first one waiting starts the
    /// window, and everything that arrived by its end goes out in one write. The timer
    /// ticks every millisecond, and a window longer than a tick ends on the last tick within
    /// it, so no frame waits longer than the window (nor more than a tick less). At high
    /// per-channel rates this trades up to the window in latency for far fewer writes (the
    /// CPU cost of a delivery is mostly its write). Without it, a frame is written straight
    /// to the socket by the fan-out when nothing is waiting for that connection (plain TCP),
    /// and queued only on back-pressure.
    pub write_coalesce: Option<Duration>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            max_message_bytes: switchboard_protocol::DEFAULT_MAX_MESSAGE_BYTES,
            heartbeat: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            rate_limit: Quota::new(100, 100, Duration::from_secs(60))
                .expect("the default quota is valid"),
            user_rate_limit: Some(
                Quota::new(1000, 1000, Duration::from_secs(60))
                    .expect("the default quota is valid"),
            ),
            outbound_capacity: NonZeroUsize::new(1024).expect("non-zero"),
            outbound_max_bytes: NonZeroUsize::new(4 << 20).expect("non-zero"),
            max_connections: None,
            max_connections_per_ip: NonZeroU32::new(10),
            max_connections_per_user: None,
            user_lease_ttl: Duration::from_secs(60),
            retry_after: Duration::from_secs(10),
            allowed_origins: None,
            drain_window: Duration::from_secs(5),
            write_coalesce: None,
        }
    }
}

impl TransportConfig {
    switchboard_types::setters! {
        /// Sets [`TransportConfig::max_message_bytes`].
        max_message_bytes: usize,
        /// Sets [`TransportConfig::heartbeat`].
        heartbeat: Duration,
        /// Sets [`TransportConfig::idle_timeout`].
        idle_timeout: Duration,
        /// Sets [`TransportConfig::handshake_timeout`].
        handshake_timeout: Duration,
        /// Sets [`TransportConfig::rate_limit`].
        rate_limit: Quota,
        /// Sets [`TransportConfig::user_rate_limit`].
        user_rate_limit: Option<Quota>,
        /// Sets [`TransportConfig::outbound_capacity`].
        outbound_capacity: NonZeroUsize,
        /// Sets [`TransportConfig::outbound_max_bytes`].
        outbound_max_bytes: NonZeroUsize,
        /// Sets [`TransportConfig::max_connections`].
        max_connections: Option<NonZeroU32>,
        /// Sets [`TransportConfig::max_connections_per_ip`].
        max_connections_per_ip: Option<NonZeroU32>,
        /// Sets [`TransportConfig::max_connections_per_user`].
        max_connections_per_user: Option<NonZeroU32>,
        /// Sets [`TransportConfig::user_lease_ttl`].
        user_lease_ttl: Duration,
        /// Sets [`TransportConfig::retry_after`].
        retry_after: Duration,
        /// Sets [`TransportConfig::allowed_origins`].
        allowed_origins: Option<Vec<String>>,
        /// Sets [`TransportConfig::drain_window`].
        drain_window: Duration,
        /// Sets [`TransportConfig::write_coalesce`].
        write_coalesce: Option<Duration>,
    }
}

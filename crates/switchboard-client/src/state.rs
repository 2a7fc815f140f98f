//! The connection's observable state.

use std::time::Duration;

use crate::DisconnectReason;

/// Where the connection is. Observed through [`Client::state`](crate::Client::state), a
/// `watch` receiver: it always holds the latest state, and a slow observer may skip
/// intermediate ones.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionState {
    /// An attempt is under way (TCP, TLS, upgrade, `welcome`).
    Connecting {
        /// 0 for the first connection, then the number of the reconnect attempt.
        attempt: u32,
    },
    /// Connected: subscriptions are being restored and the offline queue flushed.
    Connected {
        /// The server's id for this connection.
        connection_id: String,
        /// The authenticated user, `None` in open mode.
        user_id: Option<String>,
    },
    /// Waiting `delay` before reconnect attempt `attempt`.
    Reconnecting {
        /// The attempt that starts after the delay, from 1.
        attempt: u32,
        /// The (jittered) delay.
        delay: Duration,
        /// Why the last connection or attempt ended.
        reason: DisconnectReason,
    },
    /// Closed by the application ([`Client::close`](crate::Client::close) or dropping the
    /// last handle). Final.
    Disconnected {
        /// Why ([`DisconnectReason::ClientClosed`]).
        reason: DisconnectReason,
    },
    /// The client gave up: reconnecting cannot help
    /// ([`DisconnectReason::should_reconnect`] is `false`), or
    /// [`ClientBuilder::max_reconnect_attempts`](crate::ClientBuilder::max_reconnect_attempts)
    /// attempts failed. Final.
    Error {
        /// The last failure.
        reason: DisconnectReason,
        /// Reconnect attempts made before giving up.
        attempts: u32,
    },
}

impl ConnectionState {
    /// Whether the client is connected now.
    #[must_use]
    pub fn is_connected(&self) -> bool {
        matches!(self, Self::Connected { .. })
    }

    /// Whether the client has stopped for good ([`Disconnected`](Self::Disconnected) or
    /// [`Error`](Self::Error)).
    #[must_use]
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Disconnected { .. } | Self::Error { .. })
    }

    /// Why the connection is down, if it is.
    #[must_use]
    pub fn reason(&self) -> Option<&DisconnectReason> {
        match self {
            Self::Reconnecting { reason, .. }
            | Self::Disconnected { reason }
            | Self::Error { reason, .. } => Some(reason),
            Self::Connecting { .. } | Self::Connected { .. } => None,
        }
    }
}

//! What can go wrong, and what the caller should do about it.

use std::time::Duration;

use switchboard_protocol::{ErrorCode, NameError};

/// Errors of the client's own calls (building, subscribing, publishing).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not a `ws://` or `wss://` URL this client can use. Fix it.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A channel name or event type breaks the protocol's naming rules. Fix the name.
    #[error("invalid name: {0}")]
    InvalidName(#[from] NameError),
    /// The TLS settings could not be used (unreadable PEM, no certificate in it). Fix them.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The offline queue is full of publishes at least as important as this one; it was not
    /// queued. Wait for the connection to drain the queue, or raise its capacity.
    #[error("the offline queue is full; nothing less important than this publish to evict")]
    QueueFull,
    /// The encoded publish is larger than the server accepts
    /// ([`ClientBuilder::max_publish_bytes`](crate::ClientBuilder::max_publish_bytes)); it
    /// was not queued, since the server would close the connection (1009) at every attempt.
    /// Send less.
    #[error("the publish is {bytes} bytes encoded, the limit is {max}; send less")]
    TooLarge {
        /// Its encoded size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The offline queue's file could not be opened or written; the publish was not queued.
    /// See the source for whether a retry can help.
    #[error("offline queue storage: {0}")]
    Queue(#[from] switchboard_queue::QueueError),
    /// The client was closed (by [`Client::close`](crate::Client::close), or it gave up
    /// reconnecting). Build a new one.
    #[error("the client is closed")]
    Closed,
    /// [`ClientBuilder::build`](crate::ClientBuilder::build) was called outside a Tokio
    /// runtime, which the client's background task needs.
    #[error("a switchboard client must be built inside a Tokio runtime")]
    NoRuntime,
    /// The file keeping the client id beside the queue file could not be read or written.
    /// Check the directory's permissions.
    #[error("client id file {path:?}: {source}")]
    ClientIdFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why a connection ended or an attempt failed, carried by
/// [`ConnectionState`](crate::ConnectionState).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The TCP or TLS connection could not be made (refused, unreachable, bad certificate).
    ConnectFailed {
        /// The underlying error.
        message: String,
    },
    /// Connecting (TCP, TLS, upgrade and `welcome`) took longer than the connect timeout.
    ConnectTimeout,
    /// The server answered the upgrade with an HTTP error instead of switching protocols.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The `error` code of the JSON body, when there was one (`"unauthorized"`, …).
        error: Option<String>,
        /// The `Retry-After` the server asked for (429), respected by the next attempt.
        retry_after: Option<Duration>,
    },
    /// The server closed the connection with a close frame.
    Closed {
        /// The close code (see [`CloseCode`](switchboard_protocol::CloseCode)).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The connection broke without a close frame (reset, end of stream, write error).
    ConnectionLost {
        /// The underlying error.
        message: String,
    },
    /// The heartbeat's pings went unanswered, so the connection was deemed dead.
    Unresponsive {
        /// Pings lost in a row.
        missed: u32,
    },
    /// The server broke the protocol (no `welcome` first).
    Protocol {
        /// What it did.
        message: String,
    },
    /// The application closed the client, or dropped its last handle.
    ClientClosed,
}

impl DisconnectReason {
    /// Whether reconnecting can help. `false` for an upgrade refused with a client error
    /// (4xx other than 408 and 429: bad credentials, forbidden origin, wrong path), for close
    /// codes 1008 (abuse: do not reconnect in a loop) and 4003 (the server disconnected this
    /// user on purpose), and for [`ClientClosed`](Self::ClientClosed).
    #[must_use]
    pub fn should_reconnect(&self) -> bool {
        match self {
            Self::Rejected { status, .. } => {
                !(400..500).contains(status) || *status == 408 || *status == 429
            }
            Self::Closed { code, .. } => !matches!(code, 1008 | 4003),
            Self::ClientClosed => false,
            Self::ConnectFailed { .. }
            | Self::ConnectTimeout
            | Self::ConnectionLost { .. }
            | Self::Unresponsive { .. }
            | Self::Protocol { .. } => true,
        }
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ConnectFailed { message } => write!(f, "connect failed: {message}"),
            Self::ConnectTimeout => f.write_str("connect timed out"),
            Self::Rejected { status, error, .. } => match error {
                Some(error) => write!(f, "upgrade rejected with {status} ({error})"),
                None => write!(f, "upgrade rejected with {status}"),
            },
            Self::Closed { code, reason } => write!(f, "closed by the server: {code} {reason}"),
            Self::ConnectionLost { message } => write!(f, "connection lost: {message}"),
            Self::Unresponsive { missed } => write!(f, "{missed} pings in a row went unanswered"),
            Self::Protocol { message } => write!(f, "protocol violation: {message}"),
            Self::ClientClosed => f.write_str("closed by the application"),
        }
    }
}

/// Why a publish was not acknowledged. Every variant is final: the publish has left the
/// queue (except [`Closed`](Self::Closed) with a file-backed queue, where it stays in the
/// file for the next client).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// Every attempt failed (no ack within the ack timeout, or a retryable error such as
    /// `rate_limited`); the publish was dead-lettered. The server may still have received
    /// an attempt whose ack was lost.
    #[error("no acknowledgement after {attempts} attempts")]
    Failed {
        /// Attempts made.
        attempts: u32,
    },
    /// The server refused it with an error that retrying cannot fix (`forbidden`,
    /// `bad_request`, `too_large`, …).
    #[error("refused by the server: {code}: {message}")]
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// A more important publish evicted it from the full queue before it was sent.
    #[error("evicted from the full offline queue by a more important publish")]
    Evicted,
    /// [`Client::clear_queue`](crate::Client::clear_queue) removed it.
    #[error("removed by clear_queue")]
    Cleared,
    /// The client closed before the publish was acknowledged.
    #[error("the client closed before an acknowledgement")]
    Closed,
}

/// `Result` with [`ClientError`] as the default error.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

//! Backplane errors.

use std::error::Error;
use std::fmt;

/// Why a backplane operation failed.
///
/// [`source`](Error::source) is the error that caused it, when there is one (for the Redis
/// backplane a `redis::RedisError`, itself caused by an `std::io::Error` when the network
/// failed), so a report can print the whole chain.
#[derive(Debug)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The shared store is unreachable or did not answer in time. Retry later; the health
    /// signal says when it is back.
    Unavailable(ErrorDetail),
    /// The store answered with something unexpected (a bug or a foreign writer). Report it.
    Protocol(ErrorDetail),
    /// The backplane was shut down. Do not retry.
    Closed,
    /// The configuration is invalid. Fix it.
    Config(ErrorDetail),
}

impl BackplaneError {
    /// Whether the same call may succeed later.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl fmt::Display for BackplaneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable(detail) => write!(f, "backplane unavailable: {detail}"),
            Self::Protocol(detail) => write!(f, "backplane protocol error: {detail}"),
            Self::Closed => f.write_str("backplane closed"),
            Self::Config(detail) => write!(f, "invalid backplane configuration: {detail}"),
        }
    }
}

impl Error for BackplaneError {
    /// The underlying error itself (not the [`ErrorDetail`], which only carries it), so the
    /// chain names each cause once.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            Self::Unavailable(detail) | Self::Protocol(detail) | Self::Config(detail) => {
                detail.source()
            }
            Self::Closed => None,
        }
    }
}

/// What a [`BackplaneError`] says: the message, and the error that caused it (if any), which
/// [`BackplaneError`]'s [`source`](Error::source) returns.
#[derive(Debug)]
pub struct ErrorDetail {
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
}

impl ErrorDetail {
    /// A detail with a message and no underlying error.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A detail with a message and the error behind it, which
    /// [`BackplaneError`]'s [`source`](Error::source) returns.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl Error + Send + Sync + 'static,
    ) -> Self {
        Self::caused_by(message, Some(source))
    }

    /// A detail with a message and the error behind it (when there is one).
    pub(crate) fn caused_by(
        message: impl Into<String>,
        source: Option<impl Error + Send + Sync + 'static>,
    ) -> Self {
        Self {
            message: message.into(),
            source: source.map(|e| Box::new(e) as Box<dyn Error + Send + Sync>),
        }
    }

    /// The message, as the [`BackplaneError`] displays it after its variant's words.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error that caused it, if any.
    #[must_use]
    pub fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for ErrorDetail {
    fn from(message: String) -> Self {
        Self::new(message)
    }
}

impl From<&str> for ErrorDetail {
    fn from(message: &str) -> Self {
        Self::new(message)
    }
}

/// `Result` with [`BackplaneError`].
pub type Result<T, E = BackplaneError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_keeps_the_message_and_source_is_the_underlying_error() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = BackplaneError::Unavailable(ErrorDetail::caused_by("redis: down", Some(io)));
        assert_eq!(err.to_string(), "backplane unavailable: redis: down");
        let source = err.source().expect("a source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("the io error itself");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
        assert!(BackplaneError::Closed.source().is_none());
        let config = BackplaneError::Config(ErrorDetail::new("zero"));
        assert_eq!(config.to_string(), "invalid backplane configuration: zero");
        assert!(config.source().is_none());
    }
}

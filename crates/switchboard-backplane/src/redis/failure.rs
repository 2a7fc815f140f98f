//! How Redis calls and connections fail, keeping the [`RedisError`] behind each failure so
//! a [`BackplaneError`] can name it as its [`source`](std::error::Error::source).

use redis::RedisError;

use crate::error::{BackplaneError, ErrorDetail};
use crate::types::DegradedCause;

/// What went wrong: the words for logs and the health, and the Redis error behind them when
/// there is one (a timeout or a reply we cannot read has none).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) reason: String,
    pub(crate) source: Option<RedisError>,
}

impl Failure {
    /// A failure that Redis reported.
    pub(crate) fn redis(error: RedisError) -> Self {
        Self {
            reason: format!("redis: {error}"),
            source: Some(error),
        }
    }

    /// [`BackplaneError::Protocol`] with this failure as its cause.
    pub(crate) fn into_protocol(self) -> BackplaneError {
        BackplaneError::Protocol(ErrorDetail::caused_by(self.reason, self.source))
    }
}

impl From<String> for Failure {
    fn from(reason: String) -> Self {
        Self {
            reason,
            source: None,
        }
    }
}

impl From<&str> for Failure {
    fn from(reason: &str) -> Self {
        reason.to_owned().into()
    }
}

/// Why a Redis call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The connection is unusable (closed, reset, or the server turned read-only after a
    /// failover): reconnect.
    Broken(Failure),
    /// A transient server state (loading, busy): counts towards opening the circuit.
    Transient(Failure),
    /// No answer in time: counts towards opening the circuit.
    TimedOut(Failure),
    /// The server answered with an error or with something we did not write.
    Protocol(Failure),
}

impl CallError {
    pub(crate) fn failure(&self) -> &Failure {
        match self {
            Self::Broken(f) | Self::Transient(f) | Self::TimedOut(f) | Self::Protocol(f) => f,
        }
    }

    pub(crate) fn into_failure(self) -> Failure {
        match self {
            Self::Broken(f) | Self::Transient(f) | Self::TimedOut(f) | Self::Protocol(f) => f,
        }
    }

    pub(crate) fn reason(&self) -> &str {
        &self.failure().reason
    }
}

impl From<RedisError> for CallError {
    fn from(e: RedisError) -> Self {
        let kind: fn(Failure) -> Self = match e.code() {
            Some("READONLY") => Self::Broken,
            Some("LOADING" | "BUSY" | "MASTERDOWN" | "TRYAGAIN" | "CLUSTERDOWN") => Self::Transient,
            _ if e.is_timeout() => Self::TimedOut,
            _ if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
                || e.is_unrecoverable_error() =>
            {
                Self::Broken
            }
            _ => Self::Protocol,
        };
        kind(Failure::redis(e))
    }
}

/// Why a connection is given up: the kind (for the health and the metrics), the words, and
/// the Redis error behind them when there is one.
#[derive(Debug, Clone)]
pub(crate) struct Break {
    pub(crate) cause: DegradedCause,
    pub(crate) reason: String,
    pub(crate) source: Option<RedisError>,
}

impl Break {
    pub(crate) fn new(cause: DegradedCause, reason: impl Into<String>) -> Self {
        Self {
            cause,
            reason: reason.into(),
            source: None,
        }
    }

    /// Given up because of `failure`, in its words.
    pub(crate) fn after(cause: DegradedCause, failure: Failure) -> Self {
        Self {
            cause,
            reason: failure.reason,
            source: failure.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use redis::ErrorKind;

    use super::*;

    #[test]
    fn a_refused_connection_is_broken_and_keeps_the_redis_error() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let error = CallError::from(RedisError::from(io));
        let CallError::Broken(failure) = &error else {
            panic!("not Broken: {error:?}");
        };
        assert!(failure.reason.starts_with("redis: "), "{}", failure.reason);
        assert!(
            failure
                .source
                .as_ref()
                .is_some_and(RedisError::is_connection_refusal)
        );
    }

    #[test]
    fn a_server_error_is_a_protocol_failure_whose_source_is_the_redis_error() {
        let redis = RedisError::from((ErrorKind::Client, "bad reply"));
        let error = CallError::from(redis).into_failure().into_protocol();
        assert!(
            error
                .to_string()
                .starts_with("backplane protocol error: redis: ")
        );
        let source = std::error::Error::source(&error).expect("a source");
        assert!(source.downcast_ref::<RedisError>().is_some());
    }
}

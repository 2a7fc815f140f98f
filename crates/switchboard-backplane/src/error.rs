//! Backplane errors.

/// Why a backplane operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackplaneError {
    /// The shared store is unreachable or did not answer in time. Retry later; the health
    /// signal says when it is back.
    #[error("backplane unavailable: {0}")]
    Unavailable(String),
    /// The store answered with something unexpected (a bug or a foreign writer). Report it.
    #[error("backplane protocol error: {0}")]
    Protocol(String),
    /// The backplane was shut down. Do not retry.
    #[error("backplane closed")]
    Closed,
    /// The configuration is invalid. Fix it.
    #[error("invalid backplane configuration: {0}")]
    Config(String),
}

impl BackplaneError {
    /// Whether the same call may succeed later.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// `Result` with [`BackplaneError`].
pub type Result<T, E = BackplaneError> = std::result::Result<T, E>;

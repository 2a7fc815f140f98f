//! Errors of building a handle and of encoding.

/// Why a [`Metrics`](crate::Metrics) handle could not be built or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The prefix is not a valid metric name part: use ASCII letters, digits and underscores,
    /// not starting with a digit.
    #[error(
        "invalid metric prefix {0:?}: use ASCII letters, digits and underscores, not starting with a digit"
    )]
    InvalidPrefix(String),
    /// A metric or collector the application registered in its own registry failed to encode.
    /// Switchboard's metrics never do: fix the application's metric.
    #[error("a metric registered by the application failed to encode")]
    Encode,
}

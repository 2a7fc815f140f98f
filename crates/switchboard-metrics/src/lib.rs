#![doc = include_str!("../README.md")]

mod catalogue;
mod error;
mod exposition;
mod handle;
mod histogram;
mod labels;
mod snapshot;

pub use error::MetricsError;
pub use handle::{Metrics, MetricsBuilder};
pub use histogram::LATENCY_BUCKETS_MS;
pub use labels::{
    AuthFailure, BackplaneState, CapKind, DegradedReason, DisconnectReason, ServerCommand,
    WebhookResult,
};
/// The prometheus-client version this crate encodes with, for
/// [`MetricsBuilder::registry`]: build your registry from this path so the versions match.
pub use prometheus_client;
pub use snapshot::{HistogramSnapshot, MetricsSnapshot};
pub use switchboard_types::{ErrorCode, Priority};

/// The content type of [`Metrics::encode_openmetrics`]'s output, for the `Content-Type`
/// header of `/metrics/prometheus`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

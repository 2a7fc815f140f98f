//! What every request handler shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use switchboard_backplane::Health;
use switchboard_hub::Hub;
use switchboard_metrics::Metrics;
use switchboard_transport::Transport;
use tokio::sync::watch;

use crate::config::ServerConfig;

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) config: ServerConfig,
    pub(crate) hub: Hub,
    pub(crate) transport: Transport,
    pub(crate) metrics: Metrics,
    pub(crate) health: watch::Receiver<Health>,
    pub(crate) started: Instant,
    pub(crate) draining: AtomicBool,
}

impl AppState {
    /// Whether the server is shutting down.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed) || self.transport.is_draining()
    }
}

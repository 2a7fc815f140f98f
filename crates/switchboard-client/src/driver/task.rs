//! The connection task's state across connections, and the small steps every part uses.

use std::collections::HashMap;
use std::sync::Arc;

use rand::rngs::SmallRng;
use switchboard_protocol::{ChannelName, PresenceUpdate};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::channel_entry::ChannelEntry;
use super::shared::{Settings, Shared};
use crate::ConnectionState;
use crate::command::Command;
use crate::quality::QualityTracker;

/// Whether the task goes on after a command.
pub(super) enum Flow {
    Continue,
    Close(Option<oneshot::Sender<()>>),
}

/// The background task: it owns the socket, reconnects, restores subscriptions, sends the
/// offline queue and measures the connection.
pub(crate) struct Driver {
    pub(super) settings: Arc<Settings>,
    pub(super) shared: Arc<Shared>,
    pub(super) commands: mpsc::UnboundedReceiver<Command>,
    pub(super) channels: HashMap<ChannelName, ChannelEntry>,
    /// Channels the server subscribed this connection to (and the application did not):
    /// the offset last delivered, 0 before the first.
    pub(super) server_channels: HashMap<ChannelName, u64>,
    /// Pending `subscribe` request ids.
    pub(super) requests: HashMap<String, ChannelName>,
    /// Publishes sent on this connection and not yet acknowledged: id → ack deadline.
    pub(super) inflight: HashMap<String, Instant>,
    pub(super) quality: QualityTracker,
    pub(super) rng: SmallRng,
    pub(super) presence: Option<PresenceUpdate>,
    pub(super) next_request: u64,
    /// No publish is sent before this (after `rate_limited`).
    pub(super) paused_until: Option<Instant>,
    pub(super) connected_before: bool,
    pub(super) connected: bool,
    /// Frames to write at the next flush.
    pub(super) out: Vec<String>,
    /// When to fetch a token and send it as a `refresh` (with a token source only).
    pub(super) refresh_at: Option<Instant>,
}

impl Driver {
    pub(crate) fn new(
        settings: Arc<Settings>,
        shared: Arc<Shared>,
        commands: mpsc::UnboundedReceiver<Command>,
        quality: QualityTracker,
        rng: SmallRng,
    ) -> Self {
        Self {
            settings,
            shared,
            commands,
            channels: HashMap::new(),
            server_channels: HashMap::new(),
            requests: HashMap::new(),
            inflight: HashMap::new(),
            quality,
            rng,
            presence: None,
            next_request: 0,
            paused_until: None,
            connected_before: false,
            connected: false,
            out: Vec::new(),
            refresh_at: None,
        }
    }

    pub(super) fn set_state(&self, state: ConnectionState) {
        self.shared.state.send_if_modified(|old| {
            let changed = *old != state;
            *old = state;
            changed
        });
    }

    pub(super) fn publish_quality(&mut self) {
        let quality = self.quality.snapshot(self.connected, Instant::now());
        self.shared
            .quality
            .send_if_modified(|old| std::mem::replace(old, quality.clone()) != quality);
    }
}

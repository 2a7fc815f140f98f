//! What the task keeps per channel the application subscribed to.

use switchboard_protocol::StreamPosition;
use tokio::time::Instant;

use crate::listener::Listener;

/// Where a channel's subscription stands on the current connection.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Not subscribed on this connection (or no connection).
    Idle,
    /// `subscribe` sent with this request id; messages are dropped until the answer (a
    /// recovery replays them).
    Pending(String),
    /// Subscribed: messages are delivered.
    Live,
}

/// A channel the application subscribed to: its subscriptions and where it stands.
#[derive(Debug)]
pub(super) struct ChannelEntry {
    pub(super) listeners: Vec<Listener>,
    /// The last message delivered to the application (or, before any, where the
    /// subscription started), in the channel's epoch.
    pub(super) position: Option<StreamPosition>,
    pub(super) phase: Phase,
    /// When to try subscribing again after a retryable error.
    pub(super) retry_at: Option<Instant>,
}

//! What the client handles and the connection task share, and the task's fixed settings.

use std::num::NonZeroU32;
use std::sync::atomic::AtomicBool;

use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast, watch};

use crate::connect::Endpoint;
use crate::publish::{Outbox, PublishOutcome};
use crate::{Backoff, ConnectionState, Heartbeat, Quality, QueueConfig, ServerSubscriptionEvent};

/// State shared by the handles and the task.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: watch::Sender<ConnectionState>,
    pub(crate) quality: watch::Sender<Quality>,
    pub(crate) outbox: Mutex<Outbox>,
    /// Something was queued: send it if connected.
    pub(crate) wake: Notify,
    pub(crate) outcomes: broadcast::Sender<PublishOutcome>,
    /// What [`Client::server_subscriptions`](crate::Client::server_subscriptions) yields.
    pub(crate) server_events: broadcast::Sender<ServerSubscriptionEvent>,
    pub(crate) closed: AtomicBool,
}

/// Fixed settings of the task.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) endpoint: Endpoint,
    pub(crate) backoff: Backoff,
    pub(crate) max_reconnect_attempts: Option<NonZeroU32>,
    pub(crate) heartbeat: Heartbeat,
    pub(crate) queue: QueueConfig,
}

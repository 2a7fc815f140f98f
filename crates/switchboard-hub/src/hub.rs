//! The hub: shared state, server-side API, and the task that fans backplane events out.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use switchboard_backplane::{Backplane, BackplaneError, BoxBackplane, Health, Position};
use switchboard_metrics::Metrics;
use switchboard_protocol::{
    ChannelName, CloseCode, EncodedFrame, EventType, Member, Payload, Priority,
};
use tokio::sync::{broadcast, watch};

use crate::authorizer::{Authorizer, ClaimsAuthorizer};
use crate::config::HubConfig;
use crate::connection::Connection;
use crate::envelope::decode_envelope;
use crate::identity::Identity;
use crate::ids::IdGenerator;
use crate::lifecycle::HubEvent;
use crate::outbox::Outbox;
use crate::publish::{PublishReceipt, Publisher, Receipt};
use crate::redact::Redactor;
use crate::registry::Registry;
use crate::state::HubInner;

/// Why a hub operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The backplane could not do it; see [`BackplaneError::is_retryable`].
    #[error(transparent)]
    Backplane(#[from] BackplaneError),
    /// A [`ServerMessage`] excludes more than 64 connections, or an id longer than 255
    /// bytes (no connection has one).
    #[error("a message may exclude at most 64 connections, each id at most 255 bytes")]
    TooManyExcluded,
    /// [`Hub::disconnect_user`] was given a close code outside 4000–4999 or a reason
    /// longer than 123 bytes.
    #[error("a close code must be in 4000-4999 and its reason at most 123 bytes")]
    InvalidClose,
    /// Presence is off in the channel's namespace
    /// ([`NamespaceOptions::presence`](crate::NamespaceOptions::presence)).
    #[error("presence is off in namespace {0}")]
    PresenceOff(String),
}

/// A message published by server-side code (a backend's "task status changed").
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServerMessage {
    /// The channel.
    pub channel: ChannelName,
    /// The event type.
    pub event: EventType,
    /// The payload.
    pub payload: Payload,
    /// An id; generated when `None`.
    pub id: Option<String>,
    /// The priority (default normal).
    pub priority: Priority,
    /// Connections (by id) that do not receive it, on any instance: at most 64.
    pub exclude: Vec<String>,
}

impl ServerMessage {
    /// A normal-priority message with a generated id.
    #[must_use]
    pub fn new(channel: ChannelName, event: EventType, payload: Payload) -> Self {
        Self {
            channel,
            event,
            payload,
            id: None,
            priority: Priority::Normal,
            exclude: Vec::new(),
        }
    }

    /// Skips the connections with these ids (at most 64), wherever they are connected;
    /// every other subscriber receives the message.
    #[must_use]
    pub fn excluding<I, S>(mut self, connection_ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.exclude = connection_ids.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the message id.
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// A channel's history after an offset, for the HTTP history API.
#[derive(Debug, Clone)]
pub struct History {
    /// The channel's position now.
    pub position: Position,
    /// Every message after the requested offset, encoded as delivered; `None` when they can
    /// no longer all be had (another epoch, or trimmed).
    pub messages: Option<Vec<EncodedFrame>>,
}

/// Channels, subscriptions, authorization, presence, recovery and fan-out over a
/// [`Backplane`]. Cheap to clone: clones share one hub.
///
/// It knows no sockets: a transport registers each connection with
/// [`Hub::connect`], giving it an [`Outbox`], and feeds it decoded frames.
pub struct Hub<B = BoxBackplane> {
    pub(crate) inner: Arc<HubInner<B>>,
}

impl<B> Clone for Hub<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backplane> fmt::Debug for Hub<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("node", &self.inner.ids.node())
            .field("backplane", &self.inner.backplane.kind())
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Hub`].
#[must_use]
pub struct HubBuilder<B> {
    backplane: B,
    config: HubConfig,
    authorizer: Box<dyn Authorizer>,
    metrics: Metrics,
}

impl<B: fmt::Debug> fmt::Debug for HubBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubBuilder")
            .field("backplane", &self.backplane)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<B: Backplane> HubBuilder<B> {
    /// Sets the configuration.
    pub fn config(mut self, config: HubConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the authorization policy (default: [`ClaimsAuthorizer`]).
    pub fn authorizer(mut self, authorizer: impl Authorizer) -> Self {
        self.authorizer = Box::new(authorizer);
        self
    }

    /// Records into `metrics` (default: nothing is recorded).
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Starts the hub: spawns its fan-out and presence-refresh tasks, which end when the
    /// last clone of the hub is dropped.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    #[must_use]
    pub fn build(self) -> Hub<B> {
        let (events, _) = broadcast::channel(self.config.event_capacity.get());
        let (alive, alive_rx) = watch::channel(());
        let policies = crate::namespace::Policies::new(&self.config.namespaces);
        let occupancy = self.config.occupancy;
        let (occupancy_tx, occupancy_rx) = match occupancy {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        let inner = Arc::new(HubInner {
            registry: Registry::new(self.config.recovery_buffer.get(), occupancy_tx),
            redactor: Redactor::new(&self.config.redact_fields),
            backplane: self.backplane,
            authorizer: self.authorizer,
            config: self.config,
            ids: IdGenerator::new(),
            events,
            members: Mutex::new(HashSet::new()),
            users: crate::users::Users::default(),
            policies,
            connections: AtomicUsize::new(0),
            metrics: self.metrics,
            next_conn: std::sync::atomic::AtomicU64::new(1),
            _alive: alive,
        });
        crate::fanout::connect(&inner);
        tokio::spawn(refresh_presence(
            Arc::downgrade(&inner),
            inner.config.presence_refresh,
            alive_rx.clone(),
        ));
        if let (Some(claim), Some(changes)) = (occupancy, occupancy_rx) {
            tokio::spawn(crate::occupancy::track(
                Arc::downgrade(&inner),
                changes,
                claim.max(Duration::from_millis(3)),
                alive_rx.clone(),
            ));
        }
        tokio::spawn(track_health(
            inner.backplane.health(),
            inner.metrics.clone(),
            alive_rx,
        ));
        Hub { inner }
    }
}

impl<B: Backplane> Hub<B> {
    /// A hub over `backplane` with the default configuration.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    #[must_use]
    pub fn new(backplane: B) -> Self {
        Self::builder(backplane).build()
    }

    /// A builder for a hub over `backplane`.
    pub fn builder(backplane: B) -> HubBuilder<B> {
        HubBuilder {
            backplane,
            config: HubConfig::default(),
            authorizer: Box::new(ClaimsAuthorizer),
            metrics: Metrics::noop(),
        }
    }

    /// Registers a connection. Frames for it go to `outbox`; feed it client frames with
    /// [`Connection::handle`], and end it with [`Connection::disconnect`] (dropping it
    /// also cleans up, in a spawned task).
    pub fn connect(&self, identity: Identity, outbox: Arc<dyn Outbox>) -> Connection<B> {
        let key = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = self.inner.ids.connection_id(key).into();
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        let _ = self.inner.events.send(HubEvent::Connected {
            connection_id: Arc::clone(&id),
            user_id: identity.user_id.clone(),
        });
        if let Some(user) = &identity.user_id {
            self.inner.users.add(user, key, &outbox);
        }
        Connection::new(Arc::clone(&self.inner), key, id, identity, outbox)
    }

    /// Publishes a message from server-side code. It carries
    /// `"from": {"userId": null, "connectionId": "$server"}`.
    ///
    /// # Errors
    /// [`HubError::Backplane`] when the backplane could not publish it;
    /// [`HubError::TooManyExcluded`] for an exclusion list over the limits.
    pub async fn publish(&self, message: ServerMessage) -> Result<PublishReceipt, HubError> {
        if message.exclude.len() > crate::envelope::MAX_EXCLUDED
            || message.exclude.iter().any(|id| id.len() > 255)
        {
            return Err(HubError::TooManyExcluded);
        }
        let exclude: Vec<&str> = message.exclude.iter().map(String::as_str).collect();
        Ok(self
            .inner
            .publish(
                Publisher::server(),
                message.channel,
                &message.event,
                message.payload,
                message.id,
                message.priority,
                &exclude,
            )
            .answer()
            .await
            .map(Receipt::into_public)?)
    }

    /// The channel's presence members.
    ///
    /// # Errors
    /// [`HubError::PresenceOff`] when the channel's namespace turned presence off;
    /// [`HubError::Backplane`] when the backplane cannot be reached.
    pub async fn presence(&self, channel: &ChannelName) -> Result<Vec<Member>, HubError> {
        if !self.inner.policies.of(channel).presence {
            return Err(HubError::PresenceOff(
                crate::namespace_of(channel).unwrap_or_default().to_owned(),
            ));
        }
        let entries = self.inner.backplane.presence_list(channel).await?;
        Ok(entries
            .iter()
            .filter_map(|e| match serde_json::from_slice(&e.data) {
                Ok(member) => Some(member),
                Err(err) => {
                    tracing::warn!(%channel, %err, "skipping an unreadable presence entry");
                    None
                }
            })
            .collect())
    }

    /// The channel's messages after `offset` in `epoch`, or `None` when they can no longer
    /// all be had. Never a partial list.
    ///
    /// # Errors
    /// When the backplane cannot be reached.
    pub async fn history(
        &self,
        channel: &ChannelName,
        offset: u64,
        epoch: &str,
    ) -> Result<History, HubError> {
        let recovery = self.inner.backplane.since(channel, offset, epoch).await?;
        Ok(History {
            position: recovery.position,
            messages: recovery.messages.map(|envelopes| {
                envelopes
                    .iter()
                    .filter_map(|e| {
                        decode_envelope(&e.data, e.offset, &self.inner.ids).map(|d| d.frame)
                    })
                    .collect()
            }),
        })
    }

    /// The channel's current position.
    ///
    /// # Errors
    /// When the backplane cannot be reached.
    pub async fn position(&self, channel: &ChannelName) -> Result<Position, HubError> {
        Ok(self.inner.backplane.position(channel).await?)
    }

    /// Lifecycle events from now on. A receiver that falls behind gets `Lagged`.
    #[must_use]
    pub fn events(&self) -> broadcast::Receiver<HubEvent> {
        self.inner.events.subscribe()
    }

    /// How many connections are registered.
    #[must_use]
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::Relaxed)
    }

    /// How many local subscribers `channel` has.
    #[must_use]
    pub fn subscriber_count(&self, channel: &str) -> usize {
        self.inner.registry.subscriber_count(channel)
    }

    /// How many channels have local subscribers.
    #[must_use]
    pub fn channel_count(&self) -> usize {
        self.inner.registry.channel_count()
    }

    /// The backplane's health.
    #[must_use]
    pub fn health(&self) -> watch::Receiver<Health> {
        self.inner.backplane.health()
    }

    /// The backplane.
    #[must_use]
    pub fn backplane(&self) -> &B {
        &self.inner.backplane
    }

    /// Closes every connection with `code` (e.g. 1001 on shutdown) after what is queued.
    pub fn close_all(&self, code: CloseCode) {
        self.inner.registry.close_all(code);
    }
}

/// Keeps the presence of live local members from expiring.
async fn refresh_presence<B: Backplane>(
    hub: Weak<HubInner<B>>,
    every: Duration,
    mut alive: watch::Receiver<()>,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = alive.changed() => return,
        }
        let Some(hub) = hub.upgrade() else { return };
        let members: Vec<_> = hub.members.lock().iter().cloned().collect();
        for (channel, connection) in members {
            if let Err(err) = hub.backplane.presence_touch(&channel, &connection).await {
                tracing::debug!(%channel, %err, "presence refresh failed; retrying next round");
            }
        }
    }
}

/// Mirrors the backplane's health into the metrics: the state, and each fall from up into
/// degraded counted with its cause.
async fn track_health(
    mut health: watch::Receiver<Health>,
    metrics: Metrics,
    mut alive: watch::Receiver<()>,
) {
    use switchboard_backplane::{DegradedCause, HealthState};
    use switchboard_metrics::{BackplaneState, DegradedReason};
    let mut was_up = false;
    loop {
        let (state, cause) = {
            let health = health.borrow_and_update();
            (health.state, health.cause)
        };
        match (state, cause) {
            (HealthState::Up, _) => metrics.backplane_state(BackplaneState::Up),
            (HealthState::Degraded, Some(cause)) if was_up => {
                metrics.backplane_degraded(match cause {
                    DegradedCause::Timeout => DegradedReason::Timeout,
                    DegradedCause::LivenessProbeFailed => DegradedReason::LivenessProbeFailed,
                    DegradedCause::CommandFailed => DegradedReason::CommandFailed,
                    _ => DegradedReason::ConnectionLost,
                });
            }
            (HealthState::Degraded, _) => metrics.backplane_state(BackplaneState::Degraded),
            _ => metrics.backplane_state(BackplaneState::Down),
        }
        was_up = state == HealthState::Up;
        tokio::select! {
            changed = health.changed() => if changed.is_err() { return },
            _ = alive.changed() => return,
        }
    }
}

//! The hub: shared state, server-side API, and the task that fans backplane events out.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use switchboard_backplane::{
    Backplane, BackplaneError, BoxBackplane, Event, Health, Position, PresenceAction,
    PresenceChange, PublishOptions, Scope,
};
use switchboard_metrics::Metrics;
use switchboard_protocol::{
    ChannelName, CloseCode, EncodedDraft, EncodedFrame, EventType, Member, MessageDraft, Payload,
    Priority, Sender,
};
use tokio::sync::{broadcast, watch};

use crate::authorizer::{Authorizer, ClaimsAuthorizer};
use crate::config::HubConfig;
use crate::connection::Connection;
use crate::identity::Identity;
use crate::ids::IdGenerator;
use crate::lifecycle::HubEvent;
use crate::outbox::Outbox;
use crate::redact::Redactor;
use crate::registry::Registry;

/// Why a hub operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The backplane could not do it; see [`BackplaneError::is_retryable`].
    #[error(transparent)]
    Backplane(#[from] BackplaneError),
}

/// The receipt of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// The message id (the publisher's, or generated).
    pub id: String,
    /// The offset the backplane assigned.
    pub offset: u64,
    /// Whether it reached every instance or only this one (backplane degraded).
    pub scope: Scope,
    /// `true` when the publish repeated an `id` its publisher (the same user; all anonymous
    /// connections share one scope, server-side code another) already published on the
    /// channel within the backplane's dedupe window: nothing was delivered again, and
    /// `offset` is the first publish's. This makes retries after a lost `ack` idempotent.
    pub duplicate: bool,
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
        }
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

pub(crate) struct HubInner<B> {
    pub(crate) backplane: B,
    pub(crate) registry: Registry,
    pub(crate) authorizer: Box<dyn Authorizer>,
    pub(crate) redactor: Redactor,
    pub(crate) config: HubConfig,
    pub(crate) ids: IdGenerator,
    pub(crate) events: broadcast::Sender<HubEvent>,
    /// (channel, connection id) of every local presence member, refreshed periodically.
    pub(crate) members: Mutex<HashSet<(Arc<str>, Arc<str>)>>,
    pub(crate) connections: AtomicUsize,
    pub(crate) metrics: Metrics,
    pub(crate) next_conn: std::sync::atomic::AtomicU64,
    /// Dropped with the hub: background tasks watch it and stop.
    _alive: watch::Sender<()>,
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
        let receiver = self.backplane.events();
        let inner = Arc::new(HubInner {
            registry: Registry::new(self.config.recovery_buffer.get()),
            redactor: Redactor::new(&self.config.redact_fields),
            backplane: self.backplane,
            authorizer: self.authorizer,
            config: self.config,
            ids: IdGenerator::new(),
            events,
            members: Mutex::new(HashSet::new()),
            connections: AtomicUsize::new(0),
            metrics: self.metrics,
            next_conn: std::sync::atomic::AtomicU64::new(1),
            _alive: alive,
        });
        tokio::spawn(fan_out(Arc::downgrade(&inner), receiver, alive_rx.clone()));
        tokio::spawn(refresh_presence(
            Arc::downgrade(&inner),
            inner.config.presence_refresh,
            alive_rx.clone(),
        ));
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
        let id: Arc<str> = self.inner.ids.next('c').into();
        self.inner.connections.fetch_add(1, Ordering::Relaxed);
        let _ = self.inner.events.send(HubEvent::Connected {
            connection_id: Arc::clone(&id),
            user_id: identity.user_id.clone(),
        });
        Connection::new(Arc::clone(&self.inner), key, id, identity, outbox)
    }

    /// Publishes a message from server-side code. It carries
    /// `"from": {"userId": null, "connectionId": "$server"}`.
    ///
    /// # Errors
    /// [`HubError::Backplane`] when the backplane could not publish it.
    pub async fn publish(&self, message: ServerMessage) -> Result<PublishReceipt, HubError> {
        let receipt = self
            .inner
            .publish(
                message.channel.clone(),
                message.event,
                message.payload,
                message.id,
                message.priority,
                Sender::server(),
            )
            .await?;
        if receipt.duplicate {
            return Ok(receipt);
        }
        let _ = self.inner.events.send(HubEvent::Published {
            connection_id: Sender::SERVER_CONNECTION_ID.into(),
            user_id: None,
            channel: message.channel,
            id: receipt.id.clone(),
            offset: receipt.offset,
        });
        Ok(receipt)
    }

    /// The channel's presence members.
    ///
    /// # Errors
    /// When the backplane cannot be reached.
    pub async fn presence(&self, channel: &ChannelName) -> Result<Vec<Member>, HubError> {
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
                    .filter_map(|e| decode_envelope(&e.data, e.offset).map(|d| d.frame))
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

impl<B: Backplane> HubInner<B> {
    /// Redacts, stamps and encodes a message once, and publishes it through the backplane.
    pub(crate) async fn publish(
        &self,
        channel: ChannelName,
        event: EventType,
        payload: Payload,
        id: Option<String>,
        priority: Priority,
        from: Sender,
    ) -> Result<PublishReceipt, BackplaneError> {
        // Only an id the publisher chose can come back in a retry; generated ones are unique.
        let dedupe = id.is_some();
        let id = id.unwrap_or_else(|| self.ids.next('m'));
        let draft = MessageDraft {
            event,
            payload: self.redactor.redact_payload(payload),
            id,
            timestamp: now_ms(),
            priority,
            from,
            channel,
        };
        let data = encode_envelope(&draft.encode(), priority, draft.timestamp);
        let key = dedupe.then(|| dedupe_key(&draft.from, &draft.id));
        let mut options = PublishOptions::default();
        if let Some(key) = &key {
            options = options.dedupe_key(key);
        }
        let published = self
            .backplane
            .publish_with(&draft.channel, data, options)
            .await?;
        if published.duplicate {
            tracing::debug!(
                channel = %draft.channel,
                id = %draft.id,
                offset = published.offset,
                "a repeated publish id was acknowledged with its first offset, not delivered again"
            );
        } else {
            self.metrics.backplane_published();
        }
        Ok(PublishReceipt {
            id: draft.id,
            offset: published.offset,
            scope: published.scope,
            duplicate: published.duplicate,
        })
    }
}

/// The backplane dedupe key of a publish: its id, scoped to who published it, so that two
/// users choosing the same id never collide. Lengths keep the parts unambiguous.
fn dedupe_key(from: &Sender, id: &str) -> String {
    if from.connection_id == Sender::SERVER_CONNECTION_ID && from.user_id.is_none() {
        format!("s:{id}")
    } else if let Some(user) = &from.user_id {
        format!("u{}:{user}{id}", user.len())
    } else {
        format!("a:{id}")
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Length of the header the hub puts before each draft in the backplane.
const HEADER_LEN: usize = 9;

/// What the hub stores in the backplane: a header of one priority byte and the publish time
/// (ms since the epoch, 8 bytes big-endian), then the encoded draft. Both travel outside the
/// JSON so fan-out never parses it, and the receiving instance can measure backplane lag.
fn encode_envelope(draft: &EncodedDraft, priority: Priority, published_ms: u64) -> Bytes {
    let draft = draft.bytes();
    let mut buf = BytesMut::with_capacity(HEADER_LEN + draft.len());
    buf.put_u8(match priority {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Critical => 3,
    });
    buf.put_u64(published_ms);
    buf.extend_from_slice(draft);
    buf.freeze()
}

/// A message as the hub reads it back from the backplane.
pub(crate) struct Delivery {
    pub(crate) frame: EncodedFrame,
    pub(crate) priority: Priority,
    pub(crate) published_ms: u64,
}

/// The delivered frame of an envelope, or `None` for data no hub wrote.
pub(crate) fn decode_envelope(data: &Bytes, offset: u64) -> Option<Delivery> {
    if data.len() < HEADER_LEN {
        return None;
    }
    let priority = match data[0] {
        0 => Priority::Low,
        1 => Priority::Normal,
        2 => Priority::High,
        3 => Priority::Critical,
        _ => return None,
    };
    let published_ms = u64::from_be_bytes(data[1..HEADER_LEN].try_into().ok()?);
    Some(Delivery {
        frame: EncodedDraft::from_bytes(data.slice(HEADER_LEN..)).finish(offset),
        priority,
        published_ms,
    })
}

/// The `presence-update` frame for a change.
fn presence_frame(change: &PresenceChange) -> Option<EncodedFrame> {
    use switchboard_protocol::{PresenceAction as Wire, PresenceEvent, ServerFrame};
    let action = match change.action {
        PresenceAction::Join => Wire::Join,
        PresenceAction::Update => Wire::Update,
        PresenceAction::Leave => Wire::Leave,
        _ => return None,
    };
    Some(
        ServerFrame::PresenceUpdate(PresenceEvent {
            channel: ChannelName::new(&change.channel).ok()?,
            action,
            member: serde_json::from_slice::<Member>(&change.entry.data).ok()?,
            timestamp: now_ms(),
        })
        .encode(),
    )
}

/// Receives backplane events and hands each to the local subscribers, encoded once.
async fn fan_out<B: Backplane>(
    hub: Weak<HubInner<B>>,
    mut events: switchboard_backplane::EventReceiver,
    mut alive: watch::Receiver<()>,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = alive.changed() => return,
        };
        let Some(hub) = hub.upgrade() else { return };
        match event {
            Event::Message(envelope) => match decode_envelope(&envelope.data, envelope.offset) {
                Some(delivery) => {
                    hub.metrics.backplane_received();
                    hub.metrics.backplane_lag(Duration::from_millis(
                        now_ms().saturating_sub(delivery.published_ms),
                    ));
                    hub.registry.deliver(
                        &envelope.channel,
                        Some(envelope.offset),
                        &delivery.frame,
                        delivery.priority,
                    );
                }
                None => tracing::warn!(
                    channel = %envelope.channel,
                    offset = envelope.offset,
                    "dropping a backplane message that was not written by a switchboard hub"
                ),
            },
            Event::Presence(change) => {
                if let Some(frame) = presence_frame(&change) {
                    hub.registry
                        .deliver(&change.channel, None, &frame, Priority::High);
                }
            }
            Event::Reset { channel, reason } => {
                let closed = hub
                    .registry
                    .close_channel(&channel, CloseCode::SlowConsumer);
                tracing::warn!(%channel, ?reason, closed, "channel continuity lost; subscribers must recover");
            }
            Event::Lagged { missed } => {
                tracing::error!(
                    missed,
                    "hub fell behind the backplane; closing every subscriber so they recover"
                );
                hub.registry.close_all(CloseCode::SlowConsumer);
            }
            _ => {}
        }
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

/// Mirrors the backplane's health into the metrics.
async fn track_health(
    mut health: watch::Receiver<Health>,
    metrics: Metrics,
    mut alive: watch::Receiver<()>,
) {
    use switchboard_backplane::HealthState;
    use switchboard_metrics::BackplaneState;
    loop {
        let state = match health.borrow_and_update().state {
            HealthState::Up => BackplaneState::Up,
            HealthState::Degraded => BackplaneState::Degraded,
            _ => BackplaneState::Down,
        };
        metrics.backplane_state(state);
        tokio::select! {
            changed = health.changed() => if changed.is_err() { return },
            _ = alive.changed() => return,
        }
    }
}

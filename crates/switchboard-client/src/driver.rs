//! The background task: it owns the socket, reconnects, restores subscriptions, sends the
//! offline queue and measures the connection.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use rand::RngExt;
use rand::rngs::SmallRng;
use switchboard_protocol::{
    ChannelName, ClientFrame, ErrorCode, ErrorFrame, Excluded, Message, Ping, PresenceEvent,
    PresenceUpdate, Refresh, ServerFrame, StreamPosition, Subscribe, Subscribed, Unsubscribe,
    Unsubscribed, Welcome,
};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use crate::connect::{self, Endpoint, Ws};
use crate::publish::{Outbox, PublishOutcome};
use crate::quality::QualityTracker;
use crate::subscription::Listener;
use crate::{
    Backoff, ConnectionState, DisconnectReason, Heartbeat, PublishError, Quality, QueueConfig,
    ServerSubscriptionEvent, SubscriptionEvent,
};

/// How long a closing client waits for its close frame to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the client handles ask of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe {
        channel: ChannelName,
        listener: Listener,
    },
    Unsubscribe {
        channel: ChannelName,
        listener: u64,
    },
    Presence(PresenceUpdate),
    Close {
        done: Option<oneshot::Sender<()>>,
    },
}

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

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// Not subscribed on this connection (or no connection).
    Idle,
    /// `subscribe` sent with this request id; messages are dropped until the answer (a
    /// recovery replays them).
    Pending(String),
    /// Subscribed: messages are delivered.
    Live,
}

#[derive(Debug)]
struct ChannelEntry {
    listeners: Vec<Listener>,
    /// The last message delivered to the application (or, before any, where the
    /// subscription started), in the channel's epoch.
    position: Option<StreamPosition>,
    phase: Phase,
    /// When to try subscribing again after a retryable error.
    retry_at: Option<Instant>,
}

enum Flow {
    Continue,
    Close(Option<oneshot::Sender<()>>),
}

enum Ended {
    Lost(DisconnectReason),
    Close(Option<oneshot::Sender<()>>),
}

pub(crate) struct Driver {
    settings: Arc<Settings>,
    shared: Arc<Shared>,
    commands: mpsc::UnboundedReceiver<Command>,
    channels: HashMap<ChannelName, ChannelEntry>,
    /// Channels the server subscribed this connection to (and the application did not):
    /// the offset last delivered, 0 before the first.
    server_channels: HashMap<ChannelName, u64>,
    /// Pending `subscribe` request ids.
    requests: HashMap<String, ChannelName>,
    /// Publishes sent on this connection and not yet acknowledged: id → ack deadline.
    inflight: HashMap<String, Instant>,
    quality: QualityTracker,
    rng: SmallRng,
    presence: Option<PresenceUpdate>,
    next_request: u64,
    /// No publish is sent before this (after `rate_limited`).
    paused_until: Option<Instant>,
    connected_before: bool,
    connected: bool,
    /// Frames to write at the next flush.
    out: Vec<String>,
    /// When to fetch a token and send it as a `refresh` (with a token source only).
    refresh_at: Option<Instant>,
}

/// How long before trying again when a refresh found no token or was refused.
const REFRESH_RETRY: Duration = Duration::from_secs(5);

/// The prefix of `refresh` request ids.
const REFRESH_ID: &str = "refresh-";

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

    pub(crate) async fn run(mut self) {
        let mut attempt: u32 = 0;
        loop {
            self.set_state(ConnectionState::Connecting { attempt });
            let settings = Arc::clone(&self.settings);
            let connecting = connect::connect(&settings.endpoint);
            tokio::pin!(connecting);
            let result = loop {
                tokio::select! {
                    result = &mut connecting => break result,
                    command = self.commands.recv() => {
                        if let Flow::Close(done) = self.on_command(command) {
                            return self.finish_closed(done);
                        }
                    }
                }
            };
            let reason = match result {
                Ok((ws, welcome)) => {
                    attempt = 0;
                    match self.session(ws, welcome).await {
                        Ended::Lost(reason) => reason,
                        Ended::Close(done) => return self.finish_closed(done),
                    }
                }
                Err(reason) => reason,
            };
            tracing::debug!(%reason, attempt, "switchboard connection down");
            if !reason.should_reconnect() {
                return self.finish(
                    ConnectionState::Error {
                        reason,
                        attempts: attempt,
                    },
                    None,
                );
            }
            attempt = attempt.saturating_add(1);
            let backoff = self.settings.backoff;
            if self
                .settings
                .max_reconnect_attempts
                .is_some_and(|max| attempt > max.get())
            {
                return self.finish(
                    ConnectionState::Error {
                        reason,
                        attempts: attempt - 1,
                    },
                    None,
                );
            }
            let nth = NonZeroU32::new(attempt).unwrap_or(NonZeroU32::MIN);
            let mut delay = backoff.delay(nth, self.rng.random::<f64>());
            if let DisconnectReason::Rejected {
                retry_after: Some(after),
                ..
            } = &reason
            {
                delay = delay.max(*after);
            }
            self.set_state(ConnectionState::Reconnecting {
                attempt,
                delay,
                reason,
            });
            let wait = tokio::time::sleep(delay);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    command = self.commands.recv() => {
                        if let Flow::Close(done) = self.on_command(command) {
                            return self.finish_closed(done);
                        }
                    }
                }
            }
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.shared.state.send_if_modified(|old| {
            let changed = *old != state;
            *old = state;
            changed
        });
    }

    fn publish_quality(&mut self) {
        let quality = self.quality.snapshot(self.connected, Instant::now());
        self.shared
            .quality
            .send_if_modified(|old| std::mem::replace(old, quality.clone()) != quality);
    }

    fn finish_closed(self, done: Option<oneshot::Sender<()>>) {
        self.finish(
            ConnectionState::Disconnected {
                reason: DisconnectReason::ClientClosed,
            },
            done,
        );
    }

    /// Stops for good: handles learn it, subscriptions end.
    fn finish(mut self, state: ConnectionState, done: Option<oneshot::Sender<()>>) {
        self.connected = false;
        self.shared.closed.store(true, Ordering::Release);
        self.shared.outbox.lock().close();
        self.publish_quality();
        self.set_state(state);
        // Subscriptions end, and the queue file is released before `close` returns.
        drop(self);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Serves one connection until it ends.
    async fn session(&mut self, mut ws: Ws, welcome: Welcome) -> Ended {
        let now = Instant::now();
        self.connected = true;
        self.quality.connected(now, self.connected_before);
        self.connected_before = true;
        self.paused_until = None;
        self.requests.clear();
        self.refresh_at = self.refresh_due(welcome.expires_at, now);
        self.set_state(ConnectionState::Connected {
            connection_id: welcome.connection_id,
            user_id: welcome.user_id,
        });
        self.publish_quality();
        let channels: Vec<ChannelName> = self.channels.keys().cloned().collect();
        for channel in &channels {
            self.send_subscribe(channel);
        }
        if let Some(update) = &self.presence {
            self.out
                .push(ClientFrame::PresenceUpdate(update.clone()).encode());
        }

        let heartbeat = self.settings.heartbeat;
        let mut next_ping = now;
        // Tokens fetched for a refresh come back here (the fetch runs as a task of its own,
        // so a slow token service never holds up the connection).
        let (fetched_tx, mut fetched) = mpsc::channel::<Option<String>>(1);
        let ended = loop {
            if let Err(reason) = self.pump(&mut ws).await {
                break Ended::Lost(reason);
            }
            let deadline = self.next_deadline(next_ping);
            tokio::select! {
                incoming = ws.next() => match incoming {
                    Some(Ok(WsMessage::Text(text))) => self.on_text(text.as_str()),
                    Some(Ok(WsMessage::Close(frame))) => break Ended::Lost(connect::closed(frame)),
                    // Pings are answered by tungstenite; binary frames are not in the protocol.
                    Some(Ok(_)) => {}
                    Some(Err(err)) => break Ended::Lost(connect::lost(&err)),
                    None => break Ended::Lost(DisconnectReason::ConnectionLost {
                        message: "the connection ended".into(),
                    }),
                },
                command = self.commands.recv() => {
                    if let Flow::Close(done) = self.on_command(command) {
                        close_socket(&mut ws).await;
                        break Ended::Close(done);
                    }
                }
                () = self.shared.wake.notified() => {}
                Some(token) = fetched.recv() => self.send_refresh(token),
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if self.refresh_at.is_some_and(|at| at <= now) {
                        self.refresh_at = None;
                        if let Some(source) = self.settings.endpoint.token.source() {
                            let (source, fetched_tx) = (Arc::clone(source), fetched_tx.clone());
                            tokio::spawn(async move {
                                let _ = fetched_tx.send(source().await).await;
                            });
                        }
                    }
                    if now >= next_ping {
                        let id = self.quality.ping(now);
                        self.out.push(ClientFrame::Ping(Ping { id: Some(id), timestamp: Some(switchboard_protocol::now_ms()) }).encode());
                        next_ping = now + heartbeat.interval;
                    }
                    let missed = self.quality.expire(now);
                    self.publish_quality();
                    if heartbeat.dead_after.is_some_and(|limit| missed >= limit.get()) {
                        break Ended::Lost(DisconnectReason::Unresponsive { missed });
                    }
                    self.retry_subscriptions(now);
                }
            }
        };

        self.connected = false;
        self.inflight.clear();
        self.out.clear();
        self.requests.clear();
        self.shared.outbox.lock().release_all();
        self.quality.disconnected();
        for entry in self.channels.values_mut() {
            entry.phase = Phase::Idle;
            entry.retry_at = None;
        }
        // Server subscriptions lived on this connection.
        for (channel, _) in self.server_channels.drain() {
            let _ = self
                .shared
                .server_events
                .send(ServerSubscriptionEvent::Unsubscribed {
                    channel,
                    reason: "disconnected".into(),
                });
        }
        self.publish_quality();
        ended
    }

    /// Sends what is due: failed attempts first counted, then queued publishes up to the
    /// in-flight limit, then every frame waiting in `out`.
    async fn pump(&mut self, ws: &mut Ws) -> Result<(), DisconnectReason> {
        let now = Instant::now();
        self.expire_inflight(now);
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
        }
        if self.paused_until.is_none() {
            let max = self.settings.queue.max_in_flight.get();
            let deadline = now + self.settings.queue.ack_timeout;
            let mut outbox = self.shared.outbox.lock();
            while self.inflight.len() < max {
                let Some(lease) = outbox.pop(now.into_std()) else {
                    break;
                };
                self.inflight.insert(lease.item.id, deadline);
                self.out.push(lease.item.frame);
            }
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.out);
        let write = async {
            for frame in frames {
                ws.feed(WsMessage::text(frame)).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(self.settings.endpoint.connect_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(connect::lost(&err)),
            Err(_) => Err(DisconnectReason::ConnectionLost {
                message: "writing to the server timed out".into(),
            }),
        }
    }

    /// Publishes not acknowledged in time count as failed attempts.
    fn expire_inflight(&mut self, now: Instant) {
        if !self.inflight.values().any(|&deadline| deadline <= now) {
            return;
        }
        let expired: Vec<String> = self
            .inflight
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut outbox = self.shared.outbox.lock();
        for id in expired {
            self.inflight.remove(&id);
            outbox.fail_attempt(&id, now.into_std());
        }
    }

    fn next_deadline(&self, next_ping: Instant) -> Instant {
        let now = Instant::now();
        let mut deadline = next_ping;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                deadline = deadline.min(at);
            }
        };
        consider(self.quality.next_expiry());
        consider(self.refresh_at);
        consider(self.inflight.values().min().copied());
        consider(self.channels.values().filter_map(|c| c.retry_at).min());
        if self.paused_until.is_some() {
            consider(self.paused_until);
        } else if self.inflight.len() < self.settings.queue.max_in_flight.get() {
            // A retry becoming due; never in the past, so a queue that cannot pop does not
            // spin.
            let due = self.shared.outbox.lock().next_due();
            consider(due.map(|at| Instant::from_std(at).max(now + Duration::from_millis(1))));
        }
        deadline
    }

    fn send_subscribe(&mut self, channel: &ChannelName) {
        let Some(entry) = self.channels.get_mut(channel) else {
            return;
        };
        self.next_request += 1;
        let id = format!("s{}", self.next_request);
        entry.phase = Phase::Pending(id.clone());
        entry.retry_at = None;
        let frame = ClientFrame::Subscribe(Subscribe {
            channel: channel.clone(),
            id: Some(id.clone()),
            since: entry.position.clone(),
        });
        self.requests.insert(id, channel.clone());
        self.out.push(frame.encode());
    }

    fn retry_subscriptions(&mut self, now: Instant) {
        let due: Vec<ChannelName> = self
            .channels
            .iter()
            .filter(|(_, c)| c.phase == Phase::Idle && c.retry_at.is_some_and(|at| at <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for channel in &due {
            self.send_subscribe(channel);
        }
    }

    fn on_command(&mut self, command: Option<Command>) -> Flow {
        match command {
            // Every handle is gone.
            None => Flow::Close(None),
            Some(Command::Close { done }) => Flow::Close(done),
            Some(Command::Subscribe {
                channel,
                mut listener,
            }) => {
                let entry = self
                    .channels
                    .entry(channel.clone())
                    .or_insert_with(|| ChannelEntry {
                        listeners: Vec::new(),
                        position: None,
                        phase: Phase::Idle,
                        retry_at: None,
                    });
                if entry.phase == Phase::Live
                    && let Some(position) = &entry.position
                {
                    listener.confirmed = true;
                    listener.deliver(SubscriptionEvent::Subscribed {
                        position: position.clone(),
                    });
                }
                entry.listeners.push(listener);
                if self.connected && entry.phase == Phase::Idle && entry.retry_at.is_none() {
                    self.send_subscribe(&channel);
                }
                Flow::Continue
            }
            Some(Command::Unsubscribe { channel, listener }) => {
                let Some(entry) = self.channels.get_mut(&channel) else {
                    return Flow::Continue;
                };
                entry.listeners.retain(|l| l.id != listener);
                if entry.listeners.is_empty()
                    && let Some(entry) = self.channels.remove(&channel)
                {
                    if let Phase::Pending(id) = &entry.phase {
                        self.requests.remove(id);
                    }
                    if self.connected && entry.phase != Phase::Idle {
                        // The server subscription on the channel, if any, ends with it.
                        if self.server_channels.remove(&channel).is_some() {
                            let _ = self.shared.server_events.send(
                                ServerSubscriptionEvent::Unsubscribed {
                                    channel: channel.clone(),
                                    reason: "unsubscribed".into(),
                                },
                            );
                        }
                        self.out.push(
                            ClientFrame::Unsubscribe(Unsubscribe { channel, id: None }).encode(),
                        );
                    }
                }
                Flow::Continue
            }
            Some(Command::Presence(update)) => {
                if self.connected {
                    self.out
                        .push(ClientFrame::PresenceUpdate(update.clone()).encode());
                }
                if update.channel.is_none() {
                    self.presence = Some(update);
                }
                Flow::Continue
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        let frame = match ServerFrame::decode(text) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::debug!(%err, "ignoring an undecodable server frame");
                return;
            }
        };
        match frame {
            ServerFrame::Subscribed(subscribed) if subscribed.server && subscribed.id.is_none() => {
                self.on_server_subscribed(subscribed);
            }
            ServerFrame::Subscribed(subscribed) => self.on_subscribed(&subscribed),
            ServerFrame::Unsubscribed(unsubscribed) => self.on_unsubscribed(unsubscribed),
            ServerFrame::Message(message) => self.on_message(message),
            ServerFrame::PresenceUpdate(event) => self.on_presence(event),
            ServerFrame::Ack(ack) => {
                self.inflight.remove(&ack.id);
                self.shared.outbox.lock().ack(&ack.id, ack.offset);
            }
            ServerFrame::Pong(pong) => {
                if let Some(id) = pong.id
                    && self.quality.pong(&id, Instant::now())
                {
                    self.publish_quality();
                }
            }
            ServerFrame::Error(error) => self.on_error(error),
            ServerFrame::Excluded(excluded) => self.on_excluded(&excluded),
            ServerFrame::Refreshed(refreshed) => {
                tracing::debug!(expires_at = refreshed.expires_at, "token refreshed");
                self.refresh_at = self.refresh_due(refreshed.expires_at, Instant::now());
            }
            _ => {}
        }
    }

    fn on_subscribed(&mut self, subscribed: &Subscribed) {
        let Some(id) = &subscribed.id else {
            return;
        };
        let Some(channel) = self.requests.remove(id) else {
            return;
        };
        let Some(entry) = self.channels.get_mut(&channel) else {
            return;
        };
        if !matches!(&entry.phase, Phase::Pending(pending) if pending == id) {
            return;
        }
        entry.phase = Phase::Live;
        let server = subscribed.position();
        let resumed = entry.position.is_some();
        match &mut entry.position {
            // Recovered: the replay follows, and continues from the last delivered offset.
            Some(position) if subscribed.recovered => position.epoch.clone_from(&server.epoch),
            position => *position = Some(server.clone()),
        }
        let start = entry.position.clone().unwrap_or_else(|| server.clone());
        entry.listeners.retain_mut(|listener| {
            let event = if resumed && listener.confirmed {
                SubscriptionEvent::Resubscribed {
                    recovered: subscribed.recovered,
                    position: server.clone(),
                }
            } else {
                SubscriptionEvent::Subscribed {
                    position: start.clone(),
                }
            };
            listener.confirmed = true;
            listener.deliver(event)
        });
    }

    /// The server subscribed this connection itself. A channel the application subscribed
    /// to already delivers to its subscriptions; any other is tracked for the server stream.
    fn on_server_subscribed(&mut self, subscribed: Subscribed) {
        if self.channels.contains_key(&subscribed.channel) {
            return;
        }
        let position = subscribed.position();
        // Recovered: the replay follows from where the backend said, in order.
        let last = if subscribed.recovered {
            0
        } else {
            subscribed.offset
        };
        self.server_channels
            .insert(subscribed.channel.clone(), last);
        let _ = self
            .shared
            .server_events
            .send(ServerSubscriptionEvent::Subscribed {
                channel: subscribed.channel,
                position,
                recovered: subscribed.recovered,
            });
    }

    /// An `unsubscribed` the server sent on its own (with a reason): the subscription is
    /// over and is not made again. One without a reason answers this client's own
    /// `unsubscribe`.
    fn on_unsubscribed(&mut self, unsubscribed: Unsubscribed) {
        let Some(reason) = unsubscribed.reason else {
            return;
        };
        let channel = unsubscribed.channel;
        if let Some(entry) = self.channels.remove(&channel) {
            if let Phase::Pending(id) = &entry.phase {
                self.requests.remove(id);
            }
            let event = SubscriptionEvent::Unsubscribed {
                reason: reason.clone(),
            };
            for listener in entry.listeners {
                listener.deliver(event.clone());
            }
        }
        if self.server_channels.remove(&channel).is_some() {
            let _ = self
                .shared
                .server_events
                .send(ServerSubscriptionEvent::Unsubscribed { channel, reason });
        }
    }

    fn on_message(&mut self, message: Message) {
        // A channel the application subscribed to delivers to its subscriptions only.
        if !self.channels.contains_key(&message.channel) {
            if let Some(last) = self.server_channels.get_mut(&message.channel)
                && message.offset > *last
            {
                *last = message.offset;
                let _ = self
                    .shared
                    .server_events
                    .send(ServerSubscriptionEvent::Message(message));
            }
            return;
        }
        if self.advance(&message.channel, message.offset) {
            let Some(entry) = self.channels.get_mut(&message.channel) else {
                return;
            };
            let event = SubscriptionEvent::Message(message);
            entry
                .listeners
                .retain(|listener| listener.deliver(event.clone()));
        }
    }

    /// When to refresh a token that expires at `expires_at` (ms since the epoch): at four
    /// fifths of its remaining lifetime. `None` without a token source or an expiry.
    fn refresh_due(&self, expires_at: Option<u64>, now: Instant) -> Option<Instant> {
        self.settings.endpoint.token.source()?;
        let remaining = expires_at?.saturating_sub(switchboard_protocol::now_ms());
        Some(now + Duration::from_millis(remaining / 5 * 4))
    }

    /// Sends a freshly fetched token as a `refresh`; without one, tries again later.
    fn send_refresh(&mut self, token: Option<String>) {
        if !self.connected {
            return;
        }
        let Some(token) = token else {
            self.refresh_at = Some(Instant::now() + REFRESH_RETRY);
            return;
        };
        self.next_request += 1;
        self.out.push(
            ClientFrame::Refresh(Refresh {
                token,
                id: Some(format!("{REFRESH_ID}{}", self.next_request)),
            })
            .encode(),
        );
    }

    /// An offset this connection was excluded from: it advances the position like a message
    /// and delivers nothing.
    fn on_excluded(&mut self, excluded: &Excluded) {
        self.advance(&excluded.channel, excluded.offset);
    }

    /// Moves a live channel's position to `offset` when it is the next one and says so; a
    /// repeated offset is dropped, and a gap resubscribes from the position to recover what
    /// is missing from history.
    fn advance(&mut self, channel: &ChannelName, offset: u64) -> bool {
        let Some(entry) = self.channels.get_mut(channel) else {
            return false;
        };
        if entry.phase != Phase::Live {
            return false;
        }
        let Some(position) = entry.position.as_mut() else {
            return false;
        };
        if offset <= position.offset {
            tracing::trace!(%channel, offset, "dropping a duplicate");
            return false;
        }
        if offset > position.offset + 1 {
            // Something between was evicted or lost: recover it from history.
            tracing::debug!(
                %channel,
                expected = position.offset + 1,
                got = offset,
                "gap in a channel's offsets; recovering"
            );
            self.out.push(
                ClientFrame::Unsubscribe(Unsubscribe {
                    channel: channel.clone(),
                    id: None,
                })
                .encode(),
            );
            self.send_subscribe(channel);
            return false;
        }
        position.offset = offset;
        true
    }

    fn on_presence(&mut self, event: PresenceEvent) {
        let Some(entry) = self.channels.get_mut(&event.channel) else {
            return;
        };
        if entry.phase != Phase::Live {
            return;
        }
        let event = SubscriptionEvent::Presence(event);
        entry
            .listeners
            .retain(|listener| listener.deliver(event.clone()));
    }

    fn on_error(&mut self, error: ErrorFrame) {
        let Some(id) = error.id.clone() else {
            tracing::debug!(code = %error.code, message = error.message, "server error");
            return;
        };
        let now = Instant::now();
        if id.starts_with(REFRESH_ID) {
            // The connection keeps its token until it expires (then 4001 and a reconnect
            // with a fresh one); meanwhile, try again.
            tracing::warn!(code = %error.code, message = error.message, "token refresh refused");
            if error.code != ErrorCode::Unsupported {
                self.refresh_at = Some(now + REFRESH_RETRY);
            }
            return;
        }
        let retry_after = error.retry_after_ms.map(Duration::from_millis);
        if let Some(channel) = self.requests.remove(&id) {
            let Some(entry) = self.channels.get_mut(&channel) else {
                return;
            };
            if !matches!(&entry.phase, Phase::Pending(pending) if *pending == id) {
                return;
            }
            if error.code.is_retryable() {
                entry.phase = Phase::Idle;
                entry.retry_at = Some(now + retry_after.unwrap_or(self.settings.backoff.base));
            } else if let Some(entry) = self.channels.remove(&channel) {
                let event = SubscriptionEvent::Refused {
                    code: error.code,
                    message: error.message,
                };
                for listener in entry.listeners {
                    listener.deliver(event.clone());
                }
            }
            return;
        }
        if self.inflight.remove(&id).is_some() {
            let mut outbox = self.shared.outbox.lock();
            if error.code.is_retryable() {
                if error.code == ErrorCode::RateLimited {
                    self.paused_until = Some(now + retry_after.unwrap_or(Duration::from_secs(1)));
                }
                outbox.fail_attempt(&id, now.into_std());
            } else {
                outbox.refuse(
                    &id,
                    PublishError::Refused {
                        code: error.code,
                        message: error.message,
                    },
                );
            }
        }
    }
}

async fn close_socket(ws: &mut Ws) {
    let frame = CloseFrame {
        code: WsCloseCode::Normal,
        reason: "client closed".into(),
    };
    // The server may already be gone; the client closes either way.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}

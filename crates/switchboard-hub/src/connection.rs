//! One connection's view of the hub: its subscriptions, presence, and frame handling.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde_json::Value;
use switchboard_backplane::{Backplane, BackplaneError, Position};
use switchboard_protocol::{
    Ack, ChannelName, ClientFrame, ClientId, CloseCode, EncodedFrame, ErrorCode, ErrorFrame,
    Member, Pong, PresenceList, PresenceQuery, PresenceUpdate, Priority, Publish, ServerFrame,
    StreamPosition, Subscribe, Subscribed, Unsubscribe, Unsubscribed,
};

use crate::authorizer::Action;
use crate::envelope::decode_envelope;
use crate::identity::Identity;
use crate::lifecycle::{DisconnectReason, HubEvent};
use crate::namespace::{Policy, namespace_of};
use crate::outbox::Outbox;
use crate::publish::{Publisher, Publishing, Receipt};
use crate::state::{HubInner, now_ms};
use crate::subscriptions::Subscriptions;

/// Presence fields a connection announced.
#[derive(Debug, Clone, PartialEq)]
struct PresenceFields {
    status: String,
    current_feature: Option<String>,
    meta: Option<Value>,
}

impl Default for PresenceFields {
    fn default() -> Self {
        Self {
            status: "online".to_owned(),
            current_feature: None,
            meta: None,
        }
    }
}

impl PresenceFields {
    /// These fields with the ones `update` gives replacing them.
    fn merged(&self, update: &PresenceUpdate) -> Self {
        Self {
            status: update.status.clone().unwrap_or_else(|| self.status.clone()),
            current_feature: update
                .current_feature
                .clone()
                .or_else(|| self.current_feature.clone()),
            meta: update.meta.clone().or_else(|| self.meta.clone()),
        }
    }
}

#[derive(Debug)]
struct MemberState {
    joined_at: u64,
    fields: PresenceFields,
}

#[derive(Debug, Default)]
struct SubscriptionState {
    /// Boxed: most subscriptions never announce presence, and every subscription's map
    /// slot is sized by this field.
    member: Option<Box<MemberState>>,
}

/// A connection registered with a [`Hub`](crate::Hub).
///
/// The transport feeds it the client's decoded frames, one at a time, with
/// [`handle`](Connection::handle); every answer, and every message of the channels it is
/// subscribed to, goes to the connection's [`Outbox`].
pub struct Connection<B: Backplane> {
    hub: Arc<HubInner<B>>,
    key: u64,
    id: Arc<str>,
    identity: Identity,
    /// The client instance's own id, when it sent one: the scope of its publish ids.
    client: Option<ClientId>,
    outbox: Arc<dyn Outbox>,
    subscriptions: Subscriptions<SubscriptionState>,
    /// Presence announced without a channel: applies to every channel, now or later. Boxed:
    /// most connections never announce any, and inline it would cost each 80 bytes.
    presence: Option<Box<PresenceFields>>,
    finished: bool,
}

impl<B: Backplane> fmt::Debug for Connection<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("user_id", &self.identity.user_id)
            .field("subscriptions", &self.subscriptions.len())
            .finish_non_exhaustive()
    }
}

fn unavailable(err: &BackplaneError) -> (ErrorCode, String) {
    (
        ErrorCode::Unavailable,
        format!("temporarily unavailable: {err}"),
    )
}

impl<B: Backplane> Connection<B> {
    pub(crate) fn new(
        hub: Arc<HubInner<B>>,
        key: u64,
        id: Arc<str>,
        identity: Identity,
        outbox: Arc<dyn Outbox>,
    ) -> Self {
        Self {
            hub,
            key,
            id,
            identity,
            client: None,
            outbox,
            subscriptions: Subscriptions::default(),
            presence: None,
            finished: false,
        }
    }

    /// Sets the id the client instance gave for itself (the transport reads it from the
    /// `client` query parameter). It scopes the ids of the connection's publishes for
    /// deduplication: the same client instance retrying a publish id, on this connection
    /// or a later one (another instance included), is acknowledged with the first offset
    /// and not delivered again, while the same id from any other client is a new message.
    /// Without it the scope is this connection alone. Set it before the first frame.
    pub fn set_client_id(&mut self, client: ClientId) {
        self.client = Some(client);
    }

    /// The id the client instance gave for itself, if any.
    #[must_use]
    pub fn client_id(&self) -> Option<&ClientId> {
        self.client.as_ref()
    }

    /// This connection's id (unique across instances).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The connection's identity.
    #[must_use]
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The channels it is subscribed to.
    pub fn subscriptions(&self) -> impl Iterator<Item = &ChannelName> {
        self.subscriptions.keys()
    }

    /// The channel named `channel`, when the connection is subscribed to it: the name it
    /// holds, to share rather than validate and copy again (for
    /// [`ClientFrame::decode_known`](switchboard_protocol::ClientFrame::decode_known)).
    #[must_use]
    pub fn subscribed(&self, channel: &str) -> Option<ChannelName> {
        self.subscriptions.name(channel).cloned()
    }

    /// Handles a client frame as far as that takes no waiting, and returns the rest to
    /// await, if any: [`handle`](Self::handle) in two steps, for a caller that would
    /// allocate the whole future of `handle` (a session boxes it, to keep its own task
    /// small). A publish through a backplane that publishes in place (the memory
    /// backplane) is handled entirely here: no future, no allocation for it.
    pub fn handle_now(
        &mut self,
        frame: ClientFrame,
    ) -> Option<Pin<Box<dyn Future<Output = ()> + Send + '_>>> {
        match frame {
            ClientFrame::Publish(f) => {
                let this: &Self = self;
                match this.start_publish(f)? {
                    ClientPublish {
                        answer_id,
                        publishing: Publishing::Done(answer),
                    } => {
                        this.answer_publish(answer_id, answer);
                        None
                    }
                    waiting => Some(Box::pin(this.finish_publish(waiting))),
                }
            }
            frame => Some(Box::pin(self.handle(frame))),
        }
    }

    /// Handles one client frame. Answers, errors included, go to the outbox in order.
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping the future mid-way may leave a subscription half made.
    /// The transport awaits each frame to completion.
    pub async fn handle(&mut self, frame: ClientFrame) {
        match frame {
            // Boxed, like a presence update: rare next to publishes, and their futures
            // (recovery, presence) would size the future every publish allocates.
            ClientFrame::Subscribe(f) => Box::pin(self.subscribe(f)).await,
            ClientFrame::Unsubscribe(f) => self.unsubscribe(f).await,
            ClientFrame::Ping(p) => self.send(
                &ServerFrame::Pong(Pong {
                    id: p.id,
                    timestamp: p.timestamp,
                    server_time: now_ms(),
                }),
                Priority::High,
            ),
            ClientFrame::PresenceUpdate(f) => Box::pin(self.presence_update(f)).await,
            ClientFrame::Presence(f) => self.presence_query(f).await,
            ClientFrame::Publish(f) => self.publish(f).await,
            other => self.error(
                ErrorCode::Unsupported,
                format!("frame type {:?} is not supported", other.kind()),
                other.id().map(str::to_owned),
            ),
        }
    }

    fn send(&self, frame: &ServerFrame, priority: Priority) {
        self.outbox.push(&frame.encode(), priority);
    }

    /// Sends an `error` frame.
    pub fn error(&self, code: ErrorCode, message: impl Into<String>, id: Option<String>) {
        self.hub.metrics.error(code);
        self.send(
            &ServerFrame::Error(ErrorFrame::new(code, message).with_id(id)),
            Priority::High,
        );
    }

    fn audit_denied(&self, action: Action, channel: &ChannelName) {
        tracing::warn!(
            target: "switchboard::audit",
            event = "forbidden",
            connection_id = %self.id,
            user_id = self.identity.user_id.as_deref().unwrap_or("-"),
            action = action.verb(),
            channel = %channel,
            "denied"
        );
    }

    fn authorize(&self, action: Action, channel: &ChannelName, id: Option<&String>) -> bool {
        if self.hub.authorizer.allows(&self.identity, action, channel) {
            return true;
        }
        self.audit_denied(action, channel);
        self.error(
            ErrorCode::Forbidden,
            format!("not allowed to {} {channel}", action.verb()),
            id.cloned(),
        );
        false
    }

    /// Whether the channel's namespace lets this connection do `action` on `channel`:
    /// anonymous connections where `anonymous` is off are answered `forbidden` (and
    /// audited, as every denial is).
    fn namespace_admits(
        &self,
        policy: Policy,
        action: Action,
        channel: &ChannelName,
        id: Option<&String>,
    ) -> bool {
        if policy.anonymous || self.identity.user_id.is_some() {
            return true;
        }
        self.audit_denied(action, channel);
        self.error(
            ErrorCode::Forbidden,
            format!(
                "anonymous connections may not {} channels of namespace {}",
                action.verb(),
                namespace_of(channel).unwrap_or_default()
            ),
            id.cloned(),
        );
        false
    }

    /// The error for presence asked of a channel whose namespace turned it off.
    fn presence_off(&self, channel: &ChannelName, id: Option<String>) {
        self.error(
            ErrorCode::Unsupported,
            format!(
                "presence is off in namespace {}",
                namespace_of(channel).unwrap_or_default()
            ),
            id,
        );
    }

    async fn subscribe(&mut self, f: Subscribe) {
        // Recovery re-runs authorization too: a token that lost the right gets nothing.
        if !self.authorize(Action::Subscribe, &f.channel, f.id.as_ref()) {
            return;
        }
        let policy = self.hub.policies.of(&f.channel);
        if !self.namespace_admits(policy, Action::Subscribe, &f.channel, f.id.as_ref()) {
            return;
        }
        // Without recovery in the namespace, `since` is answered as its absence.
        let since = f.since.filter(|_| policy.recover);
        self.join(f.channel, f.id, since, false).await;
    }

    /// Subscribes this connection to `channel` on the server's order (the session runs it
    /// for a [`Command::Subscribe`](crate::Command::Subscribe)): as a client `subscribe`
    /// would, recovering from `since` when given, but without authorization — the server
    /// decided — and with `"server": true` in the `subscribed` the client gets. The
    /// per-connection subscription limit still holds; what goes wrong is told to the client
    /// as an `error` frame without an id.
    pub async fn subscribe_by_server(
        &mut self,
        channel: ChannelName,
        since: Option<StreamPosition>,
    ) {
        let since = since.filter(|_| self.hub.policies.of(&channel).recover);
        self.join(channel, None, since, true).await;
    }

    /// Ends this connection's subscription to `channel` on the server's order (the session
    /// runs it for a [`Command::Unsubscribe`](crate::Command::Unsubscribe)): as a client
    /// `unsubscribe` would, the client told with `unsubscribed` and `"reason": "server"`.
    /// Returns whether it was subscribed.
    pub async fn unsubscribe_by_server(&mut self, channel: &ChannelName) -> bool {
        let Some(state) = self.subscriptions.remove(channel) else {
            return false;
        };
        self.leave(channel, state).await;
        self.send(
            &ServerFrame::Unsubscribed(Unsubscribed {
                channel: channel.clone(),
                id: None,
                reason: Some("server".to_owned()),
            }),
            Priority::High,
        );
        true
    }

    /// Subscribes to `channel` (authorization is the caller's): `subscribed`, then the
    /// recovered messages, then live ones.
    async fn join(
        &mut self,
        channel: ChannelName,
        id: Option<String>,
        since: Option<StreamPosition>,
        server: bool,
    ) {
        if self.subscriptions.contains_key(&channel) {
            // Already live: report where the channel is; nothing is replayed twice.
            match self.hub.backplane.position(&channel).await {
                Ok(position) => self.send(
                    &ServerFrame::Subscribed(Subscribed {
                        channel,
                        id,
                        offset: position.offset,
                        epoch: position.epoch.to_string(),
                        recovered: false,
                        server,
                    }),
                    Priority::Critical,
                ),
                Err(err) => {
                    let (code, message) = unavailable(&err);
                    self.error(code, message, id);
                }
            }
            return;
        }
        let max = self.hub.config.max_subscriptions_per_connection.get();
        if self.subscriptions.len() >= max {
            self.error(
                ErrorCode::BadRequest,
                format!("subscription limit reached: at most {max} channels per connection"),
                id,
            );
            return;
        }

        // Hold live messages from now on, so none falls between history and live delivery.
        self.hub
            .registry
            .add_pending(channel.as_arc(), self.key, Arc::clone(&self.outbox));
        if let Err(err) = self.hub.backplane.subscribe(&channel).await {
            self.hub.registry.remove(&channel, self.key);
            let (code, message) = unavailable(&err);
            self.error(code, message, id);
            return;
        }

        let answer = match &since {
            Some(since) => {
                let answer = self.recover(&channel, since).await;
                if let Ok((_, recovered, _)) = &answer {
                    self.hub.metrics.recovery(*recovered);
                }
                answer
            }
            None => self
                .hub
                .backplane
                .position(&channel)
                .await
                .map(|position| (position, false, Vec::new())),
        };
        let (position, recovered, replay) = match answer {
            Ok(answer) => answer,
            Err(err) => {
                self.hub.registry.remove(&channel, self.key);
                let _ = self.hub.backplane.unsubscribe(&channel).await;
                let (code, message) = unavailable(&err);
                self.error(code, message, id);
                return;
            }
        };

        let mut first = Vec::with_capacity(1 + replay.len());
        first.push((
            ServerFrame::Subscribed(Subscribed {
                channel: channel.clone(),
                id,
                offset: position.offset,
                epoch: position.epoch.to_string(),
                recovered,
                server,
            })
            .encode(),
            Priority::Critical,
        ));
        first.extend(replay);
        self.hub
            .registry
            .activate(&channel, self.key, first, position.offset);
        self.subscriptions
            .insert(channel.clone(), SubscriptionState::default());
        let _ = self.hub.events.send(HubEvent::Subscribed {
            connection_id: Arc::clone(&self.id),
            user_id: self.identity.user_id.clone(),
            channel: channel.clone(),
        });

        if let Some(fields) = self.presence.as_deref().cloned() {
            self.announce(&channel, fields).await;
        }
    }

    /// The position and the replay for a subscribe with `since`: everything after it, or
    /// nothing (`recovered: false`).
    async fn recover(
        &self,
        channel: &ChannelName,
        since: &StreamPosition,
    ) -> Result<(Position, bool, Vec<(EncodedFrame, Priority)>), BackplaneError> {
        let recovery = self
            .hub
            .backplane
            .since(channel, since.offset, &since.epoch)
            .await?;
        Ok(match recovery.messages {
            Some(envelopes) => {
                let replay: Option<Vec<_>> = envelopes
                    .iter()
                    .map(|e| {
                        decode_envelope(&e.data, e.offset, &self.hub.ids)
                            .map(|d| (d.frame, d.priority))
                    })
                    .collect();
                match replay {
                    Some(replay) => (recovery.position, true, replay),
                    // An unreadable entry means the replay would be partial: refuse it.
                    None => (recovery.position, false, Vec::new()),
                }
            }
            None => (recovery.position, false, Vec::new()),
        })
    }

    async fn unsubscribe(&mut self, f: Unsubscribe) {
        let Some(state) = self.subscriptions.remove(&f.channel) else {
            self.error(
                ErrorCode::NotSubscribed,
                format!("not subscribed to {}", f.channel),
                f.id,
            );
            return;
        };
        self.leave(&f.channel, state).await;
        self.send(
            &ServerFrame::Unsubscribed(Unsubscribed {
                channel: f.channel,
                id: f.id,
                reason: None,
            }),
            Priority::High,
        );
    }

    /// Runs the connection on refreshed credentials from now on: `identity` replaces the
    /// one it had (the caller checks that it is the same user), and every subscription the
    /// new identity may no longer have ends as a client `unsubscribe` would, the client told
    /// with `unsubscribed` and `"reason": "forbidden"`. Returns the channels it lost.
    pub async fn reauthorize(&mut self, identity: Identity) -> Vec<ChannelName> {
        self.identity = identity;
        let revoked: Vec<ChannelName> = self
            .subscriptions
            .keys()
            .filter(|channel| {
                !self
                    .hub
                    .authorizer
                    .allows(&self.identity, Action::Subscribe, channel)
            })
            .cloned()
            .collect();
        for channel in &revoked {
            let Some(state) = self.subscriptions.remove(channel) else {
                continue;
            };
            self.audit_denied(Action::Subscribe, channel);
            self.leave(channel, state).await;
            self.send(
                &ServerFrame::Unsubscribed(Unsubscribed {
                    channel: channel.clone(),
                    id: None,
                    reason: Some("forbidden".to_owned()),
                }),
                Priority::High,
            );
        }
        revoked
    }

    async fn leave(&self, channel: &ChannelName, state: SubscriptionState) {
        leave_channel(
            &self.hub,
            self.key,
            &self.id,
            &self.identity,
            channel,
            state,
        )
        .await;
    }

    async fn presence_update(&mut self, f: PresenceUpdate) {
        match f.channel.clone() {
            Some(channel) => {
                if !self.hub.policies.of(&channel).presence {
                    self.presence_off(&channel, None);
                    return;
                }
                let Some(state) = self.subscriptions.get(&channel) else {
                    self.error(
                        ErrorCode::NotSubscribed,
                        format!("not subscribed to {channel}"),
                        None,
                    );
                    return;
                };
                let base = state
                    .member
                    .as_ref()
                    .map(|m| m.fields.clone())
                    .or_else(|| self.presence.as_deref().cloned())
                    .unwrap_or_default();
                self.announce(&channel, base.merged(&f)).await;
            }
            None => {
                let global = self
                    .presence
                    .as_deref()
                    .cloned()
                    .unwrap_or_default()
                    .merged(&f);
                self.presence = Some(Box::new(global.clone()));
                let channels: Vec<ChannelName> = self.subscriptions.keys().cloned().collect();
                for channel in channels {
                    let base = self
                        .subscriptions
                        .get(&channel)
                        .and_then(|s| s.member.as_ref())
                        .map_or_else(|| global.clone(), |m| m.fields.merged(&f));
                    self.announce(&channel, base).await;
                }
            }
        }
    }

    /// Sets this connection's presence on a channel it is subscribed to; the backplane
    /// broadcasts the join or update to every instance.
    async fn announce(&mut self, channel: &ChannelName, mut fields: PresenceFields) {
        // Presence announced for every channel skips those where it is off.
        if !self.hub.policies.of(channel).presence {
            return;
        }
        if let Some(meta) = &mut fields.meta {
            self.hub.redactor.redact_value(meta);
        }
        let now = now_ms();
        let Some(state) = self.subscriptions.get_mut(channel) else {
            return;
        };
        let joined_at = state.member.as_ref().map_or(now, |m| m.joined_at);
        let member = Member {
            connection_id: self.id.to_string(),
            user_id: self.identity.user_id.as_deref().map(str::to_owned),
            status: fields.status.clone(),
            current_feature: fields.current_feature.clone(),
            meta: fields.meta.clone(),
            joined_at,
            last_seen: now,
        };
        let data = Bytes::from(serde_json::to_vec(&member).expect("members always serialize"));
        state.member = Some(Box::new(MemberState { joined_at, fields }));
        if self
            .hub
            .members
            .lock()
            .insert((Arc::from(channel.as_str()), Arc::clone(&self.id)))
        {
            self.hub.metrics.presence_joined();
            let _ = self.hub.events.send(HubEvent::MemberJoined {
                connection_id: Arc::clone(&self.id),
                user_id: self.identity.user_id.clone(),
                channel: channel.clone(),
            });
        }
        if let Err(err) = self
            .hub
            .backplane
            .presence_set(channel, &self.id, data)
            .await
        {
            let (code, message) = unavailable(&err);
            self.error(code, message, None);
        }
    }

    async fn presence_query(&self, f: PresenceQuery) {
        if !self.authorize(Action::Presence, &f.channel, f.id.as_ref()) {
            return;
        }
        let policy = self.hub.policies.of(&f.channel);
        if !policy.presence {
            self.presence_off(&f.channel, f.id);
            return;
        }
        if !self.namespace_admits(policy, Action::Presence, &f.channel, f.id.as_ref()) {
            return;
        }
        match self.hub.backplane.presence_list(&f.channel).await {
            Ok(entries) => {
                let members = entries
                    .iter()
                    .filter_map(|e| serde_json::from_slice::<Member>(&e.data).ok())
                    .collect();
                self.send(
                    &ServerFrame::Presence(PresenceList {
                        channel: f.channel,
                        id: f.id,
                        members,
                    }),
                    Priority::High,
                );
            }
            Err(err) => {
                let (code, message) = unavailable(&err);
                self.error(code, message, f.id);
            }
        }
    }

    /// Authorizes, encodes and (when the backplane publishes in place) publishes now; what
    /// is left, if anything, is the backplane's answer to wait for and answer.
    fn start_publish(
        &self,
        f: Publish,
    ) -> Option<ClientPublish<impl Future<Output = Result<Receipt, BackplaneError>> + Send + '_>>
    {
        if !(self.authorize(Action::Publish, &f.channel, f.id.as_ref())
            && self.namespace_lets_clients_publish(&f.channel, f.id.as_ref()))
        {
            return None;
        }
        let publisher = Publisher {
            connection_id: Arc::clone(&self.id),
            user_id: self.identity.user_id.clone(),
            client: self.client.clone(),
        };
        let answer_id = f.id.clone();
        let own_id: &str = &self.id;
        let exclude: &[&str] = if f.exclude_self {
            std::slice::from_ref(&own_id)
        } else {
            &[]
        };
        let publishing = self.hub.publish(
            publisher, f.channel, &f.event, f.payload, f.id, f.priority, exclude,
        );
        Some(ClientPublish {
            answer_id,
            publishing,
        })
    }

    /// A publish's `ack` (when it had an id), or its `error`.
    fn answer_publish(&self, answer_id: Option<String>, answer: Result<Receipt, BackplaneError>) {
        match answer {
            Ok(receipt) => {
                if let Some(id) = answer_id {
                    self.send(
                        &ServerFrame::Ack(Ack {
                            id,
                            offset: receipt.offset,
                        }),
                        Priority::High,
                    );
                }
            }
            Err(err) => {
                let (code, message) = unavailable(&err);
                self.error(code, message, answer_id);
            }
        }
    }

    /// A publish: done before the future is polled when the backplane publishes in place;
    /// the future only waits for the backplane and answers (small: every client publish
    /// through a backplane that waits allocates it).
    fn publish(&self, f: Publish) -> impl Future<Output = ()> + Send + '_ {
        let started = self.start_publish(f);
        async move {
            if let Some(started) = started {
                self.finish_publish(started).await;
            }
        }
    }

    /// Waits for the backplane's answer to a publish, if it has not come yet, and answers
    /// the client.
    async fn finish_publish<F>(&self, started: ClientPublish<F>)
    where
        F: Future<Output = Result<Receipt, BackplaneError>>,
    {
        let answer = started.publishing.answer().await;
        self.answer_publish(started.answer_id, answer);
    }

    /// Whether the channel's namespace lets this connection publish: clients may not where
    /// `client_publish` is off, anonymous ones not where `anonymous` is; `forbidden` else.
    fn namespace_lets_clients_publish(&self, channel: &ChannelName, id: Option<&String>) -> bool {
        let policy = self.hub.policies.of(channel);
        if !policy.client_publish {
            self.audit_denied(Action::Publish, channel);
            self.error(
                ErrorCode::Forbidden,
                format!(
                    "clients may not publish to channels of namespace {}",
                    namespace_of(channel).unwrap_or_default()
                ),
                id.cloned(),
            );
            return false;
        }
        self.namespace_admits(policy, Action::Publish, channel, id)
    }

    /// Ends the connection: leaves presence everywhere, drops every subscription, and
    /// reports [`HubEvent::Disconnected`].
    pub async fn disconnect(mut self, reason: DisconnectReason) {
        self.finish(reason).await;
    }

    async fn finish(&mut self, reason: DisconnectReason) {
        if let Some(cleanup) = self.take_cleanup() {
            cleanup.run(reason).await;
        }
    }

    /// Everything needed to end the connection, taken once.
    fn take_cleanup(&mut self) -> Option<Cleanup<B>> {
        if std::mem::replace(&mut self.finished, true) {
            return None;
        }
        Some(Cleanup {
            hub: Arc::clone(&self.hub),
            key: self.key,
            id: Arc::clone(&self.id),
            identity: self.identity.clone(),
            subscriptions: std::mem::take(&mut self.subscriptions),
        })
    }

    /// Asks the transport to close this connection with `code`.
    pub fn close(&self, code: CloseCode) {
        self.outbox.close(code);
    }
}

/// A client's publish under way, and the id its answer (`ack` or `error`) carries.
struct ClientPublish<F> {
    answer_id: Option<String>,
    publishing: Publishing<F>,
}

impl<B: Backplane> Drop for Connection<B> {
    fn drop(&mut self) {
        // Dropped without `disconnect` (a panicking or cancelled session): clean up in the
        // background so subscriptions and presence never leak. If the runtime is gone there
        // is nobody left to tell.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if let Some(cleanup) = self.take_cleanup() {
            runtime.spawn(cleanup.run(DisconnectReason::Error));
        }
    }
}

/// The end of a connection, detached from it so it can run after the connection is gone.
struct Cleanup<B: Backplane> {
    hub: Arc<HubInner<B>>,
    key: u64,
    id: Arc<str>,
    identity: Identity,
    subscriptions: Subscriptions<SubscriptionState>,
}

impl<B: Backplane> Cleanup<B> {
    async fn run(self, reason: DisconnectReason) {
        if self.identity.user_id.is_some() {
            self.hub.users.remove(self.key);
        }
        for (channel, state) in self.subscriptions.into_entries() {
            leave_channel(
                &self.hub,
                self.key,
                &self.id,
                &self.identity,
                &channel,
                state,
            )
            .await;
        }
        self.hub.connections.fetch_sub(1, Ordering::Relaxed);
        let _ = self.hub.events.send(HubEvent::Disconnected {
            connection_id: self.id,
            user_id: self.identity.user_id,
            reason,
        });
    }
}

/// Ends a subscription: presence leave, local removal, backplane unsubscribe.
async fn leave_channel<B: Backplane>(
    hub: &HubInner<B>,
    key: u64,
    id: &Arc<str>,
    identity: &Identity,
    channel: &ChannelName,
    state: SubscriptionState,
) {
    if state.member.is_some() {
        if hub
            .members
            .lock()
            .remove(&(Arc::from(channel.as_str()), Arc::clone(id)))
        {
            hub.metrics.presence_left();
            let _ = hub.events.send(HubEvent::MemberLeft {
                connection_id: Arc::clone(id),
                user_id: identity.user_id.clone(),
                channel: channel.clone(),
            });
        }
        if let Err(err) = hub.backplane.presence_remove(channel, id).await {
            tracing::warn!(%channel, %err, "presence leave failed; the member expires by TTL");
        }
    }
    hub.registry.remove(channel, key);
    if let Err(err) = hub.backplane.unsubscribe(channel).await {
        tracing::warn!(%channel, %err, "backplane unsubscribe failed");
    }
    let _ = hub.events.send(HubEvent::Unsubscribed {
        connection_id: Arc::clone(id),
        user_id: identity.user_id.clone(),
        channel: channel.clone(),
    });
}

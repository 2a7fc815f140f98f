//! The `Backplane` trait and its object-safe form.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::error::Result;
use crate::events::{EventReceiver, EventSink};
use crate::types::{
    GroupJoin, Health, Position, PresenceAction, PresenceEntry, PublishOptions, Published,
    Recovery, Survey,
};

/// Cross-instance pub/sub with per-channel order, bounded history and presence.
///
/// One value is one *instance* (one server process, or one hub in tests). Implementations:
/// [`MemoryBackplane`](crate::MemoryBackplane) (one process; several instances may share one
/// store) and `RedisBackplane` (feature `redis`).
///
/// # Order and history
/// [`publish`](Backplane::publish) assigns the channel's next offset and appends to its
/// history in one atomic step, so every instance sees one order, and
/// [`since`](Backplane::since) can answer from any instance.
///
/// # Delivery
/// An instance's consumer — the [`EventSink`] [attached](Backplane::attach) to it, and any
/// [`events`](Backplane::events) receiver — gets each message of every channel it is
/// [subscribed](Backplane::subscribe) to exactly once and in ascending offset, its own
/// publishes included. When it cannot guarantee that (history lost, messages missed while
/// the store was unreachable and no longer in history), it says so with
/// [`Event::Reset`](crate::Event::Reset) instead of skipping silently.
pub trait Backplane: Send + Sync + 'static {
    /// Publishes `data` to `channel`: assigns the next offset, appends to the channel's
    /// history (trimming it to its bounds) and delivers to every subscribed instance.
    ///
    /// While the shared store is unreachable, implementations degrade to local delivery and
    /// say so with [`Scope::LocalOnly`](crate::Scope::LocalOnly) rather than failing.
    ///
    /// The same as [`publish_with`](Backplane::publish_with) with default options (no
    /// deduplication).
    ///
    /// # Errors
    /// [`BackplaneError`](crate::BackplaneError) when the message could not be published at
    /// all (for example after shutdown).
    fn publish(
        &self,
        channel: &str,
        data: Bytes,
    ) -> impl Future<Output = Result<Published>> + Send {
        self.publish_with(channel, data, PublishOptions::default())
    }

    /// Publishes `data` to `channel` as [`publish`](Backplane::publish) does, with options.
    ///
    /// With a [dedupe key](PublishOptions::dedupe_key), a key already used on the channel
    /// within the current epoch and its dedupe window (the channel's latest keyed publishes)
    /// publishes nothing: the answer has [`duplicate`](Published::duplicate) set and carries
    /// the offset the first publish got. That makes retries idempotent — a publisher that lost
    /// an acknowledgement and sends again, possibly through another instance, is delivered
    /// once. The check and the publish are one atomic step.
    ///
    /// # Errors
    /// As [`publish`](Backplane::publish).
    fn publish_with(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> impl Future<Output = Result<Published>> + Send;

    /// Publishes as [`publish_with`](Backplane::publish_with) does, at once, when this
    /// backplane needs no waiting for it (its store is in this process, as the memory
    /// backplane's is): `Some` with the answer. `None` when a publish waits for a round
    /// trip (Redis); nothing was published then, and `publish_with` is the way.
    ///
    /// This lets a caller publish without an allocation or an await where that is
    /// possible: the hub handles a client's publish so. The default answers `None`.
    fn publish_now(
        &self,
        channel: &str,
        data: &Bytes,
        options: PublishOptions<'_>,
    ) -> Option<Result<Published>> {
        let _ = (channel, data, options);
        None
    }

    /// Starts delivering `channel`'s events to this instance. Reference counted: the first
    /// call subscribes, later ones only count.
    ///
    /// While the shared store is unreachable the subscription is still registered; it takes
    /// effect in the store after the reconnect, with an [`Event::Reset`](crate::Event::Reset)
    /// since what was published meanwhile is unknown.
    ///
    /// # Errors
    /// When the subscription could not be registered at all (for example after shutdown).
    fn subscribe(&self, channel: &str) -> impl Future<Output = Result<()>> + Send;

    /// Drops one reference taken by [`subscribe`](Backplane::subscribe); the last one stops
    /// delivery to this instance.
    ///
    /// # Errors
    /// As [`subscribe`](Backplane::subscribe).
    fn unsubscribe(&self, channel: &str) -> impl Future<Output = Result<()>> + Send;

    /// A new receiver of this instance's events, through a bounded queue (a receiver that
    /// falls behind gets [`Event::Lagged`](crate::Event::Lagged)). For tools and tests; the
    /// hub [attaches](Backplane::attach) a sink instead.
    fn events(&self) -> EventReceiver;

    /// Attaches a consumer: `sink` is called with every event from now on, in order, by the
    /// backplane itself, with no queue or task in between (see [`EventSink`]), so it never
    /// falls behind. Several sinks may be attached (several hubs sharing one instance); each
    /// gets every event.
    ///
    /// # Errors
    /// [`BackplaneError::Closed`](crate::BackplaneError::Closed) after shutdown.
    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<()>;

    /// The channel's current position (offset 0 and its epoch when it has no messages).
    ///
    /// # Errors
    /// When the store is unreachable and no local position is known.
    fn position(&self, channel: &str) -> impl Future<Output = Result<Position>> + Send;

    /// Every message of `channel` after `offset` in `epoch`, or "cannot recover" — never a
    /// partial list.
    ///
    /// # Errors
    /// When the store is unreachable.
    fn since(
        &self,
        channel: &str,
        offset: u64,
        epoch: &str,
    ) -> impl Future<Output = Result<Recovery>> + Send;

    /// Adds or updates `connection_id`'s presence on `channel` with `data`, refreshing its
    /// TTL, and broadcasts the change to the channel's instances. Returns whether it was a
    /// [`Join`](PresenceAction::Join) or an [`Update`](PresenceAction::Update).
    ///
    /// # Errors
    /// When the store is unreachable and the change could not be applied locally either.
    fn presence_set(
        &self,
        channel: &str,
        connection_id: &str,
        data: Bytes,
    ) -> impl Future<Output = Result<PresenceAction>> + Send;

    /// Removes `connection_id`'s presence on `channel` and broadcasts a leave. Returns the
    /// removed entry, or `None` when it was not present.
    ///
    /// # Errors
    /// As [`presence_set`](Backplane::presence_set).
    fn presence_remove(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<Option<PresenceEntry>>> + Send;

    /// Refreshes the TTL of `connection_id`'s presence on `channel` without broadcasting.
    ///
    /// # Errors
    /// As [`presence_set`](Backplane::presence_set).
    fn presence_touch(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The channel's current (unexpired) members.
    ///
    /// # Errors
    /// When the store is unreachable.
    fn presence_list(
        &self,
        channel: &str,
    ) -> impl Future<Output = Result<Vec<PresenceEntry>>> + Send;

    /// Takes, or renews, `holder`'s lease among the holders of `key`: granted when `holder`
    /// already holds one or fewer than `limit` unexpired leases are held, by any instance.
    /// A lease lasts `ttl` from the last grant unless released. Returns whether `holder`
    /// holds a lease now. This is what counts one user's connections across instances.
    ///
    /// # Errors
    /// When the store is unreachable: a caller decides whether to go on without the count.
    fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Gives `holder`'s lease under `key` back (nothing when it holds none).
    ///
    /// # Errors
    /// When the store is unreachable (the lease then ends at its expiry).
    fn lease_release(&self, key: &str, holder: &str) -> impl Future<Output = Result<()>> + Send;

    /// Makes `member` a member of `group` until `ttl` from now (a member joining again
    /// renews it), and says whether this made the group non-empty: of all the instances
    /// joining an empty group, exactly one is told [`GroupJoin::First`]. This is how "the
    /// first subscriber anywhere" is detected (a group per channel, a member per instance).
    ///
    /// # Errors
    /// When the store is unreachable.
    fn group_join(
        &self,
        group: &str,
        member: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<GroupJoin>> + Send;

    /// Takes `member` out of `group`; `true` when this call removed its last live member
    /// (exactly one caller is told so per emptiness).
    ///
    /// # Errors
    /// When the store is unreachable (the membership then ends at its expiry).
    fn group_leave(&self, group: &str, member: &str) -> impl Future<Output = Result<bool>> + Send;

    /// The groups whose last members expired without leaving, each reported to exactly one
    /// caller across the cluster (at most 100 a call): what a dead instance left behind.
    /// Call it periodically from every instance.
    ///
    /// # Errors
    /// When the store is unreachable.
    fn group_reap(&self) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Puts `request` to every instance — each attached sink's
    /// [`answer`](EventSink::answer), this instance's included — and gathers the answers,
    /// waiting at most `timeout` for instances to reply. This is how a question about the
    /// whole cluster (which connections does a user have, who is on a channel) or an order
    /// to all of it (close that user's connections) is put.
    ///
    /// Never fails for lack of answers: [`Survey::is_complete`] says whether every instance
    /// replied. While the shared store is unreachable only this instance is asked, with
    /// [`Scope::LocalOnly`](crate::Scope::LocalOnly).
    ///
    /// # Errors
    /// [`BackplaneError::Closed`](crate::BackplaneError::Closed) after shutdown.
    fn survey(
        &self,
        request: Bytes,
        timeout: Duration,
    ) -> impl Future<Output = Result<Survey>> + Send;

    /// The current health; changes are published on the returned watch.
    fn health(&self) -> watch::Receiver<Health>;

    /// What this backplane is: `"memory"` or `"redis"`.
    fn kind(&self) -> &'static str;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The object-safe form of [`Backplane`], implemented for every backplane. Use
/// [`BoxBackplane`] to choose an implementation at runtime.
#[allow(missing_docs)] // Each method is documented on `Backplane`.
pub trait DynBackplane: Send + Sync + 'static {
    fn publish_dyn<'a>(
        &'a self,
        channel: &'a str,
        data: Bytes,
        options: PublishOptions<'a>,
    ) -> BoxFuture<'a, Result<Published>>;
    fn publish_now_dyn(
        &self,
        channel: &str,
        data: &Bytes,
        options: PublishOptions<'_>,
    ) -> Option<Result<Published>>;
    fn subscribe_dyn<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<()>>;
    fn unsubscribe_dyn<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<()>>;
    fn events_dyn(&self) -> EventReceiver;
    fn attach_dyn(&self, sink: Arc<dyn EventSink>) -> Result<()>;
    fn position_dyn<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<Position>>;
    fn since_dyn<'a>(
        &'a self,
        channel: &'a str,
        offset: u64,
        epoch: &'a str,
    ) -> BoxFuture<'a, Result<Recovery>>;
    fn presence_set_dyn<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
        data: Bytes,
    ) -> BoxFuture<'a, Result<PresenceAction>>;
    fn presence_remove_dyn<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PresenceEntry>>>;
    fn presence_touch_dyn<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<()>>;
    fn presence_list_dyn<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>>>;
    fn lease_acquire_dyn<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        limit: u32,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>>;
    fn lease_release_dyn<'a>(&'a self, key: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>>;
    fn survey_dyn(&self, request: Bytes, timeout: Duration) -> BoxFuture<'_, Result<Survey>>;
    fn group_join_dyn<'a>(
        &'a self,
        group: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<GroupJoin>>;
    fn group_leave_dyn<'a>(
        &'a self,
        group: &'a str,
        member: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    fn group_reap_dyn(&self) -> BoxFuture<'_, Result<Vec<String>>>;
    fn health_dyn(&self) -> watch::Receiver<Health>;
    fn kind_dyn(&self) -> &'static str;
}

impl<B: Backplane> DynBackplane for B {
    fn publish_dyn<'a>(
        &'a self,
        channel: &'a str,
        data: Bytes,
        options: PublishOptions<'a>,
    ) -> BoxFuture<'a, Result<Published>> {
        Box::pin(self.publish_with(channel, data, options))
    }
    fn publish_now_dyn(
        &self,
        channel: &str,
        data: &Bytes,
        options: PublishOptions<'_>,
    ) -> Option<Result<Published>> {
        self.publish_now(channel, data, options)
    }
    fn subscribe_dyn<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.subscribe(channel))
    }
    fn unsubscribe_dyn<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.unsubscribe(channel))
    }
    fn events_dyn(&self) -> EventReceiver {
        self.events()
    }
    fn attach_dyn(&self, sink: Arc<dyn EventSink>) -> Result<()> {
        self.attach(sink)
    }
    fn position_dyn<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<Position>> {
        Box::pin(self.position(channel))
    }
    fn since_dyn<'a>(
        &'a self,
        channel: &'a str,
        offset: u64,
        epoch: &'a str,
    ) -> BoxFuture<'a, Result<Recovery>> {
        Box::pin(self.since(channel, offset, epoch))
    }
    fn presence_set_dyn<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
        data: Bytes,
    ) -> BoxFuture<'a, Result<PresenceAction>> {
        Box::pin(self.presence_set(channel, connection_id, data))
    }
    fn presence_remove_dyn<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<PresenceEntry>>> {
        Box::pin(self.presence_remove(channel, connection_id))
    }
    fn presence_touch_dyn<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.presence_touch(channel, connection_id))
    }
    fn presence_list_dyn<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>>> {
        Box::pin(self.presence_list(channel))
    }
    fn lease_acquire_dyn<'a>(
        &'a self,
        key: &'a str,
        holder: &'a str,
        limit: u32,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.lease_acquire(key, holder, limit, ttl))
    }
    fn lease_release_dyn<'a>(&'a self, key: &'a str, holder: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.lease_release(key, holder))
    }
    fn survey_dyn(&self, request: Bytes, timeout: Duration) -> BoxFuture<'_, Result<Survey>> {
        Box::pin(self.survey(request, timeout))
    }
    fn group_join_dyn<'a>(
        &'a self,
        group: &'a str,
        member: &'a str,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<GroupJoin>> {
        Box::pin(self.group_join(group, member, ttl))
    }
    fn group_leave_dyn<'a>(
        &'a self,
        group: &'a str,
        member: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(self.group_leave(group, member))
    }
    fn group_reap_dyn(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.group_reap())
    }
    fn health_dyn(&self) -> watch::Receiver<Health> {
        self.health()
    }
    fn kind_dyn(&self) -> &'static str {
        self.kind()
    }
}

/// A backplane chosen at runtime (for example memory or Redis from configuration).
#[derive(Clone)]
pub struct BoxBackplane(Arc<dyn DynBackplane>);

impl BoxBackplane {
    /// Boxes a backplane.
    #[must_use]
    pub fn new<B: Backplane>(backplane: B) -> Self {
        Self(Arc::new(backplane))
    }
}

impl std::fmt::Debug for BoxBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("BoxBackplane")
            .field(&self.0.kind_dyn())
            .finish()
    }
}

impl Backplane for BoxBackplane {
    async fn publish_with(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Result<Published> {
        self.0.publish_dyn(channel, data, options).await
    }
    fn publish_now(
        &self,
        channel: &str,
        data: &Bytes,
        options: PublishOptions<'_>,
    ) -> Option<Result<Published>> {
        self.0.publish_now_dyn(channel, data, options)
    }
    async fn subscribe(&self, channel: &str) -> Result<()> {
        self.0.subscribe_dyn(channel).await
    }
    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.0.unsubscribe_dyn(channel).await
    }
    fn events(&self) -> EventReceiver {
        self.0.events_dyn()
    }
    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<()> {
        self.0.attach_dyn(sink)
    }
    async fn position(&self, channel: &str) -> Result<Position> {
        self.0.position_dyn(channel).await
    }
    async fn since(&self, channel: &str, offset: u64, epoch: &str) -> Result<Recovery> {
        self.0.since_dyn(channel, offset, epoch).await
    }
    async fn presence_set(
        &self,
        channel: &str,
        connection_id: &str,
        data: Bytes,
    ) -> Result<PresenceAction> {
        self.0.presence_set_dyn(channel, connection_id, data).await
    }
    async fn presence_remove(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> Result<Option<PresenceEntry>> {
        self.0.presence_remove_dyn(channel, connection_id).await
    }
    async fn presence_touch(&self, channel: &str, connection_id: &str) -> Result<()> {
        self.0.presence_touch_dyn(channel, connection_id).await
    }
    async fn presence_list(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        self.0.presence_list_dyn(channel).await
    }
    async fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool> {
        self.0.lease_acquire_dyn(key, holder, limit, ttl).await
    }
    async fn lease_release(&self, key: &str, holder: &str) -> Result<()> {
        self.0.lease_release_dyn(key, holder).await
    }
    async fn survey(&self, request: Bytes, timeout: Duration) -> Result<Survey> {
        self.0.survey_dyn(request, timeout).await
    }
    async fn group_join(&self, group: &str, member: &str, ttl: Duration) -> Result<GroupJoin> {
        self.0.group_join_dyn(group, member, ttl).await
    }
    async fn group_leave(&self, group: &str, member: &str) -> Result<bool> {
        self.0.group_leave_dyn(group, member).await
    }
    async fn group_reap(&self) -> Result<Vec<String>> {
        self.0.group_reap_dyn().await
    }
    fn health(&self) -> watch::Receiver<Health> {
        self.0.health_dyn()
    }
    fn kind(&self) -> &'static str {
        self.0.kind_dyn()
    }
}

//! The Redis backplane.

mod config;
mod continuity;
mod layout;
mod scripts;
mod supervisor;
mod survey;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use redis::{IntoConnectionInfo, ProtocolVersion};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use config::{DEFAULT_HISTORY_MAX_CHANNEL_BYTES, RedisBackplaneConfig};

use self::continuity::{Live as LiveOutcome, MAX_ROUNDS, Sub};
use self::layout::{Incoming, Keys, presence_change};
use self::scripts::{Break, CallError, Limits, SetMode};
use crate::backplane::Backplane;
use crate::error::{BackplaneError, Result};
use crate::events::{EventOutlet, EventReceiver, EventSink};
use crate::history::{History, HistoryBudget, HistoryLimits, overridden};
use crate::presence::PresenceTable;
use crate::types::{
    DegradedCause, Epoch, Event, GroupJoin, Health, HealthState, Position, PresenceAction,
    PresenceEntry, PublishOptions, Published, Recovery, ResetReason, Scope, Survey, rand_u64,
};

/// How many channels one `SUBSCRIBE` carries when resubscribing after a reconnect.
const SUBSCRIBE_BATCH: usize = 256;
/// How many channels catch up (or presence members are restored) concurrently.
const CONCURRENT_SYNCS: usize = 32;

/// Counters for the metrics layer; every one only grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisBackplaneStats {
    /// Publishes delivered to this instance only because Redis was unreachable.
    pub degraded_publishes: u64,
    /// Successful reconnections after a lost connection (the first connection not counted).
    pub reconnects: u64,
    /// Times the liveness probe's echo did not come back in time.
    pub probe_failures: u64,
    /// [`Event::Reset`]s emitted.
    pub resets: u64,
    /// Messages delivered from history to fill a gap (after a reconnect or a lost push).
    pub gap_fills: u64,
    /// Pub/sub pushes dropped because processing fell behind (each triggers a catch-up).
    pub dropped_pushes: u64,
}

#[derive(Debug, Default)]
struct Counters {
    degraded_publishes: AtomicU64,
    reconnects: AtomicU64,
    probe_failures: AtomicU64,
    resets: AtomicU64,
    gap_fills: AtomicU64,
}

/// What the connection's push callback shares with the backplane (it must not hold the
/// backplane itself: the connection would then keep it alive).
#[derive(Debug, Default)]
struct PushGate {
    overflow: AtomicBool,
    dropped: AtomicU64,
}

/// The installed connection and its generation (incremented per connection).
#[derive(Clone)]
struct Live {
    generation: u64,
    conn: MultiplexedConnection,
}

struct State {
    /// `Some` while the circuit is closed: calls go to Redis.
    conn: Option<Live>,
    subs: HashMap<Arc<str>, Sub>,
    next_sub: u64,
    /// Local fallback history of channels published to while Redis was unreachable.
    local: HashMap<Arc<str>, History>,
    /// Channels this instance published to locally during the outage: their shared history
    /// lacks those messages, so they start a new epoch in Redis when it is back.
    published_locally: HashSet<Arc<str>>,
    /// Members set through this instance, re-announced after a reconnect.
    owned: HashMap<Arc<str>, PresenceTable>,
    /// Members of this instance removed while Redis was unreachable.
    removed_offline: HashSet<(Arc<str>, Arc<str>)>,
    /// `None` after shutdown.
    events: Option<EventOutlet>,
}

pub(crate) struct Shared {
    config: RedisBackplaneConfig,
    keys: Keys,
    limits: Limits,
    node: String,
    probe_channel: String,
    /// Survey requests from every instance arrive here.
    control_channel: String,
    /// Replies to this instance's surveys arrive here.
    reply_channel: String,
    surveys: survey::Surveys,
    client: redis::Client,
    state: Mutex<State>,
    /// The local fallback's histories count their bytes here.
    budget: Arc<HistoryBudget>,
    health: watch::Sender<Health>,
    counters: Counters,
    failures: AtomicU32,
    closed: AtomicBool,
    /// Connection generation and why, when a connection is found broken.
    broken: mpsc::Sender<(u64, Break)>,
    pushes: mpsc::Sender<(u64, redis::PushInfo)>,
    gate: Arc<PushGate>,
    /// The generation whose probe echo came back last, and when.
    last_echo: Mutex<Option<(u64, Instant)>>,
    echo: Notify,
}

/// The Redis backplane: channels shared by every instance connected to one Redis.
///
/// See the crate documentation for the key layout, the Lua scripts, how each instance
/// delivers every message exactly once, and what happens while Redis is unreachable.
/// Clones share one instance; its background tasks end when the last clone is dropped or
/// [`shutdown`](Self::shutdown) is called.
#[derive(Clone)]
pub struct RedisBackplane {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    /// Dropping it tells the background tasks to end.
    stop: Mutex<Option<watch::Sender<()>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        // The URL is not kept: it may hold a password.
        f.debug_struct("RedisBackplane")
            .field("node", &shared.node)
            .field("prefix", &shared.config.prefix)
            .field("health", &shared.health.borrow().state)
            .field("subscriptions", &shared.state.lock().subs.len())
            .finish()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisBackplane {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` with the `redis-tls` feature) and starts the background tasks.
    ///
    /// It waits for the first connection attempt (at most about `connect_timeout` plus two
    /// `command_timeout`s). When Redis is unreachable it still returns, degraded: publishes
    /// stay local and it keeps reconnecting.
    ///
    /// # Errors
    /// [`BackplaneError::Config`] for an invalid URL or configuration; nothing else.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub async fn connect(url: &str, config: RedisBackplaneConfig) -> Result<Self> {
        config.validate()?;
        let info = url
            .into_connection_info()
            .map_err(|e| BackplaneError::Config(format!("invalid Redis URL: {e}")))?;
        #[cfg(feature = "redis-tls")]
        if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
            // Already installed by the application (or an earlier call): keep that one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings))
            .map_err(|e| BackplaneError::Config(format!("invalid Redis URL: {e}")))?;

        let node = format!("{:016x}", rand_u64());
        let keys = Keys::new(&config.prefix);
        let limits = Limits {
            history_size: config.history_size,
            history_max_channel_bytes: config.history_max_channel_bytes,
            history_ttl_ms: millis(config.history_ttl),
            dedupe_window: config.dedupe_window,
            channel_ttl_ms: millis(config.channel_ttl),
            presence_ttl_ms: millis(config.presence_ttl),
            // Longer than any member's expiry, so sweeps still see expired members to announce.
            presence_key_ttl_ms: millis(config.presence_ttl + 2 * config.presence_sweep),
        };
        let events = EventOutlet::new(config.event_capacity.get());
        let (health, _) = watch::channel(Health {
            state: HealthState::Degraded,
            detail: "redis: connecting".into(),
            cause: None,
            since: SystemTime::now(),
        });
        let (broken_tx, broken_rx) = mpsc::channel(64);
        let (push_tx, push_rx) = mpsc::channel(config.push_capacity.get());
        let (stop_tx, stop_rx) = watch::channel(());
        let (ready_tx, ready_rx) = oneshot::channel();
        let wait = config.connect_timeout + 2 * config.command_timeout;
        let shared = Arc::new(Shared {
            probe_channel: keys.probe(&node),
            control_channel: keys.control(),
            reply_channel: keys.reply(&node),
            surveys: survey::Surveys::default(),
            keys,
            limits,
            node,
            client,
            state: Mutex::new(State {
                conn: None,
                subs: HashMap::new(),
                next_sub: 0,
                local: HashMap::new(),
                published_locally: HashSet::new(),
                owned: HashMap::new(),
                removed_offline: HashSet::new(),
                events: Some(events),
            }),
            health,
            counters: Counters::default(),
            budget: HistoryBudget::new(config.history_max_bytes),
            failures: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            broken: broken_tx,
            pushes: push_tx,
            gate: Arc::new(PushGate::default()),
            last_echo: Mutex::new(None),
            echo: Notify::new(),
            config,
        });
        let tasks = vec![
            tokio::spawn(supervisor::supervise(
                Arc::clone(&shared),
                stop_rx.clone(),
                broken_rx,
                ready_tx,
            )),
            tokio::spawn(supervisor::pump(Arc::clone(&shared), push_rx, stop_rx)),
        ];
        // Either outcome is fine: the health says which.
        let _ = tokio::time::timeout(wait, ready_rx).await;
        Ok(Self {
            handle: Arc::new(Handle {
                shared,
                stop: Mutex::new(Some(stop_tx)),
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// This instance's random node id (its probe channel is `<prefix>probe:<node>`).
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.handle.shared.node
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RedisBackplaneConfig {
        &self.handle.shared.config
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> RedisBackplaneStats {
        let c = &self.handle.shared.counters;
        RedisBackplaneStats {
            degraded_publishes: c.degraded_publishes.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            probe_failures: c.probe_failures.load(Ordering::Relaxed),
            resets: c.resets.load(Ordering::Relaxed),
            gap_fills: c.gap_fills.load(Ordering::Relaxed),
            dropped_pushes: self.handle.shared.gate.dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops the background tasks and waits for them, drops the connection (and with it the
    /// subscriptions), ends event receivers and turns health down. Later calls fail with
    /// [`BackplaneError::Closed`]. Presence members of this instance are left to expire.
    pub async fn shutdown(&self) {
        let shared = &self.handle.shared;
        shared.closed.store(true, Ordering::Release);
        drop(self.handle.stop.lock().take());
        let tasks: Vec<_> = self.handle.tasks.lock().drain(..).collect();
        for task in tasks {
            // A task that panicked has nothing left to stop.
            let _ = task.await;
        }
        let (conn, subs) = {
            let mut st = shared.state.lock();
            st.events = None;
            (st.conn.take(), std::mem::take(&mut st.subs))
        };
        drop((conn, subs));
        shared.health.send_replace(Health {
            state: HealthState::Down,
            detail: "shut down".into(),
            cause: None,
            since: SystemTime::now(),
        });
    }
}

impl Shared {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(BackplaneError::Closed)
        } else {
            Ok(())
        }
    }

    fn live(&self) -> Option<Live> {
        self.state.lock().conn.clone()
    }

    /// The bounds of `channel`'s local fallback history.
    fn history_limits(&self, channel: &str) -> HistoryLimits {
        overridden(
            &self.config.history_overrides,
            channel,
            HistoryLimits {
                size: self.config.history_size,
                ttl: self.config.history_ttl,
                dedupe_window: self.config.dedupe_window,
            },
        )
    }

    /// The limits the scripts apply to `channel` (its history bounds may be overridden).
    fn limits_for(&self, channel: &str) -> Limits {
        if self.config.history_overrides.is_empty() {
            return self.limits;
        }
        let history = self.history_limits(channel);
        Limits {
            history_size: history.size,
            history_ttl_ms: millis(history.ttl),
            ..self.limits
        }
    }

    /// Why calls cannot reach Redis right now.
    fn unavailable(&self) -> BackplaneError {
        let detail = self.health.borrow().detail.clone();
        BackplaneError::Unavailable(if detail.is_empty() {
            "redis: call failed".into()
        } else {
            detail
        })
    }

    /// One call that only Redis can answer (no local fallback): `Unavailable` while it is
    /// unreachable, `Protocol` when its reply makes no sense.
    async fn on_redis<T, Fut>(&self, call: impl FnOnce(MultiplexedConnection) -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T, CallError>>,
    {
        self.check_open()?;
        let Some(live) = self.live() else {
            return Err(self.unavailable());
        };
        match self.call(live.generation, call(live.conn.clone())).await {
            Ok(value) => Ok(value),
            Err(CallError::Protocol(reason)) => Err(BackplaneError::Protocol(reason)),
            Err(_) => Err(self.unavailable()),
        }
    }

    /// Runs one Redis call with the command timeout, and counts failures towards opening the
    /// circuit.
    async fn call<T>(
        &self,
        generation: u64,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let timeout = self.config.command_timeout;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CallError::TimedOut(format!(
                "redis: no reply within {timeout:?}"
            ))),
        };
        match &result {
            Ok(_) => self.failures.store(0, Ordering::Relaxed),
            Err(CallError::Broken(reason)) => {
                self.break_connection(
                    generation,
                    Break::new(DegradedCause::ConnectionLost, reason),
                );
            }
            Err(error @ (CallError::Transient(reason) | CallError::TimedOut(reason))) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.config.failure_threshold.get() {
                    let cause = match error {
                        CallError::TimedOut(_) => DegradedCause::Timeout,
                        _ => DegradedCause::CommandFailed,
                    };
                    self.break_connection(
                        generation,
                        Break::new(
                            cause,
                            format!("redis: circuit open after {failures} failed calls ({reason})"),
                        ),
                    );
                }
            }
            Err(CallError::Protocol(_)) => {}
        }
        result
    }

    /// Opens the circuit: drops connection `generation` (if still installed) so calls go
    /// local, says so in the health, and tells the supervisor to reconnect.
    fn break_connection(&self, generation: u64, why: Break) {
        let dropped = {
            let mut st = self.state.lock();
            match &st.conn {
                Some(live) if live.generation == generation => st.conn.take(),
                _ => None,
            }
        };
        if dropped.is_some() {
            self.set_degraded(&why);
        }
        drop(dropped);
        // Full means the supervisor already has reasons to reconnect.
        let _ = self.broken.try_send((generation, why));
    }

    /// Degraded for `why`; `true` when that changed the health.
    fn set_degraded(&self, why: &Break) -> bool {
        let changed = self.health.send_if_modified(|h| {
            if h.state == HealthState::Down
                || (h.state == HealthState::Degraded && h.detail == why.reason)
            {
                return false;
            }
            if h.state != HealthState::Degraded {
                h.since = SystemTime::now();
            }
            h.state = HealthState::Degraded;
            h.detail.clone_from(&why.reason);
            h.cause = Some(why.cause);
            true
        });
        if changed {
            tracing::warn!(reason = %why.reason, "redis backplane degraded: publishing locally only");
        }
        changed
    }

    fn set_up(&self) {
        let changed = self.health.send_if_modified(|h| {
            if h.state == HealthState::Degraded {
                *h = Health::up();
                true
            } else {
                false
            }
        });
        if changed {
            tracing::info!("redis backplane up");
        }
    }

    /// Sends `event` (under the state lock, which keeps each channel's order).
    fn emit(events: Option<&EventOutlet>, counters: &Counters, event: Event) {
        if matches!(event, Event::Reset { .. }) {
            counters.resets.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(outlet) = events {
            outlet.emit(event);
        }
    }

    /// This instance's own answers to a survey `request`.
    fn answer(&self, request: &[u8]) -> Vec<Bytes> {
        let mut answers = Vec::new();
        if let Some(outlet) = self.state.lock().events.as_ref() {
            outlet.answer(request, &mut answers);
        }
        answers
    }

    /// A survey while Redis is unreachable: only this instance answers.
    fn survey_locally(&self, request: &[u8]) -> Survey {
        Survey::new(self.answer(request), 1, 1, Scope::LocalOnly)
    }

    /// Answers survey `id` of instance `node` on its reply channel. A reply that cannot be
    /// sent is missing from that survey, which says so (`replied < asked`).
    async fn reply(&self, node: &str, id: u64, answers: &[Bytes]) {
        let Some(live) = self.live() else { return };
        let publish = publish_raw(&live, self.keys.reply(node), survey::reply(id, answers));
        if let Err(err) = self.call(live.generation, publish).await {
            tracing::debug!(
                node,
                id,
                error = err.reason(),
                "a survey reply was not sent"
            );
        }
    }

    /// A live message from pub/sub: delivered at once when it is the next in order, else
    /// the catch-up it calls for (which the caller runs with [`Self::run_sync`], off the
    /// pump, so that one channel's gap never holds up the others).
    fn on_message(
        &self,
        channel: &str,
        epoch: &str,
        offset: u64,
        data: Bytes,
    ) -> Option<(Arc<str>, u64)> {
        let mut st = self.state.lock();
        let State { subs, events, .. } = &mut *st;
        let (name, sub) = sub_entry(subs, channel)?;
        let mut emit = |e| Self::emit(events.as_ref(), &self.counters, e);
        match sub.on_live(&name, epoch, offset, data, &mut emit) {
            LiveOutcome::Done => None,
            LiveOutcome::Sync => Some((name, sub.id)),
        }
    }

    /// Another instance started a new epoch for `channel` (it delivered messages locally
    /// while cut off): the catch-up to run (off the pump), which resets this instance's
    /// subscribers.
    fn on_new_epoch(&self, channel: &str, epoch: &str) -> Option<(Arc<str>, u64)> {
        let mut st = self.state.lock();
        let (name, sub) = sub_entry(&mut st.subs, channel)?;
        match sub.on_new_epoch(epoch) {
            LiveOutcome::Done => None,
            LiveOutcome::Sync => Some((name, sub.id)),
        }
    }

    fn on_presence(&self, channel: &str, action: PresenceAction, entry: PresenceEntry) {
        let st = self.state.lock();
        if let Some((name, _)) = st.subs.get_key_value(channel) {
            let change = presence_change(name, action, entry);
            Self::emit(st.events.as_ref(), &self.counters, Event::Presence(change));
        }
    }

    /// Catches channel `name` (subscription `id`) up from Redis. The caller owns the sync.
    /// Live messages for the channel that arrive meanwhile are noted, not delivered, and
    /// fetched by another round, so per-channel order holds while other channels flow.
    async fn run_sync(&self, name: Arc<str>, id: u64) {
        for _ in 0..MAX_ROUNDS {
            let round = {
                let mut st = self.state.lock();
                match st.subs.get_mut(&name) {
                    Some(sub) if sub.id == id => sub.start_round(),
                    _ => return,
                }
            };
            let known = round.epoch.as_ref().map_or("", Epoch::as_str);
            let result = match self.live() {
                Some(live) => {
                    let mut conn = live.conn.clone();
                    self.call(
                        live.generation,
                        scripts::read(
                            &mut conn,
                            &self.keys,
                            &self.limits_for(&name),
                            &name,
                            known,
                            round.after,
                        ),
                    )
                    .await
                }
                None => Err(CallError::Broken("redis: not connected".into())),
            };
            let mut st = self.state.lock();
            let State { subs, events, .. } = &mut *st;
            let Some(sub) = subs.get_mut(&name).filter(|s| s.id == id) else {
                return;
            };
            match result {
                Ok(read) => {
                    let counters = &self.counters;
                    sub.apply(&name, read, &mut |event| {
                        if matches!(event, Event::Message(_)) {
                            counters.gap_fills.fetch_add(1, Ordering::Relaxed);
                        }
                        Self::emit(events.as_ref(), counters, event);
                    });
                    if !sub.finish_round() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(channel = %name, error = e.reason(), "catch-up failed");
                    // Retried after the reconnect (or on the next out-of-order message).
                    if !sub.wants_again() {
                        sub.end_sync();
                        return;
                    }
                }
            }
        }
        if let Some(sub) = self.state.lock().subs.get_mut(&name).filter(|s| s.id == id) {
            sub.end_sync();
        }
    }

    /// Catches every subscribed channel up (after a reconnect, or after dropped pushes).
    async fn sync_all(&self) {
        use futures_util::StreamExt;
        let owned: Vec<(Arc<str>, u64)> = {
            let mut st = self.state.lock();
            st.subs
                .iter_mut()
                .filter_map(|(name, sub)| sub.begin_sync().then(|| (Arc::clone(name), sub.id)))
                .collect()
        };
        futures_util::stream::iter(owned)
            .for_each_concurrent(CONCURRENT_SYNCS, |(name, id)| self.run_sync(name, id))
            .await;
    }

    /// Re-announces this instance's members (Redis may have lost them) and removes those that
    /// left while Redis was unreachable.
    async fn restore_presence(&self) {
        use futures_util::StreamExt;
        let Some(live) = self.live() else { return };
        let now = Instant::now();
        let (removed, members) = {
            let mut st = self.state.lock();
            let removed: Vec<_> = st.removed_offline.drain().collect();
            let members: Vec<_> = st
                .owned
                .iter()
                .flat_map(|(channel, table)| {
                    table
                        .list(now)
                        .into_iter()
                        .map(move |entry| (Arc::clone(channel), entry))
                })
                .collect();
            (removed, members)
        };
        futures_util::stream::iter(removed)
            .for_each_concurrent(CONCURRENT_SYNCS, |(channel, id)| {
                let mut conn = live.conn.clone();
                async move {
                    let _ = self
                        .call(
                            live.generation,
                            scripts::presence_remove(&mut conn, &self.keys, &channel, &id),
                        )
                        .await;
                }
            })
            .await;
        futures_util::stream::iter(members)
            .for_each_concurrent(CONCURRENT_SYNCS, |(channel, entry)| {
                let mut conn = live.conn.clone();
                async move {
                    let _ = self
                        .call(
                            live.generation,
                            scripts::presence_set(
                                &mut conn,
                                &self.keys,
                                &self.limits,
                                &channel,
                                &entry.connection_id,
                                &entry.data,
                                SetMode::Restore,
                            ),
                        )
                        .await;
                }
            })
            .await;
    }

    /// Periodic upkeep: expire members of this instance's channels in Redis (announcing their
    /// leave), forget expired owned members and local fallback history.
    async fn sweep(&self) {
        use futures_util::StreamExt;
        let now = Instant::now();
        let channels: Vec<Arc<str>> = {
            let mut st = self.state.lock();
            st.local.retain(|channel, history| {
                history.trim(now, self.history_limits(channel));
                !history.is_empty()
            });
            st.owned.retain(|_, table| {
                table.sweep(now);
                !table.is_empty()
            });
            let mut channels: HashSet<Arc<str>> = st.subs.keys().cloned().collect();
            channels.extend(st.owned.keys().cloned());
            channels.into_iter().collect()
        };
        let Some(live) = self.live() else { return };
        futures_util::stream::iter(channels)
            .for_each_concurrent(CONCURRENT_SYNCS, |channel| {
                let mut conn = live.conn.clone();
                async move {
                    let _ = self
                        .call(
                            live.generation,
                            scripts::presence_sweep(&mut conn, &self.keys, &channel, false),
                        )
                        .await;
                }
            })
            .await;
    }

    /// Publishes on this instance only, under the channel's local fallback epoch.
    fn publish_locally(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Published {
        let now = Instant::now();
        let limits = self.history_limits(channel);
        let mut st = self.state.lock();
        let State {
            subs,
            local,
            published_locally,
            events,
            ..
        } = &mut *st;
        let mut sub = sub_entry(subs, channel);
        let delivered = sub.as_ref().map(|(name, s)| (Arc::clone(name), s.last()));
        let (history, created) = local_history(local, channel, delivered, &self.budget);
        if created && let Some((name, sub)) = &mut sub {
            Self::reset_for_local_epoch(events.as_ref(), &self.counters, name, sub);
        }
        if let Some(offset) = options.dedupe_key.and_then(|key| history.deduplicated(key)) {
            return Published {
                offset,
                epoch: history.epoch().clone(),
                scope: Scope::LocalOnly,
                duplicate: true,
            };
        }
        let envelope = history.append(data, options.dedupe_key, now, limits);
        let published = Published {
            offset: envelope.offset,
            epoch: history.epoch().clone(),
            scope: Scope::LocalOnly,
            duplicate: false,
        };
        if !published_locally.contains(channel) {
            published_locally.insert(Arc::clone(&envelope.channel));
        }
        if let Some((_, sub)) = sub {
            sub.mark_reset(ResetReason::EpochChanged);
            Self::emit(events.as_ref(), &self.counters, Event::Message(envelope));
        }
        self.counters
            .degraded_publishes
            .fetch_add(1, Ordering::Relaxed);
        Self::enforce_budget(&self.budget, local);
        published
    }

    /// Trims the local fallback history back under the budget when it is over: the oldest
    /// messages of the least recently published channels go first.
    fn enforce_budget(budget: &HistoryBudget, local: &mut HashMap<Arc<str>, History>) {
        if !budget.begin_trim() {
            return;
        }
        let candidates = local
            .iter()
            .filter_map(|(name, history)| Some((history.newest_at()?, Arc::clone(name))))
            .collect();
        budget.trim_least_recent(candidates, |name: Arc<str>| {
            Some(local.get_mut(&name)?.trim_for_budget())
        });
    }

    /// A subscribed channel just got a local fallback epoch. Its subscribers were told the
    /// Redis epoch, so messages under the local one would look like a continuation of it:
    /// reset them now (they re-subscribe and are told the local epoch), and again when Redis
    /// is back.
    fn reset_for_local_epoch(
        events: Option<&EventOutlet>,
        counters: &Counters,
        name: &Arc<str>,
        sub: &mut Sub,
    ) {
        if sub.has_epoch() {
            Self::emit(
                events,
                counters,
                Event::Reset {
                    channel: Arc::clone(name),
                    reason: ResetReason::EpochChanged,
                },
            );
        }
        sub.mark_reset(ResetReason::EpochChanged);
    }

    /// `since` from the local fallback. A channel this instance has not seen yet gets a local
    /// history under a fresh local epoch (empty, or continuing from the offset last delivered
    /// here), so a subscribe during an outage is answered instead of failing; a subscribed
    /// channel is then reset when Redis returns, because its subscribers were told the local
    /// epoch.
    fn read_locally(&self, channel: &str, offset: u64, known: &str) -> Result<Recovery> {
        let now = Instant::now();
        let limits = self.history_limits(channel);
        let mut st = self.state.lock();
        let State {
            subs,
            local,
            events,
            ..
        } = &mut *st;
        let sub = sub_entry(subs, channel);
        let delivered = sub.as_ref().map(|(name, s)| (Arc::clone(name), s.last()));
        let (history, created) = local_history(local, channel, delivered, &self.budget);
        if created && let Some((name, sub)) = sub {
            Self::reset_for_local_epoch(events.as_ref(), &self.counters, &name, sub);
        }
        Ok(history.since(offset, known, now, limits))
    }

    /// `since` from Redis, else from the local fallback.
    async fn read(&self, channel: &str, offset: u64, known: &str) -> Result<Recovery> {
        self.check_open()?;
        if let Some(live) = self.live() {
            let name: Arc<str> = channel.into();
            let mut conn = live.conn.clone();
            let limits = self.limits_for(channel);
            let read = scripts::read(&mut conn, &self.keys, &limits, &name, known, offset);
            match self.call(live.generation, read).await {
                Ok(recovery) => return Ok(recovery),
                Err(CallError::Protocol(reason)) => return Err(BackplaneError::Protocol(reason)),
                Err(_) => {}
            }
        }
        self.read_locally(channel, offset, known)
    }

    /// Sends `SUBSCRIBE` or `UNSUBSCRIBE` for one channel.
    async fn pubsub_command(&self, live: &Live, channel: &str, subscribe: bool) -> bool {
        let name = self.keys.pubsub(channel);
        let mut conn = live.conn.clone();
        let call = async {
            if subscribe {
                conn.subscribe(&name).await
            } else {
                conn.unsubscribe(&name).await
            }
            .map_err(CallError::from)
        };
        self.call(live.generation, call).await.is_ok()
    }
}

impl Backplane for RedisBackplane {
    async fn publish_with(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Result<Published> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        if let Some(live) = shared.live() {
            let mut conn = live.conn.clone();
            let limits = shared.limits_for(channel);
            let publish = scripts::publish(
                &mut conn,
                &shared.keys,
                &limits,
                channel,
                &data,
                options.dedupe_key,
            );
            match shared.call(live.generation, publish).await {
                Ok((epoch, offset, duplicate)) => {
                    return Ok(Published {
                        offset,
                        epoch,
                        scope: Scope::Cluster,
                        duplicate,
                    });
                }
                Err(CallError::Protocol(reason)) => return Err(BackplaneError::Protocol(reason)),
                // Whether Redis applied it is unknown; the local epoch makes the channel
                // reset when Redis is back, so nobody relies on either copy.
                Err(_) => {}
            }
        }
        Ok(shared.publish_locally(channel, data, options))
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let shared = &self.handle.shared;
        let (name, id, live) = {
            let mut st = shared.state.lock();
            if st.events.is_none() || shared.closed.load(Ordering::Acquire) {
                return Err(BackplaneError::Closed);
            }
            if let Some(sub) = st.subs.get_mut(channel) {
                sub.refs += 1;
                return Ok(());
            }
            let id = st.next_sub;
            st.next_sub += 1;
            let mut sub = Sub::new(id);
            let live = st.conn.clone();
            if live.is_some() {
                sub.begin_sync();
            } else {
                // Resubscribed after the reconnect; what was published meanwhile is unknown.
                sub.mark_reset(ResetReason::MessagesMissed);
            }
            let name: Arc<str> = channel.into();
            st.subs.insert(Arc::clone(&name), sub);
            (name, id, live)
        };
        let Some(live) = live else { return Ok(()) };
        if !shared.pubsub_command(&live, &name, true).await {
            // Whether Redis holds the subscription is unknown: reconnect, which resubscribes
            // everything, and tell the subscribers continuity is not guaranteed.
            shared.break_connection(
                live.generation,
                Break::new(DegradedCause::CommandFailed, "redis: SUBSCRIBE failed"),
            );
            if let Some(sub) = shared.state.lock().subs.get_mut(&name) {
                sub.mark_reset(ResetReason::MessagesMissed);
            }
        }
        // An unsubscribe may have raced this call: make Redis match the final count.
        if !shared.state.lock().subs.contains_key(&name) {
            shared.pubsub_command(&live, &name, false).await;
        }
        // The baseline: messages after the current position are delivered.
        shared.run_sync(name, id).await;
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let live = {
            let mut st = shared.state.lock();
            let Some(sub) = st.subs.get_mut(channel) else {
                return Ok(());
            };
            sub.refs -= 1;
            if sub.refs > 0 {
                return Ok(());
            }
            st.subs.remove(channel);
            st.conn.clone()
        };
        let Some(live) = live else { return Ok(()) };
        // A failure leaves a stray Redis subscription, whose messages are dropped; the next
        // reconnect subscribes only what is wanted.
        shared.pubsub_command(&live, channel, false).await;
        // A subscribe may have raced this call: make Redis match the final count, and fetch
        // whatever was published while Redis had it unsubscribed.
        let resubscribe = {
            let mut st = shared.state.lock();
            sub_entry(&mut st.subs, channel)
                .map(|(name, sub)| (name, sub.begin_sync().then_some(sub.id)))
        };
        if let Some((name, owner)) = resubscribe {
            shared.pubsub_command(&live, &name, true).await;
            if let Some(id) = owner {
                shared.run_sync(name, id).await;
            }
        }
        Ok(())
    }

    fn events(&self) -> EventReceiver {
        match &self.handle.shared.state.lock().events {
            Some(outlet) => outlet.subscribe(),
            // Shut down: a receiver whose sender is already gone, so `recv` says `None`.
            None => EventReceiver::new(broadcast::channel(1).1),
        }
    }

    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<()> {
        match &self.handle.shared.state.lock().events {
            Some(outlet) => {
                outlet.attach(sink);
                Ok(())
            }
            None => Err(BackplaneError::Closed),
        }
    }

    async fn position(&self, channel: &str) -> Result<Position> {
        Ok(self.handle.shared.read(channel, 0, "").await?.position)
    }

    async fn since(&self, channel: &str, offset: u64, epoch: &str) -> Result<Recovery> {
        self.handle.shared.read(channel, offset, epoch).await
    }

    async fn presence_set(
        &self,
        channel: &str,
        connection_id: &str,
        data: Bytes,
    ) -> Result<PresenceAction> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let ttl = shared.config.presence_ttl;
        let local_action = {
            let mut st = shared.state.lock();
            let name: Arc<str> = channel.into();
            st.removed_offline
                .remove(&(Arc::clone(&name), connection_id.into()));
            st.owned
                .entry(name)
                .or_default()
                .set(connection_id, data.clone(), Instant::now(), ttl)
        };
        if let Some(live) = shared.live() {
            let mut conn = live.conn.clone();
            let set = scripts::presence_set(
                &mut conn,
                &shared.keys,
                &shared.limits,
                channel,
                connection_id,
                &data,
                SetMode::Set,
            );
            match shared.call(live.generation, set).await {
                Ok(true) => return Ok(PresenceAction::Update),
                Ok(false) => return Ok(PresenceAction::Join),
                Err(CallError::Protocol(reason)) => return Err(BackplaneError::Protocol(reason)),
                Err(_) => {}
            }
        }
        // Degraded: announced here only; re-announced to Redis after the reconnect.
        let st = shared.state.lock();
        if let Some((name, _)) = st.subs.get_key_value(channel) {
            let entry = PresenceEntry {
                connection_id: connection_id.into(),
                data,
            };
            let change = presence_change(name, local_action, entry);
            Shared::emit(
                st.events.as_ref(),
                &shared.counters,
                Event::Presence(change),
            );
        }
        Ok(local_action)
    }

    async fn presence_remove(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> Result<Option<PresenceEntry>> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let now = Instant::now();
        let owned = {
            let mut st = shared.state.lock();
            let removed = st
                .owned
                .get_mut(channel)
                .and_then(|table| table.remove(connection_id, now));
            if st.owned.get(channel).is_some_and(PresenceTable::is_empty) {
                st.owned.remove(channel);
            }
            removed
        };
        if let Some(live) = shared.live() {
            let mut conn = live.conn.clone();
            let remove = scripts::presence_remove(&mut conn, &shared.keys, channel, connection_id);
            match shared.call(live.generation, remove).await {
                Ok(data) => {
                    return Ok(data.map(|data| PresenceEntry {
                        connection_id: connection_id.into(),
                        data,
                    }));
                }
                Err(CallError::Protocol(reason)) => return Err(BackplaneError::Protocol(reason)),
                Err(_) => {}
            }
        }
        // Degraded: only this instance's own members can be removed, here, and in Redis
        // after the reconnect.
        let Some(entry) = owned else {
            return Err(shared.unavailable());
        };
        let mut st = shared.state.lock();
        st.removed_offline
            .insert((channel.into(), Arc::clone(&entry.connection_id)));
        if let Some((name, _)) = st.subs.get_key_value(channel) {
            let change = presence_change(name, PresenceAction::Leave, entry.clone());
            Shared::emit(
                st.events.as_ref(),
                &shared.counters,
                Event::Presence(change),
            );
        }
        Ok(Some(entry))
    }

    async fn presence_touch(&self, channel: &str, connection_id: &str) -> Result<()> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let ttl = shared.config.presence_ttl;
        let owned = {
            let mut st = shared.state.lock();
            match st.owned.get_mut(channel) {
                Some(table) => {
                    table.touch(connection_id, Instant::now(), ttl);
                    true
                }
                None => false,
            }
        };
        if let Some(live) = shared.live() {
            let mut conn = live.conn.clone();
            let touch = scripts::presence_touch(
                &mut conn,
                &shared.keys,
                &shared.limits,
                channel,
                connection_id,
            );
            match shared.call(live.generation, touch).await {
                Ok(()) => return Ok(()),
                Err(CallError::Protocol(reason)) => return Err(BackplaneError::Protocol(reason)),
                Err(_) => {}
            }
        }
        if owned {
            Ok(())
        } else {
            Err(shared.unavailable())
        }
    }

    async fn presence_list(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let Some(live) = shared.live() else {
            return Err(shared.unavailable());
        };
        let mut conn = live.conn.clone();
        let list = scripts::presence_sweep(&mut conn, &shared.keys, channel, true);
        match shared.call(live.generation, list).await {
            Ok(members) => Ok(members
                .into_iter()
                .map(|(connection_id, data)| PresenceEntry {
                    connection_id,
                    data,
                })
                .collect()),
            Err(CallError::Protocol(reason)) => Err(BackplaneError::Protocol(reason)),
            Err(_) => Err(shared.unavailable()),
        }
    }

    async fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool> {
        let shared = &self.handle.shared;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        shared
            .on_redis(|mut conn| async move {
                scripts::lease_acquire(&mut conn, &shared.keys, key, holder, limit, ttl_ms).await
            })
            .await
    }

    async fn lease_release(&self, key: &str, holder: &str) -> Result<()> {
        let shared = &self.handle.shared;
        shared
            .on_redis(|mut conn| async move {
                scripts::lease_release(&mut conn, &shared.keys, key, holder).await
            })
            .await
    }

    async fn group_join(&self, group: &str, member: &str, ttl: Duration) -> Result<GroupJoin> {
        let shared = &self.handle.shared;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        shared
            .on_redis(|mut conn| async move {
                scripts::group_join(&mut conn, &shared.keys, group, member, ttl_ms).await
            })
            .await
    }

    async fn group_leave(&self, group: &str, member: &str) -> Result<bool> {
        let shared = &self.handle.shared;
        shared
            .on_redis(|mut conn| async move {
                scripts::group_leave(&mut conn, &shared.keys, group, member).await
            })
            .await
    }

    async fn group_reap(&self) -> Result<Vec<String>> {
        let shared = &self.handle.shared;
        shared
            .on_redis(|mut conn| async move { scripts::group_reap(&mut conn, &shared.keys).await })
            .await
    }

    async fn survey(&self, request: Bytes, timeout: Duration) -> Result<Survey> {
        let shared = &self.handle.shared;
        shared.check_open()?;
        let Some(live) = shared.live() else {
            return Ok(shared.survey_locally(&request));
        };
        let open = shared.surveys.open();
        let payload = survey::request(&shared.node, open.id(), &request);
        let publish = publish_raw(&live, shared.control_channel.clone(), payload);
        // Redis answers with how many instances listen on the control channel: each replies.
        let asked = match shared.call(live.generation, publish).await {
            Ok(listening) => usize::try_from(listening).unwrap_or(0),
            Err(_) => return Ok(shared.survey_locally(&request)),
        };
        let deadline = Instant::now() + timeout;
        while open.replied() < asked {
            if tokio::time::timeout_at(deadline, open.next_reply())
                .await
                .is_err()
            {
                break;
            }
        }
        let (answers, replied) = open.finish();
        Ok(Survey::new(answers, asked, replied, Scope::Cluster))
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.handle.shared.health.subscribe()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}

/// `PUBLISH channel payload` on `live`'s connection: how many subscribers heard it.
fn publish_raw(
    live: &Live,
    channel: String,
    payload: Vec<u8>,
) -> impl Future<Output = Result<i64, CallError>> + use<> {
    let mut conn = live.conn.clone();
    async move {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(CallError::from)
    }
}

/// A subscription with its shared channel name.
/// The channel's local fallback history, and whether it was just created. A new one gets a
/// fresh local epoch and continues from the offset last delivered here (`delivered`: the
/// subscribed channel's name and last offset), so subscribers see offsets keep ascending while
/// the epoch says they are local.
fn local_history<'a>(
    local: &'a mut HashMap<Arc<str>, History>,
    channel: &str,
    delivered: Option<(Arc<str>, u64)>,
    budget: &Arc<HistoryBudget>,
) -> (&'a mut History, bool) {
    let created = !local.contains_key(channel);
    if created {
        let (name, start) = delivered.unwrap_or_else(|| (channel.into(), 0));
        local.insert(
            Arc::clone(&name),
            History::new(name, Epoch::random(), start, Arc::clone(budget)),
        );
    }
    let history = local.get_mut(channel).expect("present or inserted above");
    (history, created)
}

fn sub_entry<'a>(
    subs: &'a mut HashMap<Arc<str>, Sub>,
    channel: &str,
) -> Option<(Arc<str>, &'a mut Sub)> {
    let name = Arc::clone(subs.get_key_value(channel)?.0);
    subs.get_mut(channel).map(|sub| (name, sub))
}

/// What one push from connection `generation` means.
fn parse_push(shared: &Shared, generation: u64, push: redis::PushInfo) -> Option<Pushed> {
    match push.kind {
        redis::PushKind::Disconnection => Some(Pushed::Disconnected),
        redis::PushKind::Message => {
            let mut data = push.data.into_iter();
            let (Some(redis::Value::BulkString(name)), Some(redis::Value::BulkString(payload))) =
                (data.next(), data.next())
            else {
                return None;
            };
            if name == shared.control_channel.as_bytes() {
                let (node, id, request) = survey::parse_request(&Bytes::from(payload))?;
                return Some(Pushed::Request { node, id, request });
            }
            if name == shared.reply_channel.as_bytes() {
                let (id, answers) = survey::parse_reply(&Bytes::from(payload))?;
                return Some(Pushed::Reply { id, answers });
            }
            if name == shared.probe_channel.as_bytes() {
                let echoed: u64 = std::str::from_utf8(&payload).ok()?.parse().ok()?;
                return (echoed == generation).then_some(Pushed::Echo);
            }
            let channel = shared.keys.channel_of(&name)?.to_owned();
            match Incoming::parse(&Bytes::from(payload)) {
                Some(incoming) => Some(Pushed::Channel(channel, incoming)),
                None => {
                    tracing::warn!(%channel, "ignoring a pub/sub payload not written by a switchboard backplane");
                    None
                }
            }
        }
        _ => None,
    }
}

/// What a push means.
enum Pushed {
    Disconnected,
    Echo,
    /// A survey request from instance `node` (this one included).
    Request {
        node: String,
        id: u64,
        request: Bytes,
    },
    /// A reply to one of this instance's surveys.
    Reply {
        id: u64,
        answers: Vec<Bytes>,
    },
    Channel(String, Incoming),
}

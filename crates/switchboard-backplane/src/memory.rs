//! The in-process backplane.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use crate::backplane::Backplane;
use crate::error::{BackplaneError, Result};
use crate::events::{EventOutlet, EventReceiver, EventSink};
use crate::history::{History, HistoryBudget, HistoryLimits, HistoryOverride, overridden};
use crate::presence::PresenceTable;
use crate::types::{
    Epoch, Event, GroupJoin, Health, HealthState, Position, PresenceAction, PresenceChange,
    PresenceEntry, PublishOptions, Published, Recovery, Scope, Survey,
};

/// The default bound on one store's message history, all channels together: 256 MiB.
pub const DEFAULT_HISTORY_MAX_BYTES: usize = 256 << 20;

/// The shortest sweep interval; a zero interval is raised to it.
const MIN_SWEEP: Duration = Duration::from_millis(1);

/// Configuration of a [`MemoryBackplane`]. Plain data with documented defaults; change it
/// with the by-value setters.
///
/// ```
/// use std::time::Duration;
/// use switchboard_backplane::MemoryBackplaneConfig;
///
/// let config = MemoryBackplaneConfig::default()
///     .history_size(500)
///     .history_ttl(Duration::from_secs(60));
/// assert_eq!(config.history_size, 500);
/// assert_eq!(config.presence_ttl, Duration::from_secs(30 * 60));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryBackplaneConfig {
    /// How many messages each channel's history keeps (default 100; 0 keeps none).
    pub history_size: usize,
    /// How long a message stays in history (default 5 minutes).
    pub history_ttl: Duration,
    /// How long a presence member lives without activity (default 30 minutes).
    pub presence_ttl: Duration,
    /// How often expired members are removed, with a leave event, and idle channels are
    /// forgotten (default 5 minutes; at least 1 ms).
    pub presence_sweep: Duration,
    /// How many events a receiver may fall behind before it gets [`Event::Lagged`]
    /// (default 16384).
    pub event_capacity: NonZeroUsize,
    /// How many dedupe keys each channel remembers: those of its latest keyed publishes
    /// (default 1024; 0 disables deduplication). See [`Backplane::publish_with`].
    pub dedupe_window: usize,
    /// The most bytes of message history the store holds across all its channels (default
    /// 256 MiB; 0: no bound beyond each channel's own). Over it, the oldest messages of the
    /// least recently published channels are trimmed until the total is under nine tenths
    /// of it; recovering past a trimmed message answers `recovered: false`, never a partial
    /// list.
    pub history_max_bytes: usize,
    /// Other history bounds for some channels, by name prefix (default none). See
    /// [`HistoryOverride`].
    pub history_overrides: Vec<HistoryOverride>,
}

impl Default for MemoryBackplaneConfig {
    fn default() -> Self {
        Self {
            history_size: 100,
            history_ttl: Duration::from_secs(5 * 60),
            presence_ttl: Duration::from_secs(30 * 60),
            presence_sweep: Duration::from_secs(5 * 60),
            event_capacity: NonZeroUsize::new(16384).expect("nonzero"),
            dedupe_window: 1024,
            history_max_bytes: DEFAULT_HISTORY_MAX_BYTES,
            history_overrides: Vec::new(),
        }
    }
}

impl MemoryBackplaneConfig {
    switchboard_types::setters! {
        /// Sets [`history_size`](Self::history_size).
        history_size: usize,
        /// Sets [`history_ttl`](Self::history_ttl).
        history_ttl: Duration,
        /// Sets [`presence_ttl`](Self::presence_ttl).
        presence_ttl: Duration,
        /// Sets [`presence_sweep`](Self::presence_sweep).
        presence_sweep: Duration,
        /// Sets [`event_capacity`](Self::event_capacity).
        event_capacity: NonZeroUsize,
        /// Sets [`dedupe_window`](Self::dedupe_window).
        dedupe_window: usize,
        /// Sets [`history_max_bytes`](Self::history_max_bytes).
        history_max_bytes: usize,
    }

    /// Adds a [`HistoryOverride`] to [`history_overrides`](Self::history_overrides).
    #[must_use]
    pub fn history_override(mut self, rule: HistoryOverride) -> Self {
        self.history_overrides.push(rule);
        self
    }

    /// The bounds of `channel`'s history.
    fn limits(&self, channel: &str) -> HistoryLimits {
        overridden(
            &self.history_overrides,
            channel,
            HistoryLimits {
                size: self.history_size,
                ttl: self.history_ttl,
                dedupe_window: self.dedupe_window,
            },
        )
    }
}

/// The embedded backplane: order, history and presence in this process.
///
/// One value is one instance. [`new_instance`](Self::new_instance) makes another instance
/// over the same store, with its own subscriptions and events, so several hubs in one process
/// behave like several servers sharing Redis. Clones share one instance.
///
/// Each publish takes its channel's lock (the store is sharded by channel), assigns the
/// offset, appends to history and hands the message to every subscribed instance before
/// releasing it: one order for everyone, and each instance gets each message once. An
/// instance with an attached [`EventSink`] (a hub) gets it right there, in the publishing
/// task, with no queue or task hop in between.
///
/// A channel whose history has expired, with no subscriber and no member, is forgotten by the
/// sweep; its next use starts a new epoch.
///
/// Health is always up, and down after [`shutdown`](Self::shutdown).
#[derive(Clone)]
pub struct MemoryBackplane {
    inner: Arc<Instance>,
}

/// Shards of the channel map: unrelated channels do not contend, and a publish (with its
/// local fan-out) holds only its own channel's shard.
const SHARDS: usize = 64;

// Boxed: the map keeps a key and a pointer per channel (24 bytes) instead of the key and
// the whole slot (136), so its free buckets (a table is 50–87% full) cost little: about 60
// bytes less per channel at 5,000 channels (docs/benchmarks.md, idle memory).
type Shard = Mutex<HashMap<Arc<str>, Box<Slot>>>;

struct Store {
    config: MemoryBackplaneConfig,
    /// Every channel's history counts its bytes here.
    budget: Arc<HistoryBudget>,
    shards: Box<[Shard]>,
    /// Picks a channel's shard: seeded, and faster than the maps' own SipHash. A name an
    /// attacker chose can at worst share a shard with others; each shard's map keeps
    /// SipHash.
    hasher: foldhash::fast::RandomState,
    next_instance: AtomicU64,
    /// Leases by key: holder → expiry. Shared by the instances of the store, as Redis is.
    leases: Mutex<HashMap<String, HashMap<String, Instant>>>,
    /// Groups by name: member → expiry (see [`Backplane::group_join`]).
    groups: Mutex<HashMap<String, HashMap<String, Instant>>>,
    /// Every open instance's events, by instance id: who a survey asks.
    outlets: Mutex<Vec<(u64, Weak<EventOutlet>)>>,
    // Dropped with the store, which ends the sweep task.
    _sweeper: watch::Sender<()>,
}

struct Slot {
    history: History,
    presence: PresenceTable,
    subscribers: Vec<(u64, Arc<EventOutlet>)>,
}

impl Slot {
    fn new(channel: &Arc<str>, budget: &Arc<HistoryBudget>) -> Self {
        Self {
            history: History::new(Arc::clone(channel), Epoch::random(), 0, Arc::clone(budget)),
            presence: PresenceTable::default(),
            subscribers: Vec::new(),
        }
    }

    fn broadcast(&self, event: &Event) {
        for (_, outlet) in &self.subscribers {
            outlet.emit(event.clone());
        }
    }
}

struct Instance {
    id: u64,
    store: Arc<Store>,
    closed: AtomicBool,
    state: Mutex<InstanceState>,
    health: watch::Sender<Health>,
}

struct InstanceState {
    refs: HashMap<Arc<str>, usize>,
    /// `None` after shutdown.
    events: Option<Arc<EventOutlet>>,
}

impl Store {
    fn shard(&self, channel: &str) -> &Shard {
        &self.shards[(self.hasher.hash_one(channel) as usize) % SHARDS]
    }

    fn with_slot<R>(&self, channel: &str, f: impl FnOnce(&mut Slot) -> R) -> R {
        self.with_slot_named(channel, || channel.into(), f)
    }

    /// Like [`Self::with_slot`], with the name a new slot keeps (a caller that already holds
    /// the channel's name shares it instead of copying it).
    fn with_slot_named<R>(
        &self,
        channel: &str,
        name: impl FnOnce() -> Arc<str>,
        f: impl FnOnce(&mut Slot) -> R,
    ) -> R {
        let mut channels = self.shard(channel).lock();
        let slot = match channels.get_mut(channel) {
            Some(slot) => slot,
            None => {
                let name = name();
                channels
                    .entry(Arc::clone(&name))
                    .or_insert_with(|| Box::new(Slot::new(&name, &self.budget)))
            }
        };
        f(slot)
    }

    /// Trims history back under the budget when it is over: the oldest messages of the
    /// least recently published channels go first.
    fn enforce_budget(&self) {
        if !self.budget.begin_trim() {
            return;
        }
        let mut candidates = Vec::new();
        for (shard, channels) in self.shards.iter().enumerate() {
            for (name, slot) in channels.lock().iter() {
                if let Some(at) = slot.history.newest_at() {
                    candidates.push((at, (shard, Arc::clone(name))));
                }
            }
        }
        self.budget
            .trim_least_recent(candidates, |(shard, name): (usize, Arc<str>)| {
                let mut channels = self.shards[shard].lock();
                Some(channels.get_mut(&name)?.history.trim_for_budget())
            });
    }

    fn sweep(&self, now: Instant) {
        let config = &self.config;
        for shard in &*self.shards {
            shard.lock().retain(|channel, slot| {
                for entry in slot.presence.sweep(now) {
                    slot.broadcast(&Event::Presence(PresenceChange {
                        channel: Arc::clone(channel),
                        action: PresenceAction::Leave,
                        entry,
                    }));
                }
                slot.history.trim(now, config.limits(channel));
                !(slot.subscribers.is_empty()
                    && slot.presence.is_empty()
                    && slot.history.is_empty())
            });
        }
    }

    fn unregister(&self, instance: u64, channels: impl IntoIterator<Item = Arc<str>>) {
        for channel in channels {
            if let Some(slot) = self.shard(&channel).lock().get_mut(&channel) {
                slot.subscribers.retain(|(id, _)| *id != instance);
            }
        }
    }
}

/// Sweeps on `ticker`, which was started with the store (not when this task is first
/// polled), so the cadence does not depend on when the runtime gets to it.
async fn sweep_periodically(
    store: Weak<Store>,
    mut stop: watch::Receiver<()>,
    mut ticker: tokio::time::Interval,
) {
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            // The store was dropped.
            _ = stop.changed() => return,
        }
        let Some(store) = store.upgrade() else { return };
        store.sweep(Instant::now());
    }
}

impl MemoryBackplane {
    /// A new store and its first instance. Starts the sweep task, which ends when the last
    /// instance is dropped.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    #[must_use]
    pub fn new(config: MemoryBackplaneConfig) -> Self {
        let (stop_tx, stop_rx) = watch::channel(());
        let every = config.presence_sweep.max(MIN_SWEEP);
        let store = Arc::new(Store {
            budget: HistoryBudget::new(config.history_max_bytes),
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            next_instance: AtomicU64::new(0),
            leases: Mutex::new(HashMap::new()),
            outlets: Mutex::new(Vec::new()),
            groups: Mutex::new(HashMap::new()),
            _sweeper: stop_tx,
        });
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(sweep_periodically(Arc::downgrade(&store), stop_rx, ticker));
        Self::instance_of(store)
    }

    /// Another instance over the same store: the same channels, order, history and presence,
    /// with its own subscriptions, reference counts and events.
    #[must_use]
    pub fn new_instance(&self) -> Self {
        Self::instance_of(Arc::clone(&self.inner.store))
    }

    fn instance_of(store: Arc<Store>) -> Self {
        let id = store.next_instance.fetch_add(1, Ordering::Relaxed);
        let events = Arc::new(EventOutlet::new(store.config.event_capacity.get()));
        let (health, _) = watch::channel(Health::up());
        store.outlets.lock().push((id, Arc::downgrade(&events)));
        Self {
            inner: Arc::new(Instance {
                id,
                store,
                closed: AtomicBool::new(false),
                state: Mutex::new(InstanceState {
                    refs: HashMap::new(),
                    events: Some(events),
                }),
                health,
            }),
        }
    }

    /// This instance's configuration.
    #[must_use]
    pub fn config(&self) -> &MemoryBackplaneConfig {
        &self.inner.store.config
    }

    /// Stops this instance: its subscriptions end, its event receivers return `None`, its
    /// health turns down, and later calls fail with [`BackplaneError::Closed`]. Other
    /// instances of the store are not affected. Idempotent.
    pub fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.release();
        self.inner.health.send_replace(Health {
            state: HealthState::Down,
            detail: "shut down".into(),
            cause: None,
            since: SystemTime::now(),
        });
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(BackplaneError::Closed)
        } else {
            Ok(())
        }
    }

    fn limits(&self, channel: &str) -> HistoryLimits {
        self.inner.store.config.limits(channel)
    }

    /// A publish, start to end, in the calling task: the offset, history, and delivery to
    /// every attached sink under the channel's lock.
    fn publish_in_place(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Result<Published> {
        self.check_open()?;
        let limits = self.limits(channel);
        let now = Instant::now();
        let published = self.inner.store.with_slot(channel, |slot| {
            if let Some(offset) = options
                .dedupe_key
                .and_then(|key| slot.history.deduplicated(key))
            {
                return Published {
                    offset,
                    epoch: slot.history.epoch().clone(),
                    scope: Scope::Cluster,
                    duplicate: true,
                };
            }
            let envelope = slot.history.append(data, options.dedupe_key, now, limits);
            let published = Published {
                offset: envelope.offset,
                epoch: slot.history.epoch().clone(),
                scope: Scope::Cluster,
                duplicate: false,
            };
            slot.broadcast(&Event::Message(envelope));
            published
        });
        // Outside the channel's lock: trimming takes other channels' locks.
        self.inner.store.enforce_budget();
        Ok(published)
    }
}

impl Instance {
    /// Drops every subscription and the event sender, so receivers end.
    fn release(&self) {
        let channels: Vec<Arc<str>> = {
            let mut state = self.state.lock();
            state.events = None;
            state.refs.drain().map(|(channel, _)| channel).collect()
        };
        self.store.outlets.lock().retain(|(id, _)| *id != self.id);
        self.store.unregister(self.id, channels);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.release();
    }
}

impl fmt::Debug for MemoryBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackplane")
            .field("instance", &self.inner.id)
            .field("subscriptions", &self.inner.state.lock().refs.len())
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Backplane for MemoryBackplane {
    async fn publish_with(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Result<Published> {
        self.publish_in_place(channel, data, options)
    }

    /// Always `Some`: the store is in this process.
    fn publish_now(
        &self,
        channel: &str,
        data: &Bytes,
        options: PublishOptions<'_>,
    ) -> Option<Result<Published>> {
        Some(self.publish_in_place(channel, data.clone(), options))
    }

    async fn subscribe(&self, channel: &str) -> Result<()> {
        let mut state = self.inner.state.lock();
        let outlet = state.events.clone().ok_or(BackplaneError::Closed)?;
        if let Some(refs) = state.refs.get_mut(channel) {
            *refs += 1;
            return Ok(());
        }
        let name: Arc<str> = channel.into();
        state.refs.insert(Arc::clone(&name), 1);
        // Lock order: instance state, then store.
        self.inner.store.with_slot_named(
            &name,
            || Arc::clone(&name),
            |slot| {
                // Usually one instance per channel: grow from one slot, not Vec's four.
                slot.subscribers
                    .reserve_exact(usize::from(slot.subscribers.is_empty()));
                slot.subscribers.push((self.inner.id, outlet));
            },
        );
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str) -> Result<()> {
        self.check_open()?;
        let mut state = self.inner.state.lock();
        let Some(refs) = state.refs.get_mut(channel) else {
            return Ok(());
        };
        *refs -= 1;
        if *refs == 0
            && let Some((name, _)) = state.refs.remove_entry(channel)
        {
            self.inner.store.unregister(self.inner.id, [name]);
        }
        Ok(())
    }

    fn events(&self) -> EventReceiver {
        let state = self.inner.state.lock();
        match &state.events {
            Some(outlet) => outlet.subscribe(),
            // Shut down: a receiver whose sender is already gone, so `recv` says `None`.
            None => EventReceiver::new(broadcast::channel(1).1),
        }
    }

    fn attach(&self, sink: Arc<dyn EventSink>) -> Result<()> {
        match &self.inner.state.lock().events {
            Some(outlet) => {
                outlet.attach(sink);
                Ok(())
            }
            None => Err(BackplaneError::Closed),
        }
    }

    async fn position(&self, channel: &str) -> Result<Position> {
        self.check_open()?;
        Ok(self
            .inner
            .store
            .with_slot(channel, |slot| slot.history.position()))
    }

    async fn since(&self, channel: &str, offset: u64, epoch: &str) -> Result<Recovery> {
        self.check_open()?;
        let limits = self.limits(channel);
        let now = Instant::now();
        Ok(self.inner.store.with_slot(channel, |slot| {
            slot.history.since(offset, epoch, now, limits)
        }))
    }

    async fn presence_set(
        &self,
        channel: &str,
        connection_id: &str,
        data: Bytes,
    ) -> Result<PresenceAction> {
        self.check_open()?;
        let ttl = self.inner.store.config.presence_ttl;
        let now = Instant::now();
        Ok(self.inner.store.with_slot(channel, |slot| {
            let action = slot.presence.set(connection_id, data.clone(), now, ttl);
            slot.broadcast(&Event::Presence(PresenceChange {
                channel: channel.into(),
                action,
                entry: PresenceEntry {
                    connection_id: connection_id.into(),
                    data,
                },
            }));
            action
        }))
    }

    async fn presence_remove(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> Result<Option<PresenceEntry>> {
        self.check_open()?;
        let now = Instant::now();
        let mut channels = self.inner.store.shard(channel).lock();
        let Some(slot) = channels.get_mut(channel) else {
            return Ok(None);
        };
        let removed = slot.presence.remove(connection_id, now);
        if let Some(entry) = &removed {
            slot.broadcast(&Event::Presence(PresenceChange {
                channel: channel.into(),
                action: PresenceAction::Leave,
                entry: entry.clone(),
            }));
        }
        Ok(removed)
    }

    async fn presence_touch(&self, channel: &str, connection_id: &str) -> Result<()> {
        self.check_open()?;
        let ttl = self.inner.store.config.presence_ttl;
        let now = Instant::now();
        if let Some(slot) = self.inner.store.shard(channel).lock().get_mut(channel) {
            slot.presence.touch(connection_id, now, ttl);
        }
        Ok(())
    }

    async fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        limit: u32,
        ttl: Duration,
    ) -> Result<bool> {
        self.check_open()?;
        let now = Instant::now();
        let mut leases = self.inner.store.leases.lock();
        let holders = leases.entry(key.to_owned()).or_default();
        holders.retain(|_, expires| *expires > now);
        let granted = holders.contains_key(holder) || holders.len() < limit as usize;
        if granted {
            holders.insert(holder.to_owned(), now + ttl);
        } else if holders.is_empty() {
            leases.remove(key);
        }
        Ok(granted)
    }

    async fn lease_release(&self, key: &str, holder: &str) -> Result<()> {
        self.check_open()?;
        let mut leases = self.inner.store.leases.lock();
        if let Some(holders) = leases.get_mut(key) {
            holders.remove(holder);
            if holders.is_empty() {
                leases.remove(key);
            }
        }
        Ok(())
    }

    async fn presence_list(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        self.check_open()?;
        let now = Instant::now();
        Ok(self
            .inner
            .store
            .shard(channel)
            .lock()
            .get(channel)
            .map(|slot| slot.presence.list(now))
            .unwrap_or_default())
    }

    async fn group_join(&self, group: &str, member: &str, ttl: Duration) -> Result<GroupJoin> {
        self.check_open()?;
        let now = Instant::now();
        let mut groups = self.inner.store.groups.lock();
        let members = groups.entry(group.to_owned()).or_default();
        let before = members.len();
        members.retain(|_, expires| *expires > now);
        let lapsed = before > members.len();
        let first = members.is_empty();
        members.insert(member.to_owned(), now + ttl);
        Ok(match (first, lapsed) {
            (false, _) => GroupJoin::Joined,
            (true, false) => GroupJoin::First,
            (true, true) => GroupJoin::FirstAfterLapse,
        })
    }

    async fn group_leave(&self, group: &str, member: &str) -> Result<bool> {
        self.check_open()?;
        let now = Instant::now();
        let mut groups = self.inner.store.groups.lock();
        let Some(members) = groups.get_mut(group) else {
            return Ok(false);
        };
        let removed = members.remove(member).is_some();
        members.retain(|_, expires| *expires > now);
        let emptied = members.is_empty();
        if emptied {
            groups.remove(group);
        }
        Ok(removed && emptied)
    }

    async fn group_reap(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let now = Instant::now();
        let mut lapsed = Vec::new();
        self.inner.store.groups.lock().retain(|group, members| {
            members.retain(|_, expires| *expires > now);
            let alive = !members.is_empty();
            if !alive {
                lapsed.push(group.clone());
            }
            alive
        });
        Ok(lapsed)
    }

    async fn survey(&self, request: Bytes, _timeout: Duration) -> Result<Survey> {
        self.check_open()?;
        let outlets: Vec<Arc<EventOutlet>> = self
            .inner
            .store
            .outlets
            .lock()
            .iter()
            .filter_map(|(_, outlet)| outlet.upgrade())
            .collect();
        // Every instance is in this process: each answers at once, none can time out.
        let mut answers = Vec::new();
        for outlet in &outlets {
            outlet.answer(&request, &mut answers);
        }
        Ok(Survey {
            answers,
            asked: outlets.len(),
            replied: outlets.len(),
            scope: Scope::Cluster,
        })
    }

    fn health(&self) -> watch::Receiver<Health> {
        self.inner.health.subscribe()
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

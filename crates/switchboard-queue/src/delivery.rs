use std::collections::{BTreeMap, HashMap};
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use crate::journal::{EntryView, Journal};
use crate::lanes::{Bounds, Lanes, Slot};
use crate::stats::Counters;
use crate::{Backoff, Evictions, PopOrder, Priority, PushError, QueueError, QueueStats};

/// Identifies an entry of a [`DeliveryQueue`] from its push to its removal. Ids increase in
/// push order and survive a reopen of the queue file; the id of an entry that has left the
/// queue may be given again after a reopen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(pub(crate) u64);

impl EntryId {
    /// The number behind the id.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Settings of a [`DeliveryQueue`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// Most entries held, counting ready, leased, waiting and dead-lettered ones. Default
    /// 1000.
    pub capacity: NonZeroUsize,
    /// Which ready entry a pop takes. Default [`PopOrder::Priority`].
    pub order: PopOrder,
    /// How long a popped entry stays leased before it counts as a failed attempt. Default
    /// 10 s.
    pub lease_timeout: Duration,
    /// Failed attempts (nacks and lease timeouts) after which an entry becomes a dead
    /// letter. Default 3.
    pub max_attempts: NonZeroU32,
    /// The wait before each retry. Default [`Backoff::default`].
    pub backoff: Backoff,
    /// Seeds the jitter's random generator, for reproducible retry times. Default `None`:
    /// seeded from the operating system.
    pub seed: Option<u64>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(1000).expect("1000 is not zero"),
            order: PopOrder::Priority,
            lease_timeout: Duration::from_secs(10),
            max_attempts: NonZeroU32::new(3).expect("3 is not zero"),
            backoff: Backoff::default(),
            seed: None,
        }
    }
}

impl DeliveryConfig {
    /// Sets the most entries held.
    #[must_use]
    pub fn with_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets which ready entry a pop takes.
    #[must_use]
    pub fn with_order(mut self, order: PopOrder) -> Self {
        self.order = order;
        self
    }

    /// Sets how long a lease lasts.
    #[must_use]
    pub fn with_lease_timeout(mut self, lease_timeout: Duration) -> Self {
        self.lease_timeout = lease_timeout;
        self
    }

    /// Sets the failed attempts after which an entry becomes a dead letter.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: NonZeroU32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the wait before each retry.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Seeds the jitter's random generator.
    #[must_use]
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }
}

/// A successful push.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pushed<T> {
    /// The new entry's id, for [`DeliveryQueue::ack`].
    pub id: EntryId,
    /// Less important entries evicted to make room (usually none).
    pub evicted: Evictions<T>,
}

/// A popped entry, leased to the caller until [`Lease::deadline`]: ack it once delivered,
/// nack it if delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease<T> {
    /// The entry's id.
    pub id: EntryId,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// The entry's priority.
    pub priority: Priority,
    /// A copy of the item; the queue keeps its own until the ack.
    pub item: T,
    /// When the lease expires and counts as a failed attempt.
    pub deadline: Instant,
}

/// An entry that used up its attempts, handed back by [`DeliveryQueue::take_dead_letters`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The entry's id.
    pub id: EntryId,
    /// The entry's priority.
    pub priority: Priority,
    /// Failed attempts made.
    pub attempts: u32,
    /// The dedupe key it was pushed with, if any.
    pub key: Option<String>,
    /// The item.
    pub item: T,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nacked {
    /// The entry is ready again at this time.
    RetryAt(Instant),
    /// The entry used up its attempts: take it with [`DeliveryQueue::take_dead_letters`].
    DeadLettered,
}

/// What one [`DeliveryQueue::process`] pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Processed {
    /// Entries sent and acked.
    pub delivered: usize,
    /// Entries whose send failed and that will be retried.
    pub retrying: usize,
    /// Entries that became dead letters (their send failed for the last time, or their
    /// lease had expired for the last time).
    pub dead_lettered: usize,
}

struct Entry<T> {
    id: u64,
    failures: u32,
    key: Option<Box<str>>,
    item: T,
}

impl<T> Slot for Entry<T> {
    fn seq(&self) -> u64 {
        self.id
    }

    fn byte_len(&self) -> usize {
        0
    }
}

/// An entry with a time attached: its lease deadline, or when its retry is due.
struct Held<T> {
    priority: Priority,
    entry: Entry<T>,
    at: Instant,
}

enum Place {
    Ready,
    Leased,
    Waiting(usize),
    Dead(usize),
}

/// A bounded priority queue of deliveries with leases, retries and dead letters: a client's
/// offline queue. Optionally file-backed (feature `persist`, `DeliveryQueue::open`).
///
/// - **Order**: ready entries come out by [`DeliveryConfig::order`]; a retried entry goes
///   back to its original place among its priority.
/// - **Bound**: at most [`DeliveryConfig::capacity`] entries, whatever their state. A push
///   into a full queue evicts the oldest *ready* entry of the lowest priority strictly below
///   its own (leased, waiting and dead-lettered entries are in flight and never evicted);
///   if there is none the push fails and gives the item back.
/// - **Leases**: [`pop`](Self::pop) leases an entry; [`ack`](Self::ack) removes it;
///   [`nack`](Self::nack) or an expired lease is a failed attempt, retried after
///   [`Backoff`] until [`DeliveryConfig::max_attempts`], then a dead letter.
///   [`release_all`](Self::release_all) returns every leased entry at once (for a
///   reconnect) without counting a failure.
/// - **Dedupe**: [`push_keyed`](Self::push_keyed) refuses a key already in the queue.
/// - **Time** is passed in (`now`), so tests and simulations need no real clock.
///
/// # Errors
///
/// Operations return [`QueueError`] when an id is unknown, and, for a file-backed queue,
/// when the file cannot be written; an operation that fails has no effect.
pub struct DeliveryQueue<T> {
    config: DeliveryConfig,
    ready: Lanes<Entry<T>>,
    leased: BTreeMap<u64, Held<T>>,
    waiting: Vec<Held<T>>,
    dead: Vec<(Priority, Entry<T>)>,
    keys: HashMap<Box<str>, u64>,
    next_id: u64,
    counters: Counters,
    rng: SmallRng,
    journal: Journal<T>,
}

impl<T> std::fmt::Debug for DeliveryQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryQueue")
            .field("ready", &self.ready.len())
            .field("leased", &self.leased.len())
            .field("waiting", &self.waiting.len())
            .field("dead_letters", &self.dead.len())
            .field("persistent", &self.journal.is_persistent())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<T> Default for DeliveryQueue<T> {
    fn default() -> Self {
        Self::new(DeliveryConfig::default())
    }
}

impl<T> DeliveryQueue<T> {
    /// An empty in-memory queue.
    #[must_use]
    pub fn new(config: DeliveryConfig) -> Self {
        Self::with_journal(config, Journal::none())
    }

    fn with_journal(config: DeliveryConfig, journal: Journal<T>) -> Self {
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => rand::make_rng::<SmallRng>(),
        };
        Self {
            config,
            ready: Lanes::default(),
            leased: BTreeMap::new(),
            waiting: Vec::new(),
            dead: Vec::new(),
            keys: HashMap::new(),
            next_id: 0,
            counters: Counters::default(),
            rng,
            journal,
        }
    }

    /// The queue's settings.
    #[must_use]
    pub fn config(&self) -> &DeliveryConfig {
        &self.config
    }

    /// Queues `item`, evicting a less important ready entry if the queue is full.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if nothing can be evicted, [`PushError::Storage`] if the file
    /// store cannot record it. The item is given back and nothing changed.
    pub fn push(&mut self, item: T, priority: Priority) -> Result<Pushed<T>, PushError<T>> {
        self.push_inner(None, item, priority)
    }

    /// Like [`push`](Self::push), but refuses the item if an entry with the same `key` (for
    /// example the message id) is still in the queue. The key is forgotten when its entry
    /// leaves the queue (ack, eviction, dead letter taken, clear).
    ///
    /// # Errors
    ///
    /// [`PushError::Duplicate`] for a key already queued; otherwise as [`push`](Self::push).
    pub fn push_keyed(
        &mut self,
        key: &str,
        item: T,
        priority: Priority,
    ) -> Result<Pushed<T>, PushError<T>> {
        self.push_inner(Some(key), item, priority)
    }

    fn push_inner(
        &mut self,
        key: Option<&str>,
        item: T,
        priority: Priority,
    ) -> Result<Pushed<T>, PushError<T>> {
        if let Some(&existing) = key.and_then(|k| self.keys.get(k)) {
            return Err(PushError::Duplicate {
                item,
                existing: EntryId(existing),
            });
        }
        let outside = self.leased.len() + self.waiting.len() + self.dead.len();
        let bounds = Bounds {
            capacity: self.config.capacity.get(),
            max_bytes: usize::MAX,
        };
        let Some(evict) = self.ready.plan_eviction(priority, 0, outside, bounds) else {
            self.counters.rejected[priority.index()] += 1;
            return Err(PushError::Full { item, priority });
        };
        let evicted_ids: Vec<u64> = self
            .ready
            .iter()
            .filter(|(p, _)| *p < priority)
            .take(evict)
            .map(|(_, entry)| entry.id)
            .collect();
        let id = self.next_id;
        let view = EntryView {
            id,
            priority,
            failures: 0,
            dead: false,
            key,
            item: &item,
        };
        if let Err(source) = self.journal.push(&view, &evicted_ids) {
            return Err(PushError::Storage { item, source });
        }
        self.next_id += 1;

        let mut evictions = Evictions::default();
        let keys = &mut self.keys;
        let counters = &mut self.counters;
        self.ready.evict(evict, priority, |p, entry| {
            if let Some(key) = &entry.key {
                keys.remove(key);
            }
            counters.evicted[p.index()] += 1;
            evictions.add(p, entry.item);
        });
        let key: Option<Box<str>> = key.map(Into::into);
        if let Some(key) = &key {
            self.keys.insert(key.clone(), id);
        }
        let entry = Entry {
            id,
            failures: 0,
            key,
            item,
        };
        self.ready.push_back(priority, entry);
        self.counters.pushed += 1;
        self.compact_if_worthwhile();
        Ok(Pushed {
            id: EntryId(id),
            evicted: evictions,
        })
    }

    /// Leases the next ready entry until `now + lease_timeout`.
    ///
    /// First turns expired leases into failed attempts and makes due retries ready.
    ///
    /// # Errors
    ///
    /// Only for a file-backed queue that cannot record an expired lease; retry later.
    pub fn pop(&mut self, now: Instant) -> Result<Option<Lease<T>>, QueueError>
    where
        T: Clone,
    {
        self.expire_leases(now)?;
        self.promote(now);
        let Some((priority, entry)) = self.ready.pop(self.config.order) else {
            return Ok(None);
        };
        let deadline = now + self.config.lease_timeout;
        let lease = Lease {
            id: EntryId(entry.id),
            attempt: entry.failures + 1,
            priority,
            item: entry.item.clone(),
            deadline,
        };
        self.counters.popped += 1;
        self.leased.insert(
            entry.id,
            Held {
                priority,
                entry,
                at: deadline,
            },
        );
        Ok(Some(lease))
    }

    /// Offers every ready entry to `send`, in pop order, once: `true` means delivered (the
    /// entry is removed), `false` a failed attempt (retried after backoff, or dead-lettered).
    /// For flushing an offline queue when the connection is back.
    ///
    /// # Errors
    ///
    /// Only for a file-backed queue that cannot record an outcome; the entry being handled
    /// stays queued.
    pub fn process(
        &mut self,
        now: Instant,
        mut send: impl FnMut(&T) -> bool,
    ) -> Result<Processed, QueueError> {
        let mut processed = Processed {
            dead_lettered: self.expire_leases(now)?,
            ..Processed::default()
        };
        self.promote(now);
        while let Some((priority, entry)) = self.ready.pop(self.config.order) {
            self.counters.popped += 1;
            let id = entry.id;
            let delivered = send(&entry.item);
            self.leased.insert(
                id,
                Held {
                    priority,
                    entry,
                    at: now,
                },
            );
            if delivered {
                self.ack(EntryId(id))?;
                processed.delivered += 1;
            } else {
                match self.fail_leased(id, now)? {
                    Nacked::RetryAt(_) => processed.retrying += 1,
                    Nacked::DeadLettered => processed.dead_lettered += 1,
                }
            }
        }
        Ok(processed)
    }

    /// Removes a delivered entry, whatever its state (a late ack after the lease expired
    /// still counts: the entry was delivered).
    ///
    /// # Errors
    ///
    /// [`QueueError::UnknownEntry`] if it is no longer queued; a storage error for a
    /// file-backed queue (the entry stays).
    pub fn ack(&mut self, id: EntryId) -> Result<(), QueueError> {
        let place = self.locate(id.0).ok_or(QueueError::UnknownEntry(id))?;
        self.journal.remove([id.0])?;
        let entry = match place {
            Place::Ready => self.ready.remove(id.0).map(|(_, e)| e),
            Place::Leased => self.leased.remove(&id.0).map(|h| h.entry),
            Place::Waiting(at) => Some(self.waiting.swap_remove(at).entry),
            Place::Dead(at) => Some(self.dead.remove(at).1),
        };
        if let Some(key) = entry.and_then(|e| e.key) {
            self.keys.remove(&key);
        }
        self.compact_if_worthwhile();
        Ok(())
    }

    /// Records a failed attempt of a leased entry: it is retried after backoff, or becomes a
    /// dead letter if it used up its attempts.
    ///
    /// # Errors
    ///
    /// [`QueueError::NotLeased`] if its lease already expired or was released;
    /// [`QueueError::UnknownEntry`] if it is gone; a storage error for a file-backed queue
    /// (the entry stays leased).
    pub fn nack(&mut self, id: EntryId, now: Instant) -> Result<Nacked, QueueError> {
        match self.locate(id.0) {
            Some(Place::Leased) => self.fail_leased(id.0, now),
            Some(_) => Err(QueueError::NotLeased(id)),
            None => Err(QueueError::UnknownEntry(id)),
        }
    }

    /// Returns every leased entry to the ready queue at once, at its original place,
    /// without counting a failed attempt: for a reconnect, when nothing in flight was
    /// acknowledged. Returns how many were released.
    pub fn release_all(&mut self) -> usize {
        let released = self.leased.len();
        for (_, held) in std::mem::take(&mut self.leased) {
            self.ready.insert_ordered(held.priority, held.entry);
        }
        released
    }

    /// Hands back every dead letter and removes it from the queue.
    ///
    /// # Errors
    ///
    /// A storage error for a file-backed queue; the dead letters stay.
    pub fn take_dead_letters(&mut self) -> Result<Vec<DeadLetter<T>>, QueueError> {
        if self.dead.is_empty() {
            return Ok(Vec::new());
        }
        self.journal.remove(self.dead.iter().map(|(_, e)| e.id))?;
        let letters = self
            .dead
            .drain(..)
            .map(|(priority, entry)| {
                if let Some(key) = &entry.key {
                    self.keys.remove(key);
                }
                DeadLetter {
                    id: EntryId(entry.id),
                    priority,
                    attempts: entry.failures,
                    key: entry.key.map(String::from),
                    item: entry.item,
                }
            })
            .collect();
        self.compact_if_worthwhile();
        Ok(letters)
    }

    /// Removes every entry, in any state; returns how many there were. A file-backed queue
    /// rewrites its file empty.
    ///
    /// # Errors
    ///
    /// A storage error for a file-backed queue; nothing is removed.
    pub fn clear(&mut self) -> Result<usize, QueueError> {
        self.journal.compact(std::iter::empty())?;
        let cleared = self.len();
        self.ready.drain().for_each(drop);
        self.leased.clear();
        self.waiting.clear();
        self.dead.clear();
        self.keys.clear();
        Ok(cleared)
    }

    /// The earliest time something changes by itself: a retry becomes due or a lease
    /// expires. Sleep until then before the next [`pop`](Self::pop) when nothing is ready.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.waiting
            .iter()
            .chain(self.leased.values())
            .map(|h| h.at)
            .min()
    }

    /// Entries held, in any state.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ready.len() + self.leased.len() + self.waiting.len() + self.dead.len()
    }

    /// Whether the queue holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries leased now.
    #[must_use]
    pub fn leased_len(&self) -> usize {
        self.leased.len()
    }

    /// Dead letters waiting to be taken.
    #[must_use]
    pub fn dead_letters_len(&self) -> usize {
        self.dead.len()
    }

    /// Counters: pushed, popped, evicted and rejected per priority, retried, dead-lettered,
    /// and the length.
    #[must_use]
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            len: self.len(),
            bytes: 0,
            counters: self.counters,
        }
    }

    fn locate(&self, id: u64) -> Option<Place> {
        if self.leased.contains_key(&id) {
            return Some(Place::Leased);
        }
        if let Some(at) = self.waiting.iter().position(|h| h.entry.id == id) {
            return Some(Place::Waiting(at));
        }
        if let Some(at) = self.dead.iter().position(|(_, e)| e.id == id) {
            return Some(Place::Dead(at));
        }
        self.ready
            .iter()
            .any(|(_, e)| e.id == id)
            .then_some(Place::Ready)
    }

    /// Turns leases past their deadline into failed attempts; returns how many became dead
    /// letters.
    fn expire_leases(&mut self, now: Instant) -> Result<usize, QueueError> {
        if !self.leased.values().any(|h| h.at <= now) {
            return Ok(0);
        }
        let expired: Vec<u64> = self
            .leased
            .iter()
            .filter(|(_, h)| h.at <= now)
            .map(|(&id, _)| id)
            .collect();
        let mut dead = 0;
        for id in expired {
            if self.fail_leased(id, now)? == Nacked::DeadLettered {
                dead += 1;
            }
        }
        Ok(dead)
    }

    fn fail_leased(&mut self, id: u64, now: Instant) -> Result<Nacked, QueueError> {
        let failures = self
            .leased
            .get(&id)
            .ok_or(QueueError::NotLeased(EntryId(id)))?
            .entry
            .failures
            .saturating_add(1);
        let dead = failures >= self.config.max_attempts.get();
        self.journal.fail(id, failures, dead)?;
        let mut held = self
            .leased
            .remove(&id)
            .ok_or(QueueError::NotLeased(EntryId(id)))?;
        held.entry.failures = failures;
        if dead {
            self.counters.dead_lettered += 1;
            self.dead.push((held.priority, held.entry));
            return Ok(Nacked::DeadLettered);
        }
        let failures = NonZeroU32::new(failures).unwrap_or(NonZeroU32::MIN);
        let delay = self
            .config
            .backoff
            .delay(failures, self.rng.random::<f64>());
        held.at = now + delay;
        let at = held.at;
        self.counters.retried += 1;
        self.waiting.push(held);
        Ok(Nacked::RetryAt(at))
    }

    /// Makes retries that are due ready again, at their original place.
    fn promote(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].at <= now {
                let held = self.waiting.swap_remove(i);
                self.ready.insert_ordered(held.priority, held.entry);
            } else {
                i += 1;
            }
        }
    }

    fn compact_if_worthwhile(&mut self) {
        if self.journal.wants_compaction(self.len()) {
            // A failed automatic compaction leaves the old log valid; it is tried again after
            // a later write, and `compact` reports the error to a caller who asks.
            let _retried_later = self.compact_journal();
        }
    }

    fn compact_journal(&mut self) -> Result<(), QueueError> {
        fn view<T>(priority: Priority, entry: &Entry<T>, dead: bool) -> EntryView<'_, T> {
            EntryView {
                id: entry.id,
                priority,
                failures: entry.failures,
                dead,
                key: entry.key.as_deref(),
                item: &entry.item,
            }
        }
        let ready = self.ready.iter().map(|(p, e)| view(p, e, false));
        let held = self
            .leased
            .values()
            .chain(&self.waiting)
            .map(|h| view(h.priority, &h.entry, false));
        let dead = self.dead.iter().map(|(p, e)| view(*p, e, true));
        self.journal.compact(ready.chain(held).chain(dead))
    }
}

#[cfg(feature = "persist")]
mod persist {
    use std::path::Path;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::{DeliveryConfig, DeliveryQueue, Entry};
    use crate::journal::Journal;
    use crate::store::FileLog;
    use crate::{QueueError, Recovery, StoreConfig};

    fn encode_json<T: Serialize>(item: &T, buf: &mut Vec<u8>) -> Result<(), QueueError> {
        serde_json::to_writer(buf, item).map_err(|e| QueueError::Encode(Box::new(e)))
    }

    impl<T: Serialize + DeserializeOwned> DeliveryQueue<T> {
        /// Opens (or creates) a file-backed queue at `path` and restores what it holds:
        /// entries in their order, with their attempt counts, dedupe keys and dead letters.
        /// Leases and retry times are not stored: after a restart every entry is ready.
        ///
        /// Only one queue may have the file open at a time.
        ///
        /// # Errors
        ///
        /// [`QueueError::Io`] if the file cannot be opened, [`QueueError::Corrupt`] if it is
        /// damaged other than at its tail, [`QueueError::Decode`] if an entry does not decode
        /// as `T`. Never panics on a bad file.
        pub fn open(
            path: impl AsRef<Path>,
            config: DeliveryConfig,
            store: StoreConfig,
        ) -> Result<(Self, Recovery), QueueError> {
            let path = path.as_ref();
            let (log, stored, next_id, recovery) = FileLog::open(path, store)?;
            let mut queue = Self::with_journal(config, Journal::file(log, encode_json::<T>));
            for (id, stored) in stored {
                let item =
                    serde_json::from_slice(&stored.item).map_err(|e| QueueError::Decode {
                        path: path.to_owned(),
                        offset: stored.offset,
                        source: Box::new(e),
                    })?;
                if let Some(key) = &stored.key {
                    queue.keys.insert(key.clone(), id);
                }
                let entry = Entry {
                    id,
                    failures: stored.failures,
                    key: stored.key,
                    item,
                };
                if stored.dead {
                    queue.dead.push((stored.priority, entry));
                } else {
                    queue.ready.push_back(stored.priority, entry);
                }
            }
            queue.next_id = next_id;
            Ok((queue, recovery))
        }
    }

    impl<T> DeliveryQueue<T> {
        /// Rewrites the queue file with only the live entries, then atomically replaces it.
        /// Happens by itself when most of the log is obsolete
        /// ([`StoreConfig::compact_after`]). Does nothing for an in-memory queue.
        ///
        /// # Errors
        ///
        /// [`QueueError::Io`] if the new file cannot be written; the old one is kept.
        pub fn compact(&mut self) -> Result<(), QueueError> {
            self.compact_journal()
        }

        /// Flushes the queue file to stable storage now (useful under
        /// [`SyncPolicy::Interval`](crate::SyncPolicy::Interval), for example at shutdown).
        /// Does nothing for an in-memory queue.
        ///
        /// # Errors
        ///
        /// [`QueueError::Io`] if `fsync` fails; the queue then refuses further writes
        /// ([`QueueError::Poisoned`]): reopen it.
        pub fn sync(&mut self) -> Result<(), QueueError> {
            self.journal.sync()
        }

        /// The size of the queue file in bytes, or `None` for an in-memory queue.
        #[must_use]
        pub fn file_len(&self) -> Option<u64> {
            self.journal.log().map(FileLog::len)
        }
    }
}

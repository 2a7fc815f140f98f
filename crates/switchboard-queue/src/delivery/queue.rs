//! The delivery queue itself: its parts, pushing with eviction and dedupe, acks, clearing,
//! sizes, and keeping the journal compact.

use std::collections::{BTreeMap, HashMap};

use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::config::DeliveryConfig;
use super::entry::{Entry, Held, Place};
use super::id::EntryId;
use super::outcome::Pushed;
use crate::entry_view::EntryView;
use crate::journal::Journal;
use crate::lanes::{Bounds, Lanes};
use crate::stats::Counters;
use crate::{Evictions, Priority, PushError, QueueError, QueueStats};

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
///   [`Backoff`](crate::Backoff) until [`DeliveryConfig::max_attempts`], then a dead letter.
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
    pub(super) config: DeliveryConfig,
    pub(super) ready: Lanes<Entry<T>>,
    pub(super) leased: BTreeMap<u64, Held<T>>,
    pub(super) waiting: Vec<Held<T>>,
    pub(super) dead: Vec<(Priority, Entry<T>)>,
    pub(super) keys: HashMap<Box<str>, u64>,
    pub(super) next_id: u64,
    pub(super) counters: Counters,
    pub(super) rng: SmallRng,
    pub(super) journal: Journal<T>,
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

    pub(super) fn with_journal(config: DeliveryConfig, journal: Journal<T>) -> Self {
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

    pub(super) fn locate(&self, id: u64) -> Option<Place> {
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

    pub(super) fn compact_if_worthwhile(&mut self) {
        if self.journal.wants_compaction(self.len()) {
            // A failed automatic compaction leaves the old log valid; it is tried again after
            // a later write, and `compact` reports the error to a caller who asks.
            let _retried_later = self.compact_journal();
        }
    }

    pub(super) fn compact_journal(&mut self) -> Result<(), QueueError> {
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

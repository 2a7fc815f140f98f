//! Leases and what follows them: pops, processing passes, failed attempts retried after
//! backoff, dead letters, and releasing everything in flight.

use std::num::NonZeroU32;
use std::time::Instant;

use rand::RngExt;

use super::entry::{Held, Place};
use super::id::EntryId;
use super::outcome::{DeadLetter, Lease, Nacked, Processed};
use super::queue::DeliveryQueue;
use crate::QueueError;

impl<T> DeliveryQueue<T> {
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
}

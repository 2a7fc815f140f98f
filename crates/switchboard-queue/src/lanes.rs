//! The storage both queues share: one FIFO lane per priority, entries stamped with a
//! sequence number so a pop can follow either priority or arrival order, and the eviction
//! rule.

use std::collections::VecDeque;

use crate::{PopOrder, Priority};

/// What a lane holds.
pub(crate) trait Slot {
    /// Arrival order; strictly increasing within a lane.
    fn seq(&self) -> u64;
    /// Weight counted against the byte bound.
    fn byte_len(&self) -> usize;
}

/// The bounds a push must respect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) capacity: usize,
    pub(crate) max_bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Lanes<S> {
    lanes: [VecDeque<S>; 4],
    bytes: usize,
}

impl<S> Default for Lanes<S> {
    fn default() -> Self {
        Self {
            lanes: Default::default(),
            bytes: 0,
        }
    }
}

impl<S> Lanes<S> {
    pub(crate) fn len(&self) -> usize {
        self.lanes.iter().map(VecDeque::len).sum()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<S: Slot> Lanes<S> {
    /// How many entries must be evicted (lowest priority first, oldest first, only strictly
    /// below `priority`) for one more entry of `item_bytes` to fit, given `outside` entries
    /// that count against the capacity but live elsewhere. `None` if evicting every candidate
    /// would still not make room: then nothing may be evicted.
    pub(crate) fn plan_eviction(
        &self,
        priority: Priority,
        item_bytes: usize,
        outside: usize,
        bounds: Bounds,
    ) -> Option<usize> {
        let mut len = self.len() + outside;
        let mut bytes = self.bytes;
        let fits = |len: usize, bytes: usize| {
            len < bounds.capacity && bytes.saturating_add(item_bytes) <= bounds.max_bytes
        };
        if fits(len, bytes) {
            return Some(0);
        }
        let mut count = 0;
        for lane in &self.lanes[..priority.index()] {
            for slot in lane {
                len -= 1;
                bytes -= slot.byte_len();
                count += 1;
                if fits(len, bytes) {
                    return Some(count);
                }
            }
        }
        None
    }

    /// Removes the `count` oldest entries below `priority`, lowest priority first, as planned
    /// by [`Self::plan_eviction`].
    pub(crate) fn evict(
        &mut self,
        mut count: usize,
        priority: Priority,
        mut evicted: impl FnMut(Priority, S),
    ) {
        for index in 0..priority.index() {
            while count > 0 {
                let Some(slot) = self.lanes[index].pop_front() else {
                    break;
                };
                self.bytes -= slot.byte_len();
                count -= 1;
                evicted(Priority::ALL[index], slot);
            }
        }
    }

    /// Appends a new entry; its sequence number must exceed every other in its lane.
    pub(crate) fn push_back(&mut self, priority: Priority, slot: S) {
        self.bytes += slot.byte_len();
        self.lanes[priority.index()].push_back(slot);
    }

    /// Puts an entry back at its original position among its priority.
    pub(crate) fn insert_ordered(&mut self, priority: Priority, slot: S) {
        let lane = &mut self.lanes[priority.index()];
        let at = lane.partition_point(|s| s.seq() < slot.seq());
        self.bytes += slot.byte_len();
        lane.insert(at, slot);
    }

    /// Which lane the next pop takes from.
    fn next_lane(&self, order: PopOrder) -> Option<usize> {
        match order {
            PopOrder::Priority => (0..4).rev().find(|&i| !self.lanes[i].is_empty()),
            PopOrder::Fifo => (0..4)
                .filter_map(|i| self.lanes[i].front().map(|s| (s.seq(), i)))
                .min()
                .map(|(_, i)| i),
        }
    }

    pub(crate) fn pop(&mut self, order: PopOrder) -> Option<(Priority, S)> {
        let index = self.next_lane(order)?;
        let slot = self.lanes[index].pop_front()?;
        self.bytes -= slot.byte_len();
        Some((Priority::ALL[index], slot))
    }

    pub(crate) fn peek(&self, order: PopOrder) -> Option<(Priority, &S)> {
        let index = self.next_lane(order)?;
        self.lanes[index].front().map(|s| (Priority::ALL[index], s))
    }

    /// Removes the entry with sequence number `seq`, wherever it is.
    pub(crate) fn remove(&mut self, seq: u64) -> Option<(Priority, S)> {
        for (index, lane) in self.lanes.iter_mut().enumerate() {
            if let Ok(at) = lane.binary_search_by_key(&seq, Slot::seq) {
                let slot = lane.remove(at)?;
                self.bytes -= slot.byte_len();
                return Some((Priority::ALL[index], slot));
            }
        }
        None
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (Priority, &S)> {
        self.lanes
            .iter()
            .enumerate()
            .flat_map(|(i, lane)| lane.iter().map(move |s| (Priority::ALL[i], s)))
    }

    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (Priority, S)> + '_ {
        self.bytes = 0;
        self.lanes
            .iter_mut()
            .enumerate()
            .flat_map(|(i, lane)| lane.drain(..).map(move |s| (Priority::ALL[i], s)))
    }

    /// Frees every lane buffer beyond what the entries need.
    pub(crate) fn shrink_to_fit(&mut self) {
        for lane in &mut self.lanes {
            lane.shrink_to_fit();
        }
    }
}

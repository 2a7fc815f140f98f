use std::num::NonZeroUsize;

use bytes::Bytes;

use crate::lanes::{Bounds, Lanes, Slot};
use crate::stats::Counters;
use crate::{Evictions, PopOrder, Priority, PushError, QueueStats};

/// Settings of an [`OutboundQueue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboundConfig {
    /// Most entries held. Default 1000.
    pub capacity: NonZeroUsize,
    /// Most bytes held, summed over the entries' lengths. Default `None`: bounded by count
    /// only.
    pub max_bytes: Option<NonZeroUsize>,
    /// Which entry a pop takes. Default [`PopOrder::Fifo`]: a connection's frames go out in
    /// the order they were pushed, so one channel's messages keep ascending offsets, and
    /// priority only decides what a full queue evicts.
    pub order: PopOrder,
    /// Whether the queue counts pushes, pops, evictions and rejections for
    /// [`OutboundQueue::stats`]. Default `true`. Off, `stats` reports only the length and
    /// bytes, and a queue that has drained holds no heap memory at all: for a caller that
    /// counts elsewhere (a server with a queue per connection and its own metrics).
    pub counters: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            capacity: NonZeroUsize::new(1000).expect("1000 is not zero"),
            max_bytes: None,
            order: PopOrder::Fifo,
            counters: true,
        }
    }
}

impl OutboundConfig {
    /// Sets the most entries held.
    #[must_use]
    pub fn with_capacity(mut self, capacity: NonZeroUsize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the most bytes held (`None`: no byte bound).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: Option<NonZeroUsize>) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets which entry a pop takes.
    #[must_use]
    pub fn with_order(mut self, order: PopOrder) -> Self {
        self.order = order;
        self
    }

    /// Sets whether the queue keeps counters for [`OutboundQueue::stats`].
    #[must_use]
    pub fn with_counters(mut self, counters: bool) -> Self {
        self.counters = counters;
        self
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            capacity: self.capacity.get(),
            max_bytes: self.max_bytes.map_or(usize::MAX, NonZeroUsize::get),
        }
    }
}

/// A bounded queue of already-encoded frames for one connection: push with a priority, pop
/// the next to write, or pop many to coalesce into one write. No leases, no persistence.
///
/// When full, a push evicts the oldest entry of the lowest priority strictly below its own
/// and returns it; critical entries are never evicted; if nothing can be evicted the push
/// fails and gives the item back ([`PushError::is_critical`] tells when the consumer must be
/// disconnected).
///
/// # Memory
///
/// An empty queue that never held anything is five machine words (40 bytes on 64-bit
/// targets) and owns no heap memory. A push allocates the lanes (a 144-byte block on 64-bit
/// targets) and the entry buffers: a sequence number and the item per entry, 40 bytes for
/// [`Bytes`], in buffers that grow by doubling. All of it is released when the queue
/// drains, so an idle queue holds only its counters (a 96-byte block, allocated on the first
/// push and kept for [`stats`](Self::stats); none without
/// [`counters`](OutboundConfig::counters)), and a burst does not pin its peak memory.
pub struct OutboundQueue<T = Bytes> {
    /// The entries; `None` while the queue is empty.
    state: Option<Box<State<T>>>,
    /// `None` until the first push.
    counters: Option<Box<Counters>>,
    config: OutboundConfig,
}

struct State<T> {
    lanes: Lanes<Frame<T>>,
    /// Orders entries across lanes; only entries held at once are compared, so it restarts
    /// with each new state.
    next_seq: u64,
}

struct Frame<T> {
    seq: u64,
    item: T,
}

impl<T: AsRef<[u8]>> Slot for Frame<T> {
    fn seq(&self) -> u64 {
        self.seq
    }

    fn byte_len(&self) -> usize {
        self.item.as_ref().len()
    }
}

impl<T> std::fmt::Debug for OutboundQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (len, bytes) = self
            .state
            .as_ref()
            .map_or((0, 0), |s| (s.lanes.len(), s.lanes.bytes()));
        f.debug_struct("OutboundQueue")
            .field("len", &len)
            .field("bytes", &bytes)
            .field("config", &self.config)
            .finish()
    }
}

impl<T: AsRef<[u8]>> Default for OutboundQueue<T> {
    fn default() -> Self {
        Self::new(OutboundConfig::default())
    }
}

impl<T: AsRef<[u8]>> OutboundQueue<T> {
    /// An empty queue. Allocates nothing until the first push.
    #[must_use]
    pub const fn new(config: OutboundConfig) -> Self {
        Self {
            state: None,
            counters: None,
            config,
        }
    }

    /// The queue's settings.
    #[must_use]
    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// Queues `item`, evicting less important entries if the queue is full.
    ///
    /// Returns the evicted entries (usually none). The item's weight for the byte bound is
    /// `item.as_ref().len()`.
    ///
    /// # Errors
    ///
    /// [`PushError::Full`] if evicting every entry below `priority` would still not make
    /// room; [`PushError::TooLarge`] if the item alone exceeds the byte bound. Nothing is
    /// evicted then, and the item is given back.
    pub fn push(&mut self, item: T, priority: Priority) -> Result<Evictions<T>, PushError<T>> {
        let bounds = self.config.bounds();
        let bytes = item.as_ref().len();
        let mut uncounted = Counters::default();
        let counters = if self.config.counters {
            self.counters.get_or_insert_with(Box::default)
        } else {
            &mut uncounted
        };
        if bytes > bounds.max_bytes {
            counters.rejected[priority.index()] += 1;
            return Err(PushError::TooLarge {
                item,
                priority,
                bytes,
                max_bytes: bounds.max_bytes,
            });
        }
        let state = self.state.get_or_insert_with(|| {
            Box::new(State {
                lanes: Lanes::default(),
                next_seq: 0,
            })
        });
        let Some(evict) = state.lanes.plan_eviction(priority, bytes, 0, bounds) else {
            counters.rejected[priority.index()] += 1;
            if state.lanes.len() == 0 {
                self.state = None;
            }
            return Err(PushError::Full { item, priority });
        };
        let mut evictions = Evictions::default();
        if evict > 0 {
            state.lanes.evict(evict, priority, |p, frame| {
                counters.evicted[p.index()] += 1;
                evictions.add(p, frame.item);
            });
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.lanes.push_back(priority, Frame { seq, item });
        counters.pushed += 1;
        Ok(evictions)
    }

    /// Takes the next entry to write.
    pub fn pop(&mut self) -> Option<T> {
        self.pop_with_priority().map(|(_, item)| item)
    }

    /// Takes the next entry to write, with its priority.
    pub fn pop_with_priority(&mut self) -> Option<(Priority, T)> {
        let state = self.state.as_mut()?;
        let (priority, frame) = state.lanes.pop(self.config.order)?;
        self.count_popped(1);
        Some((priority, frame.item))
    }

    /// Moves up to `max_items` entries into `out`, in pop order, stopping before the total
    /// length would exceed `max_bytes` (but always taking at least one entry if there is one,
    /// so a frame larger than `max_bytes` still goes out). For coalescing several frames into
    /// one write. Returns how many were moved.
    pub fn pop_batch(
        &mut self,
        out: &mut impl Extend<T>,
        max_items: usize,
        max_bytes: usize,
    ) -> usize {
        let Some(state) = self.state.as_mut() else {
            return 0;
        };
        let order = self.config.order;
        let mut moved = 0;
        let mut bytes = 0usize;
        while moved < max_items {
            let Some((_, next)) = state.lanes.peek(order) else {
                break;
            };
            let len = next.byte_len();
            if moved > 0 && bytes.saturating_add(len) > max_bytes {
                break;
            }
            let Some((_, frame)) = state.lanes.pop(order) else {
                break;
            };
            bytes = bytes.saturating_add(len);
            moved += 1;
            out.extend(std::iter::once(frame.item));
        }
        self.count_popped(moved);
        moved
    }

    /// Counts `n` pops and releases the lanes if that emptied them.
    fn count_popped(&mut self, n: usize) {
        if let Some(counters) = self.counters.as_mut() {
            counters.popped += n as u64;
        }
        self.release_if_empty();
    }

    fn release_if_empty(&mut self) {
        if self.state.as_ref().is_some_and(|s| s.lanes.len() == 0) {
            self.state = None;
        }
    }

    /// The priority of the entry the next pop would take.
    #[must_use]
    pub fn peek_priority(&self) -> Option<Priority> {
        let state = self.state.as_ref()?;
        state.lanes.peek(self.config.order).map(|(p, _)| p)
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.lanes.len())
    }

    /// Whether the queue holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held (the sum of the entries' lengths).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |s| s.lanes.bytes())
    }

    /// Removes every entry; returns how many there were. Counted neither as evicted nor as
    /// popped: the caller chose to drop them (for example, the connection closed).
    pub fn clear(&mut self) -> usize {
        let Some(state) = self.state.as_mut() else {
            return 0;
        };
        let cleared = state.lanes.drain().count();
        self.state = None;
        cleared
    }

    /// Releases buffer memory beyond what the current entries need.
    pub fn shrink_to_fit(&mut self) {
        if let Some(state) = self.state.as_mut() {
            state.lanes.shrink_to_fit();
        }
    }

    /// Counters: pushed, popped, evicted and rejected per priority, length and bytes.
    #[must_use]
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            len: self.len(),
            bytes: self.bytes(),
            counters: self.counters.as_deref().copied().unwrap_or_default(),
        }
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use super::*;

    /// The figures in [`OutboundQueue`]'s `# Memory` section.
    #[test]
    fn memory_figures_match_the_docs() {
        assert_eq!(size_of::<OutboundQueue<Bytes>>(), 40);
        assert_eq!(size_of::<State<Bytes>>(), 144);
        assert_eq!(size_of::<Counters>(), 96);
        assert_eq!(size_of::<Frame<Bytes>>(), 40);
    }
}

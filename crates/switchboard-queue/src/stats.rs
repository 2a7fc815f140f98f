use crate::Priority;

/// Counters a queue keeps about itself, read with `stats()`. Plain numbers: export them with
/// whatever metrics library the application uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub(crate) len: usize,
    pub(crate) bytes: usize,
    pub(crate) counters: Counters,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) pushed: u64,
    pub(crate) popped: u64,
    pub(crate) evicted: [u64; 4],
    pub(crate) rejected: [u64; 4],
    pub(crate) retried: u64,
    pub(crate) dead_lettered: u64,
}

impl QueueStats {
    /// Entries in the queue now (for a delivery queue: ready, leased, waiting for a retry,
    /// and dead letters not yet taken).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the queue holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes counted against the byte bound now (always 0 for a delivery queue, which is
    /// bounded by count only).
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Pushes accepted since the queue was created.
    #[must_use]
    pub fn pushed(&self) -> u64 {
        self.counters.pushed
    }

    /// Entries taken out by a pop since the queue was created (a delivery queue counts each
    /// lease, so a retried entry counts once per attempt).
    #[must_use]
    pub fn popped(&self) -> u64 {
        self.counters.popped
    }

    /// Entries of `priority` evicted to make room for more important ones.
    #[must_use]
    pub fn evicted(&self, priority: Priority) -> u64 {
        self.counters.evicted[priority.index()]
    }

    /// Entries evicted, all priorities together.
    #[must_use]
    pub fn evicted_total(&self) -> u64 {
        self.counters.evicted.iter().sum()
    }

    /// Pushes of `priority` rejected because the queue was full of entries at least as
    /// important, or because the item alone exceeds the byte bound.
    #[must_use]
    pub fn rejected(&self, priority: Priority) -> u64 {
        self.counters.rejected[priority.index()]
    }

    /// Failed attempts (nacks and lease timeouts) scheduled for a retry.
    #[must_use]
    pub fn retried(&self) -> u64 {
        self.counters.retried
    }

    /// Entries that used up their attempts and became dead letters.
    #[must_use]
    pub fn dead_lettered(&self) -> u64 {
        self.counters.dead_lettered
    }
}

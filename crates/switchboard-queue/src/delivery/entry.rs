//! How the delivery queue holds an entry, and where it is.

use std::time::Instant;

use crate::Priority;
use crate::lanes::Slot;

/// One queued item with its bookkeeping.
pub(super) struct Entry<T> {
    pub(super) id: u64,
    pub(super) failures: u32,
    pub(super) key: Option<Box<str>>,
    pub(super) item: T,
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
pub(super) struct Held<T> {
    pub(super) priority: Priority,
    pub(super) entry: Entry<T>,
    pub(super) at: Instant,
}

/// Which state an entry is in (with its index where it is kept in a `Vec`).
pub(super) enum Place {
    Ready,
    Leased,
    Waiting(usize),
    Dead(usize),
}

use std::path::PathBuf;

use crate::{EntryId, Priority};

/// Why a push was refused. Every variant gives the item back: nothing is dropped behind the
/// caller's back.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum PushError<T> {
    /// The queue is full and holds nothing less important than the item to evict. Drop the
    /// item and count it; if it is [`Priority::Critical`] (see [`PushError::is_critical`]) the
    /// consumer cannot be served without loss: disconnect it (the server closes with 4008) so
    /// it recovers from history.
    #[error(
        "queue full with nothing less important than {priority} to evict; drop the item, or disconnect the consumer if it is critical"
    )]
    Full {
        /// The item, given back.
        item: T,
        /// Its priority.
        priority: Priority,
    },
    /// The item alone weighs more than the queue's byte bound, so it can never fit. Split
    /// it, raise the bound, or treat it like [`PushError::Full`].
    #[error(
        "item of {bytes} bytes exceeds the queue's byte bound of {max_bytes}; split it or raise the bound"
    )]
    TooLarge {
        /// The item, given back.
        item: T,
        /// Its priority.
        priority: Priority,
        /// Its weight.
        bytes: usize,
        /// The queue's byte bound.
        max_bytes: usize,
    },
    /// An entry with the same key is already in the queue (ready, leased, waiting for a
    /// retry, or a dead letter not yet taken). Nothing to do: the first one will be delivered.
    #[error("an entry with this key is already queued as {existing}; nothing to do")]
    Duplicate {
        /// The item, given back.
        item: T,
        /// The entry already queued under the key.
        existing: EntryId,
    },
    /// The entry could not be written to the queue file, so it was not queued (not even in
    /// memory). See `source` for whether a retry can help.
    #[error("could not write the entry to the queue file, so it was not queued: {source}")]
    Storage {
        /// The item, given back.
        item: T,
        /// What failed.
        #[source]
        source: QueueError,
    },
}

impl<T> PushError<T> {
    /// The refused item.
    #[must_use]
    pub fn into_item(self) -> T {
        match self {
            Self::Full { item, .. }
            | Self::TooLarge { item, .. }
            | Self::Duplicate { item, .. }
            | Self::Storage { item, .. } => item,
        }
    }

    /// The refused item, borrowed.
    #[must_use]
    pub fn item(&self) -> &T {
        match self {
            Self::Full { item, .. }
            | Self::TooLarge { item, .. }
            | Self::Duplicate { item, .. }
            | Self::Storage { item, .. } => item,
        }
    }

    /// Whether a critical item could not be queued for lack of room: the consumer must be
    /// disconnected rather than silently miss it.
    #[must_use]
    pub fn is_critical(&self) -> bool {
        matches!(
            self,
            Self::Full {
                priority: Priority::Critical,
                ..
            } | Self::TooLarge {
                priority: Priority::Critical,
                ..
            }
        )
    }
}

impl<T> std::fmt::Debug for PushError<T> {
    // The item is left out: it may be large, and `T` need not be `Debug`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full { priority, .. } => f
                .debug_struct("Full")
                .field("priority", priority)
                .finish_non_exhaustive(),
            Self::TooLarge {
                priority,
                bytes,
                max_bytes,
                ..
            } => f
                .debug_struct("TooLarge")
                .field("priority", priority)
                .field("bytes", bytes)
                .field("max_bytes", max_bytes)
                .finish_non_exhaustive(),
            Self::Duplicate { existing, .. } => f
                .debug_struct("Duplicate")
                .field("existing", existing)
                .finish_non_exhaustive(),
            Self::Storage { source, .. } => f
                .debug_struct("Storage")
                .field("source", source)
                .finish_non_exhaustive(),
        }
    }
}

/// Errors of a [`DeliveryQueue`](crate::DeliveryQueue) operation other than a push.
///
/// Only [`QueueError::UnknownEntry`] and [`QueueError::NotLeased`] can happen without a file
/// store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// No entry with this id is in the queue: it was already acked, evicted, cleared, or
    /// taken as a dead letter. Usually a late or duplicate acknowledgement: ignore it.
    #[error("no entry {0} in the queue (already acked, evicted or dead-lettered); ignore it")]
    UnknownEntry(EntryId),
    /// The entry exists but is not leased (its lease expired, or it was released), so there
    /// is no attempt to fail. Ack it if it was delivered; otherwise let it be retried.
    #[error("entry {0} is not leased (lease expired or released); ack it or let it be retried")]
    NotLeased(EntryId),
    /// Reading or writing the queue file failed. The operation had no effect; it may succeed
    /// when retried once the cause (disk full, permissions) is fixed.
    #[error("queue file I/O failed: {0}; fix the cause, then retry")]
    Io(#[from] std::io::Error),
    /// The queue file is damaged somewhere other than its tail (a torn tail from a crash is
    /// repaired silently). Nothing was changed: restore the file or move it aside to start
    /// empty.
    #[error(
        "queue file {} is corrupt at byte {offset}: {reason}; restore it or move it aside",
        path.display()
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the damage starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry in the queue file does not decode as this queue's item type: the file was
    /// written by another version of the application. Open it with the type that wrote it,
    /// or move it aside.
    #[error(
        "entry at byte {offset} of {} does not decode as the queue's item type: {source}; open it with the type that wrote it, or move it aside",
        path.display()
    )]
    Decode {
        /// The file.
        path: PathBuf,
        /// Where the entry starts.
        offset: u64,
        /// The decoder's complaint.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An item could not be serialized for the queue file. Fix its `Serialize` impl (for
    /// example a map with non-string keys).
    #[error("could not encode an item for the queue file: {0}; fix its Serialize impl")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An earlier write failed half-way and could not be undone, so the file may end in a
    /// partial record. Drop the queue and reopen it: recovery repairs the tail.
    #[error("queue file unusable after a failed write that could not be undone; reopen the queue")]
    Poisoned,
}

impl QueueError {
    /// Whether retrying the same operation later may succeed (an I/O error); the other
    /// errors need a different action.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Io(_))
    }
}

/// `Result` with [`QueueError`] as the default error.
pub type Result<T, E = QueueError> = std::result::Result<T, E>;

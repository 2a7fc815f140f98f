//! A file-backed delivery queue: opening and restoring it, compaction, sync.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::DeliveryConfig;
use super::entry::Entry;
use super::queue::DeliveryQueue;
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
            let item = serde_json::from_slice(&stored.item).map_err(|e| QueueError::Decode {
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

//! A channel's bounded in-process history: the memory backplane's store, and the Redis
//! backplane's local fallback while Redis is unreachable.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::types::{Envelope, Epoch, Position, Recovery};

/// How much history a channel keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryLimits {
    /// At most this many messages.
    pub(crate) size: usize,
    /// None older than this.
    pub(crate) ttl: Duration,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    data: Bytes,
    at: Instant,
}

/// One channel's epoch, last offset and retained messages.
#[derive(Debug)]
pub(crate) struct History {
    channel: Arc<str>,
    epoch: Epoch,
    offset: u64,
    entries: VecDeque<Entry>,
}

impl History {
    /// An empty history in `epoch` whose next offset is `offset + 1`.
    pub(crate) fn new(channel: Arc<str>, epoch: Epoch, offset: u64) -> Self {
        Self {
            channel,
            epoch,
            offset,
            entries: VecDeque::new(),
        }
    }

    pub(crate) fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    pub(crate) fn position(&self) -> Position {
        Position {
            offset: self.offset,
            epoch: self.epoch.clone(),
        }
    }

    /// Assigns the next offset to `data`, retains it within `limits`, and returns the
    /// envelope to deliver.
    pub(crate) fn append(&mut self, data: Bytes, now: Instant, limits: HistoryLimits) -> Envelope {
        self.offset += 1;
        if limits.size > 0 {
            self.entries.push_back(Entry {
                offset: self.offset,
                data: data.clone(),
                at: now,
            });
        }
        self.trim(now, limits);
        Envelope {
            channel: Arc::clone(&self.channel),
            offset: self.offset,
            data,
        }
    }

    /// Drops what is over the count or older than the age bound.
    pub(crate) fn trim(&mut self, now: Instant, limits: HistoryLimits) {
        while self.entries.len() > limits.size {
            self.entries.pop_front();
        }
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) >= limits.ttl)
        {
            self.entries.pop_front();
        }
    }

    /// Whether nothing is retained.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every retained message after `offset` in `epoch`, or `None` when one of them is gone
    /// (or the epoch differs). Never a partial list.
    pub(crate) fn since(
        &mut self,
        offset: u64,
        epoch: &str,
        now: Instant,
        limits: HistoryLimits,
    ) -> Recovery {
        self.trim(now, limits);
        let messages = if epoch != self.epoch.as_str() {
            None
        } else if offset >= self.offset {
            Some(Vec::new())
        } else {
            // Offsets are contiguous, so the oldest retained one decides.
            let oldest = self.entries.front().map_or(self.offset + 1, |e| e.offset);
            (oldest <= offset + 1).then(|| {
                self.entries
                    .iter()
                    .filter(|e| e.offset > offset)
                    .map(|e| Envelope {
                        channel: Arc::clone(&self.channel),
                        offset: e.offset,
                        data: e.data.clone(),
                    })
                    .collect()
            })
        };
        Recovery {
            position: self.position(),
            messages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: HistoryLimits = HistoryLimits {
        size: 3,
        ttl: Duration::from_secs(60),
    };

    fn history() -> History {
        History::new("ch".into(), Epoch::from("e1"), 0)
    }

    fn offsets(r: &Recovery) -> Option<Vec<u64>> {
        r.messages
            .as_ref()
            .map(|m| m.iter().map(|e| e.offset).collect())
    }

    #[tokio::test(start_paused = true)]
    async fn offsets_start_at_one_and_ascend_by_one() {
        let mut h = history();
        let now = Instant::now();
        assert_eq!(h.append(Bytes::from("a"), now, LIMITS).offset, 1);
        assert_eq!(h.append(Bytes::from("b"), now, LIMITS).offset, 2);
        assert_eq!(h.position().offset, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn since_refuses_when_the_next_message_was_trimmed_by_count() {
        let mut h = history();
        let now = Instant::now();
        for i in 0..5 {
            h.append(Bytes::from(vec![i]), now, LIMITS);
        }
        assert_eq!(offsets(&h.since(2, "e1", now, LIMITS)), Some(vec![3, 4, 5]));
        assert_eq!(offsets(&h.since(1, "e1", now, LIMITS)), None);
        assert_eq!(offsets(&h.since(5, "e1", now, LIMITS)), Some(vec![]));
        assert_eq!(offsets(&h.since(9, "e1", now, LIMITS)), Some(vec![]));
        assert_eq!(offsets(&h.since(4, "other", now, LIMITS)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn since_refuses_when_the_next_message_is_older_than_the_age_bound() {
        let mut h = history();
        let start = Instant::now();
        h.append(Bytes::from("old"), start, LIMITS);
        let later = start + Duration::from_secs(40);
        h.append(Bytes::from("new"), later, LIMITS);
        let now = start + Duration::from_secs(61);
        assert_eq!(offsets(&h.since(1, "e1", now, LIMITS)), Some(vec![2]));
        assert_eq!(offsets(&h.since(0, "e1", now, LIMITS)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_history_of_size_zero_recovers_only_an_up_to_date_position() {
        let limits = HistoryLimits {
            size: 0,
            ttl: Duration::from_secs(1),
        };
        let mut h = history();
        let now = Instant::now();
        h.append(Bytes::from("a"), now, limits);
        assert_eq!(offsets(&h.since(0, "e1", now, limits)), None);
        assert_eq!(offsets(&h.since(1, "e1", now, limits)), Some(vec![]));
    }
}

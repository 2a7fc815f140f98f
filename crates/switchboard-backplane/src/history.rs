//! A channel's bounded in-process history: the memory backplane's store, and the Redis
//! backplane's local fallback while Redis is unreachable.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::types::{Envelope, Epoch, Position, Recovery};

/// History bounds for the channels whose names start with [`prefix`](Self::prefix), in
/// place of the backplane's own (a server's channel namespaces: prefix `"chat:"` for
/// namespace `chat`). A bound left `None` keeps the backplane's. When several prefixes
/// match a channel, the longest wins.
///
/// ```
/// use std::time::Duration;
/// use switchboard_backplane::{HistoryOverride, MemoryBackplaneConfig};
///
/// let config = MemoryBackplaneConfig::default().history_override(
///     HistoryOverride::new("chat:").size(500).ttl(Duration::from_secs(3600)),
/// );
/// assert_eq!(config.history_overrides[0].size, Some(500));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryOverride {
    /// The channels this applies to: those whose names start with it.
    pub prefix: String,
    /// How many messages each of those channels' history keeps (0 keeps none).
    pub size: Option<usize>,
    /// How long a message of those channels stays in history.
    pub ttl: Option<Duration>,
}

impl HistoryOverride {
    /// An override for the channels starting with `prefix` that changes nothing yet.
    #[must_use]
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            size: None,
            ttl: None,
        }
    }

    /// Sets [`size`](Self::size).
    #[must_use]
    pub fn size(mut self, size: usize) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets [`ttl`](Self::ttl).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// `base` with the bounds of the longest override matching `channel`.
pub(crate) fn overridden(
    overrides: &[HistoryOverride],
    channel: &str,
    base: HistoryLimits,
) -> HistoryLimits {
    overrides
        .iter()
        .filter(|o| channel.starts_with(&o.prefix))
        .max_by_key(|o| o.prefix.len())
        .map_or(base, |o| HistoryLimits {
            size: o.size.unwrap_or(base.size),
            ttl: o.ttl.unwrap_or(base.ttl),
            ..base
        })
}

/// How much history a channel keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HistoryLimits {
    /// At most this many messages.
    pub(crate) size: usize,
    /// None older than this.
    pub(crate) ttl: Duration,
    /// Dedupe keys remembered: those of the latest this many keyed publishes.
    pub(crate) dedupe_window: usize,
}

#[derive(Debug)]
struct Entry {
    offset: u64,
    data: Bytes,
    at: Instant,
}

/// The bytes of message history one store holds across all its channels, and its bound.
/// Every [`History`] of the store counts what it retains here; when the total passes the
/// bound, the store trims the oldest messages of the least recently published channels until
/// it is back under nine tenths of it (so trimming runs once per tenth of the budget, not
/// per publish). A trimmed message is gone like one past the count or age bound: recovery
/// across it answers `recovered: false`, never a partial list.
#[derive(Debug)]
pub(crate) struct HistoryBudget {
    /// 0: unbounded.
    max: usize,
    used: AtomicUsize,
    /// Set while one caller trims, so concurrent publishers do not all scan.
    trimming: AtomicBool,
}

impl HistoryBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            used: AtomicUsize::new(0),
            trimming: AtomicBool::new(false),
        })
    }

    /// Bytes of history held now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// What trimming brings the total down to.
    fn target(&self) -> usize {
        self.max - self.max / 10
    }

    /// Whether trimming is due; when it is, the caller owns it until it calls
    /// [`trimmed`](Self::trimmed).
    pub(crate) fn begin_trim(&self) -> bool {
        self.max > 0 && self.used() > self.max && !self.trimming.swap(true, Ordering::Acquire)
    }

    /// Whether more must go.
    fn over_target(&self) -> bool {
        self.used() > self.target()
    }

    /// Finishes the trim begun with [`begin_trim`](Self::begin_trim): `candidates` are the
    /// channels holding history, with when each was last published to; least recently
    /// published first, `trim` drops a channel's oldest messages (with
    /// [`History::trim_for_budget`]) and says how many bytes went (`None`: the channel is
    /// gone), until the total is back under the target.
    pub(crate) fn trim_least_recent<K>(
        &self,
        mut candidates: Vec<(Instant, K)>,
        mut trim: impl FnMut(K) -> Option<usize>,
    ) {
        candidates.sort_unstable_by_key(|(at, _)| *at);
        let (mut channels, mut freed) = (0, 0);
        for (_, channel) in candidates {
            if !self.over_target() {
                break;
            }
            if let Some(bytes) = trim(channel) {
                freed += bytes;
                channels += 1;
            }
        }
        self.trimmed(channels, freed);
    }

    fn trimmed(&self, channels: usize, freed: usize) {
        self.trimming.store(false, Ordering::Release);
        tracing::warn!(
            channels,
            freed_bytes = freed,
            held_bytes = self.used(),
            budget_bytes = self.max,
            "history over its memory budget (HISTORY_MAX_BYTES): trimmed the oldest messages of the least recently published channels; recovering past them answers recovered: false"
        );
    }
}

/// One channel's epoch, last offset and retained messages.
#[derive(Debug)]
pub(crate) struct History {
    channel: Arc<str>,
    epoch: Epoch,
    offset: u64,
    entries: VecDeque<Entry>,
    /// Allocated on the first keyed publish: most channels never see one.
    recent: Option<Box<RecentKeys>>,
    /// Where the retained bytes are counted.
    budget: Arc<HistoryBudget>,
}

impl Drop for History {
    fn drop(&mut self) {
        self.budget
            .sub(self.entries.iter().map(|e| e.data.len()).sum());
    }
}

/// The dedupe keys of a channel's latest keyed publishes and the offsets they got. Empty
/// (and unallocated) for a channel nobody publishes to with a key.
#[derive(Debug, Default)]
struct RecentKeys {
    offsets: HashMap<Arc<str>, u64>,
    order: VecDeque<Arc<str>>,
}

impl RecentKeys {
    fn remember(&mut self, key: &str, offset: u64, window: usize) {
        if window == 0 {
            return;
        }
        while self.order.len() >= window {
            if let Some(old) = self.order.pop_front() {
                self.offsets.remove(&old);
            }
        }
        let key: Arc<str> = key.into();
        self.offsets.insert(Arc::clone(&key), offset);
        self.order.push_back(key);
    }
}

impl History {
    /// An empty history in `epoch` whose next offset is `offset + 1`.
    pub(crate) fn new(
        channel: Arc<str>,
        epoch: Epoch,
        offset: u64,
        budget: Arc<HistoryBudget>,
    ) -> Self {
        Self {
            channel,
            epoch,
            offset,
            entries: VecDeque::new(),
            recent: None,
            budget,
        }
    }

    /// When the newest retained message was published; `None` when nothing is retained.
    pub(crate) fn newest_at(&self) -> Option<Instant> {
        self.entries.back().map(|e| e.at)
    }

    /// Drops this channel's oldest messages while the budget is over its target; returns the
    /// bytes freed.
    pub(crate) fn trim_for_budget(&mut self) -> usize {
        let mut freed = 0;
        while self.budget.over_target() {
            let Some(entry) = self.entries.pop_front() else {
                break;
            };
            self.budget.sub(entry.data.len());
            freed += entry.data.len();
        }
        freed
    }

    fn pop_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.budget.sub(entry.data.len());
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

    /// The offset a publish with dedupe key `key` got, while the key is within the window.
    pub(crate) fn deduplicated(&self, key: &str) -> Option<u64> {
        self.recent.as_ref()?.offsets.get(key).copied()
    }

    /// Assigns the next offset to `data`, retains it within `limits`, remembers `dedupe_key`
    /// (see [`deduplicated`](Self::deduplicated)), and returns the envelope to deliver.
    pub(crate) fn append(
        &mut self,
        data: Bytes,
        dedupe_key: Option<&str>,
        now: Instant,
        limits: HistoryLimits,
    ) -> Envelope {
        self.offset += 1;
        if let Some(key) = dedupe_key
            && limits.dedupe_window > 0
        {
            self.recent
                .get_or_insert_default()
                .remember(key, self.offset, limits.dedupe_window);
        }
        if limits.size > 0 {
            self.budget.add(data.len());
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
            self.pop_front();
        }
        while self
            .entries
            .front()
            .is_some_and(|e| now.saturating_duration_since(e.at) >= limits.ttl)
        {
            self.pop_front();
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
        let messages = if epoch != self.epoch.as_str() || offset > self.offset {
            // Another epoch, or a position this epoch never reached (offsets of another
            // history under the same name): nothing can be vouched for.
            None
        } else if offset == self.offset {
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
        dedupe_window: 2,
    };

    fn history() -> History {
        History::new("ch".into(), Epoch::from("e1"), 0, HistoryBudget::new(0))
    }

    fn offsets(r: &Recovery) -> Option<Vec<u64>> {
        r.messages
            .as_ref()
            .map(|m| m.iter().map(|e| e.offset).collect())
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_counts_what_histories_retain_until_they_trim_or_drop() {
        let budget = HistoryBudget::new(0);
        let mut a = History::new("a".into(), Epoch::from("e"), 0, Arc::clone(&budget));
        let mut b = History::new("b".into(), Epoch::from("e"), 0, Arc::clone(&budget));
        let now = Instant::now();
        for _ in 0..5 {
            a.append(Bytes::from(vec![0; 10]), None, now, LIMITS);
        }
        b.append(Bytes::from(vec![0; 7]), None, now, LIMITS);
        // `a` keeps its latest three (size 3).
        assert_eq!(budget.used(), 37);
        a.trim(now + Duration::from_secs(61), LIMITS);
        assert_eq!(budget.used(), 7);
        drop(b);
        assert_eq!(budget.used(), 0);
        // Unbounded: never due for trimming, however much is held.
        assert!(!budget.begin_trim());
    }

    #[tokio::test(start_paused = true)]
    async fn offsets_start_at_one_and_ascend_by_one() {
        let mut h = history();
        let now = Instant::now();
        assert_eq!(h.append(Bytes::from("a"), None, now, LIMITS).offset, 1);
        assert_eq!(h.append(Bytes::from("b"), None, now, LIMITS).offset, 2);
        assert_eq!(h.position().offset, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn since_refuses_when_the_next_message_was_trimmed_by_count() {
        let mut h = history();
        let now = Instant::now();
        for i in 0..5 {
            h.append(Bytes::from(vec![i]), None, now, LIMITS);
        }
        assert_eq!(offsets(&h.since(2, "e1", now, LIMITS)), Some(vec![3, 4, 5]));
        assert_eq!(offsets(&h.since(1, "e1", now, LIMITS)), None);
        assert_eq!(offsets(&h.since(5, "e1", now, LIMITS)), Some(vec![]));
        // A position this epoch never reached was not given by this history: nothing can be
        // vouched for (a client that continued a local fallback under this epoch's name).
        assert_eq!(offsets(&h.since(9, "e1", now, LIMITS)), None);
        assert_eq!(offsets(&h.since(4, "other", now, LIMITS)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn since_refuses_when_the_next_message_is_older_than_the_age_bound() {
        let mut h = history();
        let start = Instant::now();
        h.append(Bytes::from("old"), None, start, LIMITS);
        let later = start + Duration::from_secs(40);
        h.append(Bytes::from("new"), None, later, LIMITS);
        let now = start + Duration::from_secs(61);
        assert_eq!(offsets(&h.since(1, "e1", now, LIMITS)), Some(vec![2]));
        assert_eq!(offsets(&h.since(0, "e1", now, LIMITS)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_history_of_size_zero_recovers_only_an_up_to_date_position() {
        let limits = HistoryLimits {
            size: 0,
            ttl: Duration::from_secs(1),
            dedupe_window: 0,
        };
        let mut h = history();
        let now = Instant::now();
        h.append(Bytes::from("a"), None, now, limits);
        assert_eq!(offsets(&h.since(0, "e1", now, limits)), None);
        assert_eq!(offsets(&h.since(1, "e1", now, limits)), Some(vec![]));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dedupe_key_answers_its_offset_until_newer_keys_push_it_out_of_the_window() {
        let mut h = history();
        let now = Instant::now();
        h.append(Bytes::from("a"), Some("k1"), now, LIMITS);
        h.append(Bytes::from("plain"), None, now, LIMITS);
        h.append(Bytes::from("b"), Some("k2"), now, LIMITS);
        assert_eq!(h.deduplicated("k1"), Some(1));
        assert_eq!(h.deduplicated("k2"), Some(3));
        assert_eq!(h.deduplicated("k3"), None);
        // The window holds the latest two keys: a third forgets the oldest.
        h.append(Bytes::from("c"), Some("k3"), now, LIMITS);
        assert_eq!(h.deduplicated("k1"), None);
        assert_eq!(h.deduplicated("k2"), Some(3));
        assert_eq!(h.deduplicated("k3"), Some(4));
    }
}

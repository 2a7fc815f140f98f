//! Sequence accounting: which messages each subscription received (loss and duplicates), and
//! how long each message took to reach its last subscriber (completion time).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::histogram::Histogram;

/// The set of sequence numbers one subscription has received, as a growable bitset.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeqSet {
    bits: Vec<u64>,
    distinct: u64,
}

impl SeqSet {
    /// Marks `seq` received. `true` the first time, `false` for a duplicate. The caller
    /// bounds `seq` (the set grows to `seq / 8` bytes).
    pub(crate) fn insert(&mut self, seq: u64) -> bool {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let mask = 1u64 << bit;
        if self.bits[word] & mask != 0 {
            return false;
        }
        self.bits[word] |= mask;
        self.distinct += 1;
        true
    }

    /// Number of distinct sequence numbers received.
    pub(crate) fn distinct(&self) -> u64 {
        self.distinct
    }
}

/// What one message did, as seen by one process: how many of its subscribers got it and
/// the latest of their latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MessageStat {
    /// Subscribers (in this process) that received the message.
    pub(crate) receivers: u32,
    /// The largest latency among them, in nanoseconds.
    pub(crate) max_latency_ns: u64,
}

impl MessageStat {
    /// Folds in the same message as seen by another process.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.receivers += other.receivers;
        self.max_latency_ns = self.max_latency_ns.max(other.max_latency_ns);
    }
}

/// One channel as seen by one process: how many subscriptions it has here, how many
/// distinct messages each received (as counts of subscriptions per distinct total) and, for
/// completion time, what happened to each message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ChannelReceipts {
    /// Established subscriptions to the channel in this process.
    pub(crate) subscribers: u64,
    /// `distinct messages received → number of subscriptions` that received that many.
    pub(crate) distinct: BTreeMap<u64, u64>,
    /// Per sequence number (only for scenarios that track completion).
    pub(crate) messages: Vec<MessageStat>,
}

impl ChannelReceipts {
    /// Folds in the same channel as seen by another process.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.subscribers += other.subscribers;
        for (&d, &n) in &other.distinct {
            *self.distinct.entry(d).or_default() += n;
        }
        if self.messages.len() < other.messages.len() {
            self.messages
                .resize(other.messages.len(), MessageStat::default());
        }
        for (mine, theirs) in self.messages.iter_mut().zip(&other.messages) {
            mine.merge(theirs);
        }
    }
}

/// Loss over all channels, given how many messages were published to each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Loss {
    /// Deliveries the subscriptions should have received: Σ published × subscribers.
    pub(crate) expected: u64,
    /// Deliveries that never arrived.
    pub(crate) missing: u64,
    /// Subscriptions that missed at least one message.
    pub(crate) subscriptions_with_loss: u64,
}

/// Counts loss from per-channel receipts and per-channel publish counts (both indexed by
/// channel). A subscription that received more distinct messages than were published (which
/// cannot happen with a correct server) counts as complete.
pub(crate) fn loss(receipts: &[ChannelReceipts], published: &[u64]) -> Loss {
    let mut out = Loss::default();
    for (ch, r) in receipts.iter().enumerate() {
        let sent = published.get(ch).copied().unwrap_or(0);
        out.expected += sent * r.subscribers;
        for (&distinct, &n) in &r.distinct {
            let short = sent.saturating_sub(distinct);
            out.missing += short * n;
            if short > 0 {
                out.subscriptions_with_loss += n;
            }
        }
    }
    out
}

/// Completion time per message: the latency of its last subscriber.
#[derive(Debug, Clone, Default)]
pub(crate) struct Completion {
    /// Completion times (ns) of window messages that reached every subscriber.
    pub(crate) times: Histogram,
    /// Window messages that some subscriber never received.
    pub(crate) incomplete: u64,
}

/// Computes completion times over every channel with subscribers, for the messages
/// published in the measurement window: per channel, sequence numbers from
/// `before_window[ch]` (messages published during warm-up) up to `published[ch]`.
pub(crate) fn completion(
    receipts: &[ChannelReceipts],
    published: &[u64],
    before_window: &[u64],
) -> Completion {
    let mut out = Completion::default();
    for (ch, r) in receipts.iter().enumerate() {
        if r.subscribers == 0 {
            continue;
        }
        let end = published.get(ch).copied().unwrap_or(0);
        let start = before_window.get(ch).copied().unwrap_or(0).min(end);
        for seq in start..end {
            let stat = r.messages.get(seq as usize).copied().unwrap_or_default();
            if u64::from(stat.receivers) >= r.subscribers {
                out.times.record(stat.max_latency_ns);
            } else {
                out.incomplete += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_distinct_counts_once() {
        let mut s = SeqSet::default();
        assert!(s.insert(0));
        assert!(s.insert(200));
        assert!(!s.insert(200));
        assert!(s.insert(63));
        assert!(s.insert(64));
        assert!(!s.insert(0));
        assert_eq!(s.distinct(), 4);
    }

    fn receipts(subscribers: u64, distinct: &[(u64, u64)]) -> ChannelReceipts {
        ChannelReceipts {
            subscribers,
            distinct: distinct.iter().copied().collect(),
            messages: Vec::new(),
        }
    }

    #[test]
    fn loss_counts_missing_deliveries_per_subscription() {
        // Channel 0: 10 published, 3 subscribers: two got all, one missed 2.
        // Channel 1: 4 published, 1 subscriber that got nothing (never delivered).
        let r = vec![receipts(3, &[(10, 2), (8, 1)]), receipts(1, &[(0, 1)])];
        let l = loss(&r, &[10, 4]);
        assert_eq!(
            l,
            Loss {
                expected: 34,
                missing: 6,
                subscriptions_with_loss: 2
            }
        );
    }

    #[test]
    fn receipts_from_two_processes_merge() {
        let mut a = receipts(2, &[(10, 2)]);
        let stat = |receivers, max_latency_ns| MessageStat {
            receivers,
            max_latency_ns,
        };
        // Message 0 was sent during warm-up and is not counted.
        a.messages = vec![stat(2, 1), stat(2, 5), stat(1, 7)];
        let mut b = receipts(1, &[(10, 1)]);
        b.messages = vec![stat(1, 1), stat(1, 9)];
        a.merge(&b);
        assert_eq!(a.subscribers, 3);
        assert_eq!(a.distinct.get(&10), Some(&3));
        let c = completion(&[a], &[4], &[1]);
        // Message 1 reached all 3 (the last after 9 ns); message 2 only 1 of 3; message 3
        // nobody.
        assert_eq!(c.times.count(), 1);
        assert_eq!(c.times.max(), 9);
        assert_eq!(c.incomplete, 2);
    }
}

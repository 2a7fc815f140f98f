//! An idle outbound queue costs a few machine words and no heap: the server holds one per
//! connection.

use bytes::Bytes;
use switchboard_queue::{OutboundConfig, OutboundQueue, Priority};

#[test]
fn an_empty_outbound_queue_is_five_words() {
    assert_eq!(
        size_of::<OutboundQueue<Bytes>>(),
        5 * size_of::<usize>(),
        "documented in OutboundQueue's docs and the README"
    );
}

#[test]
fn an_empty_outbound_queue_reports_zero_everywhere() {
    let q: OutboundQueue = OutboundQueue::new(OutboundConfig::default());
    let stats = q.stats();
    assert!(stats.is_empty());
    assert_eq!(stats.bytes(), 0);
    assert_eq!(stats.pushed(), 0);
    assert_eq!(q.peek_priority(), None);
}

#[test]
fn stats_count_pushes_pops_length_and_bytes() {
    let mut q: OutboundQueue = OutboundQueue::default();
    q.push(Bytes::from_static(b"hello"), Priority::Normal)
        .unwrap();
    q.push(Bytes::from_static(b"hi"), Priority::Low).unwrap();
    q.pop();
    let stats = q.stats();
    assert_eq!(
        (stats.pushed(), stats.popped(), stats.len(), stats.bytes()),
        (2, 1, 1, 2)
    );
}

#[test]
fn without_counters_the_queue_behaves_the_same_and_stats_report_only_what_it_holds() {
    let config = OutboundConfig::default()
        .with_capacity(std::num::NonZeroUsize::new(2).unwrap())
        .with_counters(false);
    let mut q: OutboundQueue = OutboundQueue::new(config);
    q.push(Bytes::from_static(b"low"), Priority::Low).unwrap();
    q.push(Bytes::from_static(b"normal"), Priority::Normal)
        .unwrap();
    // Full: a high-priority push still evicts the low one and hands it back.
    let evicted = q.push(Bytes::from_static(b"high"), Priority::High).unwrap();
    assert_eq!(evicted.len(), 1);
    assert_eq!(q.pop(), Some(Bytes::from_static(b"normal")));
    let stats = q.stats();
    assert_eq!((stats.len(), stats.bytes()), (1, 4));
    assert_eq!(
        (stats.pushed(), stats.popped(), stats.evicted_total()),
        (0, 0, 0)
    );
}

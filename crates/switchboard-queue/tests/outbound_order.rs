//! An outbound queue pops in push order (FIFO, its default) or by priority, and pops
//! batches for coalesced writes.

use std::num::NonZeroUsize;

use bytes::Bytes;
use switchboard_queue::{OutboundConfig, OutboundQueue, PopOrder, Priority};

fn frame(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn drain(q: &mut OutboundQueue) -> Vec<Bytes> {
    std::iter::from_fn(|| q.pop()).collect()
}

#[test]
fn fifo_order_keeps_push_order_across_priorities() {
    let mut q = OutboundQueue::new(OutboundConfig::default());
    assert_eq!(q.config().order, PopOrder::Fifo);
    q.push(frame("offset-1"), Priority::Low).unwrap();
    q.push(frame("offset-2"), Priority::Critical).unwrap();
    q.push(frame("offset-3"), Priority::Normal).unwrap();
    assert_eq!(
        drain(&mut q),
        [frame("offset-1"), frame("offset-2"), frame("offset-3")]
    );
}

#[test]
fn priority_order_pops_highest_first_and_fifo_within_a_priority() {
    let config = OutboundConfig::default().with_order(PopOrder::Priority);
    let mut q = OutboundQueue::new(config);
    q.push(frame("low-1"), Priority::Low).unwrap();
    q.push(frame("high-1"), Priority::High).unwrap();
    q.push(frame("normal-1"), Priority::Normal).unwrap();
    q.push(frame("high-2"), Priority::High).unwrap();
    q.push(frame("critical-1"), Priority::Critical).unwrap();
    assert_eq!(q.peek_priority(), Some(Priority::Critical));
    assert_eq!(
        drain(&mut q),
        [
            frame("critical-1"),
            frame("high-1"),
            frame("high-2"),
            frame("normal-1"),
            frame("low-1")
        ]
    );
}

#[test]
fn pop_batch_stops_at_the_item_limit() {
    let mut q = OutboundQueue::new(OutboundConfig::default());
    for text in ["a", "b", "c"] {
        q.push(frame(text), Priority::Normal).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(q.pop_batch(&mut out, 2, usize::MAX), 2);
    assert_eq!(out, [frame("a"), frame("b")]);
    assert_eq!(q.len(), 1);
}

#[test]
fn pop_batch_stops_before_the_byte_limit_but_always_takes_one() {
    let mut q = OutboundQueue::new(OutboundConfig::default());
    q.push(frame("0123456789"), Priority::Normal).unwrap();
    q.push(frame("abc"), Priority::Normal).unwrap();
    q.push(frame("def"), Priority::Normal).unwrap();

    let mut out = Vec::new();
    assert_eq!(
        q.pop_batch(&mut out, 10, 4),
        1,
        "a frame over the limit still goes out"
    );
    assert_eq!(q.pop_batch(&mut out, 10, 4), 1);
    assert_eq!(q.pop_batch(&mut out, 10, 6), 1);
    assert_eq!(out, [frame("0123456789"), frame("abc"), frame("def")]);
    assert_eq!(q.pop_batch(&mut out, 10, 6), 0);
    assert_eq!(q.stats().popped(), 3);
}

#[test]
fn clear_empties_the_queue_without_counting_evictions() {
    let capacity = NonZeroUsize::new(5).unwrap();
    let mut q = OutboundQueue::new(OutboundConfig::default().with_capacity(capacity));
    q.push(frame("a"), Priority::Low).unwrap();
    q.push(frame("b"), Priority::High).unwrap();
    assert_eq!(q.clear(), 2);
    assert!(q.is_empty());
    assert_eq!(q.bytes(), 0);
    assert_eq!(q.stats().evicted_total(), 0);
    assert_eq!(q.stats().pushed(), 2);
}

#[test]
fn a_queue_keeps_working_after_it_drains_and_releases_its_buffers() {
    let mut q = OutboundQueue::new(OutboundConfig::default());
    for round in 0..3 {
        for i in 0..100 {
            q.push(Bytes::from(format!("{round}-{i}")), Priority::Normal)
                .unwrap();
        }
        let drained: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(drained.len(), 100);
        assert_eq!(drained[0], Bytes::from(format!("{round}-0")));
    }
    q.shrink_to_fit();
    assert!(q.is_empty());
}

//! A full outbound queue evicts the oldest entry of the lowest priority strictly below the
//! pushed one, reports it, and never evicts a critical entry.

use std::num::NonZeroUsize;

use bytes::Bytes;
use switchboard_queue::{Evicted, OutboundConfig, OutboundQueue, PopOrder, Priority, PushError};

fn queue(capacity: usize) -> OutboundQueue {
    let capacity = NonZeroUsize::new(capacity).unwrap();
    OutboundQueue::new(OutboundConfig::default().with_capacity(capacity))
}

fn frame(text: &'static str) -> Bytes {
    Bytes::from_static(text.as_bytes())
}

fn evicted(e: switchboard_queue::Evictions<Bytes>) -> Vec<(Priority, Bytes)> {
    e.into_iter()
        .map(|Evicted { priority, item, .. }| (priority, item))
        .collect()
}

#[test]
fn a_push_into_a_full_queue_evicts_the_oldest_entry_of_the_lowest_priority() {
    let mut q = queue(4);
    q.push(frame("normal-1"), Priority::Normal).unwrap();
    q.push(frame("low-1"), Priority::Low).unwrap();
    q.push(frame("low-2"), Priority::Low).unwrap();
    q.push(frame("high-1"), Priority::High).unwrap();

    let out = q.push(frame("high-2"), Priority::High).unwrap();
    assert_eq!(evicted(out), [(Priority::Low, frame("low-1"))]);
    let out = q.push(frame("high-3"), Priority::High).unwrap();
    assert_eq!(evicted(out), [(Priority::Low, frame("low-2"))]);
    let out = q.push(frame("high-4"), Priority::High).unwrap();
    assert_eq!(evicted(out), [(Priority::Normal, frame("normal-1"))]);
    assert_eq!(q.len(), 4);
    assert_eq!(q.stats().evicted(Priority::Low), 2);
    assert_eq!(q.stats().evicted(Priority::Normal), 1);
    assert_eq!(q.stats().evicted_total(), 3);
}

#[test]
fn a_push_never_evicts_an_entry_of_its_own_priority() {
    let mut q = queue(2);
    q.push(frame("normal-1"), Priority::Normal).unwrap();
    q.push(frame("normal-2"), Priority::Normal).unwrap();

    let err = q.push(frame("normal-3"), Priority::Normal).unwrap_err();
    assert!(matches!(
        err,
        PushError::Full {
            priority: Priority::Normal,
            ..
        }
    ));
    assert_eq!(err.into_item(), frame("normal-3"));
    assert_eq!(q.len(), 2);
    assert_eq!(q.stats().rejected(Priority::Normal), 1);
    assert_eq!(q.stats().evicted_total(), 0);
}

#[test]
fn a_critical_entry_is_never_evicted_and_a_critical_that_cannot_fit_is_flagged() {
    let mut q = queue(2);
    q.push(frame("critical-1"), Priority::Critical).unwrap();
    q.push(frame("critical-2"), Priority::Critical).unwrap();

    let err = q.push(frame("critical-3"), Priority::Critical).unwrap_err();
    assert!(
        err.is_critical(),
        "the server must close the connection (4008)"
    );
    let err = q.push(frame("high"), Priority::High).unwrap_err();
    assert!(!err.is_critical());
    assert_eq!(q.pop(), Some(frame("critical-1")));
    assert_eq!(q.pop(), Some(frame("critical-2")));
}

#[test]
fn a_critical_push_evicts_anything_below_critical() {
    let mut q = queue(2);
    q.push(frame("high"), Priority::High).unwrap();
    q.push(frame("critical-1"), Priority::Critical).unwrap();

    let out = q.push(frame("critical-2"), Priority::Critical).unwrap();
    assert_eq!(evicted(out), [(Priority::High, frame("high"))]);
}

#[test]
fn the_byte_bound_evicts_as_many_entries_as_needed_lowest_and_oldest_first() {
    let config = OutboundConfig::default()
        .with_max_bytes(NonZeroUsize::new(10))
        .with_order(PopOrder::Fifo);
    let mut q = OutboundQueue::new(config);
    q.push(frame("aaa"), Priority::Low).unwrap();
    q.push(frame("bbb"), Priority::Normal).unwrap();
    q.push(frame("ccc"), Priority::Low).unwrap();
    assert_eq!(q.bytes(), 9);

    let out = q.push(frame("dddddd"), Priority::High).unwrap();
    assert_eq!(
        evicted(out),
        [(Priority::Low, frame("aaa")), (Priority::Low, frame("ccc"))]
    );
    assert_eq!(q.bytes(), 9);
    assert_eq!(q.pop(), Some(frame("bbb")));
    assert_eq!(q.pop(), Some(frame("dddddd")));
}

#[test]
fn a_push_that_cannot_make_room_evicts_nothing() {
    let config = OutboundConfig::default().with_max_bytes(NonZeroUsize::new(10));
    let mut q = OutboundQueue::new(config);
    q.push(frame("aaaa"), Priority::Low).unwrap();
    q.push(frame("hhhhhh"), Priority::High).unwrap();

    // Evicting the low entry would free 4 bytes; 8 are needed.
    let err = q.push(frame("nnnnnnnn"), Priority::Normal).unwrap_err();
    assert!(matches!(err, PushError::Full { .. }));
    assert_eq!(q.len(), 2);
    assert_eq!(q.bytes(), 10);
    assert_eq!(q.stats().evicted_total(), 0);
}

#[test]
fn an_item_larger_than_the_byte_bound_is_refused_as_too_large() {
    let config = OutboundConfig::default().with_max_bytes(NonZeroUsize::new(4));
    let mut q = OutboundQueue::new(config);
    let err = q.push(frame("12345"), Priority::Critical).unwrap_err();
    assert!(matches!(
        err,
        PushError::TooLarge {
            bytes: 5,
            max_bytes: 4,
            ..
        }
    ));
    assert!(err.is_critical());
    assert!(q.is_empty());
}

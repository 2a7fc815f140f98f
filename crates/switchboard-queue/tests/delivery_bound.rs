//! A delivery queue's bound counts entries in every state; a push evicts only ready entries,
//! and never silently.

use std::num::NonZeroUsize;
use std::time::Instant;

use switchboard_queue::{DeliveryConfig, DeliveryQueue, PopOrder, Priority, PushError};

fn queue(capacity: usize) -> DeliveryQueue<&'static str> {
    let capacity = NonZeroUsize::new(capacity).unwrap();
    DeliveryQueue::new(
        DeliveryConfig::default()
            .with_capacity(capacity)
            .with_seed(Some(1)),
    )
}

#[test]
fn a_push_into_a_full_queue_evicts_the_oldest_ready_entry_of_the_lowest_priority() {
    let mut q = queue(3);
    q.push("low-1", Priority::Low).unwrap();
    q.push("normal-1", Priority::Normal).unwrap();
    q.push("low-2", Priority::Low).unwrap();
    let pushed = q.push("high-1", Priority::High).unwrap();
    let evicted: Vec<_> = pushed
        .evicted
        .iter()
        .map(|e| (e.priority, e.item))
        .collect();
    assert_eq!(evicted, [(Priority::Low, "low-1")]);
    assert_eq!(q.stats().evicted(Priority::Low), 1);
    assert_eq!(q.len(), 3);
}

#[test]
fn leased_entries_count_against_the_bound_but_are_never_evicted() {
    let t0 = Instant::now();
    let mut q = queue(2);
    q.push("low-1", Priority::Low).unwrap();
    q.push("low-2", Priority::Low).unwrap();
    q.pop(t0).unwrap().unwrap();
    q.pop(t0).unwrap().unwrap();

    let err = q.push("critical", Priority::Critical).unwrap_err();
    assert!(err.is_critical());
    assert_eq!(q.leased_len(), 2);
}

#[test]
fn fifo_order_is_available_for_deliveries_too() {
    let t0 = Instant::now();
    let config = DeliveryConfig::default().with_order(PopOrder::Fifo);
    let mut q = DeliveryQueue::new(config);
    q.push("first", Priority::Low).unwrap();
    q.push("second", Priority::Critical).unwrap();
    assert_eq!(q.pop(t0).unwrap().unwrap().item, "first");
}

#[test]
fn priority_order_is_the_default_for_deliveries() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::default();
    q.push("normal", Priority::Normal).unwrap();
    q.push("low", Priority::Low).unwrap();
    q.push("critical", Priority::Critical).unwrap();
    let order: Vec<_> = std::iter::from_fn(|| q.pop(t0).unwrap())
        .map(|l| l.item)
        .collect();
    assert_eq!(order, ["critical", "normal", "low"]);
}

#[test]
fn a_refused_push_gives_the_item_back_and_is_counted() {
    let mut q = queue(1);
    q.push("high", Priority::High).unwrap();
    let err = q.push("normal", Priority::Normal).unwrap_err();
    assert!(matches!(
        err,
        PushError::Full {
            priority: Priority::Normal,
            ..
        }
    ));
    assert_eq!(err.into_item(), "normal");
    assert_eq!(q.stats().rejected(Priority::Normal), 1);
}

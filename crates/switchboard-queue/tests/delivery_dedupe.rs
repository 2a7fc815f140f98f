//! A keyed push is refused while an entry with the same key is queued.

use std::num::NonZeroUsize;
use std::time::Instant;

use switchboard_queue::{DeliveryConfig, DeliveryQueue, Priority, PushError};

#[test]
fn a_key_already_queued_is_refused_with_the_existing_id() {
    let mut q = DeliveryQueue::default();
    let first = q.push_keyed("m-1", "a", Priority::Normal).unwrap();
    let err = q.push_keyed("m-1", "a again", Priority::High).unwrap_err();
    let PushError::Duplicate { item, existing } = err else {
        panic!("expected a duplicate, got {err:?}")
    };
    assert_eq!((item, existing), ("a again", first.id));
    assert_eq!(q.len(), 1);
}

#[test]
fn a_key_is_refused_while_its_entry_is_leased() {
    let mut q = DeliveryQueue::default();
    q.push_keyed("m-1", "a", Priority::Normal).unwrap();
    q.pop(Instant::now()).unwrap().unwrap();
    assert!(q.push_keyed("m-1", "a", Priority::Normal).is_err());
}

#[test]
fn a_key_can_be_queued_again_once_its_entry_is_acked() {
    let mut q = DeliveryQueue::default();
    q.push_keyed("m-1", "a", Priority::Normal).unwrap();
    let lease = q.pop(Instant::now()).unwrap().unwrap();
    q.ack(lease.id).unwrap();
    q.push_keyed("m-1", "a", Priority::Normal).unwrap();
}

#[test]
fn a_key_can_be_queued_again_once_its_entry_is_evicted() {
    let capacity = NonZeroUsize::new(1).unwrap();
    let mut q = DeliveryQueue::new(DeliveryConfig::default().with_capacity(capacity));
    q.push_keyed("m-1", "a", Priority::Low).unwrap();
    let pushed = q.push_keyed("m-2", "b", Priority::High).unwrap();
    assert_eq!(pushed.evicted.len(), 1);
    let err = q.push_keyed("m-1", "a", Priority::Low).unwrap_err();
    assert!(
        matches!(err, PushError::Full { .. }),
        "not a duplicate: {err:?}"
    );
}

#[test]
fn unkeyed_pushes_are_never_deduplicated() {
    let mut q = DeliveryQueue::default();
    q.push("same", Priority::Normal).unwrap();
    q.push("same", Priority::Normal).unwrap();
    assert_eq!(q.len(), 2);
}

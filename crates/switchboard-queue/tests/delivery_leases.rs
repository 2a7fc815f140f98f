//! A delivery queue leases what it pops: ack removes, nack or an expired lease retries after
//! backoff, and the last failed attempt makes a dead letter.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use switchboard_queue::{
    Backoff, DeliveryConfig, DeliveryQueue, EntryId, Nacked, Priority, QueueError,
};

/// No jitter: a retry is due exactly `100 ms × 2^(n-1)` after the nth failure.
fn config() -> DeliveryConfig {
    DeliveryConfig::default()
        .with_backoff(
            Backoff::default()
                .with_base(Duration::from_millis(100))
                .with_jitter(0.0),
        )
        .with_lease_timeout(Duration::from_secs(5))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn an_acked_entry_is_gone() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push("a", Priority::Normal).unwrap();
    let lease = q.pop(t0).unwrap().unwrap();
    assert_eq!(
        (lease.item, lease.attempt, lease.deadline),
        ("a", 1, t0 + ms(5000))
    );
    assert_eq!(q.leased_len(), 1);
    q.ack(lease.id).unwrap();
    assert!(q.is_empty());
    assert!(matches!(q.ack(lease.id), Err(QueueError::UnknownEntry(_))));
}

#[test]
fn a_nacked_entry_is_retried_after_exponential_backoff() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push("a", Priority::Normal).unwrap();

    let first = q.pop(t0).unwrap().unwrap();
    assert_eq!(q.nack(first.id, t0).unwrap(), Nacked::RetryAt(t0 + ms(100)));
    assert_eq!(q.next_due(), Some(t0 + ms(100)));
    assert!(q.pop(t0 + ms(99)).unwrap().is_none(), "not due yet");

    let second = q.pop(t0 + ms(100)).unwrap().unwrap();
    assert_eq!((second.id, second.attempt), (first.id, 2));
    assert_eq!(
        q.nack(second.id, t0 + ms(100)).unwrap(),
        Nacked::RetryAt(t0 + ms(300))
    );
    assert_eq!(q.stats().retried(), 2);
}

#[test]
fn an_expired_lease_counts_as_a_failed_attempt() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push("a", Priority::Normal).unwrap();
    let lease = q.pop(t0).unwrap().unwrap();
    assert_eq!(q.next_due(), Some(lease.deadline));

    // At the deadline the lease expires; the retry is due 100 ms later.
    assert!(q.pop(lease.deadline).unwrap().is_none());
    assert!(matches!(
        q.nack(lease.id, lease.deadline),
        Err(QueueError::NotLeased(_))
    ));
    let retry = q.pop(lease.deadline + ms(100)).unwrap().unwrap();
    assert_eq!((retry.id, retry.attempt), (lease.id, 2));
}

#[test]
fn a_late_ack_after_the_lease_expired_still_removes_the_entry() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push("a", Priority::Normal).unwrap();
    let lease = q.pop(t0).unwrap().unwrap();
    assert!(q.pop(lease.deadline).unwrap().is_none());
    q.ack(lease.id).unwrap();
    assert!(q.is_empty());
}

#[test]
fn the_third_failed_attempt_makes_a_dead_letter_handed_back_once() {
    let mut now = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push_keyed("m-1", "a", Priority::High).unwrap();
    for attempt in 1..=3 {
        let lease = q.pop(now).unwrap().unwrap();
        assert_eq!(lease.attempt, attempt);
        match q.nack(lease.id, now).unwrap() {
            Nacked::RetryAt(at) => now = at,
            Nacked::DeadLettered => assert_eq!(attempt, 3),
        }
    }
    assert_eq!(q.len(), 1, "a dead letter still counts until taken");
    assert!(q.pop(now + ms(60_000)).unwrap().is_none());

    let dead = q.take_dead_letters().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].item, dead[0].attempts), ("a", 3));
    assert_eq!(
        (dead[0].priority, dead[0].key.as_deref()),
        (Priority::High, Some("m-1"))
    );
    assert!(q.take_dead_letters().unwrap().is_empty());
    assert!(q.is_empty());
    assert_eq!(q.stats().dead_lettered(), 1);
}

#[test]
fn max_attempts_is_configurable() {
    let t0 = Instant::now();
    let config = config().with_max_attempts(NonZeroU32::new(1).unwrap());
    let mut q = DeliveryQueue::new(config);
    q.push("a", Priority::Normal).unwrap();
    let lease = q.pop(t0).unwrap().unwrap();
    assert_eq!(q.nack(lease.id, t0).unwrap(), Nacked::DeadLettered);
}

#[test]
fn release_all_returns_every_leased_entry_at_once_without_a_failed_attempt() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    for item in ["a", "b", "c"] {
        q.push(item, Priority::Normal).unwrap();
    }
    let a = q.pop(t0).unwrap().unwrap();
    let b = q.pop(t0).unwrap().unwrap();
    assert_eq!(q.release_all(), 2);
    assert_eq!(q.leased_len(), 0);

    let again: Vec<_> = std::iter::from_fn(|| q.pop(t0).unwrap()).collect();
    let items: Vec<_> = again.iter().map(|l| (l.item, l.attempt)).collect();
    assert_eq!(
        items,
        [("a", 1), ("b", 1), ("c", 1)],
        "original order, attempt not spent"
    );
    assert_eq!((again[0].id, again[1].id), (a.id, b.id));
}

#[test]
fn a_retried_entry_goes_back_to_its_original_place() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    for item in ["a", "b", "c"] {
        q.push(item, Priority::Normal).unwrap();
    }
    let a = q.pop(t0).unwrap().unwrap();
    q.nack(a.id, t0).unwrap();
    let next = q.pop(t0 + ms(100)).unwrap().unwrap();
    assert_eq!((next.item, next.attempt), ("a", 2));
}

#[test]
fn a_retry_not_yet_due_does_not_block_later_entries() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push("a", Priority::High).unwrap();
    q.push("b", Priority::Low).unwrap();
    let a = q.pop(t0).unwrap().unwrap();
    q.nack(a.id, t0).unwrap();
    assert_eq!(q.pop(t0).unwrap().unwrap().item, "b");
}

#[test]
fn nack_of_an_unknown_or_unleased_entry_is_an_error_that_changes_nothing() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    let pushed = q.push("a", Priority::Normal).unwrap();
    assert!(matches!(q.nack(pushed.id, t0), Err(QueueError::NotLeased(id)) if id == pushed.id));
    let unknown = EntryId::clone(&pushed.id);
    q.ack(pushed.id).unwrap();
    assert!(matches!(
        q.nack(unknown, t0),
        Err(QueueError::UnknownEntry(_))
    ));
}

#[test]
fn process_acks_what_was_sent_and_retries_what_failed() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    for item in ["ok-1", "fail", "ok-2"] {
        q.push(item, Priority::Normal).unwrap();
    }
    let mut sent = Vec::new();
    let processed = q
        .process(t0, |item| {
            sent.push(*item);
            *item != "fail"
        })
        .unwrap();
    assert_eq!(sent, ["ok-1", "fail", "ok-2"]);
    assert_eq!(
        (
            processed.delivered,
            processed.retrying,
            processed.dead_lettered
        ),
        (2, 1, 0)
    );
    assert_eq!(q.len(), 1);

    let processed = q.process(t0 + ms(100), |_| true).unwrap();
    assert_eq!(processed.delivered, 1);
    assert!(q.is_empty());
}

#[test]
fn clear_removes_entries_in_every_state() {
    let t0 = Instant::now();
    let mut q = DeliveryQueue::new(config());
    q.push_keyed("k", "a", Priority::Normal).unwrap();
    q.push("b", Priority::Normal).unwrap();
    q.pop(t0).unwrap();
    assert_eq!(q.clear().unwrap(), 2);
    assert!(q.is_empty());
    assert_eq!(q.next_due(), None);
    q.push_keyed("k", "a", Priority::Normal).unwrap();
}

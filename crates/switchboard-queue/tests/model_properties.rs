//! Property tests against simple models: ordering, the bound, the eviction rule, and no loss
//! other than reported evictions and dead letters.

use std::collections::BTreeSet;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use switchboard_queue::{
    Backoff, DeliveryConfig, DeliveryQueue, OutboundConfig, OutboundQueue, PopOrder, Priority,
    PushError,
};

/// An item whose weight is its payload length and whose identity is its push number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    seq: u64,
    payload: Vec<u8>,
}

impl AsRef<[u8]> for Item {
    fn as_ref(&self) -> &[u8] {
        &self.payload
    }
}

#[derive(Debug, Clone)]
enum Op {
    Push(Priority, usize),
    Pop,
    PopBatch(usize, usize),
}

fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (priority(), 0..8usize).prop_map(|(p, len)| Op::Push(p, len)),
        2 => Just(Op::Pop),
        1 => (1..4usize, 0..16usize).prop_map(|(n, b)| Op::PopBatch(n, b)),
    ]
}

/// The obvious implementation: a list in push order, searched linearly.
#[derive(Default)]
struct Model {
    entries: Vec<(Priority, Item)>,
}

impl Model {
    fn bytes(&self) -> usize {
        self.entries.iter().map(|(_, i)| i.payload.len()).sum()
    }

    /// Ok(evicted) or Err(()) when the push must be refused.
    fn push(
        &mut self,
        item: Item,
        priority: Priority,
        capacity: usize,
        max_bytes: usize,
    ) -> Result<Vec<(Priority, Item)>, ()> {
        if item.payload.len() > max_bytes {
            return Err(());
        }
        let mut candidates: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].0 < priority)
            .collect();
        candidates.sort_by_key(|&i| (self.entries[i].0, self.entries[i].1.seq));
        let fits =
            |len: usize, bytes: usize| len < capacity && bytes + item.payload.len() <= max_bytes;
        let (mut len, mut bytes) = (self.entries.len(), self.bytes());
        let mut take = 0;
        while !fits(len, bytes) {
            let &i = candidates.get(take).ok_or(())?;
            len -= 1;
            bytes -= self.entries[i].1.payload.len();
            take += 1;
        }
        let chosen: BTreeSet<usize> = candidates[..take].iter().copied().collect();
        let evicted = candidates[..take]
            .iter()
            .map(|&i| self.entries[i].clone())
            .collect();
        let mut index = 0;
        self.entries.retain(|_| {
            index += 1;
            !chosen.contains(&(index - 1))
        });
        self.entries.push((priority, item));
        Ok(evicted)
    }

    fn pop(&mut self, order: PopOrder) -> Option<(Priority, Item)> {
        let at = match order {
            PopOrder::Fifo => (!self.entries.is_empty()).then_some(0),
            PopOrder::Priority => {
                let top = self.entries.iter().map(|(p, _)| *p).max()?;
                self.entries.iter().position(|(p, _)| *p == top)
            }
        }?;
        Some(self.entries.remove(at))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn outbound_queue_behaves_like_the_model(
        capacity in 1..6usize,
        max_bytes in prop::option::of(1..24usize),
        fifo in any::<bool>(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let order = if fifo { PopOrder::Fifo } else { PopOrder::Priority };
        let config = OutboundConfig::default()
            .with_capacity(NonZeroUsize::new(capacity).unwrap())
            .with_max_bytes(max_bytes.and_then(NonZeroUsize::new))
            .with_order(order);
        let mut queue = OutboundQueue::new(config);
        let mut model = Model::default();
        let limit = max_bytes.unwrap_or(usize::MAX);
        let mut evicted_total = 0;
        for (seq, op) in (0u64..).zip(ops) {
            match op {
                Op::Push(priority, len) => {
                    let item = Item { seq, payload: vec![0; len] };
                    let expected = model.push(item.clone(), priority, capacity, limit);
                    match queue.push(item, priority) {
                        Ok(evicted) => {
                            let evicted: Vec<_> =
                                evicted.into_iter().map(|e| (e.priority, e.item)).collect();
                            for (p, _) in &evicted {
                                prop_assert!(*p < priority, "evicted {p} for {priority}");
                            }
                            evicted_total += evicted.len();
                            prop_assert_eq!(Ok(evicted), expected);
                        }
                        Err(err) => {
                            prop_assert!(expected.is_err(), "refused: {err}");
                            prop_assert_eq!(
                                err.is_critical(),
                                priority == Priority::Critical
                            );
                            let no_room =
                                matches!(err, PushError::Full { .. } | PushError::TooLarge { .. });
                            prop_assert!(no_room, "{err}");
                        }
                    }
                }
                Op::Pop => {
                    prop_assert_eq!(queue.pop_with_priority(), model.pop(order));
                }
                Op::PopBatch(max_items, max_bytes) => {
                    let mut got = Vec::new();
                    queue.pop_batch(&mut got, max_items, max_bytes);
                    let mut expected = Vec::new();
                    let mut bytes = 0;
                    while expected.len() < max_items {
                        let Some((p, item)) = model.pop(order) else { break };
                        if !expected.is_empty() && bytes + item.payload.len() > max_bytes {
                            model.entries.insert(0, (p, item));
                            model.entries.sort_by_key(|(_, i)| i.seq);
                            break;
                        }
                        bytes += item.payload.len();
                        expected.push(item);
                    }
                    prop_assert_eq!(got, expected);
                }
            }
            prop_assert!(queue.len() <= capacity);
            prop_assert!(queue.bytes() <= limit);
            prop_assert_eq!(queue.len(), model.entries.len());
            prop_assert_eq!(queue.bytes(), model.bytes());
            let stats = queue.stats();
            prop_assert_eq!(stats.evicted_total(), evicted_total as u64);
            prop_assert_eq!(
                stats.pushed(),
                stats.popped() + stats.evicted_total() + queue.len() as u64
            );
        }
    }
}

#[derive(Debug, Clone)]
enum DeliveryOp {
    Push(Priority, bool),
    Pop,
    Ack(usize),
    Nack(usize),
    Advance(u64),
    ReleaseAll,
    TakeDead,
}

fn delivery_op() -> impl Strategy<Value = DeliveryOp> {
    prop_oneof![
        4 => (priority(), any::<bool>()).prop_map(|(p, k)| DeliveryOp::Push(p, k)),
        3 => Just(DeliveryOp::Pop),
        2 => any::<usize>().prop_map(DeliveryOp::Ack),
        2 => any::<usize>().prop_map(DeliveryOp::Nack),
        2 => (0..400u64).prop_map(DeliveryOp::Advance),
        1 => Just(DeliveryOp::ReleaseAll),
        1 => Just(DeliveryOp::TakeDead),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every accepted item leaves the queue exactly once: acked, evicted (reported), or as a
    /// dead letter (reported); the bound holds throughout; an eviction only ever takes a less
    /// important entry that is not in flight.
    #[test]
    fn delivery_queue_loses_nothing_but_reported_evictions_and_dead_letters(
        capacity in 1..8usize,
        max_attempts in 1..4u32,
        seed in any::<u64>(),
        ops in prop::collection::vec(delivery_op(), 1..120),
    ) {
        let config = DeliveryConfig::default()
            .with_capacity(NonZeroUsize::new(capacity).unwrap())
            .with_max_attempts(NonZeroU32::new(max_attempts).unwrap())
            .with_lease_timeout(Duration::from_millis(250))
            .with_backoff(Backoff::default().with_base(Duration::from_millis(50)))
            .with_seed(Some(seed));
        let mut queue = DeliveryQueue::new(config);
        let mut now = Instant::now();
        let mut queued: BTreeSet<u64> = BTreeSet::new();
        // Leases handed out and not yet acked, nacked or released, with their deadlines.
        let mut leased: Vec<(switchboard_queue::EntryId, u64, Instant)> = Vec::new();
        let mut gone: BTreeSet<u64> = BTreeSet::new();
        let mut leave = |item: u64, queued: &mut BTreeSet<u64>| -> Result<(), TestCaseError> {
            prop_assert!(queued.remove(&item), "item {item} left twice or was never queued");
            prop_assert!(gone.insert(item));
            Ok(())
        };
        for (n, op) in (0u64..).zip(ops) {
            match op {
                DeliveryOp::Push(priority, keyed) => {
                    let pushed = if keyed {
                        // Keys repeat, so some pushes are duplicates.
                        queue.push_keyed(&format!("k{}", n % 5), n, priority)
                    } else {
                        queue.push(n, priority)
                    };
                    match pushed {
                        Ok(pushed) => {
                            for e in pushed.evicted {
                                prop_assert!(e.priority < priority);
                                let in_flight = leased
                                    .iter()
                                    .any(|(_, i, deadline)| *i == e.item && *deadline > now);
                                prop_assert!(!in_flight, "evicted a leased entry");
                                leave(e.item, &mut queued)?;
                            }
                            queued.insert(n);
                        }
                        Err(PushError::Duplicate { .. }) => prop_assert!(keyed),
                        Err(PushError::Full { .. }) => prop_assert_eq!(queue.len(), capacity),
                        Err(err) => prop_assert!(false, "unexpected {err}"),
                    }
                }
                DeliveryOp::Pop => {
                    if let Some(lease) = queue.pop(now).unwrap() {
                        prop_assert!(lease.attempt <= max_attempts);
                        leased.retain(|(_, i, _)| *i != lease.item);
                        leased.push((lease.id, lease.item, lease.deadline));
                    }
                }
                DeliveryOp::Ack(i) if !leased.is_empty() => {
                    let (id, item, _) = leased.swap_remove(i % leased.len());
                    if queue.ack(id).is_ok() {
                        leave(item, &mut queued)?;
                    }
                }
                DeliveryOp::Nack(i) if !leased.is_empty() => {
                    let (id, _, _) = leased.swap_remove(i % leased.len());
                    let _expired_or_gone = queue.nack(id, now);
                }
                DeliveryOp::Ack(_) | DeliveryOp::Nack(_) => {}
                DeliveryOp::Advance(ms) => now += Duration::from_millis(ms),
                DeliveryOp::ReleaseAll => {
                    queue.release_all();
                    leased.clear();
                }
                DeliveryOp::TakeDead => {
                    for dead in queue.take_dead_letters().unwrap() {
                        prop_assert_eq!(dead.attempts, max_attempts);
                        leave(dead.item, &mut queued)?;
                    }
                }
            }
            prop_assert!(queue.len() <= capacity);
            prop_assert_eq!(queue.len(), queued.len());
        }

        // Drain: everything still queued comes out once, by ack or as a dead letter.
        queue.release_all();
        loop {
            now += Duration::from_secs(3600);
            let mut progressed = false;
            while let Some(lease) = queue.pop(now).unwrap() {
                queue.ack(lease.id).unwrap();
                leave(lease.item, &mut queued)?;
                progressed = true;
            }
            for dead in queue.take_dead_letters().unwrap() {
                leave(dead.item, &mut queued)?;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        prop_assert!(queue.is_empty());
        prop_assert!(queued.is_empty(), "lost: {queued:?}");
    }
}

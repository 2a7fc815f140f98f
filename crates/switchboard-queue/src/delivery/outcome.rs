//! What the delivery queue's operations hand back: pushes, leases, dead letters, failed
//! attempts and processing passes.

use std::time::Instant;

use super::id::EntryId;
use crate::{Evictions, Priority};

/// A successful push.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pushed<T> {
    /// The new entry's id, for [`DeliveryQueue::ack`](crate::DeliveryQueue::ack).
    pub id: EntryId,
    /// Less important entries evicted to make room (usually none).
    pub evicted: Evictions<T>,
}

/// A popped entry, leased to the caller until [`Lease::deadline`]: ack it once delivered,
/// nack it if delivery failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease<T> {
    /// The entry's id.
    pub id: EntryId,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// The entry's priority.
    pub priority: Priority,
    /// A copy of the item; the queue keeps its own until the ack.
    pub item: T,
    /// When the lease expires and counts as a failed attempt.
    pub deadline: Instant,
}

/// An entry that used up its attempts, handed back by [`DeliveryQueue::take_dead_letters`](crate::DeliveryQueue::take_dead_letters).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter<T> {
    /// The entry's id.
    pub id: EntryId,
    /// The entry's priority.
    pub priority: Priority,
    /// Failed attempts made.
    pub attempts: u32,
    /// The dedupe key it was pushed with, if any.
    pub key: Option<String>,
    /// The item.
    pub item: T,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nacked {
    /// The entry is ready again at this time.
    RetryAt(Instant),
    /// The entry used up its attempts: take it with [`DeliveryQueue::take_dead_letters`](crate::DeliveryQueue::take_dead_letters).
    DeadLettered,
}

/// What one [`DeliveryQueue::process`](crate::DeliveryQueue::process) pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Processed {
    /// Entries sent and acked.
    pub delivered: usize,
    /// Entries whose send failed and that will be retried.
    pub retrying: usize,
    /// Entries that became dead letters (their send failed for the last time, or their
    /// lease had expired for the last time).
    pub dead_lettered: usize,
}

//! The delivery queue: a bounded priority queue with leases, retries and dead letters.

mod config;
mod entry;
mod id;
mod lease;
mod outcome;
#[cfg(feature = "persist")]
mod persist;
mod queue;

pub use config::DeliveryConfig;
pub use id::EntryId;
pub use outcome::{DeadLetter, Lease, Nacked, Processed, Pushed};
pub use queue::DeliveryQueue;

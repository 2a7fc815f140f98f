#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod delivery;
mod entry_view;
mod error;
mod evicted;
mod journal;
mod lanes;
mod outbound;
mod priority;
mod stats;
#[cfg(feature = "persist")]
mod store;

pub use backoff::Backoff;
pub use delivery::{
    DeadLetter, DeliveryConfig, DeliveryQueue, EntryId, Lease, Nacked, Processed, Pushed,
};
pub use error::{PushError, QueueError, Result};
pub use evicted::{Evicted, Evictions};
pub use outbound::{OutboundConfig, OutboundQueue};
pub use priority::{PopOrder, Priority};
pub use stats::QueueStats;
#[cfg(feature = "persist")]
pub use store::{Recovery, StoreConfig, SyncPolicy};

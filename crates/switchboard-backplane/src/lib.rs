#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backplane;
mod error;
mod events;
mod history;
mod memory;
mod presence;
#[cfg(feature = "redis")]
mod redis;
mod types;

pub use backplane::{Backplane, BoxBackplane, DynBackplane};
pub use error::{BackplaneError, ErrorDetail, Result};
pub use events::{EventReceiver, EventSink};
pub use history::HistoryOverride;
pub use memory::{DEFAULT_HISTORY_MAX_BYTES, MemoryBackplane, MemoryBackplaneConfig};
#[cfg(feature = "redis")]
pub use redis::{
    DEFAULT_HISTORY_MAX_CHANNEL_BYTES, RedisBackplane, RedisBackplaneConfig, RedisBackplaneStats,
};
pub use types::{
    DegradedCause, Envelope, Epoch, Event, GroupJoin, Health, HealthState, Position,
    PresenceAction, PresenceChange, PresenceEntry, PublishOptions, Published, Recovery,
    ResetReason, Scope, Survey,
};

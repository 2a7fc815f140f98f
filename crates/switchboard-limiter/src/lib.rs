#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bucket;
mod cap;
mod clock;
mod keyed;
mod quota;
mod rejections;

pub use bucket::{AcquireError, NotUntil, TokenBucket};
pub use cap::{
    CapReached, ConnectionCap, ConnectionPermit, DEFAULT_CONNECTIONS_PER_KEY, KeyedConnectionCap,
    KeyedConnectionPermit,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use keyed::{KeyedLimiterConfig, KeyedRateLimiter};
pub use quota::{Quota, QuotaError};
pub use rejections::RejectionWindow;

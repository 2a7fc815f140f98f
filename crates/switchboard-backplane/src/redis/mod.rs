//! The Redis backplane.
//!
//! [`RedisBackplane`] (`handle.rs`) shares its state (`shared.rs`) with two background
//! tasks: the supervisor (`supervisor.rs`: connect, resubscribe, probe, reconnect) and the
//! pump (`dispatch.rs`: pub/sub pushes in, events out). Every Redis call goes through the
//! circuit breaker in `call.rs`; the Lua scripts and their replies are in `scripts.rs`.

mod backplane;
mod call;
mod catch_up;
mod config;
mod continuity;
mod dispatch;
mod failure;
mod fallback;
mod handle;
mod layout;
mod presence;
mod scripts;
mod shared;
mod stats;
mod subscriptions;
mod supervisor;
mod survey;

pub use config::{DEFAULT_HISTORY_MAX_CHANNEL_BYTES, RedisBackplaneConfig};
pub use handle::RedisBackplane;
pub use stats::RedisBackplaneStats;

//! Cross-instance pub/sub for switchboard: per-channel order, bounded history with honest
//! recovery, and presence with TTL. The crate README (written with the implementations)
//! becomes these docs.

mod backplane;
mod error;
mod events;
mod types;

pub use backplane::{Backplane, BoxBackplane, DynBackplane};
pub use error::{BackplaneError, Result};
pub use events::EventReceiver;
pub use types::{
    Envelope, Epoch, Event, Health, HealthState, Position, PresenceAction, PresenceChange,
    PresenceEntry, Published, Recovery, ResetReason, Scope,
};

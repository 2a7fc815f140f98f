//! The background task: it owns the socket, reconnects, restores subscriptions, sends the
//! offline queue and measures the connection.

mod channel_entry;
mod channels;
mod commands;
mod connection;
mod incoming;
mod outgoing;
mod refresh;
mod shared;
mod task;

pub(crate) use shared::{Settings, Shared};
pub(crate) use task::Driver;

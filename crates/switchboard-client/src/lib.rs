#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod command;
mod config;
mod connect;
mod driver;
mod error;
mod events;
mod listener;
mod publish;
mod quality;
mod state;
mod subscription;

pub use client::{Client, ClientBuilder};
pub use config::{Backoff, Heartbeat, QualityConfig, QueueConfig, RECONNECT_BACKOFF};
pub use error::{ClientError, DisconnectReason, PublishError, Result};
pub use events::{ServerSubscriptionEvent, SubscriptionEvent};
pub use publish::{Acked, PublishHandle, PublishOptions, PublishOutcome};
pub use quality::{Quality, QualityClass};
pub use state::ConnectionState;
pub use subscription::Subscription;
pub use switchboard_protocol::{
    ClientId, ErrorCode, Message, Payload, PresenceEvent, PresenceUpdate, Priority, StreamPosition,
};

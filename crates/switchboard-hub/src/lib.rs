#![doc = include_str!("../README.md")]

mod authorizer;
mod config;
mod connection;
mod control;
mod envelope;
mod fanout;
mod hub;
mod identity;
mod ids;
mod lifecycle;
mod namespace;
mod occupancy;
mod outbox;
mod publish;
mod redact;
mod registry;
mod state;
mod subscriptions;
mod users;

pub use authorizer::{Action, Authorizer, ClaimsAuthorizer};
pub use config::HubConfig;
pub use connection::Connection;
pub use control::{ChannelCount, ClusterAnswer, Occupancy};
pub use hub::{History, Hub, HubBuilder, HubError, ServerMessage};
pub use identity::{ChannelPattern, Identity};
pub use lifecycle::{DisconnectReason, HubEvent};
pub use namespace::{NamespaceOptions, namespace_of};
pub use outbox::{Command, Outbox};
pub use publish::PublishReceipt;
pub use redact::Redactor;

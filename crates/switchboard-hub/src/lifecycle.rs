//! Lifecycle events for the embedding service.

use std::fmt;
use std::sync::Arc;

use switchboard_protocol::{ChannelName, CloseCode};

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client closed the connection (or the socket dropped).
    ClientClosed,
    /// The server closed it with this code.
    Closed(CloseCode),
    /// A transport or protocol error ended it.
    Error,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientClosed => f.write_str("client closed"),
            Self::Closed(code) => write!(f, "closed by server: {code}"),
            Self::Error => f.write_str("connection error"),
        }
    }
}

/// Something that happened in the hub, for the embedding service ("tell my backend when a
/// user leaves").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubEvent {
    /// A connection was registered.
    Connected {
        /// The connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
    },
    /// A connection ended.
    Disconnected {
        /// The connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
        /// Why.
        reason: DisconnectReason,
    },
    /// A connection subscribed to a channel.
    Subscribed {
        /// The connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
        /// The channel.
        channel: ChannelName,
    },
    /// A connection unsubscribed from a channel (also on disconnect).
    Unsubscribed {
        /// The connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
        /// The channel.
        channel: ChannelName,
    },
    /// A connection of this instance joined a channel's presence (its first
    /// `presence-update` there, or on subscribing after one for every channel).
    MemberJoined {
        /// The connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
        /// The channel.
        channel: ChannelName,
    },
    /// A connection of this instance left a channel's presence (it unsubscribed or ended).
    MemberLeft {
        /// The connection.
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
        /// The channel.
        channel: ChannelName,
    },
    /// A channel got its first subscriber anywhere in the cluster (told by one instance
    /// only). Only with [`HubConfig::occupancy`](crate::HubConfig::occupancy).
    ChannelOccupied {
        /// The channel.
        channel: ChannelName,
    },
    /// A channel's last subscriber anywhere left (told by one instance only; when the last
    /// ones were on an instance that died, once its memberships lapse). Only with
    /// [`HubConfig::occupancy`](crate::HubConfig::occupancy).
    ChannelVacated {
        /// The channel.
        channel: ChannelName,
    },
    /// A message was published on this instance (by a connection or the server).
    Published {
        /// The publishing connection (`"$server"` for server-side publishes).
        connection_id: Arc<str>,
        /// Its user.
        user_id: Option<Arc<str>>,
        /// The channel.
        channel: ChannelName,
        /// The message id.
        id: String,
        /// The offset it was given.
        offset: u64,
    },
}

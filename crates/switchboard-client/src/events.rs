//! What subscriptions yield: the events of a channel the application subscribed to, and of
//! the subscriptions the server made for the connection.

use switchboard_protocol::{ChannelName, ErrorCode, Message, PresenceEvent, StreamPosition};

/// What a [`Subscription`](crate::Subscription) yields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriptionEvent {
    /// The server confirmed the subscription; messages after `position` follow. The first
    /// event of every subscription (it may be delayed until the client is connected).
    Subscribed {
        /// The channel's position when the subscription started.
        position: StreamPosition,
    },
    /// The subscription was restored after a reconnect, or after a gap in the channel's
    /// offsets (a message lost on the way).
    ///
    /// With `recovered: true` every missed message follows, in order, each exactly once.
    /// With `recovered: false` the messages between the last one delivered and `position`
    /// are lost for good (history trimmed, or the epoch changed): refetch the state this
    /// channel describes. Live messages after `position` follow either way.
    Resubscribed {
        /// Whether nothing was missed.
        recovered: bool,
        /// The channel's position on the server when it was restored.
        position: StreamPosition,
    },
    /// An application message. Messages come in ascending offset, never twice.
    Message(Message),
    /// A presence change in the channel.
    Presence(PresenceEvent),
    /// This subscription did not read fast enough: its buffer was full, and `missed` events
    /// were dropped for it (other subscriptions are not affected). Refetch the state.
    Lagged {
        /// Events dropped.
        missed: u64,
    },
    /// The server refused the subscription with an error retrying cannot fix (`forbidden`,
    /// `bad_request`). The stream ends after this event.
    Refused {
        /// The error code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server ended the subscription itself: `reason` is `"forbidden"` when refreshed
    /// credentials no longer allow the channel, `"server"` when the application's backend
    /// unsubscribed this user (`POST /api/users/{user}/unsubscribe`). The client does not
    /// subscribe again; the stream ends after this event.
    Unsubscribed {
        /// Why, as the server said it.
        reason: String,
    },
}

/// What [`Client::server_subscriptions`](crate::Client::server_subscriptions) yields: the
/// subscriptions the server made for this connection itself (the backend's
/// `POST /api/users/{user}/subscribe`) and their messages. A channel the application also
/// subscribed to with [`Client::subscribe`](crate::Client::subscribe) delivers its messages
/// there, not here.
///
/// Server subscriptions last as long as the connection: after a reconnect each ends with
/// [`Unsubscribed`](Self::Unsubscribed) and reason `"disconnected"` (the backend subscribes
/// the user again if it wants to, as with Centrifugo's server-side subscriptions).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerSubscriptionEvent {
    /// The server subscribed this connection to `channel`; with `recovered: true`, the
    /// messages it missed since the position the backend gave follow.
    Subscribed {
        /// The channel.
        channel: ChannelName,
        /// The channel's position when the subscription started.
        position: StreamPosition,
        /// Whether what was missed follows.
        recovered: bool,
    },
    /// A message of a channel the server subscribed this connection to. Per channel in
    /// ascending offset, never twice.
    Message(Message),
    /// The subscription ended: reason `"server"` (the backend unsubscribed the user),
    /// `"forbidden"` (refreshed credentials no longer allow it) or `"disconnected"` (the
    /// connection it lived on ended).
    Unsubscribed {
        /// The channel.
        channel: ChannelName,
        /// Why.
        reason: String,
    },
}

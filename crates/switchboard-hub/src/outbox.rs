//! Where the hub puts frames for one connection.

use std::sync::Arc;

use switchboard_protocol::{ChannelName, CloseCode, EncodedFrame, Priority, StreamPosition};

/// A connection's outbound side, as the hub sees it: a non-blocking queue of encoded frames
/// and a way to ask for the connection to be closed.
///
/// The transport implements it over its bounded per-connection priority queue, writing the
/// frame straight to the socket when nothing is queued and the socket takes it without
/// blocking. Fan-out calls [`push`](Outbox::push) once per subscriber with the same frame,
/// while holding the channel's lock, so it must be quick and must never block or call back
/// into the hub.
pub trait Outbox: Send + Sync + 'static {
    /// Sends or queues `frame` (borrowed: an implementation that writes it at once needs no
    /// reference of its own; one that queues it clones the shared bytes). When the queue is
    /// full the implementation evicts by priority; when even that cannot make room for a
    /// frame it must not lose, it closes the connection with [`CloseCode::SlowConsumer`].
    fn push(&self, frame: &EncodedFrame, priority: Priority);

    /// [`push`](Outbox::push) for a frame the caller has no further use for: the fan-out
    /// hands its last subscriber the frame itself. An implementation that queues it keeps
    /// it without cloning the shared bytes (for a message with one local subscriber, no
    /// clone is made at all). The default pushes it by reference.
    fn push_owned(&self, frame: EncodedFrame, priority: Priority) {
        self.push(&frame, priority);
    }

    /// Asks for the connection to be closed with `code` after what is already queued.
    fn close(&self, code: CloseCode);

    /// Hands the connection's session an order from the server side (the hub's user
    /// operations, such as [`Hub::subscribe_user`](crate::Hub::subscribe_user)): the session
    /// carries it out on its own task, in order with the client's frames — for
    /// [`Command::Subscribe`] and [`Command::Unsubscribe`] by calling
    /// [`Connection::subscribe_by_server`](crate::Connection::subscribe_by_server) and
    /// [`Connection::unsubscribe_by_server`](crate::Connection::unsubscribe_by_server).
    /// Returns whether it took the order. Like [`push`](Outbox::push), it must be quick and
    /// never block.
    ///
    /// The default takes only [`Command::Disconnect`], as a [`close`](Outbox::close) with
    /// [`CloseCode::Disconnected`] (a custom code and reason are not sent), and refuses the
    /// rest: a transport that can run them overrides it.
    fn command(&self, command: Command) -> bool {
        match command {
            Command::Disconnect { .. } => {
                self.close(CloseCode::Disconnected);
                true
            }
            Command::Subscribe { .. } | Command::Unsubscribe { .. } => false,
        }
    }
}

/// An order from the server side for one connection; see [`Outbox::command`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Subscribe the connection to `channel` as if it had asked (recovering from `since`
    /// when given), without authorization: the server decided. The client is told with
    /// `subscribed` and `"server": true`.
    Subscribe {
        /// The channel.
        channel: ChannelName,
        /// Where the client's stream of the channel stood, for recovery.
        since: Option<StreamPosition>,
    },
    /// End the connection's subscription to `channel`; the client is told with
    /// `unsubscribed` and `"reason": "server"`.
    Unsubscribe {
        /// The channel.
        channel: ChannelName,
    },
    /// Close the connection with `code` and `reason` after what is queued.
    Disconnect {
        /// The close code: 4003 ([`CloseCode::Disconnected`]) unless the caller chose
        /// another in 4000–4999.
        code: u16,
        /// The close reason (at most 123 bytes).
        reason: Arc<str>,
    },
}

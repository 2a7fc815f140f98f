//! Where the hub puts frames for one connection.

use switchboard_protocol::{CloseCode, EncodedFrame, Priority};

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

    /// Asks for the connection to be closed with `code` after what is already queued.
    fn close(&self, code: CloseCode);
}

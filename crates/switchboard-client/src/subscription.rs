//! A subscription: a stream of one channel's events that unsubscribes when dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use switchboard_protocol::{ChannelName, ErrorCode, Message, PresenceEvent, StreamPosition};
use tokio::sync::mpsc;

use crate::driver::Command;

/// What a [`Subscription`] yields.
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

/// The connection task's end of a [`Subscription`].
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) id: u64,
    tx: mpsc::Sender<SubscriptionEvent>,
    lagged: Arc<AtomicU64>,
    /// Whether it has had its `Subscribed` event.
    pub(crate) confirmed: bool,
}

impl Listener {
    /// Hands an event over without waiting; returns `false` once the subscription is gone.
    ///
    /// Once the buffer has been full, every later event is dropped and counted until the
    /// subscription has read everything before the gap and reported it as
    /// [`SubscriptionEvent::Lagged`], so events are never reordered around the gap.
    pub(crate) fn deliver(&self, event: SubscriptionEvent) -> bool {
        if self
            .lagged
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n > 0).then_some(n + 1)
            })
            .is_ok()
        {
            return !self.tx.is_closed();
        }
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lagged.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A stream of one channel's [`SubscriptionEvent`]s, from
/// [`Client::subscribe`](crate::Client::subscribe). It survives reconnects (the client
/// resubscribes and recovers what was missed) and unsubscribes when dropped.
///
/// The stream ends when the client closes, or after [`SubscriptionEvent::Refused`].
pub struct Subscription {
    channel: ChannelName,
    id: u64,
    rx: mpsc::Receiver<SubscriptionEvent>,
    lagged: Arc<AtomicU64>,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    pub(crate) fn new(
        channel: ChannelName,
        id: u64,
        buffer: usize,
        commands: mpsc::UnboundedSender<Command>,
    ) -> (Self, Listener) {
        let (tx, rx) = mpsc::channel(buffer);
        let lagged = Arc::new(AtomicU64::new(0));
        let listener = Listener {
            id,
            tx,
            lagged: Arc::clone(&lagged),
            confirmed: false,
        };
        (
            Self {
                channel,
                id,
                rx,
                lagged,
                commands,
            },
            listener,
        )
    }

    /// The channel.
    #[must_use]
    pub fn channel(&self) -> &ChannelName {
        &self.channel
    }
}

impl Stream for Subscription {
    type Item = SubscriptionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(event)) => Poll::Ready(Some(event)),
            // Everything queued before the gap has been read: report it.
            other => match self.lagged.swap(0, Ordering::AcqRel) {
                0 => other,
                missed => Poll::Ready(Some(SubscriptionEvent::Lagged { missed })),
            },
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // The task may already be gone, in which case there is nothing to unsubscribe from.
        let _ = self.commands.send(Command::Unsubscribe {
            channel: self.channel.clone(),
            listener: self.id,
        });
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("channel", &self.channel)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

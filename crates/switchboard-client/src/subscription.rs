//! A subscription: a stream of one channel's events that unsubscribes when dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures_util::Stream;
use switchboard_protocol::ChannelName;
use tokio::sync::mpsc;

use crate::command::Command;
use crate::events::SubscriptionEvent;
use crate::listener::Listener;

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
        let listener = Listener::new(id, tx, Arc::clone(&lagged));
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

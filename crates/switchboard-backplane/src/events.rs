//! How an instance's events reach their consumer: one attached [`EventSink`], called in
//! order with no queue in between, and any number of [`EventReceiver`] streams.

use std::fmt;
use std::sync::{Arc, OnceLock};

use tokio::sync::broadcast::{self, error::RecvError};

use crate::types::Event;

/// The consumer of an instance's events, called by the backplane itself, in order, as each
/// event happens: the memory backplane calls it from the publishing task, under the
/// channel's lock, so a local publish reaches local subscribers with no queue or task hop;
/// the Redis backplane calls it from the task that reads Redis.
///
/// Attach one with [`Backplane::attach`](crate::Backplane::attach); the hub does. Since it
/// runs inside the backplane, `deliver` must be quick, must never block or await, and must
/// never call back into the backplane.
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event. Per channel, messages come exactly once and in ascending offset,
    /// as [`Backplane`](crate::Backplane) describes; a sink is never sent
    /// [`Event::Lagged`], since nothing is buffered for it.
    fn deliver(&self, event: Event);
}

/// Receives an instance's [`Event`]s. Obtained from
/// [`Backplane::events`](crate::Backplane::events); every receiver sees every event from the
/// moment it was created.
///
/// A receiver that falls more than the configured capacity behind gets one
/// [`Event::Lagged`] in place of what it missed.
#[derive(Debug)]
pub struct EventReceiver {
    rx: broadcast::Receiver<Event>,
}

impl EventReceiver {
    /// Wraps a broadcast receiver (for backplane implementations).
    #[must_use]
    pub fn new(rx: broadcast::Receiver<Event>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the backplane is dropped or shut down.
    ///
    /// # Cancel safety
    /// Cancel safe: an event is never lost when the future is dropped before completing.
    pub async fn recv(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(RecvError::Lagged(missed)) => Some(Event::Lagged { missed }),
            Err(RecvError::Closed) => None,
        }
    }
}

/// Where one instance's events go: its attached sink, if any, and its receivers, if any.
/// Cloning an event costs nothing when only the sink listens.
pub(crate) struct EventOutlet {
    sink: OnceLock<Arc<dyn EventSink>>,
    receivers: broadcast::Sender<Event>,
}

impl EventOutlet {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            sink: OnceLock::new(),
            receivers: broadcast::channel(capacity).0,
        }
    }

    /// Attaches the sink; `false` when one is attached already.
    pub(crate) fn attach(&self, sink: Arc<dyn EventSink>) -> bool {
        self.sink.set(sink).is_ok()
    }

    /// A new receiver of the events from now on.
    pub(crate) fn subscribe(&self) -> EventReceiver {
        EventReceiver::new(self.receivers.subscribe())
    }

    /// Hands `event` to the sink and the receivers.
    pub(crate) fn emit(&self, event: Event) {
        match self.sink.get() {
            Some(sink) => {
                if self.receivers.receiver_count() > 0 {
                    let _ = self.receivers.send(event.clone());
                }
                sink.deliver(event);
            }
            // No receiver right now: nothing to deliver to.
            None => {
                let _ = self.receivers.send(event);
            }
        }
    }
}

impl fmt::Debug for EventOutlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventOutlet")
            .field("sink", &self.sink.get().is_some())
            .field("receivers", &self.receivers.receiver_count())
            .finish()
    }
}

//! The stream of events an instance receives.

use tokio::sync::broadcast::{self, error::RecvError};

use crate::types::Event;

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

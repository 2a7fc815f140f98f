//! How an instance's events reach their consumers: attached [`EventSink`]s, called in
//! order with no queue in between, and any number of [`EventReceiver`] streams.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::types::Event;

/// A consumer of an instance's events, called by the backplane itself, in order, as each
/// event happens: the memory backplane calls it from the publishing task, under the
/// channel's lock, so a local publish reaches local subscribers with no queue or task hop;
/// the Redis backplane calls it from the task that reads Redis.
///
/// Attach one with [`Backplane::attach`](crate::Backplane::attach); the hub does, and
/// several hubs may share one instance, each with its own sink. Since it runs inside the
/// backplane, `deliver` must be quick, must never block or await, and must never call back
/// into the backplane.
pub trait EventSink: Send + Sync + 'static {
    /// Handles one event. Per channel, messages come exactly once and in ascending offset,
    /// as [`Backplane`](crate::Backplane) describes; a sink is never sent
    /// [`Event::Lagged`], since nothing is buffered for it.
    fn deliver(&self, event: Event);

    /// Answers a request another instance (or this one) put to every instance with
    /// [`Backplane::survey`](crate::Backplane::survey); `None` says nothing. The same rules
    /// as [`deliver`](Self::deliver) hold: quick, never blocking or awaiting, never calling
    /// back into the backplane (spawn a task for work that must). The default: no answer.
    fn answer(&self, request: &[u8]) -> Option<Bytes> {
        let _ = request;
        None
    }

    /// Whether this sink has stopped consuming (its owner is gone). The backplane forgets
    /// closed sinks when another is attached. The default: never closed.
    fn is_closed(&self) -> bool {
        false
    }
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

/// Where one instance's events go: its attached sinks, if any, and its receivers, if any.
/// Cloning an event costs nothing when only one sink listens.
pub(crate) struct EventOutlet {
    /// The first sink attached (the usual one: one hub per instance), read without a lock.
    first: OnceLock<Arc<dyn EventSink>>,
    /// Sinks attached after the first, when several hubs share the instance.
    more: RwLock<Vec<Arc<dyn EventSink>>>,
    /// Whether `more` has any sink, so the usual case never takes its lock.
    has_more: AtomicBool,
    receivers: broadcast::Sender<Event>,
}

impl EventOutlet {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            first: OnceLock::new(),
            more: RwLock::new(Vec::new()),
            has_more: AtomicBool::new(false),
            receivers: broadcast::channel(capacity).0,
        }
    }

    /// Attaches a sink; from the next event on it is called with every event. Sinks that
    /// say they are closed are forgotten here.
    pub(crate) fn attach(&self, sink: Arc<dyn EventSink>) {
        if let Err(sink) = self.first.set(sink) {
            let mut more = self.more.write();
            more.retain(|s| !s.is_closed());
            more.push(sink);
            self.has_more.store(true, Ordering::Release);
        }
    }

    /// A new receiver of the events from now on.
    pub(crate) fn subscribe(&self) -> EventReceiver {
        EventReceiver::new(self.receivers.subscribe())
    }

    /// Hands `event` to the sinks and the receivers.
    pub(crate) fn emit(&self, event: Event) {
        if self.receivers.receiver_count() > 0 {
            let _ = self.receivers.send(event.clone());
        }
        if self.has_more.load(Ordering::Acquire) {
            for sink in self.more.read().iter() {
                sink.deliver(event.clone());
            }
        }
        if let Some(sink) = self.first.get() {
            sink.deliver(event);
        }
    }
}

impl EventOutlet {
    /// Puts `request` to every attached sink and adds their answers to `answers`.
    pub(crate) fn answer(&self, request: &[u8], answers: &mut Vec<Bytes>) {
        if let Some(sink) = self.first.get() {
            answers.extend(sink.answer(request));
        }
        if self.has_more.load(Ordering::Acquire) {
            answers.extend(self.more.read().iter().filter_map(|s| s.answer(request)));
        }
    }
}

impl fmt::Debug for EventOutlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventOutlet")
            .field(
                "sinks",
                &(usize::from(self.first.get().is_some()) + self.more.read().len()),
            )
            .field("receivers", &self.receivers.receiver_count())
            .finish()
    }
}

//! The connection task's end of a subscription: it hands events over without ever waiting,
//! and counts what a slow subscription misses.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use crate::events::SubscriptionEvent;

/// The connection task's end of a [`Subscription`](crate::Subscription).
#[derive(Debug)]
pub(crate) struct Listener {
    pub(crate) id: u64,
    tx: mpsc::Sender<SubscriptionEvent>,
    lagged: Arc<AtomicU64>,
    /// Whether it has had its `Subscribed` event.
    pub(crate) confirmed: bool,
}

impl Listener {
    /// The task's end of a subscription that reads `tx`'s channel and reports `lagged`.
    pub(crate) fn new(
        id: u64,
        tx: mpsc::Sender<SubscriptionEvent>,
        lagged: Arc<AtomicU64>,
    ) -> Self {
        Self {
            id,
            tx,
            lagged,
            confirmed: false,
        }
    }

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

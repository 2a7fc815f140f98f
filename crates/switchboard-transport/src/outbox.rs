//! A session's outbound queue, as the hub sees it.

use std::sync::atomic::{AtomicU16, Ordering};

use parking_lot::Mutex;
use switchboard_hub::Outbox;
use switchboard_metrics::{Metrics, PriorityLabel};
use switchboard_protocol::{CloseCode, EncodedFrame, Priority};
use switchboard_queue::{OutboundConfig, OutboundQueue};
use tokio::sync::Notify;

fn queue_priority(p: Priority) -> switchboard_queue::Priority {
    match p {
        Priority::Low => switchboard_queue::Priority::Low,
        Priority::Normal => switchboard_queue::Priority::Normal,
        Priority::High => switchboard_queue::Priority::High,
        Priority::Critical => switchboard_queue::Priority::Critical,
    }
}

fn priority_label(p: switchboard_queue::Priority) -> PriorityLabel {
    PriorityLabel::from_name(p.as_str()).unwrap_or(PriorityLabel::Critical)
}

/// The frames waiting to be written to one connection, bounded, FIFO, evicting by priority.
pub(crate) struct SessionOutbox {
    queue: Mutex<OutboundQueue<EncodedFrame>>,
    wake: Notify,
    /// 0 while open; otherwise the close code requested.
    close: AtomicU16,
    metrics: Metrics,
}

impl SessionOutbox {
    pub(crate) fn new(config: OutboundConfig, metrics: Metrics) -> Self {
        Self {
            queue: Mutex::new(OutboundQueue::new(config)),
            wake: Notify::new(),
            close: AtomicU16::new(0),
            metrics,
        }
    }

    /// Resolves when there is something to write or a close was requested.
    pub(crate) async fn ready(&self) {
        self.wake.notified().await;
    }

    /// Moves up to `max` frames (about `max_bytes`) into `out`.
    pub(crate) fn drain(&self, out: &mut Vec<EncodedFrame>, max: usize, max_bytes: usize) {
        let moved = self.queue.lock().pop_batch(out, max, max_bytes);
        if moved > 0 {
            self.metrics.outbound_dequeued(moved);
        }
    }

    /// Empties the queue when the session ends, keeping the depth gauge honest.
    pub(crate) fn discard(&self) {
        let left = self.queue.lock().clear();
        self.metrics.outbound_dequeued(left);
    }

    /// The close code requested, if any.
    pub(crate) fn close_requested(&self) -> Option<CloseCode> {
        CloseCode::from_code(self.close.load(Ordering::Acquire))
    }
}

impl std::fmt::Debug for SessionOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOutbox")
            .field("close", &self.close_requested())
            .finish_non_exhaustive()
    }
}

impl Outbox for SessionOutbox {
    fn push(&self, frame: EncodedFrame, priority: Priority) {
        if self.close.load(Ordering::Relaxed) != 0 {
            return;
        }
        let result = self.queue.lock().push(frame, queue_priority(priority));
        match result {
            Ok(evictions) => {
                self.metrics.outbound_enqueued(1);
                // Evictions are rare: no atomic operation on this per-subscriber path
                // unless one happened.
                if !evictions.is_empty() {
                    self.metrics.outbound_dequeued(evictions.len());
                    for evicted in &evictions {
                        self.metrics.evicted(priority_label(evicted.priority));
                    }
                }
                self.wake.notify_one();
            }
            Err(_) => {
                // Nothing less important could make room. A lost message leaves a gap in its
                // channel's offsets, which the client sees; a critical one must not be lost,
                // so continuity is declared lost and the client recovers from history.
                self.metrics
                    .evicted(priority_label(queue_priority(priority)));
                if priority == Priority::Critical {
                    self.close(CloseCode::SlowConsumer);
                }
            }
        }
    }

    fn close(&self, code: CloseCode) {
        // The first reason wins.
        let _ = self
            .close
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire);
        self.wake.notify_one();
    }
}

//! A session's outbound side: frames go straight to the socket when nothing is waiting, and
//! into a bounded priority queue, drained by the session's writer, only on back-pressure.
//!
//! Invariants, all under the one lock of [`State`]:
//! - the bytes on the wire are whole frames, one after another: a frame the socket took only
//!   part of is finished (first in `front`) before any other byte is written, and nothing is written
//!   directly while the writer holds a batch (`writing`);
//! - frames leave in the order they were pushed: a direct write happens only when the
//!   queue, `front` and the writer's batch are all empty;
//! - after the close frame is queued (`closed`), no frame is accepted.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::Poll;

use bytes::{Buf as _, Bytes};
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use switchboard_hub::{Command, Outbox};
use switchboard_metrics::Metrics;
use switchboard_protocol::{CloseCode, EncodedFrame, Priority};
use switchboard_queue::{OutboundConfig, OutboundQueue};
use tokio::net::tcp::OwnedWriteHalf;

struct State {
    /// Whole frames not yet started, FIFO, evicting by priority when full.
    queue: OutboundQueue<Bytes>,
    /// What goes out before the queue: first the unwritten rest of a frame the socket took
    /// only part of in a direct write (or, while corked, the whole frame a direct write
    /// would have sent), then control frames (pings, pongs; RFC 6455 lets them come between
    /// messages), which are never evicted, only bounded.
    front: Vec<Bytes>,
    /// The session's writer holds frames it has not finished writing.
    writing: bool,
    /// The session is handling a client frame: what it answers (and, with the memory
    /// backplane, its own copy of what it published) is gathered and written once. Nothing
    /// pushed meanwhile wakes the session: [`SessionOutbox::uncork`] says what is waiting.
    corked: bool,
    /// The close frame, written once everything before it is.
    close_frame: Option<Bytes>,
    /// The close frame is set, or the session ended: nothing more is accepted.
    closed: bool,
    /// A direct write failed: the connection is gone.
    failed: bool,
    /// The socket, while the fan-out may write to it directly (plain TCP, no write delay).
    direct: Option<Arc<OwnedWriteHalf>>,
    /// Orders from the server side not yet carried out. Boxed: few connections ever get
    /// one, and inline the list would cost every connection its size.
    orders: Option<Box<Orders>>,
}

/// What the server side asked of a session.
#[derive(Default)]
struct Orders {
    /// Subscribes and unsubscribes, in order.
    commands: Vec<Command>,
    /// The close code and reason a server disconnect asked for, sent in place of the
    /// standard 4003 frame.
    close: Option<(u16, Arc<str>)>,
}

/// Orders held for one session at most; more are refused (the server API counts only the
/// connections that took one).
const MAX_ORDERS: usize = 64;

/// Bytes for [`SessionOutbox::push_wire`]: the caller's, or handed over.
enum Wire<'a> {
    /// Still the caller's: cloned (a reference count) only if kept.
    Shared(&'a Bytes),
    /// The caller's no more: kept as is.
    Owned(Bytes),
}

impl Wire<'_> {
    fn bytes(&self) -> &Bytes {
        match self {
            Self::Shared(bytes) => bytes,
            Self::Owned(bytes) => bytes,
        }
    }

    fn into_owned(self) -> Bytes {
        match self {
            Self::Shared(bytes) => bytes.clone(),
            Self::Owned(bytes) => bytes,
        }
    }
}

/// The frames on their way to one connection.
pub(crate) struct SessionOutbox {
    state: Mutex<State>,
    wake: Doorbell,
    /// 0 while open; otherwise the close code requested.
    close: AtomicU16,
    /// Commands are waiting in `orders`: the session's wake-ups look at them only then,
    /// without taking the lock.
    ordered: AtomicBool,
    metrics: Metrics,
}

/// The session's wake-up: one waiter (the session), and a ring that finds it busy is kept
/// for its next wait, as [`tokio::sync::Notify`]'s permit is. Cheaper than `Notify` on the
/// path every message takes: no lock and no waiter list, and a wait that ends another way
/// (the session read a frame) leaves nothing to unregister.
#[derive(Default)]
struct Doorbell {
    waker: AtomicWaker,
    rung: AtomicBool,
}

impl Doorbell {
    fn ring(&self) {
        self.rung.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Resolves once a ring, before or during the wait, is taken.
    fn rung(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.rung.swap(false, Ordering::AcqRel) {
                return Poll::Ready(());
            }
            self.waker.register(cx.waker());
            // A ring between the check and the registration found no waker to wake.
            if self.rung.swap(false, Ordering::AcqRel) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

/// Control frames held while the socket is blocked; more are dropped (a peer that floods
/// pings while not reading gets some pongs, not a buffer without bound).
const MAX_CONTROL: usize = 8;

/// What [`SessionOutbox::take_batch`] found.
pub(crate) enum Batch {
    /// Frames to write, in order (whole frames, or the rest of one first), of which this
    /// many are messages (the rest are control frames).
    Ready { messages: usize },
    /// Nothing is waiting.
    Empty,
    /// A direct write failed: the connection is gone.
    Failed,
}

impl SessionOutbox {
    /// An outbox; with `direct`, frames are written straight to that socket whenever nothing
    /// is waiting for it.
    pub(crate) fn new(
        config: OutboundConfig,
        metrics: Metrics,
        direct: Option<Arc<OwnedWriteHalf>>,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                queue: OutboundQueue::new(config),
                front: Vec::new(),
                close_frame: None,
                writing: false,
                corked: false,
                closed: false,
                failed: false,
                direct,
                orders: None,
            }),
            wake: Doorbell::default(),
            close: AtomicU16::new(0),
            ordered: AtomicBool::new(false),
            metrics,
        }
    }

    /// The metrics this outbox records to.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Resolves when there is something to write or a close was requested.
    pub(crate) async fn ready(&self) {
        self.wake.rung().await;
    }

    /// Moves what is waiting into `batch` (which must be empty): the rest of a partly
    /// written frame first, then up to `max` queued frames (about `max_bytes`). While the
    /// batch is being written the fan-out queues instead of writing directly; an empty
    /// result ends that.
    pub(crate) fn take_batch(&self, batch: &mut Vec<Bytes>, max: usize, max_bytes: usize) -> Batch {
        debug_assert!(batch.is_empty());
        let mut state = self.state.lock();
        if state.failed {
            return Batch::Failed;
        }
        // The batch is empty: it takes `front`'s buffer instead of a copy of its frames.
        std::mem::swap(batch, &mut state.front);
        let moved = state.queue.pop_batch(batch, max, max_bytes);
        if moved > 0 {
            self.metrics.outbound_dequeued(moved);
        }
        if state.queue.is_empty()
            && let Some(close) = state.close_frame.take()
        {
            batch.push(close);
        }
        state.writing = !batch.is_empty();
        if state.writing {
            Batch::Ready { messages: moved }
        } else {
            // Idle again: an idle connection holds no buffer here.
            state.front = Vec::new();
            Batch::Empty
        }
    }

    /// Sends or queues bytes that are one or more whole frames: a message, or control
    /// frames when `priority` is `None`. Kept by reference when written at once, else
    /// cloned, unless handed over ([`Wire::Owned`]).
    fn push_wire(&self, wire: Wire<'_>, priority: Option<Priority>) {
        let mut state = self.state.lock();
        if state.closed || state.failed {
            return;
        }
        if !state.writing
            && !state.corked
            && state.front.is_empty()
            && state.queue.is_empty()
            && let Some(socket) = &state.direct
        {
            match socket.try_write(wire.bytes()) {
                Ok(written) => {
                    if written < wire.bytes().len() {
                        // The socket took part of it: the writer finishes the frame when the
                        // socket is writable again, before anything else.
                        let mut rest = wire.into_owned();
                        rest.advance(written);
                        state.front.push(rest);
                        drop(state);
                        self.wake.ring();
                    }
                    if priority.is_some() {
                        self.metrics.messages_sent(1);
                    }
                    return;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => {
                    tracing::debug!(%err, "write failed; the connection is gone");
                    state.failed = true;
                    drop(state);
                    self.wake.ring();
                    return;
                }
            }
        }
        // The writer needs waking only when it has nothing in hand: otherwise it takes
        // this frame with the others (one wake per burst, not per frame).
        // Corked with nothing waiting: the frame is the one a direct write would have sent,
        // and it goes first in the session's write when it uncorks (anything pushed later
        // queues behind it). Never evicted, as a frame handed to the socket is not.
        if state.corked
            && !state.writing
            && state.front.is_empty()
            && state.queue.is_empty()
            && priority.is_some()
        {
            state.front.push(wire.into_owned());
            self.metrics.messages_sent(1);
            return;
        }
        // A corked session looks at the queue when it uncorks: no wake-up to spend.
        let idle =
            !state.writing && !state.corked && state.front.is_empty() && state.queue.is_empty();
        let Some(priority) = priority else {
            if state.front.len() < MAX_CONTROL {
                state.front.push(wire.into_owned());
            }
            drop(state);
            if idle {
                self.wake.ring();
            }
            return;
        };
        let result = state.queue.push(wire.into_owned(), priority);
        drop(state);
        match result {
            Ok(evictions) => {
                self.metrics.outbound_enqueued(1);
                // Evictions are rare: no atomic operation on this per-subscriber path
                // unless one happened.
                if !evictions.is_empty() {
                    self.metrics.outbound_dequeued(evictions.len());
                    for evicted in &evictions {
                        self.metrics.evicted(evicted.priority);
                    }
                }
                if idle {
                    self.wake.ring();
                }
            }
            Err(_) => {
                // Nothing less important could make room. A lost message leaves a gap in its
                // channel's offsets, which the client sees; a critical one must not be lost,
                // so continuity is declared lost and the client recovers from history.
                self.metrics.evicted(priority);
                if priority == Priority::Critical {
                    Outbox::close(self, CloseCode::SlowConsumer);
                }
            }
        }
    }

    /// Holds back direct writes while the session handles a client frame, so that all it
    /// causes for this connection goes out in one write, and the wake-ups of what is queued
    /// meanwhile: the session writes it when it [uncorks](Self::uncork).
    pub(crate) fn cork(&self) {
        self.state.lock().corked = true;
    }

    /// Ends [`cork`](Self::cork). Returns whether the session has something to write (or a
    /// direct write failed, which its writer then reports): it starts the write itself,
    /// instead of waiting for a wake-up of its own.
    pub(crate) fn uncork(&self) -> bool {
        let mut state = self.state.lock();
        state.corked = false;
        !state.writing && (state.failed || !state.front.is_empty() || !state.queue.is_empty())
    }

    /// Sends or queues a control frame (a ping, or what tungstenite answers by itself: pongs
    /// and the reply to a close).
    pub(crate) fn push_control(&self, wire: &Bytes) {
        self.push_wire(Wire::Shared(wire), None);
    }

    /// Queues the close frame after what is waiting, or — when `discard` (the client is the
    /// problem) — in place of it; nothing is accepted after it. A partly written frame is
    /// always finished first, so the close frame starts on a frame boundary.
    pub(crate) fn push_close(&self, wire: Bytes, discard: bool) {
        let mut state = self.state.lock();
        if discard {
            let dropped = state.queue.clear();
            self.metrics.outbound_dequeued(dropped);
        }
        if !state.closed {
            state.closed = true;
            state.close_frame = Some(wire);
        }
        drop(state);
        self.wake.ring();
    }

    /// Empties the queue when the session ends, keeping the depth gauge honest, and lets go
    /// of the socket so that it closes with the session.
    pub(crate) fn discard(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.direct = None;
        state.front = Vec::new();
        state.close_frame = None;
        let left = state.queue.clear();
        drop(state);
        self.metrics.outbound_dequeued(left);
    }

    /// The subscribes and unsubscribes the server side ordered since the last call.
    pub(crate) fn take_commands(&self) -> Vec<Command> {
        if !self.ordered.swap(false, Ordering::AcqRel) {
            return Vec::new();
        }
        self.state
            .lock()
            .orders
            .as_mut()
            .map(|orders| std::mem::take(&mut orders.commands))
            .unwrap_or_default()
    }

    /// The close code and reason a server disconnect asked for, if one did.
    pub(crate) fn custom_close(&self) -> Option<(u16, Arc<str>)> {
        self.state
            .lock()
            .orders
            .as_mut()
            .and_then(|orders| orders.close.take())
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
    fn push(&self, frame: &EncodedFrame, priority: Priority) {
        if self.close.load(Ordering::Relaxed) != 0 {
            return;
        }
        self.push_wire(Wire::Shared(frame.wire()), Some(priority));
    }

    fn push_owned(&self, frame: EncodedFrame, priority: Priority) {
        if self.close.load(Ordering::Relaxed) != 0 {
            return;
        }
        self.push_wire(Wire::Owned(frame.into_wire()), Some(priority));
    }

    fn close(&self, code: CloseCode) {
        // The first reason wins.
        let _ = self
            .close
            .compare_exchange(0, code.code(), Ordering::AcqRel, Ordering::Acquire);
        self.wake.ring();
    }

    fn command(&self, command: Command) -> bool {
        let mut state = self.state.lock();
        if state.closed || state.failed || self.close.load(Ordering::Acquire) != 0 {
            return false;
        }
        let orders = state.orders.get_or_insert_with(Box::default);
        match command {
            Command::Disconnect { code, reason } => {
                orders.close = Some((code, reason));
                drop(state);
                Outbox::close(self, CloseCode::Disconnected);
                return true;
            }
            command if orders.commands.len() < MAX_ORDERS => orders.commands.push(command),
            _ => return false,
        }
        self.ordered.store(true, Ordering::Release);
        drop(state);
        self.wake.ring();
        true
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt;
    use switchboard_protocol::{ChannelName, EventType, MessageDraft, Payload, Sender};

    use super::*;

    fn outbox() -> SessionOutbox {
        SessionOutbox::new(OutboundConfig::default(), Metrics::new(), None)
    }

    fn frame(offset: u64) -> EncodedFrame {
        MessageDraft {
            event: EventType::new("note").unwrap(),
            channel: ChannelName::new("news").unwrap(),
            payload: Payload::null(),
            id: format!("m{offset}"),
            timestamp: 0,
            priority: Priority::Normal,
            from: Sender::server(),
        }
        .encode()
        .finish(offset)
    }

    fn take(outbox: &SessionOutbox) -> Vec<Bytes> {
        let mut batch = Vec::new();
        outbox.take_batch(&mut batch, 64, 1 << 20);
        batch
    }

    /// Whether a wake-up for the session is stored.
    fn woken(outbox: &SessionOutbox) -> bool {
        outbox.ready().now_or_never().is_some()
    }

    #[test]
    fn a_corked_outbox_wakes_no_one_and_uncorking_says_what_waits() {
        let outbox = outbox();
        outbox.cork();
        assert!(!outbox.uncork(), "nothing was pushed");

        outbox.cork();
        Outbox::push(&outbox, &frame(1), Priority::Normal);
        Outbox::push(&outbox, &frame(2), Priority::Low);
        assert!(!woken(&outbox), "the corked session writes when it uncorks");
        assert!(outbox.uncork());
        // The first frame was held in front, the second queued behind it: pushed order.
        assert_eq!(
            take(&outbox),
            vec![frame(1).wire().clone(), frame(2).wire().clone()]
        );
        assert!(take(&outbox).is_empty());
    }

    #[test]
    fn frames_handed_over_go_out_as_pushed_ones_do() {
        let outbox = outbox();
        outbox.cork();
        Outbox::push_owned(&outbox, frame(1), Priority::Normal);
        Outbox::push(&outbox, &frame(2), Priority::Normal);
        Outbox::push_owned(&outbox, frame(3), Priority::Low);
        assert!(!woken(&outbox));
        assert!(outbox.uncork());
        assert_eq!(
            take(&outbox),
            vec![
                frame(1).wire().clone(),
                frame(2).wire().clone(),
                frame(3).wire().clone()
            ]
        );
    }

    #[test]
    fn uncorked_a_frame_handed_over_wakes_the_writer() {
        let outbox = outbox();
        Outbox::push_owned(&outbox, frame(1), Priority::Normal);
        assert!(woken(&outbox));
        assert_eq!(take(&outbox), vec![frame(1).wire().clone()]);
    }

    #[test]
    fn uncorked_a_queued_frame_wakes_the_writer() {
        let outbox = outbox();
        Outbox::push(&outbox, &frame(1), Priority::Normal);
        assert!(woken(&outbox));
        assert_eq!(take(&outbox), vec![frame(1).wire().clone()]);
    }

    #[test]
    fn while_the_writer_holds_a_batch_a_corked_push_queues_behind_it() {
        let outbox = outbox();
        Outbox::push(&outbox, &frame(1), Priority::Normal);
        let mut batch = Vec::new();
        outbox.take_batch(&mut batch, 64, 1 << 20);
        outbox.cork();
        Outbox::push(&outbox, &frame(2), Priority::Normal);
        // The writer finishes its batch and comes back for the rest: no wake-up needed.
        assert!(!outbox.uncork());
        batch.clear();
        assert_eq!(take(&outbox), vec![frame(2).wire().clone()]);
    }
}

//! One client's socket as every task sees it: a frame is written straight from whichever task
//! produced it (the publisher's, for a delivery) with one non-blocking write; only what the
//! socket does not take goes to the pending buffer, which the connection's own task drains
//! when the socket is writable.
//!
//! Invariant: bytes reach the socket in the order [`Peer::send`] was called, because a frame
//! is written directly only while nothing is pending.

use std::cell::{Cell, RefCell};
use std::io;

use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Unsent bytes a client may leave behind before it is disconnected: a bound where the Node
/// and Bun peers have none (8 MiB is minutes of backlog at the benchmarks' rates).
const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;
/// A drained pending buffer larger than this is freed rather than kept for next time.
const KEEP_PENDING_CAPACITY: usize = 64 * 1024;

/// A client connection's socket, shared by every task that writes to it.
#[derive(Debug)]
pub(crate) struct Peer {
    stream: TcpStream,
    /// Bytes accepted by [`Peer::send`] and not yet written; empty almost always.
    pending: RefCell<Vec<u8>>,
    /// Wakes the connection's task when bytes become pending or the peer is closed.
    wake: Notify,
    closed: Cell<bool>,
}

impl Peer {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            pending: RefCell::new(Vec::new()),
            wake: Notify::new(),
            closed: Cell::new(false),
        }
    }

    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes `frame` now if the socket takes it, else queues what is left of it.
    pub(crate) fn send(&self, frame: &[u8]) {
        if self.closed.get() {
            return;
        }
        let mut pending = self.pending.borrow_mut();
        if !pending.is_empty() {
            if pending.len() + frame.len() > MAX_PENDING_BYTES {
                drop(pending);
                self.close();
            } else {
                pending.extend_from_slice(frame);
            }
            return;
        }
        let rest = match self.stream.try_write(frame) {
            Ok(n) if n == frame.len() => return,
            Ok(n) => &frame[n..],
            Err(e) if is_transient(&e) => frame,
            Err(_) => {
                drop(pending);
                self.close();
                return;
            }
        };
        pending.extend_from_slice(rest);
        self.wake.notify_one();
    }

    /// Appends `frame` to the pending bytes without writing, for [`Peer::flush`] to write
    /// with whatever else is queued before it; `true` when nothing was pending (the caller
    /// then owes this peer a flush; otherwise its task is already draining).
    pub(crate) fn queue(&self, frame: &[u8]) -> bool {
        if self.closed.get() {
            return false;
        }
        let mut pending = self.pending.borrow_mut();
        let was_empty = pending.is_empty();
        if pending.len() + frame.len() > MAX_PENDING_BYTES {
            drop(pending);
            self.close();
            return false;
        }
        pending.extend_from_slice(frame);
        was_empty
    }

    /// Writes what [`Peer::queue`] gathered, in one non-blocking write when the socket takes
    /// it all; the rest is left for the connection's task.
    pub(crate) fn flush(&self) {
        if self.closed.get() {
            return;
        }
        if self.drain().is_err() {
            self.close();
        } else if self.has_pending() {
            self.wake.notify_one();
        }
    }

    /// Whether bytes wait for the socket to become writable.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.borrow().is_empty()
    }

    /// Writes pending bytes until none are left or the socket would block.
    ///
    /// # Errors
    ///
    /// The socket's error: the connection is gone.
    pub(crate) fn drain(&self) -> io::Result<()> {
        let mut pending = self.pending.borrow_mut();
        while !pending.is_empty() {
            match self.stream.try_write(&pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(e) if is_transient(&e) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        if pending.capacity() > KEEP_PENDING_CAPACITY {
            *pending = Vec::new();
        }
        Ok(())
    }

    /// Resolves when bytes became pending or the peer was closed since the last call.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Stops every write to this client and wakes its task, which then ends the connection.
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.wake.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

//! Publishes: the offline queue they wait in, and the handles that report their outcome.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant as StdInstant;

use serde::{Deserialize, Serialize};
use switchboard_queue::{DeliveryQueue, EntryId, Lease, Nacked, PushError};
use tokio::sync::{broadcast, oneshot, watch};

use switchboard_protocol::Priority;

use crate::{ClientError, PublishError};

/// A publish acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Acked {
    /// The publish's id.
    pub id: String,
    /// The offset the message was given in its channel.
    pub offset: u64,
}

/// The outcome of one publish, as broadcast by
/// [`Client::publish_outcomes`](crate::Client::publish_outcomes) — including publishes
/// restored from a queue file, which have no [`PublishHandle`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOutcome {
    /// The publish's id.
    pub id: String,
    /// Acknowledged, or why not.
    pub result: Result<Acked, PublishError>,
}

/// A queued publish: a future that resolves once the server acknowledged it, or once it
/// failed for good.
///
/// Dropping the handle does not cancel the publish; its outcome is still broadcast by
/// [`Client::publish_outcomes`](crate::Client::publish_outcomes).
///
/// # Cancel safety
/// Awaiting it is cancel safe: it only observes.
#[must_use = "a publish is sent whether or not its handle is awaited; await it to learn its outcome"]
#[derive(Debug)]
pub struct PublishHandle {
    id: String,
    rx: oneshot::Receiver<Result<Acked, PublishError>>,
}

impl PublishHandle {
    /// The publish's id: the id of the delivered message too.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Future for PublishHandle {
    type Output = Result<Acked, PublishError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|result| result.unwrap_or(Err(PublishError::Closed)))
    }
}

/// What the offline queue holds: the publish's id and its encoded frame. Serializable so a
/// file-backed queue can keep it across restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct QueuedPublish {
    pub(crate) id: String,
    pub(crate) frame: String,
}

/// The offline queue and the handles waiting on it. Shared between the client handles
/// (which push) and the connection task (which sends, acks and retries), behind a mutex
/// never held across an `.await`.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: DeliveryQueue<QueuedPublish>,
    /// Entry of each publish id in the queue (filled at push, or at the first pop for
    /// entries restored from a file).
    entries: HashMap<String, EntryId>,
    waiters: HashMap<String, oneshot::Sender<Result<Acked, PublishError>>>,
    len: watch::Sender<usize>,
    outcomes: broadcast::Sender<PublishOutcome>,
}

impl Outbox {
    pub(crate) fn new(
        queue: DeliveryQueue<QueuedPublish>,
        outcomes: broadcast::Sender<PublishOutcome>,
    ) -> Self {
        let (len, _) = watch::channel(queue.len());
        Self {
            queue,
            entries: HashMap::new(),
            waiters: HashMap::new(),
            len,
            outcomes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn watch_len(&self) -> watch::Receiver<usize> {
        self.len.subscribe()
    }

    fn sync_len(&self) {
        let len = self.queue.len();
        self.len
            .send_if_modified(|old| std::mem::replace(old, len) != len);
    }

    pub(crate) fn push(
        &mut self,
        item: QueuedPublish,
        priority: switchboard_queue::Priority,
    ) -> Result<PublishHandle, ClientError> {
        let id = item.id.clone();
        match self.queue.push_keyed(&id, item, priority) {
            Ok(pushed) => {
                self.entries.insert(id.clone(), pushed.id);
                for evicted in pushed.evicted.iter() {
                    self.resolve(&evicted.item.id, Err(PublishError::Evicted));
                }
                let (tx, rx) = oneshot::channel();
                self.waiters.insert(id.clone(), tx);
                self.sync_len();
                Ok(PublishHandle { id, rx })
            }
            Err(PushError::Storage { source, .. }) => Err(ClientError::Queue(source)),
            // Ids are unique per client, so a duplicate cannot happen; it and a full queue
            // both mean "not queued".
            Err(_) => Err(ClientError::QueueFull),
        }
    }

    /// Reports an outcome to the handle (if any) and to the broadcast.
    fn resolve(&mut self, id: &str, result: Result<Acked, PublishError>) {
        self.entries.remove(id);
        if let Some(waiter) = self.waiters.remove(id) {
            let _ = waiter.send(result.clone());
        }
        let _ = self.outcomes.send(PublishOutcome {
            id: id.to_owned(),
            result,
        });
    }

    /// Leases the next publish to send.
    pub(crate) fn pop(&mut self, now: StdInstant) -> Option<Lease<QueuedPublish>> {
        let lease = match self.queue.pop(now) {
            Ok(lease) => lease,
            Err(err) => {
                tracing::warn!(%err, "offline queue: pop failed");
                None
            }
        };
        self.take_dead_letters();
        if let Some(lease) = &lease {
            self.entries.insert(lease.item.id.clone(), lease.id);
        }
        lease
    }

    /// The server acknowledged publish `id`.
    pub(crate) fn ack(&mut self, id: &str, offset: u64) {
        let Some(&entry) = self.entries.get(id) else {
            return;
        };
        match self.queue.ack(entry) {
            Ok(()) => self.resolve(
                id,
                Ok(Acked {
                    id: id.to_owned(),
                    offset,
                }),
            ),
            Err(err) => tracing::warn!(id, %err, "offline queue: ack failed"),
        }
        self.sync_len();
    }

    /// An attempt of publish `id` failed (no ack in time, or a retryable error).
    pub(crate) fn fail_attempt(&mut self, id: &str, now: StdInstant) {
        let Some(&entry) = self.entries.get(id) else {
            return;
        };
        match self.queue.nack(entry, now) {
            Ok(Nacked::RetryAt(_)) => {}
            Ok(Nacked::DeadLettered) => self.take_dead_letters(),
            // Already counted when the queue expired the lease itself, or gone.
            Err(err) => tracing::trace!(id, %err, "offline queue: nack ignored"),
        }
        self.sync_len();
    }

    /// The server refused publish `id` for good.
    pub(crate) fn refuse(&mut self, id: &str, error: PublishError) {
        let Some(&entry) = self.entries.get(id) else {
            return;
        };
        match self.queue.ack(entry) {
            Ok(()) => self.resolve(id, Err(error)),
            Err(err) => {
                tracing::warn!(id, %err, "offline queue: removing a refused publish failed")
            }
        }
        self.sync_len();
    }

    fn take_dead_letters(&mut self) {
        if self.queue.dead_letters_len() == 0 {
            return;
        }
        match self.queue.take_dead_letters() {
            Ok(letters) => {
                for letter in letters {
                    self.resolve(
                        &letter.item.id,
                        Err(PublishError::Failed {
                            attempts: letter.attempts,
                        }),
                    );
                }
            }
            Err(err) => tracing::warn!(%err, "offline queue: taking dead letters failed"),
        }
        self.sync_len();
    }

    /// The connection is gone: everything in flight is ready again, no attempt counted.
    pub(crate) fn release_all(&mut self) {
        self.queue.release_all();
    }

    /// When a retry becomes due or a lease expires.
    pub(crate) fn next_due(&self) -> Option<StdInstant> {
        self.queue.next_due()
    }

    pub(crate) fn clear(&mut self) -> Result<usize, ClientError> {
        let cleared = self.queue.clear()?;
        let ids: Vec<String> = self.waiters.keys().cloned().collect();
        for id in ids {
            self.resolve(&id, Err(PublishError::Cleared));
        }
        self.entries.clear();
        self.sync_len();
        Ok(cleared)
    }

    /// The client is closing: every waiting handle learns it. The entries stay in the queue
    /// (and in its file, if it has one).
    pub(crate) fn close(&mut self) {
        self.queue.release_all();
        for (_, waiter) in self.waiters.drain() {
            let _ = waiter.send(Err(PublishError::Closed));
        }
    }
}

/// How [`Client::publish_with`](crate::Client::publish_with) publishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// The priority (default normal): in the offline queue, and on the server.
    pub priority: Priority,
    /// Whether the publishing connection's own subscription to the channel skips the
    /// message (Protocol v1 `excludeSelf`; default `false`). Every other subscriber gets it,
    /// and the acknowledgement and offset are as for any publish. A recovery from history
    /// after a reconnect does include it.
    pub exclude_self: bool,
}

impl PublishOptions {
    /// Sets [`PublishOptions::priority`].
    #[must_use]
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets [`PublishOptions::exclude_self`].
    #[must_use]
    pub fn exclude_self(mut self, exclude_self: bool) -> Self {
        self.exclude_self = exclude_self;
        self
    }
}

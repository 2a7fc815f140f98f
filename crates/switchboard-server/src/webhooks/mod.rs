//! Webhooks: the hub's lifecycle events, POSTed in signed JSON batches to `WEBHOOK_URL`,
//! at least once, through a bounded delivery queue (optionally a file) that retries with
//! backoff, so a slow or dead receiver never slows a session.

mod post;

use std::fmt;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use switchboard_hub::{DisconnectReason, HubEvent};
use switchboard_metrics::{Metrics, WebhookResult};
use switchboard_queue::{Backoff, DeliveryConfig, DeliveryQueue, Priority, StoreConfig};
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;

use crate::secret::Secret;
pub(crate) use post::Poster;

/// The most events one POST carries.
const BATCH: usize = 100;
/// The most events waiting at once; past it new events are dropped (and counted).
const CAPACITY: usize = 100_000;
/// Attempts per event before it is given up: about 15 minutes of retries.
const ATTEMPTS: u32 = 10;
/// How long one POST may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A kind of webhook event (`WEBHOOK_EVENTS` names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum WebhookEventType {
    /// `connected`: a connection opened (after authentication).
    Connected,
    /// `disconnected`: a connection ended; with the close `code`.
    Disconnected,
    /// `subscribed`: a connection subscribed to a `channel`.
    Subscribed,
    /// `unsubscribed`: a connection left a `channel` (also when it ended).
    Unsubscribed,
    /// `member_added`: a connection joined a `channel`'s presence.
    MemberAdded,
    /// `member_removed`: a connection left a `channel`'s presence.
    MemberRemoved,
    /// `channel_occupied`: a `channel` got its first subscriber anywhere in the cluster
    /// (sent by one instance).
    ChannelOccupied,
    /// `channel_vacated`: a `channel`'s last subscriber anywhere left (sent by one
    /// instance; for channels whose last subscribers were on an instance that died, once
    /// its claims lapse, within about a minute).
    ChannelVacated,
}

impl WebhookEventType {
    /// Every type.
    pub const ALL: [Self; 8] = [
        Self::Connected,
        Self::Disconnected,
        Self::Subscribed,
        Self::Unsubscribed,
        Self::MemberAdded,
        Self::MemberRemoved,
        Self::ChannelOccupied,
        Self::ChannelVacated,
    ];

    /// The name on the wire and in `WEBHOOK_EVENTS`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Subscribed => "subscribed",
            Self::Unsubscribed => "unsubscribed",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::ChannelOccupied => "channel_occupied",
            Self::ChannelVacated => "channel_vacated",
        }
    }
}

impl fmt::Display for WebhookEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                format!("{s:?} is not a webhook event type ({})", names.join(", "))
            })
    }
}

/// Where and how lifecycle events are sent (`WEBHOOK_URL` and the other `WEBHOOK_*`
/// settings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookConfig {
    /// The receiver: `http://` or `https://` (verified against the Mozilla root
    /// certificates), host, optional port and path.
    pub url: String,
    /// The key of `X-Switchboard-Signature: sha256=<hex HMAC-SHA256 of the body>`;
    /// `None` sends no signature.
    pub secret: Option<Secret>,
    /// The types sent; `None` sends every type.
    pub events: Option<Vec<WebhookEventType>>,
    /// A file that keeps undelivered events across restarts; `None` keeps them in memory.
    pub queue_path: Option<PathBuf>,
    /// A PEM file of CA certificates trusted for an `https://` receiver besides the
    /// Mozilla roots (a private CA).
    pub ca_path: Option<PathBuf>,
}

impl WebhookConfig {
    /// Webhooks to `url`, unsigned, every type, queued in memory.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            secret: None,
            events: None,
            queue_path: None,
            ca_path: None,
        }
    }

    /// Sets [`ca_path`](Self::ca_path).
    #[must_use]
    pub fn ca_path(mut self, path: Option<PathBuf>) -> Self {
        self.ca_path = path;
        self
    }

    /// Sets [`secret`](Self::secret).
    #[must_use]
    pub fn secret(mut self, secret: Option<impl Into<Secret>>) -> Self {
        self.secret = secret.map(Into::into);
        self
    }

    /// Sets [`events`](Self::events).
    #[must_use]
    pub fn events(mut self, events: Option<Vec<WebhookEventType>>) -> Self {
        self.events = events;
        self
    }

    /// Sets [`queue_path`](Self::queue_path).
    #[must_use]
    pub fn queue_path(mut self, path: Option<PathBuf>) -> Self {
        self.queue_path = path;
        self
    }

    /// Whether any channel occupancy type is sent (the hub then tracks occupancy).
    pub(crate) fn wants_occupancy(&self) -> bool {
        self.wants(WebhookEventType::ChannelOccupied)
            || self.wants(WebhookEventType::ChannelVacated)
    }

    fn wants(&self, kind: WebhookEventType) -> bool {
        self.events
            .as_ref()
            .is_none_or(|types| types.contains(&kind))
    }
}

/// One event as it travels (and as the queue file keeps it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Event {
    /// Unique across instances and restarts: `<random node id>-<sequence>`.
    id: String,
    #[serde(rename = "type")]
    kind: String,
    /// When it happened, ms since the Unix epoch.
    time: u64,
    /// The connection it is about; absent in channel events.
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    connection: Option<Who>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    channel: Option<String>,
    /// For `disconnected`: the close code (1006 when the connection was lost without one,
    /// 1000 when the client closed it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

/// The connection an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Who {
    connection_id: String,
    /// `null` for an anonymous connection.
    user_id: Option<String>,
}

/// Names events uniquely.
struct Ids {
    node: String,
    next: AtomicU64,
}

impl Ids {
    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.node,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

fn who(connection_id: &str, user_id: Option<Arc<str>>) -> Option<Who> {
    Some(Who {
        connection_id: connection_id.to_owned(),
        user_id: user_id.map(|u| u.to_string()),
    })
}

/// The webhook event for a hub event, if it makes one.
fn event_of(hub_event: HubEvent, ids: &Ids) -> Option<(WebhookEventType, Event)> {
    let (kind, connection, channel, code) = match hub_event {
        HubEvent::Connected {
            connection_id,
            user_id,
        } => (
            WebhookEventType::Connected,
            who(&connection_id, user_id),
            None,
            None,
        ),
        HubEvent::Disconnected {
            connection_id,
            user_id,
            reason,
        } => {
            let code = match reason {
                DisconnectReason::Closed(code) => code.code(),
                DisconnectReason::ClientClosed => 1000,
                _ => 1006,
            };
            (
                WebhookEventType::Disconnected,
                who(&connection_id, user_id),
                None,
                Some(code),
            )
        }
        HubEvent::Subscribed {
            connection_id,
            user_id,
            channel,
        } => (
            WebhookEventType::Subscribed,
            who(&connection_id, user_id),
            Some(channel),
            None,
        ),
        HubEvent::Unsubscribed {
            connection_id,
            user_id,
            channel,
        } => (
            WebhookEventType::Unsubscribed,
            who(&connection_id, user_id),
            Some(channel),
            None,
        ),
        HubEvent::MemberJoined {
            connection_id,
            user_id,
            channel,
        } => (
            WebhookEventType::MemberAdded,
            who(&connection_id, user_id),
            Some(channel),
            None,
        ),
        HubEvent::MemberLeft {
            connection_id,
            user_id,
            channel,
        } => (
            WebhookEventType::MemberRemoved,
            who(&connection_id, user_id),
            Some(channel),
            None,
        ),
        HubEvent::ChannelOccupied { channel } => {
            (WebhookEventType::ChannelOccupied, None, Some(channel), None)
        }
        HubEvent::ChannelVacated { channel } => {
            (WebhookEventType::ChannelVacated, None, Some(channel), None)
        }
        _ => return None,
    };
    Some((
        kind,
        Event {
            id: ids.next(),
            kind: kind.as_str().to_owned(),
            time: switchboard_protocol::now_ms(),
            connection,
            channel: channel.map(|c| c.as_str().to_owned()),
            code,
        },
    ))
}

/// Why webhooks could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// `WEBHOOK_URL` is not an `http://` or `https://` URL with a host.
    #[error("WEBHOOK_URL: {0}")]
    Url(String),
    /// The queue file could not be opened.
    #[error("WEBHOOK_QUEUE_PATH: {0}")]
    Queue(#[from] switchboard_queue::QueueError),
    /// The CA file could not be read or holds no certificate.
    #[error("WEBHOOK_CA_PATH {}: {reason}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The running webhook tasks; dropping it stops them (a file-backed queue keeps what was
/// not delivered).
#[derive(Debug)]
pub(crate) struct Webhooks {
    /// The forwarder, then the sender.
    tasks: Vec<JoinHandle<()>>,
    /// Tells the forwarder to take what the hub already sent and stop.
    finishing: watch::Sender<bool>,
    /// How many events wait to be delivered.
    depth: watch::Receiver<usize>,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type Queue = Arc<Mutex<DeliveryQueue<Event>>>;

impl Webhooks {
    /// Stops taking events once the hub's last ones are queued, and gives the receiver
    /// until `deadline` to get every queued event; then stops. Returns whether the queue
    /// emptied. Events left are kept by a queue file, and lost (and logged) without one.
    pub(crate) async fn drain(mut self, deadline: tokio::time::Instant) -> bool {
        self.finishing.send_replace(true);
        let forwarder = self.tasks.remove(0);
        let _ = tokio::time::timeout_at(deadline, forwarder).await;
        let emptied = tokio::time::timeout_at(deadline, self.depth.wait_for(|&n| n == 0))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if !emptied {
            let left = *self.depth.borrow();
            tracing::warn!(
                events = left,
                "webhook events not delivered before shutdown (a WEBHOOK_QUEUE_PATH file keeps them)"
            );
        }
        emptied
    }

    /// Starts forwarding `events` to the receiver of `config`.
    ///
    /// # Errors
    /// A bad URL, or a queue file that cannot be opened.
    pub(crate) fn start(
        config: &WebhookConfig,
        events: broadcast::Receiver<HubEvent>,
        metrics: Metrics,
    ) -> Result<Self, WebhookError> {
        let extra_roots = match &config.ca_path {
            Some(path) => post::read_ca(path).map_err(|reason| WebhookError::Ca {
                path: path.clone(),
                reason,
            })?,
            None => Vec::new(),
        };
        let poster = Poster::new(
            &config.url,
            config.secret.clone(),
            REQUEST_TIMEOUT,
            extra_roots,
        )
        .map_err(WebhookError::Url)?;
        let delivery = DeliveryConfig::default()
            .with_capacity(NonZeroUsize::new(CAPACITY).expect("non-zero"))
            .with_max_attempts(NonZeroU32::new(ATTEMPTS).expect("non-zero"))
            .with_lease_timeout(REQUEST_TIMEOUT * 2)
            .with_backoff(
                Backoff::default()
                    .with_base(Duration::from_secs(1))
                    .with_max(Duration::from_secs(300)),
            );
        let queue = match &config.queue_path {
            Some(path) => {
                let (queue, recovery) =
                    DeliveryQueue::open(path, delivery, StoreConfig::default())?;
                tracing::info!(path = %path.display(), restored = queue.len(), ?recovery, "webhook queue opened");
                queue
            }
            None => DeliveryQueue::new(delivery),
        };
        let (depth_tx, depth) = watch::channel(queue.len());
        let depth_tx = Depth {
            metrics,
            tx: Arc::new(depth_tx),
        };
        depth_tx.set(queue.len());
        let queue: Queue = Arc::new(Mutex::new(queue));
        let (finishing, finishing_rx) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let ids = Ids {
            node: format!("{:016x}", rand::random::<u64>()),
            next: AtomicU64::new(0),
        };
        let forward = tokio::spawn(forward(
            Forwarder {
                config: config.clone(),
                ids,
                queue: Arc::clone(&queue),
                wake: Arc::clone(&wake),
                depth: depth_tx.clone(),
            },
            events,
            finishing_rx,
        ));
        let send = tokio::spawn(send(poster, queue, wake, depth_tx));
        Ok(Self {
            tasks: vec![forward, send],
            finishing,
            depth,
        })
    }
}

/// The queue depth, in the metric and for [`Webhooks::drain`].
#[derive(Clone)]
struct Depth {
    metrics: Metrics,
    tx: Arc<watch::Sender<usize>>,
}

impl Depth {
    fn set(&self, events: usize) {
        self.metrics.webhook_queue_depth(events);
        self.tx.send_replace(events);
    }
}

/// What the forwarder needs.
struct Forwarder {
    config: WebhookConfig,
    ids: Ids,
    queue: Queue,
    wake: Arc<Notify>,
    depth: Depth,
}

impl Forwarder {
    /// Queues the webhook event `hub_event` makes, if wanted. Never waits on the receiver.
    fn take(&self, hub_event: HubEvent) {
        let Some((kind, event)) = event_of(hub_event, &self.ids) else {
            return;
        };
        if !self.config.wants(kind) {
            return;
        }
        let mut queue = self.queue.lock();
        match queue.push(event, Priority::Normal) {
            Ok(_) => {
                self.depth.set(queue.len());
                drop(queue);
                self.wake.notify_one();
            }
            Err(err) => {
                drop(queue);
                tracing::warn!(%err, "a webhook event was dropped");
                self.depth.metrics.webhook_events(WebhookResult::Dropped, 1);
            }
        }
    }

    fn lagged(&self, missed: u64) {
        tracing::warn!(
            missed,
            "webhook events dropped: the hub's event stream outran the webhook queue"
        );
        self.depth
            .metrics
            .webhook_events(WebhookResult::Dropped, missed);
    }
}

/// Hub events → the queue, until the hub is gone or the server finishes (then what the hub
/// already sent is taken first).
async fn forward(
    forwarder: Forwarder,
    mut events: broadcast::Receiver<HubEvent>,
    mut finishing: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            received = events.recv() => match received {
                Ok(event) => forwarder.take(event),
                Err(broadcast::error::RecvError::Lagged(missed)) => forwarder.lagged(missed),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = finishing.wait_for(|&finishing| finishing) => {
                loop {
                    match events.try_recv() {
                        Ok(event) => forwarder.take(event),
                        Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                            forwarder.lagged(missed);
                        }
                        Err(_) => return,
                    }
                }
            }
        }
    }
}

/// The queue → the receiver, a batch at a time; failed batches wait for their retry.
async fn send(poster: Poster, queue: Queue, wake: Arc<Notify>, depth: Depth) {
    let metrics = depth.metrics.clone();
    loop {
        let (batch, due) = {
            let mut queue = queue.lock();
            let now = std::time::Instant::now();
            let mut batch = Vec::new();
            while batch.len() < BATCH {
                match queue.pop(now) {
                    Ok(Some(lease)) => batch.push(lease),
                    Ok(None) => break,
                    Err(err) => {
                        tracing::error!(%err, "the webhook queue file failed");
                        break;
                    }
                }
            }
            (batch, queue.next_due())
        };
        if batch.is_empty() {
            let until = due.map_or_else(
                || tokio::time::Instant::now() + Duration::from_secs(3600),
                tokio::time::Instant::from_std,
            );
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
            continue;
        }
        let body = serde_json::json!({
            "events": batch.iter().map(|lease| &lease.item).collect::<Vec<_>>(),
        });
        let body = serde_json::to_vec(&body).expect("events always serialize");
        let sent = poster.post(body.into()).await;
        let mut queue = queue.lock();
        let now = std::time::Instant::now();
        let count = batch.len() as u64;
        match sent {
            Ok(()) => {
                for lease in &batch {
                    if let Err(err) = queue.ack(lease.id) {
                        tracing::error!(%err, "the webhook queue file failed");
                    }
                }
                metrics.webhook_events(WebhookResult::Delivered, count);
            }
            Err(reason) => {
                tracing::warn!(
                    reason,
                    events = count,
                    "a webhook batch failed; it will be retried"
                );
                for lease in &batch {
                    if let Err(err) = queue.nack(lease.id, now) {
                        tracing::error!(%err, "the webhook queue file failed");
                    }
                }
                metrics.webhook_events(WebhookResult::Retried, count);
                match queue.take_dead_letters() {
                    Ok(dead) if !dead.is_empty() => {
                        let ids: Vec<&str> = dead.iter().map(|d| d.item.id.as_str()).collect();
                        tracing::error!(
                            events = dead.len(),
                            ?ids,
                            "webhook events given up after {ATTEMPTS} failed attempts"
                        );
                        metrics.webhook_events(WebhookResult::DeadLettered, dead.len() as u64);
                    }
                    Ok(_) => {}
                    Err(err) => tracing::error!(%err, "the webhook queue file failed"),
                }
            }
        }
        depth.set(queue.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_parse_by_their_wire_names_only() {
        for kind in WebhookEventType::ALL {
            assert_eq!(kind.as_str().parse::<WebhookEventType>(), Ok(kind));
        }
        let err = "channel_gone".parse::<WebhookEventType>().unwrap_err();
        assert!(err.contains("member_removed"), "{err}");
    }

    #[test]
    fn hub_events_become_webhook_events_with_unique_ids_and_close_codes() {
        let ids = Ids {
            node: "n".into(),
            next: AtomicU64::new(0),
        };
        let (kind, event) = event_of(
            HubEvent::Disconnected {
                connection_id: "c1".into(),
                user_id: Some("ada".into()),
                reason: DisconnectReason::Closed(switchboard_protocol::CloseCode::Disconnected),
            },
            &ids,
        )
        .unwrap();
        assert_eq!(kind, WebhookEventType::Disconnected);
        assert_eq!((event.id.as_str(), event.code), ("n-0", Some(4003)));
        assert_eq!(event.connection.unwrap().user_id.as_deref(), Some("ada"));
        let (_, next) = event_of(
            HubEvent::Connected {
                connection_id: "c2".into(),
                user_id: None,
            },
            &ids,
        )
        .unwrap();
        assert_eq!(next.id, "n-1");
        let json = serde_json::to_value(&next).unwrap();
        assert_eq!(json["type"], "connected");
        assert_eq!(json["userId"], serde_json::Value::Null);
        assert!(json.get("channel").is_none() && json.get("code").is_none());
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), next);

        // Channel events name no connection.
        let (kind, vacated) = event_of(
            HubEvent::ChannelVacated {
                channel: switchboard_protocol::ChannelName::new("room").unwrap(),
            },
            &ids,
        )
        .unwrap();
        assert_eq!(kind, WebhookEventType::ChannelVacated);
        let json = serde_json::to_value(&vacated).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "n-2", "type": "channel_vacated", "time": vacated.time, "channel": "room"})
        );
        assert_eq!(serde_json::from_value::<Event>(json).unwrap(), vacated);
    }
}

//! A steady stream of numbered publishes from one raw connection, recorded with their acks.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::WAIT;
use crate::continuity::PublishLog;
use crate::ws_client::{WsClient, WsEvent};

/// The event type of stream messages.
const EVENT: &str = "seq.test";
/// How long a reconnect attempt may take, and the pause between attempts.
const ATTEMPT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(50);
/// Reconnect attempts before the stream gives up.
const MAX_ATTEMPTS: u32 = 400;

/// Publishes `{"p": <name>, "seq": n}` with id `<name>-<n>` on one channel every
/// `interval`, from n = 1, without waiting for acks; acks and errors go to its
/// [`PublishLog`]. If its connection ends it reconnects and goes on (publishes in flight
/// then stay unacknowledged: not required to arrive).
pub struct PublishStream {
    name: String,
    log: PublishLog,
    sent: Arc<AtomicU64>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for PublishStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishStream")
            .field("name", &self.name)
            .field("sent", &self.sent())
            .finish_non_exhaustive()
    }
}

impl PublishStream {
    /// Connects to `url` and starts publishing to `channel`.
    ///
    /// # Panics
    /// When the first connection fails.
    pub async fn start(name: &str, url: &str, channel: &str, interval: Duration) -> Self {
        let client = WsClient::connect(url).await;
        let log = PublishLog::new();
        let sent = Arc::new(AtomicU64::new(0));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(
            Stream {
                name: name.to_owned(),
                url: url.to_owned(),
                channel: channel.to_owned(),
                interval,
                log: log.clone(),
                sent: Arc::clone(&sent),
            },
            client,
            stop_rx,
        ));
        Self {
            name: name.to_owned(),
            log,
            sent,
            stop,
            task: Some(task),
        }
    }

    /// Its name (the `p` of its payloads).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log.
    #[must_use]
    pub fn log(&self) -> &PublishLog {
        &self.log
    }

    /// The sequence number of the last publish sent so far (0: none yet).
    #[must_use]
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    /// Stops publishing, waits (at most [`WAIT`]) for the answers to what is in flight,
    /// closes the connection and returns the log.
    pub async fn stop(&mut self) -> PublishLog {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT + WAIT, task).await;
        }
        self.log.clone()
    }
}

impl Drop for PublishStream {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

struct Stream {
    name: String,
    url: String,
    channel: String,
    interval: Duration,
    log: PublishLog,
    sent: Arc<AtomicU64>,
}

async fn run(stream: Stream, mut client: WsClient, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(stream.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                seq += 1;
                let id = format!("{}-{seq}", stream.name);
                stream.log.sent(&stream.name, seq, &id, &stream.channel);
                stream.sent.store(seq, Ordering::Release);
                let payload = json!({"p": stream.name, "seq": seq});
                let frame = json!({"type": EVENT, "channel": stream.channel, "payload": payload, "id": id});
                if !client.try_send(&frame).await {
                    let Some(again) = reconnect(&stream.url, &mut stop).await else { return };
                    client = again;
                }
            }
            event = client.next_event() => {
                if !record(&stream.log, event) {
                    let Some(again) = reconnect(&stream.url, &mut stop).await else { return };
                    client = again;
                }
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    // Drain the answers to what is in flight.
    let deadline = tokio::time::Instant::now() + WAIT;
    while stream.log.unanswered() > 0 {
        match tokio::time::timeout_at(deadline, client.next_event()).await {
            Ok(event) => {
                if !record(&stream.log, event) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client.close().await;
}

/// Records an answer; `false` when the connection ended.
fn record(log: &PublishLog, event: WsEvent) -> bool {
    match event {
        WsEvent::Frame(frame) => {
            let id = frame["id"].as_str().unwrap_or_default();
            match frame["type"].as_str() {
                Some("ack") => log.acked(id, frame["offset"].as_u64().unwrap_or(0)),
                Some("error") => log.failed(id, frame["code"].as_str().unwrap_or("?")),
                _ => {}
            }
            true
        }
        WsEvent::Closed(_) | WsEvent::Ended(_) => false,
    }
}

/// A new connection to `url`; `None` when stopped or after [`MAX_ATTEMPTS`] failures.
async fn reconnect(url: &str, stop: &mut watch::Receiver<bool>) -> Option<WsClient> {
    for _ in 0..MAX_ATTEMPTS {
        if *stop.borrow() {
            return None;
        }
        if let Ok(client) = WsClient::try_connect(url, ATTEMPT).await {
            return Some(client);
        }
        tokio::select! {
            () = tokio::time::sleep(RETRY) => {}
            _ = stop.changed() => {}
        }
    }
    None
}

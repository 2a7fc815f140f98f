//! A subscriber that behaves as the protocol tells a client to — reconnect after a close,
//! re-subscribe with `since`, recover gaps — and records everything it sees.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::WAIT;
use crate::continuity::{ClientPosition, Delivery, SubscriberEvent, SubscriberLog, Verdict};
use crate::ws_client::{WsClient, WsEvent};

/// How long one reconnect attempt may take, and the pause between attempts (there is no
/// signal for "the server is reachable again").
const ATTEMPT: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(50);
/// Reconnect attempts before the subscriber gives up (and its log says so).
const MAX_ATTEMPTS: u32 = 400;

/// A raw protocol subscriber of one channel in a background task. After a close (4008, or
/// any other) it reconnects to its URL and subscribes with `since` set to the last offset
/// and epoch it delivered; after a gap in offsets it re-subscribes with `since` on the same
/// connection — as `switchboard-client` does. Every `subscribed`, message (with whether a
/// conforming client delivers it) and close goes to its [`SubscriberLog`].
pub struct RecoveringSubscriber {
    log: SubscriberLog,
    url: Arc<Mutex<String>>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for RecoveringSubscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveringSubscriber")
            .field("name", &self.log.name())
            .field("channel", &self.log.channel())
            .finish_non_exhaustive()
    }
}

impl RecoveringSubscriber {
    /// Connects to `url`, subscribes to `channel`, and returns once subscribed.
    ///
    /// # Panics
    /// When the first subscription does not succeed within [`WAIT`].
    pub async fn start(name: &str, url: &str, channel: &str) -> Self {
        let log = SubscriberLog::new(name, channel);
        let url = Arc::new(Mutex::new(url.to_owned()));
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(log.clone(), Arc::clone(&url), stop_rx));
        log.wait_until("the first subscription", WAIT, |events| {
            events
                .iter()
                .any(|e| matches!(e, SubscriberEvent::Subscribed { .. }))
        })
        .await;
        Self {
            log,
            url,
            stop,
            task: Some(task),
        }
    }

    /// Its log.
    #[must_use]
    pub fn log(&self) -> &SubscriberLog {
        &self.log
    }

    /// Where the next reconnect goes.
    pub fn set_url(&self, url: &str) {
        url.clone_into(&mut self.url.lock().expect("url lock"));
    }

    /// Stops it (closing its connection) and returns its log.
    pub async fn stop(&mut self) -> SubscriberLog {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, task).await;
        }
        self.log.clone()
    }
}

impl Drop for RecoveringSubscriber {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

async fn run(log: SubscriberLog, url: Arc<Mutex<String>>, mut stop: watch::Receiver<bool>) {
    let channel = log.channel().to_owned();
    let mut position = ClientPosition::default();
    let mut attempts = 0u32;
    loop {
        let target = url.lock().expect("url lock").clone();
        let mut client = tokio::select! {
            connected = WsClient::try_connect(&target, ATTEMPT) => match connected {
                Ok(client) => client,
                Err(e) => {
                    attempts += 1;
                    if attempts >= MAX_ATTEMPTS {
                        log.push(SubscriberEvent::Closed {
                            at: Instant::now(),
                            code: None,
                            reason: format!("gave up reconnecting to {target}: {e}"),
                        });
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => continue,
                        _ = stop.changed() => return,
                    }
                }
            },
            _ = stop.changed() => return,
        };
        attempts = 0;
        let ended = session(&log, &channel, &mut client, &mut position, &mut stop).await;
        match ended {
            Some((code, reason)) => log.push(SubscriberEvent::Closed {
                at: Instant::now(),
                code,
                reason,
            }),
            None => {
                client.close().await;
                return;
            }
        }
    }
}

/// One connection: subscribe, then read until it closes (`Some`: code and reason) or the
/// subscriber is stopped (`None`).
async fn session(
    log: &SubscriberLog,
    channel: &str,
    client: &mut WsClient,
    position: &mut ClientPosition,
    stop: &mut watch::Receiver<bool>,
) -> Option<(Option<u16>, String)> {
    let mut requests = 0u64;
    let Some(first) = send_subscribe(client, channel, position, &mut requests).await else {
        return Some((None, "cannot send the subscribe".into()));
    };
    let mut pending = Some(first);
    loop {
        let event = tokio::select! {
            event = client.next_event() => event,
            _ = stop.changed() => return None,
        };
        let frame = match event {
            WsEvent::Frame(frame) => frame,
            WsEvent::Closed(code) => return Some((code, "close frame".into())),
            WsEvent::Ended(e) => return Some((None, e)),
        };
        match frame["type"].as_str() {
            Some("subscribed") if pending.as_ref().is_some_and(|p| p.0 == frame["id"]) => {
                let (_, since) = pending.take().expect("checked above");
                let offset = frame["offset"].as_u64().unwrap_or(0);
                let epoch = frame["epoch"].as_str().unwrap_or_default().to_owned();
                let recovered = frame["recovered"] == true;
                position.subscribed(offset, &epoch, recovered);
                log.push(SubscriberEvent::Subscribed {
                    at: Instant::now(),
                    since,
                    offset,
                    epoch,
                    recovered,
                });
            }
            Some("error") if pending.as_ref().is_some_and(|p| p.0 == frame["id"]) => {
                // `unavailable` and the like: the connection stays; try again on a new one.
                return Some((None, format!("subscribe refused: {frame}")));
            }
            Some(
                "subscribed" | "unsubscribed" | "error" | "ack" | "pong" | "presence"
                | "presence-update" | "welcome",
            ) => {}
            Some(_) if frame["channel"] == channel => {
                let delivery = Delivery::from_frame(frame);
                if pending.is_some() {
                    // Between an unsubscribe and the new `subscribed` a client delivers
                    // nothing: the recovery brings it.
                    log.push(SubscriberEvent::Message {
                        delivery,
                        verdict: Err("arrived while re-subscribing".into()),
                    });
                    continue;
                }
                let verdict = match position.on_message(delivery.offset) {
                    Verdict::Deliver => Ok(()),
                    Verdict::Stale { last } => Err(format!(
                        "offset {} is not after the last delivered offset {last}: dropped as a duplicate",
                        delivery.offset
                    )),
                    Verdict::Gap { expected } => Err(format!(
                        "gap: expected offset {expected}, got {}; re-subscribing with since",
                        delivery.offset
                    )),
                };
                let gap = verdict.as_ref().is_err_and(|why| why.starts_with("gap"));
                log.push(SubscriberEvent::Message { delivery, verdict });
                if gap {
                    if !client
                        .try_send(&json!({"type": "unsubscribe", "channel": channel}))
                        .await
                    {
                        return Some((None, "send failed".into()));
                    }
                    let Some(again) =
                        send_subscribe(client, channel, position, &mut requests).await
                    else {
                        return Some((None, "cannot send the subscribe".into()));
                    };
                    pending = Some(again);
                }
            }
            Some(_) => {}
            None => {}
        }
    }
}

/// Sends a subscribe with the position's `since`; returns its id and that `since`.
async fn send_subscribe(
    client: &mut WsClient,
    channel: &str,
    position: &ClientPosition,
    requests: &mut u64,
) -> Option<(Value, Option<(u64, String)>)> {
    *requests += 1;
    let id = Value::String(format!("sub-{requests}"));
    let since = position.since();
    let mut frame = json!({"type": "subscribe", "channel": channel, "id": id});
    if let Some((offset, epoch)) = &since {
        frame["since"] = json!({"offset": offset, "epoch": epoch});
    }
    client.try_send(&frame).await.then_some((id, since))
}

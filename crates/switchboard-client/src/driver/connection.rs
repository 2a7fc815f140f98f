//! Connections, one after another: connect, serve the session, reconnect after a backoff,
//! and stop for good.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use rand::RngExt;
use switchboard_protocol::{ChannelName, ClientFrame, Ping, Welcome};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;

use super::channel_entry::Phase;
use super::task::{Driver, Flow};
use crate::connect::{self, Ws};
use crate::{ConnectionState, DisconnectReason, ServerSubscriptionEvent};

/// How long a closing client waits for its close frame to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a session ended.
enum Ended {
    Lost(DisconnectReason),
    Close(Option<oneshot::Sender<()>>),
}

impl Driver {
    /// Runs until the client closes or gives up: connects, serves each session, and
    /// reconnects after a backoff.
    pub(crate) async fn run(mut self) {
        let mut attempt: u32 = 0;
        loop {
            self.set_state(ConnectionState::Connecting { attempt });
            let settings = Arc::clone(&self.settings);
            let connecting = connect::connect(&settings.endpoint);
            tokio::pin!(connecting);
            let result = loop {
                tokio::select! {
                    result = &mut connecting => break result,
                    command = self.commands.recv() => {
                        if let Flow::Close(done) = self.on_command(command) {
                            return self.finish_closed(done);
                        }
                    }
                }
            };
            let reason = match result {
                Ok((ws, welcome)) => {
                    attempt = 0;
                    match self.session(ws, welcome).await {
                        Ended::Lost(reason) => reason,
                        Ended::Close(done) => return self.finish_closed(done),
                    }
                }
                Err(reason) => reason,
            };
            tracing::debug!(%reason, attempt, "switchboard connection down");
            if !reason.should_reconnect() {
                return self.finish(
                    ConnectionState::Error {
                        reason,
                        attempts: attempt,
                    },
                    None,
                );
            }
            attempt = attempt.saturating_add(1);
            let backoff = self.settings.backoff;
            if self
                .settings
                .max_reconnect_attempts
                .is_some_and(|max| attempt > max.get())
            {
                return self.finish(
                    ConnectionState::Error {
                        reason,
                        attempts: attempt - 1,
                    },
                    None,
                );
            }
            let nth = NonZeroU32::new(attempt).unwrap_or(NonZeroU32::MIN);
            let mut delay = backoff.delay(nth, self.rng.random::<f64>());
            if let DisconnectReason::Rejected {
                retry_after: Some(after),
                ..
            } = &reason
            {
                delay = delay.max(*after);
            }
            self.set_state(ConnectionState::Reconnecting {
                attempt,
                delay,
                reason,
            });
            let wait = tokio::time::sleep(delay);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    command = self.commands.recv() => {
                        if let Flow::Close(done) = self.on_command(command) {
                            return self.finish_closed(done);
                        }
                    }
                }
            }
        }
    }

    fn finish_closed(self, done: Option<oneshot::Sender<()>>) {
        self.finish(
            ConnectionState::Disconnected {
                reason: DisconnectReason::ClientClosed,
            },
            done,
        );
    }

    /// Stops for good: handles learn it, subscriptions end.
    fn finish(mut self, state: ConnectionState, done: Option<oneshot::Sender<()>>) {
        self.connected = false;
        self.shared.closed.store(true, Ordering::Release);
        self.shared.outbox.lock().close();
        self.publish_quality();
        self.set_state(state);
        // Subscriptions end, and the queue file is released before `close` returns.
        drop(self);
        if let Some(done) = done {
            let _ = done.send(());
        }
    }

    /// Serves one connection until it ends.
    async fn session(&mut self, mut ws: Ws, welcome: Welcome) -> Ended {
        let now = Instant::now();
        self.connected = true;
        self.quality.connected(now, self.connected_before);
        self.connected_before = true;
        self.paused_until = None;
        self.requests.clear();
        self.refresh_at = self.refresh_due(welcome.expires_at, now);
        self.set_state(ConnectionState::Connected {
            connection_id: welcome.connection_id,
            user_id: welcome.user_id,
        });
        self.publish_quality();
        let channels: Vec<ChannelName> = self.channels.keys().cloned().collect();
        for channel in &channels {
            self.send_subscribe(channel);
        }
        if let Some(update) = &self.presence {
            self.out
                .push(ClientFrame::PresenceUpdate(update.clone()).encode());
        }

        let heartbeat = self.settings.heartbeat;
        let mut next_ping = now;
        // Tokens fetched for a refresh come back here (the fetch runs as a task of its own,
        // so a slow token service never holds up the connection).
        let (fetched_tx, mut fetched) = mpsc::channel::<Option<String>>(1);
        let ended = loop {
            if let Err(reason) = self.pump(&mut ws).await {
                break Ended::Lost(reason);
            }
            let deadline = self.next_deadline(next_ping);
            tokio::select! {
                incoming = ws.next() => match incoming {
                    Some(Ok(WsMessage::Text(text))) => self.on_text(text.as_str()),
                    Some(Ok(WsMessage::Close(frame))) => break Ended::Lost(connect::closed(frame)),
                    // Pings are answered by tungstenite; binary frames are not in the protocol.
                    Some(Ok(_)) => {}
                    Some(Err(err)) => break Ended::Lost(connect::lost(&err)),
                    None => break Ended::Lost(DisconnectReason::ConnectionLost {
                        message: "the connection ended".into(),
                    }),
                },
                command = self.commands.recv() => {
                    if let Flow::Close(done) = self.on_command(command) {
                        close_socket(&mut ws).await;
                        break Ended::Close(done);
                    }
                }
                () = self.shared.wake.notified() => {}
                Some(token) = fetched.recv() => self.send_refresh(token),
                () = tokio::time::sleep_until(deadline) => {
                    let now = Instant::now();
                    if self.refresh_at.is_some_and(|at| at <= now) {
                        self.refresh_at = None;
                        if let Some(source) = self.settings.endpoint.token.source() {
                            let (source, fetched_tx) = (Arc::clone(source), fetched_tx.clone());
                            tokio::spawn(async move {
                                let _ = fetched_tx.send(source().await).await;
                            });
                        }
                    }
                    if now >= next_ping {
                        let id = self.quality.ping(now);
                        self.out.push(ClientFrame::Ping(Ping { id: Some(id), timestamp: Some(switchboard_protocol::now_ms()) }).encode());
                        next_ping = now + heartbeat.interval;
                    }
                    let missed = self.quality.expire(now);
                    self.publish_quality();
                    if heartbeat.dead_after.is_some_and(|limit| missed >= limit.get()) {
                        break Ended::Lost(DisconnectReason::Unresponsive { missed });
                    }
                    self.retry_subscriptions(now);
                }
            }
        };

        self.connected = false;
        self.inflight.clear();
        self.out.clear();
        self.requests.clear();
        self.shared.outbox.lock().release_all();
        self.quality.disconnected();
        for entry in self.channels.values_mut() {
            entry.phase = Phase::Idle;
            entry.retry_at = None;
        }
        // Server subscriptions lived on this connection.
        for (channel, _) in self.server_channels.drain() {
            let _ = self
                .shared
                .server_events
                .send(ServerSubscriptionEvent::Unsubscribed {
                    channel,
                    reason: "disconnected".into(),
                });
        }
        self.publish_quality();
        ended
    }

    fn next_deadline(&self, next_ping: Instant) -> Instant {
        let now = Instant::now();
        let mut deadline = next_ping;
        let mut consider = |at: Option<Instant>| {
            if let Some(at) = at {
                deadline = deadline.min(at);
            }
        };
        consider(self.quality.next_expiry());
        consider(self.refresh_at);
        consider(self.inflight.values().min().copied());
        consider(self.channels.values().filter_map(|c| c.retry_at).min());
        if self.paused_until.is_some() {
            consider(self.paused_until);
        } else if self.inflight.len() < self.settings.queue.max_in_flight.get() {
            // A retry becoming due; never in the past, so a queue that cannot pop does not
            // spin.
            let due = self.shared.outbox.lock().next_due();
            consider(due.map(|at| Instant::from_std(at).max(now + Duration::from_millis(1))));
        }
        deadline
    }
}

/// Closes the socket politely, waiting at most [`CLOSE_TIMEOUT`].
async fn close_socket(ws: &mut Ws) {
    let frame = CloseFrame {
        code: WsCloseCode::Normal,
        reason: "client closed".into(),
    };
    // The server may already be gone; the client closes either way.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}

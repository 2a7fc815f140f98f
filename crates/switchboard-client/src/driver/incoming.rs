//! Frames from the server: each handed to the part it concerns, and errors answering a
//! request (a subscribe, a publish or a refresh).

use std::time::Duration;

use switchboard_protocol::{ErrorCode, ErrorFrame, ServerFrame};
use tokio::time::Instant;

use super::channel_entry::Phase;
use super::refresh::{REFRESH_ID, REFRESH_RETRY};
use super::task::Driver;
use crate::{PublishError, SubscriptionEvent};

impl Driver {
    pub(super) fn on_text(&mut self, text: &str) {
        let frame = match ServerFrame::decode(text) {
            Ok(frame) => frame,
            Err(err) => {
                tracing::debug!(%err, "ignoring an undecodable server frame");
                return;
            }
        };
        match frame {
            ServerFrame::Subscribed(subscribed) if subscribed.server && subscribed.id.is_none() => {
                self.on_server_subscribed(subscribed);
            }
            ServerFrame::Subscribed(subscribed) => self.on_subscribed(&subscribed),
            ServerFrame::Unsubscribed(unsubscribed) => self.on_unsubscribed(unsubscribed),
            ServerFrame::Message(message) => self.on_message(message),
            ServerFrame::PresenceUpdate(event) => self.on_presence(event),
            ServerFrame::Ack(ack) => {
                self.inflight.remove(&ack.id);
                self.shared.outbox.lock().ack(&ack.id, ack.offset);
            }
            ServerFrame::Pong(pong) => {
                if let Some(id) = pong.id
                    && self.quality.pong(&id, Instant::now())
                {
                    self.publish_quality();
                }
            }
            ServerFrame::Error(error) => self.on_error(error),
            ServerFrame::Excluded(excluded) => self.on_excluded(&excluded),
            ServerFrame::Refreshed(refreshed) => {
                tracing::debug!(expires_at = refreshed.expires_at, "token refreshed");
                self.refresh_at = self.refresh_due(refreshed.expires_at, Instant::now());
            }
            _ => {}
        }
    }

    pub(super) fn on_error(&mut self, error: ErrorFrame) {
        let Some(id) = error.id.clone() else {
            tracing::debug!(code = %error.code, message = error.message, "server error");
            return;
        };
        let now = Instant::now();
        if id.starts_with(REFRESH_ID) {
            // The connection keeps its token until it expires (then 4001 and a reconnect
            // with a fresh one); meanwhile, try again.
            tracing::warn!(code = %error.code, message = error.message, "token refresh refused");
            if error.code != ErrorCode::Unsupported {
                self.refresh_at = Some(now + REFRESH_RETRY);
            }
            return;
        }
        let retry_after = error.retry_after_ms.map(Duration::from_millis);
        if let Some(channel) = self.requests.remove(&id) {
            let Some(entry) = self.channels.get_mut(&channel) else {
                return;
            };
            if !matches!(&entry.phase, Phase::Pending(pending) if *pending == id) {
                return;
            }
            if error.code.is_retryable() {
                entry.phase = Phase::Idle;
                entry.retry_at = Some(now + retry_after.unwrap_or(self.settings.backoff.base));
            } else if let Some(entry) = self.channels.remove(&channel) {
                let event = SubscriptionEvent::Refused {
                    code: error.code,
                    message: error.message,
                };
                for listener in entry.listeners {
                    listener.deliver(event.clone());
                }
            }
            return;
        }
        if self.inflight.remove(&id).is_some() {
            let mut outbox = self.shared.outbox.lock();
            if error.code.is_retryable() {
                if error.code == ErrorCode::RateLimited {
                    self.paused_until = Some(now + retry_after.unwrap_or(Duration::from_secs(1)));
                }
                outbox.fail_attempt(&id, now.into_std());
            } else {
                outbox.refuse(
                    &id,
                    PublishError::Refused {
                        code: error.code,
                        message: error.message,
                    },
                );
            }
        }
    }
}

//! What the task writes: queued publishes up to the in-flight limit, then every frame
//! waiting, and publishes not acknowledged in time counted as failed attempts.

use futures_util::SinkExt;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use super::task::Driver;
use crate::DisconnectReason;
use crate::connect::{self, Ws};

impl Driver {
    /// Sends what is due: failed attempts first counted, then queued publishes up to the
    /// in-flight limit, then every frame waiting in `out`.
    pub(super) async fn pump(&mut self, ws: &mut Ws) -> Result<(), DisconnectReason> {
        let now = Instant::now();
        self.expire_inflight(now);
        if self.paused_until.is_some_and(|until| until <= now) {
            self.paused_until = None;
        }
        if self.paused_until.is_none() {
            let max = self.settings.queue.max_in_flight.get();
            let deadline = now + self.settings.queue.ack_timeout;
            let mut outbox = self.shared.outbox.lock();
            while self.inflight.len() < max {
                let Some(lease) = outbox.pop(now.into_std()) else {
                    break;
                };
                self.inflight.insert(lease.item.id, deadline);
                self.out.push(lease.item.frame);
            }
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.out);
        let write = async {
            for frame in frames {
                ws.feed(WsMessage::text(frame)).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(self.settings.endpoint.connect_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(connect::lost(&err)),
            Err(_) => Err(DisconnectReason::ConnectionLost {
                message: "writing to the server timed out".into(),
            }),
        }
    }

    /// Publishes not acknowledged in time count as failed attempts.
    pub(super) fn expire_inflight(&mut self, now: Instant) {
        if !self.inflight.values().any(|&deadline| deadline <= now) {
            return;
        }
        let expired: Vec<String> = self
            .inflight
            .iter()
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut outbox = self.shared.outbox.lock();
        for id in expired {
            self.inflight.remove(&id);
            outbox.fail_attempt(&id, now.into_std());
        }
    }
}

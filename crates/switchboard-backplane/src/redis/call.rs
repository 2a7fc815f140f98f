//! The call path: every Redis call runs with the command timeout and counts towards the
//! circuit breaker, which opens (drops the connection and degrades the health) after a lost
//! connection or too many failed calls.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use redis::aio::MultiplexedConnection;

use super::scripts::{Break, CallError};
use super::shared::{Live, Shared};
use crate::error::{BackplaneError, Result};
use crate::types::{DegradedCause, Health, HealthState};

impl Shared {
    /// Why calls cannot reach Redis right now.
    pub(super) fn unavailable(&self) -> BackplaneError {
        let detail = self.health.borrow().detail.clone();
        BackplaneError::Unavailable(if detail.is_empty() {
            "redis: call failed".into()
        } else {
            detail
        })
    }

    /// One call that only Redis can answer (no local fallback): `Unavailable` while it is
    /// unreachable, `Protocol` when its reply makes no sense.
    pub(super) async fn on_redis<T, Fut>(
        &self,
        call: impl FnOnce(MultiplexedConnection) -> Fut,
    ) -> Result<T>
    where
        Fut: Future<Output = Result<T, CallError>>,
    {
        self.check_open()?;
        let Some(live) = self.live() else {
            return Err(self.unavailable());
        };
        match self.call(live.generation, call(live.conn.clone())).await {
            Ok(value) => Ok(value),
            Err(CallError::Protocol(reason)) => Err(BackplaneError::Protocol(reason)),
            Err(_) => Err(self.unavailable()),
        }
    }

    /// Runs one Redis call with the command timeout, and counts failures towards opening the
    /// circuit.
    pub(super) async fn call<T>(
        &self,
        generation: u64,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        let timeout = self.config.command_timeout;
        let result = match tokio::time::timeout(timeout, call).await {
            Ok(result) => result,
            Err(_) => Err(CallError::TimedOut(format!(
                "redis: no reply within {timeout:?}"
            ))),
        };
        match &result {
            Ok(_) => self.failures.store(0, Ordering::Relaxed),
            Err(CallError::Broken(reason)) => {
                self.break_connection(
                    generation,
                    Break::new(DegradedCause::ConnectionLost, reason),
                );
            }
            Err(error @ (CallError::Transient(reason) | CallError::TimedOut(reason))) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.config.failure_threshold.get() {
                    let cause = match error {
                        CallError::TimedOut(_) => DegradedCause::Timeout,
                        _ => DegradedCause::CommandFailed,
                    };
                    self.break_connection(
                        generation,
                        Break::new(
                            cause,
                            format!("redis: circuit open after {failures} failed calls ({reason})"),
                        ),
                    );
                }
            }
            Err(CallError::Protocol(_)) => {}
        }
        result
    }

    /// Opens the circuit: drops connection `generation` (if still installed) so calls go
    /// local, says so in the health, and tells the supervisor to reconnect.
    pub(super) fn break_connection(&self, generation: u64, why: Break) {
        let dropped = {
            let mut st = self.state.lock();
            match &st.conn {
                Some(live) if live.generation == generation => st.conn.take(),
                _ => None,
            }
        };
        if dropped.is_some() {
            self.set_degraded(&why);
        }
        drop(dropped);
        // Full means the supervisor already has reasons to reconnect.
        let _ = self.broken.try_send((generation, why));
    }

    /// Degraded for `why`; `true` when that changed the health.
    pub(super) fn set_degraded(&self, why: &Break) -> bool {
        let changed = self.health.send_if_modified(|h| {
            if h.state == HealthState::Down
                || (h.state == HealthState::Degraded && h.detail == why.reason)
            {
                return false;
            }
            if h.state != HealthState::Degraded {
                h.since = SystemTime::now();
            }
            h.state = HealthState::Degraded;
            h.detail.clone_from(&why.reason);
            h.cause = Some(why.cause);
            true
        });
        if changed {
            tracing::warn!(reason = %why.reason, "redis backplane degraded: publishing locally only");
        }
        changed
    }

    pub(super) fn set_up(&self) {
        let changed = self.health.send_if_modified(|h| {
            if h.state == HealthState::Degraded {
                *h = Health::up();
                true
            } else {
                false
            }
        });
        if changed {
            tracing::info!("redis backplane up");
        }
    }

    /// Sends `SUBSCRIBE` or `UNSUBSCRIBE` for one channel.
    pub(super) async fn pubsub_command(&self, live: &Live, channel: &str, subscribe: bool) -> bool {
        let name = self.keys.pubsub(channel);
        let mut conn = live.conn.clone();
        let call = async {
            if subscribe {
                conn.subscribe(&name).await
            } else {
                conn.unsubscribe(&name).await
            }
            .map_err(CallError::from)
        };
        self.call(live.generation, call).await.is_ok()
    }
}

/// `PUBLISH channel payload` on `live`'s connection: how many subscribers heard it.
pub(super) fn publish_raw(
    live: &Live,
    channel: String,
    payload: Vec<u8>,
) -> impl Future<Output = Result<i64, CallError>> + use<> {
    let mut conn = live.conn.clone();
    async move {
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async::<i64>(&mut conn)
            .await
            .map_err(CallError::from)
    }
}

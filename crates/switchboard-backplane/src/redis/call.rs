//! The call path: every Redis call runs with the command timeout and counts towards the
//! circuit breaker, which opens (drops the connection and degrades the health) after a lost
//! connection or too many failed calls.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use redis::aio::MultiplexedConnection;

use super::failure::{Break, CallError, Failure};
use super::shared::{Live, Shared};
use crate::error::{BackplaneError, ErrorDetail, Result};
use crate::types::{DegradedCause, Health, HealthState};

impl Shared {
    /// Why calls cannot reach Redis right now, in the health's words. Its source is the
    /// Redis error of `failure` (the call that just failed), else the one that degraded the
    /// health.
    pub(super) fn unavailable(&self, failure: Option<Failure>) -> BackplaneError {
        let detail = self.health.borrow().detail.clone();
        let message = if detail.is_empty() {
            "redis: call failed".into()
        } else {
            detail
        };
        let source = failure
            .and_then(|failure| failure.source)
            .or_else(|| self.degraded_by.lock().clone());
        BackplaneError::Unavailable(ErrorDetail::caused_by(message, source))
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
            return Err(self.unavailable(None));
        };
        match self.call(live.generation, call(live.conn.clone())).await {
            Ok(value) => Ok(value),
            Err(CallError::Protocol(failure)) => Err(failure.into_protocol()),
            Err(error) => Err(self.unavailable(Some(error.into_failure()))),
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
            Err(_) => Err(CallError::TimedOut(
                format!("redis: no reply within {timeout:?}").into(),
            )),
        };
        match &result {
            Ok(_) => self.failures.store(0, Ordering::Relaxed),
            Err(CallError::Broken(failure)) => {
                self.break_connection(
                    generation,
                    Break::after(DegradedCause::ConnectionLost, failure.clone()),
                );
            }
            Err(error @ (CallError::Transient(failure) | CallError::TimedOut(failure))) => {
                let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
                if failures >= self.config.failure_threshold.get() {
                    let cause = match error {
                        CallError::TimedOut(_) => DegradedCause::Timeout,
                        _ => DegradedCause::CommandFailed,
                    };
                    self.break_connection(
                        generation,
                        Break::after(
                            cause,
                            Failure {
                                reason: format!(
                                    "redis: circuit open after {failures} failed calls ({})",
                                    failure.reason
                                ),
                                source: failure.source.clone(),
                            },
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
            self.degraded_by.lock().clone_from(&why.source);
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
            *self.degraded_by.lock() = None;
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

#[cfg(test)]
mod tests {
    use std::error::Error;
    use std::time::Duration;

    use redis::RedisError;

    use crate::{Backplane, BackplaneError, RedisBackplane, RedisBackplaneConfig};

    #[tokio::test]
    async fn a_call_to_a_closed_port_fails_unavailable_with_the_refused_connection_as_source() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("address").port()
        };
        let config = RedisBackplaneConfig::default()
            .connect_timeout(Duration::from_millis(500))
            .command_timeout(Duration::from_millis(500))
            .backoff_initial(Duration::from_secs(60))
            .backoff_max(Duration::from_secs(60));
        let backplane = RedisBackplane::connect(&format!("redis://127.0.0.1:{port}"), config)
            .await
            .expect("an unreachable Redis is not a configuration error");

        let err = backplane
            .lease_acquire("lease", "holder", 1, Duration::from_secs(1))
            .await
            .expect_err("nothing listens on the port");

        assert!(matches!(err, BackplaneError::Unavailable(_)), "{err}");
        assert!(err.is_retryable());
        let redis = err
            .source()
            .and_then(|source| source.downcast_ref::<RedisError>())
            .expect("the source is the RedisError");
        assert!(redis.is_connection_refusal(), "{redis}");
        let io = redis
            .source()
            .expect("the RedisError's source is the io error");
        assert!(io.to_string().contains("refused"), "{io}");
        backplane.shutdown().await;
    }

    #[tokio::test]
    async fn an_invalid_url_is_a_config_error_with_the_redis_error_as_source() {
        let err = RedisBackplane::connect("http://not-redis", RedisBackplaneConfig::default())
            .await
            .expect_err("not a Redis URL");
        assert!(matches!(err, BackplaneError::Config(_)), "{err}");
        assert!(
            err.to_string()
                .starts_with("invalid backplane configuration: invalid Redis URL: ")
        );
        assert!(
            err.source()
                .is_some_and(|s| s.downcast_ref::<RedisError>().is_some())
        );
    }
}

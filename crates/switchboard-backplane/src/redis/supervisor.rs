//! The supervisor: the background task that connects, resubscribes, catches up, probes and
//! reconnects with backoff. (The other task, the pump, is in `dispatch.rs`.)
//!
//! The circuit breaker: while a connection is installed the circuit is closed and calls go to
//! Redis. A lost connection, a missing probe echo, or `failure_threshold` consecutive failed
//! calls open it: the connection is dropped and calls go local (publishes) or fail fast
//! (reads) without waiting on Redis. Each reconnection attempt, after a backoff with full
//! jitter, is the half-open trial; success closes the circuit again.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::aio::AsyncPushSender;
use redis::{AsyncConnectionConfig, PushInfo, PushKind};
use switchboard_queue::Backoff;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::failure::{Break, CallError, Failure};
use super::scripts;
use super::shared::{Live, Shared};
use crate::types::{DegradedCause, rand_u64};

/// How many channels one `SUBSCRIBE` carries when resubscribing after a reconnect.
const SUBSCRIBE_BATCH: usize = 256;

/// The waits between connection attempts: switchboard's one [`Backoff`] schedule, doubling
/// from `backoff_initial` up to `backoff_max` with full jitter, over the failures in a row.
#[derive(Debug)]
pub(crate) struct Reconnects {
    schedule: Backoff,
    failures: u32,
}

impl Reconnects {
    pub(crate) const fn new(initial: Duration, max: Duration) -> Self {
        Self {
            schedule: Backoff::new(initial, 2.0, max, 1.0),
            failures: 0,
        }
    }

    /// The number of the next failure.
    fn next(&self) -> NonZeroU32 {
        NonZeroU32::new(self.failures.saturating_add(1)).unwrap_or(NonZeroU32::MAX)
    }

    /// The cap of the next delay.
    #[cfg(test)]
    fn cap(&self) -> Duration {
        self.schedule.cap(self.next())
    }

    pub(crate) fn next_delay(&mut self) -> Duration {
        let failure = self.next();
        self.failures = failure.get();
        self.schedule.delay(failure, unit_random())
    }

    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// A random number in `[0, 1)`, from the top 53 bits of [`rand_u64`] (exact in an `f64`).
fn unit_random() -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    #[allow(clippy::cast_precision_loss)] // 53 bits: exact
    let bits = (rand_u64() >> 11) as f64;
    bits * SCALE
}

/// Connects, keeps the connection checked, and reconnects, until stopped.
pub(super) async fn supervise(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
    mut broken: mpsc::Receiver<(u64, Break)>,
    ready: oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut backoff = Reconnects::new(shared.config.backoff_initial, shared.config.backoff_max);
    let every = shared.config.presence_sweep;
    let mut sweep = tokio::time::interval_at(Instant::now() + every, every);
    sweep.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut generation = 0u64;
    let mut connected_before = false;
    loop {
        generation += 1;
        let established = tokio::select! {
            result = establish(&shared, generation) => result,
            _ = stop.changed() => return,
        };
        match established {
            Ok(()) => {
                if connected_before {
                    shared.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("redis backplane reconnected and resubscribed");
                }
                connected_before = true;
                backoff.reset();
                let connected =
                    run_connected(&shared, generation, &mut broken, &mut sweep, &mut ready);
                let why = tokio::select! {
                    why = connected => why,
                    _ = stop.changed() => return,
                };
                shared.break_connection(generation, why);
            }
            Err(failure) => {
                let why = Break::after(DegradedCause::ConnectionLost, failure);
                shared.set_degraded(&why);
                shared.break_connection(generation, why);
            }
        }
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let delay = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Connects, subscribes the probe channel and every subscribed channel, installs the
/// connection, catches every channel up and re-announces this instance's members.
async fn establish(shared: &Arc<Shared>, generation: u64) -> Result<(), Failure> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(shared.config.connect_timeout))
        .set_response_timeout(Some(shared.config.command_timeout))
        .set_push_sender(push_sender(shared, generation));
    let timeout = shared.config.connect_timeout + shared.config.command_timeout;
    let connect = shared
        .client
        .get_multiplexed_async_connection_with_config(&config);
    let conn = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return Err(Failure::redis(e)),
        Err(_) => return Err(format!("redis: no connection within {timeout:?}").into()),
    };
    let live = Live { generation, conn };
    let mut probe = live.conn.clone();
    // The probe, survey requests and replies to this instance's surveys.
    let own_channels = [
        shared.probe_channel.clone(),
        shared.control_channel.clone(),
        shared.reply_channel.clone(),
    ];
    let subscribe_probe = async move {
        probe
            .subscribe(&own_channels)
            .await
            .map_err(CallError::from)
    };
    shared
        .call(generation, subscribe_probe)
        .await
        .map_err(CallError::into_failure)?;

    // Installed: calls go to Redis from now on. The local fallback ends with the outage; the
    // channels that used it reset when they catch up below.
    let (channels, published_locally) = {
        let mut st = shared.state.lock();
        st.conn = Some(live.clone());
        st.local.clear();
        let published_locally: Vec<Arc<str>> = st.published_locally.iter().cloned().collect();
        let channels: Vec<String> = st.subs.keys().map(|c| shared.keys.pubsub(c)).collect();
        (channels, published_locally)
    };
    shared.failures.store(0, Ordering::Relaxed);
    // Messages delivered only here are not in the shared history: a new epoch for those
    // channels makes every instance reset its subscribers (`recovered: false`) instead of
    // leaving them silently without those messages.
    for channel in &published_locally {
        let mut conn = live.conn.clone();
        let bump = scripts::new_epoch(&mut conn, &shared.keys, &shared.limits, channel);
        shared
            .call(generation, bump)
            .await
            .map_err(CallError::into_failure)?;
        // Forgotten only once done: a connection lost midway bumps the rest next time.
        shared.state.lock().published_locally.remove(channel);
    }
    for batch in channels.chunks(SUBSCRIBE_BATCH) {
        let mut conn = live.conn.clone();
        let subscribe = async move { conn.subscribe(batch).await.map_err(CallError::from) };
        shared
            .call(generation, subscribe)
            .await
            .map_err(CallError::into_failure)?;
    }
    shared.sync_all().await;
    shared.restore_presence().await;
    Ok(())
}

/// Forwards connection `generation`'s pushes to the pump, without blocking the connection.
fn push_sender(shared: &Shared, generation: u64) -> impl AsyncPushSender {
    let pushes = shared.pushes.clone();
    let broken = shared.broken.clone();
    let gate = Arc::clone(&shared.gate);
    move |info: PushInfo| -> Result<(), ()> {
        match pushes.try_send((generation, info)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full((_, info))) => {
                if info.kind == PushKind::Disconnection {
                    let why = Break::new(DegradedCause::ConnectionLost, "redis: connection lost");
                    let _ = broken.try_send((generation, why));
                } else {
                    // Every channel catches up from history once the pump has room.
                    gate.overflow.store(true, Ordering::Relaxed);
                    gate.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Err(TrySendError::Closed(_)) => Err(()),
        }
    }
}

/// Probes and sweeps while connected; returns why the connection is considered lost.
async fn run_connected(
    shared: &Arc<Shared>,
    generation: u64,
    broken: &mut mpsc::Receiver<(u64, Break)>,
    sweep: &mut Interval,
    ready: &mut Option<oneshot::Sender<()>>,
) -> Break {
    let every = shared.config.probe_interval;
    let mut probe = tokio::time::interval(every);
    probe.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_echo = Instant::now();
    loop {
        tokio::select! {
            notice = broken.recv() => match notice {
                Some((g, why)) if g == generation => return why,
                Some(_) => {}
                None => return Break::new(DegradedCause::ConnectionLost, "redis: backplane stopping"),
            },
            () = shared.echo.notified() => {
                let echo = *shared.last_echo.lock();
                if let Some((g, at)) = echo
                    && g == generation
                {
                    last_echo = at;
                    shared.set_up();
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
            }
            _ = probe.tick() => {
                let silent = last_echo.elapsed();
                if silent > 2 * every {
                    shared.counters.probe_failures.fetch_add(1, Ordering::Relaxed);
                    return Break::new(
                        DegradedCause::LivenessProbeFailed,
                        format!("redis: probe echo missing for {} ms", silent.as_millis()),
                    );
                }
                if let Some(why) = send_probe(shared, generation).await {
                    return why;
                }
            }
            _ = sweep.tick() => shared.sweep().await,
        }
    }
}

/// Publishes a probe; `Some(reason)` when that shows the subscription is gone.
async fn send_probe(shared: &Shared, generation: u64) -> Option<Break> {
    let live = shared.live()?;
    let mut conn = live.conn.clone();
    let channel = shared.probe_channel.clone();
    let every = shared.config.probe_interval;
    let publish = async move {
        let mut command = redis::cmd("PUBLISH");
        command.arg(&channel).arg(generation);
        let publish = command.query_async::<i64>(&mut conn);
        match tokio::time::timeout(every, publish).await {
            Ok(result) => result.map_err(CallError::from),
            Err(_) => Err(CallError::TimedOut(
                format!("redis: probe not accepted within {every:?}").into(),
            )),
        }
    };
    match shared.call(generation, publish).await {
        // Redis itself says nobody listens on our probe channel: the subscription is dead.
        Ok(0) => {
            shared
                .counters
                .probe_failures
                .fetch_add(1, Ordering::Relaxed);
            Some(Break::new(
                DegradedCause::LivenessProbeFailed,
                "redis: probe channel lost its subscription",
            ))
        }
        Ok(_) => None,
        // Counted by `call`; a missing echo or the failure threshold decides.
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_caps_double_up_to_the_maximum_and_delays_stay_below_the_cap() {
        let mut backoff = Reconnects::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut caps = Vec::new();
        for _ in 0..8 {
            let cap = backoff.cap();
            caps.push(cap.as_millis());
            assert!(backoff.next_delay() <= cap);
        }
        assert_eq!(caps, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.cap(), Duration::from_millis(100));
    }
}

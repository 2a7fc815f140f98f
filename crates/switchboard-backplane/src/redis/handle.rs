//! The handle: connecting, starting the background tasks, stats and shutdown.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;
use redis::{IntoConnectionInfo, ProtocolVersion};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::config::RedisBackplaneConfig;
use super::dispatch;
use super::layout::Keys;
use super::scripts::Limits;
use super::shared::{PushGate, Shared, State, millis};
use super::stats::{Counters, RedisBackplaneStats};
use super::supervisor;
use super::survey::Surveys;
use crate::error::{BackplaneError, ErrorDetail, Result};
use crate::events::EventOutlet;
use crate::history::HistoryBudget;
use crate::types::{Health, HealthState, rand_u64};

/// The Redis backplane: channels shared by every instance connected to one Redis.
///
/// See the crate documentation for the key layout, the Lua scripts, how each instance
/// delivers every message exactly once, and what happens while Redis is unreachable.
/// Clones share one instance; its background tasks end when the last clone is dropped or
/// [`shutdown`](Self::shutdown) is called.
#[derive(Clone)]
pub struct RedisBackplane {
    pub(super) handle: Arc<Handle>,
}

/// The one instance every clone shares.
pub(super) struct Handle {
    pub(super) shared: Arc<Shared>,
    /// Dropping it tells the background tasks to end.
    pub(super) stop: Mutex<Option<watch::Sender<()>>>,
    pub(super) tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        // The URL is not kept: it may hold a password.
        f.debug_struct("RedisBackplane")
            .field("node", &shared.node)
            .field("prefix", &shared.config.prefix)
            .field("health", &shared.health.borrow().state)
            .field("subscriptions", &shared.state.lock().subs.len())
            .finish()
    }
}

impl RedisBackplane {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` with the `redis-tls` feature) and starts the background tasks.
    ///
    /// It waits for the first connection attempt (at most about `connect_timeout` plus two
    /// `command_timeout`s). When Redis is unreachable it still returns, degraded: publishes
    /// stay local and it keeps reconnecting.
    ///
    /// # Errors
    /// [`BackplaneError::Config`] for an invalid URL or configuration; nothing else.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub async fn connect(url: &str, config: RedisBackplaneConfig) -> Result<Self> {
        config.validate()?;
        let info = url.into_connection_info().map_err(|e| {
            BackplaneError::Config(ErrorDetail::with_source(
                format!("invalid Redis URL: {e}"),
                e,
            ))
        })?;
        #[cfg(feature = "redis-tls")]
        if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
            // Already installed by the application (or an earlier call): keep that one.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(settings)).map_err(|e| {
            BackplaneError::Config(ErrorDetail::with_source(
                format!("invalid Redis URL: {e}"),
                e,
            ))
        })?;

        let node = format!("{:016x}", rand_u64());
        let keys = Keys::new(&config.prefix);
        let limits = Limits {
            history_size: config.history_size,
            history_max_channel_bytes: config.history_max_channel_bytes,
            history_ttl_ms: millis(config.history_ttl),
            dedupe_window: config.dedupe_window,
            channel_ttl_ms: millis(config.channel_ttl),
            presence_ttl_ms: millis(config.presence_ttl),
            // Longer than any member's expiry, so sweeps still see expired members to announce.
            presence_key_ttl_ms: millis(config.presence_ttl + 2 * config.presence_sweep),
        };
        let events = EventOutlet::new(config.event_capacity.get());
        let (health, _) = watch::channel(Health {
            state: HealthState::Degraded,
            detail: "redis: connecting".into(),
            cause: None,
            since: SystemTime::now(),
        });
        let (broken_tx, broken_rx) = mpsc::channel(64);
        let (push_tx, push_rx) = mpsc::channel(config.push_capacity.get());
        let (stop_tx, stop_rx) = watch::channel(());
        let (ready_tx, ready_rx) = oneshot::channel();
        let wait = config.connect_timeout + 2 * config.command_timeout;
        let shared = Arc::new(Shared {
            probe_channel: keys.probe(&node),
            control_channel: keys.control(),
            reply_channel: keys.reply(&node),
            surveys: Surveys::default(),
            keys,
            limits,
            node,
            client,
            state: Mutex::new(State {
                conn: None,
                subs: HashMap::new(),
                next_sub: 0,
                local: HashMap::new(),
                published_locally: HashSet::new(),
                owned: HashMap::new(),
                removed_offline: HashSet::new(),
                events: Some(events),
            }),
            health,
            counters: Counters::default(),
            budget: HistoryBudget::new(config.history_max_bytes),
            failures: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            broken: broken_tx,
            pushes: push_tx,
            gate: Arc::new(PushGate::default()),
            last_echo: Mutex::new(None),
            echo: Notify::new(),
            degraded_by: Mutex::new(None),
            config,
        });
        let tasks = vec![
            tokio::spawn(supervisor::supervise(
                Arc::clone(&shared),
                stop_rx.clone(),
                broken_rx,
                ready_tx,
            )),
            tokio::spawn(dispatch::pump(Arc::clone(&shared), push_rx, stop_rx)),
        ];
        // Either outcome is fine: the health says which.
        let _ = tokio::time::timeout(wait, ready_rx).await;
        Ok(Self {
            handle: Arc::new(Handle {
                shared,
                stop: Mutex::new(Some(stop_tx)),
                tasks: Mutex::new(tasks),
            }),
        })
    }

    /// This instance's random node id (its probe channel is `<prefix>probe:<node>`).
    #[must_use]
    pub fn node_id(&self) -> &str {
        &self.handle.shared.node
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &RedisBackplaneConfig {
        &self.handle.shared.config
    }

    /// The counters so far.
    #[must_use]
    pub fn stats(&self) -> RedisBackplaneStats {
        let shared = &self.handle.shared;
        shared
            .counters
            .snapshot(shared.gate.dropped.load(Ordering::Relaxed))
    }

    /// Stops the background tasks and waits for them, drops the connection (and with it the
    /// subscriptions), ends event receivers and turns health down. Later calls fail with
    /// [`BackplaneError::Closed`]. Presence members of this instance are left to expire.
    pub async fn shutdown(&self) {
        let shared = &self.handle.shared;
        shared.closed.store(true, Ordering::Release);
        drop(self.handle.stop.lock().take());
        let tasks: Vec<_> = self.handle.tasks.lock().drain(..).collect();
        for task in tasks {
            // A task that panicked has nothing left to stop.
            let _ = task.await;
        }
        let (conn, subs) = {
            let mut st = shared.state.lock();
            st.events = None;
            (st.conn.take(), std::mem::take(&mut st.subs))
        };
        drop((conn, subs));
        shared.health.send_replace(Health {
            state: HealthState::Down,
            detail: "shut down".into(),
            cause: None,
            since: SystemTime::now(),
        });
    }
}

//! What the handle and the background tasks share: the state under its lock, the
//! installed connection, and the small helpers every part uses.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use redis::RedisError;
use redis::aio::MultiplexedConnection;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::config::RedisBackplaneConfig;
use super::continuity::Sub;
use super::failure::Break;
use super::layout::Keys;
use super::scripts::Limits;
use super::stats::Counters;
use super::survey::Surveys;
use crate::error::{BackplaneError, Result};
use crate::events::EventOutlet;
use crate::history::{History, HistoryBudget, HistoryLimits, overridden};
use crate::presence::PresenceTable;
use crate::types::{Event, Health};

/// How many channels catch up (or presence members are restored) concurrently.
pub(super) const CONCURRENT_SYNCS: usize = 32;

/// What the connection's push callback shares with the backplane (it must not hold the
/// backplane itself: the connection would then keep it alive).
#[derive(Debug, Default)]
pub(super) struct PushGate {
    pub(super) overflow: AtomicBool,
    pub(super) dropped: AtomicU64,
}

/// The installed connection and its generation (incremented per connection).
#[derive(Clone)]
pub(super) struct Live {
    pub(super) generation: u64,
    pub(super) conn: MultiplexedConnection,
}

/// What the backplane knows, under one lock.
pub(super) struct State {
    /// `Some` while the circuit is closed: calls go to Redis.
    pub(super) conn: Option<Live>,
    pub(super) subs: HashMap<Arc<str>, Sub>,
    pub(super) next_sub: u64,
    /// Local fallback history of channels published to while Redis was unreachable.
    pub(super) local: HashMap<Arc<str>, History>,
    /// Channels this instance published to locally during the outage: their shared history
    /// lacks those messages, so they start a new epoch in Redis when it is back.
    pub(super) published_locally: HashSet<Arc<str>>,
    /// Members set through this instance, re-announced after a reconnect.
    pub(super) owned: HashMap<Arc<str>, PresenceTable>,
    /// Members of this instance removed while Redis was unreachable.
    pub(super) removed_offline: HashSet<(Arc<str>, Arc<str>)>,
    /// `None` after shutdown.
    pub(super) events: Option<EventOutlet>,
}

/// What the handle and the background tasks share.
pub(super) struct Shared {
    pub(super) config: RedisBackplaneConfig,
    pub(super) keys: Keys,
    pub(super) limits: Limits,
    pub(super) node: String,
    pub(super) probe_channel: String,
    /// Survey requests from every instance arrive here.
    pub(super) control_channel: String,
    /// Replies to this instance's surveys arrive here.
    pub(super) reply_channel: String,
    pub(super) surveys: Surveys,
    pub(super) client: redis::Client,
    pub(super) state: Mutex<State>,
    /// The local fallback's histories count their bytes here.
    pub(super) budget: Arc<HistoryBudget>,
    pub(super) health: watch::Sender<Health>,
    pub(super) counters: Counters,
    pub(super) failures: AtomicU32,
    pub(super) closed: AtomicBool,
    /// Connection generation and why, when a connection is found broken.
    pub(super) broken: mpsc::Sender<(u64, Break)>,
    pub(super) pushes: mpsc::Sender<(u64, redis::PushInfo)>,
    pub(super) gate: Arc<PushGate>,
    /// The generation whose probe echo came back last, and when.
    pub(super) last_echo: Mutex<Option<(u64, Instant)>>,
    pub(super) echo: Notify,
    /// The Redis error behind the health's degraded detail, if there is one: the source of
    /// the `Unavailable` errors it explains.
    pub(super) degraded_by: Mutex<Option<RedisError>>,
}

impl Shared {
    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(BackplaneError::Closed)
        } else {
            Ok(())
        }
    }

    pub(super) fn live(&self) -> Option<Live> {
        self.state.lock().conn.clone()
    }

    /// The bounds of `channel`'s local fallback history.
    pub(super) fn history_limits(&self, channel: &str) -> HistoryLimits {
        overridden(
            &self.config.history_overrides,
            channel,
            HistoryLimits {
                size: self.config.history_size,
                ttl: self.config.history_ttl,
                dedupe_window: self.config.dedupe_window,
            },
        )
    }

    /// The limits the scripts apply to `channel` (its history bounds may be overridden).
    pub(super) fn limits_for(&self, channel: &str) -> Limits {
        if self.config.history_overrides.is_empty() {
            return self.limits;
        }
        let history = self.history_limits(channel);
        Limits {
            history_size: history.size,
            history_ttl_ms: millis(history.ttl),
            ..self.limits
        }
    }

    /// Sends `event` (under the state lock, which keeps each channel's order).
    pub(super) fn emit(events: Option<&EventOutlet>, counters: &Counters, event: Event) {
        if matches!(event, Event::Reset { .. }) {
            counters.resets.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(outlet) = events {
            outlet.emit(event);
        }
    }
}

/// A duration in whole milliseconds for Redis, at least 1.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A subscription with its shared channel name.
pub(super) fn sub_entry<'a>(
    subs: &'a mut HashMap<Arc<str>, Sub>,
    channel: &str,
) -> Option<(Arc<str>, &'a mut Sub)> {
    let name = Arc::clone(subs.get_key_value(channel)?.0);
    subs.get_mut(channel).map(|sub| (name, sub))
}

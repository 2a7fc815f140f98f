//! Catching channels up from Redis history: one channel after a gap, or every channel after a
//! reconnect or dropped pushes. Per-channel order holds while other channels flow.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::continuity::MAX_ROUNDS;
use super::failure::CallError;
use super::scripts;
use super::shared::{CONCURRENT_SYNCS, Shared, State};
use crate::types::{Epoch, Event};

impl Shared {
    /// Catches channel `name` (subscription `id`) up from Redis. The caller owns the sync.
    /// Live messages for the channel that arrive meanwhile are noted, not delivered, and
    /// fetched by another round, so per-channel order holds while other channels flow.
    pub(super) async fn run_sync(&self, name: Arc<str>, id: u64) {
        for _ in 0..MAX_ROUNDS {
            let round = {
                let mut st = self.state.lock();
                match st.subs.get_mut(&name) {
                    Some(sub) if sub.id == id => sub.start_round(),
                    _ => return,
                }
            };
            let known = round.epoch.as_ref().map_or("", Epoch::as_str);
            let result = match self.live() {
                Some(live) => {
                    let mut conn = live.conn.clone();
                    self.call(
                        live.generation,
                        scripts::read(
                            &mut conn,
                            &self.keys,
                            &self.limits_for(&name),
                            &name,
                            known,
                            round.after,
                        ),
                    )
                    .await
                }
                None => Err(CallError::Broken("redis: not connected".into())),
            };
            let mut st = self.state.lock();
            let State { subs, events, .. } = &mut *st;
            let Some(sub) = subs.get_mut(&name).filter(|s| s.id == id) else {
                return;
            };
            match result {
                Ok(read) => {
                    let counters = &self.counters;
                    sub.apply(&name, read, &mut |event| {
                        if matches!(event, Event::Message(_)) {
                            counters.gap_fills.fetch_add(1, Ordering::Relaxed);
                        }
                        Self::emit(events.as_ref(), counters, event);
                    });
                    if !sub.finish_round() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(channel = %name, error = e.reason(), "catch-up failed");
                    // Retried after the reconnect (or on the next out-of-order message).
                    if !sub.wants_again() {
                        sub.end_sync();
                        return;
                    }
                }
            }
        }
        if let Some(sub) = self.state.lock().subs.get_mut(&name).filter(|s| s.id == id) {
            sub.end_sync();
        }
    }

    /// Catches every subscribed channel up (after a reconnect, or after dropped pushes).
    pub(super) async fn sync_all(&self) {
        use futures_util::StreamExt;
        let owned: Vec<(Arc<str>, u64)> = {
            let mut st = self.state.lock();
            st.subs
                .iter_mut()
                .filter_map(|(name, sub)| sub.begin_sync().then(|| (Arc::clone(name), sub.id)))
                .collect()
        };
        futures_util::stream::iter(owned)
            .for_each_concurrent(CONCURRENT_SYNCS, |(name, id)| self.run_sync(name, id))
            .await;
    }
}

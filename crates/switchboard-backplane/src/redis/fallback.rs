//! Publishing and reading history: through Redis, else on this instance's local fallback
//! while Redis is unreachable (a local epoch, so nobody mistakes it for the shared history).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::time::Instant;

use super::continuity::Sub;
use super::failure::CallError;
use super::scripts;
use super::shared::{Shared, State, sub_entry};
use super::stats::Counters;
use crate::error::Result;
use crate::events::EventOutlet;
use crate::history::{History, HistoryBudget};
use crate::types::{Epoch, Event, PublishOptions, Published, Recovery, ResetReason, Scope};

impl Shared {
    /// Publishes through Redis, else on this instance only.
    pub(super) async fn publish_with(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Result<Published> {
        self.check_open()?;
        if let Some(live) = self.live() {
            let mut conn = live.conn.clone();
            let limits = self.limits_for(channel);
            let publish = scripts::publish(
                &mut conn,
                &self.keys,
                &limits,
                channel,
                &data,
                options.dedupe_key,
            );
            match self.call(live.generation, publish).await {
                Ok((epoch, offset, duplicate)) => {
                    return Ok(Published {
                        offset,
                        epoch,
                        scope: Scope::Cluster,
                        duplicate,
                    });
                }
                Err(CallError::Protocol(failure)) => return Err(failure.into_protocol()),
                // Whether Redis applied it is unknown; the local epoch makes the channel
                // reset when Redis is back, so nobody relies on either copy.
                Err(_) => {}
            }
        }
        Ok(self.publish_locally(channel, data, options))
    }

    /// Publishes on this instance only, under the channel's local fallback epoch.
    pub(super) fn publish_locally(
        &self,
        channel: &str,
        data: Bytes,
        options: PublishOptions<'_>,
    ) -> Published {
        let now = Instant::now();
        let limits = self.history_limits(channel);
        let mut st = self.state.lock();
        let State {
            subs,
            local,
            published_locally,
            events,
            ..
        } = &mut *st;
        let mut sub = sub_entry(subs, channel);
        let delivered = sub.as_ref().map(|(name, s)| (Arc::clone(name), s.last()));
        let (history, created) = local_history(local, channel, delivered, &self.budget);
        if created && let Some((name, sub)) = &mut sub {
            Self::reset_for_local_epoch(events.as_ref(), &self.counters, name, sub);
        }
        if let Some(offset) = options.dedupe_key.and_then(|key| history.deduplicated(key)) {
            return Published {
                offset,
                epoch: history.epoch().clone(),
                scope: Scope::LocalOnly,
                duplicate: true,
            };
        }
        let envelope = history.append(data, options.dedupe_key, now, limits);
        let published = Published {
            offset: envelope.offset,
            epoch: history.epoch().clone(),
            scope: Scope::LocalOnly,
            duplicate: false,
        };
        if !published_locally.contains(channel) {
            published_locally.insert(Arc::clone(&envelope.channel));
        }
        if let Some((_, sub)) = sub {
            sub.mark_reset(ResetReason::EpochChanged);
            Self::emit(events.as_ref(), &self.counters, Event::Message(envelope));
        }
        self.counters
            .degraded_publishes
            .fetch_add(1, Ordering::Relaxed);
        Self::enforce_budget(&self.budget, local);
        published
    }

    /// Trims the local fallback history back under the budget when it is over: the oldest
    /// messages of the least recently published channels go first.
    pub(super) fn enforce_budget(budget: &HistoryBudget, local: &mut HashMap<Arc<str>, History>) {
        if !budget.begin_trim() {
            return;
        }
        let candidates = local
            .iter()
            .filter_map(|(name, history)| Some((history.newest_at()?, Arc::clone(name))))
            .collect();
        budget.trim_least_recent(candidates, |name: Arc<str>| {
            Some(local.get_mut(&name)?.trim_for_budget())
        });
    }

    /// A subscribed channel just got a local fallback epoch. Its subscribers were told the
    /// Redis epoch, so messages under the local one would look like a continuation of it:
    /// reset them now (they re-subscribe and are told the local epoch), and again when Redis
    /// is back.
    pub(super) fn reset_for_local_epoch(
        events: Option<&EventOutlet>,
        counters: &Counters,
        name: &Arc<str>,
        sub: &mut Sub,
    ) {
        if sub.has_epoch() {
            Self::emit(
                events,
                counters,
                Event::Reset {
                    channel: Arc::clone(name),
                    reason: ResetReason::EpochChanged,
                },
            );
        }
        sub.mark_reset(ResetReason::EpochChanged);
    }

    /// `since` from the local fallback. A channel this instance has not seen yet gets a local
    /// history under a fresh local epoch (empty, or continuing from the offset last delivered
    /// here), so a subscribe during an outage is answered instead of failing; a subscribed
    /// channel is then reset when Redis returns, because its subscribers were told the local
    /// epoch.
    pub(super) fn read_locally(&self, channel: &str, offset: u64, known: &str) -> Result<Recovery> {
        let now = Instant::now();
        let limits = self.history_limits(channel);
        let mut st = self.state.lock();
        let State {
            subs,
            local,
            events,
            ..
        } = &mut *st;
        let sub = sub_entry(subs, channel);
        let delivered = sub.as_ref().map(|(name, s)| (Arc::clone(name), s.last()));
        let (history, created) = local_history(local, channel, delivered, &self.budget);
        if created && let Some((name, sub)) = sub {
            Self::reset_for_local_epoch(events.as_ref(), &self.counters, &name, sub);
        }
        Ok(history.since(offset, known, now, limits))
    }

    /// `since` from Redis, else from the local fallback.
    pub(super) async fn read(&self, channel: &str, offset: u64, known: &str) -> Result<Recovery> {
        self.check_open()?;
        if let Some(live) = self.live() {
            let name: Arc<str> = channel.into();
            let mut conn = live.conn.clone();
            let limits = self.limits_for(channel);
            let read = scripts::read(&mut conn, &self.keys, &limits, &name, known, offset);
            match self.call(live.generation, read).await {
                Ok(recovery) => return Ok(recovery),
                Err(CallError::Protocol(failure)) => return Err(failure.into_protocol()),
                Err(_) => {}
            }
        }
        self.read_locally(channel, offset, known)
    }
}

/// The channel's local fallback history, and whether it was just created. A new one gets a
/// fresh local epoch and continues from the offset last delivered here (`delivered`: the
/// subscribed channel's name and last offset), so subscribers see offsets keep ascending while
/// the epoch says they are local.
fn local_history<'a>(
    local: &'a mut HashMap<Arc<str>, History>,
    channel: &str,
    delivered: Option<(Arc<str>, u64)>,
    budget: &Arc<HistoryBudget>,
) -> (&'a mut History, bool) {
    let created = !local.contains_key(channel);
    if created {
        let (name, start) = delivered.unwrap_or_else(|| (channel.into(), 0));
        local.insert(
            Arc::clone(&name),
            History::new(name, Epoch::random(), start, Arc::clone(budget)),
        );
    }
    let history = local.get_mut(channel).expect("present or inserted above");
    (history, created)
}

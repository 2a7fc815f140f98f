//! Presence on Redis: setting, removing, touching and listing members, re-announcing this
//! instance's members after a reconnect, and the periodic sweep that expires members.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use super::failure::CallError;
use super::layout::presence_change;
use super::scripts::{self, SetMode};
use super::shared::{CONCURRENT_SYNCS, Shared};
use crate::error::Result;
use crate::presence::PresenceTable;
use crate::types::{Event, PresenceAction, PresenceEntry};

impl Shared {
    /// Re-announces this instance's members (Redis may have lost them) and removes those that
    /// left while Redis was unreachable.
    pub(super) async fn restore_presence(&self) {
        use futures_util::StreamExt;
        let Some(live) = self.live() else { return };
        let now = Instant::now();
        let (removed, members) = {
            let mut st = self.state.lock();
            let removed: Vec<_> = st.removed_offline.drain().collect();
            let members: Vec<_> = st
                .owned
                .iter()
                .flat_map(|(channel, table)| {
                    table
                        .list(now)
                        .into_iter()
                        .map(move |entry| (Arc::clone(channel), entry))
                })
                .collect();
            (removed, members)
        };
        futures_util::stream::iter(removed)
            .for_each_concurrent(CONCURRENT_SYNCS, |(channel, id)| {
                let mut conn = live.conn.clone();
                async move {
                    let _ = self
                        .call(
                            live.generation,
                            scripts::presence_remove(&mut conn, &self.keys, &channel, &id),
                        )
                        .await;
                }
            })
            .await;
        futures_util::stream::iter(members)
            .for_each_concurrent(CONCURRENT_SYNCS, |(channel, entry)| {
                let mut conn = live.conn.clone();
                async move {
                    let _ = self
                        .call(
                            live.generation,
                            scripts::presence_set(
                                &mut conn,
                                &self.keys,
                                &self.limits,
                                &channel,
                                &entry.connection_id,
                                &entry.data,
                                SetMode::Restore,
                            ),
                        )
                        .await;
                }
            })
            .await;
    }

    /// Periodic upkeep: expire members of this instance's channels in Redis (announcing their
    /// leave), forget expired owned members and local fallback history.
    pub(super) async fn sweep(&self) {
        use futures_util::StreamExt;
        let now = Instant::now();
        let channels: Vec<Arc<str>> = {
            let mut st = self.state.lock();
            st.local.retain(|channel, history| {
                history.trim(now, self.history_limits(channel));
                !history.is_empty()
            });
            st.owned.retain(|_, table| {
                table.sweep(now);
                !table.is_empty()
            });
            let mut channels: HashSet<Arc<str>> = st.subs.keys().cloned().collect();
            channels.extend(st.owned.keys().cloned());
            channels.into_iter().collect()
        };
        let Some(live) = self.live() else { return };
        futures_util::stream::iter(channels)
            .for_each_concurrent(CONCURRENT_SYNCS, |channel| {
                let mut conn = live.conn.clone();
                async move {
                    let _ = self
                        .call(
                            live.generation,
                            scripts::presence_sweep(&mut conn, &self.keys, &channel, false),
                        )
                        .await;
                }
            })
            .await;
    }

    pub(super) async fn presence_set(
        &self,
        channel: &str,
        connection_id: &str,
        data: Bytes,
    ) -> Result<PresenceAction> {
        self.check_open()?;
        let ttl = self.config.presence_ttl;
        let local_action = {
            let mut st = self.state.lock();
            let name: Arc<str> = channel.into();
            st.removed_offline
                .remove(&(Arc::clone(&name), connection_id.into()));
            st.owned
                .entry(name)
                .or_default()
                .set(connection_id, data.clone(), Instant::now(), ttl)
        };
        if let Some(live) = self.live() {
            let mut conn = live.conn.clone();
            let set = scripts::presence_set(
                &mut conn,
                &self.keys,
                &self.limits,
                channel,
                connection_id,
                &data,
                SetMode::Set,
            );
            match self.call(live.generation, set).await {
                Ok(true) => return Ok(PresenceAction::Update),
                Ok(false) => return Ok(PresenceAction::Join),
                Err(CallError::Protocol(failure)) => return Err(failure.into_protocol()),
                Err(_) => {}
            }
        }
        // Degraded: announced here only; re-announced to Redis after the reconnect.
        let st = self.state.lock();
        if let Some((name, _)) = st.subs.get_key_value(channel) {
            let entry = PresenceEntry {
                connection_id: connection_id.into(),
                data,
            };
            let change = presence_change(name, local_action, entry);
            Self::emit(st.events.as_ref(), &self.counters, Event::Presence(change));
        }
        Ok(local_action)
    }

    pub(super) async fn presence_remove(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> Result<Option<PresenceEntry>> {
        self.check_open()?;
        let now = Instant::now();
        let owned = {
            let mut st = self.state.lock();
            let removed = st
                .owned
                .get_mut(channel)
                .and_then(|table| table.remove(connection_id, now));
            if st.owned.get(channel).is_some_and(PresenceTable::is_empty) {
                st.owned.remove(channel);
            }
            removed
        };
        let mut failed = None;
        if let Some(live) = self.live() {
            let mut conn = live.conn.clone();
            let remove = scripts::presence_remove(&mut conn, &self.keys, channel, connection_id);
            match self.call(live.generation, remove).await {
                Ok(data) => {
                    return Ok(data.map(|data| PresenceEntry {
                        connection_id: connection_id.into(),
                        data,
                    }));
                }
                Err(CallError::Protocol(failure)) => return Err(failure.into_protocol()),
                Err(error) => failed = Some(error.into_failure()),
            }
        }
        // Degraded: only this instance's own members can be removed, here, and in Redis
        // after the reconnect.
        let Some(entry) = owned else {
            return Err(self.unavailable(failed));
        };
        let mut st = self.state.lock();
        st.removed_offline
            .insert((channel.into(), Arc::clone(&entry.connection_id)));
        if let Some((name, _)) = st.subs.get_key_value(channel) {
            let change = presence_change(name, PresenceAction::Leave, entry.clone());
            Self::emit(st.events.as_ref(), &self.counters, Event::Presence(change));
        }
        Ok(Some(entry))
    }

    pub(super) async fn presence_touch(&self, channel: &str, connection_id: &str) -> Result<()> {
        self.check_open()?;
        let ttl = self.config.presence_ttl;
        let owned = {
            let mut st = self.state.lock();
            match st.owned.get_mut(channel) {
                Some(table) => {
                    table.touch(connection_id, Instant::now(), ttl);
                    true
                }
                None => false,
            }
        };
        let mut failed = None;
        if let Some(live) = self.live() {
            let mut conn = live.conn.clone();
            let touch = scripts::presence_touch(
                &mut conn,
                &self.keys,
                &self.limits,
                channel,
                connection_id,
            );
            match self.call(live.generation, touch).await {
                Ok(()) => return Ok(()),
                Err(CallError::Protocol(failure)) => return Err(failure.into_protocol()),
                Err(error) => failed = Some(error.into_failure()),
            }
        }
        if owned {
            Ok(())
        } else {
            Err(self.unavailable(failed))
        }
    }

    pub(super) async fn presence_list(&self, channel: &str) -> Result<Vec<PresenceEntry>> {
        self.check_open()?;
        let Some(live) = self.live() else {
            return Err(self.unavailable(None));
        };
        let mut conn = live.conn.clone();
        let list = scripts::presence_sweep(&mut conn, &self.keys, channel, true);
        match self.call(live.generation, list).await {
            Ok(members) => Ok(members
                .into_iter()
                .map(|(connection_id, data)| PresenceEntry {
                    connection_id,
                    data,
                })
                .collect()),
            Err(CallError::Protocol(failure)) => Err(failure.into_protocol()),
            Err(error) => Err(self.unavailable(Some(error.into_failure()))),
        }
    }
}

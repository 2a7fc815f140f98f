//! A channel's in-process presence members with expiry: the memory backplane's store, and the
//! Redis backplane's local fallback while Redis is unreachable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::types::{PresenceAction, PresenceEntry};

#[derive(Debug)]
struct Member {
    data: Bytes,
    expires: Instant,
}

/// One channel's members, each with its own expiry. One word, and no heap, for a channel
/// without members (most channels): the map is allocated on the first join and freed when
/// the last member goes.
#[derive(Debug, Default)]
pub(crate) struct PresenceTable {
    // Boxed on purpose: `HashMap` inline is six words in every channel's slot, the box one.
    #[allow(clippy::box_collection)]
    members: Option<Box<HashMap<Arc<str>, Member>>>,
}

impl PresenceTable {
    /// Adds or replaces a member and refreshes its expiry. An expired member counts as absent.
    pub(crate) fn set(
        &mut self,
        connection_id: &str,
        data: Bytes,
        now: Instant,
        ttl: Duration,
    ) -> PresenceAction {
        let expires = now + ttl;
        let members = self.members.get_or_insert_with(Box::default);
        match members.get_mut(connection_id) {
            Some(member) => {
                let action = if member.expires > now {
                    PresenceAction::Update
                } else {
                    PresenceAction::Join
                };
                *member = Member { data, expires };
                action
            }
            None => {
                members.insert(connection_id.into(), Member { data, expires });
                PresenceAction::Join
            }
        }
    }

    /// Removes a member; `None` when absent (or already expired).
    pub(crate) fn remove(&mut self, connection_id: &str, now: Instant) -> Option<PresenceEntry> {
        let (id, member) = self.members.as_mut()?.remove_entry(connection_id)?;
        self.release_if_empty();
        (member.expires > now).then_some(PresenceEntry {
            connection_id: id,
            data: member.data,
        })
    }

    /// Refreshes a present member's expiry; does nothing for an absent one.
    pub(crate) fn touch(&mut self, connection_id: &str, now: Instant, ttl: Duration) {
        if let Some(member) = self
            .members
            .as_mut()
            .and_then(|members| members.get_mut(connection_id))
            && member.expires > now
        {
            member.expires = now + ttl;
        }
    }

    /// The unexpired members.
    pub(crate) fn list(&self, now: Instant) -> Vec<PresenceEntry> {
        self.members
            .iter()
            .flat_map(|members| members.iter())
            .filter(|(_, m)| m.expires > now)
            .map(|(id, m)| PresenceEntry {
                connection_id: Arc::clone(id),
                data: m.data.clone(),
            })
            .collect()
    }

    /// Removes and returns the expired members.
    pub(crate) fn sweep(&mut self, now: Instant) -> Vec<PresenceEntry> {
        let Some(members) = self.members.as_mut() else {
            return Vec::new();
        };
        let expired: Vec<Arc<str>> = members
            .iter()
            .filter(|(_, m)| m.expires <= now)
            .map(|(id, _)| Arc::clone(id))
            .collect();
        let swept = expired
            .into_iter()
            .filter_map(|id| {
                let member = members.remove(&id)?;
                Some(PresenceEntry {
                    connection_id: id,
                    data: member.data,
                })
            })
            .collect();
        self.release_if_empty();
        swept
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members
            .as_ref()
            .is_none_or(|members| members.is_empty())
    }

    fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.members = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn a_member_joins_once_then_updates() {
        let mut t = PresenceTable::default();
        let now = Instant::now();
        assert_eq!(t.set("c1", "a".into(), now, TTL), PresenceAction::Join);
        assert_eq!(t.set("c1", "b".into(), now, TTL), PresenceAction::Update);
        assert_eq!(t.list(now)[0].data, "b");
    }

    #[tokio::test(start_paused = true)]
    async fn touching_postpones_expiry_and_sweeping_removes_only_the_expired() {
        let mut t = PresenceTable::default();
        let start = Instant::now();
        t.set("kept", "k".into(), start, TTL);
        t.set("gone", "g".into(), start, TTL);
        t.touch("kept", start + Duration::from_secs(8), TTL);
        let later = start + Duration::from_secs(11);
        assert_eq!(t.list(later).len(), 1);
        let swept = t.sweep(later);
        assert_eq!(swept.len(), 1);
        assert_eq!(&*swept[0].connection_id, "gone");
        assert_eq!(t.remove("gone", later), None);
        assert_eq!(t.remove("kept", later).map(|e| e.data), Some("k".into()));
        assert!(t.is_empty());
    }
}

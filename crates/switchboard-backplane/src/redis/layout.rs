//! Where things live in Redis, and what travels over pub/sub.
//!
//! Per channel `ch`, with the configured prefix `P` (the `{ch}` hash tag keeps a channel's keys
//! in one cluster slot):
//! - `P{ch}:meta`: hash, `e` = epoch, `o` = last offset;
//! - `P{ch}:history`: stream, entry id `<offset>-0`, fields `t` (ms) and `d` (data);
//! - `P{ch}:dedupe`: sorted set, dedupe key → the offset its publish got (the latest keys of
//!   the window);
//! - `P{ch}:presence`: hash, connection id → data;
//! - `P{ch}:presence:expiry`: sorted set, connection id → expiry (ms);
//! - `P{ch}:pubsub`: the pub/sub channel carrying messages and presence changes;
//! - `P{key}:leases`: sorted set, holder → expiry (ms), for [`Backplane::lease_acquire`]
//!   (`key` is the caller's, e.g. `user:<id>`);
//! - `P{group}:group`: sorted set, member → expiry (ms), for [`Backplane::group_join`], and
//!   `Pgroups`: sorted set, group → its latest member expiry, which the reaper walks (these
//!   scripts touch two slots: one Redis, not Redis Cluster).
//!
//! [`Backplane::lease_acquire`]: crate::Backplane::lease_acquire
//! [`Backplane::group_join`]: crate::Backplane::group_join
//!
//! Each instance also listens, outside the channel namespace, on `Pprobe:<node>` (its liveness
//! probe), `Pcontrol` (survey requests, to every instance) and `Preply:<node>` (the replies to
//! its own surveys).

use std::sync::Arc;

use bytes::Bytes;

use crate::types::{PresenceAction, PresenceChange, PresenceEntry};

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, channel: &str, suffix: &str) -> String {
        format!("{}{{{channel}}}:{suffix}", self.prefix)
    }

    pub(crate) fn meta(&self, channel: &str) -> String {
        self.key(channel, "meta")
    }

    pub(crate) fn history(&self, channel: &str) -> String {
        self.key(channel, "history")
    }

    pub(crate) fn dedupe(&self, channel: &str) -> String {
        self.key(channel, "dedupe")
    }

    pub(crate) fn presence(&self, channel: &str) -> String {
        self.key(channel, "presence")
    }

    pub(crate) fn presence_expiry(&self, channel: &str) -> String {
        self.key(channel, "presence:expiry")
    }

    /// The leases under `key` (a sorted set, holder → expiry in ms).
    pub(crate) fn leases(&self, key: &str) -> String {
        self.key(key, "leases")
    }

    pub(crate) fn pubsub(&self, channel: &str) -> String {
        self.key(channel, "pubsub")
    }

    /// Group `group`'s members (a sorted set, member → expiry in ms).
    pub(crate) fn group(&self, group: &str) -> String {
        self.key(group, "group")
    }

    /// Every group with its latest member expiry (a sorted set), for the reaper.
    pub(crate) fn groups(&self) -> String {
        format!("{}groups", self.prefix)
    }

    /// The prefix itself (scripts build group keys from it).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Where survey requests go; every instance listens.
    pub(crate) fn control(&self) -> String {
        format!("{}control", self.prefix)
    }

    /// Where replies to `node`'s surveys go.
    pub(crate) fn reply(&self, node: &str) -> String {
        format!("{}reply:{node}", self.prefix)
    }

    pub(crate) fn probe(&self, node: &str) -> String {
        format!("{}probe:{node}", self.prefix)
    }

    /// The channel a pub/sub name belongs to, if it is one of ours.
    pub(crate) fn channel_of<'a>(&self, pubsub: &'a [u8]) -> Option<&'a str> {
        let rest = pubsub.strip_prefix(self.prefix.as_bytes())?;
        let inner = rest.strip_prefix(b"{")?.strip_suffix(b"}:pubsub")?;
        std::str::from_utf8(inner).ok()
    }
}

/// What arrives on a channel's pub/sub.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    Message {
        epoch: String,
        offset: u64,
        data: Bytes,
    },
    Presence {
        action: PresenceAction,
        entry: PresenceEntry,
    },
    /// The channel started a new epoch: what some instance delivered meanwhile is not in
    /// the shared history.
    NewEpoch { epoch: String },
}

impl Incoming {
    /// Parses `m<epoch>:<offset>:<data>`, `p<j|u|l><len>:<connection id><data>` or
    /// `r<epoch>` (the Lua scripts write them).
    pub(crate) fn parse(payload: &Bytes) -> Option<Self> {
        match payload.first()? {
            b'm' => {
                let rest = payload.slice(1..);
                let colon = rest.iter().position(|&b| b == b':')?;
                let epoch = std::str::from_utf8(&rest[..colon]).ok()?.to_owned();
                let rest = rest.slice(colon + 1..);
                let colon = rest.iter().position(|&b| b == b':')?;
                let offset = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
                Some(Self::Message {
                    epoch,
                    offset,
                    data: rest.slice(colon + 1..),
                })
            }
            b'p' => {
                let action = match payload.get(1)? {
                    b'j' => PresenceAction::Join,
                    b'u' => PresenceAction::Update,
                    b'l' => PresenceAction::Leave,
                    _ => return None,
                };
                let rest = payload.slice(2..);
                let colon = rest.iter().position(|&b| b == b':')?;
                let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
                let rest = rest.slice(colon + 1..);
                let id = std::str::from_utf8(rest.get(..len)?).ok()?;
                Some(Self::Presence {
                    action,
                    entry: PresenceEntry {
                        connection_id: id.into(),
                        data: rest.slice(len..),
                    },
                })
            }
            b'r' => Some(Self::NewEpoch {
                epoch: std::str::from_utf8(&payload[1..])
                    .ok()
                    .filter(|e| !e.is_empty())?
                    .to_owned(),
            }),
            _ => None,
        }
    }
}

/// A presence change as an event.
pub(crate) fn presence_change(
    channel: &Arc<str>,
    action: PresenceAction,
    entry: PresenceEntry,
) -> PresenceChange {
    PresenceChange {
        channel: Arc::clone(channel),
        action,
        entry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_share_the_channel_hash_tag_and_pubsub_names_map_back() {
        let keys = Keys::new("sb:");
        assert_eq!(keys.meta("room:1"), "sb:{room:1}:meta");
        assert_eq!(keys.history("room:1"), "sb:{room:1}:history");
        assert_eq!(
            keys.channel_of(keys.pubsub("room:1").as_bytes()),
            Some("room:1")
        );
        assert_eq!(keys.channel_of(keys.probe("n1").as_bytes()), None);
        assert_eq!(keys.channel_of(b"other:{x}:pubsub"), None);
    }

    #[test]
    fn messages_keep_their_bytes_including_separators() {
        let parsed = Incoming::parse(&Bytes::from_static(b"mabc:42:x:y\n")).unwrap();
        assert_eq!(
            parsed,
            Incoming::Message {
                epoch: "abc".into(),
                offset: 42,
                data: Bytes::from_static(b"x:y\n"),
            }
        );
    }

    #[test]
    fn presence_changes_carry_the_connection_and_its_data() {
        let parsed = Incoming::parse(&Bytes::from_static(b"pl4:c:1d{\"a\":1}")).unwrap();
        assert_eq!(
            parsed,
            Incoming::Presence {
                action: PresenceAction::Leave,
                entry: PresenceEntry {
                    connection_id: "c:1d".into(),
                    data: Bytes::from_static(b"{\"a\":1}"),
                },
            }
        );
        assert_eq!(
            Incoming::parse(&Bytes::from_static(b"re-42")),
            Some(Incoming::NewEpoch {
                epoch: "e-42".into()
            })
        );
        assert_eq!(Incoming::parse(&Bytes::from_static(b"r")), None);
        assert_eq!(Incoming::parse(&Bytes::from_static(b"px1:a")), None);
        assert_eq!(Incoming::parse(&Bytes::from_static(b"p")), None);
        assert_eq!(Incoming::parse(&Bytes::new()), None);
    }
}

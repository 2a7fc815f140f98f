//! Local subscribers per channel, and fan-out to them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;
use switchboard_protocol::{CloseCode, EncodedFrame, Priority};

use crate::outbox::Outbox;

const SHARDS: usize = 64;

/// A frame held for a subscriber whose recovery is in progress. `offset` is `None` for
/// frames that are not channel messages (presence changes): they are always delivered.
struct Held {
    offset: Option<u64>,
    frame: EncodedFrame,
    priority: Priority,
}

struct Subscriber {
    conn: u64,
    outbox: Arc<dyn Outbox>,
    /// Messages up to this offset were already delivered (by replay) or predate the
    /// subscription; live ones at or below it are skipped.
    delivered_through: u64,
    /// `Some` while the subscription's recovery is being fetched.
    held: Option<Vec<Held>>,
    overflowed: bool,
}

#[derive(Default)]
struct Channel {
    subscribers: Vec<Subscriber>,
}

type Shard = Mutex<HashMap<Arc<str>, Channel>>;

/// The channel → local subscribers map, sharded so unrelated channels do not contend.
/// The `excluded` frame for `offset` in `channel` (a registered channel name, so valid).
fn excluded_frame(channel: &str, offset: u64) -> Option<EncodedFrame> {
    let channel = switchboard_protocol::ChannelName::new(channel).ok()?;
    Some(
        switchboard_protocol::ServerFrame::Excluded(switchboard_protocol::Excluded {
            channel,
            offset,
        })
        .encode(),
    )
}

pub(crate) struct Registry {
    shards: Box<[Shard]>,
    /// Picks a channel's shard. Seeded per registry, and faster than the maps' own SipHash
    /// (a publish looks its channel up once): a name an attacker chose can at worst share
    /// a shard with others, while each shard's map keeps SipHash.
    hasher: foldhash::fast::RandomState,
    hold_limit: usize,
    /// Told, in order, when a channel gets its first local subscriber (`true`) and loses
    /// its last (`false`), when occupancy is tracked.
    occupancy: Option<tokio::sync::mpsc::UnboundedSender<(Arc<str>, bool)>>,
}

impl Registry {
    pub(crate) fn new(
        hold_limit: usize,
        occupancy: Option<tokio::sync::mpsc::UnboundedSender<(Arc<str>, bool)>>,
    ) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            hold_limit,
            occupancy,
        }
    }

    /// Tells the occupancy tracker, under the channel's lock so changes keep their order.
    fn occupied(&self, channel: &Arc<str>, occupied: bool) {
        if let Some(tracker) = &self.occupancy {
            let _ = tracker.send((Arc::clone(channel), occupied));
        }
    }

    fn shard(&self, channel: &str) -> &Shard {
        let i = (self.hasher.hash_one(channel) as usize) % SHARDS;
        &self.shards[i]
    }

    /// Registers a subscriber that holds live frames until [`Registry::activate`].
    /// A new channel's record shares `channel`'s text rather than copying it.
    pub(crate) fn add_pending(&self, channel: &Arc<str>, conn: u64, outbox: Arc<dyn Outbox>) {
        let mut shard = self.shard(channel).lock();
        if self.occupancy.is_some() && !shard.contains_key(channel) {
            self.occupied(channel, true);
        }
        let entry = shard.entry(Arc::clone(channel)).or_default();
        // Most channels have one local subscriber: grow from one slot, not Vec's default four.
        entry
            .subscribers
            .reserve_exact(usize::from(entry.subscribers.is_empty()));
        entry.subscribers.push(Subscriber {
            conn,
            outbox,
            delivered_through: 0,
            held: Some(Vec::new()),
            overflowed: false,
        });
    }

    /// Makes a pending subscriber live: pushes `first` (the `subscribed` answer and any
    /// replay), then the held frames newer than `through`, atomically with respect to
    /// fan-out. Returns `false` (and closes the connection with 4008) when frames had to be
    /// dropped while holding.
    pub(crate) fn activate(
        &self,
        channel: &str,
        conn: u64,
        first: Vec<(EncodedFrame, Priority)>,
        through: u64,
    ) -> bool {
        let mut shard = self.shard(channel).lock();
        let Some(sub) = shard
            .get_mut(channel)
            .and_then(|c| c.subscribers.iter_mut().find(|s| s.conn == conn))
        else {
            return false;
        };
        for (frame, priority) in first {
            sub.outbox.push(&frame, priority);
        }
        sub.delivered_through = through;
        for held in sub.held.take().unwrap_or_default() {
            match held.offset {
                Some(offset) if offset <= through => {}
                Some(offset) => {
                    sub.delivered_through = offset;
                    sub.outbox.push(&held.frame, held.priority);
                }
                None => sub.outbox.push(&held.frame, held.priority),
            }
        }
        if sub.overflowed {
            sub.outbox.close(CloseCode::SlowConsumer);
            return false;
        }
        true
    }

    /// Removes a subscriber. Returns whether it was registered.
    pub(crate) fn remove(&self, channel: &str, conn: u64) -> bool {
        let mut shard = self.shard(channel).lock();
        let Some(entry) = shard.get_mut(channel) else {
            return false;
        };
        let before = entry.subscribers.len();
        entry.subscribers.retain(|s| s.conn != conn);
        let removed = entry.subscribers.len() != before;
        if entry.subscribers.is_empty()
            && let Some((name, _)) = shard.remove_entry(channel)
        {
            self.occupied(&name, false);
        }
        removed
    }

    /// Hands `frame` to every local subscriber of `channel`; returns how many got it.
    /// Channel messages carry their `offset`, so a subscriber never sees one twice.
    pub(crate) fn deliver(
        &self,
        channel: &str,
        offset: Option<u64>,
        frame: EncodedFrame,
        priority: Priority,
        exclude: &[u64],
    ) -> usize {
        let mut shard = self.shard(channel).lock();
        let Some(entry) = shard.get_mut(channel) else {
            return 0;
        };
        let mut delivered = 0;
        // For a subscriber the message skips (`excludeSelf`, the API's `exclude`): the
        // `excluded` frame in its place, built once, so its offsets stay contiguous.
        let mut excluded: Option<Option<EncodedFrame>> = None;
        // The last subscriber is handed the frame itself: with one local subscriber, its
        // bytes are never shared.
        let mut owned = Some(frame);
        let count = entry.subscribers.len();
        for (i, sub) in entry.subscribers.iter_mut().enumerate() {
            let frame = if !exclude.is_empty() && exclude.contains(&sub.conn) {
                let Some(offset) = offset else { continue };
                match excluded.get_or_insert_with(|| excluded_frame(channel, offset)) {
                    Some(excluded) => Cow::Borrowed(&*excluded),
                    None => continue,
                }
            } else if i + 1 == count {
                match owned.take() {
                    Some(frame) => Cow::Owned(frame),
                    None => continue,
                }
            } else {
                match &owned {
                    Some(frame) => Cow::Borrowed(frame),
                    None => continue,
                }
            };
            if let Some(held) = &mut sub.held {
                if held.len() < self.hold_limit {
                    held.push(Held {
                        offset,
                        frame: frame.into_owned(),
                        priority,
                    });
                } else {
                    sub.overflowed = true;
                }
                continue;
            }
            if let Some(offset) = offset {
                if offset <= sub.delivered_through {
                    continue;
                }
                sub.delivered_through = offset;
            }
            match frame {
                Cow::Owned(frame) => sub.outbox.push_owned(frame, priority),
                Cow::Borrowed(frame) => sub.outbox.push(frame, priority),
            }
            delivered += 1;
        }
        delivered
    }

    /// Closes every local subscriber of `channel` with `code`.
    pub(crate) fn close_channel(&self, channel: &str, code: CloseCode) -> usize {
        let shard = self.shard(channel).lock();
        shard.get(channel).map_or(0, |entry| {
            for sub in &entry.subscribers {
                sub.outbox.close(code);
            }
            entry.subscribers.len()
        })
    }

    /// Closes every subscriber of every channel with `code`.
    pub(crate) fn close_all(&self, code: CloseCode) {
        for shard in &*self.shards {
            for entry in shard.lock().values() {
                for sub in &entry.subscribers {
                    sub.outbox.close(code);
                }
            }
        }
    }

    /// How many local subscribers `channel` has.
    pub(crate) fn subscriber_count(&self, channel: &str) -> usize {
        self.shard(channel)
            .lock()
            .get(channel)
            .map_or(0, |c| c.subscribers.len())
    }

    /// The connection keys of `channel`'s local subscribers.
    pub(crate) fn subscriber_keys(&self, channel: &str) -> Vec<u64> {
        self.shard(channel)
            .lock()
            .get(channel)
            .map_or_else(Vec::new, |c| c.subscribers.iter().map(|s| s.conn).collect())
    }

    /// Every channel whose name starts with `prefix` that has local subscribers, with how
    /// many.
    pub(crate) fn channels_with_prefix(&self, prefix: &str) -> Vec<(Arc<str>, usize)> {
        let mut found = Vec::new();
        for shard in &*self.shards {
            found.extend(
                shard
                    .lock()
                    .iter()
                    .filter(|(name, channel)| {
                        name.starts_with(prefix) && !channel.subscribers.is_empty()
                    })
                    .map(|(name, channel)| (Arc::clone(name), channel.subscribers.len())),
            );
        }
        found
    }

    /// How many channels have local subscribers.
    pub(crate) fn channel_count(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }
}

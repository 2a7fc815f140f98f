//! Per-channel continuity of one instance: every message exactly once, in ascending offset,
//! or an explicit reset.
//!
//! Live pub/sub messages are delivered when they are the next offset. Anything else either is
//! a duplicate (dropped) or reveals a gap or a new epoch, and then the channel *syncs*: it
//! reads the channel's position and the missing messages from the Redis stream and delivers
//! them in order; live messages arriving meanwhile are only noted and fetched by another
//! round. What cannot be fetched becomes an [`Event::Reset`].

use std::sync::Arc;

use bytes::Bytes;

use crate::types::{Envelope, Epoch, Event, Recovery, ResetReason};

/// At most this many fetch rounds per sync before giving up until the next trigger.
pub(crate) const MAX_ROUNDS: usize = 8;

/// One subscribed channel of this instance.
#[derive(Debug)]
pub(crate) struct Sub {
    /// Tells a re-subscription apart from the subscription a sync started for.
    pub(crate) id: u64,
    /// Local subscribers (the reference count).
    pub(crate) refs: usize,
    /// The epoch of `last`; `None` until the first position is known.
    epoch: Option<Epoch>,
    /// The last offset delivered.
    last: u64,
    /// A sync is running (only one at a time).
    syncing: bool,
    /// Someone asked for another round while one was running.
    again: bool,
    /// The newest live message noted while syncing.
    seen: Option<(Epoch, u64)>,
    /// Continuity is already known to be lost; the next sync says so first.
    pending_reset: Option<ResetReason>,
}

/// What to do after a live message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Live {
    Done,
    /// The caller now owns a sync of this channel and must run it.
    Sync,
}

/// What a sync round asks Redis for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Round {
    /// Known epoch (`None`: only the position is wanted).
    pub(crate) epoch: Option<Epoch>,
    /// Messages after this offset.
    pub(crate) after: u64,
}

impl Sub {
    pub(crate) fn new(id: u64) -> Self {
        Self {
            id,
            refs: 1,
            epoch: None,
            last: 0,
            syncing: false,
            again: false,
            seen: None,
            pending_reset: None,
        }
    }

    /// Whether an epoch is known, i.e. subscribers were told one.
    pub(crate) fn has_epoch(&self) -> bool {
        self.epoch.is_some()
    }

    /// The last offset delivered (where a local fallback epoch continues from).
    pub(crate) fn last(&self) -> u64 {
        self.last
    }

    /// Records that continuity is lost (local-only publishing, or subscribed while Redis was
    /// unreachable); an epoch change wins over missed messages.
    pub(crate) fn mark_reset(&mut self, reason: ResetReason) {
        if self.pending_reset != Some(ResetReason::EpochChanged) {
            self.pending_reset = Some(reason);
        }
    }

    /// Takes ownership of a sync; `false` when one is running (it will do another round).
    pub(crate) fn begin_sync(&mut self) -> bool {
        if self.syncing {
            self.again = true;
            false
        } else {
            self.syncing = true;
            self.again = false;
            true
        }
    }

    /// A live message from pub/sub.
    pub(crate) fn on_live(
        &mut self,
        channel: &Arc<str>,
        epoch: &str,
        offset: u64,
        data: Bytes,
        emit: &mut impl FnMut(Event),
    ) -> Live {
        let known = self.epoch.as_ref().map(Epoch::as_str);
        let duplicate = known == Some(epoch) && offset <= self.last;
        if self.syncing {
            // The running sync fetches it (another round if it is past that round's read).
            if !duplicate {
                self.note(epoch, offset);
            }
            return Live::Done;
        }
        if duplicate {
            return Live::Done;
        }
        if self.pending_reset.is_none() {
            match known {
                None => {
                    self.epoch = Some(Epoch::from(epoch));
                    self.deliver(channel, offset, data, emit);
                    return Live::Done;
                }
                Some(e) if e == epoch && offset == self.last + 1 => {
                    self.deliver(channel, offset, data, emit);
                    return Live::Done;
                }
                Some(_) => {}
            }
        }
        self.note(epoch, offset);
        self.syncing = true;
        self.again = false;
        Live::Sync
    }

    /// The channel announced a new epoch: unless it is the one already known, sync (which
    /// finds the epoch changed and says so with a reset).
    pub(crate) fn on_new_epoch(&mut self, epoch: &str) -> Live {
        if self.epoch.as_ref().is_some_and(|e| e.as_str() == epoch) {
            return Live::Done;
        }
        self.note(epoch, 0);
        if self.syncing {
            return Live::Done;
        }
        self.syncing = true;
        self.again = false;
        Live::Sync
    }

    fn note(&mut self, epoch: &str, offset: u64) {
        let newer = match &self.seen {
            Some((e, o)) => e.as_str() != epoch || offset > *o,
            None => true,
        };
        if newer {
            self.seen = Some((Epoch::from(epoch), offset));
        }
    }

    fn deliver(
        &mut self,
        channel: &Arc<str>,
        offset: u64,
        data: Bytes,
        emit: &mut impl FnMut(Event),
    ) {
        self.last = offset;
        emit(Event::Message(Envelope {
            channel: Arc::clone(channel),
            offset,
            data,
        }));
    }

    /// Starts a round (the caller owns the sync).
    pub(crate) fn start_round(&mut self) -> Round {
        self.again = false;
        self.seen = None;
        Round {
            epoch: if self.pending_reset.is_some() {
                None
            } else {
                self.epoch.clone()
            },
            after: self.last,
        }
    }

    /// Applies what a round read: `since(after, epoch)` of the channel.
    pub(crate) fn apply(
        &mut self,
        channel: &Arc<str>,
        read: Recovery,
        emit: &mut impl FnMut(Event),
    ) {
        let position = read.position;
        if let Some(reason) = self.pending_reset.take() {
            emit(Event::Reset {
                channel: Arc::clone(channel),
                reason,
            });
            self.epoch = Some(position.epoch);
            self.last = position.offset;
            return;
        }
        match &self.epoch {
            None => {
                self.epoch = Some(position.epoch);
                self.last = position.offset;
            }
            Some(known) if *known != position.epoch => {
                emit(Event::Reset {
                    channel: Arc::clone(channel),
                    reason: ResetReason::EpochChanged,
                });
                // Deliver the new epoch from its start if history still has it.
                self.epoch = Some(position.epoch);
                self.last = 0;
                self.again = true;
            }
            Some(_) => match read.messages {
                Some(messages) => {
                    for envelope in messages {
                        if envelope.offset == self.last + 1 {
                            self.last = envelope.offset;
                            emit(Event::Message(envelope));
                        }
                    }
                }
                None => {
                    emit(Event::Reset {
                        channel: Arc::clone(channel),
                        reason: ResetReason::MessagesMissed,
                    });
                    self.last = position.offset;
                }
            },
        }
    }

    /// Ends a round; `true` when another is needed. Otherwise the sync is over.
    pub(crate) fn finish_round(&mut self) -> bool {
        let behind = match (&self.seen, &self.epoch) {
            (Some((e, o)), Some(known)) => e != known || *o > self.last,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let another = self.again || behind;
        if !another {
            self.syncing = false;
        }
        another
    }

    /// Gives up syncing (round limit, or the round failed and nobody asked for more).
    pub(crate) fn end_sync(&mut self) {
        self.syncing = false;
        self.again = false;
    }

    /// Whether someone asked for another round while the last one ran.
    pub(crate) fn wants_again(&self) -> bool {
        self.again
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Position;

    fn ch() -> Arc<str> {
        "room".into()
    }

    fn recovery(epoch: &str, offset: u64, messages: Option<&[u64]>) -> Recovery {
        Recovery {
            position: Position {
                offset,
                epoch: Epoch::from(epoch),
            },
            messages: messages.map(|m| {
                m.iter()
                    .map(|&o| Envelope {
                        channel: ch(),
                        offset: o,
                        data: Bytes::new(),
                    })
                    .collect()
            }),
        }
    }

    fn describe(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Message(m) => format!("m{}", m.offset),
                Event::Reset { reason, .. } => format!("reset:{reason:?}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// A subscription whose baseline is `epoch` at `offset`.
    fn synced(epoch: &str, offset: u64) -> Sub {
        let mut sub = Sub::new(1);
        assert!(sub.begin_sync());
        assert_eq!(sub.start_round().epoch, None);
        sub.apply(&ch(), recovery(epoch, offset, None), &mut |_| {});
        assert!(!sub.finish_round());
        sub
    }

    #[test]
    fn the_next_offset_is_delivered_and_duplicates_are_dropped() {
        let mut sub = synced("e", 5);
        let mut out = Vec::new();
        for o in [6, 6, 5, 7] {
            assert_eq!(
                sub.on_live(&ch(), "e", o, Bytes::new(), &mut |e| out.push(e)),
                Live::Done
            );
        }
        assert_eq!(describe(&out), ["m6", "m7"]);
    }

    #[test]
    fn a_gap_is_filled_from_history_before_later_live_messages() {
        let mut sub = synced("e", 5);
        let mut out = Vec::new();
        assert_eq!(
            sub.on_live(&ch(), "e", 8, Bytes::new(), &mut |e| out.push(e)),
            Live::Sync
        );
        // Arrives while the fetch is in flight: noted, not delivered.
        sub.on_live(&ch(), "e", 9, Bytes::new(), &mut |e| out.push(e));
        assert_eq!(
            sub.start_round(),
            Round {
                epoch: Some("e".into()),
                after: 5
            }
        );
        sub.on_live(&ch(), "e", 10, Bytes::new(), &mut |e| out.push(e));
        sub.apply(&ch(), recovery("e", 9, Some(&[6, 7, 8, 9])), &mut |e| {
            out.push(e)
        });
        assert!(sub.finish_round(), "10 was seen during the round");
        sub.start_round();
        sub.apply(&ch(), recovery("e", 10, Some(&[10])), &mut |e| out.push(e));
        assert!(!sub.finish_round());
        sub.on_live(&ch(), "e", 11, Bytes::new(), &mut |e| out.push(e));
        assert_eq!(describe(&out), ["m6", "m7", "m8", "m9", "m10", "m11"]);
    }

    #[test]
    fn trimmed_history_resets_and_continues_from_the_current_position() {
        let mut sub = synced("e", 5);
        let mut out = Vec::new();
        assert_eq!(
            sub.on_live(&ch(), "e", 300, Bytes::new(), &mut |e| out.push(e)),
            Live::Sync
        );
        sub.start_round();
        sub.apply(&ch(), recovery("e", 300, None), &mut |e| out.push(e));
        assert!(!sub.finish_round());
        sub.on_live(&ch(), "e", 301, Bytes::new(), &mut |e| out.push(e));
        assert_eq!(describe(&out), ["reset:MessagesMissed", "m301"]);
    }

    #[test]
    fn a_new_epoch_resets_then_delivers_the_new_epoch_from_its_start() {
        let mut sub = synced("old", 40);
        let mut out = Vec::new();
        assert_eq!(
            sub.on_live(&ch(), "new", 2, Bytes::new(), &mut |e| out.push(e)),
            Live::Sync
        );
        sub.start_round();
        sub.apply(&ch(), recovery("new", 2, None), &mut |e| out.push(e));
        assert!(sub.finish_round());
        assert_eq!(
            sub.start_round(),
            Round {
                epoch: Some("new".into()),
                after: 0
            }
        );
        sub.apply(&ch(), recovery("new", 2, Some(&[1, 2])), &mut |e| {
            out.push(e)
        });
        assert!(!sub.finish_round());
        assert_eq!(describe(&out), ["reset:EpochChanged", "m1", "m2"]);
    }

    #[test]
    fn a_pending_reset_is_reported_before_anything_else_and_rebases() {
        let mut sub = synced("e", 5);
        sub.mark_reset(ResetReason::EpochChanged);
        sub.mark_reset(ResetReason::MessagesMissed);
        let mut out = Vec::new();
        assert_eq!(
            sub.on_live(&ch(), "e", 6, Bytes::new(), &mut |e| out.push(e)),
            Live::Sync
        );
        assert_eq!(sub.start_round().epoch, None);
        sub.apply(&ch(), recovery("e", 6, None), &mut |e| out.push(e));
        assert!(!sub.finish_round());
        sub.on_live(&ch(), "e", 7, Bytes::new(), &mut |e| out.push(e));
        assert_eq!(describe(&out), ["reset:EpochChanged", "m7"]);
    }

    #[test]
    fn only_one_sync_runs_and_a_second_request_asks_for_another_round() {
        let mut sub = synced("e", 1);
        assert!(sub.begin_sync());
        assert!(!sub.begin_sync());
        assert!(sub.wants_again());
        sub.start_round();
        assert!(!sub.wants_again());
        sub.apply(&ch(), recovery("e", 1, Some(&[])), &mut |_| {});
        assert!(!sub.finish_round());
        assert!(sub.begin_sync());
    }
}

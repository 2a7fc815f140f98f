//! Pub/sub dispatch: what each push means, and the pump that turns pushes into events in
//! order, answers survey requests and starts a channel's catch-up when a push reveals a gap.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use redis::PushInfo;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::call::publish_raw;
use super::continuity::Live as LiveOutcome;
use super::failure::Break;
use super::layout::{Incoming, presence_change};
use super::shared::{Shared, State, sub_entry};
use super::survey;
use crate::types::{DegradedCause, Event, PresenceAction, PresenceEntry, Scope, Survey};

impl Shared {
    /// This instance's own answers to a survey `request`.
    pub(super) fn answer(&self, request: &[u8]) -> Vec<Bytes> {
        let mut answers = Vec::new();
        if let Some(outlet) = self.state.lock().events.as_ref() {
            outlet.answer(request, &mut answers);
        }
        answers
    }

    /// A survey while Redis is unreachable: only this instance answers.
    pub(super) fn survey_locally(&self, request: &[u8]) -> Survey {
        Survey::new(self.answer(request), 1, 1, Scope::LocalOnly)
    }

    /// Answers survey `id` of instance `node` on its reply channel. A reply that cannot be
    /// sent is missing from that survey, which says so (`replied < asked`).
    pub(super) async fn reply(&self, node: &str, id: u64, answers: &[Bytes]) {
        let Some(live) = self.live() else { return };
        let publish = publish_raw(&live, self.keys.reply(node), survey::reply(id, answers));
        if let Err(err) = self.call(live.generation, publish).await {
            tracing::debug!(
                node,
                id,
                error = err.reason(),
                "a survey reply was not sent"
            );
        }
    }

    /// A live message from pub/sub: delivered at once when it is the next in order, else
    /// the catch-up it calls for (which the caller runs with [`Self::run_sync`], off the
    /// pump, so that one channel's gap never holds up the others).
    pub(super) fn on_message(
        &self,
        channel: &str,
        epoch: &str,
        offset: u64,
        data: Bytes,
    ) -> Option<(Arc<str>, u64)> {
        let mut st = self.state.lock();
        let State { subs, events, .. } = &mut *st;
        let (name, sub) = sub_entry(subs, channel)?;
        let mut emit = |e| Self::emit(events.as_ref(), &self.counters, e);
        match sub.on_live(&name, epoch, offset, data, &mut emit) {
            LiveOutcome::Done => None,
            LiveOutcome::Sync => Some((name, sub.id)),
        }
    }

    /// Another instance started a new epoch for `channel` (it delivered messages locally
    /// while cut off): the catch-up to run (off the pump), which resets this instance's
    /// subscribers.
    pub(super) fn on_new_epoch(&self, channel: &str, epoch: &str) -> Option<(Arc<str>, u64)> {
        let mut st = self.state.lock();
        let (name, sub) = sub_entry(&mut st.subs, channel)?;
        match sub.on_new_epoch(epoch) {
            LiveOutcome::Done => None,
            LiveOutcome::Sync => Some((name, sub.id)),
        }
    }

    pub(super) fn on_presence(&self, channel: &str, action: PresenceAction, entry: PresenceEntry) {
        let st = self.state.lock();
        if let Some((name, _)) = st.subs.get_key_value(channel) {
            let change = presence_change(name, action, entry);
            Self::emit(st.events.as_ref(), &self.counters, Event::Presence(change));
        }
    }
}

/// What one push from connection `generation` means.
pub(super) fn parse_push(
    shared: &Shared,
    generation: u64,
    push: redis::PushInfo,
) -> Option<Pushed> {
    match push.kind {
        redis::PushKind::Disconnection => Some(Pushed::Disconnected),
        redis::PushKind::Message => {
            let mut data = push.data.into_iter();
            let (Some(redis::Value::BulkString(name)), Some(redis::Value::BulkString(payload))) =
                (data.next(), data.next())
            else {
                return None;
            };
            if name == shared.control_channel.as_bytes() {
                let (node, id, request) = survey::parse_request(&Bytes::from(payload))?;
                return Some(Pushed::Request { node, id, request });
            }
            if name == shared.reply_channel.as_bytes() {
                let (id, answers) = survey::parse_reply(&Bytes::from(payload))?;
                return Some(Pushed::Reply { id, answers });
            }
            if name == shared.probe_channel.as_bytes() {
                let echoed: u64 = std::str::from_utf8(&payload).ok()?.parse().ok()?;
                return (echoed == generation).then_some(Pushed::Echo);
            }
            let channel = shared.keys.channel_of(&name)?.to_owned();
            match Incoming::parse(&Bytes::from(payload)) {
                Some(incoming) => Some(Pushed::Channel(channel, incoming)),
                None => {
                    tracing::warn!(%channel, "ignoring a pub/sub payload not written by a switchboard backplane");
                    None
                }
            }
        }
        _ => None,
    }
}

/// What a push means.
pub(super) enum Pushed {
    Disconnected,
    Echo,
    /// A survey request from instance `node` (this one included).
    Request {
        node: String,
        id: u64,
        request: Bytes,
    },
    /// A reply to one of this instance's surveys.
    Reply {
        id: u64,
        answers: Vec<Bytes>,
    },
    Channel(String, Incoming),
}

/// Turns pushes into events until stopped. A push that reveals a gap starts that channel's
/// catch-up as a task of its own: the pump goes on with every other channel meanwhile (the
/// caught-up channel's live messages are noted by its sync and fetched in order). Stopping
/// the pump ends the catch-ups it started.
pub(super) async fn pump(
    shared: Arc<Shared>,
    mut pushes: mpsc::Receiver<(u64, PushInfo)>,
    mut stop: watch::Receiver<()>,
) {
    let mut syncs = JoinSet::new();
    loop {
        let item = tokio::select! {
            item = pushes.recv() => item,
            Some(done) = syncs.join_next(), if !syncs.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a channel's catch-up task failed");
                }
                continue;
            }
            _ = stop.changed() => return,
        };
        let Some((generation, push)) = item else {
            return;
        };
        let sync = match parse_push(&shared, generation, push) {
            Some(Pushed::Disconnected) => {
                shared.break_connection(
                    generation,
                    Break::new(DegradedCause::ConnectionLost, "redis: connection lost"),
                );
                None
            }
            Some(Pushed::Echo) => {
                *shared.last_echo.lock() = Some((generation, Instant::now()));
                shared.echo.notify_one();
                None
            }
            Some(Pushed::Request { node, id, request }) => {
                // Answered here, in order with the messages before it; the reply is sent off
                // the pump.
                let answers = shared.answer(&request);
                let shared = Arc::clone(&shared);
                syncs.spawn(async move { shared.reply(&node, id, &answers).await });
                None
            }
            Some(Pushed::Reply { id, answers }) => {
                shared.surveys.on_reply(id, answers);
                None
            }
            Some(Pushed::Channel(
                channel,
                Incoming::Message {
                    epoch,
                    offset,
                    data,
                },
            )) => shared.on_message(&channel, &epoch, offset, data),
            Some(Pushed::Channel(channel, Incoming::Presence { action, entry })) => {
                shared.on_presence(&channel, action, entry);
                None
            }
            Some(Pushed::Channel(channel, Incoming::NewEpoch { epoch })) => {
                shared.on_new_epoch(&channel, &epoch)
            }
            None => None,
        };
        if let Some((name, id)) = sync {
            let shared = Arc::clone(&shared);
            syncs.spawn(async move { shared.run_sync(name, id).await });
        }
        if shared.gate.overflow.swap(false, Ordering::Relaxed) {
            // Channels already catching up are asked for another round instead.
            let shared = Arc::clone(&shared);
            syncs.spawn(async move { shared.sync_all().await });
        }
    }
}

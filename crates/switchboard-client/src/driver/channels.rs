//! The channels the application subscribed to (and those the server subscribed the
//! connection to): subscribing, confirmations, messages in offset order with gaps recovered,
//! presence, and the server ending a subscription.

use switchboard_protocol::{
    ChannelName, ClientFrame, Excluded, Message, PresenceEvent, Subscribe, Subscribed, Unsubscribe,
    Unsubscribed,
};
use tokio::time::Instant;

use super::channel_entry::Phase;
use super::task::Driver;
use crate::{ServerSubscriptionEvent, SubscriptionEvent};

impl Driver {
    pub(super) fn send_subscribe(&mut self, channel: &ChannelName) {
        let Some(entry) = self.channels.get_mut(channel) else {
            return;
        };
        self.next_request += 1;
        let id = format!("s{}", self.next_request);
        entry.phase = Phase::Pending(id.clone());
        entry.retry_at = None;
        let frame = ClientFrame::Subscribe(Subscribe {
            channel: channel.clone(),
            id: Some(id.clone()),
            since: entry.position.clone(),
        });
        self.requests.insert(id, channel.clone());
        self.out.push(frame.encode());
    }

    pub(super) fn retry_subscriptions(&mut self, now: Instant) {
        let due: Vec<ChannelName> = self
            .channels
            .iter()
            .filter(|(_, c)| c.phase == Phase::Idle && c.retry_at.is_some_and(|at| at <= now))
            .map(|(name, _)| name.clone())
            .collect();
        for channel in &due {
            self.send_subscribe(channel);
        }
    }

    pub(super) fn on_subscribed(&mut self, subscribed: &Subscribed) {
        let Some(id) = &subscribed.id else {
            return;
        };
        let Some(channel) = self.requests.remove(id) else {
            return;
        };
        let Some(entry) = self.channels.get_mut(&channel) else {
            return;
        };
        if !matches!(&entry.phase, Phase::Pending(pending) if pending == id) {
            return;
        }
        entry.phase = Phase::Live;
        let server = subscribed.position();
        let resumed = entry.position.is_some();
        match &mut entry.position {
            // Recovered: the replay follows, and continues from the last delivered offset.
            Some(position) if subscribed.recovered => position.epoch.clone_from(&server.epoch),
            position => *position = Some(server.clone()),
        }
        let start = entry.position.clone().unwrap_or_else(|| server.clone());
        entry.listeners.retain_mut(|listener| {
            let event = if resumed && listener.confirmed {
                SubscriptionEvent::Resubscribed {
                    recovered: subscribed.recovered,
                    position: server.clone(),
                }
            } else {
                SubscriptionEvent::Subscribed {
                    position: start.clone(),
                }
            };
            listener.confirmed = true;
            listener.deliver(event)
        });
    }

    /// The server subscribed this connection itself. A channel the application subscribed
    /// to already delivers to its subscriptions; any other is tracked for the server stream.
    pub(super) fn on_server_subscribed(&mut self, subscribed: Subscribed) {
        if self.channels.contains_key(&subscribed.channel) {
            return;
        }
        let position = subscribed.position();
        // Recovered: the replay follows from where the backend said, in order.
        let last = if subscribed.recovered {
            0
        } else {
            subscribed.offset
        };
        self.server_channels
            .insert(subscribed.channel.clone(), last);
        let _ = self
            .shared
            .server_events
            .send(ServerSubscriptionEvent::Subscribed {
                channel: subscribed.channel,
                position,
                recovered: subscribed.recovered,
            });
    }

    /// An `unsubscribed` the server sent on its own (with a reason): the subscription is
    /// over and is not made again. One without a reason answers this client's own
    /// `unsubscribe`.
    pub(super) fn on_unsubscribed(&mut self, unsubscribed: Unsubscribed) {
        let Some(reason) = unsubscribed.reason else {
            return;
        };
        let channel = unsubscribed.channel;
        if let Some(entry) = self.channels.remove(&channel) {
            if let Phase::Pending(id) = &entry.phase {
                self.requests.remove(id);
            }
            let event = SubscriptionEvent::Unsubscribed {
                reason: reason.clone(),
            };
            for listener in entry.listeners {
                listener.deliver(event.clone());
            }
        }
        if self.server_channels.remove(&channel).is_some() {
            let _ = self
                .shared
                .server_events
                .send(ServerSubscriptionEvent::Unsubscribed { channel, reason });
        }
    }

    pub(super) fn on_message(&mut self, message: Message) {
        // A channel the application subscribed to delivers to its subscriptions only.
        if !self.channels.contains_key(&message.channel) {
            if let Some(last) = self.server_channels.get_mut(&message.channel)
                && message.offset > *last
            {
                *last = message.offset;
                let _ = self
                    .shared
                    .server_events
                    .send(ServerSubscriptionEvent::Message(message));
            }
            return;
        }
        if self.advance(&message.channel, message.offset) {
            let Some(entry) = self.channels.get_mut(&message.channel) else {
                return;
            };
            let event = SubscriptionEvent::Message(message);
            entry
                .listeners
                .retain(|listener| listener.deliver(event.clone()));
        }
    }

    /// An offset this connection was excluded from: it advances the position like a message
    /// and delivers nothing.
    pub(super) fn on_excluded(&mut self, excluded: &Excluded) {
        self.advance(&excluded.channel, excluded.offset);
    }

    /// Moves a live channel's position to `offset` when it is the next one and says so; a
    /// repeated offset is dropped, and a gap resubscribes from the position to recover what
    /// is missing from history.
    pub(super) fn advance(&mut self, channel: &ChannelName, offset: u64) -> bool {
        let Some(entry) = self.channels.get_mut(channel) else {
            return false;
        };
        if entry.phase != Phase::Live {
            return false;
        }
        let Some(position) = entry.position.as_mut() else {
            return false;
        };
        if offset <= position.offset {
            tracing::trace!(%channel, offset, "dropping a duplicate");
            return false;
        }
        if offset > position.offset + 1 {
            // Something between was evicted or lost: recover it from history.
            tracing::debug!(
                %channel,
                expected = position.offset + 1,
                got = offset,
                "gap in a channel's offsets; recovering"
            );
            self.out.push(
                ClientFrame::Unsubscribe(Unsubscribe {
                    channel: channel.clone(),
                    id: None,
                })
                .encode(),
            );
            self.send_subscribe(channel);
            return false;
        }
        position.offset = offset;
        true
    }

    pub(super) fn on_presence(&mut self, event: PresenceEvent) {
        let Some(entry) = self.channels.get_mut(&event.channel) else {
            return;
        };
        if entry.phase != Phase::Live {
            return;
        }
        let event = SubscriptionEvent::Presence(event);
        entry
            .listeners
            .retain(|listener| listener.deliver(event.clone()));
    }
}

//! What the client handles ask: subscribe, unsubscribe, presence, close.

use switchboard_protocol::{ClientFrame, Unsubscribe};

use super::channel_entry::{ChannelEntry, Phase};
use super::task::{Driver, Flow};
use crate::command::Command;
use crate::{ServerSubscriptionEvent, SubscriptionEvent};

impl Driver {
    pub(super) fn on_command(&mut self, command: Option<Command>) -> Flow {
        match command {
            // Every handle is gone.
            None => Flow::Close(None),
            Some(Command::Close { done }) => Flow::Close(done),
            Some(Command::Subscribe {
                channel,
                mut listener,
            }) => {
                let entry = self
                    .channels
                    .entry(channel.clone())
                    .or_insert_with(|| ChannelEntry {
                        listeners: Vec::new(),
                        position: None,
                        phase: Phase::Idle,
                        retry_at: None,
                    });
                if entry.phase == Phase::Live
                    && let Some(position) = &entry.position
                {
                    listener.confirmed = true;
                    listener.deliver(SubscriptionEvent::Subscribed {
                        position: position.clone(),
                    });
                }
                entry.listeners.push(listener);
                if self.connected && entry.phase == Phase::Idle && entry.retry_at.is_none() {
                    self.send_subscribe(&channel);
                }
                Flow::Continue
            }
            Some(Command::Unsubscribe { channel, listener }) => {
                let Some(entry) = self.channels.get_mut(&channel) else {
                    return Flow::Continue;
                };
                entry.listeners.retain(|l| l.id != listener);
                if entry.listeners.is_empty()
                    && let Some(entry) = self.channels.remove(&channel)
                {
                    if let Phase::Pending(id) = &entry.phase {
                        self.requests.remove(id);
                    }
                    if self.connected && entry.phase != Phase::Idle {
                        // The server subscription on the channel, if any, ends with it.
                        if self.server_channels.remove(&channel).is_some() {
                            let _ = self.shared.server_events.send(
                                ServerSubscriptionEvent::Unsubscribed {
                                    channel: channel.clone(),
                                    reason: "unsubscribed".into(),
                                },
                            );
                        }
                        self.out.push(
                            ClientFrame::Unsubscribe(Unsubscribe { channel, id: None }).encode(),
                        );
                    }
                }
                Flow::Continue
            }
            Some(Command::Presence(update)) => {
                if self.connected {
                    self.out
                        .push(ClientFrame::PresenceUpdate(update.clone()).encode());
                }
                if update.channel.is_none() {
                    self.presence = Some(update);
                }
                Flow::Continue
            }
        }
    }
}

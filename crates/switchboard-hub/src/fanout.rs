//! Backplane events to local subscribers: the hub is a sink of its backplane instance.
//!
//! The hub attaches an [`EventSink`] to its backplane, so each event is handled where the
//! backplane produces it — for the memory backplane, in the publishing task itself, under
//! the channel's lock — with no queue or task hop in between. The frame is encoded once per
//! message and handed to every local subscriber's outbox, which writes it straight to the
//! socket when it can.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use switchboard_backplane::{Backplane, Event, EventSink, PresenceAction, PresenceChange};
use switchboard_protocol::{ChannelName, CloseCode, EncodedFrame, Member, Priority, unix_us};

use crate::envelope::decode_envelope;
use crate::state::{HubInner, now_ms};

/// The hub as its backplane's event sink. Weak: the backplane, which the hub owns, holds it.
struct HubSink<B>(Weak<HubInner<B>>);

impl<B: Backplane> EventSink for HubSink<B> {
    fn deliver(&self, event: Event) {
        if let Some(hub) = self.0.upgrade() {
            on_event(&hub, event);
        }
    }

    fn answer(&self, request: &[u8]) -> Option<bytes::Bytes> {
        crate::control::answer(&*self.0.upgrade()?, request)
    }

    fn is_closed(&self) -> bool {
        self.0.strong_count() == 0
    }
}

/// Makes `hub` a consumer of its backplane instance's events. Never through a queue, so the
/// hub cannot fall behind its backplane: a local subscriber only ever loses continuity for
/// its own channel (an `Event::Reset`), never because other channels were busy.
pub(crate) fn connect<B: Backplane>(hub: &Arc<HubInner<B>>) {
    if let Err(err) = hub.backplane.attach(Arc::new(HubSink(Arc::downgrade(hub)))) {
        // Only a backplane that was shut down refuses; it delivers nothing from now on.
        tracing::warn!(%err, "the backplane refused the hub's event sink");
    }
}

/// Hands one backplane event to the local subscribers.
fn on_event<B: Backplane>(hub: &HubInner<B>, event: Event) {
    match event {
        Event::Message(envelope) => {
            match decode_envelope(&envelope.data, envelope.offset, &hub.ids) {
                Some(delivery) => {
                    let since_publish = || {
                        Duration::from_micros(
                            unix_us(SystemTime::now()).saturating_sub(delivery.published_us),
                        )
                    };
                    hub.metrics.backplane_received();
                    hub.metrics.backplane_lag(since_publish());
                    let delivered = hub.registry.deliver(
                        &envelope.channel,
                        Some(envelope.offset),
                        delivery.frame,
                        delivery.priority,
                        &delivery.exclude,
                    );
                    // Written to the socket of every local subscriber keeping up with its
                    // reads (the rest have it queued): publish → written.
                    if delivered > 0 {
                        hub.metrics.observe_latency(since_publish());
                    }
                }
                None => tracing::warn!(
                    channel = %envelope.channel,
                    offset = envelope.offset,
                    "dropping a backplane message that was not written by a switchboard hub"
                ),
            }
        }
        Event::Presence(change) => {
            let quiet = matches!(change.action, PresenceAction::Join | PresenceAction::Leave)
                && !hub.policies.of(&change.channel).join_leave;
            if quiet {
                return;
            }
            if let Some(frame) = presence_frame(&change) {
                hub.registry
                    .deliver(&change.channel, None, frame, Priority::High, &[]);
            }
        }
        Event::Reset { channel, reason } => {
            let closed = hub
                .registry
                .close_channel(&channel, CloseCode::SlowConsumer);
            tracing::warn!(%channel, ?reason, closed, "channel continuity lost; subscribers must recover");
        }
        _ => {}
    }
}

/// The `presence-update` frame for a change.
fn presence_frame(change: &PresenceChange) -> Option<EncodedFrame> {
    use switchboard_protocol::{PresenceAction as Wire, PresenceEvent, ServerFrame};
    let action = match change.action {
        PresenceAction::Join => Wire::Join,
        PresenceAction::Update => Wire::Update,
        PresenceAction::Leave => Wire::Leave,
        _ => return None,
    };
    Some(
        ServerFrame::PresenceUpdate(PresenceEvent {
            channel: ChannelName::new(&change.channel).ok()?,
            action,
            member: serde_json::from_slice::<Member>(&change.entry.data).ok()?,
            timestamp: now_ms(),
        })
        .encode(),
    )
}

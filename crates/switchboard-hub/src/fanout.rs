//! Backplane events to local subscribers: the hub is its backplane instance's one consumer.
//!
//! The hub attaches an [`EventSink`] to its backplane, so each event is handled where the
//! backplane produces it — for the memory backplane, in the publishing task itself, under
//! the channel's lock — with no queue or task hop in between. The frame is encoded once per
//! message and handed to every local subscriber's outbox, which writes it straight to the
//! socket when it can.

use std::sync::{Arc, Weak};
use std::time::Duration;

use switchboard_backplane::{
    Backplane, BackplaneError, Event, EventReceiver, EventSink, PresenceAction, PresenceChange,
};
use switchboard_protocol::{ChannelName, CloseCode, EncodedFrame, Member, Priority};
use tokio::sync::watch;

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
}

/// Makes `hub` its backplane's consumer. When the instance has a consumer already (another
/// hub attached to the same instance), falls back to a receiver drained by a task, which
/// ends with the hub.
pub(crate) fn connect<B: Backplane>(hub: &Arc<HubInner<B>>, alive: watch::Receiver<()>) {
    match hub.backplane.attach(Arc::new(HubSink(Arc::downgrade(hub)))) {
        Ok(()) => {}
        Err(err) => {
            if matches!(err, BackplaneError::AlreadyAttached) {
                tracing::warn!(
                    "the backplane instance has another hub attached; receiving its events \
                     through a queue (give each hub its own instance)"
                );
            }
            tokio::spawn(drain(Arc::downgrade(hub), hub.backplane.events(), alive));
        }
    }
}

/// The fallback: receives events from a queue until the backplane or the hub is gone.
async fn drain<B: Backplane>(
    hub: Weak<HubInner<B>>,
    mut events: EventReceiver,
    mut alive: watch::Receiver<()>,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Some(event) => event,
                None => return,
            },
            _ = alive.changed() => return,
        };
        let Some(hub) = hub.upgrade() else { return };
        on_event(&hub, event);
    }
}

/// Hands one backplane event to the local subscribers.
fn on_event<B: Backplane>(hub: &HubInner<B>, event: Event) {
    match event {
        Event::Message(envelope) => match decode_envelope(&envelope.data, envelope.offset) {
            Some(delivery) => {
                hub.metrics.backplane_received();
                hub.metrics.backplane_lag(Duration::from_millis(
                    now_ms().saturating_sub(delivery.published_ms),
                ));
                hub.registry.deliver(
                    &envelope.channel,
                    Some(envelope.offset),
                    &delivery.frame,
                    delivery.priority,
                );
            }
            None => tracing::warn!(
                channel = %envelope.channel,
                offset = envelope.offset,
                "dropping a backplane message that was not written by a switchboard hub"
            ),
        },
        Event::Presence(change) => {
            if let Some(frame) = presence_frame(&change) {
                hub.registry
                    .deliver(&change.channel, None, &frame, Priority::High);
            }
        }
        Event::Reset { channel, reason } => {
            let closed = hub
                .registry
                .close_channel(&channel, CloseCode::SlowConsumer);
            tracing::warn!(%channel, ?reason, closed, "channel continuity lost; subscribers must recover");
        }
        Event::Lagged { missed } => {
            tracing::error!(
                missed,
                "hub fell behind the backplane; closing every subscriber so they recover"
            );
            hub.registry.close_all(CloseCode::SlowConsumer);
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

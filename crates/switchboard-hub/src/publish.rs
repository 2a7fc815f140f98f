//! Publishing: one message redacted, stamped and encoded once, handed to the backplane, and
//! reported to lifecycle listeners — the one place every publish goes through.

use std::sync::Arc;

use switchboard_backplane::{Backplane, BackplaneError, PublishOptions};
use switchboard_protocol::{ChannelName, EventType, MessageDraft, Payload, Priority, Sender};

use crate::envelope::encode_envelope;
use crate::hub::PublishReceipt;
use crate::lifecycle::HubEvent;
use crate::state::{HubInner, now_ms};

/// Who publishes: a connection, or server-side code.
pub(crate) struct Publisher {
    pub(crate) connection_id: Arc<str>,
    pub(crate) user_id: Option<Arc<str>>,
}

impl Publisher {
    /// Server-side code: `{"userId": null, "connectionId": "$server"}`.
    pub(crate) fn server() -> Self {
        Self {
            connection_id: Sender::SERVER_CONNECTION_ID.into(),
            user_id: None,
        }
    }
}

impl<B: Backplane> HubInner<B> {
    /// Redacts, stamps and encodes a message once, publishes it through the backplane, and
    /// reports [`HubEvent::Published`] unless it repeated an earlier publish.
    pub(crate) async fn publish(
        &self,
        publisher: &Publisher,
        channel: ChannelName,
        event: EventType,
        payload: Payload,
        id: Option<String>,
        priority: Priority,
    ) -> Result<PublishReceipt, BackplaneError> {
        let from = Sender {
            user_id: publisher.user_id.as_deref().map(str::to_owned),
            connection_id: publisher.connection_id.to_string(),
        };
        // Only an id the publisher chose can come back in a retry; generated ones are unique.
        let dedupe = id.is_some();
        let id = id.unwrap_or_else(|| self.ids.next('m'));
        let draft = MessageDraft {
            event,
            payload: self.redactor.redact_payload(payload),
            id,
            timestamp: now_ms(),
            priority,
            from,
            channel,
        };
        let data = encode_envelope(&draft.encode(), priority, draft.timestamp);
        let key = dedupe.then(|| dedupe_key(&draft.from, &draft.id));
        let mut options = PublishOptions::default();
        if let Some(key) = &key {
            options = options.dedupe_key(key);
        }
        let published = self
            .backplane
            .publish_with(&draft.channel, data, options)
            .await?;
        if published.duplicate {
            tracing::debug!(
                channel = %draft.channel,
                id = %draft.id,
                offset = published.offset,
                "a repeated publish id was acknowledged with its first offset, not delivered again"
            );
        } else {
            self.metrics.backplane_published();
            let _ = self.events.send(HubEvent::Published {
                connection_id: Arc::clone(&publisher.connection_id),
                user_id: publisher.user_id.clone(),
                channel: draft.channel.clone(),
                id: draft.id.clone(),
                offset: published.offset,
            });
        }
        Ok(PublishReceipt {
            id: draft.id,
            offset: published.offset,
            scope: published.scope,
            duplicate: published.duplicate,
        })
    }
}

/// The backplane dedupe key of a publish: its id, scoped to who published it, so that two
/// users choosing the same id never collide. Lengths keep the parts unambiguous.
fn dedupe_key(from: &Sender, id: &str) -> String {
    if from.connection_id == Sender::SERVER_CONNECTION_ID && from.user_id.is_none() {
        format!("s:{id}")
    } else if let Some(user) = &from.user_id {
        format!("u{}:{user}{id}", user.len())
    } else {
        format!("a:{id}")
    }
}

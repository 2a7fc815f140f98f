//! Publishing: one message redacted, stamped and encoded once, handed to the backplane, and
//! reported to lifecycle listeners — the one place every publish goes through.

use std::sync::Arc;
use std::time::SystemTime;

use switchboard_backplane::{Backplane, BackplaneError, PublishOptions, Published, Scope};
use switchboard_protocol::{
    ChannelName, ClientId, DraftParts, EventType, Payload, Priority, Sender, unix_us,
};

use crate::envelope::encode_envelope;
use crate::ids::MessageId;
use crate::lifecycle::HubEvent;
use crate::state::HubInner;

/// The receipt of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// The message id (the publisher's, or generated).
    pub id: String,
    /// The offset the backplane assigned.
    pub offset: u64,
    /// Whether it reached every instance or only this one (backplane degraded).
    pub scope: Scope,
    /// `true` when the publish repeated an `id` its publisher (the same user; all anonymous
    /// connections share one scope, server-side code another) already published on the
    /// channel within the backplane's dedupe window: nothing was delivered again, and
    /// `offset` is the first publish's. This makes retries after a lost `ack` idempotent.
    pub duplicate: bool,
}

/// Who publishes: a connection, or server-side code.
pub(crate) struct Publisher {
    pub(crate) connection_id: Arc<str>,
    pub(crate) user_id: Option<Arc<str>>,
    /// The client instance's id, when it gave one: the scope of its publish ids.
    pub(crate) client: Option<ClientId>,
}

impl Publisher {
    /// Server-side code: `{"userId": null, "connectionId": "$server"}`.
    pub(crate) fn server() -> Self {
        Self {
            connection_id: Sender::SERVER_CONNECTION_ID.into(),
            user_id: None,
            client: None,
        }
    }
}

impl<B: Backplane> HubInner<B> {
    /// Redacts, stamps and encodes a message once, publishes it through the backplane, and
    /// reports [`HubEvent::Published`] unless it repeated an earlier publish.
    ///
    /// The message is encoded when this is called, and published too when the backplane
    /// can do that without waiting ([`Backplane::publish_now`]): then the answer is
    /// [`Publishing::Done`], with no future at all. Otherwise the future only carries the
    /// encoded bytes and what the answer needs across the backplane's await, which keeps
    /// the future every such client publish allocates small.
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one publish, each moved into the draft once"
    )]
    pub(crate) fn publish<'a>(
        &'a self,
        publisher: Publisher,
        channel: ChannelName,
        event: &EventType,
        payload: Payload,
        id: Option<String>,
        priority: Priority,
        exclude: &[&str],
    ) -> Publishing<impl Future<Output = Result<Receipt, BackplaneError>> + Send + use<'a, B>> {
        // Only an id the publisher chose can come back in a retry; generated ones are unique.
        let key = id.as_deref().map(|id| dedupe_key(&publisher, id));
        // One clock read: the frame's `timestamp`, and the envelope's finer publish time
        // that backplane lag and message latency are measured from.
        let now_us = unix_us(SystemTime::now());
        let payload = self.redactor.redact_payload(payload);
        let id = match id {
            Some(id) => PublishId::Given(id),
            None => PublishId::Generated(self.ids.next_message()),
        };
        // Encoded from borrowed parts: the publisher's ids are not copied to be written.
        let draft = DraftParts {
            event,
            channel: &channel,
            payload: &payload,
            id: id.as_str(),
            // Whole milliseconds of the same reading, as `unix_ms` would give them.
            timestamp: now_us / 1000,
            priority,
            user_id: publisher.user_id.as_deref(),
            connection_id: &publisher.connection_id,
        };
        let data = encode_envelope(&draft, priority, now_us, exclude);
        let done = Done {
            publisher,
            channel,
            id,
        };
        if let Some(published) =
            self.backplane
                .publish_now(&done.channel, &data, options(key.as_deref()))
        {
            return Publishing::Done(published.map(|published| self.published(done, &published)));
        }
        Publishing::Waiting(async move {
            let published = self
                .backplane
                .publish_with(&done.channel, data, options(key.as_deref()))
                .await?;
            Ok(self.published(done, &published))
        })
    }

    /// Reports a publish the backplane took, and makes its receipt.
    fn published(&self, done: Done, published: &Published) -> Receipt {
        let Done {
            publisher,
            channel,
            id,
        } = done;
        if published.duplicate {
            tracing::debug!(
                %channel,
                id = id.as_str(),
                offset = published.offset,
                "a repeated publish id was acknowledged with its first offset, not delivered again"
            );
        } else {
            self.metrics.backplane_published();
            // Built only for a listener: most hosts never subscribe to events.
            if self.events.receiver_count() > 0 {
                let _ = self.events.send(HubEvent::Published {
                    connection_id: publisher.connection_id,
                    user_id: publisher.user_id,
                    channel,
                    id: id.as_str().to_owned(),
                    offset: published.offset,
                });
            }
        }
        Receipt {
            id,
            offset: published.offset,
            scope: published.scope,
            duplicate: published.duplicate,
        }
    }
}

/// A message's id: the publisher's, or one the hub generated.
pub(crate) enum PublishId {
    Given(String),
    Generated(MessageId),
}

impl PublishId {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Given(id) => id,
            Self::Generated(id) => id.as_str(),
        }
    }

    fn into_string(self) -> String {
        match self {
            Self::Given(id) => id,
            Self::Generated(id) => id.as_str().to_owned(),
        }
    }
}

/// A [`PublishReceipt`] as the hub keeps it: the id a `String` only when the receipt is
/// handed out ([`into_public`](Self::into_public)); a client's `ack` needs only the offset.
pub(crate) struct Receipt {
    pub(crate) id: PublishId,
    pub(crate) offset: u64,
    pub(crate) scope: Scope,
    pub(crate) duplicate: bool,
}

impl Receipt {
    pub(crate) fn into_public(self) -> PublishReceipt {
        PublishReceipt {
            id: self.id.into_string(),
            offset: self.offset,
            scope: self.scope,
            duplicate: self.duplicate,
        }
    }
}

/// The backplane options of a publish with dedupe key `key`.
fn options(key: Option<&str>) -> PublishOptions<'_> {
    match key {
        Some(key) => PublishOptions::default().dedupe_key(key),
        None => PublishOptions::default(),
    }
}

/// What a publish's receipt and lifecycle event need once the backplane has answered.
struct Done {
    publisher: Publisher,
    channel: ChannelName,
    id: PublishId,
}

/// A publish under way: finished already (the backplane published in place), or waiting
/// for the backplane.
pub(crate) enum Publishing<F> {
    /// The backplane answered at once.
    Done(Result<Receipt, BackplaneError>),
    /// The backplane's answer, to await.
    Waiting(F),
}

impl<F: Future<Output = Result<Receipt, BackplaneError>>> Publishing<F> {
    /// The backplane's answer.
    pub(crate) async fn answer(self) -> Result<Receipt, BackplaneError> {
        match self {
            Self::Done(answer) => answer,
            Self::Waiting(waiting) => waiting.await,
        }
    }
}

/// The backplane dedupe key of a publish: its id, scoped to the client instance that
/// published it (the id it gave for itself, together with its user), else to the
/// connection, else (server-side code) to the server. Two clients choosing the same id
/// never collide: one client's publish can never be acknowledged with another's offset.
/// Lengths keep the parts unambiguous.
fn dedupe_key(publisher: &Publisher, id: &str) -> String {
    let user = publisher.user_id.as_deref().unwrap_or("");
    match &publisher.client {
        Some(client) => format!("c{}:{client}{}:{user}{id}", client.len(), user.len()),
        None if &*publisher.connection_id == Sender::SERVER_CONNECTION_ID => format!("s:{id}"),
        None => format!(
            "k{}:{}{id}",
            publisher.connection_id.len(),
            publisher.connection_id
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publisher(connection: &str, user: Option<&str>, client: Option<&str>) -> Publisher {
        Publisher {
            connection_id: connection.into(),
            user_id: user.map(Into::into),
            client: client.map(|c| ClientId::new(c).unwrap()),
        }
    }

    #[test]
    fn publish_ids_are_scoped_to_the_client_instance_else_the_connection() {
        let id = "m1";
        let keys = [
            dedupe_key(&publisher("n1c1", None, None), id),
            dedupe_key(&publisher("n1c2", None, None), id),
            dedupe_key(&publisher("n1c6", Some("ada"), None), id),
            dedupe_key(&publisher("n1c3", None, Some("tabA")), id),
            dedupe_key(&publisher("n1c4", None, Some("tabB")), id),
            dedupe_key(&publisher("n1c5", Some("ada"), Some("tabA")), id),
            dedupe_key(&Publisher::server(), id),
        ];
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        // The same client instance on another connection (a reconnect, another server).
        assert_eq!(
            dedupe_key(&publisher("n2c9", None, Some("tabA")), id),
            keys[3]
        );
        // Lengths keep a client id ending like the next part from colliding.
        assert_ne!(
            dedupe_key(&publisher("x", Some("b"), Some("a1")), "m"),
            dedupe_key(&publisher("x", Some("1b"), Some("a")), "m"),
        );
    }
}

//! Hub configuration.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::namespace::NamespaceOptions;

/// How a hub behaves. Plain validated data with documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HubConfig {
    /// Payload and presence-meta keys removed before anything leaves the server
    /// (case-insensitive, any depth). Default: none.
    pub redact_fields: Vec<String>,
    /// The most channels one connection may be subscribed to at once (default 128). A
    /// subscribe beyond it is answered with `bad_request`.
    pub max_subscriptions_per_connection: NonZeroUsize,
    /// How many live messages are held for a subscriber while its recovery is fetched from
    /// history (default 1024). Past that, the subscriber is closed with 4008 and recovers on
    /// reconnect.
    pub recovery_buffer: NonZeroUsize,
    /// How often the presence of live local members is refreshed in the backplane, so that
    /// only members of dead instances expire (default 5 minutes; keep it well under the
    /// presence TTL).
    pub presence_refresh: Duration,
    /// Capacity of the lifecycle event stream (default 1024); a slower consumer sees
    /// `Lagged`.
    pub event_capacity: NonZeroUsize,
    /// How long a question put to every instance (the user and channel operations of
    /// [`Hub`](crate::Hub), such as [`Hub::disconnect_user`](crate::Hub::disconnect_user))
    /// waits for their replies (default 2 s). An instance that does not reply in time is
    /// missing from the answer, which says it is incomplete.
    pub survey_timeout: Duration,
    /// Options per channel namespace, by name (see [`NamespaceOptions`]). Default: none, so
    /// every channel allows everything.
    pub namespaces: BTreeMap<String, NamespaceOptions>,
    /// Whether to report [`HubEvent::ChannelOccupied`](crate::HubEvent::ChannelOccupied)
    /// and [`ChannelVacated`](crate::HubEvent::ChannelVacated), and how long an instance's
    /// claim on a channel lasts without renewal (it is renewed every third of it; a dead
    /// instance's channels are reported vacated within about that long). Default `None`:
    /// off, since it costs a backplane call per channel and renewal.
    pub occupancy: Option<Duration>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            redact_fields: Vec::new(),
            max_subscriptions_per_connection: NonZeroUsize::new(128).expect("non-zero"),
            recovery_buffer: NonZeroUsize::new(1024).expect("non-zero"),
            presence_refresh: Duration::from_secs(300),
            event_capacity: NonZeroUsize::new(1024).expect("non-zero"),
            survey_timeout: Duration::from_secs(2),
            namespaces: BTreeMap::new(),
            occupancy: None,
        }
    }
}

impl HubConfig {
    switchboard_types::setters! {
        /// Sets [`HubConfig::max_subscriptions_per_connection`].
        max_subscriptions_per_connection: NonZeroUsize,
        /// Sets [`HubConfig::recovery_buffer`].
        recovery_buffer: NonZeroUsize,
        /// Sets [`HubConfig::presence_refresh`].
        presence_refresh: Duration,
        /// Sets [`HubConfig::event_capacity`].
        event_capacity: NonZeroUsize,
        /// Sets [`HubConfig::occupancy`].
        occupancy: Option<Duration>,
        /// Sets [`HubConfig::survey_timeout`].
        survey_timeout: Duration,
    }

    /// Sets [`HubConfig::redact_fields`].
    #[must_use]
    pub fn redact_fields<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redact_fields = fields.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the options of namespace `name` (the part of channel names before the first
    /// `:`), replacing what it had.
    #[must_use]
    pub fn namespace(mut self, name: impl Into<String>, options: NamespaceOptions) -> Self {
        self.namespaces.insert(name.into(), options);
        self
    }
}

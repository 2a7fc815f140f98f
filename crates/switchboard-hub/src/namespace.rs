//! Channel namespaces: options that hold for every channel whose name starts with
//! `<namespace>:`.

use std::collections::HashMap;

/// What a namespace allows. Each option left `None` inherits the default: everything on.
///
/// A channel's namespace is the part of its name before the first `:` (`chat:lobby` is in
/// `chat`); a channel without `:`, or in a namespace nobody configured, behaves as if every
/// option were on. History bounds per namespace belong to the backplane
/// (`MemoryBackplaneConfig::history_override`, and the same on `RedisBackplaneConfig`).
///
/// ```
/// use switchboard_hub::{HubConfig, NamespaceOptions};
///
/// let config = HubConfig::default().namespace(
///     "news",
///     NamespaceOptions::default().client_publish(false).anonymous(false),
/// );
/// assert_eq!(config.namespaces["news"].client_publish, Some(false));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamespaceOptions {
    /// Whether connections may announce presence (`presence-update`) and ask for the member
    /// list (`presence`, and the HTTP presence route). Off: those are answered with the
    /// error `unsupported`.
    pub presence: Option<bool>,
    /// Whether subscribers get `presence-update` frames for joins and leaves (updates of a
    /// member's status still go out). Off: members are still listed, the channel is quiet.
    pub join_leave: Option<bool>,
    /// Whether clients may publish (`forbidden` when off); the server API and server-side
    /// code still may.
    pub client_publish: Option<bool>,
    /// Whether connections without a user (no token) may subscribe, publish or ask for
    /// presence (`forbidden` when off).
    pub anonymous: Option<bool>,
    /// Whether a subscribe with `since` recovers what was missed. Off: it is answered as a
    /// subscribe without `since` (`recovered: false`, nothing replayed).
    pub recover: Option<bool>,
}

impl NamespaceOptions {
    /// Sets [`presence`](Self::presence).
    #[must_use]
    pub fn presence(mut self, on: bool) -> Self {
        self.presence = Some(on);
        self
    }

    /// Sets [`join_leave`](Self::join_leave).
    #[must_use]
    pub fn join_leave(mut self, on: bool) -> Self {
        self.join_leave = Some(on);
        self
    }

    /// Sets [`client_publish`](Self::client_publish).
    #[must_use]
    pub fn client_publish(mut self, on: bool) -> Self {
        self.client_publish = Some(on);
        self
    }

    /// Sets [`anonymous`](Self::anonymous).
    #[must_use]
    pub fn anonymous(mut self, allowed: bool) -> Self {
        self.anonymous = Some(allowed);
        self
    }

    /// Sets [`recover`](Self::recover).
    #[must_use]
    pub fn recover(mut self, on: bool) -> Self {
        self.recover = Some(on);
        self
    }

    /// These options with every unset one taken as on.
    fn resolve(&self) -> Policy {
        Policy {
            presence: self.presence.unwrap_or(true),
            join_leave: self.join_leave.unwrap_or(true),
            client_publish: self.client_publish.unwrap_or(true),
            anonymous: self.anonymous.unwrap_or(true),
            recover: self.recover.unwrap_or(true),
        }
    }
}

/// The namespace of `channel`: the part of its name before the first `:`, if it has one.
#[must_use]
pub fn namespace_of(channel: &str) -> Option<&str> {
    channel.split_once(':').map(|(namespace, _)| namespace)
}

/// What holds for one channel, every option resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    pub(crate) presence: bool,
    pub(crate) join_leave: bool,
    pub(crate) client_publish: bool,
    pub(crate) anonymous: bool,
    pub(crate) recover: bool,
}

/// Everything on: a channel in no configured namespace.
const OPEN: Policy = Policy {
    presence: true,
    join_leave: true,
    client_publish: true,
    anonymous: true,
    recover: true,
};

/// The configured namespaces, resolved once.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    by_namespace: HashMap<Box<str>, Policy>,
}

impl Policies {
    pub(crate) fn new(namespaces: &std::collections::BTreeMap<String, NamespaceOptions>) -> Self {
        Self {
            by_namespace: namespaces
                .iter()
                .map(|(name, options)| (name.as_str().into(), options.resolve()))
                .collect(),
        }
    }

    /// What holds for `channel`. No lookup at all while no namespace is configured.
    pub(crate) fn of(&self, channel: &str) -> Policy {
        if self.by_namespace.is_empty() {
            return OPEN;
        }
        namespace_of(channel)
            .and_then(|namespace| self.by_namespace.get(namespace))
            .copied()
            .unwrap_or(OPEN)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_channel_takes_its_namespaces_options_and_unset_ones_stay_on() {
        let mut namespaces = BTreeMap::new();
        namespaces.insert(
            "chat".to_owned(),
            NamespaceOptions::default().presence(false).recover(false),
        );
        let policies = Policies::new(&namespaces);
        let chat = policies.of("chat:lobby");
        assert!(!chat.presence && !chat.recover);
        assert!(chat.join_leave && chat.client_publish && chat.anonymous);
        // Only the part before the first `:` names the namespace.
        assert_eq!(policies.of("chat:a:b"), chat);
        for other in ["chat", "chatroom:x", "news:chat:x", "lobby"] {
            assert_eq!(policies.of(other), OPEN, "{other}");
        }
        assert_eq!(namespace_of("a:b:c"), Some("a"));
        assert_eq!(namespace_of("abc"), None);
    }
}

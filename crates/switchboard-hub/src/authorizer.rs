//! Who may do what on which channel.

use switchboard_protocol::ChannelName;

use crate::identity::Identity;

/// What a connection wants to do on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Action {
    /// Subscribe (also checked again on recovery).
    Subscribe,
    /// Publish.
    Publish,
    /// List presence.
    Presence,
}

impl Action {
    /// `"subscribe"`, `"publish"` or `"list presence of"`, for messages.
    #[must_use]
    pub const fn verb(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe to",
            Self::Publish => "publish to",
            Self::Presence => "list presence of",
        }
    }
}

/// Decides whether an identity may perform an action on a channel.
///
/// Called on the hot path (every publish), so it is synchronous: resolve anything slow when
/// the connection is authenticated and keep it in the [`Identity`].
pub trait Authorizer: Send + Sync + 'static {
    /// Whether `identity` may perform `action` on `channel`.
    fn allows(&self, identity: &Identity, action: Action, channel: &ChannelName) -> bool;
}

/// The default policy: the token's claims.
///
/// - Subscribe and presence: the `channels` claim; without it, every channel.
/// - Publish: the `publish` claim; without it, the `channels` claim; without either, every
///   channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimsAuthorizer;

impl Authorizer for ClaimsAuthorizer {
    fn allows(&self, identity: &Identity, action: Action, channel: &ChannelName) -> bool {
        let patterns = match action {
            Action::Subscribe | Action::Presence => identity.channels.as_ref(),
            Action::Publish => identity.publish.as_ref().or(identity.channels.as_ref()),
        };
        patterns.is_none_or(|ps| ps.iter().any(|p| p.matches(channel)))
    }
}

impl<F> Authorizer for F
where
    F: Fn(&Identity, Action, &ChannelName) -> bool + Send + Sync + 'static,
{
    fn allows(&self, identity: &Identity, action: Action, channel: &ChannelName) -> bool {
        self(identity, action, channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn no_claims_allow_everything() {
        let id = Identity::user("u");
        for a in [Action::Subscribe, Action::Publish, Action::Presence] {
            assert!(ClaimsAuthorizer.allows(&id, a, &ch("any:thing")));
        }
    }

    #[test]
    fn channels_claim_governs_publish_when_publish_claim_is_absent() {
        let id = Identity::user("u").with_channels(["tasks:*"]);
        assert!(ClaimsAuthorizer.allows(&id, Action::Publish, &ch("tasks:1")));
        assert!(!ClaimsAuthorizer.allows(&id, Action::Publish, &ch("admin:1")));
        assert!(!ClaimsAuthorizer.allows(&id, Action::Presence, &ch("admin:1")));
    }

    #[test]
    fn publish_claim_overrides_channels_for_publishing_only() {
        let id = Identity::user("u")
            .with_channels(["*"])
            .with_publish(["chat:*"]);
        assert!(ClaimsAuthorizer.allows(&id, Action::Subscribe, &ch("admin:1")));
        assert!(!ClaimsAuthorizer.allows(&id, Action::Publish, &ch("admin:1")));
        assert!(ClaimsAuthorizer.allows(&id, Action::Publish, &ch("chat:lobby")));
    }

    #[test]
    fn an_empty_claim_allows_nothing() {
        let id = Identity::user("u").with_channels(Vec::<String>::new());
        assert!(!ClaimsAuthorizer.allows(&id, Action::Subscribe, &ch("a")));
    }
}

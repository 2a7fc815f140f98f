//! Who a connection is, and what its token allows.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A glob over a whole channel name: `*` matches any run of characters (including `:` and
/// `/`); every other character matches itself.
///
/// ```
/// use switchboard_hub::ChannelPattern;
/// let p = ChannelPattern::new("tasks:*");
/// assert!(p.matches("tasks:updates"));
/// assert!(p.matches("tasks:team/7:board"));
/// assert!(!p.matches("admin:tasks:x"));
/// assert!(ChannelPattern::new("*").matches("anything"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ChannelPattern(Arc<str>);

impl ChannelPattern {
    /// A pattern from its text.
    #[must_use]
    pub fn new(pattern: impl Into<Arc<str>>) -> Self {
        Self(pattern.into())
    }

    /// The pattern's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern matches the whole of `name`.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

impl fmt::Debug for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

/// Iterative wildcard matching with single backtrack point: O(len(p) × len(s)) worst case,
/// no recursion, no allocation.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

/// The authenticated identity of a connection and what its credentials allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The user (`sub` claim), or `None` in open mode.
    pub user_id: Option<Arc<str>>,
    /// The `channels` claim: where the connection may subscribe. `None`: no restriction.
    pub channels: Option<Vec<ChannelPattern>>,
    /// The `publish` claim: where it may publish. `None`: as `channels`.
    pub publish: Option<Vec<ChannelPattern>>,
    /// When the credentials expire (the token's `exp`).
    pub expires_at: Option<SystemTime>,
}

impl Identity {
    /// An anonymous identity with no restrictions (open mode).
    #[must_use]
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// An identity for `user_id` with no restrictions.
    #[must_use]
    pub fn user(user_id: impl Into<Arc<str>>) -> Self {
        Self {
            user_id: Some(user_id.into()),
            ..Self::default()
        }
    }

    /// Restricts subscriptions to channels matching `patterns`.
    #[must_use]
    pub fn with_channels<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Arc<str>>,
    {
        self.channels = Some(patterns.into_iter().map(ChannelPattern::new).collect());
        self
    }

    /// Restricts publishing to channels matching `patterns`.
    #[must_use]
    pub fn with_publish<I, P>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Arc<str>>,
    {
        self.publish = Some(patterns.into_iter().map(ChannelPattern::new).collect());
        self
    }

    /// Sets when the credentials expire.
    #[must_use]
    pub fn with_expiry(mut self, expires_at: SystemTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_matches_whole_names_only() {
        assert!(glob_match(b"abc", b"abc"));
        assert!(!glob_match(b"abc", b"abcd"));
        assert!(!glob_match(b"abc", b"xabc"));
        assert!(glob_match(b"a*c", b"ac"));
        assert!(glob_match(b"a*c", b"a:b/c"));
        assert!(glob_match(b"*:*:x", b"a:b:c:x"));
        assert!(!glob_match(b"*:*:x", b"a:x"));
        assert!(glob_match(b"**", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(glob_match(b"user:*:inbox", b"user:42:inbox"));
        assert!(!glob_match(b"user:*:inbox", b"user:42:outbox"));
    }
}

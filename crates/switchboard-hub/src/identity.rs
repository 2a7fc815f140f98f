//! Who a connection is, what its credentials allow, and what the host knows about it.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

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

/// The authenticated identity of a connection, what its credentials allow, and what the
/// host knows about it.
///
/// An [`Authorizer`](crate::Authorizer) reads all of it on every check: the permissions
/// (`channels`, `publish`), the token's other claims ([`claim`](Self::claim)), and a value
/// of the host's own type ([`data`](Self::data)) — a role, a tenant, the user's row —
/// resolved once when the connection is authenticated.
///
/// ```
/// use switchboard_hub::Identity;
///
/// #[derive(Debug)]
/// struct Account { team: String, admin: bool }
///
/// let identity = Identity::user("alice")
///     .with_claims(serde_json::json!({"plan": "pro"}).as_object().cloned().unwrap())
///     .with_data(Account { team: "blue".into(), admin: false });
/// assert_eq!(identity.claim("plan"), Some(&serde_json::json!("pro")));
/// assert_eq!(identity.data::<Account>().map(|a| a.team.as_str()), Some("blue"));
/// assert!(identity.data::<String>().is_none(), "only the type that was stored");
/// ```
#[derive(Clone, Default)]
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
    /// The claims and the host's value, behind one pointer shared by every clone: an
    /// identity without either (open mode, a token with nothing else) costs one word for
    /// them, on every connection.
    host: Option<Arc<HostData>>,
}

/// What [`Identity`] keeps beyond its permissions.
#[derive(Clone, Default)]
struct HostData {
    /// The credentials' other claims (a JWT's, without `sub`, `exp`, `channels` and
    /// `publish`, which the identity's fields carry).
    claims: Map<String, Value>,
    /// One value of the host's own type (see [`Identity::with_data`]).
    data: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("user_id", &self.user_id)
            .field("channels", &self.channels)
            .field("publish", &self.publish)
            .field("expires_at", &self.expires_at)
            .field("claims", self.claims())
            // The host's type is not required to be `Debug`.
            .field(
                "data",
                &self
                    .host
                    .as_ref()
                    .and_then(|h| h.data.as_ref())
                    .map(|_| "<host data>"),
            )
            .finish()
    }
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

    /// Sets the credentials' claims (replacing any set before); an empty map keeps none.
    #[must_use]
    pub fn with_claims(self, claims: Map<String, Value>) -> Self {
        self.with_host(|host| host.claims = claims)
    }

    /// Changes the host data (copied first if another clone shares it); keeps none when
    /// it ends up empty.
    fn with_host(mut self, change: impl FnOnce(&mut HostData)) -> Self {
        let mut host = self.host.take().unwrap_or_default();
        change(Arc::make_mut(&mut host));
        if !host.claims.is_empty() || host.data.is_some() {
            self.host = Some(host);
        }
        self
    }

    /// The claim `name`, if the credentials carried it (see [`Identity::claims`]).
    #[must_use]
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.host.as_deref()?.claims.get(name)
    }

    /// Every claim kept (empty when there are none). A JWT's `sub`, `exp`, `channels` and
    /// `publish` are not in it: the identity's fields carry them.
    #[must_use]
    pub fn claims(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.host
            .as_deref()
            .map_or_else(|| EMPTY.get_or_init(Map::new), |host| &host.claims)
    }

    /// Attaches one value of the host's own type — the user's account, roles, tenant —
    /// for an [`Authorizer`](crate::Authorizer) to read with [`Identity::data`]. Replaces any
    /// value set before (of any type): a host with several puts them in one struct. Shared,
    /// not copied, by the identity's clones.
    #[must_use]
    pub fn with_data<T: Any + Send + Sync>(self, data: T) -> Self {
        self.with_host(|host| host.data = Some(Arc::new(data)))
    }

    /// The host's value, if one of type `T` was attached with [`Identity::with_data`].
    #[must_use]
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.host.as_deref()?.data.as_deref()?.downcast_ref()
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

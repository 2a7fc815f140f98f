//! The data the backplane trait speaks in.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

/// A channel's history epoch: an opaque string that changes whenever the channel's history
/// may have been lost (Redis flushed or restarted empty, local-only publishing during an
/// outage). Offsets are only comparable within one epoch.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Epoch(Arc<str>);

impl Epoch {
    /// An epoch with the given text.
    #[must_use]
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        Self(text.into())
    }

    /// A fresh random epoch (16 hex digits).
    #[must_use]
    pub fn random() -> Self {
        Self(format!("{:016x}", rand_u64()).into())
    }

    /// The epoch's text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 64 random bits from the standard library's randomly seeded hasher: enough for epochs and
/// ids, without a dependency.
pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for Epoch {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Epoch {
    fn from(s: &str) -> Self {
        Self(s.into())
    }
}

/// A position in a channel's stream: its latest offset (0 when empty) and epoch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// Offset of the latest message (0: none yet in this epoch).
    pub offset: u64,
    /// The epoch the offset belongs to.
    pub epoch: Epoch,
}

/// One published message as the backplane carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The channel.
    pub channel: Arc<str>,
    /// The offset the backplane assigned (ascending by 1 within an epoch, starting at 1).
    pub offset: u64,
    /// The opaque bytes given to [`publish`](crate::Backplane::publish).
    pub data: Bytes,
}

/// Where a publish reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// Every instance, and the channel's shared history.
    Cluster,
    /// Only this instance's subscribers: the shared store is unreachable (degraded mode). The
    /// message is in this instance's local history under a local epoch.
    LocalOnly,
}

/// The answers to a [`Backplane::survey`](crate::Backplane::survey): what every instance's
/// attached sinks said to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Survey {
    /// Every answer, from each sink of each instance that replied, in no particular order.
    /// A sink that has nothing to say adds none.
    pub answers: Vec<Bytes>,
    /// How many instances were asked, this one included.
    pub asked: usize,
    /// How many of them replied before the timeout.
    pub replied: usize,
    /// [`Scope::LocalOnly`] when the shared store was unreachable: only this instance was
    /// asked, and others may exist.
    pub scope: Scope,
}

impl Survey {
    /// A survey's outcome (for backplane implementations).
    #[must_use]
    pub fn new(answers: Vec<Bytes>, asked: usize, replied: usize, scope: Scope) -> Self {
        Self {
            answers,
            asked,
            replied,
            scope,
        }
    }

    /// Whether every instance of the cluster answered: the store was reachable and every
    /// instance it reached replied in time.
    #[must_use]
    pub fn is_complete(&self) -> bool {
        self.scope == Scope::Cluster && self.replied >= self.asked
    }
}

/// What [`Backplane::group_join`](crate::Backplane::group_join) found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupJoin {
    /// The group had other live members (or this member already): nothing changed for it.
    Joined,
    /// The group was empty: this call made it non-empty. Exactly one member, cluster-wide,
    /// sees this per emptiness.
    First,
    /// As [`First`](Self::First), and before it the group's last members had expired
    /// without leaving (their instances died) and no [`group_reap`] had reported it: the
    /// group was empty meanwhile, and this call is the one to say so.
    ///
    /// [`group_reap`]: crate::Backplane::group_reap
    FirstAfterLapse,
}

/// The result of a publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The offset assigned to the message (for a duplicate: the offset the first publish
    /// with the same dedupe key got).
    pub offset: u64,
    /// The epoch it belongs to.
    pub epoch: Epoch,
    /// Whether it reached every instance or only this one.
    pub scope: Scope,
    /// `true` when nothing was published because the [dedupe
    /// key](PublishOptions::dedupe_key) was already used on the channel within its window.
    pub duplicate: bool,
}

/// Options of [`Backplane::publish_with`](crate::Backplane::publish_with).
///
/// ```
/// use switchboard_backplane::PublishOptions;
///
/// let options = PublishOptions::default().dedupe_key("user:alice:m-42");
/// assert_eq!(options.dedupe_key, Some("user:alice:m-42"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions<'a> {
    /// Makes the publish idempotent: when this key was already used on the channel within
    /// the current epoch and the channel's dedupe window, nothing is published and the
    /// answer is [`Published::duplicate`] with the first publish's offset. Scope the key to
    /// its publisher (for example user and message id) so that two publishers cannot collide.
    pub dedupe_key: Option<&'a str>,
}

impl<'a> PublishOptions<'a> {
    /// Sets [`dedupe_key`](Self::dedupe_key).
    #[must_use]
    pub fn dedupe_key(mut self, key: &'a str) -> Self {
        self.dedupe_key = Some(key);
        self
    }
}

/// The answer to [`since`](crate::Backplane::since): every message after the given offset,
/// or nothing at all. Never a partial list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The channel's position now.
    pub position: Position,
    /// `Some(messages)`: the epoch matched and nothing after the requested offset was trimmed;
    /// the messages follow it in ascending offset up to `position.offset`. `None`: cannot
    /// recover (another epoch, or history trimmed).
    pub messages: Option<Vec<Envelope>>,
}

/// How well the backplane is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthState {
    /// Fully working.
    Up,
    /// Serving, but reduced: e.g. Redis unreachable, so publishes stay on this instance.
    Degraded,
    /// Not serving (shut down).
    Down,
}

impl HealthState {
    /// `"up"`, `"degraded"` or `"down"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What made a backplane degraded: the kind, for metrics and alerts; the words are in
/// [`Health::detail`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DegradedCause {
    /// The connection broke, or could not be made.
    ConnectionLost,
    /// Calls got no answer in time, often enough to give the connection up.
    Timeout,
    /// The liveness probe stopped coming back: the connection looks open but delivers
    /// nothing.
    LivenessProbeFailed,
    /// Calls were refused (a busy or loading server, a failed subscribe), often enough to
    /// give the connection up.
    CommandFailed,
}

/// The backplane's health, with the reason when not up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// The state.
    pub state: HealthState,
    /// Why (empty when up), e.g. `"redis: connection refused"` or `"probe echo missing for 6s"`.
    pub detail: String,
    /// What kind of failure made it degraded; `None` when up, while first connecting, when
    /// shut down, or from an implementation that does not say.
    pub cause: Option<DegradedCause>,
    /// When the state last changed.
    pub since: SystemTime,
}

impl Health {
    /// A healthy state since now.
    #[must_use]
    pub fn up() -> Self {
        Self {
            state: HealthState::Up,
            detail: String::new(),
            cause: None,
            since: SystemTime::now(),
        }
    }
}

/// What happened to a presence member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PresenceAction {
    /// The member was not present before.
    Join,
    /// The member was present and its data changed.
    Update,
    /// The member left or expired.
    Leave,
}

/// One presence member as stored: the connection it belongs to, and opaque data (the
/// server's member JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEntry {
    /// The member's connection id.
    pub connection_id: Arc<str>,
    /// The member's data.
    pub data: Bytes,
}

/// A presence change, delivered to every instance subscribed to the channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The channel.
    pub channel: Arc<str>,
    /// What happened.
    pub action: PresenceAction,
    /// The member (its last data, for a leave).
    pub entry: PresenceEntry,
}

/// Why an instance's continuity on a channel was broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetReason {
    /// The channel's epoch changed: history was lost (Redis flushed or restarted empty), or
    /// messages were published locally only during an outage.
    EpochChanged,
    /// Messages may have been missed and cannot be fetched from history.
    MessagesMissed,
}

/// Something an instance receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A message on a channel this instance is subscribed to. Per channel, messages arrive
    /// exactly once and in ascending offset.
    Message(Envelope),
    /// A presence change on a channel this instance is subscribed to.
    Presence(PresenceChange),
    /// Continuity on `channel` was lost: the subscribers of this instance cannot be sure
    /// they saw every message. They should be told to recover (close 4008).
    Reset {
        /// The channel.
        channel: Arc<str>,
        /// Why.
        reason: ResetReason,
    },
    /// This receiver fell behind and `missed` events were dropped: every channel's
    /// continuity is in doubt.
    Lagged {
        /// How many events were dropped.
        missed: u64,
    },
}

//! Validated names: channels, event types and request ids.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest channel name, in bytes.
pub const MAX_CHANNEL_LEN: usize = 255;
/// The longest application event type, in bytes.
pub const MAX_EVENT_TYPE_LEN: usize = 128;
/// The longest request or message id, in bytes.
pub const MAX_ID_LEN: usize = 128;
/// The longest client id, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 64;

/// Why a name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("{kind} must not be empty")]
    Empty {
        /// What was being named ("channel", "type", "id").
        kind: &'static str,
    },
    /// The name is longer than allowed.
    #[error("{kind} is {len} bytes, the limit is {max}")]
    TooLong {
        /// What was being named.
        kind: &'static str,
        /// The length that was given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside the allowed set.
    #[error("{kind} contains {found:?}, allowed are {allowed}")]
    InvalidChar {
        /// What was being named.
        kind: &'static str,
        /// The first offending character.
        found: char,
        /// The allowed set, for the error message.
        allowed: &'static str,
    },
    /// The event type is one of the protocol's reserved system types.
    #[error("type {0:?} is reserved for system frames")]
    Reserved(String),
}

fn check(
    kind: &'static str,
    s: &str,
    max: usize,
    allowed: &'static str,
    ok: impl Fn(u8) -> bool,
) -> Result<(), NameError> {
    if s.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if s.len() > max {
        return Err(NameError::TooLong {
            kind,
            len: s.len(),
            max,
        });
    }
    if let Some(pos) = s.bytes().position(|b| !ok(b)) {
        let found = s[pos..].chars().next().unwrap_or('\u{fffd}');
        return Err(NameError::InvalidChar {
            kind,
            found,
            allowed,
        });
    }
    Ok(())
}

fn is_channel_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'/' | b'=' | b'-')
}

fn is_event_type_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-')
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The name as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The shared string behind the name: cloning it shares the text instead of
            /// copying it (for maps keyed by `Arc<str>`).
            #[must_use]
            pub fn as_arc(&self) -> &Arc<str> {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                &*self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                &*self.0 == *other
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                Self::new(&s)
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type! {
    /// A channel name: 1–255 bytes of `[A-Za-z0-9_.:@/=-]`.
    ///
    /// Cloning is cheap (a reference count), so the hub can hand the same name to every
    /// subscriber.
    ///
    /// ```
    /// use switchboard_protocol::ChannelName;
    /// assert!(ChannelName::new("tasks:updates").is_ok());
    /// assert!(ChannelName::new("user/42@eu=1").is_ok());
    /// assert!(ChannelName::new("has space").is_err());
    /// assert!(ChannelName::new("").is_err());
    /// ```
    ChannelName
}

impl ChannelName {
    /// The allowed characters, as documented.
    pub const ALLOWED: &'static str = "[A-Za-z0-9_.:@/=-]";

    /// Validates `name` as a channel name.
    ///
    /// # Errors
    /// [`NameError`] when it is empty, longer than [`MAX_CHANNEL_LEN`] bytes or holds a
    /// character outside [`ChannelName::ALLOWED`].
    pub fn new(name: &str) -> Result<Self, NameError> {
        check(
            "channel",
            name,
            MAX_CHANNEL_LEN,
            Self::ALLOWED,
            is_channel_byte,
        )?;
        Ok(Self(Arc::from(name)))
    }
}

name_type! {
    /// A client instance's id: 1–64 bytes of `[A-Za-z0-9_-]`, chosen at random by the client
    /// once and sent on every (re)connect as the `client` query parameter of the WebSocket
    /// URL. It scopes publish deduplication: a retried publish id from the same client
    /// instance (after a lost `ack`, even on another server) is recognised, while the same id
    /// from any other client is a different message. Random and private to the client: the
    /// server never shows it to anyone else. Clients should use at least 128 random bits
    /// (for example 22 base64url characters).
    ///
    /// ```
    /// use switchboard_protocol::ClientId;
    /// assert!(ClientId::new("k3Jd9_aQ-2fLr0sPzT8wYb").is_ok());
    /// assert!(ClientId::new("has space").is_err());
    /// assert!(ClientId::new("").is_err());
    /// ```
    ClientId
}

impl ClientId {
    /// The allowed characters, as documented.
    pub const ALLOWED: &'static str = "[A-Za-z0-9_-]";

    /// Validates `id` as a client id.
    ///
    /// # Errors
    /// [`NameError`] when it is empty, longer than [`MAX_CLIENT_ID_LEN`] bytes or holds a
    /// character outside [`ClientId::ALLOWED`].
    pub fn new(id: &str) -> Result<Self, NameError> {
        check("client", id, MAX_CLIENT_ID_LEN, Self::ALLOWED, |b| {
            b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')
        })?;
        Ok(Self(Arc::from(id)))
    }
}

name_type! {
    /// An application event type, such as `incident.updated`: 1–128 bytes of
    /// `[A-Za-z0-9_.:/-]`, and not one of the [reserved system types](EventType::RESERVED).
    ///
    /// ```
    /// use switchboard_protocol::EventType;
    /// assert_eq!(EventType::new("task-status-changed").unwrap(), "task-status-changed");
    /// assert!(EventType::new("subscribe").is_err()); // reserved
    /// assert!(EventType::new("a b").is_err());
    /// ```
    EventType
}

impl EventType {
    /// The allowed characters, as documented.
    pub const ALLOWED: &'static str = "[A-Za-z0-9_.:/-]";

    /// The `type` values reserved for system frames, in either direction.
    pub const RESERVED: &'static [&'static str] = &[
        "subscribe",
        "unsubscribe",
        "ping",
        "pong",
        "presence",
        "presence-update",
        "welcome",
        "subscribed",
        "unsubscribed",
        "ack",
        "error",
        "excluded",
        "refresh",
        "refreshed",
    ];

    /// Validates `name` as an application event type.
    ///
    /// # Errors
    /// [`NameError`] when it is empty, too long, holds a character outside
    /// [`EventType::ALLOWED`], or is reserved.
    pub fn new(name: &str) -> Result<Self, NameError> {
        check(
            "type",
            name,
            MAX_EVENT_TYPE_LEN,
            Self::ALLOWED,
            is_event_type_byte,
        )?;
        if Self::is_reserved(name) {
            return Err(NameError::Reserved(name.to_owned()));
        }
        Ok(Self(Arc::from(name)))
    }

    /// Whether `name` is a reserved system frame type.
    #[must_use]
    pub fn is_reserved(name: &str) -> bool {
        Self::RESERVED.contains(&name)
    }
}

/// Checks a client-chosen request or message id: 1–128 bytes, no control characters.
///
/// # Errors
/// [`NameError`] describing the problem.
pub fn validate_id(id: &str) -> Result<(), NameError> {
    if id.is_empty() {
        return Err(NameError::Empty { kind: "id" });
    }
    if id.len() > MAX_ID_LEN {
        return Err(NameError::TooLong {
            kind: "id",
            len: id.len(),
            max: MAX_ID_LEN,
        });
    }
    if let Some(found) = id.chars().find(|c| c.is_control()) {
        return Err(NameError::InvalidChar {
            kind: "id",
            found,
            allowed: "any character but control characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_accepts_the_whole_documented_alphabet() {
        let all = "azAZ09_.:@/=-";
        assert_eq!(ChannelName::new(all).unwrap().as_str(), all);
    }

    #[test]
    fn channel_limit_is_inclusive() {
        assert!(ChannelName::new(&"a".repeat(255)).is_ok());
        assert_eq!(
            ChannelName::new(&"a".repeat(256)).unwrap_err(),
            NameError::TooLong {
                kind: "channel",
                len: 256,
                max: 255
            }
        );
    }

    #[test]
    fn channel_rejects_non_ascii_naming_the_character() {
        let err = ChannelName::new("café").unwrap_err();
        assert_eq!(
            err,
            NameError::InvalidChar {
                kind: "channel",
                found: 'é',
                allowed: ChannelName::ALLOWED
            }
        );
    }

    #[test]
    fn event_type_rejects_every_reserved_name() {
        for r in EventType::RESERVED {
            assert!(
                matches!(EventType::new(r), Err(NameError::Reserved(_))),
                "{r}"
            );
        }
    }

    #[test]
    fn ids_reject_control_characters() {
        assert!(validate_id("abc-1").is_ok());
        assert!(validate_id("a\nb").is_err());
        assert!(validate_id(&"x".repeat(129)).is_err());
    }
}

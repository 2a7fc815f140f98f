//! The codes of `error` frames.

use std::fmt;
use std::str::FromStr;

use crate::UnknownName;

/// The `code` of an `error` frame. Each says what the client should do next. On the wire
/// (and with the `serde` feature) the names are snake case: `"bad_request"`,
/// `"rate_limited"`…
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ErrorCode {
    /// The frame is malformed or names an invalid channel, type or field. Fix the frame.
    BadRequest,
    /// No valid credentials. Obtain a token and reconnect.
    Unauthorized,
    /// The credentials do not allow this channel or action. Do not retry.
    Forbidden,
    /// Too many frames; retry after `retryAfterMs`.
    RateLimited,
    /// The frame or a field is larger than allowed. Send less.
    TooLarge,
    /// The operation needs a subscription to the channel first.
    NotSubscribed,
    /// The frame kind is not supported (for example a binary frame).
    Unsupported,
    /// A dependency is temporarily unavailable; retry later.
    Unavailable,
    /// A server bug; retry later and report it.
    Internal,
}

impl ErrorCode {
    /// Every code, in documentation order; `ALL[c.index()] == c`.
    pub const ALL: [Self; 9] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::RateLimited,
        Self::TooLarge,
        Self::NotSubscribed,
        Self::Unsupported,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::RateLimited => "rate_limited",
            Self::TooLarge => "too_large",
            Self::NotSubscribed => "not_subscribed",
            Self::Unsupported => "unsupported",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// Parses a wire name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The position of this code in [`ALL`](Self::ALL): an index into per-code arrays.
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether retrying the same request later may succeed.
    #[must_use]
    pub const fn is_retryable(self) -> bool {
        matches!(self, Self::RateLimited | Self::Unavailable | Self::Internal)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ErrorCode {
    type Err = UnknownName;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::from_name(name).ok_or_else(|| UnknownName::new("error code", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_name_and_index() {
        for (i, code) in ErrorCode::ALL.into_iter().enumerate() {
            assert_eq!(code.index(), i);
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
        }
        assert!("teapot".parse::<ErrorCode>().is_err());
        assert!(ErrorCode::RateLimited.is_retryable());
        assert!(!ErrorCode::Forbidden.is_retryable());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serde_uses_the_wire_names() {
        assert_eq!(
            serde_json::to_string(&ErrorCode::NotSubscribed).unwrap(),
            r#""not_subscribed""#
        );
        assert_eq!(
            serde_json::from_str::<ErrorCode>(r#""too_large""#).unwrap(),
            ErrorCode::TooLarge
        );
    }
}

//! Error codes carried by `error` frames and WebSocket close codes.

use std::fmt;

pub use switchboard_types::ErrorCode;

/// WebSocket close codes used by switchboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the server is going away (shutdown or restart); reconnect, possibly elsewhere.
    GoingAway,
    /// 1002: a frame broke the WebSocket protocol (RFC 6455 §5: an unmasked client frame, a
    /// reserved bit, an unknown opcode, a fragmented or oversized control frame, a stray
    /// continuation, a close code that may not be sent).
    ProtocolError,
    /// 1007: a text frame was not valid UTF-8 (RFC 6455 §8.1).
    InvalidPayload,
    /// 1008: policy violation, such as sustained abuse of the rate limit.
    PolicyViolation,
    /// 1009: a message exceeded the maximum size.
    TooLarge,
    /// 4000: no frame arrived within the idle timeout.
    IdleTimeout,
    /// 4001: the token expired during the connection; reconnect with a fresh token.
    TokenExpired,
    /// 4003: the server API disconnected this user (`POST /api/users/{user}/disconnect`); do
    /// not reconnect on your own: the application decided this connection should end.
    Disconnected,
    /// 4008: the client could not keep up and continuity was lost; recover from history on
    /// reconnect.
    SlowConsumer,
}

impl CloseCode {
    /// Every code, in numeric order.
    pub const ALL: [Self; 10] = [
        Self::Normal,
        Self::GoingAway,
        Self::ProtocolError,
        Self::InvalidPayload,
        Self::PolicyViolation,
        Self::TooLarge,
        Self::IdleTimeout,
        Self::TokenExpired,
        Self::Disconnected,
        Self::SlowConsumer,
    ];

    /// The numeric close code.
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::Normal => 1000,
            Self::GoingAway => 1001,
            Self::ProtocolError => 1002,
            Self::InvalidPayload => 1007,
            Self::PolicyViolation => 1008,
            Self::TooLarge => 1009,
            Self::IdleTimeout => 4000,
            Self::TokenExpired => 4001,
            Self::Disconnected => 4003,
            Self::SlowConsumer => 4008,
        }
    }

    /// The close reason switchboard sends with this code (short, under 123 bytes).
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Normal => "normal closure",
            Self::GoingAway => "server going away",
            Self::ProtocolError => "protocol error: the frame broke RFC 6455",
            Self::InvalidPayload => "text frame is not valid UTF-8",
            Self::PolicyViolation => "policy violation",
            Self::TooLarge => "message too large",
            Self::IdleTimeout => "idle timeout",
            Self::TokenExpired => "token expired",
            Self::Disconnected => "disconnected by server",
            Self::SlowConsumer => "slow consumer: recover from history",
        }
    }

    /// The close code for a numeric value, if switchboard uses it.
    #[must_use]
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Whether a client should reconnect after this close.
    ///
    /// Every code but 1008 (abuse) and 4003 (the server ended it on purpose) invites a
    /// reconnect; after 4001 the client needs a new token first.
    #[must_use]
    pub const fn should_reconnect(self) -> bool {
        !matches!(self, Self::PolicyViolation | Self::Disconnected)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.reason())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialize_as_their_wire_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn close_codes_round_trip_through_numbers() {
        let numbers: Vec<u16> = CloseCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            numbers,
            [1000, 1001, 1002, 1007, 1008, 1009, 4000, 4001, 4003, 4008]
        );
        for c in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(c.code()), Some(c));
            assert!(c.reason().len() < 123);
        }
        assert_eq!(CloseCode::from_code(1003), None);
    }
}

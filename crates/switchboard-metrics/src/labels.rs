//! Label values: small closed enums, so every series exists from construction and a label can
//! never grow with channels, users or connections.

use std::fmt;

use switchboard_types::{ErrorCode, Priority};

/// A bounded label: one key and a fixed set of values, each with a dense index.
pub(crate) trait Label: Copy + Eq + fmt::Debug + 'static {
    /// The label key, e.g. `code`.
    const KEY: &'static str;
    /// Every value, in exposition order; `VALUES[v.index()] == v`.
    const VALUES: &'static [Self];
    /// The exported label value.
    fn value(self) -> &'static str;
    /// The position of this value in [`Label::VALUES`].
    fn index(self) -> usize;
}

macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident as $key:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in the order the series are exported.
            $vis const ALL: &'static [Self] = &[$(Self::$variant),+];

            #[doc = concat!("The exported value of the `", $key, "` label.")]
            #[must_use]
            $vis const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $value,)+
                }
            }

            /// The value exported as `name`, if any.
            #[must_use]
            #[allow(dead_code, reason = "a crate-private label may have no caller")]
            $vis fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Label for $name {
            const KEY: &'static str = $key;
            const VALUES: &'static [Self] = Self::ALL;

            fn value(self) -> &'static str {
                self.as_str()
            }

            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

label_enum! {
    /// Why an authentication attempt failed (label `reason` of `websocket_auth_failures_total`).
    pub enum AuthFailure as "reason" {
        /// `missing`: no credentials were presented.
        Missing = "missing",
        /// `invalid`: the token is malformed or its signature does not verify.
        Invalid = "invalid",
        /// `expired`: the token's `exp` has passed.
        Expired = "expired",
        /// `not_yet_valid`: the token's `nbf` is in the future.
        NotYetValid = "not_yet_valid",
        /// `wrong_algorithm`: the token is signed with an algorithm the server does not accept.
        WrongAlgorithm = "wrong_algorithm",
        /// `invalid_claims`: issuer, audience or a required claim does not match.
        InvalidClaims = "invalid_claims",
        /// `forbidden_origin`: the upgrade request's `Origin` is not allowed.
        ForbiddenOrigin = "forbidden_origin",
        /// `rejected`: a host's own authenticator refused the upgrade.
        Rejected = "rejected",
    }
}

label_enum! {
    /// Which connection cap rejected an upgrade (label `cap` of
    /// `websocket_connection_cap_rejections_total`).
    pub enum CapKind as "cap" {
        /// `per_ip`: the client address already holds its maximum of connections.
        PerIp = "per_ip",
        /// `global`: the server already holds its maximum of connections.
        Global = "global",
        /// `per_user`: the user already holds its maximum of connections, on all instances.
        PerUser = "per_user",
    }
}

label_enum! {
    /// The backplane's health (label `state` of the `websocket_backplane_state` gauge, whose
    /// series is 1 for the current state and 0 for the others). A new handle starts `Up`.
    pub enum BackplaneState as "state" {
        /// `up`: publishes and subscriptions reach every instance.
        Up = "up",
        /// `degraded`: local delivery continues; other instances are not reached for now.
        Degraded = "degraded",
        /// `down`: the backplane cannot be used at all.
        Down = "down",
    }
}

label_enum! {
    /// Why the backplane became degraded (label `reason` of
    /// `websocket_backplane_degradations_total`).
    pub enum DegradedReason as "reason" {
        /// `connection_lost`: the connection to the backplane broke.
        ConnectionLost = "connection_lost",
        /// `timeout`: a command did not complete in time.
        Timeout = "timeout",
        /// `liveness_probe_failed`: the subscription stopped delivering the liveness probe.
        LivenessProbeFailed = "liveness_probe_failed",
        /// `command_failed`: a publish, subscribe or history command returned an error.
        CommandFailed = "command_failed",
    }
}

label_enum! {
    /// Why a connection ended (label `reason` of `websocket_disconnections_by_reason_total`).
    pub enum DisconnectReason as "reason" {
        /// `client_closed`: the client sent a close frame.
        ClientClosed = "client_closed",
        /// `connection_lost`: the socket failed or reached EOF without a close frame.
        ConnectionLost = "connection_lost",
        /// `going_away`: the server is shutting down (close code 1001).
        GoingAway = "going_away",
        /// `protocol_error`: a client frame broke the WebSocket protocol (close code 1002).
        ProtocolError = "protocol_error",
        /// `policy_violation`: abuse, e.g. repeated limit violations (close code 1008).
        PolicyViolation = "policy_violation",
        /// `too_large`: an inbound message exceeded the size limit (close code 1009).
        TooLarge = "too_large",
        /// `idle_timeout`: nothing was heard from the client in time (close code 4000).
        IdleTimeout = "idle_timeout",
        /// `token_expired`: the credentials expired during the session (close code 4001).
        TokenExpired = "token_expired",
        /// `server_disconnect`: the server API disconnected the user (close code 4003, or
        /// the code the API call gave).
        ServerDisconnect = "server_disconnect",
        /// `slow_consumer`: the client could not keep up with a message it must not lose
        /// (close code 4008).
        SlowConsumer = "slow_consumer",
    }
}

label_enum! {
    /// What the server API ordered a connection to do (label `action` of
    /// `websocket_server_commands_total`).
    pub enum ServerCommand as "action" {
        /// `disconnect`: close (`POST /api/users/{user}/disconnect`).
        Disconnect = "disconnect",
        /// `subscribe`: subscribe to a channel (`POST /api/users/{user}/subscribe`).
        Subscribe = "subscribe",
        /// `unsubscribe`: leave a channel (`POST /api/users/{user}/unsubscribe`).
        Unsubscribe = "unsubscribe",
    }
}

label_enum! {
    /// What became of webhook events (label `result` of `websocket_webhook_events_total`).
    pub enum WebhookResult as "result" {
        /// `delivered`: the receiver answered 2xx to the batch that carried it.
        Delivered = "delivered",
        /// `retried`: a batch carrying it failed (no answer, or not 2xx); it is sent again
        /// after a backoff.
        Retried = "retried",
        /// `dead_lettered`: every attempt failed; it was given up (and logged).
        DeadLettered = "dead_lettered",
        /// `dropped`: it never entered the queue (the queue was full, its file could not be
        /// written, or the hub's event stream outran the queue).
        Dropped = "dropped",
    }
}

label_enum! {
    /// The outcome of a token refresh (label `result` of `websocket_token_refreshes_total`).
    pub(crate) enum RefreshResult as "result" {
        /// `refreshed`: the connection runs on the new credentials.
        Refreshed = "refreshed",
        /// `refused`: the new token did not verify, named another user, or refresh is not
        /// supported; the connection keeps its old credentials.
        Refused = "refused",
    }
}

label_enum! {
    /// The outcome of a recovery from history (label `result` of `websocket_recoveries_total`).
    pub(crate) enum RecoveryResult as "result" {
        /// `recovered`: every missed message was replayed.
        Recovered = "recovered",
        /// `not_recovered`: history no longer held every missed message.
        NotRecovered = "not_recovered",
    }
}

/// The `code` label of `websocket_errors_total`: the protocol's error codes themselves, in
/// their documentation order, so a code is counted without a conversion.
impl Label for ErrorCode {
    const KEY: &'static str = "code";
    const VALUES: &'static [Self] = &Self::ALL;

    fn value(self) -> &'static str {
        self.as_str()
    }

    fn index(self) -> usize {
        // The inherent `ErrorCode::index`: the position in `ALL`, which `VALUES` is.
        Self::index(self)
    }
}

/// The `priority` label of `websocket_outbound_evictions_total`: the message priorities
/// themselves, most important first (`critical`, which switchboard's queue never evicts, so
/// its series stays at 0 unless a custom queue does, then `high`, `normal`, `low`).
impl Label for Priority {
    const KEY: &'static str = "priority";
    const VALUES: &'static [Self] = &[Self::Critical, Self::High, Self::Normal, Self::Low];

    fn value(self) -> &'static str {
        self.as_str()
    }

    fn index(self) -> usize {
        Self::ALL.len() - 1 - Self::index(self)
    }
}

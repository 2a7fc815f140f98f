//! Authentication of upgrades: the [`Authenticate`] trait a host implements over the
//! upgrade request ([`AuthRequest`]), and its outcomes ([`Rejection`], [`AuthError`]).
//! The [`Authenticator`](crate::Authenticator) a transport holds is built on it.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::request::Parts;
use http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use switchboard_hub::Identity;
use switchboard_metrics::AuthFailure;

/// Why a token was refused. Every variant answers the upgrade with 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No token in the `token` query parameter, an `Authorization: Bearer` header or a
    /// `switchboard.bearer.` subprotocol.
    #[error(
        "missing token: pass a switchboard.bearer.<token> subprotocol, Authorization: Bearer, or ?token="
    )]
    Missing,
    /// The token is not a well-formed JWT.
    #[error("malformed token")]
    Malformed,
    /// The token's algorithm is not accepted (`none`, HS/RS confusion, anything but the
    /// configured HS256/RS256/ES256).
    #[error("token algorithm not accepted")]
    WrongAlgorithm,
    /// The signature does not verify.
    #[error("invalid token signature")]
    BadSignature,
    /// The token has expired (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// A required claim (`exp`) is missing or malformed.
    #[error("invalid token claims: {0}")]
    Claims(String),
}

impl AuthError {
    /// A short, bounded label for metrics and the audit log.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::WrongAlgorithm => "wrong_algorithm",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::Claims(_) => "invalid_claims",
        }
    }
}

impl AuthError {
    fn failure(&self) -> AuthFailure {
        match self {
            Self::Missing => AuthFailure::Missing,
            Self::Expired => AuthFailure::Expired,
            Self::WrongAlgorithm => AuthFailure::WrongAlgorithm,
            Self::Claims(_) => AuthFailure::InvalidClaims,
            Self::Malformed | Self::BadSignature => AuthFailure::Invalid,
        }
    }
}

/// An authenticator's refusal of an upgrade: the HTTP status and a message for the client,
/// answered as `{"error": <code>, "message": <message>}` (the code follows the status:
/// `bad_request` 400, `unauthorized` 401, `forbidden` 403, `rate_limited` 429,
/// `unavailable` 5xx, `rejected` otherwise).
///
/// ```
/// use http::StatusCode;
/// use switchboard_transport::Rejection;
///
/// let no_session = Rejection::unauthorized("log in first");
/// assert_eq!(no_session.status(), StatusCode::UNAUTHORIZED);
/// let suspended = Rejection::new(StatusCode::FORBIDDEN, "account suspended");
/// assert_eq!(suspended.message(), "account suspended");
/// // Only error statuses refuse: anything else is answered 403.
/// assert_eq!(Rejection::new(StatusCode::OK, "?").status(), StatusCode::FORBIDDEN);
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    status: StatusCode,
    message: Cow<'static, str>,
    /// The audit log's `reason` and the metrics label.
    reason: &'static str,
    failure: AuthFailure,
}

impl Rejection {
    /// A refusal with `status` (a client or server error; any other is answered as 403) and
    /// `message`.
    #[must_use]
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            StatusCode::FORBIDDEN
        };
        Self {
            status,
            message: message.into(),
            reason: "rejected",
            failure: AuthFailure::Rejected,
        }
    }

    /// Refreshing credentials over the connection is not something this authenticator does.
    pub(crate) fn unsupported() -> Self {
        Self {
            reason: "unsupported",
            ..Self::new(
                StatusCode::BAD_REQUEST,
                "this server does not refresh credentials over the connection",
            )
        }
    }

    /// Whether this is [`Rejection::unsupported`].
    pub(crate) fn is_unsupported(&self) -> bool {
        self.reason == "unsupported"
    }

    /// A 401: the request carries no credentials, or ones that do not prove who it is.
    #[must_use]
    pub fn unauthorized(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// A 403: who it is is known, and may not connect.
    #[must_use]
    pub fn forbidden(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }

    /// The status the upgrade is answered with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message sent to the client.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `error` code of the JSON body.
    pub(crate) fn code(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::TOO_MANY_REQUESTS => "rate_limited",
            status if status.is_server_error() => "unavailable",
            _ => "rejected",
        }
    }

    /// A short, bounded label for the audit log.
    pub(crate) fn reason(&self) -> &'static str {
        self.reason
    }

    /// The `reason` label of `websocket_auth_failures_total`.
    pub(crate) fn failure(&self) -> AuthFailure {
        self.failure
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for Rejection {}

impl From<AuthError> for Rejection {
    /// A 401 whose message is the error's, counted under the error's own reason.
    fn from(err: AuthError) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: err.to_string().into(),
            reason: err.reason(),
            failure: err.failure(),
        }
    }
}

/// The upgrade request as an [`Authenticate`] implementation sees it: method, URI, headers,
/// the extensions a host's middleware put there (a cookie session, an already-resolved
/// user), and the peer address. The body is not part of it: an upgrade has none.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    parts: &'a Parts,
    peer: SocketAddr,
}

impl<'a> AuthRequest<'a> {
    /// The request behind `parts`, from `peer`.
    #[must_use]
    pub fn new(parts: &'a Parts, peer: SocketAddr) -> Self {
        Self { parts, peer }
    }

    /// The request's method (`GET` for an HTTP/1.1 upgrade).
    #[must_use]
    pub fn method(&self) -> &'a Method {
        &self.parts.method
    }

    /// The request's URI.
    #[must_use]
    pub fn uri(&self) -> &'a Uri {
        &self.parts.uri
    }

    /// The request's headers (`Cookie`, `Authorization`, …).
    #[must_use]
    pub fn headers(&self) -> &'a HeaderMap {
        &self.parts.headers
    }

    /// The request's extensions: what the host's middleware attached (a session layer's
    /// session, a user an outer layer authenticated, axum's `ConnectInfo`).
    #[must_use]
    pub fn extensions(&self) -> &'a Extensions {
        &self.parts.extensions
    }

    /// The address the connection comes from.
    #[must_use]
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The request's parts.
    #[must_use]
    pub fn parts(&self) -> &'a Parts {
        self.parts
    }

    /// The bearer token the client sent, from (first found) the `token` query parameter,
    /// an `Authorization: Bearer` header, or a `switchboard.bearer.<token>` subprotocol
    /// (see [`TOKEN_SUBPROTOCOL_PREFIX`](crate::TOKEN_SUBPROTOCOL_PREFIX)).
    #[must_use]
    pub fn token(&self) -> Option<String> {
        crate::request::token_of(&self.parts.uri, &self.parts.headers)
    }
}

/// Decides who an upgrade request is: an [`Identity`], or a [`Rejection`] that answers the
/// upgrade. Implemented by the host for its own login (a session cookie, an API key, a
/// lookup in its database); [`TokenVerifier`](crate::TokenVerifier) is the JWT
/// implementation.
///
/// Called once per upgrade, after the handshake, origin and connection-cap checks, with
/// the connection counted against the caps while it runs. It may take its time (a database
/// round trip), up to the transport's
/// [`handshake_timeout`](crate::TransportConfig::handshake_timeout): past that the upgrade is
/// answered 503. What a connection may do later is the hub's
/// [`Authorizer`](switchboard_hub::Authorizer)'s decision, over the identity returned here:
/// resolve here what it will need ([`Identity::with_data`]), since it runs on every publish.
///
/// ```
/// use switchboard_hub::Identity;
/// use switchboard_transport::{AuthRequest, Authenticate, Rejection};
///
/// /// The app's users, by session cookie.
/// struct Sessions;
///
/// impl Authenticate for Sessions {
///     async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Identity, Rejection> {
///         let cookie = request
///             .headers()
///             .get(http::header::COOKIE)
///             .and_then(|c| c.to_str().ok())
///             .unwrap_or_default();
///         match cookie.strip_prefix("session=") {
///             Some("s3cr3t") => Ok(Identity::user("alice").with_channels(["team:blue:*"])),
///             _ => Err(Rejection::unauthorized("log in first")),
///         }
///     }
/// }
/// ```
pub trait Authenticate: Send + Sync + 'static {
    /// Authenticates `request`.
    fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> impl Future<Output = Result<Identity, Rejection>> + Send;

    /// Verifies `token`, which an open connection sent in a `refresh` frame to go on with
    /// new credentials (Protocol v1). The identity must name the connection's user, which
    /// the transport checks; it then replaces the connection's identity, and its
    /// `expires_at` the connection's expiry. The default refuses: the client is answered
    /// `error` `unsupported`, and the connection keeps its credentials.
    fn refresh(&self, token: &str) -> impl Future<Output = Result<Identity, Rejection>> + Send {
        let _ = token;
        std::future::ready(Err(Rejection::unsupported()))
    }
}

/// A shared authenticator authenticates as the one it shares (the host keeps a handle on
/// it, for its own routes or tests).
impl<T: Authenticate> Authenticate for Arc<T> {
    fn authenticate(
        &self,
        request: &AuthRequest<'_>,
    ) -> impl Future<Output = Result<Identity, Rejection>> + Send {
        T::authenticate(self, request)
    }

    fn refresh(&self, token: &str) -> impl Future<Output = Result<Identity, Rejection>> + Send {
        T::refresh(self, token)
    }
}

//! Authentication of upgrades: the [`Authenticate`] trait a host implements over the
//! upgrade request, and the [`Authenticator`] a transport holds.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{Extensions, HeaderMap, Method, StatusCode, Uri};
use switchboard_hub::Identity;
use switchboard_metrics::AuthFailure;

#[cfg(feature = "jwt")]
use crate::jwt::TokenVerifier;

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

/// What a transport needs from an [`Authenticate`] implementation, object-safe.
trait ErasedAuthenticate: Send + Sync + 'static {
    fn authenticate<'a>(
        &'a self,
        request: &'a AuthRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Identity, Rejection>> + Send + 'a>>;

    fn refresh<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Identity, Rejection>> + Send + 'a>>;
}

impl<T: Authenticate> ErasedAuthenticate for T {
    fn authenticate<'a>(
        &'a self,
        request: &'a AuthRequest<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<Identity, Rejection>> + Send + 'a>> {
        Box::pin(Authenticate::authenticate(self, request))
    }

    fn refresh<'a>(
        &'a self,
        token: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Identity, Rejection>> + Send + 'a>> {
        Box::pin(Authenticate::refresh(self, token))
    }
}

#[derive(Clone)]
enum Kind {
    Open,
    #[cfg(feature = "jwt")]
    Jwt(TokenVerifier),
    Custom(Arc<dyn ErasedAuthenticate>),
}

/// How a transport authenticates upgrades: open (everyone anonymous), JWT, or the host's
/// own [`Authenticate`] implementation. Cheap to clone. The default is open.
///
/// ```
/// use switchboard_transport::Authenticator;
/// # #[cfg(feature = "jwt")] {
/// use switchboard_transport::TokenVerifier;
///
/// let jwt = Authenticator::jwt(TokenVerifier::hs256("a secret of at least 32 bytes......").unwrap());
/// assert_eq!(jwt.mode(), "jwt");
/// # }
/// assert_eq!(Authenticator::default().mode(), "open");
/// ```
#[derive(Clone)]
pub struct Authenticator(Kind);

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            #[cfg(feature = "jwt")]
            Kind::Jwt(verifier) => f.debug_tuple("Authenticator::Jwt").field(verifier).finish(),
            _ => write!(f, "Authenticator::{}", self.mode()),
        }
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::open()
    }
}

#[cfg(feature = "jwt")]
impl From<TokenVerifier> for Authenticator {
    fn from(verifier: TokenVerifier) -> Self {
        Self::jwt(verifier)
    }
}

impl Authenticator {
    /// No authentication: every connection is anonymous and unrestricted.
    #[must_use]
    pub fn open() -> Self {
        Self(Kind::Open)
    }

    /// A JWT is required (see [`TokenVerifier`]); its `exp`, plus the verifier's leeway,
    /// closes the connection with 4001.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn jwt(verifier: TokenVerifier) -> Self {
        Self(Kind::Jwt(verifier))
    }

    /// The host's own authentication. The identity's
    /// [`expires_at`](Identity::expires_at), when set, closes the connection with 4001 at
    /// that time (no leeway is added).
    #[must_use]
    pub fn new(authenticate: impl Authenticate) -> Self {
        Self(Kind::Custom(Arc::new(authenticate)))
    }

    /// Authenticates `request`.
    ///
    /// # Errors
    /// The [`Rejection`] that answers the upgrade.
    pub async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        match &self.0 {
            Kind::Custom(auth) => auth.authenticate(request).await,
            _ => self
                .authenticate_now(request)
                .expect("open and JWT authentication do not wait"),
        }
    }

    /// Verifies the token of a connection's `refresh` frame (see [`Authenticate::refresh`]):
    /// JWT verifies it as at the upgrade; open mode refuses, as does a host's authenticator
    /// that does not implement it.
    ///
    /// # Errors
    /// The [`Rejection`] the client is answered with (`error` `unauthorized`, or
    /// `unsupported`).
    pub async fn refresh(&self, token: &str) -> Result<Identity, Rejection> {
        match &self.0 {
            Kind::Open => Err(Rejection::unsupported()),
            #[cfg(feature = "jwt")]
            Kind::Jwt(verifier) => verifier.verify(token).map_err(Rejection::from),
            Kind::Custom(auth) => auth.refresh(token).await,
        }
    }

    /// The answer without waiting, for the authenticators that never wait (open, JWT);
    /// `None` for a host's own, which may.
    pub(crate) fn authenticate_now(
        &self,
        request: &AuthRequest<'_>,
    ) -> Option<Result<Identity, Rejection>> {
        match &self.0 {
            Kind::Open => Some(Ok(Identity::anonymous())),
            #[cfg(feature = "jwt")]
            Kind::Jwt(verifier) => Some(
                request
                    .token()
                    .ok_or(AuthError::Missing)
                    .and_then(|token| verifier.verify(&token))
                    .map_err(Rejection::from),
            ),
            Kind::Custom(_) => {
                let _ = request;
                None
            }
        }
    }

    /// The leeway applied to the identity's expiry during the connection: the verifier's
    /// for JWT, zero otherwise.
    #[must_use]
    pub fn leeway(&self) -> Duration {
        match &self.0 {
            #[cfg(feature = "jwt")]
            Kind::Jwt(verifier) => verifier.leeway_duration(),
            _ => Duration::ZERO,
        }
    }

    /// `"open"`, `"jwt"` or `"custom"`, for the startup log.
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match &self.0 {
            Kind::Open => "open",
            #[cfg(feature = "jwt")]
            Kind::Jwt(_) => "jwt",
            Kind::Custom(_) => "custom",
        }
    }
}

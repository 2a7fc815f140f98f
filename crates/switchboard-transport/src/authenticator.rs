//! The [`Authenticator`] a transport holds: open, JWT ([`TokenVerifier`]) or the host's own
//! [`Authenticate`] implementation.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use switchboard_hub::Identity;

use crate::auth::{AuthRequest, Authenticate, Rejection};
#[cfg(feature = "jwt")]
use crate::jwt::TokenVerifier;

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
// One pointer: every session keeps a clone (for `refresh`), so it costs each connection
// 8 bytes whatever the kind.
#[derive(Clone)]
pub struct Authenticator(Arc<Kind>);

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
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
        Self(Arc::new(Kind::Open))
    }

    /// A JWT is required (see [`TokenVerifier`]); its `exp`, plus the verifier's leeway,
    /// closes the connection with 4001.
    #[cfg(feature = "jwt")]
    #[must_use]
    pub fn jwt(verifier: TokenVerifier) -> Self {
        Self(Arc::new(Kind::Jwt(verifier)))
    }

    /// The host's own authentication. The identity's
    /// [`expires_at`](Identity::expires_at), when set, closes the connection with 4001 at
    /// that time (no leeway is added).
    #[must_use]
    pub fn new(authenticate: impl Authenticate) -> Self {
        Self(Arc::new(Kind::Custom(Arc::new(authenticate))))
    }

    /// Authenticates `request`.
    ///
    /// # Errors
    /// The [`Rejection`] that answers the upgrade.
    pub async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        match &*self.0 {
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
        match &*self.0 {
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
        match &*self.0 {
            Kind::Open => Some(Ok(Identity::anonymous())),
            #[cfg(feature = "jwt")]
            Kind::Jwt(verifier) => Some(
                request
                    .token()
                    .ok_or(crate::AuthError::Missing)
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
        match &*self.0 {
            #[cfg(feature = "jwt")]
            Kind::Jwt(verifier) => verifier.leeway_duration(),
            _ => Duration::ZERO,
        }
    }

    /// `"open"`, `"jwt"` or `"custom"`, for the startup log.
    #[must_use]
    pub fn mode(&self) -> &'static str {
        match &*self.0 {
            Kind::Open => "open",
            #[cfg(feature = "jwt")]
            Kind::Jwt(_) => "jwt",
            Kind::Custom(_) => "custom",
        }
    }
}

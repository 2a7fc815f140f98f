//! JWT verification (the `jwt` feature, on by default): HS256 with a shared secret,
//! RS256/ES256 with a public key.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};
use switchboard_hub::Identity;

use crate::auth::{AuthError, AuthRequest, Authenticate, Rejection};

/// Why a verifier could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthConfigError {
    /// The public key is neither an RSA nor a P-256 EC public key in PEM.
    #[error("public key is not an RSA or EC (P-256) public key in PEM: {0}")]
    PublicKey(String),
    /// The shared secret is empty.
    #[error("the JWT secret must not be empty")]
    EmptySecret,
}

#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: u64,
    #[serde(default)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    publish: Option<Vec<String>>,
    /// Every other claim, kept in the identity for an authorizer to read.
    #[serde(flatten)]
    other: Map<String, Value>,
}

#[derive(Clone)]
struct Keys {
    hmac: Option<DecodingKey>,
    public: Option<(DecodingKey, Algorithm)>,
    leeway: Duration,
    /// Where a token without a `channels` claim may subscribe; `None`: everywhere.
    default_channels: Option<Vec<Arc<str>>>,
    /// The `aud` every token must carry, when set.
    audience: Option<String>,
    /// The `iss` every token must carry, when set.
    issuer: Option<String>,
}

/// Verifies JWTs and turns their claims into an [`Identity`]; the
/// [`Authenticator`](crate::Authenticator) of a deployment whose clients carry tokens.
///
/// - `exp` is required; a leeway (default 30 s) absorbs clock skew.
/// - `sub` becomes the user id; `channels` and `publish` (lists of glob patterns) become the
///   identity's permissions; every other claim is kept in the identity
///   ([`Identity::claim`]) for an [`Authorizer`](switchboard_hub::Authorizer) to read.
/// - Only HS256 (with the secret) and RS256 or ES256 (with the public key) are accepted. The
///   header's algorithm selects the key, and a key is only ever used with its own algorithm,
///   so an HS256 token signed with the public key is refused.
/// - Verification uses jsonwebtoken's RustCrypto backend, installed as its process-wide
///   provider when a verifier is built, unless the host installed one before: a host that
///   also enables jsonwebtoken's `aws_lc_rs` feature (both backends compiled in) does not
///   make the first verification panic.
#[derive(Clone)]
pub struct TokenVerifier(Arc<Keys>);

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("hs256", &self.0.hmac.as_ref().map(|_| "[redacted]"))
            .field("public_key", &self.0.public.as_ref().map(|(_, alg)| alg))
            .field("leeway", &self.0.leeway)
            .finish()
    }
}

/// The latest `exp` honoured as written: 9999-12-31T23:59:59Z. A later one (any `u64` is a
/// syntactically valid `exp`) counts as this: such a token does not expire while the
/// process runs, and no time arithmetic on it can overflow.
pub const MAX_EXP: u64 = 253_402_300_799;

/// When a token with `exp` expires.
fn expiry_time(exp: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(exp.min(MAX_EXP))
}

/// The default clock-skew leeway.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

impl TokenVerifier {
    /// A verifier for HS256 tokens signed with `secret`.
    ///
    /// # Errors
    /// [`AuthConfigError::EmptySecret`] for an empty secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Result<Self, AuthConfigError> {
        let secret = secret.as_ref();
        if secret.is_empty() {
            return Err(AuthConfigError::EmptySecret);
        }
        install_crypto_provider();
        Ok(Self(Arc::new(Keys {
            hmac: Some(DecodingKey::from_secret(secret)),
            public: None,
            leeway: DEFAULT_LEEWAY,
            default_channels: None,
            audience: None,
            issuer: None,
        })))
    }

    /// A verifier for RS256 or ES256 tokens, from a PEM public key (RSA → RS256, EC P-256 →
    /// ES256).
    ///
    /// # Errors
    /// [`AuthConfigError::PublicKey`] when the PEM holds neither.
    pub fn public_key_pem(pem: &[u8]) -> Result<Self, AuthConfigError> {
        install_crypto_provider();
        Ok(Self(Arc::new(Keys {
            hmac: None,
            public: Some(parse_public_key(pem)?),
            leeway: DEFAULT_LEEWAY,
            default_channels: None,
            audience: None,
            issuer: None,
        })))
    }

    /// Also accepts RS256/ES256 tokens verified with a PEM public key.
    ///
    /// # Errors
    /// As [`TokenVerifier::public_key_pem`].
    pub fn with_public_key_pem(self, pem: &[u8]) -> Result<Self, AuthConfigError> {
        let public = parse_public_key(pem)?;
        Ok(self.with(|keys| keys.public = Some(public)))
    }

    fn with(self, change: impl FnOnce(&mut Keys)) -> Self {
        let mut keys = Arc::unwrap_or_clone(self.0);
        change(&mut keys);
        Self(Arc::new(keys))
    }

    /// Where a token without a `channels` claim (or with `"channels": null`) may subscribe —
    /// and, without a `publish` claim, publish: glob patterns as in the claim. Default: `*`,
    /// everywhere, which is permissive; a deployment whose tokens do not all carry
    /// `channels` should narrow it.
    #[must_use]
    pub fn default_channels<I, P>(self, patterns: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<Arc<str>>,
    {
        let patterns: Vec<Arc<str>> = patterns.into_iter().map(Into::into).collect();
        let everywhere = patterns.iter().any(|p| &**p == "*");
        self.with(|keys| keys.default_channels = (!everywhere).then_some(patterns))
    }

    /// Whether tokens without a `channels` claim may use every channel (the default).
    #[must_use]
    pub fn default_channels_unrestricted(&self) -> bool {
        self.0.default_channels.is_none()
    }

    /// Requires every token's `aud` to be (or contain) `audience`; others are refused.
    #[must_use]
    pub fn audience(self, audience: impl Into<String>) -> Self {
        let audience = audience.into();
        self.with(|keys| keys.audience = Some(audience))
    }

    /// Requires every token's `iss` to be `issuer`; others are refused.
    #[must_use]
    pub fn issuer(self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.with(|keys| keys.issuer = Some(issuer))
    }

    /// Sets the clock-skew leeway (default 30 s), for `exp` at the upgrade and during the
    /// connection.
    #[must_use]
    pub fn leeway(self, leeway: Duration) -> Self {
        self.with(|keys| keys.leeway = leeway)
    }

    /// The clock-skew leeway.
    #[must_use]
    pub fn leeway_duration(&self) -> Duration {
        self.0.leeway
    }

    /// Verifies `token` and returns the identity it proves.
    ///
    /// # Errors
    /// [`AuthError`] saying why it was refused.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            // `none` and unknown algorithms fail to parse as a header.
            ErrorKind::Json(_) | ErrorKind::InvalidAlgorithmName => AuthError::WrongAlgorithm,
            _ => AuthError::Malformed,
        })?;
        let key = match header.alg {
            Algorithm::HS256 => self.0.hmac.as_ref(),
            alg => self
                .0
                .public
                .as_ref()
                .filter(|(_, expected)| *expected == alg)
                .map(|(key, _)| key),
        }
        .ok_or(AuthError::WrongAlgorithm)?;

        let mut validation = Validation::new(header.alg);
        validation.leeway = self.0.leeway.as_secs();
        validation.validate_exp = true;
        // `nbf`, when present, with the same leeway as `exp`.
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        match &self.0.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.0.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| match e
            .kind()
        {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
            ErrorKind::MissingRequiredClaim(c) => AuthError::Claims(format!("missing {c}")),
            ErrorKind::Json(e) => AuthError::Claims(e.to_string()),
            ErrorKind::InvalidClaimFormat(c) => AuthError::Claims(format!("bad {c}")),
            ErrorKind::InvalidAudience => AuthError::Claims("aud is not this server's".into()),
            ErrorKind::InvalidIssuer => AuthError::Claims("iss is not the expected issuer".into()),
            ErrorKind::ImmatureSignature => AuthError::Claims("not valid yet (nbf)".into()),
            _ => AuthError::Malformed,
        })?;
        let claims = data.claims;
        let mut identity = Identity::anonymous();
        identity.user_id = claims.sub.map(Into::into);
        identity.expires_at = Some(expiry_time(claims.exp));
        match (claims.channels, &self.0.default_channels) {
            (Some(channels), _) => identity = identity.with_channels(channels),
            (None, Some(default)) => identity = identity.with_channels(default.iter().cloned()),
            (None, None) => {}
        }
        if let Some(publish) = claims.publish {
            identity = identity.with_publish(publish);
        }
        Ok(identity.with_claims(claims.other))
    }
}

fn parse_public_key(pem: &[u8]) -> Result<(DecodingKey, Algorithm), AuthConfigError> {
    let text = String::from_utf8_lossy(pem);
    if text.contains("RSA PUBLIC KEY") {
        return DecodingKey::from_rsa_pem(pem)
            .map(|k| (k, Algorithm::RS256))
            .map_err(|e| AuthConfigError::PublicKey(e.to_string()));
    }
    // A SubjectPublicKeyInfo may hold either; EC keys are tried first because an RSA parse
    // of an EC key can succeed structurally and fail only at verification.
    match DecodingKey::from_ec_pem(pem) {
        Ok(k) => Ok((k, Algorithm::ES256)),
        Err(ec) => DecodingKey::from_rsa_pem(pem)
            .map(|k| (k, Algorithm::RS256))
            .map_err(|rsa| AuthConfigError::PublicKey(format!("as EC: {ec}; as RSA: {rsa}"))),
    }
}

/// Makes jsonwebtoken's RustCrypto backend its process-wide provider, unless one is already
/// installed (by the host, or an earlier verifier). jsonwebtoken picks a provider from its
/// features only when exactly one backend is compiled in, and panics at the first
/// verification otherwise; installing one explicitly takes the host's feature choices out
/// of that.
fn install_crypto_provider() {
    // `Err` means a provider is installed already, which is all this needs.
    let _ = jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER.install_default();
}

impl Authenticate for TokenVerifier {
    /// Verifies the request's token (see [`AuthRequest::token`]); a refusal is 401.
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        let token = request.token().ok_or(AuthError::Missing)?;
        Ok(self.verify(&token)?)
    }

    /// Verifies the new token as at the upgrade.
    async fn refresh(&self, token: &str) -> Result<Identity, Rejection> {
        Ok(self.verify(token)?)
    }
}

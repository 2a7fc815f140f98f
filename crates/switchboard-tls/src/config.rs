use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use zeroize::Zeroizing;

/// Where the certificate, key and CA bundle live, and how clients are verified.
///
/// Plain data: nothing is read until [`LoadedCertificate::load`](crate::LoadedCertificate::load)
/// or [`ReloadableAcceptor::new`](crate::ReloadableAcceptor::new), which validate it (a
/// [`ClientAuth`] other than [`Off`](ClientAuth::Off) needs a [`ca_path`](Self::ca_path)).
///
/// `Debug` never shows the passphrase.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsConfig {
    /// PEM file with the certificate chain, leaf first (`SSL_CERT_PATH` in the server).
    pub cert_path: PathBuf,
    /// PEM file with the private key: PKCS#8, PKCS#1 (RSA), SEC1 (EC) or encrypted PKCS#8
    /// (`SSL_KEY_PATH`). May be the same file as the certificate.
    pub key_path: PathBuf,
    /// PEM bundle of CA certificates trusted to issue client certificates (`SSL_CA_PATH`).
    /// Validated whenever it is set; used when [`client_auth`](Self::client_auth) is not
    /// [`Off`](ClientAuth::Off). Default: none.
    pub ca_path: Option<PathBuf>,
    /// Passphrase of an encrypted PKCS#8 key (`SSL_KEY_PASSPHRASE`). Default: none.
    pub key_passphrase: Option<Passphrase>,
    /// Whether clients must present a certificate. Default: [`ClientAuth::Off`].
    pub client_auth: ClientAuth,
}

impl TlsConfig {
    /// A configuration serving the chain in `cert_path` with the key in `key_path`, with no
    /// CA bundle, no passphrase and no client certificates.
    pub fn new(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        Self {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
            ca_path: None,
            key_passphrase: None,
            client_auth: ClientAuth::Off,
        }
    }

    /// Sets the CA bundle that client certificates are verified against.
    #[must_use]
    pub fn ca_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_path = Some(path.into());
        self
    }

    /// Sets the passphrase that decrypts an encrypted PKCS#8 key.
    #[must_use]
    pub fn key_passphrase(mut self, passphrase: impl Into<Passphrase>) -> Self {
        self.key_passphrase = Some(passphrase.into());
        self
    }

    /// Sets whether clients must present a certificate signed by the CA bundle.
    #[must_use]
    pub fn client_auth(mut self, mode: ClientAuth) -> Self {
        self.client_auth = mode;
        self
    }
}

/// Client certificate verification against [`TlsConfig::ca_path`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ClientAuth {
    /// No client certificate is requested (the default).
    #[default]
    Off,
    /// A client certificate is requested; a client without one is accepted, a client with an
    /// invalid one is rejected.
    Optional,
    /// Every client must present a valid certificate; the handshake fails otherwise.
    Required,
}

impl ClientAuth {
    /// The name used in configuration: `off`, `optional` or `required`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }
}

impl fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ClientAuth {
    type Err = ParseClientAuthError;

    /// Parses `off`, `optional` or `required`, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Off, Self::Optional, Self::Required]
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseClientAuthError(s.to_owned()))
    }
}

/// A client authentication mode that is not `off`, `optional` or `required`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown client certificate mode {0:?}: expected off, optional or required")]
pub struct ParseClientAuthError(String);

/// The passphrase of an encrypted private key.
///
/// `Debug` prints `[redacted]`, there is no `Display`, and the memory is zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(passphrase: impl Into<String>) -> Self {
        Self(Zeroizing::new(passphrase.into()))
    }

    /// The passphrase itself, for the code that decrypts the key. Never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for Passphrase {
    fn from(passphrase: String) -> Self {
        Self::new(passphrase)
    }
}

impl From<&str> for Passphrase {
    fn from(passphrase: &str) -> Self {
        Self::new(passphrase)
    }
}

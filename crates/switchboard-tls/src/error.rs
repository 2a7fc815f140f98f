use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::ClientAuth;
use crate::validity::Utc;

/// A `Result` whose error is [`TlsError`].
pub type Result<T, E = TlsError> = std::result::Result<T, E>;

/// Why TLS could not be set up from the configured files.
///
/// Every variant about a file names it, so the message alone tells an operator what to fix.
/// A server that was asked for TLS and gets one of these must refuse to start (fail closed);
/// during a reload it keeps serving the previous certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file does not exist: check the path.
    #[error("{}: file not found", path.display())]
    NotFound {
        /// The missing file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file exists but cannot be read (permissions, a directory, ...).
    #[error("{}: cannot read the file: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid PEM (a broken BEGIN/END line, bad base64, ...).
    #[error("{}: malformed PEM: {reason}", path.display())]
    MalformedPem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser rejected.
        reason: String,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error("{}: no certificate found (expected a PEM \"CERTIFICATE\" block)", path.display())]
    NoCertificate {
        /// The certificate file.
        path: PathBuf,
    },
    /// The leaf certificate is not a parseable X.509 certificate.
    #[error("{}: invalid certificate: {reason}", path.display())]
    InvalidCertificate {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file holds no private key.
    #[error(
        "{}: no private key found (expected a PEM \"PRIVATE KEY\", \"RSA PRIVATE KEY\", \
         \"EC PRIVATE KEY\" or \"ENCRYPTED PRIVATE KEY\" block)",
        path.display()
    )]
    NoPrivateKey {
        /// The key file.
        path: PathBuf,
    },
    /// The private key is encrypted and no passphrase was configured.
    #[error("{}: the private key is encrypted and no passphrase was given", path.display())]
    EncryptedKeyNeedsPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The passphrase does not decrypt the private key.
    #[error("{}: cannot decrypt the private key: wrong passphrase", path.display())]
    WrongPassphrase {
        /// The key file.
        path: PathBuf,
    },
    /// The key is encrypted with a scheme this crate does not read, such as legacy OpenSSL PEM
    /// encryption (`Proc-Type: 4,ENCRYPTED`) or PBES1. Re-encrypt it as PKCS#8 with PBES2.
    #[error(
        "{}: unsupported private key encryption ({reason}); re-encrypt it as PKCS#8 with PBES2, \
         e.g. `openssl pkcs8 -topk8 -v2 aes-256-cbc -in old.key -out new.key`",
        path.display()
    )]
    UnsupportedKeyEncryption {
        /// The key file.
        path: PathBuf,
        /// Which encryption was found.
        reason: String,
    },
    /// The private key was decoded but cannot sign (an unsupported algorithm or curve, or
    /// corrupt key material).
    #[error("{}: unusable private key: {reason}", path.display())]
    InvalidPrivateKey {
        /// The key file.
        path: PathBuf,
        /// What rustls reported.
        reason: String,
    },
    /// The private key is not the key of the leaf certificate: the files are from different
    /// pairs.
    #[error(
        "{}: the private key does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The leaf certificate has expired: renew it.
    #[error("{}: the certificate expired on {}", path.display(), Utc(*not_after))]
    Expired {
        /// The certificate file.
        path: PathBuf,
        /// The end of the certificate's validity.
        not_after: SystemTime,
    },
    /// The leaf certificate is not valid yet: check the clock or the certificate.
    #[error("{}: the certificate is not valid before {}", path.display(), Utc(*not_before))]
    NotYetValid {
        /// The certificate file.
        path: PathBuf,
        /// The start of the certificate's validity.
        not_before: SystemTime,
    },
    /// The CA bundle cannot be used to verify client certificates.
    #[error("{}: invalid CA bundle: {reason}", path.display())]
    InvalidCaBundle {
        /// The CA bundle file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Client certificates were asked for but no CA bundle was configured to verify them.
    #[error("client certificate verification is {mode} but no CA bundle is configured")]
    ClientAuthWithoutCa {
        /// The configured mode.
        mode: ClientAuth,
    },
    /// rustls rejected the configuration.
    #[error("TLS configuration rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

impl TlsError {
    /// The file the error is about, when there is one (the key file for
    /// [`KeyMismatch`](Self::KeyMismatch)).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::NotFound { path, .. }
            | Self::Unreadable { path, .. }
            | Self::MalformedPem { path, .. }
            | Self::NoCertificate { path }
            | Self::InvalidCertificate { path, .. }
            | Self::NoPrivateKey { path }
            | Self::EncryptedKeyNeedsPassphrase { path }
            | Self::WrongPassphrase { path }
            | Self::UnsupportedKeyEncryption { path, .. }
            | Self::InvalidPrivateKey { path, .. }
            | Self::Expired { path, .. }
            | Self::NotYetValid { path, .. }
            | Self::InvalidCaBundle { path, .. } => Some(path),
            Self::KeyMismatch { key, .. } => Some(key),
            Self::ClientAuthWithoutCa { .. } | Self::Rustls(_) => None,
        }
    }

    pub(crate) fn from_io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        if source.kind() == io::ErrorKind::NotFound {
            Self::NotFound { path, source }
        } else {
            Self::Unreadable { path, source }
        }
    }
}

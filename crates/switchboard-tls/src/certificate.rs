use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SigningKey, SingleCertAndKey};
use rustls::{InconsistentKeys, RootCertStore, ServerConfig};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::{Error as PemError, PemObject};
use zeroize::{Zeroize as _, Zeroizing};

use crate::config::{ClientAuth, TlsConfig};
use crate::error::{Result, TlsError};
use crate::private_key::decode_private_key;
use crate::validity::{Utc, ValidityPeriod, leaf_validity};

/// A certificate that expires sooner than this from load time is loaded with a
/// [`CertificateWarning::ExpiresSoon`].
pub const EXPIRY_WARNING_WINDOW: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The ALPN protocol the server offers.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";

/// Something worth telling an operator about a certificate that loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateWarning {
    /// The leaf certificate expires within [`EXPIRY_WARNING_WINDOW`]: renew it.
    ExpiresSoon {
        /// The certificate file.
        path: PathBuf,
        /// The end of the certificate's validity.
        not_after: SystemTime,
        /// How long it still has, from load time.
        remaining: Duration,
    },
    /// A passphrase was configured but the key is not encrypted; it was ignored.
    PassphraseNotNeeded {
        /// The key file.
        path: PathBuf,
    },
}

impl fmt::Display for CertificateWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ExpiresSoon {
                path,
                not_after,
                remaining,
            } => write!(
                f,
                "{}: the certificate expires on {} (in {} days): renew it",
                path.display(),
                Utc(*not_after),
                remaining.as_secs() / 86_400
            ),
            Self::PassphraseNotNeeded { path } => write!(
                f,
                "{}: a passphrase was given but the private key is not encrypted",
                path.display()
            ),
        }
    }
}

/// A certificate chain with its private key, checked and ready to serve.
///
/// Loading checks everything that would otherwise fail at the first handshake, or silently
/// later: both files exist and hold PEM, the key decrypts and matches the leaf certificate, the
/// leaf is within its validity period, and the CA bundle (when set) parses.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct LoadedCertificate {
    certified_key: Arc<CertifiedKey>,
    not_before: SystemTime,
    not_after: SystemTime,
    client_auth: ClientAuth,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
    warnings: Vec<CertificateWarning>,
}

impl LoadedCertificate {
    /// Reads and validates the files named by `config`, judging expiry against the system
    /// clock.
    ///
    /// # Errors
    ///
    /// A [`TlsError`] naming the file and the problem: missing or unreadable file, malformed
    /// PEM, no certificate, no key, an encrypted key without (or with the wrong) passphrase,
    /// unsupported key encryption, a key that does not match the certificate, an expired or not
    /// yet valid certificate, an unparseable CA bundle, or client certificates required
    /// without a CA bundle.
    pub fn load(config: &TlsConfig) -> Result<Self> {
        Self::load_at(config, SystemTime::now())
    }

    /// Like [`load`](Self::load), judging expiry as of `now`.
    ///
    /// # Errors
    ///
    /// As for [`load`](Self::load).
    pub fn load_at(config: &TlsConfig, now: SystemTime) -> Result<Self> {
        if config.client_auth != ClientAuth::Off && config.ca_path.is_none() {
            return Err(TlsError::ClientAuthWithoutCa {
                mode: config.client_auth,
            });
        }
        let mut warnings = Vec::new();
        let chain = read_chain(&config.cert_path)?;
        let validity = check_validity(&config.cert_path, &chain[0], now, &mut warnings)?;
        let signing_key = read_signing_key(config, &mut warnings)?;
        let certified_key = CertifiedKey::new(chain, signing_key);
        match certified_key.keys_match() {
            // Unknown: the key cannot export its public half, so there is nothing to compare.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::KeyMismatch {
                    cert: config.cert_path.clone(),
                    key: config.key_path.clone(),
                });
            }
            Err(err) => {
                return Err(TlsError::InvalidCertificate {
                    path: config.cert_path.clone(),
                    reason: err.to_string(),
                });
            }
        }

        let roots = config.ca_path.as_deref().map(read_ca_bundle).transpose()?;
        let client_verifier = match (config.client_auth, roots) {
            (ClientAuth::Off, _) | (_, None) => None,
            (mode, Some((path, roots))) => Some(client_verifier(path, roots, mode)?),
        };

        Ok(Self {
            certified_key: Arc::new(certified_key),
            not_before: validity.not_before,
            not_after: validity.not_after,
            client_auth: config.client_auth,
            client_verifier,
            warnings,
        })
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.certified_key.cert
    }

    /// The leaf (end-entity) certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.certified_key.cert[0]
    }

    /// The start of the leaf certificate's validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// The end of the leaf certificate's validity.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// How clients are verified.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// What an operator should hear about, such as a certificate close to expiry.
    pub fn warnings(&self) -> &[CertificateWarning] {
        &self.warnings
    }

    /// A rustls server configuration serving this certificate: the ring provider, TLS 1.2 and
    /// 1.3, ALPN [`http/1.1`](ALPN_HTTP_1_1), and client certificates verified against the CA
    /// bundle as [`client_auth`](Self::client_auth) says.
    ///
    /// # Errors
    ///
    /// [`TlsError::Rustls`] if rustls rejects the protocol versions for the provider, which
    /// does not happen with the ring provider this crate uses.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>> {
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match &self.client_verifier {
            Some(verifier) => builder.with_client_cert_verifier(Arc::clone(verifier)),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(
            &self.certified_key,
        ))));
        config.alpn_protocols = vec![ALPN_HTTP_1_1.to_vec()];
        Ok(Arc::new(config))
    }
}

impl fmt::Debug for LoadedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedCertificate")
            .field("chain_len", &self.certified_key.cert.len())
            .field("key", &format_args!("[redacted]"))
            .field("not_before", &format_args!("{}", Utc(self.not_before)))
            .field("not_after", &format_args!("{}", Utc(self.not_after)))
            .field("client_auth", &self.client_auth)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// The ring provider: the only one this crate enables, so there is never a choice to make.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    Arc::clone(PROVIDER.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider())))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|err| TlsError::from_io(path, err))
}

/// Refuses a leaf outside its validity period at `now`; warns when it is close to the end.
fn check_validity(
    path: &Path,
    leaf: &CertificateDer<'_>,
    now: SystemTime,
    warnings: &mut Vec<CertificateWarning>,
) -> Result<ValidityPeriod> {
    let validity = leaf_validity(leaf).map_err(|err| TlsError::InvalidCertificate {
        path: path.to_path_buf(),
        reason: format!("cannot read the validity period: {err}"),
    })?;
    if now > validity.not_after {
        return Err(TlsError::Expired {
            path: path.to_path_buf(),
            not_after: validity.not_after,
        });
    }
    if now < validity.not_before {
        return Err(TlsError::NotYetValid {
            path: path.to_path_buf(),
            not_before: validity.not_before,
        });
    }
    let remaining = validity.not_after.duration_since(now).unwrap_or_default();
    if remaining < EXPIRY_WARNING_WINDOW {
        warnings.push(CertificateWarning::ExpiresSoon {
            path: path.to_path_buf(),
            not_after: validity.not_after,
            remaining,
        });
    }
    Ok(validity)
}

/// Reads, decrypts and parses the private key, zeroing every copy this crate made once ring
/// holds it.
fn read_signing_key(
    config: &TlsConfig,
    warnings: &mut Vec<CertificateWarning>,
) -> Result<Arc<dyn SigningKey>> {
    let pem = Zeroizing::new(read(&config.key_path)?);
    let key = decode_private_key(&config.key_path, &pem, config.key_passphrase.as_ref())?;
    if key.passphrase_unused {
        warnings.push(CertificateWarning::PassphraseNotNeeded {
            path: config.key_path.clone(),
        });
    }
    let mut der = key.der;
    let signing_key = any_supported_type(&der);
    der.zeroize();
    signing_key.map_err(|err| TlsError::InvalidPrivateKey {
        path: config.key_path.clone(),
        reason: err.to_string(),
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, PemError>>()
        .map_err(|err| TlsError::MalformedPem {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

fn read_ca_bundle(path: &Path) -> Result<(&Path, RootCertStore)> {
    let invalid = |reason: String| TlsError::InvalidCaBundle {
        path: path.to_path_buf(),
        reason,
    };
    let pem = read(path)?;
    let mut roots = RootCertStore::empty();
    for (index, cert) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let cert = cert.map_err(|err| invalid(format!("malformed PEM: {err}")))?;
        roots
            .add(cert)
            .map_err(|err| invalid(format!("certificate #{}: {err}", index + 1)))?;
    }
    if roots.is_empty() {
        return Err(invalid(
            "no certificate found (expected PEM \"CERTIFICATE\" blocks)".to_owned(),
        ));
    }
    Ok((path, roots))
}

fn client_verifier(
    path: &Path,
    roots: RootCertStore,
    mode: ClientAuth,
) -> Result<Arc<dyn ClientCertVerifier>> {
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
    let builder = match mode {
        ClientAuth::Optional => builder.allow_unauthenticated(),
        ClientAuth::Off | ClientAuth::Required => builder,
    };
    builder.build().map_err(|err| TlsError::InvalidCaBundle {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

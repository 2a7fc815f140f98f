use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{Accept, TlsAcceptor};

use crate::certificate::{CertificateWarning, LoadedCertificate};
use crate::config::TlsConfig;
use crate::error::Result;
use crate::validity::Utc;

/// The certificate an acceptor is serving.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CertificateInfo {
    /// The leaf (end-entity) certificate, DER.
    pub leaf: CertificateDer<'static>,
    /// The start of the leaf's validity.
    pub not_before: SystemTime,
    /// The end of the leaf's validity.
    pub not_after: SystemTime,
}

/// A successful reload.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReloadOutcome {
    /// The certificate now served to new connections.
    pub certificate: CertificateInfo,
    /// Warnings about it, already logged.
    pub warnings: Vec<CertificateWarning>,
}

/// A TLS acceptor whose certificate can be replaced while it serves.
///
/// Each [`accept`](Self::accept) starts its handshake with the configuration current at that
/// moment; a connection keeps the configuration it was accepted with, so a
/// [`reload`](Self::reload) changes what new connections see and drops nobody. A reload that
/// fails (a bad new pair, a half-written file) keeps the previous certificate serving.
///
/// Cloning is cheap and every clone sees the same certificate.
#[derive(Clone)]
pub struct ReloadableAcceptor(Arc<Inner>);

struct Inner {
    config: TlsConfig,
    current: RwLock<Arc<Active>>,
    /// Held for the length of a reload; holds what the files looked like at the last attempt.
    last_attempt: Mutex<FileStamps>,
}

struct Active {
    server_config: Arc<ServerConfig>,
    certificate: CertificateInfo,
}

impl ReloadableAcceptor {
    /// Loads the certificate named by `config` and serves it.
    ///
    /// Warnings (such as a certificate expiring within 30 days) are logged and the certificate
    /// is served.
    ///
    /// # Errors
    ///
    /// Any [`TlsError`](crate::TlsError) from [`LoadedCertificate::load`]: a server asked for TLS must not start
    /// with bad files.
    pub fn new(config: TlsConfig) -> Result<Self> {
        let stamps = FileStamps::of(&config);
        let (active, _warnings) = activate(&config)?;
        tracing::info!(
            cert = %config.cert_path.display(),
            not_after = %Utc(active.certificate.not_after),
            "TLS certificate loaded"
        );
        Ok(Self(Arc::new(Inner {
            config,
            current: RwLock::new(Arc::new(active)),
            last_attempt: Mutex::new(stamps),
        })))
    }

    /// Starts the TLS handshake for a new connection with the current certificate.
    pub fn accept<IO>(&self, stream: IO) -> Accept<IO>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        TlsAcceptor::from(self.server_config()).accept(stream)
    }

    /// The rustls configuration new connections get now, for callers that drive the handshake
    /// themselves.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.active().server_config)
    }

    /// The certificate new connections get now.
    pub fn certificate(&self) -> CertificateInfo {
        self.active().certificate.clone()
    }

    /// The configuration the files are read from.
    pub fn config(&self) -> &TlsConfig {
        &self.0.config
    }

    /// Reads the files again and, if they are valid, serves the new certificate to new
    /// connections. Blocks while the files are read and the key decrypted: from async code,
    /// call it inside `spawn_blocking` (the [watcher](Self::spawn_reload_watcher) does).
    ///
    /// # Errors
    ///
    /// The [`TlsError`](crate::TlsError) that rejected the new files; it is also logged, and the previous
    /// certificate keeps serving.
    pub fn reload(&self) -> Result<ReloadOutcome> {
        let mut last_attempt = self.lock_last_attempt();
        *last_attempt = FileStamps::of(&self.0.config);
        self.reload_locked()
    }

    /// Reloads if a file changed (modification time or length, or it appeared or vanished)
    /// since the last load or reload attempt; `Ok(None)` if nothing changed. A failed attempt
    /// is not retried until a file changes again, so a bad file is reported once.
    ///
    /// # Errors
    ///
    /// As for [`reload`](Self::reload).
    pub fn reload_if_changed(&self) -> Result<Option<ReloadOutcome>> {
        let mut last_attempt = self.lock_last_attempt();
        let stamps = FileStamps::of(&self.0.config);
        if stamps == *last_attempt {
            return Ok(None);
        }
        *last_attempt = stamps;
        self.reload_locked().map(Some)
    }

    fn reload_locked(&self) -> Result<ReloadOutcome> {
        let config = &self.0.config;
        match activate(config) {
            Ok((active, warnings)) => {
                let certificate = active.certificate.clone();
                *self
                    .0
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(active);
                tracing::info!(
                    cert = %config.cert_path.display(),
                    not_after = %Utc(certificate.not_after),
                    "TLS certificate reloaded"
                );
                Ok(ReloadOutcome {
                    certificate,
                    warnings,
                })
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    "TLS certificate reload failed; still serving the previous certificate"
                );
                Err(error)
            }
        }
    }

    fn active(&self) -> Arc<Active> {
        Arc::clone(
            &self
                .0
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    fn lock_last_attempt(&self) -> std::sync::MutexGuard<'_, FileStamps> {
        self.0
            .last_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ReloadableAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let active = self.active();
        f.debug_struct("ReloadableAcceptor")
            .field("config", &self.0.config)
            .field(
                "not_after",
                &format_args!("{}", Utc(active.certificate.not_after)),
            )
            .finish_non_exhaustive()
    }
}

/// Loads, logs the warnings, and builds what an acceptor serves.
fn activate(config: &TlsConfig) -> Result<(Active, Vec<CertificateWarning>)> {
    let loaded = LoadedCertificate::load(config)?;
    for warning in loaded.warnings() {
        tracing::warn!(%warning, "TLS certificate warning");
    }
    let active = Active {
        server_config: loaded.server_config()?,
        certificate: CertificateInfo {
            leaf: loaded.leaf().clone(),
            not_before: loaded.not_before(),
            not_after: loaded.not_after(),
        },
    };
    Ok((active, loaded.warnings().to_vec()))
}

/// What the configured files look like, cheaply: enough to notice a renewal.
#[derive(Debug, PartialEq, Eq)]
struct FileStamps([Option<FileStamp>; 3]);

#[derive(Debug, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamps {
    fn of(config: &TlsConfig) -> Self {
        Self([
            FileStamp::of(&config.cert_path),
            FileStamp::of(&config.key_path),
            config.ca_path.as_deref().and_then(FileStamp::of),
        ])
    }
}

impl FileStamp {
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        })
    }
}

#![doc = include_str!("../README.md")]

mod certificate;
mod config;
mod error;
mod private_key;
mod reload;
mod validity;
mod watcher;

pub use certificate::{
    ALPN_HTTP_1_1, CertificateWarning, EXPIRY_WARNING_WINDOW, LoadedCertificate,
};
pub use config::{ClientAuth, ParseClientAuthError, Passphrase, TlsConfig};
pub use error::{Result, TlsError};
pub use reload::{CertificateInfo, ReloadOutcome, ReloadableAcceptor};
pub use watcher::{ReloadEvent, ReloadTrigger, ReloadWatcher, ReloadWatcherConfig};

/// The rustls crate this one builds on, re-exported so callers use the same version.
pub use rustls;
/// The tokio-rustls crate whose [`server::TlsStream`](tokio_rustls::server::TlsStream)
/// [`ReloadableAcceptor::accept`] yields.
pub use tokio_rustls;

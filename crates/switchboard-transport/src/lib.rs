#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod auth;
mod authenticator;
mod clock;
mod config;
mod edge;
mod frames;
mod io;
#[cfg(feature = "jwt")]
mod jwt;
mod lease;
mod live;
mod outbox;
mod request;
mod service;
mod session;
mod span;
mod transport;

pub use auth::{AuthError, AuthRequest, Authenticate, Rejection};
pub use authenticator::Authenticator;
pub use config::TransportConfig;
pub use edge::{AcceptLoop, NotFound, PlainTcp, Routes, WrapStream};
#[cfg(feature = "jwt")]
pub use jwt::{AuthConfigError, DEFAULT_LEEWAY, MAX_EXP, TokenVerifier};
pub use request::{SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX};
pub use service::{PeerAddr, PeerFrom, ServiceFuture, WebSocketService};
pub use transport::{
    Admission, AdmissionRefused, ResponseBody, Transport, TransportBuilder, UpgradeFuture,
};

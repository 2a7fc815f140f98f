#![doc = include_str!("../README.md")]

mod auth;
mod clock;
mod config;
mod frames;
mod io;
mod live;
mod outbox;
mod session;
mod span;
mod transport;

pub use auth::{AuthConfigError, AuthError, Authenticator, DEFAULT_LEEWAY, MAX_EXP, TokenVerifier};
pub use config::TransportConfig;
pub use transport::{
    Admission, AdmissionRefused, ResponseBody, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX, Transport,
    TransportBuilder,
};

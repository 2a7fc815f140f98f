#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod api;
mod assets;
pub mod cli;
mod config;
mod respond;
mod routes;
mod secret;
mod server;
mod state;
mod timestamp;
mod webhooks;

pub use assets::{CLIENT_JS, DEMO_HTML};
pub use config::{ConfigError, LogFormat, Namespace, Secret, ServerConfig};
pub use server::{Server, ServerError};
pub use webhooks::{WebhookConfig, WebhookError, WebhookEventType};

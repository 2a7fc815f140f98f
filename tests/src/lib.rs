//! End-to-end tests across switchboard's crates live in `tests/`: each one composes real
//! parts — sockets on 127.0.0.1, TLS handshakes with generated certificates, a real
//! `redis-server` — the way an embedding service would.
//!
//! This library holds what those tests share:
//!
//! - [`ServerProcess`]: the reference server as a real child process (the
//!   `switchboard-e2e` binary, see [`e2e_binary!`]), its captured log (printed when a test
//!   fails), its `/health` and `/ready`, and signals (SIGKILL, SIGSTOP/SIGCONT, SIGTERM);
//! - [`http_get`]: a tiny HTTP/1.1 `GET` for the health endpoints;
//! - [`WsClient`]: a raw WebSocket client that speaks the protocol frame by frame;
//! - [`Balancer`]: a loopback TCP load balancer that sends each new connection to the first
//!   backend that accepts it, so a client with one URL fails over when an instance dies;
//! - [`PublishStream`] and [`RecoveringSubscriber`]: a steady publisher and a subscriber
//!   that reconnects and recovers the way the protocol says a client must, both recording
//!   everything they see;
//! - [`Reconciliation`]: the checker that proves, from those records, that every published
//!   message reached every subscriber exactly once and in order, or that the subscriber was
//!   told continuity was lost — never silently missing.
//!
//! Every wait is bounded: helpers take a time limit or use [`WAIT`].

mod balancer;
mod continuity;
mod http;
mod publish_stream;
mod server_process;
mod subscriber;
mod ws_client;

use std::time::Duration;

pub use balancer::Balancer;
pub use continuity::{
    Delivery, PublishLog, PublishRecord, Reconciliation, Report, SubscriberEvent, SubscriberLog,
};
pub use http::{HttpAnswer, http_get, try_http_get};
pub use publish_stream::PublishStream;
pub use server_process::{ServerLog, ServerProcess};
pub use subscriber::RecoveringSubscriber;
pub use ws_client::{WsClient, WsEvent};

/// The longest a single expected event may take before a test fails (generous: CI runs
/// several test binaries at once on two cores).
pub const WAIT: Duration = Duration::from_secs(15);

/// `prefix` made unique to this process and moment (`prefix-<pid>-<nanos>`), for channel
/// names and message ids: a shared Redis (`SWITCHBOARD_TEST_REDIS_URL`) keeps history and
/// dedupe keys across runs and parallel tests.
#[must_use]
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The path of the reference server binary built for the end-to-end tests. Cargo only
/// sets `CARGO_BIN_EXE_*` while compiling integration tests, so this is a macro expanded
/// there.
#[macro_export]
macro_rules! e2e_binary {
    () => {
        env!("CARGO_BIN_EXE_switchboard-e2e")
    };
}

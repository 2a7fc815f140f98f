//! The `switchboard` command itself, as a function, so that a program embedding the server
//! (or a test harness that needs the real binary) runs exactly what `cargo run` runs.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use crate::{ConfigError, LogFormat, Server, ServerConfig};

/// Runs the `switchboard` command: loads the configuration from the command line, the
/// environment and the optional TOML file (an invalid setting exits 2 naming it), installs
/// logging, starts a tokio runtime (single-threaded when `TOKIO_WORKER_THREADS=1`, else
/// multi-threaded), serves until `SIGINT` or `SIGTERM`, then drains connections within
/// `SHUTDOWN_TIMEOUT_MS`.
///
/// Returns the process exit code: 0 after a graceful shutdown, 1 when the server cannot
/// start (a port in use, an unreadable certificate), 2 for an invalid configuration.
pub fn main() -> ExitCode {
    let config = match ServerConfig::load() {
        Ok(config) => config,
        Err(ConfigError::Cli(err)) => err.exit(),
        Err(err) => {
            eprintln!("switchboard: {err}");
            return exit_code(err.exit_code());
        }
    };
    install_logging(&config);
    let runtime = match runtime(std::env::var("TOKIO_WORKER_THREADS").ok().as_deref()) {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(%err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

/// The runtime for `TOKIO_WORKER_THREADS` (`workers`): tokio's multi-threaded scheduler,
/// with one worker per core unless that says otherwise, or, for exactly one worker, the
/// single-threaded scheduler. One worker thread does the same work either way, but the
/// single-threaded scheduler spends none of its time on what work stealing needs (atomic
/// task states, a shared queue, a second thread to park and wake), so a server given one
/// core does more with it.
fn runtime(workers: Option<&str>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers.map(str::parse::<usize>) == Some(Ok(1)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().build()
}

async fn run(config: ServerConfig) -> ExitCode {
    // Listen for the signals before announcing anything, so a signal sent as soon as the
    // server says it listens is a graceful shutdown, never the default action.
    let signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(err) => {
            tracing::error!(%err, "cannot listen for SIGTERM");
            return ExitCode::FAILURE;
        }
    };
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(err) => {
            tracing::error!("cannot start: {err}");
            return exit_code(err.exit_code());
        }
    };
    let signal = signals.recv().await;
    tracing::info!(
        signal,
        timeout_ms =
            u64::try_from(server.config().shutdown_timeout.as_millis()).unwrap_or(u64::MAX),
        "shutting down: draining connections"
    );
    if !server.shutdown().await {
        tracing::warn!("some connections did not close within SHUTDOWN_TIMEOUT_MS");
    }
    ExitCode::SUCCESS
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn install_logging(config: &ServerConfig) {
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(&config.log_filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        _ => builder.init(),
    }
}

/// SIGINT and, on Unix, SIGTERM, listened for from creation on.
struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Waits for the first signal and names it.
    #[cfg(unix)]
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }

    /// Waits for the first signal and names it.
    #[cfg(not(unix))]
    async fn recv(self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::runtime;

    #[test]
    fn one_worker_runs_the_single_threaded_scheduler() {
        let flavor = |workers| runtime(workers).unwrap().handle().runtime_flavor();
        assert_eq!(flavor(Some("1")), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(Some("2")), RuntimeFlavor::MultiThread);
        assert_eq!(flavor(None), RuntimeFlavor::MultiThread);
    }
}

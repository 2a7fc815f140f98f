//! The reference server as a child process: environment, captured log, address, health,
//! signals.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::WAIT;
use crate::http::{HttpAnswer, try_http_get};

/// Settings every test server gets unless the test overrides them: a free port on
/// 127.0.0.1, limits out of the way of test traffic, a short drain, text logs.
/// The first two (the address) are all that [`ServerProcess::start_with_server_defaults`]
/// sets.
const DEFAULT_ENV: &[(&str, &str)] = &[
    ("HOST", "127.0.0.1"),
    ("PORT", "0"),
    ("RATE_LIMIT_MAX_MESSAGES", "1000000"),
    ("RATE_LIMIT_USER_MAX_MESSAGES", "0"),
    ("RATE_LIMIT_WINDOW_MS", "1000"),
    ("MAX_CONNECTIONS_PER_IP", "0"),
    ("SHUTDOWN_TIMEOUT_MS", "3000"),
    ("DRAIN_WINDOW_MS", "100"),
    ("LOG_FORMAT", "text"),
    ("RUST_LOG", "info"),
    ("TOKIO_WORKER_THREADS", "2"),
];

/// How often the health helpers poll (no push signal exists for `/health`).
const POLL: Duration = Duration::from_millis(50);

/// Everything a server process wrote, line by line (stderr lines prefixed `[stderr]`),
/// shared with the tasks that read its pipes.
#[derive(Clone)]
pub struct ServerLog {
    lines: Arc<Mutex<Vec<String>>>,
    /// The number of lines so far; changes wake waiters.
    count: watch::Sender<usize>,
}

impl fmt::Debug for ServerLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerLog")
            .field("lines", &self.len())
            .finish()
    }
}

impl ServerLog {
    fn new() -> Self {
        Self {
            lines: Arc::default(),
            count: watch::channel(0).0,
        }
    }

    fn push(&self, line: String) {
        let len = {
            let mut lines = self.lines.lock().expect("log lock");
            lines.push(line);
            lines.len()
        };
        self.count.send_replace(len);
    }

    /// How many lines were captured so far: a mark for [`ServerLog::wait_for_after`].
    #[must_use]
    pub fn len(&self) -> usize {
        self.lines.lock().expect("log lock").len()
    }

    /// Whether nothing was captured yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole log.
    #[must_use]
    pub fn text(&self) -> String {
        self.lines.lock().expect("log lock").join("\n")
    }

    /// The first line at or after line `mark` that contains `needle`, if any yet.
    #[must_use]
    pub fn find_after(&self, mark: usize, needle: &str) -> Option<String> {
        let lines = self.lines.lock().expect("log lock");
        lines
            .iter()
            .skip(mark)
            .find(|l| l.contains(needle))
            .cloned()
    }

    /// Waits (at most `within`) for a line at or after line `mark` containing `needle`.
    ///
    /// # Errors
    /// The whole log so far, when no such line came in time.
    pub async fn wait_for_after(
        &self,
        mark: usize,
        needle: &str,
        within: Duration,
    ) -> Result<String, String> {
        let mut count = self.count.subscribe();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(line) = self.find_after(mark, needle) {
                return Ok(line);
            }
            match tokio::time::timeout_at(deadline, count.changed()).await {
                Ok(Ok(())) => {}
                // Timed out, or both pipes closed (the sender lives in `self`, so only a
                // timeout ends this in practice).
                _ => {
                    return Err(format!(
                        "no log line containing {needle:?} within {within:?}; log:\n{}",
                        self.text()
                    ));
                }
            }
        }
    }
}

/// The `switchboard` server running as a child process, killed on drop. When a test
/// panics, dropping it prints the server's whole log to stderr.
pub struct ServerProcess {
    name: String,
    child: Child,
    pid: Pid,
    addr: SocketAddr,
    log: ServerLog,
    exit: Option<ExitStatus>,
}

impl fmt::Debug for ServerProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerProcess")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("addr", &self.addr)
            .field("exit", &self.exit)
            .finish_non_exhaustive()
    }
}

impl ServerProcess {
    /// Starts `binary` (usually [`e2e_binary!`](crate::e2e_binary)) with a clean
    /// environment: `PATH`, the test defaults (a free port on 127.0.0.1, rate limits and
    /// per-IP caps out of the way, a short drain) and then `env`, which wins. Returns once
    /// the log says where it listens.
    ///
    /// # Panics
    /// When it cannot be spawned, or exits or stays silent before listening (with its log).
    pub async fn start(binary: impl AsRef<Path>, name: &str, env: &[(&str, &str)]) -> Self {
        Self::spawn(binary.as_ref(), name, DEFAULT_ENV, env).await
    }

    /// Like [`start`](Self::start), but with the server's own defaults for everything but
    /// the address (a free port on 127.0.0.1): for tests of those defaults (the per-IP cap,
    /// the rate limit).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_with_server_defaults(
        binary: impl AsRef<Path>,
        name: &str,
        env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(binary.as_ref(), name, &DEFAULT_ENV[..2], env).await
    }

    async fn spawn(
        binary: &Path,
        name: &str,
        defaults: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(defaults.iter().copied())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start server {name}: {e}"));
        let raw_pid = child.id().expect("a child that was just spawned has a pid");
        let pid = Pid::from_raw(i32::try_from(raw_pid).expect("pid fits i32"))
            .expect("a pid is positive");
        let log = ServerLog::new();
        capture(child.stdout.take().expect("piped"), log.clone(), "");
        capture(
            child.stderr.take().expect("piped"),
            log.clone(),
            "[stderr] ",
        );

        let line = match log.wait_for_after(0, "listening on ", WAIT).await {
            Ok(line) => line,
            Err(err) => {
                let status = child.try_wait().ok().flatten();
                panic!("server {name} did not start (exit status {status:?}): {err}");
            }
        };
        let addr = listening_addr(&line)
            .unwrap_or_else(|| panic!("server {name}: no address in {line:?}"));
        Self {
            name: name.to_owned(),
            child,
            pid,
            addr,
            log,
            exit: None,
        }
    }

    /// The name given at start (used in messages and in the printed log).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// `ws://127.0.0.1:PORT/ws`.
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The captured log.
    #[must_use]
    pub fn log(&self) -> &ServerLog {
        &self.log
    }

    /// `GET path`, or why it failed (no answer within `within`, refused…).
    ///
    /// # Errors
    /// When no complete answer arrives in time.
    pub async fn try_get(&self, path: &str, within: Duration) -> std::io::Result<HttpAnswer> {
        try_http_get(self.addr, path, within).await
    }

    /// `GET /health`: status and JSON body.
    ///
    /// # Panics
    /// When the server does not answer within [`WAIT`] (with its log).
    pub async fn health(&self) -> (u16, Value) {
        self.get_json("/health").await
    }

    /// `GET /ready`: status and JSON body.
    ///
    /// # Panics
    /// When the server does not answer within [`WAIT`] (with its log).
    pub async fn ready(&self) -> (u16, Value) {
        self.get_json("/ready").await
    }

    async fn get_json(&self, path: &str) -> (u16, Value) {
        match self.try_get(path, WAIT).await {
            Ok(answer) => (answer.status, answer.json()),
            Err(e) => panic!("server {} did not answer GET {path}: {e}", self.name),
        }
    }

    /// Polls `/health` and `/ready` (every 50 ms, at most `within`) until `accept(health
    /// status, health JSON, ready status)` holds; returns the last `/health` JSON. Every
    /// poll must be answered: a server that stops answering fails the test.
    ///
    /// # Panics
    /// When the condition does not hold in time, or the server does not answer.
    pub async fn wait_for_health(
        &self,
        what: &str,
        within: Duration,
        mut accept: impl FnMut(u16, &Value, u16) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, health) = self.health().await;
            let (ready, ready_body) = self.ready().await;
            if accept(status, &health, ready) {
                return health;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server {}: {what} did not happen within {within:?}; last /health: {status} {health}; /ready: {ready} {ready_body}",
                    self.name
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `/health` says `degraded` and `/ready` answers 503.
    ///
    /// # Panics
    /// When that does not happen within `within`.
    pub async fn wait_degraded(&self, within: Duration) -> Value {
        self.wait_for_health("backplane degraded", within, |status, health, ready| {
            status == 200 && health["status"] == "degraded" && ready == 503
        })
        .await
    }

    /// Waits until `/health` says `ok` and `/ready` answers 200.
    ///
    /// # Panics
    /// When that does not happen within `within`.
    pub async fn wait_ok(&self, within: Duration) -> Value {
        self.wait_for_health("backplane up", within, |status, health, ready| {
            status == 200 && health["status"] == "ok" && ready == 200
        })
        .await
    }

    /// Whether the process is still running (not exited; a stopped process counts).
    pub fn is_running(&mut self) -> bool {
        if self.exit.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.exit = Some(status);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// The exit status, once it exited and was waited for.
    #[must_use]
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.exit
    }

    /// Kills it with SIGKILL (a crash: no drain, no close frames) and waits for the exit.
    ///
    /// # Panics
    /// When it does not exit within [`WAIT`].
    pub async fn kill(&mut self) {
        if self.exit.is_some() {
            return;
        }
        // The process may have exited already; `wait` tells.
        let _ = self.child.start_kill();
        self.wait_exit(WAIT).await;
    }

    /// Freezes it with SIGSTOP: its sockets stay open but nothing is answered.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn stop(&self) {
        self.signal(Signal::STOP);
    }

    /// Resumes it after [`ServerProcess::stop`] with SIGCONT.
    ///
    /// # Panics
    /// When the signal cannot be sent.
    pub fn cont(&self) {
        self.signal(Signal::CONT);
    }

    /// Sends SIGTERM (a graceful shutdown: drain, then exit 0) and waits at most `within`
    /// for the exit; returns the exit code.
    ///
    /// # Panics
    /// When it does not exit in time (with its log).
    pub async fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.signal(Signal::TERM);
        self.wait_exit(within).await.code()
    }

    /// Waits at most `within` for the process to exit.
    ///
    /// # Panics
    /// When it does not exit in time (with its log).
    pub async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "server {} did not exit within {within:?}; log:\n{}",
                    self.name,
                    self.log.text()
                )
            })
            .expect("waiting for a child process");
        self.exit = Some(status);
        status
    }

    fn signal(&self, signal: Signal) {
        assert!(
            self.exit.is_none(),
            "server {} already exited ({:?})",
            self.name,
            self.exit
        );
        kill_process(self.pid, signal)
            .unwrap_or_else(|e| panic!("cannot signal server {}: {e}", self.name));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- log of server {} ({}) ----\n{}\n---- end of log of server {} ----",
                self.name,
                self.addr,
                self.log.text(),
                self.name
            );
        }
        if self.exit.is_none() {
            // SIGKILL also ends a stopped process; `kill_on_drop` would too, this is
            // immediate.
            let _ = self.child.start_kill();
        }
    }
}

/// Copies `pipe` into `log` line by line until it closes.
fn capture(pipe: impl AsyncRead + Unpin + Send + 'static, log: ServerLog, prefix: &'static str) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            log.push(format!("{prefix}{line}"));
        }
    });
}

/// The address in `listening on ws://127.0.0.1:PORT/ws (HTTP on …)`.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on ")?..];
    let rest = &rest[rest.find("://")? + 3..];
    rest[..rest.find('/')?].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::listening_addr;

    #[test]
    fn the_address_is_read_from_the_listening_line() {
        let line = "2026-11-22T05:00:00Z  INFO switchboard_server::server: listening on ws://127.0.0.1:40123/ws (HTTP on http://127.0.0.1:40123)";
        assert_eq!(
            listening_addr(line),
            Some("127.0.0.1:40123".parse().unwrap())
        );
        assert_eq!(listening_addr("listening soon"), None);
    }
}

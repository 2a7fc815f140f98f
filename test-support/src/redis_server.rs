use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use std::{fmt, io, thread};

/// The environment variable naming an external Redis server for tests.
pub const REDIS_URL_ENV: &str = "SWITCHBOARD_TEST_REDIS_URL";

/// How long a spawned server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many free ports to try when another process takes the one picked.
const PORT_ATTEMPTS: usize = 5;

const HOW_TO_FIX: &str = "run `scripts/test` (it installs redis-server), or \
    `apt-get install redis-server`, or set SWITCHBOARD_TEST_REDIS_URL=redis://127.0.0.1:6379 \
    to use a running server";

/// Why a Redis server for tests could not be had.
#[derive(Debug)]
#[non_exhaustive]
pub enum RedisServerError {
    /// `redis-server` is not installed.
    NotInstalled(io::Error),
    /// It started but did not report readiness in time, or exited.
    NotReady(String),
    /// The operation needs a server this helper spawned (not an external one).
    External,
    /// An I/O error while talking to the server.
    Io(io::Error),
}

impl fmt::Display for RedisServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInstalled(e) => {
                write!(f, "cannot run redis-server ({e}); to fix: {HOW_TO_FIX}")
            }
            Self::NotReady(log) => write!(
                f,
                "redis-server did not become ready; its output:\n{log}\nto fix: {HOW_TO_FIX}"
            ),
            Self::External => f.write_str(
                "this test kills or pauses Redis, so it needs a server it spawned itself; \
                 it cannot use SWITCHBOARD_TEST_REDIS_URL",
            ),
            Self::Io(e) => write!(f, "talking to redis-server: {e}"),
        }
    }
}

impl std::error::Error for RedisServerError {}

impl From<io::Error> for RedisServerError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// A Redis server for one test: spawned on a free port and killed on drop, or external.
pub struct RedisServer {
    url: String,
    port: u16,
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
}

impl fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisServer")
            .field("url", &self.url)
            .field("spawned", &self.dir.is_some())
            .field("running", &self.child.is_some())
            .finish()
    }
}

impl RedisServer {
    /// The server named by `SWITCHBOARD_TEST_REDIS_URL` if set, else a spawned one.
    ///
    /// # Panics
    /// With a message that says how to fix it when no server can be had: tests that need
    /// Redis fail loudly rather than skip.
    #[must_use]
    pub fn start() -> Self {
        match std::env::var(REDIS_URL_ENV) {
            Ok(url) if !url.is_empty() => Self::external(url),
            _ => Self::spawn(),
        }
    }

    /// A freshly spawned server, whatever the environment says (for fault tests).
    ///
    /// # Panics
    /// When `redis-server` cannot be started, with a message that says how to fix it.
    #[must_use]
    pub fn spawn() -> Self {
        Self::try_spawn().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`RedisServer::spawn`], returning the error instead of panicking.
    ///
    /// # Errors
    /// [`RedisServerError`] when the binary is missing or the server does not become ready.
    pub fn try_spawn() -> Result<Self, RedisServerError> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-redis-")
            .tempdir()?;
        let mut last = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match launch(dir.path(), port) {
                Ok(child) => {
                    return Ok(Self {
                        url: format!("redis://127.0.0.1:{port}"),
                        port,
                        child: Some(child),
                        dir: Some(dir),
                    });
                }
                // Another process may have taken the port between our probe and the bind.
                Err(RedisServerError::NotReady(log)) if log.contains("in use") => {
                    last = Some(RedisServerError::NotReady(log));
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| RedisServerError::NotReady("no free port".into())))
    }

    fn external(url: String) -> Self {
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').split('/').next()?.parse().ok())
            .unwrap_or(6379);
        Self {
            url,
            port,
            child: None,
            dir: None,
        }
    }

    /// The `redis://` URL to connect to.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The TCP port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address to connect to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// Kills the server with SIGKILL (a crash: no shutdown, no save) and waits for it to exit.
    ///
    /// # Errors
    /// [`RedisServerError::External`] for an external server.
    pub fn kill(&mut self) -> Result<(), RedisServerError> {
        self.owned()?;
        if let Some(mut child) = self.child.take() {
            // The process may already have exited; either way it is gone after `wait`.
            let _ = child.kill();
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again on the same port after [`RedisServer::kill`]. Its data is gone
    /// (nothing is persisted), as after a crash of a cache-only Redis.
    ///
    /// # Errors
    /// [`RedisServerError`] when it cannot be started.
    pub fn restart(&mut self) -> Result<(), RedisServerError> {
        self.owned()?;
        self.kill()?;
        let dir = self.dir.as_ref().ok_or(RedisServerError::External)?;
        self.child = Some(launch(dir.path(), self.port)?);
        Ok(())
    }

    /// Freezes the server with SIGSTOP: connections stay open but nothing answers (a hang).
    ///
    /// # Errors
    /// [`RedisServerError::External`] for an external server, or when `kill` fails.
    pub fn pause(&self) -> Result<(), RedisServerError> {
        self.signal("-STOP")
    }

    /// Resumes a server frozen by [`RedisServer::pause`].
    ///
    /// # Errors
    /// As [`RedisServer::pause`].
    pub fn resume(&self) -> Result<(), RedisServerError> {
        self.signal("-CONT")
    }

    /// Runs one command given as arguments (e.g. `["FLUSHALL"]`) and returns the raw RESP reply.
    ///
    /// # Errors
    /// When the server cannot be reached.
    pub fn command(&self, args: &[&str]) -> Result<String, RedisServerError> {
        self.command_within(args, Duration::from_secs(5))
    }

    fn command_within(&self, args: &[&str], timeout: Duration) -> Result<String, RedisServerError> {
        let mut stream = TcpStream::connect_timeout(&self.addr(), timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reply = [0u8; 4096];
        let n = stream.read(&mut reply)?;
        Ok(String::from_utf8_lossy(&reply[..n]).into_owned())
    }

    /// Whether the server answers `PING` within half a second.
    #[must_use]
    pub fn is_up(&self) -> bool {
        self.command_within(&["PING"], Duration::from_millis(500))
            .is_ok_and(|r| r.starts_with("+PONG"))
    }

    fn owned(&self) -> Result<(), RedisServerError> {
        if self.dir.is_some() {
            Ok(())
        } else {
            Err(RedisServerError::External)
        }
    }

    fn signal(&self, sig: &str) -> Result<(), RedisServerError> {
        self.owned()?;
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| RedisServerError::NotReady("server is not running".into()))?;
        let status = Command::new("kill")
            .arg(sig)
            .arg(child.id().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(RedisServerError::Io(io::Error::other(format!(
                "kill {sig} exited with {status}"
            ))))
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A paused server must be resumed for SIGKILL to reap promptly; both are harmless
            // on a running one.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Starts redis-server in the foreground and waits for its readiness line.
fn launch(dir: &Path, port: u16) -> Result<Child, RedisServerError> {
    let mut child = Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--protected-mode", "no"])
        .args(["--daemonize", "no"])
        .args(["--loglevel", "notice"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(RedisServerError::NotInstalled)?;

    // Read the log on a thread: readiness is a line in it, so no polling or sleeping.
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut log = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let ready = line.contains("Ready to accept connections");
            log.push_str(&line);
            log.push('\n');
            if ready {
                // Keep draining afterwards so the server never blocks on a full pipe.
                let _ = tx.send(Ok(()));
            }
        }
        let _ = tx.send(Err(log));
    });

    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(Ok(())) => Ok(child),
        Ok(Err(log)) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(RedisServerError::NotReady(log))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(RedisServerError::NotReady(format!(
                "no readiness line within {READY_TIMEOUT:?}"
            )))
        }
    }
}

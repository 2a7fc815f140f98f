//! The reference server as a real process (`switchboard-e2e`), raw WebSocket clients that
//! connect from a chosen loopback address, and small readers for `/health`, `/metrics` and
//! `/proc`. Shared by `abuse.rs` and `slow_consumer.rs`.
#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tests::{HttpAnswer, http_get};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The longest any single expected event may take: a liveness bound, never a speed claim.
pub const WAIT: Duration = Duration::from_secs(10);

/// The `switchboard-e2e` binary (exactly the reference server) as a child process, killed on
/// drop: the shared [`tests::ServerProcess`] started with the server's own defaults (these
/// suites test them), plus readers for `/proc`, `/health` and `/metrics`.
pub struct ServerProcess {
    inner: tests::ServerProcess,
}

impl ServerProcess {
    /// Starts the server on `127.0.0.1:0` with `env` added to a clean environment, and waits
    /// for its `listening on` line (logged by `switchboard_server` at `info`: a `RUST_LOG` in
    /// `env` must keep it).
    pub async fn start(env: &[(&str, &str)]) -> Self {
        let inner = tests::ServerProcess::start_with_server_defaults(
            env!("CARGO_BIN_EXE_switchboard-e2e"),
            "server",
            env,
        )
        .await;
        Self { inner }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Sends `SIGTERM` and waits at most `within` for the exit; returns the exit code.
    pub async fn terminate(&mut self, within: Duration) -> Option<i32> {
        self.inner.terminate(within).await
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.inner.is_running()
    }

    /// What the server logged.
    pub fn log_tail(&self) -> String {
        self.inner.log().text()
    }

    /// Resident memory, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        proc_status_field(self.pid(), "VmRSS:") * 1024
    }

    /// Threads of the process.
    pub fn threads(&self) -> u64 {
        proc_status_field(self.pid(), "Threads:")
    }

    /// Open file descriptors of the process.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("/proc/<pid>/fd is readable")
            .count()
    }

    /// `GET path` over a fresh connection.
    pub async fn get(&self, path: &str) -> HttpAnswer {
        http_get(self.addr(), path).await
    }

    /// `/health` as JSON.
    pub async fn health(&self) -> Value {
        let answer = self.get("/health").await;
        assert_eq!(answer.status, 200, "/health: {answer:?}");
        answer.json()
    }

    /// Open WebSocket connections, as `/health` counts them.
    pub async fn connections(&self) -> u64 {
        self.health().await["connections"]
            .as_u64()
            .expect("/health has `connections`")
    }

    /// Waits until `/health` counts exactly `n` connections (closed sessions release their
    /// slot asynchronously).
    pub async fn wait_for_connections(&self, n: u64) {
        let result = tokio::time::timeout(WAIT, async {
            loop {
                if self.connections().await == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if result.is_err() {
            panic!(
                "the server still counts {} connections, expected {n}",
                self.connections().await
            );
        }
    }

    /// The value of one Prometheus sample, e.g.
    /// `websocket_disconnections_by_reason_total{reason="slow_consumer"}`; 0 when absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let answer = self.get("/metrics/prometheus").await;
        assert_eq!(answer.status, 200);
        String::from_utf8_lossy(&answer.body)
            .lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == sample).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }

    /// The `ws://` URL of `/ws` with an optional query.
    pub fn url(&self, query: &str) -> String {
        if query.is_empty() {
            self.inner.ws_url()
        } else {
            format!("{}?{query}", self.inner.ws_url())
        }
    }

    /// An upgrade request for `/ws` with an optional query (`token=…`).
    pub fn request(&self, query: &str) -> Request {
        self.url(query)
            .into_client_request()
            .expect("a valid request")
    }
}

/// A numeric field of `/proc/PID/status` (`VmRSS:` is in KiB).
pub fn proc_status_field(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// A WebSocket client over a plain TCP stream.
pub type Ws = WebSocketStream<TcpStream>;

/// `127.0.A.B`: loopback addresses the tests connect from, so per-IP caps can be exercised.
pub fn loopback(a: u8, b: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, a, b))
}

/// A TCP connection to `to` from `from` (port chosen by the kernel); with `recv_buffer`, the
/// socket's receive buffer is shrunk before connecting, so the advertised window stays small.
pub async fn tcp_from(from: IpAddr, to: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
    }
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind a loopback address");
    tokio::time::timeout(WAIT, socket.connect(to))
        .await
        .expect("TCP connect in time")
        .expect("TCP connect")
}

/// An upgrade the server refused.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub retry_after: Option<String>,
    /// The JSON body's `error` field.
    pub error: Option<String>,
}

/// Upgrades `request` over a connection from `from`. `Err` holds a refusal's status.
pub async fn try_open(
    from: IpAddr,
    to: SocketAddr,
    request: Request,
    recv_buffer: Option<u32>,
) -> Result<(Ws, Response), Refused> {
    let stream = tcp_from(from, to, recv_buffer).await;
    let mut config = WebSocketConfig::default();
    // The server may send messages up to its outbound limits; never refuse them here.
    config.max_message_size = None;
    config.max_frame_size = None;
    let result = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)),
    )
    .await
    .expect("the upgrade is answered in time");
    match result {
        Ok(ok) => Ok(ok),
        Err(WsError::Http(response)) => {
            let error = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<Value>(b).ok())
                .and_then(|v| v["error"].as_str().map(str::to_owned));
            Err(Refused {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                error,
            })
        }
        Err(other) => panic!("the upgrade failed without an HTTP answer: {other}"),
    }
}

/// Opens a WebSocket from `from` and reads its `welcome`.
pub async fn open(from: IpAddr, to: SocketAddr, request: Request) -> Ws {
    let (mut ws, _) = try_open(from, to, request, None)
        .await
        .unwrap_or_else(|r| panic!("upgrade refused: {r:?}"));
    let welcome = recv_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    ws
}

pub async fn send_text(ws: &mut Ws, text: &str) {
    tokio::time::timeout(WAIT, ws.send(Message::text(text)))
        .await
        .expect("sent in time")
        .expect("the connection is open");
}

/// What a client read next.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame, as JSON.
    Frame(Value),
    /// A close frame with this code (`None`: a close frame without a code).
    Closed(Option<u16>),
    /// The TCP connection ended without a close frame (EOF or reset).
    Dropped(String),
}

/// The next text frame or the end of the connection, skipping pings and pongs.
pub async fn next_incoming(ws: &mut Ws) -> Incoming {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return Incoming::Frame(serde_json::from_str(&text).expect("frames are JSON"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Incoming::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(Message::Binary(b))) => panic!("unexpected binary frame: {b:?}"),
                Some(Ok(_)) => {}
                Some(Err(err)) => return Incoming::Dropped(err.to_string()),
                None => return Incoming::Dropped("end of stream".into()),
            }
        }
    })
    .await
    .expect("a frame or the end of the connection in time")
}

/// The next text frame, as JSON; panics on a close.
pub async fn recv_json(ws: &mut Ws) -> Value {
    match next_incoming(ws).await {
        Incoming::Frame(v) => v,
        other => panic!("expected a frame, got {other:?}"),
    }
}

/// Reads until the connection ends; returns the close code (`None`: no close frame).
pub async fn close_code(ws: &mut Ws) -> Result<u16, String> {
    // Bounded: a connection that is being closed has at most its outbound queue left.
    for _ in 0..100_000 {
        match next_incoming(ws).await {
            Incoming::Frame(_) => {}
            Incoming::Closed(Some(code)) => return Ok(code),
            Incoming::Closed(None) => return Err("a close frame without a code".into()),
            Incoming::Dropped(why) => return Err(format!("dropped without a close frame: {why}")),
        }
    }
    Err("still open after 100000 frames".into())
}

/// Subscribes to `channel` and waits for `subscribed`.
pub async fn subscribe(ws: &mut Ws, channel: &str) -> Value {
    send_text(
        ws,
        &serde_json::json!({"type": "subscribe", "channel": channel, "id": format!("sub-{channel}")})
            .to_string(),
    )
    .await;
    let answer = recv_json(ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    answer
}

/// Sends a `ping` and waits for its `pong`: proof that the session still reads and answers.
pub async fn ping(ws: &mut Ws, id: &str) {
    send_text(ws, &format!(r#"{{"type":"ping","id":"{id}"}}"#)).await;
    for _ in 0..10_000 {
        let frame = recv_json(ws).await;
        if frame["type"] == "pong" && frame["id"] == id {
            return;
        }
    }
    panic!("no pong for {id}");
}

//! Real servers on 127.0.0.1:0, a small HTTP client, a WebSocket client, and the built binary
//! run as a child process.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use switchboard_server::{Server, ServerConfig};
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The longest any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub const API_KEY: &str = "test-api-key-0123456789";

/// An HS256 token for user `sub`, signed with `secret`, valid for ten minutes.
pub fn user_token(secret: &str, sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({"sub": sub, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// A config for tests: a free port, a short drain window.
pub fn test_config() -> ServerConfig {
    ServerConfig::default()
        .port(0)
        .drain_window(Duration::from_millis(50))
}

pub async fn start(config: ServerConfig) -> Server {
    Server::bind(config).await.expect("the server starts")
}

/// A server with the HTTP API enabled.
pub async fn start_with_api() -> Server {
    start(test_config().publish_api_key(Some(API_KEY))).await
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends one request over a fresh connection.
pub async fn request(addr: SocketAddr, request: http::Request<Full<Bytes>>) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    send(stream, request).await
}

/// Sends one request over `io` (plain or TLS).
pub async fn send<I>(io: I, mut request: http::Request<Full<Bytes>>) -> Answer
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(connection);
    request
        .headers_mut()
        .entry(http::header::HOST)
        .or_insert(http::HeaderValue::from_static("localhost"));
    let response = tokio::time::timeout(WAIT, sender.send_request(request))
        .await
        .expect("an answer in time")
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(
        addr,
        http::Request::get(path).body(Full::default()).unwrap(),
    )
    .await
}

/// `GET path` with the test API key.
pub async fn api_get(addr: SocketAddr, path: &str) -> Answer {
    request(
        addr,
        http::Request::get(path)
            .header("authorization", format!("Bearer {API_KEY}"))
            .body(Full::default())
            .unwrap(),
    )
    .await
}

/// `POST /api/publish` with the test API key.
pub async fn publish(addr: SocketAddr, body: &str) -> Answer {
    api_post(addr, "/api/publish", body).await
}

/// A JSON `POST` to an API route with the test API key.
pub async fn api_post(addr: SocketAddr, path: &str, body: &str) -> Answer {
    request(
        addr,
        http::Request::post(path)
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap(),
    )
    .await
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket and reads its `welcome`.
pub async fn connect(url: &str) -> (Ws, Value) {
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connected in time")
        .expect("the upgrade succeeds");
    let welcome = next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
    (ws, welcome)
}

pub async fn send_json(ws: &mut Ws, frame: &Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

/// The next text frame, as JSON.
pub async fn next_json(ws: &mut Ws) -> Value {
    serde_json::from_str(&next_text(ws).await).unwrap()
}

/// The next text frame, exactly as sent.
pub async fn next_text(ws: &mut Ws) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next frame whose `type` is `kind`, skipping others.
pub async fn next_of_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next_json(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Subscribes and waits for `subscribed`.
pub async fn subscribe(ws: &mut Ws, channel: &str) -> Value {
    send_json(
        ws,
        &serde_json::json!({"type": "subscribe", "channel": channel, "id": format!("s-{channel}")}),
    )
    .await;
    next_of_type(ws, "subscribed").await
}

/// Reads until the close frame and returns its code.
pub async fn close_code(ws: &mut Ws) -> u16 {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("the connection failed before a close frame: {err}"),
            None => panic!("the connection ended without a close frame"),
        }
    }
}

/// The `switchboard` binary running as a child process, killed on drop.
pub struct Binary {
    pub child: Child,
    pub lines: tokio::io::Lines<BufReader<ChildStdout>>,
    /// Every line read so far.
    pub log: Vec<String>,
}

impl Binary {
    /// Starts the binary with exactly `env` as its environment (plus `PATH`).
    pub fn spawn(env: &[(&str, &str)], args: &[&str]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the binary starts");
        let stdout = child.stdout.take().unwrap();
        Self {
            child,
            lines: BufReader::new(stdout).lines(),
            log: Vec::new(),
        }
    }

    /// Reads log lines until one contains `needle`, and returns it.
    pub async fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no log line with {needle:?} in time; log so far: {:#?}",
                        self.log
                    )
                })
                .unwrap()
                .unwrap_or_else(|| {
                    panic!(
                        "the binary exited before logging {needle:?}; log: {:#?}",
                        self.log
                    )
                });
            self.log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits for the "listening on" line and returns the address.
    pub async fn listening(&mut self) -> SocketAddr {
        let line = self.wait_for_line("listening on ").await;
        self.listening_addr(&line)
    }

    /// The address in a "listening on" line.
    pub fn listening_addr(&self, line: &str) -> SocketAddr {
        let start = line.find("://").expect("a URL") + 3;
        let rest = &line[start..];
        let end = rest.find('/').expect("a path");
        rest[..end].parse().expect("an address")
    }

    /// Waits for the process to exit, returns its code, and everything it wrote.
    pub async fn exit(mut self) -> (Option<i32>, String) {
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("the binary exits in time")
            .unwrap();
        let mut output = self.log.join("\n");
        while let Ok(Some(line)) = self.lines.next_line().await {
            output.push('\n');
            output.push_str(&line);
        }
        if let Some(mut stderr) = self.child.stderr.take() {
            let mut text = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
                .await
                .unwrap();
            output.push('\n');
            output.push_str(&text);
        }
        (status.code(), output)
    }

    /// Sends SIGTERM.
    #[cfg(unix)]
    pub fn terminate(&self) {
        let pid = self.child.id().expect("still running");
        let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    }
}

/// Writes a self-signed certificate for `localhost` and its key into `dir`; returns the
/// certificate's DER and the two paths.
pub fn write_certificate(dir: &Path) -> (Vec<u8>, std::path::PathBuf, std::path::PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert.der().to_vec(), cert_path, key_path)
}

//! A real server on 127.0.0.1:0 and a real WebSocket client, for the transport's tests.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_transport::{Authenticator, TokenVerifier, Transport, TransportConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &str = "test-secret-which-is-long-enough";
pub const WAIT: Duration = Duration::from_secs(5);

pub struct Server {
    pub addr: SocketAddr,
    pub transport: Transport<MemoryBackplane>,
}

impl Server {
    pub async fn start(config: TransportConfig, auth: Authenticator) -> Self {
        Self::on(
            MemoryBackplane::new(MemoryBackplaneConfig::default()),
            config,
            auth,
        )
        .await
    }

    pub async fn open() -> Self {
        Self::start(TransportConfig::default(), Authenticator::open()).await
    }

    pub async fn on(
        backplane: MemoryBackplane,
        config: TransportConfig,
        auth: Authenticator,
    ) -> Self {
        Self::serving(Transport::new(Hub::new(backplane), auth, config)).await
    }

    /// Serves `transport` (built by the test, with its own hub, authorizer or metrics) on
    /// 127.0.0.1.
    pub async fn serving(transport: Transport<MemoryBackplane>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = transport.clone();
        tokio::spawn(async move { serving.serve(listener).await });
        Self { addr, transport }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Connects and returns the client with its `welcome` frame already read.
    pub async fn connect(&self) -> Client {
        Client::connect(&self.url()).await
    }
}

pub fn jwt_verifier() -> Authenticator {
    Authenticator::jwt(TokenVerifier::hs256(SECRET).unwrap())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token signed with [`SECRET`].
pub fn token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub welcome: Value,
}

/// What an upgrade attempt answered.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        Self::try_connect(url.into_client_request().unwrap())
            .await
            .unwrap_or_else(|r| panic!("upgrade refused: {r:?}"))
    }

    pub async fn try_connect(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<Self, Refusal> {
        match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("handshake within 5 s")
        {
            Ok((ws, _)) => {
                let mut client = Self {
                    ws,
                    welcome: Value::Null,
                };
                client.welcome = client.recv().await;
                assert_eq!(client.welcome["type"], "welcome");
                Ok(client)
            }
            Err(WsError::Http(response)) => Err(Refusal {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
                body: response
                    .body()
                    .as_deref()
                    .map_or(Value::Null, |b| serde_json::from_slice(b).unwrap()),
            }),
            Err(other) => panic!("connect failed: {other}"),
        }
    }

    pub async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next text frame as JSON (control frames are skipped).
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame within 5 s")
                .expect("connection open")
                .expect("no error");
            match message {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Close(c) => panic!("closed instead: {c:?}"),
                _ => {}
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn recv_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// Reads until the server closes; returns the close code (skipping other frames).
    pub async fn closed_with(&mut self) -> u16 {
        self.closed_within(WAIT).await
    }

    pub async fn closed_within(&mut self, wait: Duration) -> u16 {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next())
                .await
                .expect("closed in time");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
                Some(Ok(Message::Close(None))) => return 1005,
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("error before a close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }

    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(&format!(r#"{{"type":"subscribe","channel":"{channel}"}}"#))
            .await;
        self.recv_of("subscribed").await
    }
}

/// Waits for the hub to report a disconnect.
pub async fn disconnected(
    events: &mut tokio::sync::broadcast::Receiver<switchboard_hub::HubEvent>,
) {
    loop {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("a disconnect within 5 s")
            .expect("event stream open");
        if matches!(event, switchboard_hub::HubEvent::Disconnected { .. }) {
            return;
        }
    }
}

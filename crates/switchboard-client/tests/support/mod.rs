//! Real servers on 127.0.0.1 for the client's tests: the switchboard transport (restartable
//! on the same port, over a shared memory backplane) and a scripted WebSocket server for
//! behaviours a correct server never shows (lost acks, gaps).
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_client::{
    Client, ClientBuilder, ConnectionState, Heartbeat, RECONNECT_BACKOFF, SubscriptionEvent,
};
use switchboard_hub::{Hub, HubEvent, ServerMessage};
use switchboard_protocol::{ChannelName, EventType, Payload};
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(10);

/// The HS256 secret of [`Server::jwt`] and the tokens below.
pub const SECRET: &str = "test-secret-which-is-long-enough";

/// `claims` signed with [`SECRET`], expiring in an hour unless they say otherwise.
pub fn signed(mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        claims["exp"] = exp.into();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A token for user `sub`, expiring in an hour.
pub fn user_token(sub: &str) -> String {
    signed(serde_json::json!({ "sub": sub }))
}

/// The authenticator of [`Server::jwt`]: HS256 tokens signed with [`SECRET`].
pub fn jwt_auth() -> Authenticator {
    Authenticator::jwt(switchboard_transport::TokenVerifier::hs256(SECRET).unwrap())
}

/// Binds `addr` (port 0 for a free one), allowing the port of a server that just stopped.
pub fn bind(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(1024).unwrap()
}

/// A free port on 127.0.0.1 with nothing listening on it (yet).
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

pub fn transport_config() -> TransportConfig {
    TransportConfig::default().drain_window(Duration::from_millis(20))
}

/// A switchboard server whose history lives in a memory backplane store that outlives
/// restarts.
pub struct Server {
    pub addr: SocketAddr,
    pub memory: MemoryBackplane,
    pub hub: Hub<MemoryBackplane>,
    pub transport: Transport<MemoryBackplane>,
    auth: Authenticator,
    config: TransportConfig,
}

impl Server {
    pub async fn open() -> Self {
        Self::with(
            MemoryBackplaneConfig::default(),
            Authenticator::open(),
            transport_config(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
    }

    /// A server that takes HS256 tokens signed with [`SECRET`].
    pub async fn jwt() -> Self {
        Self::with(
            MemoryBackplaneConfig::default(),
            jwt_auth(),
            transport_config(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
    }

    pub async fn with(
        backplane: MemoryBackplaneConfig,
        auth: Authenticator,
        config: TransportConfig,
        addr: SocketAddr,
    ) -> Self {
        let memory = MemoryBackplane::new(backplane);
        Self::start(memory, auth, config, addr)
    }

    fn start(
        memory: MemoryBackplane,
        auth: Authenticator,
        config: TransportConfig,
        addr: SocketAddr,
    ) -> Self {
        let hub = Hub::new(memory.new_instance());
        let transport = Transport::new(hub.clone(), auth.clone(), config.clone());
        let listener = bind(addr);
        let addr = listener.local_addr().unwrap();
        let serving = transport.clone();
        tokio::spawn(async move { serving.serve(listener).await });
        Self {
            addr,
            memory,
            hub,
            transport,
            auth,
            config,
        }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Closes every connection (1001) and stops listening; the hub stays usable, so
    /// server-side code can keep publishing while no server accepts clients.
    pub async fn stop(&self) {
        assert!(
            self.transport.shutdown(WAIT).await,
            "sessions ended in time"
        );
    }

    /// A new hub and transport over the same store, on the same port.
    pub fn restart(&self) -> Self {
        Self::start(
            self.memory.clone(),
            self.auth.clone(),
            self.config.clone(),
            self.addr,
        )
    }

    /// Publishes `{"n": n}` as `tick` from server-side code; returns its offset.
    pub async fn publish(&self, channel: &str, n: u64) -> u64 {
        let message = ServerMessage::new(
            ChannelName::new(channel).unwrap(),
            EventType::new("tick").unwrap(),
            Payload::from_value(&serde_json::json!({ "n": n })),
        );
        self.hub.publish(message).await.unwrap().offset
    }
}

/// A client builder with test-sized timings: quick reconnects, a fast heartbeat.
pub fn fast_client(url: &str) -> ClientBuilder {
    Client::builder(url)
        .connect_timeout(Duration::from_secs(2))
        .backoff(
            RECONNECT_BACKOFF
                .with_base(Duration::from_millis(50))
                .with_max(Duration::from_millis(200)),
        )
        .heartbeat(Heartbeat::default().with_interval(Duration::from_millis(200)))
        .seed(1)
}

/// The next event of a subscription, within [`WAIT`].
pub async fn next_event<S: futures_util::Stream<Item = SubscriptionEvent> + Unpin>(
    subscription: &mut S,
) -> SubscriptionEvent {
    tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("an event in time")
        .expect("the subscription is open")
}

/// The next message's offset, failing on any other event.
pub async fn next_offset<S: futures_util::Stream<Item = SubscriptionEvent> + Unpin>(
    subscription: &mut S,
) -> u64 {
    match next_event(subscription).await {
        SubscriptionEvent::Message(m) => m.offset,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// Waits (within [`WAIT`]) for a state matching `predicate`; returns it.
pub async fn wait_state(
    client: &Client,
    predicate: impl Fn(&ConnectionState) -> bool,
) -> ConnectionState {
    let mut state = client.state();
    tokio::time::timeout(WAIT, state.wait_for(|s| predicate(s)))
        .await
        .expect("the state in time")
        .expect("the client task is alive")
        .clone()
}

/// Waits for the hub to report `count` publishes; returns their `(id, offset)`s in order.
pub async fn published(
    events: &mut tokio::sync::broadcast::Receiver<HubEvent>,
    count: usize,
) -> Vec<(String, u64)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let event = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("a publish in time")
            .expect("hub events open");
        if let HubEvent::Published { id, offset, .. } = event {
            seen.push((id, offset));
        }
    }
    seen
}

/// A scripted WebSocket server: each accepted connection gets a `welcome` and is handed
/// to the test, which plays the server's part frame by frame.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    connections: mpsc::UnboundedReceiver<ScriptedConnection>,
}

impl ScriptedServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, connections) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
                    continue;
                };
                n += 1;
                let mut connection = ScriptedConnection { ws };
                connection
                    .send(serde_json::json!({
                        "type": "welcome", "connectionId": format!("c-{n}"), "userId": null,
                        "heartbeatMs": 30000, "timestamp": 0
                    }))
                    .await;
                if tx.send(connection).is_err() {
                    return;
                }
            }
        });
        Self { addr, connections }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// The next connection, within [`WAIT`].
    pub async fn accept(&mut self) -> ScriptedConnection {
        tokio::time::timeout(WAIT, self.connections.recv())
            .await
            .expect("a connection in time")
            .expect("server running")
    }
}

pub struct ScriptedConnection {
    ws: WebSocketStream<TcpStream>,
}

impl ScriptedConnection {
    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(WsMessage::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// The next text frame as JSON, within [`WAIT`].
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a frame in time")
                .expect("connection open")
                .expect("no error");
            if let WsMessage::Text(text) = message {
                return serde_json::from_str(&text).unwrap();
            }
        }
    }

    /// The next frame of type `kind`, skipping others (heartbeat pings).
    pub async fn recv_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next frame that is not a heartbeat ping.
    pub async fn recv_app(&mut self) -> Value {
        loop {
            let frame = self.recv().await;
            if frame["type"] != "ping" {
                return frame;
            }
        }
    }
}

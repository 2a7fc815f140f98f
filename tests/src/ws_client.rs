//! A raw WebSocket client that speaks the protocol frame by frame, for tests that need to
//! see exactly what the server sends.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::WAIT;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the connection yielded.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// A text frame, as JSON.
    Frame(Value),
    /// A close frame, with its code when it had one.
    Closed(Option<u16>),
    /// The connection ended without a close frame (reset, end of stream).
    Ended(String),
}

/// A raw protocol client: one WebSocket, frames as JSON.
pub struct WsClient {
    ws: Ws,
    welcome: Value,
    /// Frames read while looking for a specific one, handed out first by `recv`.
    pending: VecDeque<Value>,
    next_request: u64,
}

impl fmt::Debug for WsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsClient")
            .field("connection_id", &self.welcome["connectionId"])
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl WsClient {
    /// Connects to `url` and reads the `welcome`.
    ///
    /// # Panics
    /// When that fails or takes longer than [`WAIT`].
    pub async fn connect(url: &str) -> Self {
        match Self::try_connect(url, WAIT).await {
            Ok(client) => client,
            Err(e) => panic!("cannot connect to {url}: {e}"),
        }
    }

    /// Connects to `url` and reads the `welcome`, within `within`.
    ///
    /// # Errors
    /// Why it failed: refused, upgrade rejected, no `welcome`, too slow.
    pub async fn try_connect(url: &str, within: Duration) -> Result<Self, String> {
        let attempt = async {
            let (ws, _) = tokio_tungstenite::connect_async(url)
                .await
                .map_err(|e| e.to_string())?;
            let mut client = Self {
                ws,
                welcome: Value::Null,
                pending: VecDeque::new(),
                next_request: 0,
            };
            match client.read().await {
                WsEvent::Frame(frame) if frame["type"] == "welcome" => {
                    client.welcome = frame;
                    Ok(client)
                }
                other => Err(format!("expected a welcome, got {other:?}")),
            }
        };
        tokio::time::timeout(within, attempt)
            .await
            .map_err(|_| format!("not connected within {within:?}"))?
    }

    /// The `welcome` frame.
    #[must_use]
    pub fn welcome(&self) -> &Value {
        &self.welcome
    }

    /// Sends one frame.
    ///
    /// # Panics
    /// When the connection is closed.
    pub async fn send(&mut self, frame: &Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap_or_else(|e| panic!("cannot send {frame}: {e}"));
    }

    /// Sends one frame; `false` when the connection is closed.
    pub async fn try_send(&mut self, frame: &Value) -> bool {
        self.ws.send(Message::text(frame.to_string())).await.is_ok()
    }

    /// The next event, within `within`; `None` on timeout. Frames buffered by
    /// [`WsClient::request`] come first.
    pub async fn try_recv(&mut self, within: Duration) -> Option<WsEvent> {
        if let Some(frame) = self.pending.pop_front() {
            return Some(WsEvent::Frame(frame));
        }
        tokio::time::timeout(within, self.read()).await.ok()
    }

    /// The next event, without a time limit: for use in a `select!` with something that
    /// ends the wait.
    ///
    /// # Cancel safety
    /// Cancel safe: a frame is either returned or still unread.
    pub async fn next_event(&mut self) -> WsEvent {
        if let Some(frame) = self.pending.pop_front() {
            return WsEvent::Frame(frame);
        }
        self.read().await
    }

    /// The next event.
    ///
    /// # Panics
    /// When nothing arrives within [`WAIT`].
    pub async fn recv(&mut self) -> WsEvent {
        self.try_recv(WAIT)
            .await
            .unwrap_or_else(|| panic!("no frame within {WAIT:?}"))
    }

    /// The next text frame.
    ///
    /// # Panics
    /// When the connection closes or nothing arrives within [`WAIT`].
    pub async fn next_frame(&mut self) -> Value {
        match self.recv().await {
            WsEvent::Frame(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame whose `type` is `kind`; frames of other types are buffered for
    /// [`WsClient::recv`], not lost.
    ///
    /// # Panics
    /// When the connection closes or no such frame arrives within [`WAIT`].
    pub async fn next_of_type(&mut self, kind: &str) -> Value {
        self.next_matching(|f| f["type"] == kind).await
    }

    /// The close code the server sends, skipping frames.
    ///
    /// # Panics
    /// When the connection ends otherwise or nothing arrives within [`WAIT`].
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.recv().await {
                WsEvent::Frame(_) => {}
                WsEvent::Closed(code) => return code,
                WsEvent::Ended(e) => panic!("the connection ended without a close frame: {e}"),
            }
        }
    }

    /// Sends `frame` with a fresh `id` and returns the first answer carrying that id;
    /// other frames read meanwhile are buffered for [`WsClient::recv`].
    ///
    /// # Panics
    /// When no answer arrives within [`WAIT`].
    pub async fn request(&mut self, mut frame: Value) -> Value {
        self.next_request += 1;
        let id = format!("r{}", self.next_request);
        frame["id"] = Value::String(id.clone());
        self.send(&frame).await;
        self.next_matching_unbuffered(|f| f["id"] == id.as_str() && is_answer(f))
            .await
    }

    /// Subscribes to `channel` (recovering after `since`, an offset and an epoch, when
    /// given) and returns the `subscribed` answer.
    ///
    /// # Panics
    /// When the answer is not `subscribed` or does not come within [`WAIT`].
    pub async fn subscribe(&mut self, channel: &str, since: Option<(u64, &str)>) -> Value {
        let mut frame = json!({"type": "subscribe", "channel": channel});
        if let Some((offset, epoch)) = since {
            frame["since"] = json!({"offset": offset, "epoch": epoch});
        }
        let answer = self.request(frame).await;
        assert_eq!(
            answer["type"], "subscribed",
            "subscribe to {channel}: {answer}"
        );
        answer
    }

    /// Publishes an application event with `id`, without waiting for the `ack`.
    ///
    /// # Panics
    /// When the connection is closed.
    pub async fn publish(&mut self, channel: &str, event: &str, payload: &Value, id: &str) {
        self.send(&json!({"type": event, "channel": channel, "payload": payload, "id": id}))
            .await;
    }

    /// Publishes an application event with `id` and returns the answer to it (`ack` or
    /// `error`); other frames are buffered.
    ///
    /// # Panics
    /// When no answer comes within [`WAIT`].
    pub async fn publish_acked(
        &mut self,
        channel: &str,
        event: &str,
        payload: &Value,
        id: &str,
    ) -> Value {
        self.publish(channel, event, payload, id).await;
        self.next_matching_unbuffered(|f| f["id"] == id && is_answer(f))
            .await
    }

    /// Sends a close frame and waits (briefly) for the server's.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    async fn next_matching(&mut self, accept: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&accept) {
            return self.pending.remove(i).expect("index is in range");
        }
        self.next_matching_unbuffered(accept).await
    }

    /// Reads until a frame `accept`s, buffering the others.
    async fn next_matching_unbuffered(&mut self, accept: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.read())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no matching frame within {WAIT:?}; buffered: {:?}",
                        self.pending
                    )
                });
            match event {
                WsEvent::Frame(frame) if accept(&frame) => return frame,
                WsEvent::Frame(frame) => self.pending.push_back(frame),
                other => panic!(
                    "the connection ended while waiting: {other:?}; buffered: {:?}",
                    self.pending
                ),
            }
        }
    }

    /// Reads the socket until a text frame, a close or the end.
    async fn read(&mut self) -> WsEvent {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return WsEvent::Frame(
                        serde_json::from_str(&text).unwrap_or_else(|e| {
                            panic!("the server sent invalid JSON ({e}): {text}")
                        }),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return WsEvent::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return WsEvent::Ended(e.to_string()),
                None => return WsEvent::Ended("end of stream".into()),
            }
        }
    }
}

/// Whether `frame` answers a request (rather than being a message that carries an id).
fn is_answer(frame: &Value) -> bool {
    matches!(
        frame["type"].as_str(),
        Some("subscribed" | "unsubscribed" | "ack" | "error" | "pong" | "presence")
    )
}

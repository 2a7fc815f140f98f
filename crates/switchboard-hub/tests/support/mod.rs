//! A recording outbox and helpers shared by the hub's tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchboard_backplane::{Backplane, MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Connection, Hub, Identity, Outbox};
use switchboard_protocol::{ClientFrame, CloseCode, EncodedFrame, Priority};
use tokio::sync::mpsc;

/// What the hub handed a connection.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    Frame(Value, Priority),
    Close(CloseCode),
}

pub struct Recorder(mpsc::UnboundedSender<Out>);

impl Outbox for Recorder {
    fn push(&self, frame: &EncodedFrame, priority: Priority) {
        let value = serde_json::from_slice(frame.as_bytes()).expect("hub frames are JSON");
        let _ = self.0.send(Out::Frame(value, priority));
    }
    fn close(&self, code: CloseCode) {
        let _ = self.0.send(Out::Close(code));
    }
}

/// A connection plus the receiving end of its outbox.
pub struct Client<B: Backplane = MemoryBackplane> {
    pub conn: Connection<B>,
    pub rx: mpsc::UnboundedReceiver<Out>,
}

impl<B: Backplane> Client<B> {
    pub fn connect(hub: &Hub<B>, identity: Identity) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            conn: hub.connect(identity, Arc::new(Recorder(tx))),
            rx,
        }
    }

    /// A connection of the client instance `client` (the id it sends on every connection).
    pub fn connect_as(hub: &Hub<B>, identity: Identity, client: &str) -> Self {
        let mut connected = Self::connect(hub, identity);
        connected
            .conn
            .set_client_id(switchboard_protocol::ClientId::new(client).unwrap());
        connected
    }

    pub async fn send(&mut self, json: &str) {
        let frame = ClientFrame::decode(json).expect("test frames are valid");
        self.conn.handle(frame).await;
    }

    /// The next frame, failing the test if none arrives within 5 s.
    pub async fn next(&mut self) -> Value {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await {
            Ok(Some(Out::Frame(v, _))) => v,
            Ok(Some(Out::Close(code))) => panic!("expected a frame, got close {code}"),
            Ok(None) => panic!("outbox closed"),
            Err(_) => panic!("no frame within 5 s"),
        }
    }

    /// The next frame with its priority.
    pub async fn next_with_priority(&mut self) -> (Value, Priority) {
        match tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await {
            Ok(Some(Out::Frame(v, p))) => (v, p),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame of the given type, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let v = self.next().await;
            if v["type"] == kind {
                return v;
            }
        }
    }

    /// The next close request.
    pub async fn next_close(&mut self) -> CloseCode {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.rx.recv()).await {
                Ok(Some(Out::Close(code))) => return code,
                Ok(Some(Out::Frame(..))) => {}
                other => panic!("expected a close, got {other:?}"),
            }
        }
    }

    /// Whether nothing is queued right now (after letting other tasks run).
    pub async fn is_quiet(&mut self) -> bool {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
        self.rx.try_recv().is_err()
    }

    /// Subscribes and returns the `subscribed` answer.
    pub async fn subscribe(&mut self, channel: &str) -> Value {
        self.send(&format!(r#"{{"type":"subscribe","channel":"{channel}"}}"#))
            .await;
        let v = self.next().await;
        assert_eq!(v["type"], "subscribed", "{v}");
        v
    }
}

pub fn memory() -> MemoryBackplane {
    MemoryBackplane::new(MemoryBackplaneConfig::default())
}

pub fn hub() -> Hub<MemoryBackplane> {
    Hub::new(memory())
}

//! Run with `cargo run --example chat`.
//!
//! A chat room on the reference server, started in-process on a free port: Alice and Bob
//! connect over WebSocket, join `chat:lobby`, and talk. Each sender gets an `ack` (the
//! delivery receipt, with the message's offset in the channel); each message reaches every
//! subscriber, the sender included, built and stamped by the server.
#![allow(clippy::print_stdout, reason = "an example prints what happens")]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchboard_server::{Server, ServerConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Connects, prints the `welcome`, subscribes to `channel` and waits for `subscribed`.
async fn join(url: &str, name: &str, channel: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let welcome = next(&mut ws).await;
    println!("{name}: connected as {}", welcome["connectionId"]);
    send(
        &mut ws,
        json!({"type": "subscribe", "channel": channel, "id": "s1"}),
    )
    .await;
    let subscribed = next(&mut ws).await;
    println!(
        "{name}: subscribed to {channel} at offset {}",
        subscribed["offset"]
    );
    ws
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

/// The next text frame.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("the connection is open")
            .expect("a valid frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).expect("JSON");
        }
    }
}

/// Reads frames until one of `type` `kind`.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

async fn say(ws: &mut Ws, name: &str, id: &str, text: &str) {
    send(
        ws,
        json!({
            "type": "chat.message",
            "channel": "chat:lobby",
            "id": id,
            "payload": {"name": name, "text": text}
        }),
    )
    .await;
    // The sender gets the acknowledgement and, as a subscriber, the message itself.
    let (mut acked, mut echoed) = (false, false);
    while !(acked && echoed) {
        let frame = next(ws).await;
        if frame["type"] == "ack" {
            println!("{name}: \"{text}\" delivered as #{}", frame["offset"]);
            acked = true;
        } else if frame["type"] == "chat.message" && frame["id"] == id {
            echoed = true;
        }
    }
}

/// Prints the next chat message `ws` receives, and returns it.
async fn hear(ws: &mut Ws, name: &str) -> Value {
    let message = next_of(ws, "chat.message").await;
    println!(
        "{name} <- {}: {} (#{}, from connection {})",
        message["payload"]["name"].as_str().unwrap_or("?"),
        message["payload"]["text"],
        message["offset"],
        message["from"]["connectionId"]
    );
    message
}

#[tokio::main]
async fn main() {
    let server = Server::bind(ServerConfig::default().port(0))
        .await
        .expect("the server starts");
    println!(
        "server: {} (demo page at {}/)",
        server.ws_url(),
        server.base_url()
    );

    let mut alice = join(&server.ws_url(), "alice", "chat:lobby").await;
    let mut bob = join(&server.ws_url(), "bob", "chat:lobby").await;

    say(&mut alice, "alice", "a1", "hi Bob!").await;
    let first = hear(&mut bob, "bob").await;
    say(&mut bob, "bob", "b1", "hello Alice").await;
    let second = hear(&mut alice, "alice").await;

    // What this example shows, checked (CI runs every example).
    assert_eq!(
        first["payload"],
        json!({"name": "alice", "text": "hi Bob!"})
    );
    assert_eq!(
        second["payload"],
        json!({"name": "bob", "text": "hello Alice"})
    );
    assert_eq!(
        (first["offset"].as_u64(), second["offset"].as_u64()),
        (Some(1), Some(2))
    );

    // Shutdown closes both connections with 1001 ("going away": reconnect elsewhere).
    server.shutdown().await;
    println!("server: drained");
}

//! Run with `cargo run --example presence`.
//!
//! Who is here: three users join `doc:42` and announce their presence (status, the feature
//! they use, free-form `meta`). Everyone sees joins, updates and leaves as they happen; the
//! member list is also available on request over the socket and, for backends, over HTTP
//! (`GET /api/channels/{channel}/presence` with the `PUBLISH_API_KEY`).
#![allow(clippy::print_stdout, reason = "an example prints what happens")]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchboard_server::{Server, ServerConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const API_KEY: &str = "example-api-key";

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("send");
}

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

async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let frame = next(ws).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

/// Connects, subscribes to `doc:42` and announces presence.
async fn arrive(url: &str, name: &str, feature: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    next_of(&mut ws, "welcome").await;
    send(&mut ws, json!({"type": "subscribe", "channel": "doc:42"})).await;
    next_of(&mut ws, "subscribed").await;
    send(
        &mut ws,
        json!({
            "type": "presence-update",
            "channel": "doc:42",
            "status": "online",
            "currentFeature": feature,
            "meta": {"name": name}
        }),
    )
    .await;
    ws
}

/// Prints the next presence change `ws` sees, and returns it as (name, action, status).
async fn watch(ws: &mut Ws, who: &str) -> (String, String, String) {
    let update = next_of(ws, "presence-update").await;
    let member = &update["member"];
    println!(
        "{who} sees: {} {} (status {}, on {})",
        member["meta"]["name"].as_str().unwrap_or("?"),
        update["action"],
        member["status"],
        member["currentFeature"]
    );
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    (
        text(&member["meta"]["name"]),
        text(&update["action"]),
        text(&member["status"]),
    )
}

/// `GET path` with the API key, as a backend would.
async fn api_get(server: &Server, path: &str) -> Value {
    let mut stream = TcpStream::connect(server.local_addr())
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {API_KEY}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).expect("JSON")
}

#[tokio::main]
async fn main() {
    let server = Server::bind(
        ServerConfig::default()
            .port(0)
            .publish_api_key(Some(API_KEY)),
    )
    .await
    .expect("the server starts");
    let url = server.ws_url();

    let mut alice = arrive(&url, "Alice", "editor").await;
    watch(&mut alice, "Alice").await; // her own join
    let mut bob = arrive(&url, "Bob", "comments").await;
    watch(&mut alice, "Alice").await;
    watch(&mut bob, "Bob").await;
    let mut carol = arrive(&url, "Carol", "editor").await;
    watch(&mut alice, "Alice").await;

    // Bob steps away: an update, broadcast to everyone in the channel.
    send(
        &mut bob,
        json!({"type": "presence-update", "channel": "doc:42", "status": "away"}),
    )
    .await;
    let away = watch(&mut alice, "Alice").await;

    // The list on request, over the socket...
    send(
        &mut carol,
        json!({"type": "presence", "channel": "doc:42", "id": "p1"}),
    )
    .await;
    let list = next_of(&mut carol, "presence").await;
    let listed = list["members"].as_array().expect("members");
    for member in listed {
        println!(
            "Carol lists: {} ({}), here since {}",
            member["meta"]["name"], member["status"], member["joinedAt"]
        );
    }

    // ...and over HTTP for backends. The channel is percent-encoded in the path.
    let members = api_get(&server, "/api/channels/doc%3A42/presence").await;
    println!(
        "backend: {} members in {}",
        members["members"].as_array().map_or(0, Vec::len),
        members["channel"]
    );

    // Carol closes her tab: everyone sees her leave.
    carol.close(None).await.expect("close");
    let left = watch(&mut alice, "Alice").await;

    // What this example shows, checked (CI runs every example).
    let (name, action, status) = away;
    assert_eq!(
        (name.as_str(), action.as_str(), status.as_str()),
        ("Bob", "update", "away")
    );
    assert_eq!(listed.len(), 3);
    assert_eq!(members["members"].as_array().map(Vec::len), Some(3));
    assert_eq!((left.0.as_str(), left.1.as_str()), ("Carol", "leave"));

    server.shutdown().await;
}

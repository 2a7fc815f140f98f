//! Run with `cargo run --example backend_events`.
//!
//! A backend service tells browsers that a task's status changed. The reference server runs
//! with `PUBLISH_API_KEY`; a frontend subscribes to `tasks:project-7` over WebSocket; the
//! backend publishes `task-status-changed` events over HTTP (`POST /api/publish`), and code
//! running inside the server process publishes through the hub directly. Either way the
//! message carries `"from": {"userId": null, "connectionId": "$server"}`, so clients can tell
//! it from user messages. A late client fetches what it missed from the history API.
#![allow(clippy::print_stdout, reason = "an example prints what happens")]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use switchboard_hub::ServerMessage;
use switchboard_protocol::{ChannelName, EventType, Payload, Priority};
use switchboard_server::{Server, ServerConfig};
use tokio_tungstenite::tungstenite::Message;

const API_KEY: &str = "backend-secret-key";
const CHANNEL: &str = "tasks:project-7";

/// What a backend does: `POST /api/publish` with the API key. Returns status and body.
async fn publish_over_http(addr: SocketAddr, event: &Value) -> (u16, Value) {
    request(
        addr,
        http::Request::post("/api/publish")
            .header("authorization", format!("Bearer {API_KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(event.to_string())))
            .expect("a request"),
    )
    .await
}

async fn request(addr: SocketAddr, mut request: http::Request<Full<Bytes>>) -> (u16, Value) {
    request
        .headers_mut()
        .insert("host", http::HeaderValue::from_static("localhost"));
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(connection);
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
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
    let addr = server.local_addr();

    // The frontend.
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("connect");
    ws.send(Message::text(
        json!({"type": "subscribe", "channel": CHANNEL}).to_string(),
    ))
    .await
    .expect("send");
    // A publish reaches the subscribers a channel has when it is published: wait until the
    // server confirms the subscription before the backend starts.
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("`subscribed` within 5 s");
        if let Some(Ok(Message::Text(text))) = message {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            if frame["type"] == "subscribed" {
                println!(
                    "frontend: subscribed to {CHANNEL} at offset {}",
                    frame["offset"]
                );
                break;
            }
        }
    }

    // The backend, over HTTP.
    for status in ["in_progress", "review", "done"] {
        let (code, receipt) = publish_over_http(
            addr,
            &json!({
                "channel": CHANNEL,
                "type": "task-status-changed",
                "payload": {"taskId": "T-18", "status": status},
            }),
        )
        .await;
        println!("backend: POST /api/publish ({status}) -> {code} {receipt}");
    }

    // A wrong key is refused.
    let (code, refusal) = request(
        addr,
        http::Request::post("/api/publish")
            .header("authorization", "Bearer wrong")
            .body(Full::new(Bytes::from_static(b"{}")))
            .expect("a request"),
    )
    .await;
    println!("backend with a wrong key -> {code} {refusal}");
    assert_eq!(code, 401, "a wrong key is refused");

    // Code inside the server process publishes through the hub.
    let receipt = server
        .hub()
        .publish(
            ServerMessage::new(
                ChannelName::new(CHANNEL).expect("a valid channel"),
                EventType::new("task-status-changed").expect("a valid type"),
                Payload::from_value(&json!({"taskId": "T-19", "status": "blocked"})),
            )
            .with_priority(Priority::High),
        )
        .await
        .expect("published");
    println!(
        "in-process: published {} at offset {}",
        receipt.id, receipt.offset
    );

    // What the frontend received.
    let mut statuses = Vec::new();
    while statuses.len() < 4 {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s");
        let Some(Ok(Message::Text(text))) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON");
        if frame["type"] == "task-status-changed" {
            statuses.push(
                frame["payload"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
            println!(
                "frontend <- {} is now {} (#{}, from {})",
                frame["payload"]["taskId"],
                frame["payload"]["status"],
                frame["offset"],
                frame["from"]
            );
        }
    }

    // A client that was offline catches up from history.
    let (_, history) = request(
        addr,
        http::Request::get(format!(
            "/api/channels/{}/history?since=2",
            CHANNEL.replace(':', "%3A")
        ))
        .header("authorization", format!("Bearer {API_KEY}"))
        .body(Full::default())
        .expect("a request"),
    )
    .await;
    println!(
        "history after offset 2: recovered = {}, {} messages",
        history["recovered"],
        history["messages"].as_array().map_or(0, Vec::len)
    );

    // What this example shows, checked (CI runs every example): the three statuses the
    // backend posted and the in-process one, in order; history after offset 2 holds the
    // last two.
    assert_eq!(statuses, ["in_progress", "review", "done", "blocked"]);
    assert_eq!(history["recovered"], true);
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2));

    server.shutdown().await;
}

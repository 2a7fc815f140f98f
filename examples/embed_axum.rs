//! Run with `cargo run --example embed_axum`.
//!
//! The switchboard transport mounted in your own axum application, beside its own routes:
//! `/ws` is an ordinary axum handler that hands the raw request and the peer address to
//! `Transport::upgrade`. axum's own `ws` feature is not needed (and not enabled). The app's
//! handlers also publish through the hub, as server-side code would.
#![allow(clippy::print_stdout, reason = "an example prints what happens")]

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Hub, ServerMessage};
use switchboard_protocol::{ChannelName, EventType, Payload};
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone)]
struct App {
    transport: Transport<MemoryBackplane>,
    hub: Hub<MemoryBackplane>,
}

/// `GET /ws`: the WebSocket endpoint, delegated to switchboard.
async fn websocket(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    app.transport
        .upgrade(request, peer)
        .map(axum::body::Body::new)
}

/// `GET /hello`: one of the application's own routes.
async fn hello(State(app): State<App>) -> Json<Value> {
    Json(json!({
        "hello": "world",
        "connections": app.transport.connection_count(),
    }))
}

/// `POST /announce`: application code publishing to WebSocket subscribers.
async fn announce(State(app): State<App>, Json(body): Json<Value>) -> Response {
    let message = ServerMessage::new(
        ChannelName::new("news").expect("a valid channel"),
        EventType::new("news.published").expect("a valid type"),
        Payload::from_value(&body),
    );
    match app.hub.publish(message).await {
        Ok(receipt) => Json(json!({"id": receipt.id, "offset": receipt.offset})).into_response(),
        Err(err) => (http::StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() {
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(hub.clone(), Authenticator::Open, TransportConfig::default());
    let app = Router::new()
        .route("/ws", get(websocket))
        .route("/hello", get(hello))
        .route("/announce", post(announce))
        .with_state(App {
            transport: transport.clone(),
            hub,
        });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    println!("axum app on http://{addr} (WebSocket at ws://{addr}/ws)");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });

    // A WebSocket client subscribes to `news`...
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("connect");
    ws.send(Message::text(r#"{"type":"subscribe","channel":"news"}"#))
        .await
        .expect("send");
    loop {
        let Some(Ok(Message::Text(text))) = ws.next().await else {
            panic!("the connection closed")
        };
        println!("ws client <- {text}");
        if text.contains(r#""type":"subscribed""#) {
            break;
        }
    }

    // ...the app's own routes work beside it...
    let hello = http_request(addr, "GET", "/hello", "").await;
    println!("GET /hello -> {hello}");

    // ...and an app route publishes to the subscriber.
    let receipt = http_request(
        addr,
        "POST",
        "/announce",
        r#"{"headline":"switchboard in axum"}"#,
    )
    .await;
    println!("POST /announce -> {receipt}");
    let news = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a message within 5 s");
    let Some(Ok(Message::Text(text))) = news else {
        panic!("expected the announcement, got {news:?}")
    };
    println!("ws client <- {text}");

    // What this example shows, checked (CI runs every example).
    let news: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(news["type"], "news.published");
    assert_eq!(news["payload"]["headline"], "switchboard in axum");
    let hello: serde_json::Value = serde_json::from_str(&hello).expect("JSON");
    assert_eq!(
        hello,
        serde_json::json!({"hello": "world", "connections": 1})
    );

    transport.shutdown(Duration::from_secs(5)).await;
    let _ = stop.send(());
    serving
        .await
        .expect("the server task")
        .expect("axum served");
}

/// A one-shot HTTP/1.1 request; returns the body.
async fn http_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

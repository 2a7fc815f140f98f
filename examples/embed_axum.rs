//! Run with `cargo run --example embed_axum`.
//!
//! The switchboard transport mounted in your own axum application, beside its own routes,
//! with the app's own login: `POST /login` gives a session cookie; the WebSocket endpoint
//! (a `tower::Service` on `/ws`; axum's own `ws` feature is not needed, nor enabled)
//! authenticates the upgrade by that cookie, and the hub's authorizer decides each
//! subscription from what the app attached to the identity (the user's team). The app's
//! handlers also publish through the hub, as server-side code would.
#![allow(clippy::print_stdout, reason = "an example prints what happens")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::{Action, Hub, Identity, ServerMessage};
use switchboard_protocol::{ChannelName, EventType, Payload};
use switchboard_transport::{AuthRequest, Authenticate, Authenticator, Rejection, Transport};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

/// A logged-in user, as the app knows them.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    team: String,
}

/// The app's session store: session id -> account.
#[derive(Clone, Default)]
struct Sessions(Arc<Mutex<HashMap<String, Account>>>);

impl Authenticate for Sessions {
    /// The upgrade request's `session` cookie, looked up in the app's store.
    async fn authenticate(&self, request: &AuthRequest<'_>) -> Result<Identity, Rejection> {
        let session = request
            .headers()
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|cookie| cookie.trim().strip_prefix("session="))
            .ok_or_else(|| Rejection::unauthorized("log in first"))?;
        let account = self
            .0
            .lock()
            .expect("the session store")
            .get(session)
            .cloned()
            .ok_or_else(|| Rejection::unauthorized("unknown or expired session"))?;
        Ok(Identity::user(account.name.clone()).with_data(account))
    }
}

/// Who may do what: `news` is everyone's; `team:<name>` only that team's.
fn team_policy(identity: &Identity, _: Action, channel: &ChannelName) -> bool {
    match channel.strip_prefix("team:") {
        None => channel.as_str() == "news",
        Some(team) => identity.data::<Account>().is_some_and(|a| a.team == team),
    }
}

#[derive(Clone)]
struct App {
    transport: Transport<MemoryBackplane>,
    hub: Hub<MemoryBackplane>,
    sessions: Sessions,
}

/// `POST /login`: the app's own login (no password check in an example); sets the cookie.
async fn login(State(app): State<App>, Json(body): Json<Value>) -> Response {
    let account = Account {
        name: body["name"].as_str().unwrap_or("guest").to_owned(),
        team: body["team"].as_str().unwrap_or("none").to_owned(),
    };
    let session = format!("s-{}", account.name);
    app.sessions
        .0
        .lock()
        .expect("the session store")
        .insert(session.clone(), account);
    (
        [(
            http::header::SET_COOKIE,
            format!("session={session}; HttpOnly"),
        )],
        "logged in",
    )
        .into_response()
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
    let hub = Hub::builder(MemoryBackplane::new(MemoryBackplaneConfig::default()))
        .authorizer(team_policy)
        .build();
    let sessions = Sessions::default();
    let transport = Transport::builder(hub.clone())
        .auth(Authenticator::new(sessions.clone()))
        .build();
    // The endpoint as a tower service; axum's `ConnectInfo` tells it the peer address.
    let ws = transport
        .service()
        .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0));
    let app = Router::new()
        .route_service("/ws", ws)
        .route("/login", post(login))
        .route("/hello", get(hello))
        .route("/announce", post(announce))
        .with_state(App {
            transport: transport.clone(),
            hub,
            sessions,
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

    // Without logging in, the upgrade is refused by the app's login.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await;
    let Err(tokio_tungstenite::tungstenite::Error::Http(refused)) = refused else {
        panic!("an anonymous upgrade must be refused, got {refused:?}")
    };
    println!("ws without a session -> {}", refused.status());
    assert_eq!(refused.status(), http::StatusCode::UNAUTHORIZED);

    // Alice logs in with the app and connects with her session cookie...
    let cookie = http_request(addr, "POST", "/login", r#"{"name":"alice","team":"blue"}"#)
        .await
        .0
        .expect("a session cookie");
    let mut request = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        http::header::COOKIE,
        cookie.parse().expect("a header value"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    let welcome = next_text(&mut ws).await;
    println!("ws client <- {welcome}");
    assert_eq!(
        json_of(&welcome)["userId"],
        "alice",
        "the app's user is the connection's"
    );

    // ...her team's channel is hers, another team's is not (the app's data, read by the
    // hub's authorizer), and `news` is everyone's.
    for (channel, expected) in [
        ("team:blue", "subscribed"),
        ("team:red", "error"),
        ("news", "subscribed"),
    ] {
        ws.send(Message::text(format!(
            r#"{{"type":"subscribe","channel":"{channel}"}}"#
        )))
        .await
        .expect("send");
        let answer = next_text(&mut ws).await;
        println!("ws client <- {answer}");
        assert_eq!(
            json_of(&answer)["type"],
            expected,
            "subscribing to {channel}"
        );
    }

    // ...the app's own routes work beside it...
    let hello = http_request(addr, "GET", "/hello", "").await.1;
    println!("GET /hello -> {hello}");

    // ...and an app route publishes to the subscriber.
    let receipt = http_request(
        addr,
        "POST",
        "/announce",
        r#"{"headline":"switchboard in axum"}"#,
    )
    .await
    .1;
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

/// The next text frame.
async fn next_text<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) => text.to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

/// A one-shot HTTP/1.1 request; returns the `name=value` of a `Set-Cookie`, if any, and the
/// body.
async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> (Option<String>, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_default();
    let cookie = head
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .and_then(|value| value.split(';').next())
        .map(str::to_owned);
    (cookie, body.to_owned())
}

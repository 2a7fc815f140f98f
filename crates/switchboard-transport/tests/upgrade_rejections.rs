//! Upgrade rejections, in the documented order, each with its status and JSON body.

mod support;

use std::num::NonZeroU32;

use support::{Client, Server, jwt_verifier, token, unix_now};
use switchboard_transport::{Authenticator, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn raw_http(server: &Server, request: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_malformed_upgrade_is_400_with_a_json_body() {
    let server = Server::open().await;
    let missing_key = raw_http(
        &server,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await;
    assert!(missing_key.starts_with("HTTP/1.1 400"), "{missing_key}");
    assert!(
        missing_key.contains(r#""error":"bad_request""#),
        "{missing_key}"
    );

    let wrong_version = raw_http(
        &server,
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert!(wrong_version.starts_with("HTTP/1.1 400"), "{wrong_version}");
    assert!(
        wrong_version
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13")
    );

    let not_upgrade = raw_http(&server, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(not_upgrade.starts_with("HTTP/1.1 400"), "{not_upgrade}");

    let post = raw_http(
        &server,
        "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    // The accept loop answers the method itself, as it does for every other path.
    assert!(post.starts_with("HTTP/1.1 405"), "{post}");
    assert!(
        post.to_ascii_lowercase().contains("allow: get, head"),
        "{post}"
    );
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let server = Server::open().await;
    let answer = raw_http(&server, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

#[tokio::test]
async fn a_foreign_origin_is_403_but_no_origin_is_allowed() {
    let server = Server::start(
        TransportConfig::default().allowed_origins(Some(vec!["https://app.example".into()])),
        Authenticator::open(),
    )
    .await;
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    let refusal = Client::try_connect(request).await.err().unwrap();
    assert_eq!(refusal.status, 403);
    assert_eq!(refusal.body["error"], "forbidden");

    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://app.example".parse().unwrap());
    assert!(Client::try_connect(request).await.is_ok());
    server.connect().await; // no Origin header: a non-browser client

    // The allowed origin first, a foreign one after it: refused, whichever is checked.
    for origins in [
        ["https://app.example", "https://evil.example"],
        ["https://app.example", "https://app.example"],
    ] {
        let mut request = server.url().into_client_request().unwrap();
        for origin in origins {
            request
                .headers_mut()
                .append("origin", origin.parse().unwrap());
        }
        let refusal = Client::try_connect(request).await.err().unwrap();
        assert_eq!(refusal.status, 403, "{origins:?}");
        assert_eq!(refusal.body["message"], "more than one Origin header");
    }
}

#[tokio::test]
async fn several_origin_headers_are_403_even_without_an_allowlist() {
    let server = Server::open().await;
    let mut request = server.url().into_client_request().unwrap();
    for origin in ["https://a.example", "https://b.example"] {
        request
            .headers_mut()
            .append("origin", origin.parse().unwrap());
    }
    let refusal = Client::try_connect(request).await.err().unwrap();
    assert_eq!(refusal.status, 403);
    assert_eq!(refusal.body["error"], "forbidden");
}

#[tokio::test]
async fn the_per_ip_cap_answers_429_with_retry_after_and_frees_on_disconnect() {
    let server = Server::start(
        TransportConfig::default().max_connections_per_ip(NonZeroU32::new(2)),
        Authenticator::open(),
    )
    .await;
    let mut events = server.transport.hub().events();
    let first = server.connect().await;
    let _second = server.connect().await;
    let refusal = Client::try_connect(server.url().into_client_request().unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(refusal.status, 429);
    assert_eq!(refusal.body["error"], "rate_limited");
    assert_eq!(refusal.retry_after.as_deref(), Some("10"));

    drop(first);
    // The slot is released when the session ends, before the hub reports the disconnect.
    support::disconnected(&mut events).await;
    assert!(
        Client::try_connect(server.url().into_client_request().unwrap())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_global_cap_answers_503_before_the_per_ip_cap() {
    let server = Server::start(
        TransportConfig::default()
            .max_connections(NonZeroU32::new(1))
            .max_connections_per_ip(NonZeroU32::new(1)),
        Authenticator::open(),
    )
    .await;
    let _only = server.connect().await;
    let refusal = Client::try_connect(server.url().into_client_request().unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(refusal.status, 503);
    assert_eq!(refusal.body["error"], "unavailable");
}

#[tokio::test]
async fn a_missing_token_is_401_after_the_caps_are_checked() {
    let server = Server::start(
        TransportConfig::default().allowed_origins(Some(vec!["https://ok".into()])),
        jwt_verifier(),
    )
    .await;
    let refusal = Client::try_connect(server.url().into_client_request().unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(refusal.status, 401);
    assert_eq!(refusal.body["error"], "unauthorized");

    // A bad origin is reported before the missing token.
    let mut request = server.url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "https://bad".parse().unwrap());
    assert_eq!(
        Client::try_connect(request).await.err().unwrap().status,
        403
    );

    // With a token in the query it works, and the user is the `sub` claim.
    let t = token(&serde_json::json!({"sub": "alice", "exp": unix_now() + 60}));
    let client = Client::connect(&format!("{}?token={t}", server.url())).await;
    assert_eq!(client.welcome["userId"], "alice");
}

#[tokio::test]
async fn an_invalid_or_repeated_client_id_is_400_and_a_valid_one_connects() {
    let server = Server::open().await;
    for query in [
        "client=",
        "client=has%20space",
        &format!("client={}", "x".repeat(65)),
        "client=a&client=b",
    ] {
        let request = format!("{}?{query}", server.url())
            .into_client_request()
            .unwrap();
        let refusal = Client::try_connect(request)
            .await
            .err()
            .unwrap_or_else(|| panic!("{query} was accepted"));
        assert_eq!(refusal.status, 400, "{query}");
        assert_eq!(refusal.body["error"], "bad_request", "{query}");
        assert!(
            refusal.body["message"].as_str().unwrap().contains("client"),
            "{query}: {}",
            refusal.body
        );
    }
    let mut client = Client::connect(&format!("{}?client=Tab_1-x9", server.url())).await;
    client.send(r#"{"type":"ping","id":"p"}"#).await;
    assert_eq!(client.recv_of("pong").await["id"], "p");
}

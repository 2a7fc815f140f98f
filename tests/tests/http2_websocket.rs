//! WebSockets over HTTP/2 (RFC 8441): a host serving HTTP/2 with extended CONNECT enabled
//! gets switchboard sessions on HTTP/2 streams, several on one TCP connection, beside its
//! other requests. Real sockets on 127.0.0.1, hyper on both sides.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use http::{Method, Request, StatusCode, Version};
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::ext::Protocol;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

const WAIT: Duration = Duration::from_secs(5);

/// A host's HTTP/2 server (prior knowledge, no TLS) with RFC 8441 enabled, routing every
/// request to the transport.
async fn h2_server(transport: Transport<MemoryBackplane>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let transport = transport.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let upgrade = transport.upgrade(req, peer);
                    async move { Ok::<_, Infallible>(upgrade.await) }
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

type H2 = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2_client(addr: SocketAddr) -> H2 {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    send
}

fn extended_connect(addr: SocketAddr, subprotocols: Option<&str>) -> Request<Empty<Bytes>> {
    let mut request = Request::builder()
        .method(Method::CONNECT)
        .version(Version::HTTP_2)
        .uri(format!("http://{addr}/ws"))
        .header("sec-websocket-version", "13");
    if let Some(protocols) = subprotocols {
        request = request.header("sec-websocket-protocol", protocols);
    }
    let mut request = request.body(Empty::new()).unwrap();
    request
        .extensions_mut()
        .insert(Protocol::from_static("websocket"));
    request
}

/// Opens a WebSocket on a new stream of `h2`.
async fn open(h2: &mut H2, addr: SocketAddr) -> WebSocketStream<TokioIo<hyper::upgrade::Upgraded>> {
    let response = h2
        .send_request(extended_connect(addr, Some("switchboard.v1")))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "RFC 8441: a 2xx opens the stream"
    );
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "switchboard.v1"
    );
    let upgraded = hyper::upgrade::on(response).await.unwrap();
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await
}

async fn next_json<S>(ws: &mut WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn sessions_run_on_http2_streams_several_on_one_connection() {
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(hub, Authenticator::open(), TransportConfig::default());
    let addr = h2_server(transport.clone()).await;
    let mut h2 = h2_client(addr).await;

    // Two sessions on two streams of one TCP connection.
    let mut alice = open(&mut h2, addr).await;
    let mut bob = open(&mut h2, addr).await;
    assert_eq!(next_json(&mut alice).await["type"], "welcome");
    assert_eq!(next_json(&mut bob).await["type"], "welcome");
    assert_eq!(transport.connection_count(), 2);

    bob.send(Message::text(r#"{"type":"subscribe","channel":"room"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut bob).await["type"], "subscribed");
    alice
        .send(Message::text(
            r#"{"type":"said","channel":"room","payload":{"n":1},"id":"m1"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(next_json(&mut alice).await["type"], "ack");
    let message = next_json(&mut bob).await;
    assert_eq!(
        (message["type"].as_str(), message["payload"]["n"].as_i64()),
        (Some("said"), Some(1))
    );

    // Closing one stream's WebSocket ends that session only.
    alice.close(None).await.unwrap();
    bob.send(Message::text(r#"{"type":"ping","id":"p"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut bob).await["type"], "pong");
}

#[tokio::test]
async fn a_connect_without_the_websocket_protocol_or_version_is_refused_with_400() {
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(hub, Authenticator::open(), TransportConfig::default());
    let addr = h2_server(transport.clone()).await;
    let mut h2 = h2_client(addr).await;

    let mut no_version = extended_connect(addr, None);
    no_version.headers_mut().remove("sec-websocket-version");
    let response = h2.send_request(no_version).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let mut other_protocol = extended_connect(addr, None);
    other_protocol
        .extensions_mut()
        .insert(Protocol::from_static("webtransport"));
    let response = h2.send_request(other_protocol).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(transport.connection_count(), 0);
}

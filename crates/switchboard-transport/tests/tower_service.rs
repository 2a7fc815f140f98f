//! The endpoint as a `tower::Service`, mounted in a real axum router beside the host's own
//! routes (axum without its `ws` feature), served on 127.0.0.1.

mod support;

use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::extract::ConnectInfo;
use axum::routing::get;
use serde_json::json;
use support::Client;
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn transport(config: TransportConfig) -> Transport<MemoryBackplane> {
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    Transport::new(hub, Authenticator::open(), config)
}

async fn serve(app: axum::Router, connect_info: bool) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if connect_info {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        } else {
            axum::serve(listener, app).await
        }
    });
    addr
}

#[tokio::test]
async fn an_axum_router_serves_the_endpoint_with_the_peer_from_connect_info() {
    let transport =
        transport(TransportConfig::default().max_connections_per_ip(NonZeroU32::new(1)));
    let ws = transport
        .service()
        .peer_from(|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|info| info.0));
    let app = axum::Router::new()
        .route("/hello", get(|| async { "hello" }))
        .route_service("/ws", ws);
    let addr = serve(app, true).await;

    let mut first = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(first.subscribe("news").await["channel"], "news");
    assert_eq!(transport.connection_count(), 1);
    // The per-address cap applies: the service knows where the connection comes from.
    let refusal = Client::try_connect(format!("ws://{addr}/ws").into_client_request().unwrap())
        .await
        .err()
        .expect("a second connection from 127.0.0.1 is over the cap");
    assert_eq!(refusal.status, 429);

    // The host's own route answers beside it.
    let response = http_get(addr, "/hello").await;
    assert!(response.ends_with("hello"), "{response}");
}

#[tokio::test]
async fn without_a_peer_address_the_upgrade_is_refused_with_500_not_served() {
    let transport = transport(TransportConfig::default());
    // Default: a `PeerAddr` extension, which this server never inserts.
    let app = axum::Router::new().route_service("/ws", transport.service());
    let addr = serve(app, false).await;
    let refusal = Client::try_connect(format!("ws://{addr}/ws").into_client_request().unwrap())
        .await
        .err()
        .expect("refused");
    assert_eq!(refusal.status, 500);
    assert_eq!(refusal.body["error"], json!("internal"));
    assert_eq!(transport.connection_count(), 0);
}

#[tokio::test]
async fn a_peer_addr_extension_is_read_by_default() {
    use tower_service::Service as _;
    let transport = transport(TransportConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = transport.service();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let hyper_service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(switchboard_transport::PeerAddr(peer));
                service.clone().call(req)
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), hyper_service)
            .with_upgrades()
            .await;
    });
    let client = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(client.welcome["type"], "welcome");
    assert_eq!(transport.connection_count(), 1);
}

/// A one-shot HTTP/1.1 GET; the whole response.
async fn http_get(addr: SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

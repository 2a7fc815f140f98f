//! The transport's accept loop composed by a host: its own routes, a wrapping step, a stop
//! signal and a task tracker.

mod support;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use support::{Client, WAIT};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_transport::{ResponseBody, Transport, TransportConfig, WrapStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn transport(config: TransportConfig) -> Transport<MemoryBackplane> {
    Transport::builder(Hub::new(MemoryBackplane::new(
        MemoryBackplaneConfig::default(),
    )))
    .config(config)
    .build()
}

async fn hello(_req: Request<Incoming>, _peer: SocketAddr) -> Response<ResponseBody> {
    Response::new(Full::from("hello"))
}

/// A wrapping step that never finishes: a client that never completes its handshake.
struct Stalls;

impl WrapStream for Stalls {
    type Stream = TcpStream;
    type Error = std::io::Error;

    async fn wrap(&self, stream: TcpStream, _peer: SocketAddr) -> std::io::Result<TcpStream> {
        std::future::pending::<()>().await;
        Ok(stream)
    }
}

/// A wrapping step that hands the stream on as it is.
struct PassThrough;

impl WrapStream for PassThrough {
    type Stream = TcpStream;
    type Error = std::io::Error;

    async fn wrap(&self, stream: TcpStream, _peer: SocketAddr) -> std::io::Result<TcpStream> {
        Ok(stream)
    }
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    answer
}

#[tokio::test]
async fn the_hosts_routes_answer_beside_the_websocket_endpoint_through_the_wrapping_step() {
    let transport = transport(TransportConfig::default().drain_window(Duration::from_millis(100)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let serving = tokio::spawn(
        transport
            .accept_loop(listener)
            .wrap(PassThrough)
            .routes(hello)
            .stop(stop.clone())
            .track(tracker.clone())
            .run(),
    );

    let answer = get(addr, "/anything").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello"), "{answer}");
    let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
    assert_eq!(client.welcome["type"], "welcome");
    assert_eq!(transport.connection_count(), 1);

    // The stop ends the loop and the HTTP connections it tracks; the upgraded one is the
    // transport's, and ends with its shutdown.
    stop.cancel();
    serving.await.unwrap().unwrap();
    tracker.close();
    tokio::time::timeout(WAIT, tracker.wait())
        .await
        .expect("every HTTP connection ended");
    let shutdown = tokio::spawn({
        let transport = transport.clone();
        async move { transport.shutdown(WAIT).await }
    });
    assert_eq!(client.closed_with().await, 1001);
    assert!(shutdown.await.unwrap(), "the session ended in time");
}

#[tokio::test]
async fn a_wrapping_step_that_never_finishes_is_cut_off_at_the_handshake_timeout() {
    let transport = transport(
        TransportConfig::default()
            .handshake_timeout(Duration::from_millis(200))
            .max_connections_per_ip(NonZeroU32::new(1)),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(transport.accept_loop(listener).wrap(Stalls).run());

    let mut stalled = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(WAIT, stalled.read(&mut buf))
        .await
        .expect("the connection is closed at the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");

    // Its admission went with it: the address may connect again.
    let mut again = TcpStream::connect(addr).await.unwrap();
    let held = tokio::time::timeout(Duration::from_millis(100), again.read(&mut buf)).await;
    assert!(held.is_err(), "admitted, so held until its own timeout");
}

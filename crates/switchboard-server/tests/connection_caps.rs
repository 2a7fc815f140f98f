//! Connections are counted from accept, not from the upgrade: silent sockets cannot hold
//! descriptors beyond the per-address and global caps, a connection over a cap is answered
//! at once (without waiting for its request), and other addresses keep being served.

mod support;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use support::{WAIT, start, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `server` from the loopback address `from`.
async fn connect_from(from: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((from, 0)))
        .expect("loopback addresses are bindable");
    socket.connect(server).await.unwrap()
}

/// Everything the server sends until it closes, without sending anything.
async fn answer_without_asking(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed without a request")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

async fn health_from(from: [u8; 4], server: SocketAddr) -> String {
    let mut stream = connect_from(from, server).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    answer_without_asking(&mut stream).await
}

#[tokio::test]
async fn silent_sockets_count_against_the_per_address_cap_from_accept() {
    let server = start(
        test_config()
            .max_connections_per_ip(NonZeroU32::new(3))
            // Long: without counting at accept, silent sockets would pile up meanwhile.
            .handshake_timeout(Duration::from_secs(60)),
    )
    .await;
    let addr = server.local_addr();
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect_from([127, 0, 0, 1], addr).await);
    }
    // The fourth from that address is refused at once, before it sends anything.
    let mut fourth = connect_from([127, 0, 0, 1], addr).await;
    let refused = answer_without_asking(&mut fourth).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("Retry-After: 10"), "{refused}");
    assert!(refused.contains(r#""error":"rate_limited""#), "{refused}");

    // Another address is served meanwhile.
    assert!(
        health_from([127, 0, 0, 2], addr)
            .await
            .starts_with("HTTP/1.1 200")
    );

    // A silent socket that goes away frees its place.
    drop(silent.pop());
    let served = tokio::time::timeout(WAIT, async {
        loop {
            let answer = health_from([127, 0, 0, 1], addr).await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            // The server may not have seen the close yet: it answers 429 until it does.
            assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the freed place is given to a new connection");
    assert!(served.contains("\"status\""), "{served}");
}

#[tokio::test]
async fn over_the_global_cap_a_new_connection_is_answered_503_at_once() {
    let server = start(
        test_config()
            .max_connections(NonZeroU32::new(2))
            .max_connections_per_ip(None)
            .handshake_timeout(Duration::from_secs(60)),
    )
    .await;
    let addr = server.local_addr();
    let _silent = [
        connect_from([127, 0, 0, 3], addr).await,
        connect_from([127, 0, 0, 4], addr).await,
    ];
    let mut third = connect_from([127, 0, 0, 5], addr).await;
    let refused = answer_without_asking(&mut third).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains(r#""error":"unavailable""#), "{refused}");
}

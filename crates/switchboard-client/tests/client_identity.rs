//! The client id: sent as the `client` query parameter on every connection attempt, the same
//! across reconnects, so the server can tell a retried publish from another client's.

mod support;

use support::{WAIT, fast_client};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// Accepts one connection and returns its HTTP request line, then drops the socket (the
/// client sees a failed attempt and tries again).
async fn request_line(listener: &TcpListener) -> String {
    let (mut socket, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the client connects in time")
        .unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = tokio::time::timeout(WAIT, socket.read(&mut buf))
            .await
            .expect("the request arrives in time")
            .unwrap();
        assert!(n > 0, "the client closed before sending its request");
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    head.lines().next().unwrap().to_owned()
}

#[tokio::test]
async fn every_attempt_carries_the_same_client_id_and_keeps_the_url_query() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = fast_client(&format!("ws://{addr}/ws?room=7"))
        .build()
        .unwrap();
    let id = client.client_id().clone();
    let expected = format!("GET /ws?room=7&client={id} HTTP/1.1");
    for attempt in 0..3 {
        assert_eq!(request_line(&listener).await, expected, "attempt {attempt}");
    }
    client.close().await;
}

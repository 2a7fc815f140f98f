//! The reference server with `TOKIO_WORKER_THREADS=1`, which runs tokio's single-threaded
//! scheduler: everything (accepting, every session, the fan-out, signals) on one thread. It
//! serves publishes to several subscribers and drains them on `SIGTERM`, as the
//! multi-threaded runtime the other suites use does.

mod support_server;

use std::time::Duration;

use serde_json::json;
use support_server::{ServerProcess, close_code, loopback, open, recv_json, send_text, subscribe};

#[tokio::test]
async fn one_worker_serves_every_subscriber_and_drains_on_sigterm() {
    let mut server = ServerProcess::start(&[
        ("TOKIO_WORKER_THREADS", "1"),
        ("DRAIN_WINDOW_MS", "100"),
        ("RUST_LOG", "info"),
    ])
    .await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut ws = open(loopback(0, 1), server.addr(), server.request("")).await;
        subscribe(&mut ws, "room:one-worker").await;
        clients.push((i, ws));
    }

    // Each client publishes in turn; each publish is acked to its sender and reaches every
    // subscriber, in offset order.
    for offset in 1..=3u64 {
        let sender = usize::try_from(offset - 1).unwrap();
        let id = format!("m{offset}");
        send_text(
            &mut clients[sender].1,
            &json!({"type": "note", "channel": "room:one-worker", "payload": {"n": offset}, "id": id})
                .to_string(),
        )
        .await;
        for (i, ws) in &mut clients {
            // The sender gets its ack too, in either order with its own copy.
            let mut frames = vec![recv_json(ws).await];
            if *i == sender {
                frames.push(recv_json(ws).await);
                let ack = frames
                    .iter()
                    .find(|f| f["type"] == "ack")
                    .unwrap_or_else(|| panic!("no ack: {frames:?}"));
                assert_eq!(ack["id"], id.as_str(), "{ack}");
                assert_eq!(ack["offset"], offset, "{ack}");
            }
            let message = frames
                .iter()
                .find(|f| f["type"] == "note")
                .unwrap_or_else(|| panic!("client {i}: no message: {frames:?}"));
            assert_eq!(message["offset"], offset, "client {i}: {message}");
            assert_eq!(message["payload"]["n"], offset, "client {i}: {message}");
        }
    }

    // All of it on the process's one thread (nothing here needs a blocking thread).
    assert_eq!(server.threads(), 1, "{}", server.log_tail());
    // SIGTERM: every client is told the server is going away (1001), and it exits 0.
    let (exit, codes) = tokio::join!(server.terminate(Duration::from_secs(10)), async {
        let mut codes = Vec::new();
        for (_, ws) in &mut clients {
            codes.push(close_code(ws).await);
        }
        codes
    });
    assert_eq!(codes, vec![Ok(1001); 3], "{}", server.log_tail());
    assert_eq!(exit, Some(0), "{}", server.log_tail());
}

//! A smoke check for memory per connection — a loose bound, not a timing: 1,000 idle
//! WebSocket connections must cost the server process under 3.25 KB of resident memory each
//! (2.3–2.7 KB measured in a debug build, 2026-12-03, after the transport's own frame
//! reader; 3.4–3.7 KB before). It catches a regression of what was done to get there: a
//! read buffer kept between frames (tungstenite kept 512 bytes and its context, about
//! 1 KB in all), a session task that keeps large futures, the upgrade's state or a second
//! timer inline (the task is 512 bytes; the next size is 640), queue buffers or counters
//! kept after use. The measured figure is printed; the benchmark figures in
//! docs/benchmarks.md come from the load tool, not from this test.

mod support;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use support::Binary;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const CONNECTIONS: usize = 1000;
const BOUND_BYTES: u64 = 3328;

/// The process's resident set, in bytes, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is readable");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib * 1024
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(url: &str) -> Ws {
    let mut config = WebSocketConfig::default();
    config.read_buffer_size = 4096;
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(url, Some(config), false),
    )
    .await
    .expect("handshake in time")
    .expect("upgrade accepted");
    // The welcome frame proves the session is fully set up on the server.
    let welcome = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("welcome in time");
    assert!(matches!(welcome, Some(Ok(_))), "{welcome:?}");
    ws
}

#[tokio::test]
async fn a_thousand_idle_connections_cost_the_server_under_3_25_kb_each() {
    let mut binary = Binary::spawn(&[("PORT", "0"), ("MAX_CONNECTIONS_PER_IP", "0")], &[]);
    let addr = binary.listening().await;
    let pid = binary.child.id().expect("running");
    let url = format!("ws://{addr}/ws");

    // Warm up the allocator and the runtime with a first batch that is then closed.
    let warmup: Vec<Ws> = futures_util::future::join_all((0..50).map(|_| open(&url))).await;
    drop(warmup);
    let before = rss_bytes(pid);

    let mut held = Vec::with_capacity(CONNECTIONS);
    for chunk in 0..CONNECTIONS / 50 {
        let batch = futures_util::future::join_all((0..50).map(|_| open(&url))).await;
        held.extend(batch);
        assert_eq!(held.len(), (chunk + 1) * 50);
    }
    let after = rss_bytes(pid);
    let per_connection = after.saturating_sub(before) / CONNECTIONS as u64;
    eprintln!(
        "server RSS: {before} B before, {after} B with {CONNECTIONS} idle connections: \
         {per_connection} B per connection"
    );
    assert!(
        per_connection < BOUND_BYTES,
        "{per_connection} B per idle connection, bound is {BOUND_BYTES} B"
    );
    drop(held);
}

/// tungstenite grows its read buffer to the largest frame it reads and never shrinks it:
/// before the session released it, one 60 KB message cost its connection 60 KB for life
/// (60.6 KB per connection measured with 2,000 connections, release build).
#[tokio::test]
async fn a_large_frame_leaves_no_large_read_buffer_behind() {
    const SENDERS: usize = 300;
    const FRAME_BYTES: usize = 60_000;
    const BOUND: u64 = 8 * 1024;
    let mut binary = Binary::spawn(&[("PORT", "0"), ("MAX_CONNECTIONS_PER_IP", "0")], &[]);
    let addr = binary.listening().await;
    let pid = binary.child.id().expect("running");
    let url = format!("ws://{addr}/ws");

    let mut held = Vec::with_capacity(SENDERS);
    for _ in 0..SENDERS / 50 {
        held.extend(futures_util::future::join_all((0..50).map(|_| open(&url))).await);
    }
    // Warm up: one large frame through a connection that is then closed.
    let mut warmup = open(&url).await;
    send_large_and_read_the_error(&mut warmup, FRAME_BYTES).await;
    drop(warmup);
    let before = rss_bytes(pid);

    for ws in &mut held {
        send_large_and_read_the_error(ws, FRAME_BYTES).await;
    }
    let after = rss_bytes(pid);
    let per_connection = after.saturating_sub(before) / SENDERS as u64;
    eprintln!(
        "server RSS: {before} B before, {after} B after one {FRAME_BYTES}-byte frame on each \
         of {SENDERS} connections: {per_connection} B per connection"
    );
    assert!(
        per_connection < BOUND,
        "{per_connection} B kept per connection after one large frame, bound is {BOUND} B"
    );
}

/// Sends a frame of `len` bytes the server refuses (a subscribe to an invalid channel name,
/// so nothing is stored) and waits for the refusal: the frame has been read and handled.
async fn send_large_and_read_the_error(ws: &mut Ws, len: usize) {
    let frame = format!(
        r#"{{"type":"subscribe","id":"big","channel":"not a channel {}"}}"#,
        "x".repeat(len)
    );
    ws.send(Message::text(frame)).await.expect("sent");
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer in time")
            .expect("the connection stays open")
            .expect("a frame");
        if let Message::Text(text) = next
            && text.contains(r#""type":"error""#)
        {
            assert!(text.contains(r#""id":"big""#), "{text}");
            return;
        }
    }
}

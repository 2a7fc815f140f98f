//! Connection quality from the heartbeat, measured through a TCP proxy written here that
//! injects latency and loss between the client and a real server.
//!
//! The proxy is honest about what it does: *latency* delays every byte from the server to
//! the client by a fixed time (so every round trip grows by it); *loss* drops the whole
//! WebSocket frame of selected application `ping`s on their way to the server — the frame
//! boundaries are parsed, so the stream stays valid — which is how packet loss shows at the
//! application level (TCP would retransmit a lost segment; what the client sees is a ping
//! answered late or never).

mod support;

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use support::{Server, WAIT, fast_client, wait_state};
use switchboard_client::{ConnectionState, DisconnectReason, Heartbeat, Quality, QualityClass};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What the proxy does to traffic, changeable while it runs.
#[derive(Default)]
struct Impairment {
    /// Delay of server → client bytes, in ms.
    delay_ms: AtomicU64,
    /// Drop every nth client ping (1: all, 0: none).
    drop_every: AtomicU64,
}

struct Proxy {
    addr: SocketAddr,
    impairment: Arc<Impairment>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let impairment = Arc::new(Impairment::default());
        let shared = Arc::clone(&impairment);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(client_to_server(
                    client_read,
                    server_write,
                    Arc::clone(&shared),
                ));
                tokio::spawn(server_to_client(
                    server_read,
                    client_write,
                    Arc::clone(&shared),
                ));
            }
        });
        Self { addr, impairment }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap();
        self.impairment.delay_ms.store(ms, Ordering::Relaxed);
    }

    fn drop_every(&self, nth: u64) {
        self.impairment.drop_every.store(nth, Ordering::Relaxed);
    }
}

/// Forwards the upgrade request as is, then whole WebSocket frames, dropping selected
/// application pings.
async fn client_to_server(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    impairment: Arc<Impairment>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut upgraded = false;
    let mut pings = 0u64;
    loop {
        let Ok(n) = from.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if !upgraded {
            let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let request: Vec<u8> = buffer.drain(..end + 4).collect();
            if to.write_all(&request).await.is_err() {
                return;
            }
            upgraded = true;
        }
        while let Some(len) = frame_len(&buffer) {
            let frame: Vec<u8> = buffer.drain(..len).collect();
            if is_ping(&frame) {
                pings += 1;
                let every = impairment.drop_every.load(Ordering::Relaxed);
                if every != 0 && pings.is_multiple_of(every) {
                    continue;
                }
            }
            if to.write_all(&frame).await.is_err() {
                return;
            }
        }
    }
}

/// The length of the complete masked client frame at the start of `buf`, if it is all
/// there.
fn frame_len(buf: &[u8]) -> Option<usize> {
    if buf.len() < 2 {
        return None;
    }
    let (payload, header) = match buf[1] & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let mask = if buf[1] & 0x80 != 0 { 4 } else { 0 };
    let len = header + mask + payload;
    (buf.len() >= len).then_some(len)
}

/// Whether a client frame is a text frame carrying an application `ping`.
fn is_ping(frame: &[u8]) -> bool {
    if frame[0] & 0x0f != 0x1 {
        return false;
    }
    let header = match frame[1] & 0x7f {
        126 => 4,
        127 => 10,
        _ => 2,
    };
    let key = &frame[header..header + 4];
    let text: Vec<u8> = frame[header + 4..]
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % 4])
        .collect();
    text.starts_with(br#"{"type":"ping""#)
}

/// Forwards bytes, each chunk held back by the current delay (order kept).
async fn server_to_client(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    impairment: Arc<Impairment>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    tokio::spawn(async move {
        while let Some((at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = from.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        let delay = Duration::from_millis(impairment.delay_ms.load(Ordering::Relaxed));
        if tx
            .send((Instant::now() + delay, chunk[..n].to_vec()))
            .is_err()
        {
            return;
        }
    }
}

async fn quality_where(
    client: &switchboard_client::Client,
    predicate: impl Fn(&Quality) -> bool,
) -> Quality {
    let mut quality = client.quality();
    tokio::time::timeout(WAIT, quality.wait_for(|q| predicate(q)))
        .await
        .expect("the quality in time")
        .unwrap()
        .clone()
}

fn heartbeat(interval_ms: u64, timeout_ms: u64) -> Heartbeat {
    Heartbeat::default()
        .with_interval(Duration::from_millis(interval_ms))
        .with_timeout(Duration::from_millis(timeout_ms))
}

#[tokio::test]
async fn a_direct_loopback_connection_is_excellent_and_offline_once_the_server_is_gone() {
    let server = Server::open().await;
    let client = fast_client(&server.url())
        .heartbeat(heartbeat(20, 1000))
        .build()
        .unwrap();
    let mut updates = client.quality_updates();
    assert_eq!(updates.next().await.unwrap().class, QualityClass::Offline);

    let quality = quality_where(&client, |q| q.pings >= 3).await;
    assert_eq!(quality.class, QualityClass::Excellent, "{quality:?}");
    assert!(quality.latency_avg.unwrap() < Duration::from_millis(100));
    assert!(quality.jitter.is_some());
    assert_eq!(quality.loss, 0.0);
    assert_eq!(quality.reconnects_in_window, 0);

    server.stop().await;
    let quality = quality_where(&client, |q| q.class == QualityClass::Offline).await;
    assert_eq!(quality.class, QualityClass::Offline);
}

#[tokio::test]
async fn latency_added_by_the_network_is_measured_and_grades_the_connection_good() {
    let server = Server::open().await;
    let proxy = Proxy::start(server.addr).await;
    proxy.delay(Duration::from_millis(150));
    let client = fast_client(&proxy.url())
        .heartbeat(heartbeat(50, 2000))
        .build()
        .unwrap();

    let quality = quality_where(&client, |q| q.pings >= 5).await;
    let latency = quality.latency_avg.unwrap();
    assert!(
        latency >= Duration::from_millis(150) && latency < Duration::from_millis(300),
        "{quality:?}"
    );
    assert_eq!(quality.loss, 0.0);
    assert_eq!(quality.class, QualityClass::Good, "{quality:?}");
}

#[tokio::test]
async fn unanswered_pings_count_as_loss_and_grade_the_connection_poor() {
    let server = Server::open().await;
    let proxy = Proxy::start(server.addr).await;
    proxy.drop_every(2);
    let client = fast_client(&proxy.url())
        .heartbeat(heartbeat(30, 150))
        .build()
        .unwrap();

    // Ten pings resolved, every second one lost.
    let quality = quality_where(&client, |q| q.pings >= 10).await;
    assert!((0.4..=0.6).contains(&quality.loss), "{quality:?}");
    assert_eq!(quality.class, QualityClass::Poor);
    assert!(
        client.state().borrow().is_connected(),
        "alternate losses are not a dead link"
    );
}

#[tokio::test]
async fn a_connection_whose_pings_go_unanswered_is_replaced_and_counts_as_a_reconnect() {
    let server = Server::open().await;
    let proxy = Proxy::start(server.addr).await;
    let client = fast_client(&proxy.url())
        .heartbeat(heartbeat(30, 100).with_dead_after(NonZeroU32::new(2)))
        .build()
        .unwrap();
    client.connected().await.unwrap();

    proxy.drop_every(1);
    let state = wait_state(&client, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    assert_eq!(
        state.reason(),
        Some(&DisconnectReason::Unresponsive { missed: 2 })
    );

    proxy.drop_every(0);
    client.connected().await.unwrap();
    // Once the last ten pings were answered, the two lost ones no longer count.
    let quality = quality_where(&client, |q| {
        q.class != QualityClass::Offline && q.pings == 10 && q.loss == 0.0
    })
    .await;
    assert_eq!(quality.reconnects_in_window, 1, "{quality:?}");
    assert_eq!(
        quality.class,
        QualityClass::Good,
        "a reconnect in the window: not excellent"
    );
}

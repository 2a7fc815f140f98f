//! Slow consumers against the reference server running as a real process: a client that
//! stops reading (a real socket whose receive buffer was shrunk before connecting, so the
//! kernel buffers fill at once) while a publisher floods its channel.
//!
//! What a user depends on: the server's memory stays bounded by the outbound queue limits,
//! not by how much is published; the stalled client loses low priority first; a critical
//! message that cannot fit closes it with 4008; a stalled client is still subject to the
//! idle timeout; and other subscribers of the same channel are not slowed down at all. That
//! last point is proved without timings: a fast subscriber receives every message before the
//! publisher sends the next one (lockstep), for the whole flood.
//!
//! The outbound limits are the transport's defaults (the server has no setting for them):
//! 1024 frames and 4 MiB per connection. Messages carry a 32,000-byte payload, so the
//! byte limit is the one that binds (about 130 frames).

mod support_server;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use serde_json::Value;
use support_server::{
    Incoming, ServerProcess, Ws, loopback, next_incoming, open, recv_json, send_text, subscribe,
    try_open,
};

/// `TransportConfig::outbound_max_bytes`'s default: bytes queued for one slow client.
const OUTBOUND_MAX_BYTES: u64 = 4 << 20;
/// The most a stalled session holds outside its queue: the one batch its writer has taken
/// from the queue and not finished writing, at most 64 KiB plus one frame (frames are
/// written from the queue to the socket with nothing in between).
const WRITE_SIDE_BYTES: u64 = (64 << 10) + FRAME_BYTES;
/// The payload of every flood message: a JSON string of this many bytes.
const PAYLOAD_BYTES: usize = 32_000;
/// A flood message as the server sends it: the payload plus its envelope, rounded up.
const FRAME_BYTES: u64 = PAYLOAD_BYTES as u64 + 512;
/// `HISTORY_SIZE`'s default: messages the memory backplane keeps per channel.
const HISTORY_SIZE: u64 = 100;
/// SO_RCVBUF of the stalled client (the kernel doubles it and has a floor of ~2 KiB).
const STALLED_RECV_BUFFER: u32 = 4096;
/// The channel every test floods.
const CHANNEL: &str = "flood";

/// The kernel's largest TCP send buffer (`tcp_wmem`'s maximum): how much of a flood the
/// server's socket may hold for the stalled client before its outbound queue starts to fill.
fn max_send_buffer() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_wmem")
        .ok()
        .and_then(|s| s.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(4 << 20)
}

/// The publisher, a subscriber that keeps up, and a subscriber that has stopped reading, all
/// on one channel of a server process.
struct Flood {
    server: ServerProcess,
    publisher: Ws,
    fast: Ws,
    stalled: Ws,
    payload: String,
    sent: usize,
    /// Offset → priority of every message published.
    priorities: BTreeMap<u64, &'static str>,
}

impl Flood {
    async fn start(env: &[(&str, &str)]) -> Self {
        let server = ServerProcess::start(env).await;
        let addr = server.addr();
        let publisher = open(loopback(0, 11), addr, server.request("")).await;
        let mut fast = open(loopback(0, 12), addr, server.request("")).await;
        let mut stalled = stalled_client(addr, &server).await;
        subscribe(&mut fast, CHANNEL).await;
        subscribe(&mut stalled, CHANNEL).await;
        // From here on nothing reads `stalled` until a test resumes it.
        Self {
            server,
            publisher,
            fast,
            stalled,
            payload: "x".repeat(PAYLOAD_BYTES),
            sent: 0,
            priorities: BTreeMap::new(),
        }
    }

    /// Publishes one message and waits until the fast subscriber has it and the publisher
    /// has its ack, before anything else is published. Returns its offset.
    async fn lockstep(&mut self, priority: &'static str, id: &str) -> u64 {
        let frame = format!(
            r#"{{"type":"flood.message","channel":"{CHANNEL}","priority":"{priority}","id":"{id}","payload":"{}"}}"#,
            self.payload
        );
        send_text(&mut self.publisher, &frame).await;
        let delivered = recv_json(&mut self.fast).await;
        assert_eq!(
            delivered["id"], id,
            "the fast subscriber got something else than the message just published"
        );
        let ack = recv_json(&mut self.publisher).await;
        assert_eq!(
            (ack["type"].as_str(), ack["id"].as_str()),
            (Some("ack"), Some(id))
        );
        let offset = ack["offset"].as_u64().expect("an offset");
        assert_eq!(delivered["offset"].as_u64(), Some(offset));
        self.priorities.insert(offset, priority);
        self.sent += 1;
        offset
    }

    /// Publishes `count` messages in lockstep; the i-th (counting from the first message
    /// ever published) gets `priority_of(i)`.
    async fn lockstep_many(&mut self, count: usize, priority_of: impl Fn(usize) -> &'static str) {
        let start = self.sent;
        for i in start..start + count {
            self.lockstep(priority_of(i), &format!("m{i}")).await;
        }
    }

    /// Resumes reading the stalled client: the frames it gets until `stop` says so or the
    /// connection ends, and how it ended (`None` while still open).
    async fn resume(&mut self, stop_at_id: Option<&str>) -> (Vec<Value>, Option<Incoming>) {
        let mut frames = Vec::new();
        for _ in 0..=self.sent + 10 {
            match next_incoming(&mut self.stalled).await {
                Incoming::Frame(frame) => {
                    let stop = stop_at_id.is_some() && frame["id"].as_str() == stop_at_id;
                    frames.push(frame);
                    if stop {
                        return (frames, None);
                    }
                }
                end => return (frames, Some(end)),
            }
        }
        panic!("more frames than were published");
    }
}

/// A client whose receive buffer is shrunk before it connects, so that the window it
/// advertises stays tiny and the kernel buffers fill as soon as it stops reading.
async fn stalled_client(addr: SocketAddr, server: &ServerProcess) -> Ws {
    let (mut ws, _) = try_open(
        loopback(0, 13),
        addr,
        server.request(""),
        Some(STALLED_RECV_BUFFER),
    )
    .await
    .expect("the upgrade succeeds");
    assert_eq!(recv_json(&mut ws).await["type"], "welcome");
    ws
}

/// A large flood's priorities: mostly low; every 100th normal and every 400th high, so that
/// all the normal and high ones together (well under 4 MiB) always fit in the stalled
/// client's queue, and only low ones can be evicted.
fn mostly_low(i: usize) -> &'static str {
    if i % 400 == 399 {
        "high"
    } else if i % 100 == 99 {
        "normal"
    } else {
        "low"
    }
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        // The publisher sends thousands of frames a minute.
        ("RATE_LIMIT_MAX_MESSAGES", "1000000"),
        ("RATE_LIMIT_USER_MAX_MESSAGES", "0"),
        ("RUST_LOG", "warn,switchboard_server=info"),
    ]
}

#[tokio::test]
async fn a_stalled_reader_costs_bounded_memory_and_never_slows_a_fast_subscriber() {
    // 50 times the outbound byte limit.
    const MESSAGES: usize = (50 * OUTBOUND_MAX_BYTES / FRAME_BYTES) as usize;
    let mut flood = Flood::start(&env()).await;
    // A short warm-up (well under what the stalled client's buffers hold), so that the
    // runtime and allocator have served messages of this size before the baseline.
    flood.lockstep_many(16, |_| "normal").await;
    let before = flood.server.rss_bytes();

    flood.lockstep_many(MESSAGES, mostly_low).await;
    let after = flood.server.rss_bytes();

    // What the server may legitimately hold because of the stalled client: its outbound
    // queue and write side, plus the channel's history; doubled for allocator slack
    // (freed 32 KB blocks stay in glibc's per-thread arenas).
    let bound = 2 * (OUTBOUND_MAX_BYTES + WRITE_SIDE_BYTES + HISTORY_SIZE * FRAME_BYTES);
    let growth = after.saturating_sub(before);
    let pushed = MESSAGES as u64 * FRAME_BYTES;
    eprintln!(
        "server RSS {} KiB before, {} KiB after {} MiB published to a stalled reader: \
         +{} KiB (bound {} KiB)",
        before >> 10,
        after >> 10,
        pushed >> 20,
        growth >> 10,
        bound >> 10
    );
    assert!(
        growth < bound,
        "the server grew by {growth} B while {pushed} B were published to a stalled reader; \
         the outbound limits allow {bound} B"
    );
    // The stalled client was really stalled: its queue is holding frames.
    assert!(flood.server.metric("websocket_outbound_queue_depth").await > 0.0);
    // Every message reached the fast subscriber before the next was published; it lost
    // none: its offsets were checked one by one against the acks.
    assert_eq!(flood.priorities.len(), 16 + MESSAGES);
}

#[tokio::test]
async fn a_stalled_reader_misses_only_low_priority_messages() {
    let mut flood = Flood::start(&env()).await;
    // Enough to fill the server's send buffer and the outbound queue three times over.
    let messages =
        (3 * (max_send_buffer() + WRITE_SIDE_BYTES + OUTBOUND_MAX_BYTES) / FRAME_BYTES) as usize;
    let non_low = (0..messages).filter(|&i| mostly_low(i) != "low").count() as u64;
    assert!(
        (non_low + 1) * FRAME_BYTES < OUTBOUND_MAX_BYTES / 2,
        "normal and high messages must always fit in the queue for this test to be exact"
    );
    flood.lockstep_many(messages, mostly_low).await;
    let end = flood.lockstep("high", "end").await;

    let (frames, ended) = flood.resume(Some("end")).await;
    assert!(
        ended.is_none(),
        "the stalled client was disconnected: {ended:?}"
    );
    let received: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "flood.message")
        .map(|f| f["offset"].as_u64().expect("an offset"))
        .collect();
    assert!(
        received.windows(2).all(|w| w[0] < w[1]),
        "offsets arrive in ascending order"
    );
    assert_eq!(received.last(), Some(&end));
    let received: BTreeSet<u64> = received.into_iter().collect();
    let missing: Vec<(u64, &str)> = flood
        .priorities
        .iter()
        .filter(|(offset, _)| !received.contains(offset))
        .map(|(offset, priority)| (*offset, *priority))
        .collect();
    assert!(
        !missing.is_empty(),
        "nothing was evicted: the flood did not overflow the stalled client's queue"
    );
    let not_low: Vec<_> = missing.iter().filter(|(_, p)| *p != "low").collect();
    assert!(
        not_low.is_empty(),
        "{} of {} missing messages are not low priority: {not_low:?}",
        not_low.len(),
        missing.len()
    );
    eprintln!(
        "{} messages published, {} low ones evicted for the stalled reader, every normal \
         and high one delivered",
        flood.priorities.len(),
        missing.len()
    );
}

#[tokio::test]
async fn a_critical_message_that_cannot_fit_closes_the_stalled_reader_with_4008() {
    let mut flood = Flood::start(&env()).await;
    // A fifth more than the send buffer, the write side and the queue can hold at most:
    // criticals are never evicted, so one of them cannot be queued. No more than that: the
    // server waits 2 s for the stalled client's close reply before dropping the socket, and
    // the client only starts reading once the last message is published, so what is
    // published after the overflow must take well under 2 s even on a loaded machine
    // (with twice the capacity it did not, and the close was lost to a reset).
    let messages = (6 * (max_send_buffer() + WRITE_SIDE_BYTES + OUTBOUND_MAX_BYTES)
        / (5 * FRAME_BYTES)) as usize;
    flood.lockstep_many(messages, |_| "critical").await;

    let (frames, ended) = flood.resume(None).await;
    match ended {
        Some(Incoming::Closed(Some(4008))) => {}
        other => panic!(
            "expected a close with 4008 after {} frames, got {other:?}",
            frames.len()
        ),
    }
    // Nothing was dropped silently before the close: what arrived has no gap.
    let offsets: Vec<u64> = frames
        .iter()
        .filter(|f| f["type"] == "flood.message")
        .map(|f| f["offset"].as_u64().expect("an offset"))
        .collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap among critical messages before the close"
    );
    assert!(
        offsets.len() < messages,
        "every critical message was delivered, so none overflowed"
    );
    // The other subscriber, in lockstep throughout, is still served.
    flood.lockstep("normal", "after-close").await;
}

#[tokio::test]
async fn a_stalled_reader_is_still_closed_by_the_idle_timeout() {
    // protocol.md: a connection from which no frame arrives within the idle timeout is
    // closed (4000). A client that stops reading answers no ping either.
    let mut env = env();
    env.extend([("IDLE_TIMEOUT_MS", "3000"), ("HEARTBEAT_MS", "1000")]);
    let mut flood = Flood::start(&env).await;
    let messages =
        (2 * (max_send_buffer() + WRITE_SIDE_BYTES + OUTBOUND_MAX_BYTES) / FRAME_BYTES) as usize;
    for _ in 0..messages / 10 {
        flood.lockstep_many(10, |_| "low").await;
        // The stalled client keeps writing while the flood fills its socket, so it is not
        // idle before its writer is blocked; it reads nothing.
        send_text(&mut flood.stalled, r#"{"type":"ping"}"#).await;
    }
    assert!(
        flood.server.metric("websocket_outbound_queue_depth").await > 0.0,
        "the stalled client's writer is blocked with frames queued"
    );
    // From now on the stalled client sends nothing, and only it is left.
    let Flood {
        server,
        publisher,
        fast,
        stalled,
        ..
    } = flood;
    drop((publisher, fast));
    let limit = std::time::Duration::from_secs(20);
    let closed = tokio::time::timeout(limit, async {
        loop {
            if server.connections().await == 0 {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let idle_closes = server
        .metric(r#"websocket_disconnections_by_reason_total{reason="idle_timeout"}"#)
        .await;
    drop(stalled);
    assert!(
        closed.is_ok(),
        "a stalled reader is still connected {limit:?} after it went silent, with a 3 s \
         idle timeout ({idle_closes} idle closes)"
    );
}

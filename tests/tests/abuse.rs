//! Abuse against the reference server running as a real process: each kind of abuse gets the
//! answer docs/protocol.md documents, and the server keeps serving everyone else.
//!
//! One canary client (subscribed, publishing and receiving its own messages) stays connected
//! for the whole file and must complete a publish → delivery round trip after every case,
//! while the abusive connections' slots are all released and a newcomer can still connect.
//! Nextest runs every test in its own process, so a canary that outlives all cases means one
//! test that runs the cases in turn; a failing case is reported by name and the others still
//! run.
//!
//! The server is configured for RS256 tokens, one allowed browser origin, a global cap of 40
//! connections and a rate limit of 2,500 frames a minute (so one connection can try thousands
//! of subscriptions); everything else keeps its documented default (10 connections per IP,
//! 64 KiB messages, 128 subscriptions per connection, a 10 s handshake timeout).

mod support_server;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use futures_util::{SinkExt as _, StreamExt as _};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use support_server::{
    Incoming, ServerProcess, WAIT, Ws, close_code, loopback, next_incoming, open, ping, recv_json,
    send_text, subscribe, tcp_from, try_open,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// `MAX_CONNECTIONS` for this file's server.
const GLOBAL_CAP: u64 = 40;
/// The documented default of `MAX_CONNECTIONS_PER_IP`.
const PER_IP_CAP: usize = 10;
/// The documented default `Retry-After` of a 429, in seconds.
const RETRY_AFTER: &str = "10";
/// `RATE_LIMIT_MAX_MESSAGES` (per the default 60 s window) for this file's server.
const RATE_LIMIT: usize = 2500;
/// The documented default of `MAX_MESSAGE_BYTES`.
const MAX_MESSAGE_BYTES: usize = 65536;
/// `HubConfig::max_subscriptions_per_connection`'s default (not a server setting).
const MAX_SUBSCRIPTIONS: usize = 128;
/// The documented JSON nesting limit, the frame's own object included.
const MAX_DEPTH: usize = 32;
/// The only browser origin allowed (`CORS_ORIGIN`).
const ORIGIN: &str = "https://app.example.com";
/// The transport's default handshake timeout; the server has no setting for it.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one case may take (the slowloris case waits out the handshake timeout).
const CASE_LIMIT: Duration = Duration::from_secs(60);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The RS256 key pair the server verifies tokens with.
struct Keys {
    private_pem: String,
    public_pem: String,
}

impl Keys {
    fn generate() -> Self {
        use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
        // 1024 bits: generating a 2048-bit key takes seconds in an unoptimised test build,
        // and the key's strength is not what these tests are about.
        let private =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).expect("an RSA key");
        Self {
            private_pem: private
                .to_pkcs8_pem(LineEnding::LF)
                .expect("PKCS#8 PEM")
                .to_string(),
            public_pem: private
                .to_public_key()
                .to_public_key_pem(LineEnding::LF)
                .expect("SPKI PEM"),
        }
    }

    /// A valid RS256 token with `claims`.
    fn sign(&self, claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            claims,
            &EncodingKey::from_rsa_pem(self.private_pem.as_bytes()).expect("an RSA PEM"),
        )
        .expect("a token")
    }

    /// A valid token for `sub`, good for ten minutes.
    fn token(&self, sub: &str) -> String {
        self.sign(&json!({"sub": sub, "exp": unix_now() + 600}))
    }
}

/// A JWT with an arbitrary header and no signature.
fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        base64_url(header.to_string().as_bytes()),
        base64_url(claims.to_string().as_bytes())
    )
}

fn base64_url(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A client that stays for the whole file: subscribed to `canary`, it publishes there and
/// must receive both the `ack` and its own message, at the same offset.
struct Canary {
    ws: Ws,
    sent: u64,
}

impl Canary {
    async fn round_trip(&mut self) {
        self.sent += 1;
        let id = format!("canary-{}", self.sent);
        send_text(
            &mut self.ws,
            &json!({"type": "canary.beat", "channel": "canary", "payload": {"n": self.sent}, "id": id})
                .to_string(),
        )
        .await;
        let (mut acked, mut delivered) = (None, None);
        // The ack and the delivery may come in either order; nothing else is expected.
        for _ in 0..2 {
            let frame = match next_incoming(&mut self.ws).await {
                Incoming::Frame(frame) => frame,
                other => panic!("the canary lost its connection: {other:?}"),
            };
            assert_eq!(
                frame["id"], id,
                "the canary got an unexpected frame: {frame}"
            );
            match frame["type"].as_str() {
                Some("ack") => acked = frame["offset"].as_u64(),
                Some("canary.beat") => {
                    assert_eq!(frame["payload"]["n"], self.sent, "{frame}");
                    delivered = frame["offset"].as_u64();
                }
                _ => panic!("the canary got an unexpected frame: {frame}"),
            }
        }
        assert!(acked.is_some(), "no ack for {id}");
        assert_eq!(acked, delivered, "ack and delivery of {id} disagree");
    }
}

struct Fixture {
    server: ServerProcess,
    keys: Keys,
    canary: tokio::sync::Mutex<Canary>,
    next_ip: AtomicU16,
    // Keeps the public key file alive for the server's lifetime.
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Self {
        let keys = Keys::generate();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let public_key = dir.path().join("jwt-public.pem");
        std::fs::write(&public_key, &keys.public_pem).expect("write the public key");
        let server = ServerProcess::start(&[
            (
                "AUTH_JWT_PUBLIC_KEY_PATH",
                public_key.to_str().expect("a UTF-8 path"),
            ),
            ("CORS_ORIGIN", ORIGIN),
            ("MAX_CONNECTIONS", &GLOBAL_CAP.to_string()),
            ("RATE_LIMIT_MAX_MESSAGES", &RATE_LIMIT.to_string()),
            // The per-user budget (covered by the transport's session_limits suite) would
            // answer the flood before the per-connection one this suite checks.
            ("RATE_LIMIT_USER_MAX_MESSAGES", "0"),
            ("RUST_LOG", "info,switchboard::audit=warn"),
        ])
        .await;
        let next_ip = AtomicU16::new(0);
        let canary_ip = loopback(1, 2);
        let mut ws = open(
            canary_ip,
            server.addr(),
            server.request(&format!("token={}", keys.token("canary"))),
        )
        .await;
        subscribe(&mut ws, "canary").await;
        Self {
            server,
            keys,
            canary: tokio::sync::Mutex::new(Canary { ws, sent: 0 }),
            next_ip,
            _dir: dir,
        }
    }

    /// A loopback address no other case has used (127.0.2.x and up; the canary has
    /// 127.0.1.2), so that per-IP caps never couple the cases.
    fn fresh_ip(&self) -> IpAddr {
        let n = self.next_ip.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (n / 250, n % 250);
        loopback(
            u8::try_from(2 + a).expect("fewer than 60,000 addresses"),
            u8::try_from(1 + b).expect("in range"),
        )
    }

    /// An upgrade request with a valid token.
    fn request(&self) -> Request {
        self.server
            .request(&format!("token={}", self.keys.token("user")))
    }

    /// Opens an authenticated connection from a fresh address.
    async fn client(&self) -> Ws {
        open(self.fresh_ip(), self.server.addr(), self.request()).await
    }

    async fn canary_round_trip(&self) {
        self.canary.lock().await.round_trip().await;
    }

    /// After a case: the process runs, the canary still works, every slot the case used is
    /// released, and a newcomer can connect and be answered.
    async fn still_serving(&self) {
        let state = std::fs::read_to_string(format!("/proc/{}/status", self.server.pid()))
            .unwrap_or_default();
        assert!(
            state
                .lines()
                .any(|l| l.starts_with("State:") && !l.contains('Z') && !l.contains('X')),
            "the server process is gone; its log:\n{}",
            self.server.log_tail()
        );
        self.canary_round_trip().await;
        self.server.wait_for_connections(1).await;
        let mut newcomer = self.client().await;
        ping(&mut newcomer, "newcomer").await;
        drop(newcomer);
        self.server.wait_for_connections(1).await;
    }
}

type Case = fn(Arc<Fixture>) -> BoxFuture<'static, ()>;

fn cases() -> Vec<(&'static str, Case)> {
    vec![
        (
            "a connection flood from one address is capped per IP (429 with Retry-After) while another address connects",
            |f| Box::pin(connection_flood_from_one_address(f)),
        ),
        (
            "the global connection cap answers 503 while established clients keep working",
            |f| Box::pin(global_connection_cap(f)),
        ),
        (
            "a message flood is answered rate_limited, then closed with 1008",
            |f| Box::pin(message_flood(f)),
        ),
        (
            "a message of exactly MAX_MESSAGE_BYTES is accepted and one byte more closes with 1009",
            |f| Box::pin(oversized_message(f)),
        ),
        ("invalid UTF-8 in a text frame closes with 1007", |f| {
            Box::pin(invalid_utf8(f))
        }),
        (
            "JSON nested deeper than 32 levels is a bad_request and the connection stays usable",
            |f| Box::pin(deep_nesting(f)),
        ),
        (
            "the bad_request for too-deep nesting carries the request's id",
            |f| Box::pin(deep_nesting_error_carries_the_id(f)),
        ),
        (
            "thousands of subscriptions on one connection stop at the 128-channel cap with bad_request",
            |f| Box::pin(thousands_of_channels(f)),
        ),
        (
            "slowloris handshakes are closed after the handshake timeout while others connect",
            |f| Box::pin(slowloris(f)),
        ),
        (
            "a binary frame is answered unsupported and the connection stays usable",
            |f| Box::pin(binary_frames(f)),
        ),
        (
            "invalid, server-only and malformed types are answered bad_request with their id",
            |f| Box::pin(invalid_and_server_only_types(f)),
        ),
        (
            "expired, forged, alg-none and HS256-confused tokens are refused with 401",
            |f| Box::pin(bad_tokens(f)),
        ),
        ("a spoofed Origin is refused with 403", |f| {
            Box::pin(spoofed_origin(f))
        }),
    ]
}

fn panic_text(err: tokio::task::JoinError) -> String {
    match err.try_into_panic() {
        Ok(panic) => panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into()),
        Err(err) => err.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_abuse_gets_its_documented_answer_while_a_canary_keeps_working() {
    let fixture = Arc::new(Fixture::start().await);
    fixture.still_serving().await;
    let mut failures = Vec::new();
    for (name, case) in cases() {
        let mut task = tokio::spawn(case(Arc::clone(&fixture)));
        match tokio::time::timeout(CASE_LIMIT, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => failures.push(format!("{name}: {}", panic_text(err))),
            Err(_) => {
                task.abort();
                failures.push(format!("{name}: not done within {CASE_LIMIT:?}"));
            }
        }
        // Whatever the case did, the server keeps serving everyone else.
        fixture.still_serving().await;
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n- {}\nserver log tail:\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n- "),
        fixture.server.log_tail()
    );
}

async fn connection_flood_from_one_address(f: Arc<Fixture>) {
    let flooder = f.fresh_ip();
    let mut held = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..PER_IP_CAP + 40 {
        match try_open(flooder, f.server.addr(), f.request(), None).await {
            Ok((ws, _)) => held.push(ws),
            Err(refusal) => refused.push(refusal),
        }
    }
    assert_eq!(
        held.len(),
        PER_IP_CAP,
        "connections accepted from one address"
    );
    assert_eq!(refused.len(), 40);
    for refusal in &refused {
        assert_eq!(refusal.status, 429, "{refusal:?}");
        assert_eq!(
            refusal.retry_after.as_deref(),
            Some(RETRY_AFTER),
            "{refusal:?}"
        );
        assert_eq!(
            refusal.error.as_deref(),
            Some("rate_limited"),
            "{refusal:?}"
        );
    }
    for ws in &mut held {
        assert_eq!(recv_json(ws).await["type"], "welcome");
    }

    // Meanwhile another loopback address connects, and the canary keeps working.
    let mut other = f.client().await;
    ping(&mut other, "other-address").await;
    f.canary_round_trip().await;

    // The cap counts concurrent connections: once they are gone, the address may connect.
    drop(held);
    drop(other);
    f.server.wait_for_connections(1).await;
    let mut again = open(flooder, f.server.addr(), f.request()).await;
    ping(&mut again, "again").await;
}

async fn global_connection_cap(f: Arc<Fixture>) {
    f.server.wait_for_connections(1).await;
    let mut held = Vec::new();
    // Four per address: the per-IP cap is never what refuses.
    while (held.len() as u64) < GLOBAL_CAP - 1 {
        let from = f.fresh_ip();
        for _ in 0..4 {
            if (held.len() as u64) < GLOBAL_CAP - 1 {
                held.push(open(from, f.server.addr(), f.request()).await);
            }
        }
    }
    assert_eq!(f.server.connections().await, GLOBAL_CAP);
    for _ in 0..3 {
        let refusal = try_open(f.fresh_ip(), f.server.addr(), f.request(), None)
            .await
            .expect_err("the global cap refuses a new connection");
        assert_eq!(refusal.status, 503, "{refusal:?}");
        assert_eq!(refusal.error.as_deref(), Some("unavailable"), "{refusal:?}");
    }
    // Established connections keep working at the cap.
    f.canary_round_trip().await;
    ping(&mut held[0], "at-the-cap").await;
}

async fn message_flood(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    let frame = |i: usize| {
        Message::text(format!(
            r#"{{"type":"flood.message","channel":"flood","payload":{i},"id":"f{i}"}}"#
        ))
    };
    // A burst past the bucket: what exceeds RATE_LIMIT is refused.
    let mut sent = RATE_LIMIT + 100;
    for i in 0..sent {
        ws.feed(frame(i)).await.expect("the connection is open");
    }
    ws.flush().await.expect("flushed");
    // Every frame is answered in order, with an ack or a rate_limited error. Once the burst
    // is answered, frames go one at a time, so that none is in flight when the server closes
    // (a socket closed with unread data is reset, which can lose the close frame).
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..4 * RATE_LIMIT {
        match next_incoming(&mut ws).await {
            Incoming::Frame(answer) => {
                assert_eq!(answer["id"], format!("f{answered}"), "{answer}");
                if answer["type"] != "ack" {
                    assert_eq!(answer["code"], "rate_limited", "{answer}");
                    assert_eq!(answer["rateLimited"], true, "{answer}");
                    assert!(
                        answer["retryAfterMs"].as_u64().is_some_and(|ms| ms > 0),
                        "{answer}"
                    );
                    refused += 1;
                }
                answered += 1;
                // More refusals within the window than the bucket's capacity close the
                // connection: nothing more is sent after that one.
                if answered == sent && refused <= RATE_LIMIT {
                    ws.send(frame(sent)).await.expect("the connection is open");
                    sent += 1;
                }
            }
            Incoming::Closed(code) => {
                assert_eq!(code, Some(1008), "after {refused} refusals");
                assert_eq!(refused, RATE_LIMIT + 1, "closed after {refused} refusals");
                return;
            }
            Incoming::Dropped(why) => {
                panic!("dropped without a close frame after {refused} refusals: {why}")
            }
        }
    }
    panic!("still open after {refused} refusals");
}

/// A publish frame of exactly `len` bytes.
fn frame_of_len(len: usize, id: &str) -> String {
    let head = format!(r#"{{"type":"big.message","channel":"big","id":"{id}","payload":""#);
    let tail = r#""}"#;
    format!("{head}{}{tail}", "a".repeat(len - head.len() - tail.len()))
}

async fn oversized_message(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    let at_limit = frame_of_len(MAX_MESSAGE_BYTES, "at-limit");
    assert_eq!(at_limit.len(), MAX_MESSAGE_BYTES);
    send_text(&mut ws, &at_limit).await;
    let ack = recv_json(&mut ws).await;
    assert_eq!(
        (&ack["type"], &ack["id"]),
        (&json!("ack"), &json!("at-limit")),
        "{ack}"
    );
    send_text(&mut ws, &frame_of_len(MAX_MESSAGE_BYTES + 1, "over")).await;
    assert_eq!(close_code(&mut ws).await, Ok(1009));
}

async fn invalid_utf8(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    // A text frame whose payload is not UTF-8 (RFC 6455 section 8.1: fail the connection;
    // section 7.4.1: 1007 is the code for data inconsistent with the message type).
    let payload = b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}".to_vec();
    tokio::time::timeout(
        WAIT,
        ws.send(Message::Frame(Frame::message(
            payload,
            OpCode::Data(Data::Text),
            true,
        ))),
    )
    .await
    .expect("sent in time")
    .expect("sent");
    assert_eq!(close_code(&mut ws).await, Ok(1007));
}

/// A publish whose frame nests `depth` levels of arrays/objects, the frame's own included.
fn nested(depth: usize, id: &str) -> String {
    let inner = depth - 1;
    format!(
        r#"{{"type":"deep.message","channel":"deep","id":"{id}","payload":{}{}}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    )
}

async fn deep_nesting(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    send_text(&mut ws, &nested(MAX_DEPTH, "at-limit")).await;
    let ack = recv_json(&mut ws).await;
    assert_eq!(
        (&ack["type"], &ack["id"]),
        (&json!("ack"), &json!("at-limit")),
        "{ack}"
    );

    send_text(&mut ws, &nested(MAX_DEPTH + 1, "too-deep")).await;
    let err = recv_json(&mut ws).await;
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "bad_request", "{err}");

    // Nesting as deep as a maximal message allows: refused before any recursive parse, so
    // it cannot exhaust the server's stack.
    let levels = (MAX_MESSAGE_BYTES - 100) / 2;
    send_text(
        &mut ws,
        &format!(
            r#"{{"type":"deep.message","channel":"deep","payload":{}{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        ),
    )
    .await;
    let err = recv_json(&mut ws).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    ping(&mut ws, "after-nesting").await;
}

async fn deep_nesting_error_carries_the_id(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    send_text(&mut ws, &nested(MAX_DEPTH + 1, "too-deep")).await;
    let err = recv_json(&mut ws).await;
    assert_eq!(err["code"], "bad_request", "{err}");
    assert_eq!(
        err["id"], "too-deep",
        "protocol.md: an error that answers a request carries that request's id; got {err}"
    );
}

async fn thousands_of_channels(f: Arc<Fixture>) {
    const ATTEMPTS: usize = 2000;
    let ws = f.client().await;
    let (mut sink, mut stream) = ws.split();
    let reader = tokio::spawn(async move {
        let mut answers = Vec::with_capacity(ATTEMPTS);
        while answers.len() < ATTEMPTS {
            match tokio::time::timeout(WAIT, stream.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    answers.push(serde_json::from_str::<Value>(&text).expect("JSON"));
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                other => panic!("expected an answer, got {other:?}"),
            }
        }
        (answers, stream)
    });
    for i in 0..ATTEMPTS {
        let frame =
            json!({"type": "subscribe", "channel": format!("many:{i}"), "id": format!("s{i}")});
        sink.feed(Message::text(frame.to_string()))
            .await
            .expect("the connection is open");
    }
    sink.flush().await.expect("flushed");
    let (answers, stream) = tokio::time::timeout(WAIT, reader)
        .await
        .expect("every subscribe answered in time")
        .expect("the reader succeeds");
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(
            answer["id"],
            format!("s{i}"),
            "answers come in order: {answer}"
        );
        if i < MAX_SUBSCRIPTIONS {
            assert_eq!(answer["type"], "subscribed", "{answer}");
        } else {
            assert_eq!(answer["code"], "bad_request", "{answer}");
            assert!(
                answer["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("at most 128 channels")),
                "{answer}"
            );
        }
    }
    // The cap counts current subscriptions: unsubscribing makes room.
    let mut ws = sink.reunite(stream).expect("the two halves of one stream");
    send_text(
        &mut ws,
        r#"{"type":"unsubscribe","channel":"many:0","id":"u"}"#,
    )
    .await;
    assert_eq!(recv_json(&mut ws).await["type"], "unsubscribed");
    assert_eq!(subscribe(&mut ws, "many:again").await["type"], "subscribed");
}

async fn slowloris(f: Arc<Fixture>) {
    const SOCKETS: usize = 150;
    // Every socket from one address: connections that never upgrade are not counted by the
    // per-IP cap, so only the handshake timeout protects the server from them.
    let from = f.fresh_ip();
    let mut sockets = Vec::with_capacity(SOCKETS);
    for i in 0..SOCKETS {
        let mut socket = tcp_from(from, f.server.addr(), None).await;
        match i % 3 {
            // Connects and says nothing.
            0 => {}
            // Stops in the middle of the request line.
            1 => socket.write_all(b"GET /ws?tok").await.expect("write"),
            // Sends most of an upgrade request, never the blank line that ends it.
            _ => socket
                .write_all(
                    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                      Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
                )
                .await
                .expect("write"),
        }
        sockets.push(socket);
    }
    // One more trickles a header, a byte at a time, for longer than the timeout.
    let mut trickler = tcp_from(from, f.server.addr(), None).await;
    let trickle = tokio::spawn(async move {
        let header = b"GET /ws HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 400].iter());
        for byte in header {
            if trickler.write_all(&[*byte]).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });

    // While they stall, everyone else is served.
    let mut client = f.client().await;
    ping(&mut client, "during-slowloris").await;
    f.canary_round_trip().await;

    // Each is closed by the server without an upgrade, once the timeout has passed.
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT + Duration::from_secs(20);
    for (i, socket) in sockets.iter_mut().enumerate() {
        let mut received = Vec::new();
        let outcome = tokio::time::timeout_at(deadline, socket.read_to_end(&mut received)).await;
        assert!(
            outcome.is_ok(),
            "slowloris socket {i} still open 20 s after the handshake timeout"
        );
        assert!(
            !String::from_utf8_lossy(&received).contains(" 101 "),
            "socket {i} was upgraded: {}",
            String::from_utf8_lossy(&received)
        );
    }
    let cut_off = tokio::time::timeout_at(deadline, trickle)
        .await
        .expect("the trickling socket is cut off in time")
        .expect("the trickle task succeeds");
    assert!(cut_off, "the trickling socket was never cut off");
}

async fn binary_frames(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    tokio::time::timeout(WAIT, ws.send(Message::binary(vec![0x7b, 0x7d, 0xff])))
        .await
        .expect("sent in time")
        .expect("sent");
    let err = recv_json(&mut ws).await;
    assert_eq!(
        (&err["type"], &err["code"]),
        (&json!("error"), &json!("unsupported")),
        "{err}"
    );
    ping(&mut ws, "after-binary").await;
}

async fn invalid_and_server_only_types(f: Arc<Fixture>) {
    let mut ws = f.client().await;
    let mut frames = vec![
        (
            "empty",
            json!({"type": "", "channel": "types", "payload": 1}),
        ),
        (
            "space",
            json!({"type": "has space", "channel": "types", "payload": 1}),
        ),
        (
            "number",
            json!({"type": 42, "channel": "types", "payload": 1}),
        ),
        ("missing", json!({"channel": "types", "payload": 1})),
        (
            "long",
            json!({"type": "t".repeat(129), "channel": "types", "payload": 1}),
        ),
        ("no-channel", json!({"type": "made.up", "payload": 1})),
        ("no-payload", json!({"type": "made.up", "channel": "types"})),
        (
            "bad-channel",
            json!({"type": "made.up", "channel": "no spaces", "payload": 1}),
        ),
    ];
    for server_only in [
        "welcome",
        "subscribed",
        "unsubscribed",
        "ack",
        "pong",
        "error",
    ] {
        frames.push((
            server_only,
            json!({"type": server_only, "channel": "types", "payload": 1}),
        ));
    }
    for (id, mut frame) in frames {
        frame["id"] = json!(id);
        send_text(&mut ws, &frame.to_string()).await;
        let err = recv_json(&mut ws).await;
        assert_eq!(
            (&err["type"], &err["code"], &err["id"]),
            (&json!("error"), &json!("bad_request"), &json!(id)),
            "{frame} was answered {err}"
        );
    }
    // Frames that are not a JSON object cannot carry an id, but are still answered.
    for text in ["[1,2,3]", "\"subscribe\"", "not json", "{\"type\":", ""] {
        send_text(&mut ws, text).await;
        let err = recv_json(&mut ws).await;
        assert_eq!(err["code"], "bad_request", "{text:?} was answered {err}");
    }
    // An unknown but well-formed type is an application event, delivered like any other.
    send_text(
        &mut ws,
        r#"{"type":"made.up","channel":"types","payload":1,"id":"ok"}"#,
    )
    .await;
    let ack = recv_json(&mut ws).await;
    assert_eq!(
        (&ack["type"], &ack["id"]),
        (&json!("ack"), &json!("ok")),
        "{ack}"
    );
}

async fn bad_tokens(f: Arc<Fixture>) {
    let status = |request: Request| {
        let f = Arc::clone(&f);
        async move {
            match try_open(f.fresh_ip(), f.server.addr(), request, None).await {
                Ok(_) => (101, None),
                Err(refusal) => (refusal.status, refusal.error),
            }
        }
    };
    let with_token = |token: &str| f.server.request(&format!("token={token}"));
    let now = unix_now();

    // Controls: a valid token, and one expired within the 30 s leeway.
    assert_eq!(status(with_token(&f.keys.token("u"))).await.0, 101);
    let within_leeway = f.keys.sign(&json!({"sub": "u", "exp": now - 10}));
    assert_eq!(status(with_token(&within_leeway)).await.0, 101);

    let valid = f.keys.token("u");
    let mut parts = valid.split('.');
    let (header, _, signature) = (
        parts.next().expect("a header"),
        parts.next().expect("claims"),
        parts.next().expect("a signature"),
    );
    let admin_claims = base64_url(
        json!({"sub": "admin", "exp": now + 600})
            .to_string()
            .as_bytes(),
    );
    let hs256_with_public_key = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "admin", "exp": now + 600}),
        &EncodingKey::from_secret(f.keys.public_pem.as_bytes()),
    )
    .expect("a token");
    let es256_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("a key");
    let es256 = jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &json!({"sub": "admin", "exp": now + 600}),
        &EncodingKey::from_ec_pem(es256_key.serialize_pem().as_bytes()).expect("an EC PEM"),
    )
    .expect("a token");
    let claims = json!({"sub": "admin", "exp": now + 600});
    let refused: Vec<(&str, Request)> = vec![
        ("missing", f.server.request("")),
        (
            "expired beyond the leeway",
            with_token(&f.keys.sign(&json!({"sub": "u", "exp": now - 120}))),
        ),
        (
            "without exp",
            with_token(&f.keys.sign(&json!({"sub": "u"}))),
        ),
        (
            "forged claims under a real signature",
            with_token(&format!("{header}.{admin_claims}.{signature}")),
        ),
        (
            "alg none",
            with_token(&unsigned(&json!({"alg": "none", "typ": "JWT"}), &claims)),
        ),
        (
            "alg None",
            with_token(&unsigned(&json!({"alg": "None", "typ": "JWT"}), &claims)),
        ),
        (
            "alg none with the real signature",
            with_token(&format!(
                "{}.{admin_claims}.{signature}",
                base64_url(br#"{"alg":"none","typ":"JWT"}"#)
            )),
        ),
        (
            "HS256 signed with the RS256 public key",
            with_token(&hs256_with_public_key),
        ),
        ("ES256 from another key", with_token(&es256)),
        ("not a JWT", with_token("not.a.jwt")),
        ("forged, as a bearer header", {
            let mut request = f.server.request("");
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {header}.{admin_claims}.{signature}")
                    .parse()
                    .expect("a header value"),
            );
            request
        }),
    ];
    for (name, request) in refused {
        let (code, error) = status(request).await;
        assert_eq!(code, 401, "{name}: answered {code}");
        assert_eq!(error.as_deref(), Some("unauthorized"), "{name}");
    }
}

async fn spoofed_origin(f: Arc<Fixture>) {
    let with_origin = |origin: &str, token: bool| {
        let mut request = if token {
            f.request()
        } else {
            f.server.request("")
        };
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("a header value"));
        request
    };
    for origin in [
        "https://evil.example.com",
        "https://app.example.com.evil.example",
        "http://app.example.com",
        "null",
    ] {
        let refusal = try_open(
            f.fresh_ip(),
            f.server.addr(),
            with_origin(origin, true),
            None,
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("origin {origin} was accepted"));
        assert_eq!(refusal.status, 403, "{origin}: {refusal:?}");
        assert_eq!(refusal.error.as_deref(), Some("forbidden"), "{origin}");
    }
    // The origin is checked before the token.
    let refusal = try_open(
        f.fresh_ip(),
        f.server.addr(),
        with_origin("https://evil.example.com", false),
        None,
    )
    .await
    .expect_err("refused");
    assert_eq!(refusal.status, 403, "{refusal:?}");
    // The allowed origin, and non-browser clients without an Origin, connect.
    let mut allowed = open(f.fresh_ip(), f.server.addr(), with_origin(ORIGIN, true)).await;
    ping(&mut allowed, "allowed-origin").await;
}

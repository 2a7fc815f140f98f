//! Rate limits, message size, idle timeout, slow consumers and shutdown.

mod support;

use std::num::NonZeroUsize;
use std::time::Duration;

use futures_util::SinkExt;
use support::Server;
use switchboard_transport::{Authenticator, TransportConfig};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn rate_limit_rejects_the_101st_message_in_a_minute_but_never_pings() {
    let server = Server::open().await;
    let mut c = server.connect().await;
    for i in 0..100 {
        c.send(&format!(
            r#"{{"type":"t","channel":"c","payload":{i},"id":"m{i}"}}"#
        ))
        .await;
    }
    for i in 0..100 {
        let ack = c.recv().await;
        assert_eq!(ack["type"], "ack", "message {i} was not accepted: {ack}");
        assert_eq!(ack["id"], format!("m{i}"));
    }
    c.send(r#"{"type":"t","channel":"c","payload":0,"id":"m100"}"#)
        .await;
    let err = c.recv().await;
    assert_eq!(err["code"], "rate_limited");
    assert_eq!(err["rateLimited"], true);
    assert_eq!(err["id"], "m100");
    let retry = err["retryAfterMs"].as_u64().unwrap();
    assert!(
        (1..=600).contains(&retry),
        "one token refills every 600 ms, got {retry}"
    );

    // Small pings are never throttled...
    for i in 0..20 {
        c.send(&format!(r#"{{"type":"ping","id":"p{i}"}}"#)).await;
        let pong = c.recv().await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }
    // ...up to 512 bytes of frame; a larger one is charged like any frame.
    let ping_of = |len: usize, id: &str| {
        let frame = format!(r#"{{"type":"ping","id":"{id}","pad":""}}"#);
        format!(
            r#"{{"type":"ping","id":"{id}","pad":"{}"}}"#,
            "x".repeat(len - frame.len())
        )
    };
    c.send(&ping_of(512, "at-limit")).await;
    assert_eq!(c.recv().await["type"], "pong");
    c.send(&ping_of(513, "over")).await;
    let err = c.recv().await;
    assert_eq!(
        (err["code"].as_str(), err["id"].as_str()),
        (Some("rate_limited"), Some("over"))
    );
}

#[tokio::test]
async fn large_pings_spend_the_message_budget() {
    // 100 messages, regained one an hour: sending 6 MB of pings takes long enough on a loaded
    // machine for the default quota (100 a minute) to regain one meanwhile.
    let server = Server::start(
        TransportConfig::default().rate_limit(
            switchboard_limiter::Quota::new(100, 1, Duration::from_secs(3600)).unwrap(),
        ),
        Authenticator::open(),
    )
    .await;
    let mut c = server.connect().await;
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(60_000));
    for i in 0..100 {
        c.send(&big).await;
        assert_eq!(c.recv().await["type"], "pong", "ping {i}");
    }
    c.send(r#"{"type":"t","channel":"c","payload":0,"id":"m"}"#)
        .await;
    let err = c.recv().await;
    assert_eq!(
        (err["code"].as_str(), err["id"].as_str()),
        (Some("rate_limited"), Some("m"))
    );
}

#[tokio::test]
async fn sustained_abuse_closes_with_1008() {
    let server = Server::open().await;
    let mut c = server.connect().await;
    // 100 accepted, then more than 100 refused within the minute.
    for i in 0..202 {
        if c.ws
            .send(Message::text(format!(
                r#"{{"type":"t","channel":"c","payload":{i}}}"#
            )))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(c.closed_with().await, 1008);
}

#[tokio::test]
async fn a_message_at_the_limit_is_accepted_and_one_byte_more_closes_with_1009() {
    let server = Server::start(
        TransportConfig::default().max_message_bytes(1024),
        Authenticator::open(),
    )
    .await;
    let mut c = server.connect().await;
    let frame = |len: usize| {
        let head = r#"{"type":"t","channel":"c","id":"x","payload":""#;
        let tail = r#""}"#;
        format!("{head}{}{tail}", "a".repeat(len - head.len() - tail.len()))
    };
    c.send(&frame(1024)).await;
    assert_eq!(c.recv().await["type"], "ack");
    c.send(&frame(1025)).await;
    assert_eq!(c.closed_with().await, 1009);
}

#[tokio::test]
async fn an_idle_connection_is_closed_with_4000() {
    let server = Server::start(
        TransportConfig::default()
            .idle_timeout(Duration::from_millis(300))
            .heartbeat(Duration::from_secs(3600)),
        Authenticator::open(),
    )
    .await;
    let mut c = server.connect().await;
    assert_eq!(c.closed_within(Duration::from_secs(3)).await, 4000);
}

#[tokio::test]
async fn a_client_that_keeps_sending_outlives_many_idle_timeouts_then_idles_out() {
    // No heartbeat to hide behind: the idle deadline is the session's earliest, and every
    // frame moves it. The session does not re-arm its timer per frame; a timer that fires at
    // a deadline since moved must re-arm, not close.
    let idle = Duration::from_millis(200);
    let server = Server::start(
        TransportConfig::default()
            .idle_timeout(idle)
            .heartbeat(Duration::from_secs(3600)),
        Authenticator::open(),
    )
    .await;
    let mut c = server.connect().await;
    let started = tokio::time::Instant::now();
    let mut every = tokio::time::interval(idle / 4);
    for n in 0..16 {
        every.tick().await;
        c.send(&format!(r#"{{"type":"ping","id":"p{n}"}}"#)).await;
        assert_eq!(c.recv_of("pong").await["id"], format!("p{n}"));
    }
    assert!(
        started.elapsed() >= idle * 3,
        "the idle timeout passed three times over"
    );
    // Silent from here: closed for idleness.
    assert_eq!(c.closed_within(Duration::from_secs(3)).await, 4000);
}

#[tokio::test]
async fn a_slow_consumer_loses_low_priority_first_and_a_critical_overflow_closes_with_4008() {
    let server = Server::start(
        TransportConfig::default().outbound_capacity(NonZeroUsize::new(4).unwrap()),
        Authenticator::open(),
    )
    .await;
    let mut slow = server.connect().await;
    slow.subscribe("c").await;
    // Fill the slow client's socket buffers, then its queue, from the server side without
    // it reading: 400 × 60 KB is more than loopback's socket buffers hold, so the frames
    // written straight to the socket stop being taken and the rest must queue.
    let hub = server.transport.hub().clone();
    let channel = switchboard_protocol::ChannelName::new("c").unwrap();
    let event = switchboard_protocol::EventType::new("t").unwrap();
    for _ in 0..400 {
        let msg = switchboard_hub::ServerMessage::new(
            channel.clone(),
            event.clone(),
            switchboard_protocol::Payload::from_json(&format!("\"{}\"", "x".repeat(60_000)))
                .unwrap(),
        )
        .with_priority(switchboard_protocol::Priority::Critical);
        hub.publish(msg).await.unwrap();
    }
    assert_eq!(slow.closed_with().await, 4008);
}

#[tokio::test]
async fn shutdown_closes_every_session_with_1001_within_the_drain_window() {
    let server = Server::start(
        TransportConfig::default().drain_window(Duration::from_millis(200)),
        Authenticator::open(),
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(server.connect().await);
    }
    let transport = server.transport.clone();
    let done = tokio::spawn(async move { transport.shutdown(Duration::from_secs(5)).await });
    for c in &mut clients {
        assert_eq!(c.closed_with().await, 1001);
    }
    assert!(done.await.unwrap(), "sessions did not end in time");
    assert_eq!(server.transport.connection_count(), 0);
}

/// Publishes `count` messages on `c`; returns how many were acknowledged (the rest were
/// answered `rate_limited`).
async fn acked_of(c: &mut support::Client, count: usize) -> usize {
    let mut acked = 0;
    for i in 0..count {
        c.send(&format!(
            r#"{{"type":"t","channel":"c","payload":{i},"id":"m{i}"}}"#
        ))
        .await;
        let answer = c.recv().await;
        match answer["type"].as_str() {
            Some("ack") => acked += 1,
            _ => assert_eq!(answer["code"], "rate_limited", "{answer}"),
        }
    }
    acked
}

#[tokio::test]
async fn the_user_budget_survives_reconnects_and_is_per_user_or_per_address() {
    use switchboard_limiter::Quota;
    // Refills too slow to matter within the test: the counts are exact.
    let hour = Duration::from_secs(3600);
    let config = TransportConfig::default()
        .rate_limit(Quota::new(100, 1, hour).unwrap())
        .user_rate_limit(Some(Quota::new(150, 1, hour).unwrap()));
    let server = Server::start(config.clone(), support::jwt_verifier()).await;
    let token_of = |sub: &str| {
        support::token(&serde_json::json!({"sub": sub, "exp": support::unix_now() + 600}))
    };
    let url_of = |sub: &str| format!("{}?token={}", server.url(), token_of(sub));

    // 100 on the first connection (its own budget), then a reconnect: the user has 50 left.
    let mut first = support::Client::connect(&url_of("u")).await;
    assert_eq!(acked_of(&mut first, 100).await, 100);
    drop(first);
    let mut again = support::Client::connect(&url_of("u")).await;
    assert_eq!(
        acked_of(&mut again, 60).await,
        50,
        "reconnecting does not refill the user's budget"
    );
    // Another user is not affected.
    let mut other = support::Client::connect(&url_of("v")).await;
    assert_eq!(acked_of(&mut other, 10).await, 10);

    // Without a user (open mode), the client address is the key.
    let open = Server::start(config, Authenticator::open()).await;
    let mut a = open.connect().await;
    assert_eq!(acked_of(&mut a, 100).await, 100);
    let mut b = open.connect().await;
    assert_eq!(acked_of(&mut b, 60).await, 50);
}

#[tokio::test]
async fn a_frame_that_breaks_the_protocol_closes_with_1002_and_others_keep_going() {
    use tokio::io::AsyncWriteExt;
    let server = Server::open().await;
    let mut bystander = server.connect().await;
    bystander.subscribe("c").await;
    let mut c = server.connect().await;
    // An unmasked text frame: a client must mask every frame (RFC 6455 §5.1).
    c.ws.get_mut()
        .write_all(&[0x81, 0x02, b'h', b'i'])
        .await
        .unwrap();
    assert_eq!(c.closed_with().await, 1002);
    // The rest of the server is untouched.
    bystander.send(r#"{"type":"ping","id":"p"}"#).await;
    assert_eq!(bystander.recv_of("pong").await["id"], "p");
}

#[tokio::test]
async fn the_server_pings_every_heartbeat_and_a_client_that_only_answers_is_not_idle() {
    use futures_util::StreamExt;
    // Pongs are frames (docs/protocol.md, close code 4000): a client that only answers the
    // server's pings is never closed for idleness, however often the idle timeout passes.
    let heartbeat = Duration::from_millis(50);
    let idle = Duration::from_millis(200);
    let server = Server::start(
        TransportConfig::default()
            .heartbeat(heartbeat)
            .idle_timeout(idle),
        Authenticator::open(),
    )
    .await;
    let mut c = server.connect().await;
    let started = tokio::time::Instant::now();
    // tungstenite answers each ping as it reads.
    for _ in 0..12 {
        match tokio::time::timeout(support::WAIT, c.ws.next())
            .await
            .expect("a ping within 5 s")
        {
            Some(Ok(Message::Ping(payload))) => assert!(payload.is_empty()),
            Some(Ok(Message::Close(frame))) => {
                panic!("closed although every ping was answered: {frame:?}")
            }
            other => panic!("expected only pings, got {other:?}"),
        }
    }
    // Never faster than the heartbeat; so the idle timeout passed about three times over.
    assert!(started.elapsed() >= heartbeat * 11);
    c.send(r#"{"type":"ping","id":"alive"}"#).await;
    assert_eq!(c.recv_of("pong").await["id"], "alive");
}

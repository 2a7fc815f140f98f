//! Starting and stopping: the startup log, graceful drains in-process and on SIGTERM.

mod support;

use std::time::Duration;

use support::{Binary, close_code, connect, get, start, subscribe, test_config};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;

#[tokio::test]
async fn with_no_configuration_the_binary_states_its_defaults_in_the_startup_log() {
    // PORT=0 only so the test never collides with a running server; the rest is default.
    let mut binary = Binary::spawn(&[("PORT", "0")], &[]);
    binary
        .wait_for_line("single instance mode (memory backplane)")
        .await;
    binary.wait_for_line("TLS disabled").await;
    binary.wait_for_line("auth: open mode").await;
    let line = binary.wait_for_line("listening on ").await;
    assert!(line.contains("listening on ws://127.0.0.1:"), "{line}");
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_closes_websockets_with_1001_and_exits_0() {
    let mut binary = Binary::spawn(
        &[
            ("PORT", "0"),
            ("DRAIN_WINDOW_MS", "200"),
            ("SHUTDOWN_TIMEOUT_MS", "5000"),
        ],
        &[],
    );
    let addr = binary.listening().await;
    let (mut first, _) = connect(&format!("ws://{addr}/ws")).await;
    let (mut second, _) = connect(&format!("ws://{addr}/ws")).await;
    subscribe(&mut first, "room").await;

    binary.terminate();
    assert_eq!(close_code(&mut first).await, 1001);
    assert_eq!(close_code(&mut second).await, 1001);
    binary.wait_for_line("shutting down").await;
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("shut down"), "{output}");
}

#[tokio::test]
async fn shutdown_closes_every_websocket_with_1001_and_stops_listening() {
    let server = start(test_config().drain_window(Duration::from_millis(100))).await;
    let addr = server.local_addr();
    let (mut ws, _) = connect(&server.ws_url()).await;
    let drained = tokio::spawn(server.shutdown());
    assert_eq!(close_code(&mut ws).await, 1001);
    assert!(drained.await.unwrap(), "everything drained in time");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

/// The most of `times` (sorted) that fall within any one `span`.
fn most_closes_within(times: &[Instant], span: Duration) -> usize {
    times
        .iter()
        .enumerate()
        .map(|(i, start)| {
            times[i..]
                .iter()
                .take_while(|t| **t - *start <= span)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_spreads_the_1001_closes_over_the_drain_window_while_ready_answers_503() {
    const CONNECTIONS: usize = 60;
    const WINDOW: Duration = Duration::from_secs(4);
    let server = start(
        test_config()
            .drain_window(WINDOW)
            .shutdown_timeout(Duration::from_secs(20))
            .max_connections_per_ip(None),
    )
    .await;
    let addr = server.local_addr();
    let ws_url = server.ws_url();
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        sockets.push(connect(&ws_url).await.0);
    }
    // Each socket waits for its close frame (at most `support::WAIT`) and notes when it came.
    let mut closes = tokio::task::JoinSet::new();
    for mut ws in sockets {
        closes.spawn(async move {
            let code = close_code(&mut ws).await;
            (Instant::now(), code)
        });
    }

    let shutdown = tokio::spawn(server.shutdown());
    let first = closes.join_next().await.unwrap().unwrap();

    // Draining: the closes have begun and the window is not over.
    let ready = get(addr, "/ready").await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["status"], "draining");
    let health = get(addr, "/health").await;
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    let upgrade = tokio::time::timeout(
        support::WAIT,
        tokio_tungstenite::connect_async(ws_url.as_str()),
    );
    match upgrade.await.expect("an answer in time") {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a new WebSocket during the drain is refused with 503: {other:?}"),
    }
    assert!(
        !shutdown.is_finished(),
        "the probes ran while connections were still draining"
    );

    let mut times = vec![first.0];
    let mut codes = vec![first.1];
    while let Some(close) = closes.join_next().await {
        let (at, code) = close.unwrap();
        times.push(at);
        codes.push(code);
    }
    assert!(shutdown.await.unwrap(), "everything drained in time");
    assert!(codes.iter().all(|code| *code == 1001), "{codes:?}");
    assert_eq!(codes.len(), CONNECTIONS);
    times.sort_unstable();
    // 60 random moments in the window span almost all of it (less than half: p < 1e-15);
    // only a burst, or a machine stalled for half the window, spans less.
    let spread = times[CONNECTIONS - 1] - times[0];
    assert!(
        spread >= WINDOW / 2,
        "the closes are spread over the {WINDOW:?} window, not {spread:?}"
    );
    // Spread at random over the window, 60 closes put about 6 in each tenth of it; half of
    // them in one tenth is a burst (or a machine stalled for most of the window).
    let burst = most_closes_within(&times, WINDOW / 10);
    assert!(
        burst <= CONNECTIONS / 2,
        "{burst} of {CONNECTIONS} closes came within {:?}",
        WINDOW / 10
    );
}

#[tokio::test]
async fn a_port_in_use_is_a_startup_failure_naming_the_address() {
    let taken = start(test_config()).await;
    let err = switchboard_server::Server::bind(test_config().port(taken.local_addr().port()))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 1);
    assert!(
        err.to_string().contains(&format!(
            "cannot listen on 127.0.0.1:{}",
            taken.local_addr().port()
        )),
        "{err}"
    );
    // The first server is unaffected.
    assert_eq!(get(taken.local_addr(), "/health").await.status, 200);
}

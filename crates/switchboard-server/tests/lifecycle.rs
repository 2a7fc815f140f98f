//! Starting and stopping: the startup log, graceful drains in-process and on SIGTERM.

mod support;

use std::time::Duration;

use support::{Binary, close_code, connect, get, start, subscribe, test_config};

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

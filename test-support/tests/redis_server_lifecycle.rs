//! The Redis helper really starts, crashes, freezes and restarts a server.

use switchboard_test_support::RedisServer;

#[test]
fn spawned_server_answers_and_is_gone_after_drop() {
    let server = RedisServer::spawn();
    assert!(server.is_up());
    assert!(server.url().starts_with("redis://127.0.0.1:"));
    let addr = server.addr();
    drop(server);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "server still listening after drop"
    );
}

#[test]
fn killed_server_loses_its_data_and_restarts_on_the_same_port() {
    let mut server = RedisServer::spawn();
    assert!(
        server
            .command(&["SET", "k", "v"])
            .unwrap()
            .starts_with("+OK")
    );
    let port = server.port();
    server.kill().unwrap();
    assert!(!server.is_up());
    server.restart().unwrap();
    assert_eq!(server.port(), port);
    assert!(server.is_up());
    // Nothing is persisted: a crash loses history, which is what epoch tests need.
    assert_eq!(server.command(&["GET", "k"]).unwrap(), "$-1\r\n");
}

#[test]
fn paused_server_does_not_answer_until_resumed() {
    let server = RedisServer::spawn();
    server.pause().unwrap();
    assert!(!server.is_up(), "a SIGSTOPped server answered");
    server.resume().unwrap();
    assert!(server.is_up());
}

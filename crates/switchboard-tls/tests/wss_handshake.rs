//! A real wss client handshakes with the acceptor and exchanges messages.

mod support;

use support::pki::{PemDir, TestCa};
use support::wss::{
    EchoServer, alpn, client_config, client_config_with_versions, connect, echo, protocol_version,
    server_leaf,
};
use switchboard_tls::ReloadableAcceptor;
use switchboard_tls::rustls::{self, ProtocolVersion};

#[tokio::test]
async fn a_wss_client_trusting_the_ca_connects_and_gets_its_messages_echoed() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&server)).unwrap();
    let echo_server = EchoServer::start(acceptor).await;

    let mut client = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();

    assert_eq!(echo(&mut client, "hello over wss").await, "hello over wss");
    assert_eq!(&server_leaf(&client), server.cert.der());
    assert_eq!(alpn(&client).as_deref(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn tls_1_3_is_negotiated_when_the_client_offers_it() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();
    let echo_server = EchoServer::start(acceptor).await;

    let client = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();

    assert_eq!(protocol_version(&client), ProtocolVersion::TLSv1_3);
}

#[tokio::test]
async fn a_tls_1_2_only_client_connects() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();
    let echo_server = EchoServer::start(acceptor).await;
    let config = client_config_with_versions(&ca, None, &[&rustls::version::TLS12]);

    let mut client = connect(echo_server.addr, config).await.unwrap();

    assert_eq!(protocol_version(&client), ProtocolVersion::TLSv1_2);
    assert_eq!(echo(&mut client, "1.2").await, "1.2");
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_is_refused_by_its_own_verifier() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();
    let mut echo_server = EchoServer::start(acceptor).await;

    let result = connect(
        echo_server.addr,
        client_config(&TestCa::new("other CA"), None),
    )
    .await;

    assert!(result.is_err());
    assert!(echo_server.next_handshake().await.is_err());
}

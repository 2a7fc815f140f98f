//! Client certificates are verified against the CA bundle: off, optional or required.

mod support;

use support::pki::{PemDir, TestCa};
use support::wss::{EchoServer, client_config, connect, echo};
use switchboard_tls::{ClientAuth, ReloadableAcceptor};

/// An echo server whose clients are verified against `ca` as `mode` says.
async fn server(ca: &TestCa, dir: &PemDir, mode: ClientAuth) -> EchoServer {
    let bundle = dir.write("ca.pem", ca.cert_pem());
    let config = dir
        .write_pair(&ca.server())
        .ca_path(bundle)
        .client_auth(mode);
    EchoServer::start(ReloadableAcceptor::new(config).unwrap()).await
}

#[tokio::test]
async fn required_accepts_a_client_certificate_signed_by_the_ca() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let mut echo_server = server(&ca, &dir, ClientAuth::Required).await;
    let client_cert = ca.client("alice");

    let mut client = connect(echo_server.addr, client_config(&ca, Some(&client_cert)))
        .await
        .unwrap();

    assert_eq!(echo(&mut client, "hi").await, "hi");
    let presented = echo_server.next_handshake().await.unwrap().unwrap();
    assert_eq!(&presented[0], client_cert.cert.der());
}

#[tokio::test]
async fn required_rejects_a_client_without_a_certificate() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let mut echo_server = server(&ca, &dir, ClientAuth::Required).await;

    let result = connect(echo_server.addr, client_config(&ca, None)).await;

    assert!(result.is_err());
    let error = echo_server.next_handshake().await.unwrap_err();
    assert!(error.contains("certificate"), "{error}");
}

#[tokio::test]
async fn required_rejects_a_certificate_from_another_ca() {
    let ca = TestCa::new("test CA");
    let stranger = TestCa::new("other CA").client("mallory");
    let dir = PemDir::new();
    let mut echo_server = server(&ca, &dir, ClientAuth::Required).await;

    let result = connect(echo_server.addr, client_config(&ca, Some(&stranger))).await;

    assert!(result.is_err());
    let error = echo_server.next_handshake().await.unwrap_err();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn optional_accepts_a_client_without_a_certificate() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let mut echo_server = server(&ca, &dir, ClientAuth::Optional).await;

    let mut client = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();

    assert_eq!(echo(&mut client, "anonymous").await, "anonymous");
    assert_eq!(echo_server.next_handshake().await, Ok(None));
}

#[tokio::test]
async fn optional_still_verifies_a_presented_certificate() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let mut echo_server = server(&ca, &dir, ClientAuth::Optional).await;
    let alice = ca.client("alice");
    let mallory = TestCa::new("other CA").client("mallory");

    let mut accepted = connect(echo_server.addr, client_config(&ca, Some(&alice)))
        .await
        .unwrap();
    assert_eq!(echo(&mut accepted, "alice").await, "alice");
    assert_eq!(
        &echo_server.next_handshake().await.unwrap().unwrap()[0],
        alice.cert.der()
    );

    let rejected = connect(echo_server.addr, client_config(&ca, Some(&mallory))).await;
    assert!(rejected.is_err());
    assert!(echo_server.next_handshake().await.is_err());
}

#[tokio::test]
async fn off_does_not_ask_for_a_certificate() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let mut echo_server = server(&ca, &dir, ClientAuth::Off).await;

    let mut client = connect(
        echo_server.addr,
        client_config(&ca, Some(&ca.client("alice"))),
    )
    .await
    .unwrap();

    assert_eq!(echo(&mut client, "hi").await, "hi");
    assert_eq!(echo_server.next_handshake().await, Ok(None));
}

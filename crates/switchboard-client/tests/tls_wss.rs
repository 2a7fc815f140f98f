//! `wss://` through rustls: custom roots accepted, an unknown certificate refused.
#![cfg(feature = "tls")]

mod support;

use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use support::{Server, fast_client, next_event, wait_state};
use switchboard_client::{
    Client, ClientError, ConnectionState, DisconnectReason, Priority, SubscriptionEvent,
};
use tokio_rustls::TlsAcceptor;

/// Serves the transport over TLS with a self-signed certificate for 127.0.0.1; returns the
/// `wss://` URL and the certificate's PEM.
async fn tls_server(server: &Server) -> (String, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let pem = certified.cert.pem();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(certified.cert.der().to_vec())],
            key,
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let transport = server.transport.clone();
    tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let transport = transport.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    let _ = transport.serve_connection(tls, peer).await;
                }
            });
        }
    });
    (format!("wss://{addr}/ws"), pem)
}

#[tokio::test]
async fn wss_with_the_servers_certificate_as_root_subscribes_and_publishes() {
    let server = Server::open().await;
    let (url, pem) = tls_server(&server).await;
    let client = fast_client(&url).tls_roots_pem(pem).build().unwrap();
    let mut feed = client.subscribe("secure:feed").unwrap();
    assert!(matches!(
        next_event(&mut feed).await,
        SubscriptionEvent::Subscribed { .. }
    ));
    let ack = client
        .publish(
            "secure:feed",
            "note",
            serde_json::json!("over tls"),
            Priority::Normal,
        )
        .unwrap()
        .await
        .unwrap();
    let SubscriptionEvent::Message(message) = next_event(&mut feed).await else {
        panic!("expected the message")
    };
    assert_eq!((message.offset, message.id), (ack.offset, ack.id));
}

#[tokio::test]
async fn wss_with_the_webpki_roots_refuses_a_self_signed_server() {
    let server = Server::open().await;
    let (url, _) = tls_server(&server).await;
    let client = fast_client(&url).build().unwrap();
    let state = wait_state(&client, |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let Some(DisconnectReason::ConnectFailed { message }) = state.reason() else {
        panic!("expected a failed connect, got {state:?}")
    };
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}

#[tokio::test]
async fn unusable_tls_settings_and_urls_are_refused_at_build() {
    let no_cert = Client::builder("wss://127.0.0.1:1/ws")
        .tls_roots_pem("not a certificate")
        .build();
    assert!(matches!(no_cert, Err(ClientError::Tls(_))), "{no_cert:?}");
    let http = Client::builder("http://127.0.0.1:1/ws").build();
    assert!(
        matches!(http, Err(ClientError::InvalidUrl { .. })),
        "{http:?}"
    );
}

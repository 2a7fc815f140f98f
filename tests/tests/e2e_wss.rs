//! wss:// end to end: switchboard-tls terminates TLS, the transport serves Protocol v1 over
//! the TLS stream, and a reload changes the certificate without dropping live sessions.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use switchboard_backplane::{MemoryBackplane, MemoryBackplaneConfig};
use switchboard_hub::Hub;
use switchboard_tls::{ReloadableAcceptor, TlsConfig};
use switchboard_transport::{Authenticator, Transport, TransportConfig};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

struct Pki {
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        Self {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// Writes a fresh localhost certificate and key into `dir`.
    fn issue(&self, dir: &std::path::Path) -> TlsConfig {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        TlsConfig::new(cert_path, key_path)
    }

    fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        let der =
            rustls::pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

use rustls::pki_types::pem::PemObject as _;

async fn serve_tls(acceptor: ReloadableAcceptor, transport: Transport<MemoryBackplane>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let (acceptor, transport) = (acceptor.clone(), transport.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = transport.serve_connection(tls, peer).await;
                }
            });
        }
    });
    port
}

async fn connect(port: u16, pki: &Pki) -> (Ws, Vec<u8>) {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_tls_with_config(
            format!("wss://localhost:{port}/ws"),
            None,
            false,
            Some(Connector::Rustls(pki.client())),
        ),
    )
    .await
    .expect("handshake in time")
    .expect("wss handshake");
    let leaf = match ws.get_ref() {
        MaybeTlsStream::Rustls(tls) => tls.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
        _ => panic!("not a TLS stream"),
    };
    (ws, leaf)
}

async fn recv(ws: &mut Ws) -> serde_json::Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

#[tokio::test]
async fn protocol_v1_runs_over_wss_and_survives_a_certificate_reload() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let acceptor = ReloadableAcceptor::new(pki.issue(dir.path())).unwrap();
    let hub = Hub::new(MemoryBackplane::new(MemoryBackplaneConfig::default()));
    let transport = Transport::new(hub, Authenticator::open(), TransportConfig::default());
    let port = serve_tls(acceptor.clone(), transport).await;

    let (mut first, first_cert) = connect(port, &pki).await;
    assert_eq!(recv(&mut first).await["type"], "welcome");
    first
        .send(Message::text(r#"{"type":"subscribe","channel":"secure"}"#))
        .await
        .unwrap();
    assert_eq!(recv(&mut first).await["type"], "subscribed");

    // Renew the certificate on disk and reload: new sessions see it, the old one lives on.
    pki.issue(dir.path());
    acceptor.reload().unwrap();
    let (mut second, second_cert) = connect(port, &pki).await;
    assert_ne!(
        first_cert, second_cert,
        "the reload did not change the certificate"
    );
    assert_eq!(recv(&mut second).await["type"], "welcome");
    second
        .send(Message::text(
            r#"{"type":"note","channel":"secure","payload":"after reload"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(recv(&mut first).await["payload"], "after reload");
}

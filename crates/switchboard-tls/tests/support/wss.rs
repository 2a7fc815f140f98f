//! A wss echo server behind a `ReloadableAcceptor`, and a tokio-tungstenite rustls client.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore};
use switchboard_tls::ReloadableAcceptor;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::pki::{Issued, TestCa};

/// What the server saw of one TLS handshake: the client's certificate chain, or the error.
pub(crate) type Handshake = Result<Option<Vec<CertificateDer<'static>>>, String>;

/// Accepts on `127.0.0.1:<free port>` and echoes every text message. Stops on drop.
pub(crate) struct EchoServer {
    pub(crate) addr: SocketAddr,
    handshakes: mpsc::Receiver<Handshake>,
    task: JoinHandle<()>,
}

impl EchoServer {
    pub(crate) async fn start(acceptor: ReloadableAcceptor) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (report, handshakes) = mpsc::channel(16);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let acceptor = acceptor.clone();
                let report = report.clone();
                tokio::spawn(async move {
                    let tls = match acceptor.accept(tcp).await {
                        Ok(tls) => tls,
                        Err(err) => {
                            let _ = report.send(Err(err.to_string())).await;
                            return;
                        }
                    };
                    let peer = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
                    let _ = report.send(Ok(peer)).await;
                    let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else {
                        return;
                    };
                    while let Some(Ok(message)) = ws.next().await {
                        if message.is_text() && ws.send(message).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            handshakes,
            task,
        }
    }

    /// The outcome of the next TLS handshake the server finishes.
    pub(crate) async fn next_handshake(&mut self) -> Handshake {
        self.handshakes.recv().await.unwrap()
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client trusting `ca`, offering ALPN `http/1.1`, presenting `identity` if given.
pub(crate) fn client_config(ca: &TestCa, identity: Option<&Issued>) -> Arc<ClientConfig> {
    client_config_with_versions(ca, identity, rustls::DEFAULT_VERSIONS)
}

pub(crate) fn client_config_with_versions(
    ca: &TestCa,
    identity: Option<&Issued>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
    let mut config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![issued.cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(issued.key.serialize_der())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

pub(crate) type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `wss://localhost:<port>` with `config`.
pub(crate) async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
    let url = format!("wss://localhost:{}", addr.port());
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(Connector::Rustls(config)),
    )
    .await?;
    Ok(ws)
}

fn tls(ws: &Client) -> &rustls::ClientConnection {
    match ws.get_ref() {
        MaybeTlsStream::Rustls(tls) => tls.get_ref().1,
        _ => panic!("not a rustls stream"),
    }
}

/// The leaf certificate the server presented.
pub(crate) fn server_leaf(ws: &Client) -> CertificateDer<'static> {
    tls(ws).peer_certificates().unwrap()[0].clone()
}

/// The ALPN protocol the server chose.
pub(crate) fn alpn(ws: &Client) -> Option<Vec<u8>> {
    tls(ws).alpn_protocol().map(<[u8]>::to_vec)
}

/// The TLS version negotiated.
pub(crate) fn protocol_version(ws: &Client) -> rustls::ProtocolVersion {
    tls(ws).protocol_version().unwrap()
}

/// Sends `text` and returns what comes back.
pub(crate) async fn echo(ws: &mut Client, text: &str) -> String {
    ws.send(Message::text(text)).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Text(reply) => reply.as_str().to_owned(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

//! TLS: https and wss on the one port, fail-closed startup, reload on SIGHUP.

mod support;

use std::sync::Arc;

use http_body_util::Full;
use support::{Binary, send, start, test_config, write_certificate};
use switchboard_tls::TlsConfig;
use switchboard_tls::rustls::pki_types::{CertificateDer, ServerName};
use switchboard_tls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::Connector;

fn client_config(trusted: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(trusted.to_vec())).unwrap();
    let mut config = ClientConfig::builder_with_provider(Arc::new(
        switchboard_tls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The certificate a TLS client is shown at `port`.
async fn presented_certificate(port: u16, trusted: &[u8]) -> Vec<u8> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(trusted))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn https_and_wss_are_served_on_the_one_port_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (der, cert, key) = write_certificate(dir.path());
    let server = start(test_config().tls(Some(TlsConfig::new(cert, key)))).await;
    assert!(server.ws_url().starts_with("wss://"), "{}", server.ws_url());
    assert!(server.base_url().starts_with("https://"));
    let port = server.local_addr().port();

    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let tls = tokio_rustls::TlsConnector::from(client_config(&der))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let health = send(
        tls,
        http::Request::get("/health").body(Full::default()).unwrap(),
    )
    .await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{port}/ws"),
        None,
        false,
        Some(Connector::Rustls(client_config(&der))),
    )
    .await
    .unwrap();
    let welcome = support::next_json(&mut ws).await;
    assert_eq!(welcome["type"], "welcome");
}

#[tokio::test]
async fn plain_http_on_the_tls_port_gets_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = write_certificate(dir.path());
    let server = start(test_config().tls(Some(TlsConfig::new(cert, key)))).await;
    let stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let handshake = hyper::client::conn::http1::handshake::<_, Full<bytes::Bytes>>(
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let (mut sender, connection) = handshake;
    tokio::spawn(connection);
    let answer = tokio::time::timeout(
        support::WAIT,
        sender.send_request(
            http::Request::get("/health")
                .header("host", "localhost")
                .body(Full::default())
                .unwrap(),
        ),
    )
    .await
    .expect("the server hangs up in time");
    assert!(answer.is_err(), "{answer:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn a_key_readable_by_others_is_served_with_a_warning_and_a_private_one_without() {
    use std::os::unix::fs::PermissionsExt;
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        let dir = tempfile::tempdir().unwrap();
        let (_, cert, key) = write_certificate(dir.path());
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut binary = Binary::spawn(
            &[
                ("PORT", "0"),
                ("SSL_ENABLED", "true"),
                ("SSL_CERT_PATH", cert.to_str().unwrap()),
                ("SSL_KEY_PATH", key.to_str().unwrap()),
            ],
            &[],
        );
        binary.listening().await;
        binary.terminate();
        let (code, output) = binary.exit().await;
        assert_eq!(code, Some(0), "{output}");
        assert_eq!(
            output.contains("the TLS private key is readable by other users"),
            warned,
            "mode {mode:o}: {output}"
        );
    }
}

#[tokio::test]
async fn a_missing_certificate_stops_the_binary_with_exit_1_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, key) = write_certificate(dir.path());
    let missing = dir.path().join("missing.pem");
    let binary = Binary::spawn(
        &[
            ("PORT", "0"),
            ("SSL_ENABLED", "true"),
            ("SSL_CERT_PATH", missing.to_str().unwrap()),
            ("SSL_KEY_PATH", key.to_str().unwrap()),
        ],
        &[],
    );
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("missing.pem: file not found"), "{output}");
    assert!(
        !output.contains("listening on"),
        "it never serves: {output}"
    );
}

#[tokio::test]
async fn a_key_that_does_not_match_the_certificate_stops_the_binary_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = write_certificate(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (_, _, other_key) = write_certificate(other.path());
    let binary = Binary::spawn(
        &[
            ("PORT", "0"),
            ("SSL_ENABLED", "true"),
            ("SSL_CERT_PATH", cert.to_str().unwrap()),
            ("SSL_KEY_PATH", other_key.to_str().unwrap()),
        ],
        &[],
    );
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains("the private key does not match the certificate"),
        "{output}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn sighup_reloads_the_certificate_for_new_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (first, cert, key) = write_certificate(dir.path());
    let mut binary = Binary::spawn(
        &[
            ("PORT", "0"),
            ("SSL_ENABLED", "true"),
            ("SSL_CERT_PATH", cert.to_str().unwrap()),
            ("SSL_KEY_PATH", key.to_str().unwrap()),
            ("SSL_RELOAD_INTERVAL_MS", "0"),
        ],
        &[],
    );
    let line = binary.wait_for_line("listening on ").await;
    assert!(line.contains("wss://"), "{line}");
    let addr = binary.listening_addr(&line);
    assert_eq!(presented_certificate(addr.port(), &first).await, first);

    let (second, _, _) = write_certificate(dir.path());
    let pid =
        rustix::process::Pid::from_raw(i32::try_from(binary.child.id().unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    binary.wait_for_line("TLS certificate reloaded").await;
    assert_eq!(presented_certificate(addr.port(), &second).await, second);
}

//! TLS: https and wss on the one port, an encrypted key, client certificates, fail-closed
//! startup, reload on SIGHUP.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use http_body_util::Full;
use support::{Binary, send, start, test_config, write_certificate};
use switchboard_tls::TlsConfig;
use switchboard_tls::rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer, ServerName};
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

/// A certificate authority made for one test.
struct TestCa {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key.
struct Issued {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn issue(&self, names: Vec<String>, usage: rcgen::ExtendedKeyUsagePurpose) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued { cert, key }
    }

    /// A server certificate for `localhost`.
    fn server(&self) -> Issued {
        self.issue(
            vec!["localhost".to_owned()],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate.
    fn client(&self) -> Issued {
        self.issue(Vec::new(), rcgen::ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// `key` as PKCS#8 encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC), as
/// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it.
fn encrypted_key_pem(key: &rcgen::KeyPair, passphrase: &str) -> String {
    use pkcs8::der::pem::{LineEnding, PemLabel as _};
    // Few iterations: the cost a real key pays buys nothing in a test.
    let params =
        pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(1_000, &[7; 16], &[9; 16])
            .unwrap();
    pkcs8::PrivateKeyInfo::try_from(key.serialized_der())
        .unwrap()
        .encrypt_with_params(params, passphrase)
        .unwrap()
        .to_pem(pkcs8::EncryptedPrivateKeyInfo::PEM_LABEL, LineEnding::LF)
        .unwrap()
        .to_string()
}

/// A client trusting `ca`, presenting `identity` when given.
fn client_config_with(ca: &TestCa, identity: Option<&Issued>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.cert.der().clone()).unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        switchboard_tls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![issued.cert.der().clone()],
                PrivatePkcs8KeyDer::from(issued.key.serialized_der().to_vec()).into(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Opens `wss://localhost:port/ws` with `config`: a real TLS handshake, then the upgrade.
async fn connect_wss(
    port: u16,
    config: Arc<ClientConfig>,
) -> Result<support::Ws, tokio_tungstenite::tungstenite::Error> {
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{port}/ws"),
        None,
        false,
        Some(Connector::Rustls(config)),
    );
    tokio::time::timeout(support::WAIT, connecting)
        .await
        .expect("connected or refused in time")
        .map(|(ws, _)| ws)
}

/// Writes into `dir` a `localhost` certificate from `ca`, its key encrypted with
/// `passphrase` (mode 600), and `ca` as the bundle client certificates are verified
/// against; returns them as `SSL_CERT_PATH`, `SSL_KEY_PATH` and `SSL_CA_PATH`.
/// The binary's environment for TLS on a free port with `files` (their variable names and
/// paths), plus `extra`.
fn tls_env<'a>(
    files: &'a [(&'static str, PathBuf)],
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&str, &str)> = files
        .iter()
        .map(|(name, path)| (*name, path.to_str().unwrap()))
        .collect();
    env.extend([("PORT", "0"), ("SSL_ENABLED", "true")]);
    env.extend_from_slice(extra);
    env
}

fn encrypted_key_files(ca: &TestCa, dir: &Path, passphrase: &str) -> [(&'static str, PathBuf); 3] {
    let server = ca.server();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let bundle = dir.join("ca.pem");
    std::fs::write(&cert, server.cert.pem()).unwrap();
    std::fs::write(&key, encrypted_key_pem(&server.key, passphrase)).unwrap();
    std::fs::write(&bundle, ca.cert.pem()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    [
        ("SSL_CERT_PATH", cert),
        ("SSL_KEY_PATH", key),
        ("SSL_CA_PATH", bundle),
    ]
}

#[cfg(unix)]
#[tokio::test]
async fn the_binary_serves_wss_with_an_encrypted_key_and_admits_only_clients_its_ca_signed() {
    const PASSPHRASE: &str = "correct horse battery staple";
    let ca = TestCa::new("switchboard test CA");
    let dir = tempfile::tempdir().unwrap();
    let files = encrypted_key_files(&ca, dir.path(), PASSPHRASE);
    let env = tls_env(
        &files,
        &[
            ("SSL_KEY_PASSPHRASE", PASSPHRASE),
            ("SSL_CLIENT_AUTH", "required"),
        ],
    );
    let mut binary = Binary::spawn(&env, &[]);
    let line = binary.wait_for_line("TLS enabled").await;
    assert!(line.contains("client_certificates=required"), "{line}");
    let line = binary.wait_for_line("listening on ").await;
    assert!(line.contains("wss://"), "{line}");
    let port = binary.listening_addr(&line).port();

    // A client certificate the CA signed: the handshake and the upgrade succeed.
    let mut ws = connect_wss(port, client_config_with(&ca, Some(&ca.client())))
        .await
        .expect("a client the CA signed connects");
    assert_eq!(support::next_json(&mut ws).await["type"], "welcome");

    // No client certificate: the server ends the handshake with an alert.
    let refused = connect_wss(port, client_config_with(&ca, None))
        .await
        .expect_err("a client without a certificate is refused");
    assert!(
        refused.to_string().contains("CertificateRequired"),
        "refused by the TLS handshake: {refused}"
    );

    // A certificate from another CA: refused the same way.
    let stranger = TestCa::new("another CA").client();
    let refused = connect_wss(port, client_config_with(&ca, Some(&stranger)))
        .await
        .expect_err("a client another CA signed is refused");
    assert!(
        refused.to_string().contains("UnknownCA"),
        "refused by the TLS handshake: {refused}"
    );

    drop(ws);
    binary.terminate();
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(0), "{output}");
    assert!(
        !output.contains(PASSPHRASE),
        "the passphrase is never logged"
    );
}

#[tokio::test]
async fn a_wrong_key_passphrase_stops_the_binary_with_exit_1_naming_the_key_file() {
    const WRONG: &str = "not-the-passphrase-4711";
    let ca = TestCa::new("switchboard test CA");
    let dir = tempfile::tempdir().unwrap();
    let files = encrypted_key_files(&ca, dir.path(), "the right one");
    let key = files[1].1.to_str().unwrap();
    let env = tls_env(&files, &[("SSL_KEY_PASSPHRASE", WRONG)]);
    let binary = Binary::spawn(&env, &[]);
    let (code, output) = binary.exit().await;
    assert_eq!(code, Some(1), "{output}");
    assert!(
        output.contains(&format!(
            "{key}: cannot decrypt the private key: wrong passphrase"
        )),
        "{output}"
    );
    assert!(
        !output.contains("listening on"),
        "it never serves: {output}"
    );
    assert!(!output.contains(WRONG), "the passphrase is never printed");
}

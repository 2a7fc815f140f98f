//! The passphrase and the private key never show in `Debug` output or errors.

mod support;

use support::pki::{PemDir, TestCa};
use switchboard_tls::{LoadedCertificate, Passphrase, ReloadableAcceptor, TlsConfig};

const PASSPHRASE: &str = "hunter2-very-secret";

#[test]
fn a_passphrase_debugs_as_redacted() {
    assert_eq!(format!("{:?}", Passphrase::new(PASSPHRASE)), "[redacted]");
}

#[test]
fn a_config_debug_hides_the_passphrase() {
    let config = TlsConfig::new("cert.pem", "key.pem").key_passphrase(PASSPHRASE);

    let debug = format!("{config:?}");

    assert!(!debug.contains(PASSPHRASE), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}

#[test]
fn a_loaded_certificate_and_an_acceptor_debug_without_the_key() {
    let server = TestCa::new("test CA").server();
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write("cert.pem", server.cert_pem()),
        dir.write("key.pem", server.encrypted_key_pem(PASSPHRASE)),
    )
    .key_passphrase(PASSPHRASE);
    let key_body = server.key_pem().lines().nth(1).unwrap().to_owned();

    let loaded = LoadedCertificate::load(&config).unwrap();
    let acceptor = ReloadableAcceptor::new(config).unwrap();

    for debug in [
        format!("{loaded:?}"),
        format!("{loaded:#?}"),
        format!("{acceptor:?}"),
    ] {
        assert!(!debug.contains(PASSPHRASE), "{debug}");
        assert!(!debug.contains(&key_body), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}

#[test]
fn a_wrong_passphrase_error_does_not_repeat_it() {
    let server = TestCa::new("test CA").server();
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write("cert.pem", server.cert_pem()),
        dir.write("key.pem", server.encrypted_key_pem("the right one")),
    )
    .key_passphrase(PASSPHRASE);

    let err = LoadedCertificate::load(&config).unwrap_err();

    assert!(!err.to_string().contains(PASSPHRASE));
    assert!(!format!("{err:?}").contains(PASSPHRASE));
}

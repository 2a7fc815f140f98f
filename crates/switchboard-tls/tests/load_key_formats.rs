//! Every key format the seeds use loads, and the chain comes back as written.

mod support;

use rcgen::CertificateParams;
use support::pki::{PemDir, TestCa, rsa_key, server_params};
use switchboard_tls::{CertificateWarning, LoadedCertificate, TlsConfig};

#[test]
fn an_unencrypted_pkcs8_key_loads() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let dir = PemDir::new();
    let config = dir.write_pair(&server);

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(loaded.leaf(), server.cert.der());
    assert_eq!(loaded.chain().len(), 1);
    assert!(loaded.warnings().is_empty());
}

#[test]
fn a_pkcs1_rsa_key_loads() {
    let ca = TestCa::new("test CA");
    let (pkcs1_pem, key) = rsa_key();
    assert!(pkcs1_pem.contains("-----BEGIN RSA PRIVATE KEY-----"));
    let server = ca.sign(&server_params(), key);
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write("cert.pem", server.cert_pem()),
        dir.write("key.pem", &pkcs1_pem),
    );

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(loaded.leaf(), server.cert.der());
}

#[test]
fn a_sec1_ec_key_loads() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let sec1_pem = server.sec1_key_pem();
    assert!(sec1_pem.contains("-----BEGIN EC PRIVATE KEY-----"));
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write("cert.pem", server.cert_pem()),
        dir.write("key.pem", &sec1_pem),
    );

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(loaded.leaf(), server.cert.der());
}

#[test]
fn a_pbkdf2_encrypted_pkcs8_key_loads_with_its_passphrase() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let encrypted = server.encrypted_key_pem("correct horse");
    assert!(encrypted.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write("cert.pem", server.cert_pem()),
        dir.write("key.pem", &encrypted),
    )
    .key_passphrase("correct horse");

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(loaded.leaf(), server.cert.der());
    assert!(loaded.warnings().is_empty());
}

#[test]
fn a_scrypt_encrypted_pkcs8_key_loads_with_its_passphrase() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write("cert.pem", server.cert_pem()),
        dir.write("key.pem", server.scrypt_encrypted_key_pem("s3cret")),
    )
    .key_passphrase("s3cret");

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(loaded.leaf(), server.cert.der());
}

#[test]
fn certificate_and_key_may_share_one_file() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let dir = PemDir::new();
    let both = dir.write(
        "server.pem",
        format!("{}{}", server.cert_pem(), server.key_pem()),
    );

    let loaded = LoadedCertificate::load(&TlsConfig::new(&both, &both)).unwrap();

    assert_eq!(loaded.leaf(), server.cert.der());
}

#[test]
fn the_chain_is_served_as_written_leaf_first() {
    let root = TestCa::new("root CA");
    let mut intermediate_params = CertificateParams::new(Vec::new()).unwrap();
    intermediate_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let intermediate_key = rcgen::KeyPair::generate().unwrap();
    let intermediate = root.sign(&intermediate_params, intermediate_key);
    let issuer = rcgen::Issuer::new(intermediate_params, intermediate.key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = server_params().signed_by(&leaf_key, &issuer).unwrap();
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write(
            "chain.pem",
            format!("{}{}", leaf.pem(), intermediate.cert.pem()),
        ),
        dir.write("key.pem", leaf_key.serialize_pem()),
    );

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(
        loaded.chain(),
        [leaf.der().clone(), intermediate.cert.der().clone()]
    );
}

#[test]
fn a_passphrase_for_an_unencrypted_key_is_ignored_with_a_warning() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let dir = PemDir::new();
    let config = dir.write_pair(&server).key_passphrase("unused");

    let loaded = LoadedCertificate::load(&config).unwrap();

    assert_eq!(
        loaded.warnings(),
        [CertificateWarning::PassphraseNotNeeded {
            path: dir.path("key.pem")
        }]
    );
}

#[test]
fn text_around_pem_blocks_is_ignored() {
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let dir = PemDir::new();
    let config = TlsConfig::new(
        dir.write(
            "cert.pem",
            format!("subject=CN=localhost\n{}", server.cert_pem()),
        ),
        dir.write("key.pem", format!("Bag Attributes\n{}", server.key_pem())),
    );

    assert!(LoadedCertificate::load(&config).is_ok());
}

//! Bad files are refused at load with an error naming the file and the problem.

mod support;

use std::time::{Duration, SystemTime};

use rcgen::date_time_ymd;
use support::pki::{PemDir, TestCa, server_params};
use switchboard_tls::{
    CertificateWarning, ClientAuth, EXPIRY_WARNING_WINDOW, LoadedCertificate, TlsConfig, TlsError,
};

fn load_err(config: &TlsConfig) -> TlsError {
    LoadedCertificate::load(config).unwrap_err()
}

/// Asserts the message names `file` and says `problem`.
fn assert_message(err: &TlsError, file: &std::path::Path, problem: &str) {
    let message = err.to_string();
    assert!(
        message.contains(&file.display().to_string()),
        "{message:?} does not name {}",
        file.display()
    );
    assert!(
        message.contains(problem),
        "{message:?} does not say {problem:?}"
    );
}

fn unix_time(seconds: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn a_missing_certificate_file_is_not_found() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let key = dir.write("key.pem", server.key_pem());
    let missing = dir.path("missing.pem");

    let err = load_err(&TlsConfig::new(&missing, key));

    assert!(matches!(&err, TlsError::NotFound { path, .. } if *path == missing));
    assert_message(&err, &missing, "file not found");
}

#[test]
fn a_missing_key_file_is_not_found() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let cert = dir.write("cert.pem", server.cert_pem());
    let missing = dir.path("missing-key.pem");

    let err = load_err(&TlsConfig::new(cert, &missing));

    assert!(matches!(&err, TlsError::NotFound { path, .. } if *path == missing));
}

#[test]
fn a_directory_is_unreadable() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let key = dir.write("key.pem", server.key_pem());
    std::fs::create_dir(dir.path("cert.pem")).unwrap();

    let err = load_err(&TlsConfig::new(dir.path("cert.pem"), key));

    assert!(matches!(&err, TlsError::Unreadable { .. }), "{err:?}");
    assert_message(&err, &dir.path("cert.pem"), "cannot read the file");
}

#[test]
fn a_certificate_file_without_a_certificate_is_refused() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let key = dir.write("key.pem", server.key_pem());

    let err = load_err(&TlsConfig::new(&key, &key));

    assert!(matches!(&err, TlsError::NoCertificate { path } if *path == key));
    assert_message(&err, &key, "no certificate found");
}

#[test]
fn a_key_file_without_a_key_is_refused() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let cert = dir.write("cert.pem", server.cert_pem());

    let err = load_err(&TlsConfig::new(&cert, &cert));

    assert!(matches!(&err, TlsError::NoPrivateKey { path } if *path == cert));
    assert_message(&err, &cert, "no private key found");
}

#[test]
fn broken_pem_is_malformed() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let truncated = server.cert_pem().replace("-----END CERTIFICATE-----", "");
    let cert = dir.write("cert.pem", truncated);
    let key = dir.write("key.pem", server.key_pem());

    let err = load_err(&TlsConfig::new(&cert, key));

    assert!(matches!(&err, TlsError::MalformedPem { .. }), "{err:?}");
    assert_message(&err, &cert, "malformed PEM");
}

#[test]
fn an_encrypted_key_without_a_passphrase_asks_for_one() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let cert = dir.write("cert.pem", server.cert_pem());
    let key = dir.write("key.pem", server.encrypted_key_pem("pass"));

    let err = load_err(&TlsConfig::new(cert, &key));

    assert!(matches!(&err, TlsError::EncryptedKeyNeedsPassphrase { path } if *path == key));
    assert_message(&err, &key, "encrypted and no passphrase was given");
}

#[test]
fn a_wrong_passphrase_is_refused() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let cert = dir.write("cert.pem", server.cert_pem());
    let key = dir.write("key.pem", server.encrypted_key_pem("right"));

    let err = load_err(&TlsConfig::new(cert, &key).key_passphrase("wrong"));

    assert!(
        matches!(&err, TlsError::WrongPassphrase { path } if *path == key),
        "{err:?}"
    );
    assert_message(&err, &key, "wrong passphrase");
}

#[test]
fn legacy_openssl_pem_encryption_is_unsupported() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let cert = dir.write("cert.pem", server.cert_pem());
    let key = dir.write(
        "key.pem",
        "-----BEGIN RSA PRIVATE KEY-----\n\
         Proc-Type: 4,ENCRYPTED\n\
         DEK-Info: AES-256-CBC,7F3A9C1B0D2E4F6A8B9C0D1E2F3A4B5C\n\
         \n\
         bm90IGEgcmVhbCBrZXksIGJ1dCB0aGUgaGVhZGVycyBhcmUgd2hhdCBjb3VudHM=\n\
         -----END RSA PRIVATE KEY-----\n",
    );

    let err = load_err(&TlsConfig::new(cert, &key).key_passphrase("pass"));

    assert!(matches!(&err, TlsError::UnsupportedKeyEncryption { path, .. } if *path == key));
    assert_message(&err, &key, "Proc-Type: 4,ENCRYPTED");
    assert_message(&err, &key, "openssl pkcs8 -topk8 -v2 aes-256-cbc");
}

#[test]
fn pbes1_encryption_is_unsupported() {
    use pkcs8::der::Encode as _;
    use pkcs8::pkcs5::{EncryptionScheme, pbes1};
    let encrypted = pkcs8::EncryptedPrivateKeyInfo {
        encryption_algorithm: EncryptionScheme::Pbes1(pbes1::Algorithm {
            encryption: pbes1::EncryptionScheme::PbeWithSha1AndDesCbc,
            parameters: pbes1::Parameters {
                salt: [1; 8],
                iteration_count: 2048,
            },
        }),
        encrypted_data: &[0; 64],
    };
    let pem = pkcs8::der::pem::encode_string(
        "ENCRYPTED PRIVATE KEY",
        pkcs8::der::pem::LineEnding::LF,
        &encrypted.to_der().unwrap(),
    )
    .unwrap();
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let cert = dir.write("cert.pem", server.cert_pem());
    let key = dir.write("key.pem", pem);

    let err = load_err(&TlsConfig::new(cert, &key).key_passphrase("pass"));

    assert!(
        matches!(&err, TlsError::UnsupportedKeyEncryption { .. }),
        "{err:?}"
    );
    assert_message(&err, &key, "PBES1");
}

#[test]
fn a_key_from_another_pair_is_a_mismatch() {
    let dir = PemDir::new();
    let ca = TestCa::new("test CA");
    let cert = dir.write("cert.pem", ca.server().cert_pem());
    let key = dir.write("other-key.pem", ca.server().key_pem());

    let err = load_err(&TlsConfig::new(&cert, &key));

    assert!(matches!(&err, TlsError::KeyMismatch { cert: c, key: k } if *c == cert && *k == key));
    assert_message(&err, &key, "does not match the certificate in");
    assert_message(&err, &cert, "does not match the certificate in");
}

#[test]
fn an_expired_certificate_is_refused() {
    let ca = TestCa::new("test CA");
    let mut params = server_params();
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2001, 1, 1);
    let server = ca.sign(&params, rcgen::KeyPair::generate().unwrap());
    let dir = PemDir::new();
    let config = dir.write_pair(&server);

    let err = load_err(&config);

    assert!(
        matches!(&err, TlsError::Expired { not_after, .. } if *not_after == unix_time(978_307_200)),
        "{err:?}"
    );
    assert_message(&err, &config.cert_path, "expired on 2001-01-01T00:00:00Z");
}

#[test]
fn a_certificate_not_yet_valid_is_refused() {
    let ca = TestCa::new("test CA");
    let mut params = server_params();
    params.not_before = date_time_ymd(2090, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    let server = ca.sign(&params, rcgen::KeyPair::generate().unwrap());
    let dir = PemDir::new();
    let config = dir.write_pair(&server);

    let err = load_err(&config);

    assert!(matches!(&err, TlsError::NotYetValid { .. }), "{err:?}");
    assert_message(
        &err,
        &config.cert_path,
        "not valid before 2090-01-01T00:00:00Z",
    );
}

#[test]
fn expiry_is_judged_at_the_given_time() {
    let ca = TestCa::new("test CA");
    let mut params = server_params();
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let server = ca.sign(&params, rcgen::KeyPair::generate().unwrap());
    let dir = PemDir::new();
    let config = dir.write_pair(&server);
    // 2030-01-01T00:00:00Z
    let not_after = unix_time(1_893_456_000);

    LoadedCertificate::load_at(&config, not_after).unwrap();
    assert!(matches!(
        LoadedCertificate::load_at(&config, not_after + Duration::from_secs(1)),
        Err(TlsError::Expired { .. })
    ));
    // 2019-12-31T23:59:59Z
    assert!(matches!(
        LoadedCertificate::load_at(&config, unix_time(1_577_836_799)),
        Err(TlsError::NotYetValid { .. })
    ));
}

#[test]
fn a_certificate_expiring_within_30_days_loads_with_a_warning() {
    let ca = TestCa::new("test CA");
    let mut params = server_params();
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2030, 1, 1);
    let server = ca.sign(&params, rcgen::KeyPair::generate().unwrap());
    let dir = PemDir::new();
    let config = dir.write_pair(&server);
    let not_after = unix_time(1_893_456_000);
    let ten_days = Duration::from_secs(10 * 86_400);

    let loaded = LoadedCertificate::load_at(&config, not_after - ten_days).unwrap();

    assert_eq!(
        loaded.warnings(),
        [CertificateWarning::ExpiresSoon {
            path: dir.path("cert.pem"),
            not_after,
            remaining: ten_days,
        }]
    );
    let message = loaded.warnings()[0].to_string();
    assert!(
        message.contains("cert.pem: the certificate expires on 2030-01-01T00:00:00Z (in 10 days)")
    );
    let earlier = not_after - EXPIRY_WARNING_WINDOW - Duration::from_secs(1);
    assert!(
        LoadedCertificate::load_at(&config, earlier)
            .unwrap()
            .warnings()
            .is_empty()
    );
}

#[test]
fn a_ca_bundle_without_certificates_is_invalid() {
    let dir = PemDir::new();
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let bundle = dir.write("ca.pem", server.key_pem());
    let config = dir
        .write_pair(&server)
        .ca_path(&bundle)
        .client_auth(ClientAuth::Required);

    let err = load_err(&config);

    assert!(matches!(&err, TlsError::InvalidCaBundle { path, .. } if *path == bundle));
    assert_message(&err, &bundle, "invalid CA bundle: no certificate found");
}

#[test]
fn a_ca_bundle_with_a_certificate_that_does_not_parse_is_invalid() {
    let dir = PemDir::new();
    let ca = TestCa::new("test CA");
    let server = ca.server();
    let garbage = pkcs8::der::pem::encode_string(
        "CERTIFICATE",
        pkcs8::der::pem::LineEnding::LF,
        b"this is not a certificate",
    )
    .unwrap();
    let bundle = dir.write("ca.pem", format!("{}{garbage}", ca.cert_pem()));
    // Validated even when client certificates are off: a bad bundle is a bad deployment.
    let config = dir.write_pair(&server).ca_path(&bundle);

    let err = load_err(&config);

    assert!(matches!(&err, TlsError::InvalidCaBundle { .. }), "{err:?}");
    assert_message(&err, &bundle, "invalid CA bundle: certificate #2");
}

#[test]
fn a_missing_ca_bundle_is_not_found() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let missing = dir.path("ca.pem");
    let config = dir.write_pair(&server).ca_path(&missing);

    let err = load_err(&config);

    assert!(matches!(&err, TlsError::NotFound { path, .. } if *path == missing));
}

#[test]
fn client_certificates_without_a_ca_bundle_are_refused() {
    let dir = PemDir::new();
    let server = TestCa::new("test CA").server();
    let config = dir.write_pair(&server).client_auth(ClientAuth::Optional);

    let err = load_err(&config);

    assert!(matches!(
        err,
        TlsError::ClientAuthWithoutCa {
            mode: ClientAuth::Optional
        }
    ));
    assert_eq!(
        err.to_string(),
        "client certificate verification is optional but no CA bundle is configured"
    );
}

#[test]
fn client_auth_modes_parse_from_configuration_strings() {
    assert_eq!("off".parse(), Ok(ClientAuth::Off));
    assert_eq!("Optional".parse(), Ok(ClientAuth::Optional));
    assert_eq!("REQUIRED".parse(), Ok(ClientAuth::Required));
    assert!("yes".parse::<ClientAuth>().is_err());
    assert_eq!(ClientAuth::Required.to_string(), "required");
}

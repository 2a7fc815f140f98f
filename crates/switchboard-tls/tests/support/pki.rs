//! Certificates and keys generated at test time, written to a temporary directory.

use std::path::{Path, PathBuf};

use pkcs8::der::pem::LineEnding;
use pkcs8::pkcs5::{pbes2, scrypt};
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls_pki_types::PrivatePkcs1KeyDer;
use rustls_pki_types::pem::PemObject as _;
use switchboard_tls::TlsConfig;
use tempfile::TempDir;

/// A certificate authority.
pub(crate) struct TestCa {
    pub(crate) cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub(crate) fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `localhost` and `127.0.0.1` with a fresh P-256 key.
    pub(crate) fn server(&self) -> Issued {
        self.sign(&server_params(), KeyPair::generate().unwrap())
    }

    /// A client certificate with a fresh P-256 key.
    pub(crate) fn client(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params, KeyPair::generate().unwrap())
    }

    pub(crate) fn sign(&self, params: &CertificateParams, key: KeyPair) -> Issued {
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued { cert, key }
    }

    pub(crate) fn cert_pem(&self) -> String {
        self.cert.pem()
    }
}

/// Parameters of a server certificate for `localhost` and `127.0.0.1`.
pub(crate) fn server_params() -> CertificateParams {
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A certificate and its key.
pub(crate) struct Issued {
    pub(crate) cert: Certificate,
    pub(crate) key: KeyPair,
}

impl Issued {
    pub(crate) fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    /// The key as unencrypted PKCS#8.
    pub(crate) fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// The key as PKCS#8 encrypted with PBES2 (PBKDF2-SHA256, AES-256-CBC), as
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it.
    pub(crate) fn encrypted_key_pem(&self, passphrase: &str) -> String {
        // Few iterations: the cost of a real deployment buys nothing in a test.
        let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(1_000, &[7; 16], &[9; 16]).unwrap();
        encrypt(self.key.serialized_der(), params, passphrase)
    }

    /// The key as PKCS#8 encrypted with PBES2 (scrypt, AES-256-CBC).
    pub(crate) fn scrypt_encrypted_key_pem(&self, passphrase: &str) -> String {
        let scrypt = scrypt::Params::new(10, 8, 1, 32).unwrap();
        let params = pbes2::Parameters::scrypt_aes256cbc(scrypt, &[7; 16], &[9; 16]).unwrap();
        encrypt(self.key.serialized_der(), params, passphrase)
    }

    /// The key as SEC1 (`EC PRIVATE KEY`, with its curve), as `openssl ecparam -genkey`
    /// writes it.
    pub(crate) fn sec1_key_pem(&self) -> String {
        use p256::pkcs8::DecodePrivateKey as _;
        let key = p256::SecretKey::from_pkcs8_der(self.key.serialized_der()).unwrap();
        key.to_sec1_pem(LineEnding::LF).unwrap().to_string()
    }
}

fn encrypt(pkcs8_der: &[u8], params: pbes2::Parameters<'_>, passphrase: &str) -> String {
    let info = PrivateKeyInfo::try_from(pkcs8_der).unwrap();
    let encrypted = info.encrypt_with_params(params, passphrase).unwrap();
    encrypted
        .to_pem(
            <EncryptedPrivateKeyInfo<'_> as pkcs8::der::pem::PemLabel>::PEM_LABEL,
            LineEnding::LF,
        )
        .unwrap()
        .to_string()
}

/// The PKCS#1 RSA key in `tests/fixtures`, and the same key as PKCS#8 for rcgen.
pub(crate) fn rsa_key() -> (String, KeyPair) {
    let pkcs1_pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa-2048-pkcs1.pem"),
    )
    .unwrap();
    let pkcs1 = PrivatePkcs1KeyDer::from_pem_slice(pkcs1_pem.as_bytes()).unwrap();
    let info = PrivateKeyInfo::new(
        pkcs8::AlgorithmIdentifierRef {
            oid: pkcs8::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1"),
            parameters: Some(pkcs8::der::asn1::AnyRef::NULL),
        },
        pkcs1.secret_pkcs1_der(),
    );
    let pkcs8_der = pkcs8::der::Encode::to_der(&info).unwrap();
    let key =
        KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8_der.into(), &rcgen::PKCS_RSA_SHA256).unwrap();
    (pkcs1_pem, key)
}

/// A temporary directory of PEM files, removed on drop.
pub(crate) struct PemDir(TempDir);

impl PemDir {
    pub(crate) fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    pub(crate) fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Writes `cert.pem` and `key.pem` and returns a configuration serving them.
    pub(crate) fn write_pair(&self, issued: &Issued) -> TlsConfig {
        TlsConfig::new(
            self.write("cert.pem", issued.cert_pem()),
            self.write("key.pem", issued.key_pem()),
        )
    }
}

use std::path::Path;

use pkcs8::der::pem;
use pkcs8::{EncryptedPrivateKeyInfo, PrivateKeyInfo, pkcs5};
use rustls_pki_types::pem::{Error as PemError, PemObject};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::Passphrase;
use crate::error::{Result, TlsError};

const ENCRYPTED_BEGIN: &[u8] = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
const ENCRYPTED_END: &[u8] = b"-----END ENCRYPTED PRIVATE KEY-----";
const LEGACY_ENCRYPTION: &[u8] = b"Proc-Type: 4,ENCRYPTED";

/// A private key read from PEM, decrypted if it was encrypted.
pub(crate) struct DecodedKey {
    pub(crate) der: PrivateKeyDer<'static>,
    /// The key was not encrypted, yet a passphrase was given.
    pub(crate) passphrase_unused: bool,
}

/// Finds the first private key in `pem` (the contents of `path`): PKCS#8, PKCS#1, SEC1, or
/// PKCS#8 encrypted with PBES2, which `passphrase` decrypts.
pub(crate) fn decode_private_key(
    path: &Path,
    pem: &[u8],
    passphrase: Option<&Passphrase>,
) -> Result<DecodedKey> {
    if contains(pem, LEGACY_ENCRYPTION) {
        return Err(TlsError::UnsupportedKeyEncryption {
            path: path.to_path_buf(),
            reason: "legacy OpenSSL PEM encryption, Proc-Type: 4,ENCRYPTED".to_owned(),
        });
    }
    match PrivateKeyDer::from_pem_slice(pem) {
        Ok(der) => Ok(DecodedKey {
            der,
            passphrase_unused: passphrase.is_some(),
        }),
        Err(PemError::NoItemsFound) => match encrypted_block(pem) {
            Some(block) => {
                let Some(passphrase) = passphrase else {
                    return Err(TlsError::EncryptedKeyNeedsPassphrase {
                        path: path.to_path_buf(),
                    });
                };
                let der = decrypt(path, block, passphrase)?;
                Ok(DecodedKey {
                    der,
                    passphrase_unused: false,
                })
            }
            None => Err(TlsError::NoPrivateKey {
                path: path.to_path_buf(),
            }),
        },
        Err(err) => Err(TlsError::MalformedPem {
            path: path.to_path_buf(),
            reason: err.to_string(),
        }),
    }
}

fn decrypt(path: &Path, block: &[u8], passphrase: &Passphrase) -> Result<PrivateKeyDer<'static>> {
    let malformed = |reason: String| TlsError::MalformedPem {
        path: path.to_path_buf(),
        reason,
    };
    let unsupported = |reason: String| TlsError::UnsupportedKeyEncryption {
        path: path.to_path_buf(),
        reason,
    };
    let wrong_passphrase = || TlsError::WrongPassphrase {
        path: path.to_path_buf(),
    };

    let (_, encrypted) = pem::decode_vec(block).map_err(|err| malformed(err.to_string()))?;
    let info = EncryptedPrivateKeyInfo::try_from(encrypted.as_slice())
        .map_err(|err| unsupported(format!("unrecognised PKCS#8 encryption parameters: {err}")))?;
    if info.encryption_algorithm.pbes1().is_some() {
        return Err(unsupported("PKCS#8 with PBES1".to_owned()));
    }
    let document = match info.decrypt(passphrase.expose_secret()) {
        Ok(document) => document,
        // A wrong passphrase shows as bad padding (which pkcs5 0.7 reports as `EncryptFailed`),
        // or, rarely, as padding that happens to be valid around bytes that are not DER.
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs5::Error::DecryptFailed | pkcs5::Error::EncryptFailed,
        ))
        | Err(pkcs8::Error::Asn1(_)) => return Err(wrong_passphrase()),
        Err(pkcs8::Error::EncryptedPrivateKey(err)) => return Err(unsupported(err.to_string())),
        Err(err) => return Err(malformed(err.to_string())),
    };
    // The decrypted bytes are DER only if the passphrase was right.
    PrivateKeyInfo::try_from(document.as_bytes()).map_err(|_| wrong_passphrase())?;
    Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        document.as_bytes().to_vec(),
    )))
}

/// The first `ENCRYPTED PRIVATE KEY` PEM block, BEGIN to END lines included.
fn encrypted_block(pem: &[u8]) -> Option<&[u8]> {
    let start = find(pem, ENCRYPTED_BEGIN)?;
    let end = start + find(&pem[start..], ENCRYPTED_END)? + ENCRYPTED_END.len();
    Some(&pem[start..end])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

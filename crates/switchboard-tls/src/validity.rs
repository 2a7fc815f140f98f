use std::fmt;
use std::time::SystemTime;

use x509_cert::der::{self, Decode, Reader, SliceReader, Tag, TagNumber};
use x509_cert::time::Validity;

/// The validity period of a certificate.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ValidityPeriod {
    pub(crate) not_before: SystemTime,
    pub(crate) not_after: SystemTime,
}

/// Reads only the validity of a DER certificate.
///
/// The rest of the `TBSCertificate` is skipped rather than decoded: names and extensions in
/// certificates from the wild are not always strict DER, and rustls (through webpki) is the one
/// that judges the certificate itself.
pub(crate) fn leaf_validity(cert: &[u8]) -> der::Result<ValidityPeriod> {
    let mut reader = SliceReader::new(cert)?;
    let validity = reader.sequence(|certificate| {
        let validity = certificate.sequence(|tbs| {
            let version_tag = Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N0,
            };
            if tbs.peek_tag()? == version_tag {
                tbs.tlv_bytes()?;
            }
            tbs.tlv_bytes()?; // serialNumber
            tbs.tlv_bytes()?; // signature
            tbs.tlv_bytes()?; // issuer
            let validity = Validity::decode(tbs)?;
            tbs.read_slice(tbs.remaining_len())?;
            Ok(validity)
        })?;
        certificate.read_slice(certificate.remaining_len())?;
        Ok(validity)
    })?;
    reader.finish(ValidityPeriod {
        not_before: validity.not_before.to_system_time(),
        not_after: validity.not_after.to_system_time(),
    })
}

/// Displays a time as `YYYY-MM-DDTHH:MM:SSZ`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Utc(pub(crate) SystemTime);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match der::DateTime::from_system_time(self.0) {
            Ok(time) => write!(f, "{time}"),
            Err(_) => write!(f, "{:?}", self.0),
        }
    }
}

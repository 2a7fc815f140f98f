//! One signed POST to the webhook receiver, over HTTP/1.1, plain or TLS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, HOST, USER_AGENT};
use http::{Request, Uri};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::secret::Secret;

/// The header carrying the body's signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-switchboard-signature";

/// `sha256=<hex HMAC-SHA256 of body under secret>`.
pub(crate) fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 2 * digest.len());
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// The certificates of a PEM file; the error says why there are none.
pub(crate) fn read_ca(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

/// Posts batches to one URL.
pub(crate) struct Poster {
    uri: Uri,
    authority: String,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    secret: Option<Secret>,
    timeout: Duration,
}

impl Poster {
    /// A poster for `url` (`http://` or `https://`, verified against the Mozilla roots and
    /// `extra_roots`).
    ///
    /// # Errors
    /// Why `url` is not usable.
    pub(crate) fn new(
        url: &str,
        secret: Option<Secret>,
        timeout: Duration,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, String> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            roots
                .add(cert)
                .map_err(|e| format!("a CA certificate is unusable: {e}"))?;
        }
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        let secure = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("{url:?} must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| format!("{url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = authority
            .port_u16()
            .unwrap_or(if secure { 443 } else { 80 });
        let tls = if secure {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            let name = ServerName::try_from(host.clone())
                .map_err(|e| format!("{host:?} is not a TLS server name: {e}"))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Self {
            authority: authority.as_str().to_owned(),
            uri,
            host,
            port,
            tls,
            secret,
            timeout,
        })
    }

    /// POSTs `body`; `Ok` once the receiver answered 2xx, else why not.
    pub(crate) async fn post(&self, body: Bytes) -> Result<(), String> {
        let path = self
            .uri
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str);
        let mut request = Request::post(path)
            .header(HOST, &self.authority)
            .header(CONTENT_TYPE, "application/json")
            .header(
                USER_AGENT,
                concat!("switchboard/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret.expose(), &body));
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let attempt = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
            let _ = tcp.set_nodelay(true);
            let status = match &self.tls {
                Some((connector, name)) => {
                    let stream = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| format!("TLS: {e}"))?;
                    exchange(stream, request).await?
                }
                None => exchange(tcp, request).await?,
            };
            if status.is_success() {
                Ok(())
            } else {
                Err(format!("the receiver answered {status}"))
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout)))
    }
}

/// Sends `request` over `io` and returns the answer's status.
async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> Result<http::StatusCode, String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(connection);
    let answer = sender.send_request(request).await;
    driver.abort();
    answer
        .map(|response| response.status())
        .map_err(|e| format!("HTTP: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_taken() {
        let t = Duration::from_secs(1);
        assert!(Poster::new("http://127.0.0.1:9/hook", None, t, Vec::new()).is_ok());
        assert!(Poster::new("https://hooks.example.com/x", None, t, Vec::new()).is_ok());
        for bad in ["ftp://x/y", "127.0.0.1:80", "http:///path", "not a url"] {
            assert!(Poster::new(bad, None, t, Vec::new()).is_err(), "{bad}");
        }
    }
}

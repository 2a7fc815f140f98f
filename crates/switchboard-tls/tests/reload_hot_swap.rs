//! Reloading replaces the certificate new connections see, drops no live connection, and
//! keeps the old certificate serving when the new files are bad.

mod support;

use std::time::{Duration, SystemTime};

use support::pki::{Issued, PemDir, TestCa};
use support::wss::{EchoServer, client_config, connect, echo, server_leaf};
use switchboard_tls::{ReloadableAcceptor, TlsError};

/// Replaces the pair in place, stamping the files with a distinct modification time so a
/// change is visible even on a coarse-grained file system.
fn renew(dir: &PemDir, issued: &Issued, stamp: u64) {
    let modified = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + stamp);
    for (name, contents) in [
        ("cert.pem", issued.cert_pem()),
        ("key.pem", issued.key_pem()),
    ] {
        let path = dir.write(name, contents);
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }
}

#[tokio::test]
async fn new_connections_see_the_reloaded_certificate_while_an_open_one_keeps_working() {
    let ca = TestCa::new("test CA");
    let (old, new) = (ca.server(), ca.server());
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&old)).unwrap();
    let echo_server = EchoServer::start(acceptor.clone()).await;
    let mut a = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();
    assert_eq!(&server_leaf(&a), old.cert.der());

    renew(&dir, &new, 1);
    let outcome = acceptor.reload().unwrap();

    assert_eq!(&outcome.certificate.leaf, new.cert.der());
    let mut b = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();
    assert_eq!(&server_leaf(&b), new.cert.der());
    assert_eq!(echo(&mut a, "A is still here").await, "A is still here");
    assert_eq!(echo(&mut b, "B too").await, "B too");
}

#[tokio::test]
async fn a_bad_new_pair_is_refused_and_the_old_certificate_keeps_serving() {
    let ca = TestCa::new("test CA");
    let old = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&old)).unwrap();
    let echo_server = EchoServer::start(acceptor.clone()).await;
    let mut a = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();
    // A renewal tool that wrote the new certificate but not yet its key.
    dir.write("cert.pem", ca.server().cert_pem());

    let err = acceptor.reload().unwrap_err();

    assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert_eq!(&acceptor.certificate().leaf, old.cert.der());
    let b = connect(echo_server.addr, client_config(&ca, None))
        .await
        .unwrap();
    assert_eq!(&server_leaf(&b), old.cert.der());
    assert_eq!(echo(&mut a, "still up").await, "still up");
}

#[test]
fn reload_if_changed_does_nothing_while_the_files_are_unchanged() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();

    assert!(acceptor.reload_if_changed().unwrap().is_none());
}

#[test]
fn reload_if_changed_picks_up_a_renewed_pair() {
    let ca = TestCa::new("test CA");
    let new = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();

    renew(&dir, &new, 1);
    let outcome = acceptor.reload_if_changed().unwrap().unwrap();

    assert_eq!(&outcome.certificate.leaf, new.cert.der());
    assert_eq!(&acceptor.certificate().leaf, new.cert.der());
    assert!(acceptor.reload_if_changed().unwrap().is_none());
}

#[test]
fn a_failed_attempt_is_retried_only_once_the_files_change_again() {
    let ca = TestCa::new("test CA");
    let (old, new) = (ca.server(), ca.server());
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&old)).unwrap();

    dir.write("cert.pem", new.cert_pem());
    assert!(matches!(
        acceptor.reload_if_changed(),
        Err(TlsError::KeyMismatch { .. })
    ));
    assert!(acceptor.reload_if_changed().unwrap().is_none());
    assert_eq!(&acceptor.certificate().leaf, old.cert.der());

    renew(&dir, &new, 2);
    let outcome = acceptor.reload_if_changed().unwrap().unwrap();
    assert_eq!(&outcome.certificate.leaf, new.cert.der());
}

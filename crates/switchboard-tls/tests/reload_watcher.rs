//! The watcher reloads when the files change, reports every attempt, and stops when dropped.
//! Time is paused: polls happen in virtual time.

mod support;

use std::time::{Duration, SystemTime};

use support::pki::{Issued, PemDir, TestCa};
use switchboard_tls::{ReloadTrigger, ReloadWatcherConfig, ReloadableAcceptor, TlsError};

const POLL: Duration = Duration::from_secs(5);

fn polling() -> ReloadWatcherConfig {
    ReloadWatcherConfig::default()
        .poll_interval(Some(POLL))
        .reload_on_sighup(false)
}

fn stamp(path: &std::path::Path, stamp: u64) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + stamp))
        .unwrap();
}

fn renew(dir: &PemDir, issued: &Issued, at: u64) {
    stamp(&dir.write("cert.pem", issued.cert_pem()), at);
    stamp(&dir.write("key.pem", issued.key_pem()), at);
}

#[tokio::test(start_paused = true)]
async fn a_renewed_pair_is_picked_up_at_the_next_poll() {
    let ca = TestCa::new("test CA");
    let new = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();
    let mut watcher = acceptor.spawn_reload_watcher(polling()).unwrap();

    renew(&dir, &new, 1);
    let event = watcher.next_event().await.unwrap();

    assert_eq!(event.trigger, ReloadTrigger::FileChange);
    assert_eq!(&event.result.unwrap().certificate.leaf, new.cert.der());
    assert_eq!(&acceptor.certificate().leaf, new.cert.der());
}

#[tokio::test(start_paused = true)]
async fn unchanged_files_are_not_reloaded() {
    let ca = TestCa::new("test CA");
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();
    let mut watcher = acceptor.spawn_reload_watcher(polling()).unwrap();

    let waited = tokio::time::timeout(POLL * 100, watcher.next_event()).await;

    assert!(
        waited.is_err(),
        "no reload attempt expected, got {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_bad_pair_is_reported_and_the_old_certificate_keeps_serving() {
    let ca = TestCa::new("test CA");
    let old = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&old)).unwrap();
    let mut watcher = acceptor.spawn_reload_watcher(polling()).unwrap();

    stamp(&dir.write("key.pem", ca.server().key_pem()), 1);
    let event = watcher.next_event().await.unwrap();

    let err = event.result.unwrap_err();
    assert!(matches!(*err, TlsError::KeyMismatch { .. }), "{err:?}");
    assert_eq!(&acceptor.certificate().leaf, old.cert.der());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_watcher_stops_it() {
    let ca = TestCa::new("test CA");
    let old = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&old)).unwrap();
    let watcher = acceptor.spawn_reload_watcher(polling()).unwrap();

    drop(watcher);
    renew(&dir, &ca.server(), 1);
    // Ten polls of virtual time: a live watcher would have reloaded by now.
    tokio::time::sleep(POLL * 10).await;

    assert_eq!(&acceptor.certificate().leaf, old.cert.der());
    assert!(acceptor.reload_if_changed().unwrap().is_some());
}

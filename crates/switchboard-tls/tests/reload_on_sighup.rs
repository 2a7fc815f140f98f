//! SIGHUP reloads the certificate. In a binary of its own: the signal goes to the process.
#![cfg(unix)]

mod support;

use std::time::Duration;

use rustix::process::{Signal, getpid, kill_process};
use support::pki::{PemDir, TestCa};
use switchboard_tls::{ReloadTrigger, ReloadWatcherConfig, ReloadableAcceptor};

#[tokio::test]
async fn sighup_reloads_the_certificate() {
    let ca = TestCa::new("test CA");
    let new = ca.server();
    let dir = PemDir::new();
    let acceptor = ReloadableAcceptor::new(dir.write_pair(&ca.server())).unwrap();
    let config = ReloadWatcherConfig::default().poll_interval(None);
    let mut watcher = acceptor.spawn_reload_watcher(config).unwrap();
    dir.write_pair(&new);

    kill_process(getpid(), Signal::HUP).unwrap();
    // A guard against a lost signal hanging the suite, not a wait for the event.
    let event = tokio::time::timeout(Duration::from_secs(60), watcher.next_event())
        .await
        .expect("no reload after SIGHUP")
        .unwrap();

    assert_eq!(event.trigger, ReloadTrigger::Signal);
    assert_eq!(&event.result.unwrap().certificate.leaf, new.cert.der());
    assert_eq!(&acceptor.certificate().leaf, new.cert.der());
}

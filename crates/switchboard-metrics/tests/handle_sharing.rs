//! The handle: cheap clones sharing one set of metrics, and a no-op variant.

use std::thread;

use switchboard_metrics::{DisconnectReason, Metrics, MetricsSnapshot};

#[test]
fn clones_record_into_the_same_metrics() {
    let metrics = Metrics::new();
    let transport = metrics.clone();
    transport.message_received();
    metrics.message_received();
    assert_eq!(
        metrics.snapshot().counters["websocket_messages_received_total"],
        2
    );
}

#[test]
fn concurrent_recording_from_many_threads_loses_nothing() {
    let metrics = Metrics::new();
    thread::scope(|s| {
        for _ in 0..4 {
            let metrics = metrics.clone();
            s.spawn(move || {
                for _ in 0..10_000 {
                    metrics.message_received();
                    metrics.connection_opened();
                    metrics.connection_closed(DisconnectReason::ConnectionLost);
                }
            });
        }
    });
    let snapshot = metrics.snapshot();
    assert_eq!(
        snapshot.counters["websocket_messages_received_total"],
        40_000
    );
    assert_eq!(
        snapshot.counters["websocket_connections_count_total"],
        40_000
    );
    assert_eq!(snapshot.gauges["websocket_connections_total"], 0);
}

#[test]
fn the_handle_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Metrics>();
}

#[test]
fn a_noop_handle_records_nothing_and_exports_only_eof() {
    let metrics = Metrics::noop();
    metrics.connection_opened();
    metrics.messages_sent(3);
    assert!(!metrics.is_enabled());
    assert_eq!(metrics.encode_openmetrics().unwrap(), "# EOF\n");
    assert_eq!(metrics.snapshot(), MetricsSnapshot::default());
}

#[test]
fn a_real_handle_is_enabled() {
    assert!(Metrics::new().is_enabled());
}

#[test]
fn debug_does_not_dump_the_registry() {
    assert_eq!(
        format!("{:?}", Metrics::new()),
        "Metrics { enabled: true, .. }"
    );
    assert_eq!(
        format!("{:?}", Metrics::noop()),
        "Metrics { enabled: false, .. }"
    );
}

#[test]
fn every_label_is_found_by_its_exported_name() {
    use switchboard_metrics::{AuthFailure, CapKind};
    for l in AuthFailure::ALL {
        assert_eq!(AuthFailure::from_name(l.as_str()), Some(*l));
    }
    for l in CapKind::ALL {
        assert_eq!(CapKind::from_name(l.as_str()), Some(*l));
    }
    assert_eq!(CapKind::from_name("no_such_cap"), None);
}

//! The exported names, types and order: what dashboards and alerts are built on.

use switchboard_metrics::{Metrics, OPENMETRICS_CONTENT_TYPE};

/// The complete exposition of a handle nothing was recorded into.
const FRESH: &str = include_str!("golden/fresh.openmetrics");

fn exposition(metrics: &Metrics) -> String {
    metrics.encode_openmetrics().unwrap()
}

#[test]
fn a_fresh_handle_exports_every_metric_at_zero_in_a_fixed_order() {
    assert_eq!(exposition(&Metrics::new()), FRESH);
}

#[test]
fn the_content_type_is_openmetrics_1_0_0() {
    assert_eq!(
        OPENMETRICS_CONTENT_TYPE,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
}

#[test]
fn the_exposition_ends_with_the_eof_marker() {
    assert!(exposition(&Metrics::new()).ends_with("\n# EOF\n"));
}

#[test]
fn the_active_connections_gauge_keeps_the_seed_name_with_its_total_suffix() {
    let text = exposition(&Metrics::new());
    assert!(
        text.contains("# TYPE websocket_connections_total gauge\nwebsocket_connections_total 0\n")
    );
}

#[test]
fn connections_opened_is_a_counter_exported_with_the_forced_total_suffix() {
    let text = exposition(&Metrics::new());
    assert!(text.contains(
        "# TYPE websocket_connections_count counter\nwebsocket_connections_count_total 0\n"
    ));
}

#[test]
fn seed_counters_already_ending_in_total_keep_their_exact_names() {
    let text = exposition(&Metrics::new());
    for line in [
        "websocket_disconnections_total 0",
        "websocket_messages_sent_total 0",
        "websocket_messages_received_total 0",
        r#"websocket_errors_total{code="bad_request"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
}

#[test]
fn every_series_name_is_a_switchboard_name() {
    let text = exposition(&Metrics::new());
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("websocket_"), "unexpected series {line:?}");
    }
}

#[test]
fn labels_are_bounded_so_the_series_count_is_fixed() {
    let metrics = Metrics::new();
    let before = exposition(&metrics).lines().count();
    for _ in 0..1_000 {
        metrics.connection_opened();
        metrics.message_received();
    }
    assert_eq!(exposition(&metrics).lines().count(), before);
}

//! The JSON snapshot for the legacy `/metrics` route.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_metrics::{BackplaneState, ErrorCode, Metrics};

fn json_of(metrics: &Metrics) -> Value {
    serde_json::to_value(metrics.snapshot()).unwrap()
}

#[test]
fn the_snapshot_has_five_maps_keyed_by_exported_name() {
    let json = json_of(&Metrics::new());
    let keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "counters",
            "gauges",
            "histograms",
            "labelled_counters",
            "labelled_gauges"
        ]
    );
    assert_eq!(json["counters"]["websocket_connections_count_total"], 0);
    assert_eq!(json["gauges"]["websocket_connections_total"], 0);
    assert_eq!(
        json["labelled_counters"]["websocket_errors_total"]["internal"],
        0
    );
    assert_eq!(
        json["labelled_gauges"]["websocket_backplane_state"]["up"],
        1
    );
}

#[test]
fn the_snapshot_reports_recorded_counters_and_gauges() {
    let metrics = Metrics::new();
    metrics.connection_opened();
    metrics.connection_opened();
    metrics.messages_sent(7);
    metrics.error(ErrorCode::Forbidden);
    metrics.backplane_state(BackplaneState::Degraded);
    let json = json_of(&metrics);
    assert_eq!(json["gauges"]["websocket_connections_total"], 2);
    assert_eq!(json["counters"]["websocket_connections_count_total"], 2);
    assert_eq!(json["counters"]["websocket_messages_sent_total"], 7);
    assert_eq!(
        json["labelled_counters"]["websocket_errors_total"]["forbidden"],
        1
    );
    assert_eq!(
        json["labelled_gauges"]["websocket_backplane_state"],
        json!({"degraded": 1, "down": 0, "up": 0})
    );
}

#[test]
fn a_histogram_snapshot_has_count_sum_and_quantile_estimates() {
    let metrics = Metrics::new();
    metrics.observe_latency(Duration::from_millis(1));
    metrics.observe_latency(Duration::from_micros(2_500));
    assert_eq!(
        json_of(&metrics)["histograms"]["websocket_message_latency_ms"],
        json!({"count": 2, "sum": 3.5, "p50": 1.0, "p95": 2.35, "p99": 2.47})
    );
}

#[test]
fn quantiles_of_an_empty_histogram_are_null() {
    assert_eq!(
        json_of(&Metrics::new())["histograms"]["websocket_backplane_lag_ms"],
        json!({"count": 0, "sum": 0.0, "p50": null, "p95": null, "p99": null})
    );
}

#[test]
fn the_snapshot_lists_the_same_metrics_as_the_exposition() {
    let metrics = Metrics::new();
    let snapshot = metrics.snapshot();
    let text = metrics.encode_openmetrics().unwrap();
    let snapshot_names = snapshot.counters.len()
        + snapshot.gauges.len()
        + snapshot.labelled_counters.len()
        + snapshot.labelled_gauges.len()
        + snapshot.histograms.len();
    assert_eq!(snapshot_names, text.matches("# TYPE ").count());
    for name in snapshot
        .counters
        .keys()
        .chain(snapshot.labelled_counters.keys())
    {
        assert!(text.contains(&format!("\n{name}")), "{name} not exported");
    }
}

#[test]
fn the_snapshot_keeps_seed_names_when_the_exposition_is_prefixed() {
    let metrics = Metrics::builder().prefix("edge").build().unwrap();
    metrics.message_received();
    assert_eq!(
        json_of(&metrics)["counters"]["websocket_messages_received_total"],
        1
    );
}

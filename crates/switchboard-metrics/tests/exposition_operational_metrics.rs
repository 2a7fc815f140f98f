//! The metrics beyond the seeds after recorded events, as exact exposition lines.

use std::time::Duration;

use switchboard_metrics::{
    AuthFailure, BackplaneState, CapKind, DegradedReason, Metrics, Priority,
};

#[track_caller]
fn assert_lines(metrics: &Metrics, expected: &[&str]) {
    let text = metrics.encode_openmetrics().unwrap();
    for line in expected {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in:\n{text}"
        );
    }
}

#[test]
fn rate_limited_messages_are_counted() {
    let metrics = Metrics::new();
    metrics.rate_limited();
    metrics.rate_limited();
    assert_lines(&metrics, &["websocket_rate_limited_messages_total 2"]);
}

#[test]
fn auth_failures_are_counted_by_reason() {
    let metrics = Metrics::new();
    metrics.auth_failure(AuthFailure::Expired);
    metrics.auth_failure(AuthFailure::ForbiddenOrigin);
    metrics.auth_failure(AuthFailure::Expired);
    assert_lines(
        &metrics,
        &[
            r#"websocket_auth_failures_total{reason="expired"} 2"#,
            r#"websocket_auth_failures_total{reason="forbidden_origin"} 1"#,
            r#"websocket_auth_failures_total{reason="missing"} 0"#,
        ],
    );
}

#[test]
fn cap_rejections_are_counted_per_ip_and_global() {
    let metrics = Metrics::new();
    metrics.cap_rejected(CapKind::PerIp);
    metrics.cap_rejected(CapKind::PerIp);
    metrics.cap_rejected(CapKind::Global);
    assert_lines(
        &metrics,
        &[
            r#"websocket_connection_cap_rejections_total{cap="per_ip"} 2"#,
            r#"websocket_connection_cap_rejections_total{cap="global"} 1"#,
        ],
    );
}

#[test]
fn the_backplane_starts_up() {
    assert_lines(
        &Metrics::new(),
        &[
            r#"websocket_backplane_state{state="up"} 1"#,
            r#"websocket_backplane_state{state="degraded"} 0"#,
            r#"websocket_backplane_state{state="down"} 0"#,
        ],
    );
}

#[test]
fn exactly_one_backplane_state_is_set_at_a_time() {
    let metrics = Metrics::new();
    metrics.backplane_state(BackplaneState::Down);
    assert_lines(
        &metrics,
        &[
            r#"websocket_backplane_state{state="up"} 0"#,
            r#"websocket_backplane_state{state="degraded"} 0"#,
            r#"websocket_backplane_state{state="down"} 1"#,
        ],
    );
}

#[test]
fn a_degradation_sets_the_state_and_says_why() {
    let metrics = Metrics::new();
    metrics.backplane_degraded(DegradedReason::LivenessProbeFailed);
    assert_lines(
        &metrics,
        &[
            r#"websocket_backplane_state{state="degraded"} 1"#,
            r#"websocket_backplane_state{state="up"} 0"#,
            r#"websocket_backplane_degradations_total{reason="liveness_probe_failed"} 1"#,
        ],
    );
    metrics.backplane_state(BackplaneState::Up);
    assert_lines(
        &metrics,
        &[
            r#"websocket_backplane_state{state="up"} 1"#,
            r#"websocket_backplane_degradations_total{reason="liveness_probe_failed"} 1"#,
        ],
    );
}

#[test]
fn backplane_publishes_receives_and_lag_are_recorded() {
    let metrics = Metrics::new();
    metrics.backplane_published();
    metrics.backplane_received();
    metrics.backplane_received();
    metrics.backplane_lag(Duration::from_millis(3));
    assert_lines(
        &metrics,
        &[
            "websocket_backplane_published_total 1",
            "websocket_backplane_received_total 2",
            "websocket_backplane_lag_ms_sum 3.0",
            "websocket_backplane_lag_ms_count 1",
            r#"websocket_backplane_lag_ms_bucket{le="2.5"} 0"#,
            r#"websocket_backplane_lag_ms_bucket{le="5.0"} 1"#,
        ],
    );
}

#[test]
fn frame_handling_is_its_own_histogram_apart_from_message_latency() {
    let metrics = Metrics::new();
    metrics.observe_handling(Duration::from_micros(300));
    metrics.observe_handling(Duration::from_millis(2));
    metrics.observe_latency(Duration::from_millis(7));
    assert_lines(
        &metrics,
        &[
            "websocket_frame_handling_ms_sum 2.3",
            "websocket_frame_handling_ms_count 2",
            r#"websocket_frame_handling_ms_bucket{le="0.25"} 0"#,
            r#"websocket_frame_handling_ms_bucket{le="0.5"} 1"#,
            r#"websocket_frame_handling_ms_bucket{le="2.5"} 2"#,
            "websocket_message_latency_ms_sum 7.0",
            "websocket_message_latency_ms_count 1",
        ],
    );
}

#[test]
fn evictions_are_counted_by_priority() {
    let metrics = Metrics::new();
    metrics.evicted(Priority::Low);
    metrics.evicted(Priority::Low);
    metrics.evicted(Priority::Normal);
    assert_lines(
        &metrics,
        &[
            r#"websocket_outbound_evictions_total{priority="low"} 2"#,
            r#"websocket_outbound_evictions_total{priority="normal"} 1"#,
            r#"websocket_outbound_evictions_total{priority="critical"} 0"#,
        ],
    );
}

#[test]
fn outbound_queue_depth_follows_enqueues_and_dequeues() {
    let metrics = Metrics::new();
    metrics.outbound_enqueued(5);
    metrics.outbound_dequeued(3);
    assert_lines(&metrics, &["websocket_outbound_queue_depth 2"]);
}

#[test]
fn an_eviction_does_not_move_the_queue_depth_by_itself() {
    let metrics = Metrics::new();
    metrics.outbound_enqueued(1);
    metrics.evicted(Priority::Low);
    assert_lines(&metrics, &["websocket_outbound_queue_depth 1"]);
}

#[test]
fn presence_members_follow_joins_and_leaves() {
    let metrics = Metrics::new();
    metrics.presence_joined();
    metrics.presence_joined();
    metrics.presence_left();
    assert_lines(&metrics, &["websocket_presence_members 1"]);
}

#[test]
fn recoveries_are_counted_as_recovered_or_not() {
    let metrics = Metrics::new();
    metrics.recovery(true);
    metrics.recovery(true);
    metrics.recovery(false);
    assert_lines(
        &metrics,
        &[
            r#"websocket_recoveries_total{result="recovered"} 2"#,
            r#"websocket_recoveries_total{result="not_recovered"} 1"#,
        ],
    );
}

#[test]
fn client_reconnects_are_counted() {
    let metrics = Metrics::new();
    metrics.client_reconnect();
    assert_lines(&metrics, &["websocket_client_reconnects_total 1"]);
}

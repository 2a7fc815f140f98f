//! The seeds' eight metrics after recorded events, as exact exposition lines.

use std::time::Duration;

use switchboard_metrics::{DisconnectReason, ErrorCode, Metrics};

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
fn opening_three_connections_and_closing_one_leaves_two_active() {
    let metrics = Metrics::new();
    for _ in 0..3 {
        metrics.connection_opened();
    }
    metrics.connection_closed(DisconnectReason::ClientClosed);
    assert_lines(
        &metrics,
        &[
            "websocket_connections_total 2",
            "websocket_connections_count_total 3",
            "websocket_disconnections_total 1",
        ],
    );
}

#[test]
fn a_close_is_also_counted_by_its_reason() {
    let metrics = Metrics::new();
    metrics.connection_opened();
    metrics.connection_opened();
    metrics.connection_closed(DisconnectReason::SlowConsumer);
    metrics.connection_closed(DisconnectReason::IdleTimeout);
    assert_lines(
        &metrics,
        &[
            r#"websocket_disconnections_by_reason_total{reason="slow_consumer"} 1"#,
            r#"websocket_disconnections_by_reason_total{reason="idle_timeout"} 1"#,
            r#"websocket_disconnections_by_reason_total{reason="client_closed"} 0"#,
            "websocket_disconnections_total 2",
        ],
    );
}

#[test]
fn messages_sent_add_up_and_messages_received_count_one_each() {
    let metrics = Metrics::new();
    metrics.messages_sent(40);
    metrics.messages_sent(2);
    metrics.message_received();
    assert_lines(
        &metrics,
        &[
            "websocket_messages_sent_total 42",
            "websocket_messages_received_total 1",
        ],
    );
}

#[test]
fn latency_lands_in_millisecond_buckets_with_cumulative_counts() {
    let metrics = Metrics::new();
    metrics.observe_latency(Duration::from_micros(80));
    metrics.observe_latency(Duration::from_millis(1));
    metrics.observe_latency(Duration::from_micros(1_500));
    metrics.observe_latency(Duration::from_secs(30));
    assert_lines(
        &metrics,
        &[
            "websocket_message_latency_ms_sum 30002.58",
            "websocket_message_latency_ms_count 4",
            r#"websocket_message_latency_ms_bucket{le="0.1"} 1"#,
            r#"websocket_message_latency_ms_bucket{le="0.5"} 1"#,
            r#"websocket_message_latency_ms_bucket{le="1.0"} 2"#,
            r#"websocket_message_latency_ms_bucket{le="2.5"} 3"#,
            r#"websocket_message_latency_ms_bucket{le="10000.0"} 3"#,
            r#"websocket_message_latency_ms_bucket{le="+Inf"} 4"#,
        ],
    );
}

#[test]
fn errors_are_counted_by_protocol_error_code() {
    let metrics = Metrics::new();
    metrics.error(ErrorCode::RateLimited);
    metrics.error(ErrorCode::RateLimited);
    metrics.error(ErrorCode::NotSubscribed);
    assert_lines(
        &metrics,
        &[
            r#"websocket_errors_total{code="rate_limited"} 2"#,
            r#"websocket_errors_total{code="not_subscribed"} 1"#,
            r#"websocket_errors_total{code="internal"} 0"#,
        ],
    );
}

#[test]
fn the_error_label_values_are_the_protocol_codes() {
    let values: Vec<_> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(
        values,
        [
            "bad_request",
            "unauthorized",
            "forbidden",
            "rate_limited",
            "too_large",
            "not_subscribed",
            "unsupported",
            "unavailable",
            "internal",
        ]
    );
}

#[test]
fn sessions_are_a_gauge_of_their_own() {
    let metrics = Metrics::new();
    metrics.session_started();
    metrics.session_started();
    metrics.session_ended();
    assert_lines(&metrics, &["websocket_active_sessions 1"]);
}

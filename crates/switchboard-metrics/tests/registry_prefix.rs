//! A name prefix, and the application's own metrics next to switchboard's.

use std::fmt;

use switchboard_metrics::prometheus_client::collector::Collector;
use switchboard_metrics::prometheus_client::encoding::DescriptorEncoder;
use switchboard_metrics::prometheus_client::metrics::gauge::Gauge;
use switchboard_metrics::prometheus_client::registry::Registry;
use switchboard_metrics::{Metrics, MetricsError};

#[test]
fn no_prefix_by_default() {
    let text = Metrics::new().encode_openmetrics().unwrap();
    assert!(text.starts_with("# HELP websocket_connections_total "));
}

#[test]
fn a_prefix_is_prepended_to_every_name_with_an_underscore() {
    let metrics = Metrics::builder().prefix("edge").build().unwrap();
    metrics.connection_opened();
    let text = metrics.encode_openmetrics().unwrap();
    assert!(text.contains("\nedge_websocket_connections_total 1\n"));
    assert!(text.contains("\nedge_websocket_connections_count_total 1\n"));
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("edge_websocket_"), "unprefixed {line:?}");
    }
}

#[test]
fn an_invalid_prefix_is_rejected() {
    for prefix in ["", "1edge", "edge-1", "édge", "edge:"] {
        let err = Metrics::builder().prefix(prefix).build().unwrap_err();
        assert!(
            matches!(err, MetricsError::InvalidPrefix(p) if p == prefix),
            "{prefix:?}"
        );
    }
}

#[test]
fn application_metrics_are_exported_before_switchboards() {
    let mut registry = Registry::default();
    let workers: Gauge = Gauge::default();
    registry.register("app_workers", "Worker tasks", workers.clone());
    let metrics = Metrics::builder().registry(registry).build().unwrap();
    workers.set(4);
    let text = metrics.encode_openmetrics().unwrap();
    // prometheus-client ends registered help texts with a period.
    assert!(text.starts_with(
        "# HELP app_workers Worker tasks.\n# TYPE app_workers gauge\napp_workers 4\n"
    ));
    assert!(text.contains("\nwebsocket_connections_total 0\n"));
    assert!(text.ends_with("\n# EOF\n"));
}

#[test]
fn the_prefix_applies_to_switchboards_metrics_only() {
    let mut registry = Registry::default();
    registry.register("app_workers", "Worker tasks", Gauge::<i64>::default());
    let metrics = Metrics::builder()
        .prefix("sb")
        .registry(registry)
        .build()
        .unwrap();
    let text = metrics.encode_openmetrics().unwrap();
    assert!(text.contains("\napp_workers 0\n"));
    assert!(text.contains("\nsb_websocket_connections_total 0\n"));
}

#[derive(Debug)]
struct Broken;

impl Collector for Broken {
    fn encode(&self, _: DescriptorEncoder<'_>) -> fmt::Result {
        Err(fmt::Error)
    }
}

#[test]
fn an_application_metric_that_fails_to_encode_is_an_encode_error() {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Broken));
    let metrics = Metrics::builder().registry(registry).build().unwrap();
    assert!(matches!(
        metrics.encode_openmetrics(),
        Err(MetricsError::Encode)
    ));
}

#[test]
fn a_host_registry_built_elsewhere_exports_the_same_values_with_the_prefix() {
    use switchboard_metrics::prometheus_client::encoding::text::encode;
    // The host's registry exists before switchboard and stays the host's.
    let mut host = Registry::default();
    let queue: Gauge = Gauge::default();
    host.register("app_queue", "The application's queue", queue.clone());
    queue.set(3);

    let metrics = Metrics::builder().prefix("edge").build().unwrap();
    metrics.register_in(&mut host);
    metrics.connection_opened();
    metrics.connection_opened();

    let mut text = String::new();
    encode(&mut text, &host).unwrap();
    assert!(text.contains("\napp_queue 3\n"), "{text}");
    assert!(
        text.contains("\nedge_websocket_connections_total 2\n"),
        "{text}"
    );
    // Recorded once, read by both registries.
    let own = metrics.encode_openmetrics().unwrap();
    assert!(own.contains("\nedge_websocket_connections_total 2\n"));
    assert!(!own.contains("app_queue"));
    // Every switchboard series appears once in the host's exposition.
    let series = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("edge_websocket_connections_total "))
            .count()
    };
    assert_eq!(series(&text), 1);

    // A handle that records nothing registers nothing.
    let mut empty = Registry::default();
    Metrics::noop().register_in(&mut empty);
    let mut text = String::new();
    encode(&mut text, &empty).unwrap();
    assert_eq!(text, "# EOF\n");
}

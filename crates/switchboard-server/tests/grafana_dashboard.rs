//! docs/grafana-dashboard.json queries only metrics the server exports.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::{get, start, test_config};

/// Every `expr` and query `definition` in the dashboard.
fn queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "definition", Value::String(query)) => out.push(query.clone()),
                    _ => queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// The identifiers in a PromQL query that name a series: followed by `{`, or starting
/// with `websocket_`. (Functions are followed by `(`, labels by `=` or `,`, and durations
/// sit in `[...]`, so none of them is taken.)
fn series_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut chars = query.char_indices().peekable();
    let mut in_string = false;
    while let Some((start, c)) = chars.next() {
        if c == '"' {
            in_string = !in_string;
            continue;
        }
        if in_string || !(c.is_ascii_alphabetic() || c == '_') {
            continue;
        }
        let mut end = start + c.len_utf8();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                end = i + c.len_utf8();
                chars.next();
            } else {
                break;
            }
        }
        let ident = &query[start..end];
        let next = query[end..].chars().next();
        if next == Some('{') || ident.starts_with("websocket_") {
            names.push(ident.to_owned());
        }
    }
    names
}

#[tokio::test]
async fn every_dashboard_query_names_a_metric_the_server_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/grafana-dashboard.json"
    );
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .expect("the dashboard is JSON");
    let mut found = Vec::new();
    queries(&dashboard, &mut found);
    assert!(found.len() >= 16, "queries: {found:?}");

    let server = start(test_config()).await;
    let answer = get(server.local_addr(), "/metrics/prometheus").await;
    assert_eq!(answer.status, 200);
    let exported: BTreeSet<String> = answer
        .text()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect();
    assert!(
        exported.contains("websocket_connections_total"),
        "{exported:?}"
    );

    let mut used = BTreeSet::new();
    for query in &found {
        let names = series_names(query);
        assert!(!names.is_empty(), "no metric in {query:?}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{name} (in {query:?}) is not exported; exported: {exported:?}"
            );
            used.insert(name);
        }
    }
    // The dashboard shows every family the server exports (histograms through their
    // buckets, sums and counts).
    let families = |names: &BTreeSet<String>| -> BTreeSet<String> {
        names
            .iter()
            .map(|n| {
                n.trim_end_matches("_bucket")
                    .trim_end_matches("_sum")
                    .trim_end_matches("_count")
                    .to_owned()
            })
            .collect()
    };
    let missing: Vec<_> = families(&exported)
        .difference(&families(&used))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn series_names_skip_functions_labels_and_strings() {
    assert_eq!(
        series_names(
            r#"histogram_quantile(0.99, sum by (le) (rate(websocket_x_bucket{instance=~"$instance",a="websocket_y"}[$__rate_interval])))"#
        ),
        ["websocket_x_bucket"]
    );
    assert_eq!(
        series_names("up{job=\"x\"} + websocket_z"),
        ["up", "websocket_z"]
    );
}

//! The JSON snapshot served on the legacy `/metrics` route.

use std::collections::BTreeMap;
use std::convert::Infallible;

use serde::Serialize;

use crate::catalogue::{LabelledCounters, Visitor};
use crate::histogram::HistogramReading;
use crate::labels::Label;

/// Every switchboard metric at one moment, keyed by exported name (without any prefix), ready
/// to serialize as JSON.
///
/// The shape, with maps sorted by key:
///
/// ```json
/// {
///   "counters": { "websocket_messages_sent_total": 3, ... },
///   "gauges": { "websocket_connections_total": 1, ... },
///   "labelled_counters": { "websocket_errors_total": { "bad_request": 0, ... }, ... },
///   "labelled_gauges": { "websocket_backplane_state": { "degraded": 0, "down": 0, "up": 1 } },
///   "histograms": {
///     "websocket_message_latency_ms": { "count": 2, "sum": 3.5, "p50": 1.0, "p95": 2.35, "p99": 2.47 },
///     ...
///   }
/// }
/// ```
///
/// Every metric is present, at zero when nothing was recorded; a quantile is `null` when its
/// histogram is empty. A [`Metrics::noop`](crate::Metrics::noop) handle yields empty maps.
/// Metrics an application registered itself are not included: they are in the OpenMetrics
/// text only.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Unlabelled counters, by exported name (ending in `_total`).
    pub counters: BTreeMap<&'static str, u64>,
    /// Unlabelled gauges, by exported name.
    pub gauges: BTreeMap<&'static str, i64>,
    /// Labelled counters, by exported name, then by label value.
    pub labelled_counters: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Labelled gauges, by exported name, then by label value.
    pub labelled_gauges: BTreeMap<&'static str, BTreeMap<&'static str, i64>>,
    /// Histograms, by exported name (without the `_bucket`, `_sum`, `_count` suffixes).
    pub histograms: BTreeMap<&'static str, HistogramSnapshot>,
}

/// A histogram's count, sum and quantile estimates, in the histogram's unit (milliseconds).
///
/// Quantiles are estimated from the buckets as PromQL's `histogram_quantile` does: linear
/// interpolation inside the bucket, and the highest finite bound (10 000 ms) when the rank
/// falls in the `+Inf` bucket; rounded to the microsecond (0.001 ms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// Observations.
    pub count: u64,
    /// Sum of the observations.
    pub sum: f64,
    /// Median estimate; `None` without observations.
    pub p50: Option<f64>,
    /// 95th percentile estimate; `None` without observations.
    pub p95: Option<f64>,
    /// 99th percentile estimate; `None` without observations.
    pub p99: Option<f64>,
}

impl Visitor for MetricsSnapshot {
    type Error = Infallible;

    fn counter(&mut self, name: &'static str, _: &str, value: u64) -> Result<(), Infallible> {
        self.counters.insert(name, value);
        Ok(())
    }

    fn gauge(&mut self, name: &'static str, _: &str, value: i64) -> Result<(), Infallible> {
        self.gauges.insert(name, value);
        Ok(())
    }

    fn labelled_counter<L: Label>(
        &mut self,
        name: &'static str,
        _: &str,
        counters: &LabelledCounters<L>,
    ) -> Result<(), Infallible> {
        let by_label = L::VALUES
            .iter()
            .map(|&label| (label.value(), counters.get(label)))
            .collect();
        self.labelled_counters.insert(name, by_label);
        Ok(())
    }

    fn state_gauge<L: Label>(
        &mut self,
        name: &'static str,
        _: &str,
        current: L,
    ) -> Result<(), Infallible> {
        let by_label = L::VALUES
            .iter()
            .map(|&label| (label.value(), i64::from(label == current)))
            .collect();
        self.labelled_gauges.insert(name, by_label);
        Ok(())
    }

    fn histogram(
        &mut self,
        name: &'static str,
        _: &str,
        reading: &HistogramReading,
    ) -> Result<(), Infallible> {
        let snapshot = HistogramSnapshot {
            count: reading.count(),
            sum: reading.sum_ms(),
            p50: reading.quantile(0.5),
            p95: reading.quantile(0.95),
            p99: reading.quantile(0.99),
        };
        self.histograms.insert(name, snapshot);
        Ok(())
    }
}

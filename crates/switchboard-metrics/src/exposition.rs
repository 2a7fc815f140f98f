//! OpenMetrics text encoding of the catalogue, as a prometheus-client `Collector`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::catalogue::{LabelledCounters, Values, Visitor};
use crate::histogram::HistogramReading;
use crate::labels::Label;

/// Registered once in the handle's registry; reads the atomics at scrape time, in catalogue
/// order, so the exposition is deterministic.
pub(crate) struct Exposition(pub(crate) Arc<Values>);

impl fmt::Debug for Exposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Exposition")
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        self.0.visit(&mut OpenMetrics(&mut encoder))
    }
}

struct OpenMetrics<'a, 'b>(&'a mut DescriptorEncoder<'b>);

/// prometheus-client appends `_total` to counters itself: register the name without it.
fn counter_family(exported: &str) -> &str {
    exported.strip_suffix("_total").unwrap_or(exported)
}

impl Visitor for OpenMetrics<'_, '_> {
    type Error = fmt::Error;

    fn counter(&mut self, name: &'static str, help: &str, value: u64) -> fmt::Result {
        let metric =
            self.0
                .encode_descriptor(counter_family(name), help, None, MetricType::Counter)?;
        ConstCounter::new(value).encode(metric)
    }

    fn gauge(&mut self, name: &'static str, help: &str, value: i64) -> fmt::Result {
        let metric = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        ConstGauge::new(value).encode(metric)
    }

    fn labelled_counter<L: Label>(
        &mut self,
        name: &'static str,
        help: &str,
        counters: &LabelledCounters<L>,
    ) -> fmt::Result {
        let mut metric =
            self.0
                .encode_descriptor(counter_family(name), help, None, MetricType::Counter)?;
        for &label in L::VALUES {
            let labels = [(L::KEY, label.value())];
            ConstCounter::new(counters.get(label)).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn state_gauge<L: Label>(&mut self, name: &'static str, help: &str, current: L) -> fmt::Result {
        let mut metric = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for &label in L::VALUES {
            let labels = [(L::KEY, label.value())];
            ConstGauge::new(i64::from(label == current)).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn histogram(
        &mut self,
        name: &'static str,
        help: &str,
        reading: &HistogramReading,
    ) -> fmt::Result {
        let mut metric = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        metric.encode_histogram::<NoLabelSet>(
            reading.sum_ms(),
            reading.count(),
            &reading.buckets_ms(),
            None,
        )
    }
}

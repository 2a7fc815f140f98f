//! A fixed-bucket latency histogram recorded with two atomic adds.
//!
//! prometheus-client's `Histogram` takes a mutex per observation; this one keeps a counter per
//! bucket and the sum in integer nanoseconds, so an observation never waits.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The upper bounds, in milliseconds, of the latency histograms' buckets: 0.1 ms to 10 s. A
/// last `+Inf` bucket holds anything slower.
pub const LATENCY_BUCKETS_MS: [f64; 16] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1_000.0, 2_500.0,
    5_000.0, 10_000.0,
];

/// [`LATENCY_BUCKETS_MS`] in nanoseconds, so an observation compares integers.
const BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

const NANOS_PER_MS: f64 = 1_000_000.0;

/// Buckets including `+Inf`.
const BUCKETS: usize = BOUNDS_NS.len() + 1;

#[derive(Debug, Default)]
pub(crate) struct LatencyHistogram {
    /// Observations per bucket, not cumulative: one add per observation.
    counts: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    #[inline]
    pub(crate) fn observe(&self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.partition_point(|&bound| bound < ns);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Reads the buckets. The count is derived from them, so a scrape racing an observation
    /// never shows a count that disagrees with the `+Inf` bucket (the sum may lag by one).
    pub(crate) fn read(&self) -> HistogramReading {
        HistogramReading {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_ns: self.sum_ns.load(Relaxed),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HistogramReading {
    counts: [u64; BUCKETS],
    sum_ns: u64,
}

impl HistogramReading {
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub(crate) fn sum_ms(&self) -> f64 {
        self.sum_ns as f64 / NANOS_PER_MS
    }

    /// `(upper bound in ms, observations in that bucket)`, ending with `+Inf`.
    pub(crate) fn buckets_ms(&self) -> [(f64, u64); BUCKETS] {
        std::array::from_fn(|i| {
            let bound = LATENCY_BUCKETS_MS.get(i).copied().unwrap_or(f64::INFINITY);
            (bound, self.counts[i])
        })
    }

    /// Estimates the `q` quantile in ms the way PromQL's `histogram_quantile` does: linear
    /// interpolation inside the bucket holding the rank, the highest finite bound for the
    /// `+Inf` bucket, rounded to the microsecond. `None` without observations.
    pub(crate) fn quantile(&self, q: f64) -> Option<f64> {
        self.estimate(q).map(|ms| (ms * 1_000.0).round() / 1_000.0)
    }

    fn estimate(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = q * count as f64;
        let mut below = 0u64;
        for (i, &in_bucket) in self.counts.iter().enumerate() {
            let cumulative = below + in_bucket;
            if cumulative as f64 >= rank && in_bucket > 0 {
                let Some(&upper) = LATENCY_BUCKETS_MS.get(i) else {
                    return LATENCY_BUCKETS_MS.last().copied();
                };
                let lower = if i == 0 {
                    0.0
                } else {
                    LATENCY_BUCKETS_MS[i - 1]
                };
                let fraction = (rank - below as f64) / in_bucket as f64;
                return Some(lower + (upper - lower) * fraction);
            }
            below = cumulative;
        }
        LATENCY_BUCKETS_MS.last().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_in_nanoseconds_match_the_published_bounds_in_milliseconds() {
        for (ns, ms) in BOUNDS_NS.iter().zip(LATENCY_BUCKETS_MS) {
            assert_eq!(*ns as f64 / NANOS_PER_MS, ms);
        }
    }

    #[test]
    fn an_observation_on_a_bound_falls_in_that_bucket() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_nanos(1_000_001));
        let buckets = h.read().buckets_ms();
        assert_eq!(buckets[3], (1.0, 1));
        assert_eq!(buckets[4], (2.5, 1));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let h = LatencyHistogram::default();
        for _ in 0..4 {
            h.observe(Duration::from_millis(2));
        }
        // All four in (1, 2.5]: the median sits halfway through that bucket.
        assert_eq!(h.read().quantile(0.5), Some(1.75));
        assert_eq!(h.read().quantile(1.0), Some(2.5));
    }

    #[test]
    fn quantiles_in_the_overflow_bucket_report_the_highest_bound() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_secs(60));
        assert_eq!(h.read().quantile(0.99), Some(10_000.0));
    }

    #[test]
    fn quantiles_of_an_empty_histogram_are_unknown() {
        assert_eq!(LatencyHistogram::default().read().quantile(0.5), None);
    }
}

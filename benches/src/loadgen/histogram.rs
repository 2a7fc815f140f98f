//! A log-linear (HDR-style) histogram of `u64` values with mergeable, serializable counts.
//!
//! Values below 256 are counted exactly; above, each power of two is split into 128 equal
//! buckets, so a reported percentile is at most 1/128 (0.8 %) above the true value. It is
//! small enough (7,424 counters) to keep one per process and to ship between processes.

use serde::{Deserialize, Serialize};

/// Values below this are their own bucket.
const LINEAR: u64 = 256;
/// Buckets per power of two above [`LINEAR`].
const PER_OCTAVE: u64 = 128;
/// Number of buckets: the linear part plus 56 octaves (2^8 ..= 2^64).
const BUCKETS: usize = (LINEAR + 56 * PER_OCTAVE) as usize;

/// Counts of values by bucket, plus exact count, minimum, maximum and sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let msb = 63 - value.leading_zeros() as u64; // >= 8
    let shift = msb - 7; // >= 1
    let top = value >> shift; // in 128..256
    (LINEAR + (shift - 1) * PER_OCTAVE + (top - PER_OCTAVE)) as usize
}

/// Highest value that falls into bucket `index`.
fn bucket_high(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let k = index - LINEAR;
    let shift = k / PER_OCTAVE + 1;
    let top = u128::from(k % PER_OCTAVE + PER_OCTAVE);
    let high = ((top + 1) << shift) - 1;
    u64::try_from(high).unwrap_or(u64::MAX)
}

impl Histogram {
    /// Counts one value.
    pub(crate) fn record(&mut self, value: u64) {
        self.counts[index(value)] += 1;
        self.total += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += u128::from(value);
    }

    /// Adds every value counted by `other`.
    pub(crate) fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// Number of values counted.
    pub(crate) fn count(&self) -> u64 {
        self.total
    }

    /// Largest value counted (exact); 0 when empty.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Arithmetic mean (exact); 0 when empty.
    pub(crate) fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0.0..=1.0): the smallest bucket bound at or below which
    /// at least `q` of the values lie, capped at the exact maximum; 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(i).min(self.max).max(self.min);
            }
        }
        self.max
    }
}

/// Wire form: only non-empty buckets.
#[derive(Serialize, Deserialize)]
struct SparseHistogram {
    buckets: Vec<(u32, u64)>,
    min: u64,
    max: u64,
    sum: u128,
}

impl Serialize for Histogram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        SparseHistogram {
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter(|&(_, &c)| c > 0)
                .map(|(i, &c)| (i as u32, c))
                .collect(),
            min: self.min,
            max: self.max,
            sum: self.sum,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Histogram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let sparse = SparseHistogram::deserialize(d)?;
        let mut h = Self::default();
        for (i, c) in sparse.buckets {
            let slot = h
                .counts
                .get_mut(i as usize)
                .ok_or_else(|| serde::de::Error::custom("histogram bucket out of range"))?;
            *slot += c;
            h.total += c;
        }
        h.min = sparse.min;
        h.max = sparse.max;
        h.sum = sparse.sum;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_whose_bound_is_within_one_128th() {
        for v in (0..5_000u64).chain([1 << 20, 123_456_789, u64::MAX / 3, u64::MAX]) {
            let high = bucket_high(index(v));
            assert!(high >= v, "{v} above its bucket bound {high}");
            assert!(
                (high - v) as f64 <= v as f64 / 128.0,
                "{v}: bound {high} too far"
            );
            if index(v) > 0 {
                assert!(
                    bucket_high(index(v) - 1) < v,
                    "{v} belongs in an earlier bucket"
                );
            }
        }
    }

    #[test]
    fn quantiles_of_one_to_ten_thousand() {
        let mut h = Histogram::default();
        for v in 1..=10_000 {
            h.record(v);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.quantile(0.0), 1);
        let p50 = h.quantile(0.5);
        assert!((5_000..=5_040).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99);
        assert!((9_900..=9_980).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert!((h.mean() - 5_000.5).abs() < 1e-9);
    }

    #[test]
    fn one_outlier_shows_in_p999_and_max_only() {
        let mut h = Histogram::default();
        for _ in 0..999 {
            h.record(100);
        }
        h.record(1_000_000);
        assert_eq!(h.quantile(0.5), 100);
        assert_eq!(h.quantile(0.99), 100);
        assert_eq!(h.quantile(0.999), 100);
        assert_eq!(h.quantile(0.9995), 1_000_000);
        assert_eq!(h.max(), 1_000_000);
    }

    #[test]
    fn merged_and_round_tripped_histograms_equal_one_fed_everything() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in 0..3_000u64 {
            let v = v * v;
            if v % 3 == 0 {
                a.record(v)
            } else {
                b.record(v)
            }
            all.record(v);
        }
        let b: Histogram = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        a.merge(&b);
        assert_eq!(a, all);
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }
}

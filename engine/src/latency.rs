//! Response latencies as a worker counts them: [`Latencies`], the buckets of linewatch's
//! latency histogram (hdrhistogram with bounds 1 us and [`MAX_LATENCY_US`], [`HISTOGRAM_SIGFIG`]
//! significant figures) as a plain array, with the bucket of a value computed from constants.
//! As in that histogram, the buckets reach past the bound, to 2^32 − 1 us (about 72 minutes):
//! only a longer latency is clamped to the bound.
//!
//! `Histogram::saturating_record` reads its layout from the histogram's fields, checks the
//! index, and updates the minimum, the maximum and the total count on every value: about 33
//! instructions a response (callgrind, engine_loop), on the packet path. Here a value costs its
//! bucket's index and one add; the minimum, maximum and total follow from the counts, and
//! [`Latencies::histogram`] rebuilds the very histogram the values would have made, off the
//! packet path, for the readers (percentiles, the `--metrics` buckets).

use std::fmt;

use hdrhistogram::Histogram;

use crate::counters::{latency_histogram, HISTOGRAM_SIGFIG, MAX_LATENCY_US};

/// Bits of the sub-bucket index: hdrhistogram's `sub_bucket_count` is the power of two at or
/// above 2 × 10^sigfig (256 for 2 figures), so values below it are exact.
const SUB_BITS: u32 = (2 * 10u64.pow(HISTOGRAM_SIGFIG as u32) - 1).ilog2() + 1;

/// Half a bucket's sub-buckets: every bucket past the first uses only its upper half.
const HALF_BITS: u32 = SUB_BITS - 1;

/// Buckets needed to hold [`MAX_LATENCY_US`], each twice the span of the one before
/// (hdrhistogram's `buckets_needed_to_cover_value` for a lowest value of 1).
const BUCKETS: u32 = {
    let mut smallest_untrackable = 1u64 << SUB_BITS;
    let mut buckets = 1;
    while smallest_untrackable <= MAX_LATENCY_US {
        smallest_untrackable <<= 1;
        buckets += 1;
    }
    buckets
};

/// Counts in all: hdrhistogram's `distinct_values` (3,328 for linewatch's bounds).
const LEN: usize = ((BUCKETS as usize) + 1) << HALF_BITS;

/// The largest value with a bucket of its own; a larger one is recorded as
/// [`MAX_LATENCY_US`], as `saturating_record` clamps a value it has no bucket for.
const TOP: u64 = (1 << (SUB_BITS + BUCKETS - 1)) - 1;

/// The index of `value`'s count (`value <= TOP`): hdrhistogram's `index_for` with the
/// layout's fields as constants.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)] // `value >> bucket` is below 2^SUB_BITS
const fn index_of(value: u64) -> usize {
    // The bucket: how many times `value` is past the span of the first, 0 within it.
    let bucket = (64 - SUB_BITS) - (value | ((1 << SUB_BITS) - 1)).leading_zeros();
    // (bucket + 1) × half + (value >> bucket) − half.
    ((bucket as usize) << HALF_BITS) + (value >> bucket) as usize
}

/// The lowest value counted at `index`: hdrhistogram's `value_for`.
const fn value_at(index: usize) -> u64 {
    let half = 1usize << HALF_BITS;
    let bucket = index >> HALF_BITS;
    let sub = (index & (half - 1)) as u64;
    if bucket == 0 {
        sub
    } else {
        (sub + half as u64) << (bucket - 1)
    }
}

/// Latencies in microseconds, counted per bucket of linewatch's latency histogram.
pub struct Latencies {
    counts: Box<[u64; LEN]>,
}

impl Latencies {
    /// No latencies.
    pub fn new() -> Latencies {
        Latencies {
            counts: Box::new([0; LEN]),
        }
    }

    /// Counts `us` as `Histogram::saturating_record` would: in its own bucket, or as
    /// [`MAX_LATENCY_US`] when past the last.
    #[inline(always)]
    pub fn record(&mut self, us: u64) {
        let value = if us > TOP { MAX_LATENCY_US } else { us };
        self.counts[index_of(value)] += 1;
    }

    /// Adds `other`'s counts.
    pub fn add(&mut self, other: &Latencies) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// Forgets every latency.
    pub fn reset(&mut self) {
        self.counts.fill(0);
    }

    /// How many latencies were counted.
    pub fn len(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |total, &n| total.saturating_add(n))
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&n| n == 0)
    }

    /// The histogram that recording each latency with `saturating_record` would have made:
    /// each bucket's count recorded at the bucket's lowest value, which the histogram takes as
    /// the same bucket; its minimum and maximum are read per bucket too, so they come out the
    /// same.
    pub fn histogram(&self) -> Histogram<u64> {
        let mut h = latency_histogram(MAX_LATENCY_US);
        for (index, &n) in self.counts.iter().enumerate() {
            if n > 0 {
                // Every index is the histogram's own: recording its value cannot fail.
                let _ = h.record_n(value_at(index), n);
            }
        }
        h
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl fmt::Debug for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Latencies")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values around every bucket edge, the clamps, and a spread in between.
    fn probes() -> Vec<u64> {
        let mut values = vec![0, 1, 2, 127, 128, 255, 256, 257, 511, 512, 1000, 1001];
        for shift in 0..64 {
            let p = 1u64 << shift;
            values.extend([
                p - 1,
                p,
                p + 1,
                p | (p >> 1),
                (p | (p >> 1)).wrapping_sub(1),
            ]);
        }
        values.extend([
            TOP - 1,
            TOP,
            TOP + 1,
            MAX_LATENCY_US - 1,
            MAX_LATENCY_US,
            MAX_LATENCY_US + 1,
            u64::MAX,
        ]);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            // xorshift: values of every magnitude.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        values
    }

    #[test]
    fn the_layout_is_the_histograms() {
        let h = latency_histogram(MAX_LATENCY_US);
        assert_eq!(h.distinct_values(), LEN);
        assert_eq!(LEN, 3_328, "linewatch's bounds: 25 buckets of 128");
        // TOP is the last value with a bucket; TOP + 1 has none.
        let mut h = latency_histogram(MAX_LATENCY_US);
        h.record(TOP).expect("TOP has a bucket");
        assert!(h.record(TOP + 1).is_err());
    }

    #[test]
    fn each_value_lands_in_the_histograms_bucket() {
        let h = latency_histogram(MAX_LATENCY_US);
        for v in probes().into_iter().filter(|&v| v <= TOP) {
            let i = index_of(v);
            assert!(i < LEN, "{v}");
            assert!(
                h.equivalent(v, value_at(i)),
                "{v} counted with {} (index {i})",
                value_at(i)
            );
            assert_eq!(h.lowest_equivalent(v), value_at(i), "{v}");
        }
        for i in 0..LEN {
            assert_eq!(index_of(value_at(i)), i, "index {i}");
        }
    }

    #[test]
    fn the_rebuilt_histogram_is_the_recorded_one() {
        let mut direct = latency_histogram(MAX_LATENCY_US);
        let mut counted = Latencies::new();
        for (n, v) in probes().into_iter().enumerate() {
            direct.saturating_record(v);
            counted.record(v);
            if n % 4_000 == 0 {
                assert_eq!(counted.histogram(), direct, "after {n} values");
            }
        }
        let rebuilt = counted.histogram();
        assert_eq!(rebuilt, direct);
        assert_eq!(rebuilt.len(), direct.len());
        assert_eq!(counted.len(), direct.len());
        assert_eq!(rebuilt.min(), direct.min());
        assert_eq!(rebuilt.max(), direct.max());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                rebuilt.value_at_quantile(q),
                direct.value_at_quantile(q),
                "{q}"
            );
        }
        let buckets = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        assert_eq!(buckets(&rebuilt), buckets(&direct));
    }

    #[test]
    fn add_and_reset_are_the_histograms() {
        let (mut a, mut b) = (Latencies::new(), Latencies::new());
        let (mut ha, mut hb) = (
            latency_histogram(MAX_LATENCY_US),
            latency_histogram(MAX_LATENCY_US),
        );
        for (n, v) in probes().into_iter().enumerate() {
            if n % 3 == 0 {
                a.record(v);
                ha.saturating_record(v);
            } else {
                b.record(v);
                hb.saturating_record(v);
            }
        }
        a.add(&b);
        ha.add(&hb).expect("same bounds");
        assert_eq!(a.histogram(), ha);
        assert!(!a.is_empty());
        a.reset();
        assert!(a.is_empty());
        assert_eq!(a.len(), 0);
        assert_eq!(a.histogram(), latency_histogram(MAX_LATENCY_US));
    }
}

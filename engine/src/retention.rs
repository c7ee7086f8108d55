//! `--retention`: the report's and the summary's since-start tables limited to the last stretch
//! of packet time, so a monitor that runs for weeks shows recent history.
//!
//! Contract: [`Retention::add`] takes each closed second's per-core tallies, in order; the
//! [`Retention::view`] is the merge of the buckets that cover the last `retention` seconds:
//! packet time is cut into buckets of `bucket_secs` (the retention over [`BUCKETS`], rounded
//! up; at least a second), aligned to multiples of it, and the newest [`BUCKETS`] (or fewer)
//! that start within the retention are kept. So the view covers more than `retention -
//! bucket_secs` and at most `retention` seconds (less at the start), and says from when
//! ([`Retention::covers_from`]). Memory is bounded: at most `BUCKETS + 1` tallies of
//! [`BUCKET_TABLE_CAPACITY`] keys per table, allocated as they are first needed and reused
//! after: ~1.5 MiB a bucket (a replay with all 24 in use peaked at 53 MiB resident, 17 MiB
//! without `--retention`; one worker). The scalar counters, latencies and `--metrics` stay since start (a counter must not
//! go down); only the breakdown (requests, tables) is limited.

use std::collections::VecDeque;

use linewatch_model::TopByKey;

use crate::counters::{Tally, INTERVAL_TABLE_CAPACITY, TOTAL_TABLE_CAPACITY};

/// Buckets a retention is cut into: 24 hourly buckets for a day, one-minute buckets for a
/// 24-minute retention. More make the covered span closer to the retention, and cost a tally
/// each.
pub const BUCKETS: u64 = 24;

/// Keys per table of one bucket (a report interval's).
pub const BUCKET_TABLE_CAPACITY: usize = INTERVAL_TABLE_CAPACITY;

/// The buckets of the retained stretch. See the module doc.
#[derive(Debug)]
pub struct Retention {
    retention_secs: u64,
    bucket_secs: u64,
    /// `(bucket number, its tally)`, oldest first.
    buckets: VecDeque<(u64, Tally)>,
    /// Cleared tallies to reuse.
    spare: Vec<Tally>,
    /// The first second of the retained stretch: the first bucket start within the retention
    /// of the last second added (seconds without traffic have no bucket, but are covered).
    keep_from: Option<u64>,
    top_by: Vec<TopByKey>,
}

impl Retention {
    /// Retains `retention_secs` (at least 1) of packet time, with the `--top-by` tables `top_by`.
    pub fn new(retention_secs: u64, top_by: &[TopByKey]) -> Retention {
        let retention_secs = retention_secs.max(1);
        Retention {
            retention_secs,
            bucket_secs: retention_secs.div_ceil(BUCKETS),
            buckets: VecDeque::new(),
            spare: Vec::new(),
            keep_from: None,
            top_by: top_by.to_vec(),
        }
    }

    /// The retention, in seconds.
    pub fn retention_secs(&self) -> u64 {
        self.retention_secs
    }

    /// Seconds per bucket.
    pub fn bucket_secs(&self) -> u64 {
        self.bucket_secs
    }

    /// Counts closed second `epoch` (unix seconds; seconds come in order), made of `tallies`.
    pub fn add<'a>(&mut self, epoch: u64, tallies: impl IntoIterator<Item = &'a Tally>) {
        let number = epoch / self.bucket_secs;
        if self.buckets.back().is_none_or(|(n, _)| *n < number) {
            let tally = self.spare.pop().unwrap_or_else(|| {
                let mut t = Tally::new(BUCKET_TABLE_CAPACITY);
                t.add_top_by(&self.top_by, BUCKET_TABLE_CAPACITY);
                t
            });
            self.buckets.push_back((number, tally));
        }
        // Buckets that start before the retained stretch go: it starts `retention_secs`
        // before the end of this second.
        let keep_from = (epoch + 1).saturating_sub(self.retention_secs);
        let keep_from = keep_from.div_ceil(self.bucket_secs) * self.bucket_secs;
        self.keep_from = Some(keep_from);
        while let Some((n, _)) = self.buckets.front() {
            if n * self.bucket_secs >= keep_from {
                break;
            }
            if let Some((_, mut old)) = self.buckets.pop_front() {
                old.clear();
                self.spare.push(old);
            }
        }
        if let Some((_, bucket)) = self.buckets.back_mut() {
            for t in tallies {
                bucket.merge(t);
            }
            bucket.seconds += 1;
        }
    }

    /// The first second the view covers: the start of the oldest bucket the retention keeps
    /// (whether or not it saw traffic), or `first_second` when that is later. `None` before
    /// anything was added.
    pub fn covers_from(&self, first_second: u64) -> Option<u64> {
        Some(self.keep_from?.max(first_second))
    }

    /// The retained buckets merged.
    pub fn view(&self) -> Tally {
        let mut view = Tally::new(TOTAL_TABLE_CAPACITY);
        view.add_top_by(&self.top_by, TOTAL_TABLE_CAPACITY);
        for (_, bucket) in &self.buckets {
            view.merge(bucket);
            view.seconds += bucket.seconds;
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::Counter;

    fn second(requests: u64) -> Tally {
        let mut t = Tally::new(4);
        t.counts[Counter::Requests as usize] = requests;
        t
    }

    #[test]
    fn the_view_keeps_the_buckets_within_the_retention() {
        // 48 s in buckets of 2 s.
        let mut r = Retention::new(48, &[]);
        assert_eq!(r.bucket_secs(), 2);
        assert!(r.covers_from(0).is_none());
        for epoch in 1_000..1_100 {
            r.add(epoch, [&second(1)]);
            let from = r.covers_from(1_000).unwrap();
            let covered = epoch + 1 - from;
            let view = r.view();
            assert_eq!(view.get(Counter::Requests), covered, "at {epoch}");
            assert_eq!(view.seconds, covered);
            assert!(
                covered <= 48 && (covered > 46 || epoch < 1_047),
                "{covered} at {epoch}"
            );
        }
        // Bounded: the ring never holds more than the buckets of the retention and one.
        assert!((r.buckets.len() + r.spare.len()) as u64 <= BUCKETS + 1);
    }

    #[test]
    fn a_gap_longer_than_the_retention_leaves_only_the_new_traffic() {
        let mut r = Retention::new(10, &[]);
        for epoch in 0..5 {
            r.add(epoch, [&second(7)]);
        }
        r.add(100, [&second(3), &second(2)]);
        assert_eq!(r.view().get(Counter::Requests), 5);
        // The ten seconds up to the end of second 100, the quiet ones included.
        assert_eq!(r.covers_from(0), Some(91));
    }
}

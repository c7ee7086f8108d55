//! Merging tables (the aggregator's path): mergeable space-saving, see the module doc of
//! `topn`.

use super::{HeavyHitters, Start, StoredKey};

impl HeavyHitters {
    /// Adds every entry of `other`: afterwards this table answers for everything recorded into
    /// either, with the guarantees in the module doc (mergeable space-saving; the tables may
    /// differ in capacity).
    pub fn merge_from(&mut self, other: &HeavyHitters) {
        debug_assert_eq!(self.pairs, other.pairs, "pair tables hash their keys apart");
        let total = self.total().saturating_add(other.total());
        let self_bound = self.absent_bound;
        let other_bound = other.absent_bound;
        // 1. Keys here: add their count in `other`, or what `other` may have evicted of them.
        // Counts only grow, so `min_hint` stays a lower bound.
        for e in 0..self.len {
            let entry = &mut self.entries[e];
            match other.find(entry.key(), entry.tag) {
                Ok(o) => {
                    let theirs = &other.entries[o];
                    self.counts[e] = self.counts[e].saturating_add(other.counts[o]);
                    entry.error = entry.error.saturating_add(theirs.error);
                    entry.bytes = entry.bytes.saturating_add(theirs.bytes);
                    entry.truncated |= theirs.truncated;
                }
                Err(_) => {
                    self.counts[e] = self.counts[e].saturating_add(other_bound);
                    entry.error = entry.error.saturating_add(other_bound);
                }
            }
        }
        // 2. Keys only in `other`: their count there plus what this table may have evicted of
        // them; kept if there is room or if larger than the smallest entry (which is then
        // evicted). Keeping the largest is what bounds `absent_bound` by `total / capacity`.
        let mut dropped = 0u64;
        for o in 0..other.len {
            let theirs = &other.entries[o];
            let key = theirs.key();
            // Found: a key of step 1, already merged. A key of step 1 that was evicted in
            // step 2 is not found, but its value here (its count in `other` + `self_bound`) is
            // at most its merged value, which was the minimum when it was evicted; the minimum
            // only grows, so it is dropped below, as it must be.
            let Err(slot) = self.find(key, theirs.tag) else {
                continue;
            };
            let count = other.counts[o].saturating_add(self_bound);
            let error = theirs.error.saturating_add(self_bound);
            let start = || Start {
                count,
                error,
                bytes: theirs.bytes,
                tag: theirs.tag,
                truncated: theirs.truncated,
            };
            if self.len < self.capacity() {
                let e = self.len;
                self.len += 1;
                self.put(e, slot, start(), &StoredKey(key));
                continue;
            }
            let (victim, min) = self.find_min();
            if count > min {
                dropped = dropped.max(min);
                self.evict(victim, min);
                let slot = self.free_slot(theirs.tag);
                self.put(victim, slot, start(), &StoredKey(key));
            } else {
                dropped = dropped.max(count);
            }
        }
        // A key in neither table may have had `self_bound` here and `other_bound` there.
        self.absent_bound = self_bound.saturating_add(other_bound).max(dropped);
        self.merged_total = total;
        self.merged_sum = self.counts_sum();
    }
}

//! Fixed-capacity heavy-hitter tables: the space-saving algorithm (Metwally, Agrawal and
//! El Abbadi, 2005) over byte-string keys, with mergeable tables.
//!
//! # Contract
//!
//! A [`HeavyHitters`] table holds at most `capacity` keys and never allocates after
//! [`HeavyHitters::with_capacity`]. Each worker core records into its own tables (one
//! [`record`](HeavyHitters::record) per request per dimension); the aggregator merges those into
//! interval and since-start tables with [`merge_from`](HeavyHitters::merge_from).
//!
//! For every key the table returns, with `true` the key's real count in everything recorded into
//! this table and into the tables merged into it:
//!
//! - `count - error <= true <= count`;
//! - `error == 0` (the count is exact) while the table, and every table merged into it, never
//!   had to evict a key;
//! - a key that is not in the table has `true <= `[`absent_bound`](HeavyHitters::absent_bound)
//!   `<= total / c`, with `c` the smallest capacity among this table and those merged into it,
//!   so every key with `true > total / c` is in the table;
//! - `bytes` is a lower bound of the key's real bytes: the bytes recorded while the key held
//!   its entry. It is exact when `error == 0`. (Space-saving hands the evicted key's count to the
//!   newcomer so that the count stays an upper bound; bytes are not handed over, because carried
//!   bytes would be neither an upper nor a lower bound of anything.)
//!
//! Keys longer than [`KEY_CAP`] are cut there and the entry is flagged `truncated`; keys that
//! agree on their first `KEY_CAP` bytes share one entry, whose flag is set as soon as one of
//! them was cut.
//!
//! # Algorithm
//!
//! Space-saving: a present key adds to its entry; an absent key takes a free entry, or, when
//! the table is full, replaces the entry with the smallest count `min` and starts at
//! `min + count` with `error = min` (the replaced key may have owned all of `min`).
//!
//! Layout, for few cache misses on the per-request path:
//!
//! - `counts`: the counts alone, dense, so the minimum search is a streaming scan;
//! - `entries`: the rest of each entry, key bytes inline (`[u8; KEY_CAP]`), so a key costs no
//!   allocation;
//! - `index`: an open-addressing table (linear probing, a power of two of at least twice the
//!   capacity, so at most half full) of `(tag, entry id)` slots. The tag is the high half of the
//!   key's foldhash (fixed seed, so tables built apart hash alike and merge by tag) and also
//!   gives the slot the probe starts from; a key's bytes are compared only when the tags agree.
//!   An evicted key's slot is removed by backward-shift deletion, which keeps every probe
//!   sequence unbroken without tombstones.
//!
//! The minimum: counts only grow (until [`clear`](HeavyHitters::clear)), so the smallest count
//! never decreases. The table keeps a lower bound `min_hint` of all counts and a cursor, and
//! looks for an entry equal to the hint from the cursor on; only when none is left does it scan
//! everything (a branch-free, vectorisable minimum over `counts`). On real traffic many entries
//! share the smallest count, so most evictions cost a few comparisons.
//!
//! Measured with the `eviction_cost` test (`cargo test --release -p linewatch-engine --
//! --ignored --nocapture eviction_cost`; best of 7 runs on a loaded 2-core VM, 16-byte keys,
//! x86-64 baseline target), ns per `record`:
//!
//! | capacity | evict, many entries at the minimum | evict, every count distinct (worst) | present key |
//! |---:|---:|---:|---:|
//! | 64 | 39 | 110 | 9 |
//! | 256 | 44 | 224 | 10 |
//! | 1024 | 72 | 665 | 13 |
//! | 4096 | 75 | 2340 | 17 |
//!
//! A full scan on every eviction instead (two vectorised passes) cost 79 / 143 / 467 / 1519 ns
//! on the first case and 77 / 156 / 546 / 1579 ns on the second; with `Iterator::min` in place
//! of the eight-lane minimum, 121 / 346 / 1204 / 4674 ns. The hint thus wins 2-20x on the
//! common case and loses at most 1.5x (one failed partial pass) on the staircase, which needs
//! every count distinct. A Stream-Summary bucket list would make every case O(1) but adds two
//! pointers per entry and pointer chasing to every increment of a present key, the path that
//! runs once per request.
//!
//! Merging (the aggregator's path) follows the mergeable summaries of Agarwal et al. (2012):
//! every key of either table gets its count in both, where a table that lacks the key
//! contributes its [`absent_bound`](HeavyHitters::absent_bound) (that much may have been evicted
//! from it) as both count and error; the `capacity` largest results are kept. A plain weighted
//! space-saving update (`min + count` for each incoming entry) would leave keys missing from the
//! other table below their true count.

use core::fmt;
use core::hash::{BuildHasher, Hasher};

use foldhash::fast::FixedState;
use linewatch_model::TopEntry;

/// Longest key kept; longer keys are cut here and flagged truncated.
pub const KEY_CAP: usize = 128;

/// Largest capacity a table takes: entry ids are `u32` and the index (twice the capacity,
/// rounded up to a power of two) must be addressable by the 32-bit tag.
pub const MAX_CAPACITY: usize = 1 << 24;

/// Fixed hash seed: every table hashes a key the same way, so merges reuse stored tags and runs
/// are reproducible. Attackers choosing colliding keys only lengthen probes in tables whose size
/// is bounded anyway.
const HASHER: FixedState = FixedState::with_seed(0x6c69_6e65_7761_7463);

/// Entry id of an empty index slot (no table holds `u32::MAX` entries: see [`MAX_CAPACITY`]).
const EMPTY: u32 = u32::MAX;

/// One slot of the open-addressing index.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// High half of the key's hash; its low bits are the slot the probe starts from.
    tag: u32,
    /// Entry id, or [`EMPTY`].
    entry: u32,
}

const EMPTY_SLOT: Slot = Slot {
    tag: 0,
    entry: EMPTY,
};

/// Everything of an entry but its count (which lives in the dense `counts` array).
#[derive(Debug, Clone)]
struct Entry {
    /// Bytes recorded while this key held the entry.
    bytes: u64,
    /// How much of the count may belong to other keys.
    error: u64,
    /// Length of `key` in use.
    len: usize,
    /// The key's hash tag, to find its index slot again on eviction.
    tag: u32,
    /// Some key counted here was longer than [`KEY_CAP`].
    truncated: bool,
    /// The key bytes, `key[..len]`.
    key: [u8; KEY_CAP],
}

impl Entry {
    const VACANT: Entry = Entry {
        bytes: 0,
        error: 0,
        len: 0,
        tag: 0,
        truncated: false,
        key: [0; KEY_CAP],
    };

    #[inline(always)]
    fn key(&self) -> &[u8] {
        &self.key[..self.len]
    }
}

/// A fixed-capacity space-saving table of byte-string keys with request and byte counts.
#[derive(Clone)]
pub struct HeavyHitters {
    /// Count of each entry; `counts[..len]` in use.
    counts: Box<[u64]>,
    /// Key, error and bytes of each entry; `entries[..len]` in use.
    entries: Box<[Entry]>,
    /// Open-addressing index over the entries; length a power of two.
    index: Box<[Slot]>,
    /// `index.len() - 1`.
    mask: usize,
    /// Entries in use.
    len: usize,
    /// Sum of every count recorded or merged in.
    total: u64,
    /// Upper bound of the true count of any key not in the table.
    absent_bound: u64,
    /// A lower bound of every count while the table is full.
    min_hint: u64,
    /// Entries before this one are known to be above `min_hint`.
    min_cursor: usize,
}

impl fmt::Debug for HeavyHitters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The entries themselves are up to `capacity * KEY_CAP` bytes: `top` shows them.
        f.debug_struct("HeavyHitters")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("total", &self.total)
            .field("absent_bound", &self.absent_bound)
            .finish_non_exhaustive()
    }
}

/// The tag of a key: the high half of its hash (the low half of foldhash's folded multiply is
/// the weaker one).
#[inline(always)]
fn tag_of(key: &[u8]) -> u32 {
    let mut hasher = HASHER.build_hasher();
    hasher.write(key);
    (hasher.finish() >> 32) as u32
}

/// `key` cut at [`KEY_CAP`], and whether it was cut.
#[inline(always)]
fn cut(key: &[u8]) -> (&[u8], bool) {
    match key.get(..KEY_CAP) {
        Some(head) if key.len() > KEY_CAP => (head, true),
        _ => (key, false),
    }
}

/// Entry id as stored in the index. Ids are below [`MAX_CAPACITY`], so this never fails.
#[inline(always)]
fn entry_id(e: usize) -> u32 {
    u32::try_from(e).expect("entry ids are below MAX_CAPACITY")
}

/// The smallest of `counts` (`u64::MAX` if empty), written as eight independent lanes so the
/// compiler turns it into vector min operations.
fn min_of(counts: &[u64]) -> u64 {
    const LANES: usize = 8;
    let mut lanes = [u64::MAX; LANES];
    let chunks = counts.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &c) in lanes.iter_mut().zip(chunk) {
            *lane = (*lane).min(c);
        }
    }
    let mut min = rest.iter().copied().fold(u64::MAX, u64::min);
    for lane in lanes {
        min = min.min(lane);
    }
    min
}

impl HeavyHitters {
    /// A table for `capacity` keys, everything allocated now. `capacity` is clamped to
    /// `1..=`[`MAX_CAPACITY`].
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        // At least twice the capacity keeps the index at most half full: short probes.
        let slots = (2 * capacity).next_power_of_two();
        HeavyHitters {
            counts: vec![0; capacity].into_boxed_slice(),
            entries: vec![Entry::VACANT; capacity].into_boxed_slice(),
            index: vec![EMPTY_SLOT; slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
            total: 0,
            absent_bound: 0,
            min_hint: 0,
            min_cursor: 0,
        }
    }

    /// Most keys the table holds.
    pub fn capacity(&self) -> usize {
        self.counts.len()
    }

    /// Keys in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No key in the table.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total count recorded into this table (sum of all record() counts, exact even after
    /// evictions), plus the totals of the tables merged into it.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The most any key that is not in the table can have been counted (0 while no key was ever
    /// evicted, here or in a table merged in). At most `total / capacity` (with the smallest
    /// capacity among this table and the tables merged into it).
    pub fn absent_bound(&self) -> u64 {
        self.absent_bound
    }

    /// Counts `count` requests and `bytes` bytes under `key` (cut at [`KEY_CAP`]). No
    /// allocation.
    #[inline]
    pub fn record(&mut self, key: &[u8], count: u64, bytes: u64) {
        let (key, truncated) = cut(key);
        self.record_cut(key, truncated, count, bytes);
    }

    /// Same as [`record`](Self::record), with `key` ASCII-lower-cased (hosts are counted case
    /// insensitively). The lower-cased copy lives on the stack.
    #[inline]
    pub fn record_lowercase(&mut self, key: &[u8], count: u64, bytes: u64) {
        let (key, truncated) = cut(key);
        // Most hosts are sent in lower case: skip the copy then. The fold has no early exit,
        // so it compiles to a vector compare over the whole key.
        if !key
            .iter()
            .fold(false, |upper, b| upper | b.is_ascii_uppercase())
        {
            return self.record_cut(key, truncated, count, bytes);
        }
        let mut lower = [0u8; KEY_CAP];
        for (dst, src) in lower.iter_mut().zip(key) {
            *dst = src.to_ascii_lowercase();
        }
        self.record_cut(&lower[..key.len()], truncated, count, bytes);
    }

    #[inline(always)]
    fn record_cut(&mut self, key: &[u8], truncated: bool, count: u64, bytes: u64) {
        self.total = self.total.saturating_add(count);
        let tag = tag_of(key);
        match self.find(key, tag) {
            Ok(e) => {
                self.counts[e] = self.counts[e].saturating_add(count);
                let entry = &mut self.entries[e];
                entry.bytes = entry.bytes.saturating_add(bytes);
                entry.truncated |= truncated;
            }
            Err(slot) if self.len < self.capacity() => {
                // Up to `absent_bound` of this key may have been counted before and evicted
                // (only possible after a merge: a table that evicted is full).
                let base = self.absent_bound;
                let e = self.len;
                self.len += 1;
                self.fill(e, slot, key, tag, truncated);
                self.set(e, base.saturating_add(count), base, bytes);
            }
            // A zero count carries nothing worth evicting a key for.
            Err(_) if count == 0 => {}
            Err(_) => self.replace_min(key, tag, truncated, count, bytes),
        }
    }

    /// The space-saving step for an absent key in a full table.
    #[cold]
    #[inline(never)]
    fn replace_min(&mut self, key: &[u8], tag: u32, truncated: bool, count: u64, bytes: u64) {
        let victim = self.find_min();
        let min = self.counts[victim];
        self.evict(victim);
        let slot = self.free_slot(tag);
        self.fill(victim, slot, key, tag, truncated);
        self.set(victim, min.saturating_add(count), min, bytes);
    }

    /// Adds every entry of `other`: afterwards this table answers for everything recorded into
    /// either, with the guarantees in the module doc (mergeable space-saving; the tables may
    /// differ in capacity).
    pub fn merge_from(&mut self, other: &HeavyHitters) {
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
            if self.len < self.capacity() {
                let e = self.len;
                self.len += 1;
                self.fill(e, slot, key, theirs.tag, theirs.truncated);
                self.set(e, count, error, theirs.bytes);
                continue;
            }
            let victim = self.find_min();
            let min = self.counts[victim];
            if count > min {
                dropped = dropped.max(min);
                self.evict(victim);
                let slot = self.free_slot(theirs.tag);
                self.fill(victim, slot, key, theirs.tag, theirs.truncated);
                self.set(victim, count, error, theirs.bytes);
            } else {
                dropped = dropped.max(count);
            }
        }
        // A key in neither table may have had `self_bound` here and `other_bound` there.
        self.absent_bound = self_bound.saturating_add(other_bound).max(dropped);
        self.total = self.total.saturating_add(other.total);
    }

    /// Empties the table in O(index size), keeping the allocation.
    pub fn clear(&mut self) {
        self.index.fill(EMPTY_SLOT);
        self.len = 0;
        self.total = 0;
        self.absent_bound = 0;
        self.min_hint = 0;
        self.min_cursor = 0;
    }

    /// Entries, largest count first (ties: key bytes ascending), at most `n`.
    pub fn top(&self, n: usize) -> Vec<TopEntry> {
        let order = |&a: &usize, &b: &usize| {
            self.counts[b]
                .cmp(&self.counts[a])
                .then_with(|| self.entries[a].key().cmp(self.entries[b].key()))
        };
        let mut ids: Vec<usize> = (0..self.len).collect();
        if n < ids.len() {
            if n == 0 {
                return Vec::new();
            }
            ids.select_nth_unstable_by(n - 1, order);
            ids.truncate(n);
        }
        ids.sort_unstable_by(order);
        ids.into_iter().map(|e| self.top_entry(e)).collect()
    }

    /// The entry of `key` (cut at [`KEY_CAP`]; not lower-cased), if the table holds it.
    pub fn get(&self, key: &[u8]) -> Option<TopEntry> {
        let (key, _) = cut(key);
        self.find(key, tag_of(key)).ok().map(|e| self.top_entry(e))
    }

    fn top_entry(&self, e: usize) -> TopEntry {
        let entry = &self.entries[e];
        TopEntry {
            key: entry.key().to_vec(),
            count: self.counts[e],
            error: entry.error,
            bytes: entry.bytes,
            truncated: entry.truncated,
        }
    }

    /// `Ok(entry id)` of `key`, or `Err(the empty slot where it would go)`.
    #[inline(always)]
    fn find(&self, key: &[u8], tag: u32) -> Result<usize, usize> {
        let mut pos = tag as usize & self.mask;
        loop {
            let slot = self.index[pos];
            if slot.entry == EMPTY {
                return Err(pos);
            }
            if slot.tag == tag {
                let e = slot.entry as usize;
                if self.entries[e].key() == key {
                    return Ok(e);
                }
            }
            // The index is at most half full, so an empty slot ends every probe.
            pos = (pos + 1) & self.mask;
        }
    }

    /// The first empty slot on `tag`'s probe sequence.
    #[inline]
    fn free_slot(&self, tag: u32) -> usize {
        let mut pos = tag as usize & self.mask;
        while self.index[pos].entry != EMPTY {
            pos = (pos + 1) & self.mask;
        }
        pos
    }

    /// Writes entry `e`'s key and links it at index `slot`.
    #[inline(always)]
    fn fill(&mut self, e: usize, slot: usize, key: &[u8], tag: u32, truncated: bool) {
        self.index[slot] = Slot {
            tag,
            entry: entry_id(e),
        };
        let entry = &mut self.entries[e];
        entry.key[..key.len()].copy_from_slice(key);
        entry.len = key.len();
        entry.tag = tag;
        entry.truncated = truncated;
    }

    #[inline(always)]
    fn set(&mut self, e: usize, count: u64, error: u64, bytes: u64) {
        self.counts[e] = count;
        self.entries[e].error = error;
        self.entries[e].bytes = bytes;
    }

    /// An entry with the smallest count, of a full table.
    fn find_min(&mut self) -> usize {
        let counts = &self.counts[..self.len];
        let hint = self.min_hint;
        if let Some(i) = counts[self.min_cursor..].iter().position(|&c| c == hint) {
            // Every count is >= hint, so one equal to it is a minimum.
            self.min_cursor += i;
            return self.min_cursor;
        }
        // Every entry at the old minimum has grown: find the new one.
        let min = min_of(counts);
        self.min_hint = min;
        self.min_cursor = counts.iter().position(|&c| c == min).unwrap_or(0);
        self.min_cursor
    }

    /// Unlinks entry `e` from the index and records that its key may be gone with its count.
    fn evict(&mut self, e: usize) {
        self.absent_bound = self.absent_bound.max(self.counts[e]);
        let id = entry_id(e);
        let mut hole = self.entries[e].tag as usize & self.mask;
        while self.index[hole].entry != id {
            hole = (hole + 1) & self.mask;
        }
        // Backward-shift deletion: walk the cluster after the hole and move back every slot
        // whose probe starts at or before the hole (cyclically), so no probe meets a gap
        // before its key.
        let mut pos = (hole + 1) & self.mask;
        loop {
            let slot = self.index[pos];
            if slot.entry == EMPTY {
                break;
            }
            let home = slot.tag as usize & self.mask;
            let from_home = pos.wrapping_sub(home) & self.mask;
            let from_hole = pos.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.index[hole] = slot;
                hole = pos;
            }
            pos = (pos + 1) & self.mask;
        }
        self.index[hole] = EMPTY_SLOT;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// xorshift64*: enough randomness for streams, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Skewed: id `i` is drawn with probability about proportional to 1/(i+1).
        fn skewed(&mut self, distinct: u64) -> u64 {
            let bits = 64 - distinct.leading_zeros();
            let width = self.below(u64::from(bits) + 1);
            let span = (1u64 << width).min(distinct);
            self.below(span)
        }
    }

    /// A key for id `i`: varied lengths, some sharing long prefixes.
    fn key(i: u64) -> Vec<u8> {
        let mut k = format!("/section-{i}").into_bytes();
        if i % 7 == 0 {
            k.extend_from_slice(&[b'x'; 40]);
        }
        k
    }

    /// (key, count, bytes) stream and the exact counts and bytes per key.
    type Truth = HashMap<Vec<u8>, (u64, u64)>;

    fn stream(rng: &mut Rng, len: usize, distinct: u64, skewed: bool) -> Vec<(Vec<u8>, u64, u64)> {
        (0..len)
            .map(|_| {
                let id = if skewed {
                    rng.skewed(distinct)
                } else {
                    rng.below(distinct)
                };
                let count = 1 + rng.below(3);
                (key(id), count, rng.below(2000))
            })
            .collect()
    }

    fn truth_of<'a>(items: impl IntoIterator<Item = &'a (Vec<u8>, u64, u64)>) -> Truth {
        let mut truth = Truth::new();
        for (k, c, b) in items {
            let t = truth.entry(k.clone()).or_default();
            t.0 += c;
            t.1 += b;
        }
        truth
    }

    fn record_all(table: &mut HeavyHitters, items: &[(Vec<u8>, u64, u64)]) {
        for (k, c, b) in items {
            table.record(k, *c, *b);
        }
    }

    /// The index holds exactly the entries, each findable by its key.
    fn assert_index_consistent(t: &HeavyHitters) {
        let linked = t.index.iter().filter(|s| s.entry != EMPTY).count();
        assert_eq!(linked, t.len());
        for e in 0..t.len() {
            let key = t.entries[e].key();
            assert_eq!(t.find(key, tag_of(key)), Ok(e));
        }
    }

    /// The guarantees of the module doc, against the exact counts.
    fn assert_guarantees(t: &HeavyHitters, truth: &Truth, merged_capacity: usize) {
        let total: u64 = truth.values().map(|v| v.0).sum();
        assert_eq!(t.total(), total);
        assert_index_consistent(t);
        let entries = t.top(usize::MAX);
        assert_eq!(entries.len(), t.len());
        for e in &entries {
            let (count, bytes) = truth.get(&e.key).copied().unwrap_or_default();
            assert!(
                e.count - e.error <= count && count <= e.count,
                "{e:?} true {count}"
            );
            assert!(e.bytes <= bytes, "{e:?} true bytes {bytes}");
            if e.error == 0 {
                assert_eq!(e.bytes, bytes, "{e:?}");
            }
        }
        let bound = t.absent_bound();
        assert!(
            bound <= total / merged_capacity as u64,
            "bound {bound} total {total}"
        );
        for (k, &(count, _)) in truth {
            if t.get(k).is_none() {
                assert!(count <= bound, "absent key with {count} > bound {bound}");
            }
            if count > total / merged_capacity as u64 {
                assert!(t.get(k).is_some(), "heavy key {count} of {total} missing");
            }
        }
    }

    #[test]
    fn exact_below_capacity() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for capacity in [1, 2, 5, 64, 300] {
            let mut t = HeavyHitters::with_capacity(capacity);
            let items = stream(&mut rng, 5000, capacity as u64, false);
            record_all(&mut t, &items);
            let truth = truth_of(&items);
            assert_eq!(t.len(), truth.len());
            assert_eq!(t.absent_bound(), 0);
            for (k, &(count, bytes)) in &truth {
                let e = t.get(k).expect("every key fits");
                assert_eq!(
                    (e.count, e.error, e.bytes, e.truncated),
                    (count, 0, bytes, false)
                );
            }
            assert_guarantees(&t, &truth, capacity);
        }
    }

    #[test]
    fn space_saving_bounds_above_capacity() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for capacity in [1, 3, 16, 100] {
            for skewed in [true, false] {
                let mut t = HeavyHitters::with_capacity(capacity);
                let items = stream(&mut rng, 20_000, 5000, skewed);
                for (i, (k, c, b)) in items.iter().enumerate() {
                    t.record(k, *c, *b);
                    if i % 997 == 0 {
                        assert_index_consistent(&t);
                    }
                }
                assert_eq!(t.len(), capacity);
                // Plain space-saving hands counts over, never creates them.
                let sum: u64 = t.counts.iter().sum();
                assert_eq!(sum, t.total());
                assert!(t.absent_bound() > 0);
                assert_guarantees(&t, &truth_of(&items), capacity);
            }
        }
    }

    #[test]
    fn heavy_key_survives_churn() {
        // One key is a quarter of the stream; every other key is new.
        let mut t = HeavyHitters::with_capacity(8);
        let mut truth = Truth::new();
        for i in 0..40_000u64 {
            let k = if i % 4 == 0 {
                b"/heavy".to_vec()
            } else {
                key(i)
            };
            t.record(&k, 1, 10);
            let e = truth.entry(k).or_default();
            e.0 += 1;
            e.1 += 10;
        }
        let top = t.top(1);
        assert_eq!(top[0].key, b"/heavy");
        assert!(top[0].count - top[0].error <= 10_000 && 10_000 <= top[0].count);
        assert_guarantees(&t, &truth, 8);
    }

    #[test]
    fn merge_matches_concatenated_stream() {
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        for capacity in [1, 4, 32, 128] {
            for skewed in [true, false] {
                let parts: Vec<_> = (0..4)
                    .map(|_| stream(&mut rng, 3000, 400, skewed))
                    .collect();
                let mut merged = HeavyHitters::with_capacity(capacity);
                let mut since_start = HeavyHitters::with_capacity(capacity);
                for part in &parts {
                    let mut core = HeavyHitters::with_capacity(capacity);
                    record_all(&mut core, part);
                    merged.merge_from(&core);
                    // The aggregator's chain: core into interval into since-start.
                    let mut interval = HeavyHitters::with_capacity(capacity);
                    interval.merge_from(&core);
                    since_start.merge_from(&interval);
                }
                let truth = truth_of(parts.iter().flatten());
                assert_guarantees(&merged, &truth, capacity);
                assert_guarantees(&since_start, &truth, capacity);
            }
        }
    }

    #[test]
    fn merge_without_evictions_is_exact() {
        let mut rng = Rng(77);
        let parts: Vec<_> = (0..3).map(|_| stream(&mut rng, 500, 50, true)).collect();
        let mut merged = HeavyHitters::with_capacity(50);
        for part in &parts {
            let mut core = HeavyHitters::with_capacity(50);
            record_all(&mut core, part);
            merged.merge_from(&core);
        }
        let mut direct = HeavyHitters::with_capacity(50);
        for part in &parts {
            record_all(&mut direct, part);
        }
        assert_eq!(merged.top(usize::MAX), direct.top(usize::MAX));
        assert!(merged.top(usize::MAX).iter().all(|e| e.error == 0));
        assert_eq!(merged.total(), direct.total());
    }

    #[test]
    fn merge_into_unequal_capacities() {
        // A big aggregate table fed by small per-core tables, and the other way round.
        let mut rng = Rng(4242);
        let parts: Vec<_> = (0..4).map(|_| stream(&mut rng, 4000, 1000, true)).collect();
        let truth = truth_of(parts.iter().flatten());
        let mut big = HeavyHitters::with_capacity(256);
        let mut small = HeavyHitters::with_capacity(16);
        for part in &parts {
            let mut core = HeavyHitters::with_capacity(32);
            record_all(&mut core, part);
            big.merge_from(&core);
            small.merge_from(&core);
        }
        // The bound is set by the smallest table on the way.
        assert_guarantees(&big, &truth, 32);
        assert_guarantees(&small, &truth, 16);
    }

    #[test]
    fn merge_bumps_keys_the_other_table_evicted() {
        // `other` (capacity 1) saw "a" once and then lost it to "b": plain weighted updates
        // would leave "a" at 5 here although it was counted 6 times.
        let mut ours = HeavyHitters::with_capacity(2);
        ours.record(b"a", 5, 0);
        ours.record(b"c", 1, 0);
        let mut other = HeavyHitters::with_capacity(1);
        other.record(b"a", 1, 0);
        other.record(b"b", 1, 0);
        assert_eq!(other.absent_bound(), 1);
        ours.merge_from(&other);
        let a = ours.get(b"a").expect("a stays");
        assert!(a.count - a.error <= 6 && 6 <= a.count, "{a:?}");
        assert_eq!(ours.total(), 8);
    }

    #[test]
    fn truncation_cuts_and_flags() {
        let mut t = HeavyHitters::with_capacity(4);
        let long = vec![b'a'; 200];
        t.record(&long, 1, 7);
        let e = t.get(&long).expect("long key counted");
        assert_eq!(e.key.len(), KEY_CAP);
        assert!(e.truncated);
        // The cut key and a key of exactly KEY_CAP bytes equal to it share the entry.
        t.record(&long[..KEY_CAP], 2, 1);
        let e = t.get(&long[..KEY_CAP]).expect("shared entry");
        assert_eq!((e.count, e.bytes, e.truncated), (3, 8, true));
        assert_eq!(t.len(), 1);
        // Exactly KEY_CAP bytes is not a cut.
        let exact = vec![b'b'; KEY_CAP];
        t.record(&exact, 1, 0);
        assert!(!t.get(&exact).expect("exact-length key").truncated);
        t.record_lowercase(&[b'Z'; 300], 1, 0);
        let z = t.get(&[b'z'; KEY_CAP]).expect("lower-cased and cut");
        assert!(z.truncated);
    }

    #[test]
    fn lowercase_counts_hosts_together() {
        let mut t = HeavyHitters::with_capacity(4);
        t.record_lowercase(b"Example.COM:8080", 1, 10);
        t.record_lowercase(b"example.com:8080", 2, 20);
        t.record_lowercase(b"EXAMPLE.com:8080", 3, 30);
        t.record_lowercase("ÉCOLE.fr".as_bytes(), 1, 1);
        assert_eq!(t.len(), 2);
        let e = t.get(b"example.com:8080").expect("lower-cased key");
        assert_eq!((e.count, e.bytes, e.error), (6, 60, 0));
        assert!(
            t.get(b"Example.COM:8080").is_none(),
            "get does not fold case"
        );
        // Only ASCII letters fold; other bytes are kept as sent.
        assert!(t.get("ÉcolE.fr".to_lowercase().as_bytes()).is_none());
        assert!(t.get("École.fr".as_bytes()).is_some());
    }

    #[test]
    fn clear_then_reuse() {
        let mut rng = Rng(99);
        let mut t = HeavyHitters::with_capacity(10);
        record_all(&mut t, &stream(&mut rng, 5000, 500, true));
        assert!(t.absent_bound() > 0);
        t.clear();
        assert!(t.is_empty());
        assert_eq!((t.total(), t.absent_bound(), t.top(10).len()), (0, 0, 0));
        assert_index_consistent(&t);
        let items = stream(&mut rng, 1000, 10, false);
        record_all(&mut t, &items);
        let truth = truth_of(&items);
        for (k, &(count, bytes)) in &truth {
            let e = t.get(k).expect("fits after clear");
            assert_eq!((e.count, e.error, e.bytes), (count, 0, bytes));
        }
        // And again past capacity: the minimum search restarts from scratch.
        let items2 = stream(&mut rng, 5000, 500, true);
        t.clear();
        record_all(&mut t, &items2);
        assert_guarantees(&t, &truth_of(&items2), 10);
    }

    #[test]
    fn capacity_one() {
        let mut t = HeavyHitters::with_capacity(1);
        assert_eq!(HeavyHitters::with_capacity(0).capacity(), 1);
        t.record(b"a", 1, 100);
        t.record(b"b", 1, 10);
        let b = t.get(b"b").expect("b replaced a");
        assert_eq!((b.count, b.error, b.bytes), (2, 1, 10));
        assert!(t.get(b"a").is_none());
        t.record(b"a", 1, 5);
        let a = t.get(b"a").expect("a back");
        assert_eq!((a.count, a.error, a.bytes), (3, 2, 5));
        t.record(b"a", 4, 5);
        assert_eq!(t.top(5).len(), 1);
        assert_eq!(t.top(5)[0].count, 7);
        assert_eq!((t.total(), t.absent_bound()), (7, 2));
        assert_index_consistent(&t);
    }

    #[test]
    fn zero_count_does_not_evict() {
        let mut t = HeavyHitters::with_capacity(2);
        t.record(b"a", 1, 0);
        t.record(b"b", 1, 0);
        t.record(b"c", 0, 50);
        assert!(t.get(b"c").is_none());
        assert_eq!(t.absent_bound(), 0);
        t.record(b"a", 0, 50);
        assert_eq!(t.get(b"a").map(|e| (e.count, e.bytes)), Some((1, 50)));
    }

    #[test]
    fn top_orders_by_count_then_key() {
        let mut t = HeavyHitters::with_capacity(10);
        for (k, c) in [
            (&b"/b"[..], 5),
            (b"/a", 5),
            (b"/c", 9),
            (b"/d", 1),
            (b"/e", 5),
        ] {
            t.record(k, c, 0);
        }
        let keys = |v: Vec<TopEntry>| v.into_iter().map(|e| e.key).collect::<Vec<_>>();
        let all: Vec<Vec<u8>> = [&b"/c"[..], b"/a", b"/b", b"/e", b"/d"]
            .iter()
            .map(|k| k.to_vec())
            .collect();
        assert_eq!(keys(t.top(10)), all);
        assert_eq!(keys(t.top(3)), all[..3].to_vec());
        assert_eq!(keys(t.top(2)), all[..2].to_vec());
        assert!(t.top(0).is_empty());
    }

    #[test]
    fn colliding_home_slots_survive_eviction() {
        // Many evictions in a tiny index: backward-shift deletion must keep every probe whole.
        let mut rng = Rng(5);
        let mut t = HeavyHitters::with_capacity(3);
        for _ in 0..20_000 {
            let id = rng.skewed(40);
            t.record(&key(id), 1, 0);
            assert_index_consistent(&t);
        }
    }

    /// Prints the cost of the eviction path; run with
    /// `cargo test --release -- --ignored --nocapture eviction_cost`. Not a timed assertion:
    /// the numbers go into the module doc.
    #[test]
    #[ignore = "timing report, not a test"]
    fn eviction_cost() {
        use std::hint::black_box;
        use std::time::Instant;
        const RECORDS: usize = 1 << 20;
        const RUNS: usize = 7;
        let keys: Vec<Vec<u8>> = (0..RECORDS)
            .map(|i| format!("/k{i:014}").into_bytes())
            .collect();
        // Best of RUNS, in ns per call: the VM's noise only ever adds time.
        let best = |f: &mut dyn FnMut() -> usize| {
            (0..RUNS)
                .map(|_| {
                    let start = Instant::now();
                    let calls = f();
                    start.elapsed().as_nanos() as f64 / calls as f64
                })
                .fold(f64::INFINITY, f64::min)
        };
        for capacity in [64usize, 256, 1024, 4096] {
            // Every key new: the table fills with count-1 entries, each replaced by a count-2
            // one; many entries share the minimum, as on real long-tailed traffic.
            let equal = best(&mut || {
                let mut t = HeavyHitters::with_capacity(capacity);
                for k in &keys {
                    t.record(black_box(k), 1, 1);
                }
                keys.len()
            });
            // Worst case: entry i holds i+1 and every new key brings more than the whole
            // staircase, so every eviction moves the minimum and needs a full scan.
            let distinct = best(&mut || {
                let mut t = HeavyHitters::with_capacity(capacity);
                for i in 0..capacity {
                    t.record(format!("/stair{i}").as_bytes(), i as u64 + 1, 0);
                }
                for k in &keys[..RECORDS / 8] {
                    t.record(black_box(k), 1 << 40, 1);
                }
                RECORDS / 8
            });
            // Present keys, for scale: the common hot path.
            let mut t = HeavyHitters::with_capacity(capacity);
            for k in &keys[..capacity] {
                t.record(k, 1, 1);
            }
            let hit = best(&mut || {
                for i in 0..RECORDS {
                    t.record(black_box(&keys[(i * 7919) % capacity]), 1, 1);
                }
                RECORDS
            });
            eprintln!(
                "capacity {capacity:5}: evict, shared minimum {equal:6.1} ns; \
                 evict, distinct counts {distinct:7.1} ns; present key {hit:5.1} ns"
            );
        }
    }
}

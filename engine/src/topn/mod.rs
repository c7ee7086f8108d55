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
//! A request hashes each of its keys once ([`HashedKey`]) for every table it goes to; hosts
//! are lower-cased inside the hash and the comparison, never copied; the section-host pair is
//! hashed from its parts' hashes and compared in parts ([`HeavyHitters::record_pair`]), never
//! built. A pair table ([`HeavyHitters::pairs_with_capacity`]) hashes a stored pair by
//! splitting it at its NUL, so lookups and merges agree with what requests counted.
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
//!   allocation, and the index slot that links it;
//! - `index`: an open-addressing table (linear probing, a power of two of at least four times
//!   the capacity, so at most a quarter full) of `(tag, entry id)` slots. The tag is the high
//!   half of the key's hash (`key`: a fixed function of the bytes, so tables built apart hash
//!   alike and merge by tag) and also gives the slot the probe starts from; a key's bytes are
//!   compared only when the tags agree.
//!   An evicted key's slot (which its entry remembers, so no probe finds it) is removed by
//!   backward-shift deletion, which keeps every probe sequence unbroken without tombstones;
//!   the entries of the slots it moves back learn their new slot.
//!
//! No total is kept per record: every record adds exactly its count to one entry (a key that
//! replaces the minimum keeps the minimum's count), so [`total`](HeavyHitters::total) is the
//! counts' sum, corrected by what a merge, and a key inserted after one at the absent bound,
//! put into the counts beyond the records.
//!
//! The minimum: counts only grow (until [`clear`](HeavyHitters::clear)), so the smallest count
//! never decreases. The table keeps a lower bound `min_hint` of all counts and a cursor, and
//! looks for an entry equal to the hint from the cursor on; only when none is left does it scan
//! everything (a branch-free, vectorisable minimum over `counts`). On real traffic many entries
//! share the smallest count, so most evictions cost a few comparisons.
//!
//! Measured with the `eviction_cost` test (`cargo test --release -p linewatch-engine --
//! --ignored --nocapture eviction_cost`; best of 7 runs, and the better of two such runs, on a
//! loaded 2-core VM, 16-byte keys, x86-64 baseline target), ns per `record`:
//!
//! | capacity | evict, many entries at the minimum | evict, every count distinct (worst) | present key |
//! |---:|---:|---:|---:|
//! | 64 | 30 | 105 | 12 |
//! | 256 | 40 | 177 | 9 |
//! | 1024 | 41 | 692 | 11 |
//! | 4096 | 40 | 2554 | 16 |
//!
//! (After entries remembered their index slot and records stopped keeping a total: the best
//! of four runs, alternated with two of the build before in one session while other builds
//! shared the two cores (single runs moved by up to 1.8x), gave 20 / 26 / 34 / 28, 71 / 172 /
//! 528 / 1897 and 8 / 8 / 10 / 13 ns, against 21 / 28 / 35 / 25, 74 / 169 / 527 / 2363 and
//! 8 / 9 / 14 / 24 ns for the build before.)
//!
//! (Before keys were hashed once with the words carried, the index was four slots per entry
//! and an eviction reused the missed probe's free slot, the same runs gave 42 / 48 / 91 / 85,
//! 112 / 259 / 808 / 1960 and 11 / 9 / 15 / 17 ns; the worst case is one full scan per
//! eviction either way and varies most with the machine's load.)
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

mod index;
mod key;
mod merge;
mod min;
#[cfg(test)]
mod tests;

use core::fmt;

use linewatch_model::TopEntry;

use key::{
    eq_short, eq_with, has_nul_hashed, hash, hashed, hashed_lower, lower_word, pair_hash,
    store_short, tag, Hashed, SHORT,
};

/// Longest key kept; longer keys are cut here and flagged truncated.
pub const KEY_CAP: usize = 128;

/// Largest capacity a table takes: entry ids are `u32` and the index (four times the capacity,
/// rounded up to a power of two) must be addressable by the 32-bit tag.
pub const MAX_CAPACITY: usize = 1 << 24;

/// Index slots per entry (at least; rounded up to a power of two).
const INDEX_SLOTS_PER_ENTRY: usize = 4;

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
    /// The key's hash tag (merges look the key up in another table by it).
    tag: u32,
    /// The index slot that links this entry, so an eviction unlinks it without a probe.
    slot: usize,
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
        slot: 0,
        truncated: false,
        key: [0; KEY_CAP],
    };

    #[inline(always)]
    fn key(&self) -> &[u8] {
        &self.key[..self.len]
    }
}

/// A key cut at [`KEY_CAP`] with its hash, made once per request and counted into every
/// table that takes it ([`HeavyHitters::record_hashed`], [`HeavyHitters::record_pair`]).
#[derive(Debug, Clone, Copy)]
pub struct HashedKey<'a> {
    /// The key as sent, cut at [`KEY_CAP`].
    bytes: &'a [u8],
    /// It was cut.
    truncated: bool,
    /// Made by [`lowercase`](HashedKey::lowercase).
    folds_case: bool,
    /// The hash, and the words of a short key, of the counted bytes (lower-cased if
    /// `folds_case`); `changed` when those differ from `bytes`.
    hashed: Hashed,
}

impl<'a> HashedKey<'a> {
    /// `key` as sent.
    #[inline(always)]
    pub fn new(key: &'a [u8]) -> Self {
        let (bytes, truncated) = cut(key);
        HashedKey {
            bytes,
            truncated,
            folds_case: false,
            hashed: hashed(bytes),
        }
    }

    /// `key` ASCII-lower-cased (hosts are counted case insensitively); nothing is copied.
    #[inline(always)]
    pub fn lowercase(key: &'a [u8]) -> Self {
        let (bytes, truncated) = cut(key);
        HashedKey {
            bytes,
            truncated,
            folds_case: true,
            hashed: hashed_lower(bytes),
        }
    }

    /// The same key cut at `len` bytes (fewer than it has). Takes the key by value, as every
    /// cold path here does: a key whose address went to an out-of-line call would have to be
    /// kept in memory on the hot path too.
    #[cold]
    fn cut_at(self, len: usize) -> Self {
        let bytes = &self.bytes[..len];
        if self.folds_case {
            HashedKey::lowercase(bytes)
        } else {
            HashedKey::new(bytes)
        }
    }

    /// `stored`, of this key's length, is the counted key.
    #[inline(always)]
    fn matches_part(&self, stored: &[u8]) -> bool {
        if self.bytes.len() <= SHORT {
            eq_short(stored, self.hashed.words)
        } else if self.hashed.changed {
            eq_with(stored, self.bytes, lower_word)
        } else {
            stored == self.bytes
        }
    }

    /// Writes the counted key into `dst`, of this key's length.
    #[inline(always)]
    fn store_part(&self, dst: &mut [u8]) {
        if self.bytes.len() <= SHORT {
            store_short(dst, self.hashed.words);
        } else {
            dst.copy_from_slice(self.bytes);
            if self.hashed.changed {
                dst.make_ascii_lowercase();
            }
        }
    }
}

/// A key being counted, as the index needs it: how to recognise its entry (after the tags
/// agreed) and how to store it into a new one. A trait rather than closures so that the
/// comparison is inlined into the probe loop.
trait Probe: Copy {
    /// `entry` holds this key.
    fn matches(&self, entry: &Entry) -> bool;
    /// Writes the key at the start of `dst`; returns its length.
    fn write(&self, dst: &mut [u8; KEY_CAP]) -> usize;
    /// The key's tag is not the one its stored bytes hash to (a pair whose section holds a
    /// NUL), so it must be counted as stored ([`HeavyHitters::step_as_stored`]) rather than
    /// linked under this tag. A probe under the wrong tag can still find its entry only if the
    /// two tags agree, so this is asked only once the probe missed.
    #[inline(always)]
    fn misfiled(&self) -> bool {
        false
    }
}

impl Probe for HashedKey<'_> {
    #[inline(always)]
    fn matches(&self, entry: &Entry) -> bool {
        let len = self.bytes.len();
        entry.len == len && self.matches_part(&entry.key[..len])
    }

    #[inline(always)]
    fn write(&self, dst: &mut [u8; KEY_CAP]) -> usize {
        let len = self.bytes.len();
        self.store_part(&mut dst[..len]);
        len
    }
}

/// The pair `section NUL host`, the host already cut to the room left. Holds its parts by
/// value (see [`HashedKey::cut_at`]).
#[derive(Clone, Copy)]
struct PairKey<'a> {
    section: HashedKey<'a>,
    host: HashedKey<'a>,
}

impl Probe for PairKey<'_> {
    #[inline(always)]
    fn matches(&self, entry: &Entry) -> bool {
        let s_len = self.section.bytes.len();
        let len = s_len + 1 + self.host.bytes.len();
        entry.len == len
            && entry.key[s_len] == 0
            && self.section.matches_part(&entry.key[..s_len])
            && self.host.matches_part(&entry.key[s_len + 1..len])
    }

    #[inline(always)]
    fn write(&self, dst: &mut [u8; KEY_CAP]) -> usize {
        let s_len = self.section.bytes.len();
        let len = s_len + 1 + self.host.bytes.len();
        self.section.store_part(&mut dst[..s_len]);
        dst[s_len] = 0;
        self.host.store_part(&mut dst[s_len + 1..len]);
        len
    }

    /// A stored pair is split at its first NUL to hash it (`key::pair_hash_of`): a section
    /// holding one (request targets cannot) hashes apart from its parts.
    #[inline(always)]
    fn misfiled(&self) -> bool {
        has_nul_hashed(self.section.bytes, &self.section.hashed)
    }
}

/// A key as stored (cut at [`KEY_CAP`]): merges, lookups and the general paths.
#[derive(Clone, Copy)]
struct StoredKey<'a>(&'a [u8]);

impl Probe for StoredKey<'_> {
    #[inline(always)]
    fn matches(&self, entry: &Entry) -> bool {
        entry.key() == self.0
    }

    #[inline(always)]
    fn write(&self, dst: &mut [u8; KEY_CAP]) -> usize {
        dst[..self.0.len()].copy_from_slice(self.0);
        self.0.len()
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
    /// [`total`](Self::total) at the last merge into this table (0 if none).
    merged_total: u64,
    /// The counts' sum at the last merge, plus the `absent_bound` each key inserted since
    /// started with beyond its own count: what the counts hold that records after the merge did
    /// not add. Otherwise every record adds exactly its count to one entry (a key taking the
    /// place of the minimum keeps that count), so the counts' sum grows with the total and a
    /// record need not keep the total itself. Unsaturated (`u128`): a merge can raise the
    /// counts' sum far above the total (each key also takes the other table's absent bound),
    /// so a saturating sum could stop growing while the total still does.
    merged_sum: u128,
    /// Upper bound of the true count of any key not in the table.
    absent_bound: u64,
    /// A lower bound of every count while the table is full.
    min_hint: u64,
    /// Where the search for an entry at `min_hint` starts: entries before it are above the
    /// hint. Past the end in a new or cleared table (whose hint of 0 no entry may hold), so
    /// that its first eviction goes straight to the full scan.
    min_cursor: usize,
    /// Keys are pairs `section NUL host`, hashed from their parts (see
    /// [`record_pair`](HeavyHitters::record_pair)).
    pairs: bool,
}

impl fmt::Debug for HeavyHitters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The entries themselves are up to `capacity * KEY_CAP` bytes: `top` shows them.
        f.debug_struct("HeavyHitters")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .field("total", &self.total())
            .field("absent_bound", &self.absent_bound)
            .finish_non_exhaustive()
    }
}

/// `key` cut at [`KEY_CAP`], and whether it was cut.
#[inline(always)]
fn cut(key: &[u8]) -> (&[u8], bool) {
    match key.get(..KEY_CAP) {
        Some(head) if key.len() > KEY_CAP => (head, true),
        _ => (key, false),
    }
}

// Entry ids (below `MAX_CAPACITY`) and `EMPTY` fit a `u32` slot.
const _: () = assert!(
    MAX_CAPACITY < u32::MAX as usize,
    "entry ids and EMPTY fit u32"
);

/// Entry id as stored in the index. Ids are below the capacity, at most [`MAX_CAPACITY`]
/// (`with_capacity` clamps it; the assertion above holds it within `u32`), so the cast keeps
/// every bit: no check on the path that puts a key.
#[inline(always)]
#[allow(clippy::cast_possible_truncation)]
fn entry_id(e: usize) -> u32 {
    debug_assert!(e < MAX_CAPACITY, "entry ids are below MAX_CAPACITY");
    e as u32
}

impl HeavyHitters {
    /// A table for `capacity` keys, everything allocated now. `capacity` is clamped to
    /// `1..=`[`MAX_CAPACITY`].
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, MAX_CAPACITY);
        // At least four times the capacity keeps the index at most a quarter full: probes
        // and the clusters an eviction walks stay short.
        let slots = (INDEX_SLOTS_PER_ENTRY * capacity).next_power_of_two();
        HeavyHitters {
            counts: vec![0; capacity].into_boxed_slice(),
            entries: vec![Entry::VACANT; capacity].into_boxed_slice(),
            index: vec![EMPTY_SLOT; slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
            merged_total: 0,
            merged_sum: 0,
            absent_bound: 0,
            min_hint: 0,
            min_cursor: capacity,
            pairs: false,
        }
    }

    /// A table for `capacity` pair keys `section NUL host`, counted with
    /// [`record_pair`](Self::record_pair) (the pair's hash is made of its parts' hashes, so
    /// a pair table merges only with pair tables).
    pub fn pairs_with_capacity(capacity: usize) -> Self {
        HeavyHitters {
            pairs: true,
            ..HeavyHitters::with_capacity(capacity)
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
    /// O(capacity): the counts' sum (see `merged_sum`).
    pub fn total(&self) -> u64 {
        let recorded = self.counts_sum().saturating_sub(self.merged_sum);
        // No count exceeds the true total, so a count cut at `u64::MAX` means a total of at
        // least that: saturating here is exact.
        u64::try_from(u128::from(self.merged_total) + recorded).unwrap_or(u64::MAX)
    }

    /// The sum of the counts, exact (at most 2^24 counts of 2^64).
    fn counts_sum(&self) -> u128 {
        self.counts[..self.len].iter().map(|&c| u128::from(c)).sum()
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
        if self.pairs {
            return self.record_stored_pair(key, count, bytes);
        }
        self.record_hashed(&HashedKey::new(key), count, bytes);
    }

    /// Same as [`record`](Self::record), with `key` ASCII-lower-cased (hosts are counted case
    /// insensitively). The lower-casing is folded into hashing and comparing: no copy.
    #[inline]
    pub fn record_lowercase(&mut self, key: &[u8], count: u64, bytes: u64) {
        if self.pairs {
            let (key, _) = cut(key);
            let mut lower = [0u8; KEY_CAP];
            lower[..key.len()].copy_from_slice(key);
            lower.make_ascii_lowercase();
            return self.record_stored_pair(&lower[..key.len()], count, bytes);
        }
        self.record_hashed(&HashedKey::lowercase(key), count, bytes);
    }

    /// Same as [`record`](Self::record) or [`record_lowercase`](Self::record_lowercase) (as
    /// `key` was made), with the hash computed once for every table the key goes to.
    #[inline(always)]
    pub fn record_hashed(&mut self, key: &HashedKey<'_>, count: u64, bytes: u64) {
        debug_assert!(!self.pairs, "a pair table counts pairs");
        self.record_with(tag(key.hashed.hash), key.truncated, count, bytes, key);
    }

    /// Counts under the pair key `section NUL host` (a pair table's key; the host
    /// lower-cased, the pair cut at [`KEY_CAP`] without a truncation flag) from the two keys'
    /// hashes, without building the pair. `host` is made with [`HashedKey::lowercase`] (a
    /// host made with [`HashedKey::new`] is counted as sent).
    #[inline(always)]
    pub fn record_pair(
        &mut self,
        section: &HashedKey<'_>,
        host: &HashedKey<'_>,
        count: u64,
        bytes: u64,
    ) {
        debug_assert!(self.pairs, "only a pair table counts pairs");
        // Both parts are cut at `KEY_CAP`: the sum does not overflow.
        if section.bytes.len() + 1 + host.bytes.len() > KEY_CAP {
            return self.record_pair_cut(*section, *host, count, bytes);
        }
        self.record_pair_fits(*section, *host, count, bytes);
    }

    /// [`record_pair`](Self::record_pair) for a pair that fits [`KEY_CAP`].
    #[inline(always)]
    fn record_pair_fits(
        &mut self,
        section: HashedKey<'_>,
        host: HashedKey<'_>,
        count: u64,
        bytes: u64,
    ) {
        let tag = tag(pair_hash(section.hashed.hash, Some(host.hashed.hash)));
        self.record_with(tag, false, count, bytes, &PairKey { section, host });
    }

    /// [`record_pair`](Self::record_pair) for a pair longer than [`KEY_CAP`]: the host cut to
    /// the room left after the section and the NUL, or, for a section of [`KEY_CAP`] bytes,
    /// the section alone. Out of line, so that the common path holds one host, not a choice
    /// of two.
    #[cold]
    #[inline(never)]
    fn record_pair_cut(
        &mut self,
        section: HashedKey<'_>,
        host: HashedKey<'_>,
        count: u64,
        bytes: u64,
    ) {
        let s_len = section.bytes.len();
        if s_len == KEY_CAP {
            return self.record_section_alone(section, count, bytes);
        }
        self.record_pair_fits(section, host.cut_at(KEY_CAP - 1 - s_len), count, bytes);
    }

    /// [`record_pair`](Self::record_pair) for a section of [`KEY_CAP`] bytes: no room for the
    /// NUL, so the pair is the section alone.
    #[cold]
    #[inline(never)]
    fn record_section_alone(&mut self, section: HashedKey<'_>, count: u64, bytes: u64) {
        if has_nul_hashed(section.bytes, &section.hashed) {
            // Hashed as stored: split at its first NUL (`key::pair_hash_of`).
            return self.record_stored_pair(section.bytes, count, bytes);
        }
        let tag = tag(pair_hash(section.hashed.hash, None));
        self.record_with(tag, false, count, bytes, &section);
    }

    /// Counts under `key` as stored in a pair table (hashed by splitting it at its NUL).
    fn record_stored_pair(&mut self, key: &[u8], count: u64, bytes: u64) {
        let (key, truncated) = cut(key);
        self.record_with(self.tag_of(key), truncated, count, bytes, &StoredKey(key));
    }

    /// The space-saving step for `key`, with tag `tag`.
    #[inline(always)]
    fn record_with(&mut self, tag: u32, truncated: bool, count: u64, bytes: u64, key: &impl Probe) {
        self.step(tag, truncated, count, bytes, key);
    }

    /// [`record_with`](Self::record_with) (which adds nothing else: the counts make the
    /// total).
    #[inline(always)]
    fn step(&mut self, tag: u32, truncated: bool, count: u64, bytes: u64, key: &impl Probe) {
        match self.find_by(tag, key) {
            Ok(e) => {
                // The entry first: its bounds check is the probe's, with no store between.
                let entry = &mut self.entries[e];
                entry.bytes = entry.bytes.saturating_add(bytes);
                entry.truncated |= truncated;
                self.counts[e] = self.counts[e].saturating_add(count);
            }
            Err(_) if key.misfiled() => self.step_as_stored(truncated, count, bytes, *key),
            Err(slot) if self.len < self.capacity() => {
                // Up to `absent_bound` of this key may have been counted before and evicted
                // (only possible after a merge: a table that evicted is full).
                let base = self.absent_bound;
                if base != 0 {
                    self.merged_sum += u128::from(base);
                }
                let e = self.len;
                self.len += 1;
                let start = Start {
                    count: base.saturating_add(count),
                    error: base,
                    bytes,
                    tag,
                    truncated,
                };
                self.put(e, slot, start, key);
            }
            // A zero count carries nothing worth evicting a key for.
            Err(_) if count == 0 => {}
            Err(slot) => self.replace_min(slot, tag, truncated, count, bytes, key),
        }
    }

    /// The space-saving step for an absent key in a full table; `free` is the empty slot its
    /// probe ended at. Inlined: on traffic with more distinct keys than the table holds, most
    /// requests take it, and a call's register saves cost about a tenth of an eviction.
    #[inline(always)]
    fn replace_min(
        &mut self,
        free: usize,
        tag: u32,
        truncated: bool,
        count: u64,
        bytes: u64,
        key: &impl Probe,
    ) {
        let (victim, min) = self.find_min();
        let emptied = self.evict(victim, min);
        let slot = self.free_slot_after(tag, free, emptied);
        let start = Start {
            count: min.saturating_add(count),
            error: min,
            bytes,
            tag,
            truncated,
        };
        self.put(victim, slot, start, key);
    }

    /// [`step`](Self::step) for a [`misfiled`](Probe::misfiled) key: built and hashed as
    /// stored.
    #[cold]
    #[inline(never)]
    fn step_as_stored(&mut self, truncated: bool, count: u64, bytes: u64, key: impl Probe) {
        let mut stored = [0u8; KEY_CAP];
        let len = key.write(&mut stored);
        let stored = &stored[..len];
        self.step(
            self.tag_of(stored),
            truncated,
            count,
            bytes,
            &StoredKey(stored),
        );
    }

    /// The tag of a key as stored in this table.
    fn tag_of(&self, key: &[u8]) -> u32 {
        if self.pairs {
            tag(key::pair_hash_of(key))
        } else {
            tag(hash(key))
        }
    }

    /// Empties the table in O(index size), keeping the allocation.
    pub fn clear(&mut self) {
        self.index.fill(EMPTY_SLOT);
        self.len = 0;
        self.merged_total = 0;
        self.merged_sum = 0;
        self.absent_bound = 0;
        self.min_hint = 0;
        self.min_cursor = self.capacity();
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
        self.find(key, self.tag_of(key))
            .ok()
            .map(|e| self.top_entry(e))
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

    /// Makes entry `e` hold `key` with `start`, linked at index `slot`: each array indexed
    /// once.
    #[inline(always)]
    fn put(&mut self, e: usize, slot: usize, start: Start, key: &impl Probe) {
        let entry = &mut self.entries[e];
        entry.len = key.write(&mut entry.key);
        entry.tag = start.tag;
        entry.slot = slot;
        entry.truncated = start.truncated;
        entry.error = start.error;
        entry.bytes = start.bytes;
        self.counts[e] = start.count;
        self.index[slot] = Slot {
            tag: start.tag,
            entry: entry_id(e),
        };
    }
}

/// What an entry starts with when a key takes it ([`HeavyHitters::put`]).
struct Start {
    count: u64,
    error: u64,
    bytes: u64,
    tag: u32,
    truncated: bool,
}

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
        assert_eq!(t.find(key, t.tag_of(key)), Ok(e));
        // An eviction unlinks the entry at the slot it remembers.
        let slot = t.index[t.entries[e].slot];
        assert_eq!((slot.entry as usize, slot.tag), (e, t.entries[e].tag));
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
fn total_holds_through_records_after_merges() {
    // The total is the counts' sum adjusted at each merge: keys inserted after a merge start
    // at its absent bound (more than their own count), evictions and further merges follow.
    let mut rng = Rng(0x7074);
    let mut merged = HeavyHitters::with_capacity(64);
    let mut seen = Vec::new();
    for round in 0..6 {
        let part = stream(&mut rng, 2000, 300, round % 2 == 0);
        let mut core = HeavyHitters::with_capacity(4);
        record_all(&mut core, &part);
        assert!(core.absent_bound() > 0);
        merged.merge_from(&core);
        seen.extend(part);
        let direct = stream(&mut rng, 40, 1000, false);
        record_all(&mut merged, &direct);
        seen.extend(direct);
        let truth = truth_of(&seen);
        assert_eq!(merged.total(), truth.values().map(|v| v.0).sum::<u64>());
        assert_guarantees(&merged, &truth, 4);
    }
    merged.clear();
    record_all(&mut merged, &seen[..10]);
    assert_eq!(
        merged.total(),
        truth_of(&seen[..10]).values().map(|v| v.0).sum::<u64>()
    );
}

#[test]
fn total_near_the_top_of_u64_keeps_growing_and_saturates_exactly() {
    // A merge raises the counts' sum above the total (each key also takes the other table's
    // absent bound); with counts this large that sum passes u64::MAX while the total does not.
    let a = 3u64 << 60;
    let table = |keys: [&[u8]; 2], count: u64| {
        let mut t = HeavyHitters::with_capacity(1);
        for key in keys {
            t.record(key, count, 0);
        }
        t
    };
    let (x, y) = (table([b"A", b"B"], a), table([b"C", b"D"], a));
    let mut z = HeavyHitters::with_capacity(8);
    z.merge_from(&x);
    z.merge_from(&y);
    assert_eq!(z.total(), 4 * a);
    for _ in 0..1000 {
        z.record(b"E", 1, 0);
    }
    assert_eq!(
        z.total(),
        4 * a + 1000,
        "records after the merge still count"
    );

    let (p, q) = (table([b"a", b"b"], 1), table([b"c", b"d"], 1));
    let mut m = HeavyHitters::with_capacity(4);
    m.merge_from(&p);
    m.merge_from(&q);
    m.record(b"e", u64::MAX, 0);
    assert_eq!(m.total(), u64::MAX, "the total saturates, exactly");
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

/// The item `draw` picks (modulo their number).
fn pick<T>(items: &[T], draw: u64) -> &T {
    let n = u64::try_from(items.len()).expect("few items");
    &items[usize::try_from(draw % n).expect("below the number of items")]
}

/// The pair key as `count_request` built it before pairs were hashed from their parts.
fn built_pair(section: &[u8], host: &[u8]) -> Vec<u8> {
    let mut pair = section[..section.len().min(KEY_CAP)].to_vec();
    if pair.len() < KEY_CAP {
        pair.push(0);
        let room = KEY_CAP - pair.len();
        pair.extend(host.iter().take(room).map(u8::to_ascii_lowercase));
    }
    pair
}

#[test]
fn pairs_from_hashed_parts_count_as_built_pairs() {
    // Sections and hosts at the edges of the cut (the pair's NUL and host room), hosts in
    // mixed case, a section holding a NUL; small capacities so that evictions happen. The
    // victim of an eviction depends on counts and insertion order, not on hashes, so the
    // tables must agree entry for entry.
    let mut rng = Rng(0x5eed);
    let sections: Vec<Vec<u8>> = [
        1usize, 2, 7, 8, 15, 16, 17, 100, 125, 126, 127, 128, 129, 300,
    ]
    .iter()
    .flat_map(|&n| {
        [
            vec![b's'; n],
            format!("/{}", "p".repeat(n - 1)).into_bytes(),
        ]
    })
    // A section of more than KEY_CAP bytes holding NULs: the pair is the section alone.
    .chain([b"/a\0b".to_vec(), b"/".to_vec(), b"/a\0".repeat(50)])
    .collect();
    let hosts: Vec<Vec<u8>> = [0usize, 1, 3, 4, 9, 16, 30, 127, 128, 200]
        .iter()
        .flat_map(|&n| {
            [
                vec![b'h'; n],
                (0..n).map(|i| b"Ex-AMPLE.com:80"[i % 15]).collect(),
            ]
        })
        .collect();
    for capacity in [4, 64, 1024] {
        let mut ours = HeavyHitters::pairs_with_capacity(capacity);
        let mut built = HeavyHitters::pairs_with_capacity(capacity);
        let mut plain = HeavyHitters::with_capacity(capacity);
        for _ in 0..20_000 {
            let s = pick(&sections, rng.next());
            let h = pick(&hosts, rng.next());
            let bytes = rng.below(1000);
            ours.record_pair(&HashedKey::new(s), &HashedKey::lowercase(h), 1, bytes);
            built.record(&built_pair(s, h), 1, bytes);
            plain.record(&built_pair(s, h), 1, bytes);
        }
        assert_eq!(
            ours.top(usize::MAX),
            plain.top(usize::MAX),
            "capacity {capacity}"
        );
        assert_eq!(
            built.top(usize::MAX),
            plain.top(usize::MAX),
            "capacity {capacity}"
        );
        assert_eq!(ours.absent_bound(), plain.absent_bound());
        assert_index_consistent(&ours);
        for e in ours.top(usize::MAX) {
            assert_eq!(ours.get(&e.key).as_ref(), Some(&e));
        }
        // Pair tables merge with pair tables.
        let mut merged = HeavyHitters::pairs_with_capacity(capacity);
        merged.merge_from(&ours);
        merged.merge_from(&built);
        let mut merged_plain = HeavyHitters::with_capacity(capacity);
        merged_plain.merge_from(&plain);
        merged_plain.merge_from(&plain);
        assert_eq!(merged.top(usize::MAX), merged_plain.top(usize::MAX));
    }
}

#[test]
fn hashed_keys_count_as_their_bytes() {
    let mut rng = Rng(0xab);
    let keys: Vec<Vec<u8>> = (0..200u64)
        .map(|i| {
            let mut k = key(i);
            if i % 3 == 0 {
                k.make_ascii_uppercase();
            }
            if i % 11 == 0 {
                k.extend_from_slice(&[b'Q'; 150]);
            }
            k
        })
        .collect();
    for capacity in [8, 512] {
        let mut hashed = HeavyHitters::with_capacity(capacity);
        let mut plain = HeavyHitters::with_capacity(capacity);
        let mut lowered = HeavyHitters::with_capacity(capacity);
        let mut lowered_plain = HeavyHitters::with_capacity(capacity);
        for _ in 0..10_000 {
            let k = pick(&keys, rng.skewed(keys.len() as u64));
            hashed.record_hashed(&HashedKey::new(k), 1, 3);
            plain.record(k, 1, 3);
            lowered.record_hashed(&HashedKey::lowercase(k), 1, 3);
            lowered_plain.record(&k.to_ascii_lowercase(), 1, 3);
        }
        assert_eq!(hashed.top(usize::MAX), plain.top(usize::MAX));
        assert_eq!(lowered.top(usize::MAX), lowered_plain.top(usize::MAX));
        assert_index_consistent(&lowered);
    }
}

/// `len` lower-case letters, a to z and again.
fn letters(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz"[i % 26])
        .collect()
}

#[test]
fn every_byte_of_a_long_key_reaches_its_hash() {
    // Keys of 17-80 bytes: a body that is not a multiple of 16 once left bytes unread.
    for len in 17..=80usize {
        let base = letters(len);
        for at in 0..len {
            let mut other = base.clone();
            other[at] = b'0';
            assert_ne!(
                key::hash(&base),
                key::hash(&other),
                "len {len}: byte {at} does not reach the hash"
            );
        }
    }
}

#[test]
fn a_capital_anywhere_in_a_host_is_lowered() {
    // As count_request counts hosts: one capital at each position of a lower-case host of
    // every length up to 80 counts with the lower-case host, which is what is stored.
    for len in 1..=80usize {
        let lower = letters(len);
        for at in 0..len {
            let mut upper = lower.clone();
            upper[at] = upper[at].to_ascii_uppercase();
            let mut t = HeavyHitters::with_capacity(8);
            t.record_hashed(&HashedKey::lowercase(&upper), 1, 10);
            t.record_hashed(&HashedKey::lowercase(&lower), 1, 10);
            let top = t.top(8);
            assert_eq!(top.len(), 1, "len {len}, capital at {at}: {top:?}");
            assert_eq!(top[0].key, lower, "len {len}, capital at {at}");
            assert_eq!(top[0].count, 2);
        }
    }
}

#[test]
fn a_pair_with_a_capital_only_early_in_its_host_counts_as_the_built_pair() {
    let mut ours = HeavyHitters::pairs_with_capacity(8);
    let mut built = HeavyHitters::pairs_with_capacity(8);
    for h in [&b"www.example-cdn.net"[..], b"WWW.example-cdn.net"] {
        ours.record_pair(&HashedKey::new(b"/a"), &HashedKey::lowercase(h), 1, 1);
        built.record(&built_pair(b"/a", h), 1, 1);
    }
    assert_eq!(ours.top(8), built.top(8));
}

#[test]
fn hosts_numbered_at_the_front_get_distinct_tags() {
    // Shard-style hosts of 20 bytes, numbered where a body's remainder once went unread.
    let tags: std::collections::HashSet<u32> = (0..1000)
        .map(|i| key::tag(key::hash(format!("{i:04}.example-cdn.net").as_bytes())))
        .collect();
    assert!(
        tags.len() > 990,
        "{} distinct tags of 1000 keys",
        tags.len()
    );
}

//! Out-of-order TCP segments, held until the hole before them fills.
//!
//! Contract: a [`ReorderPool`] holds, for at most [`HOLD_SLOTS`] flow directions at once, the
//! segments that arrived ahead of their direction's next expected byte (a *hole*): at most
//! [`HOLD_SEGMENTS`] segments within [`HOLD_BYTES`] of sequence space past the direction's next
//! expected byte. The worker ([`crate::worker`]) delivers them in stream order as soon as the
//! hole fills, so a request whose segments were reordered (or lost and retransmitted before the
//! capture point) is parsed as the server read it. Memory is bounded whatever the traffic:
//! the pool's bytes (`HOLD_SLOTS` x `HOLD_BYTES`, 16 MiB of address space per worker) are
//! reserved at the first out-of-order segment a worker sees and touched only as far as
//! segments are held; nothing is allocated after that.
//!
//! Overlaps follow Linux's receiver (`tcp_data_queue_ofo` and `tcp_ofo_queue` in
//! net/ipv4/tcp_input.c), so the bytes parsed are the bytes the server's socket delivered:
//! - bytes already delivered in order are never replaced (the worker trims them);
//! - a new segment whose bytes a held segment already covers whole is dropped;
//! - a new segment that starts where a held one starts and is longer replaces it, and held
//!   segments the new one covers whole are removed;
//! - a new segment that starts where a held one ends is joined to it (Linux coalesces);
//! - otherwise both are kept, and where they overlap, the bytes of the one that starts first
//!   are delivered (delivery trims what is already delivered).
//!
//! Each dropped, replaced or removed segment is an overlap ([`Insert::overlaps`]). Linux may
//! decline to coalesce for buffer-layout reasons this model does not have; that only matters
//! for a later segment overlapping two joined ones with different bytes.
//!
//! Layout: a slot's bytes are a ring of `HOLD_BYTES` indexed by sequence number (a byte with
//! sequence number `s` lives at `s mod HOLD_BYTES`), so a segment is written once, where it
//! belongs, and never moved: joining two segments is a change of their bounds, not a copy. A
//! new segment writes only the positions it wins by the rules above (those no held segment
//! that starts before it covers). The held segments are bounds only, sorted by start, relative
//! to the slot's `base`; the worker moves the base up to its direction's next expected byte
//! whenever it delivers ([`ReorderPool::rebase`]), so the window is always `HOLD_BYTES` past
//! the byte the stream waits for, as Linux's receive window is past `rcv_nxt`. Joined segments
//! keep their boundaries in a bitmap beside the ring ([`ReorderPool::next_start`]): a stream
//! resynchronising after a given-up hole looks for a message start where a segment began.
//! With the bitmap and the bounds, a worker's pool is 18 MiB of address space.

use crate::slots::{Owner, Slots};

/// Directions with a hole held at once, per worker. When all are in use, the least recently
/// active hole is given up for the new one (`reorder_reclaimed`).
pub const HOLD_SLOTS: usize = 256;

/// Sequence space held past a hole's start, per direction: 64 KiB, Linux's default initial
/// receive window order of magnitude, and four 16 KiB TLS records. A segment that would reach
/// past it gives the hole up.
pub const HOLD_BYTES: usize = 64 * 1024;

/// Segments held per direction (bounds only, 16 bytes each): a request sent in one-byte
/// segments, last byte first, is a known evasion; Linux holds several hundred such segments at
/// its default receive buffer.
pub const HOLD_SEGMENTS: usize = 256;

/// A hole with no held segment for this long (packet time) is given up: the capture missed
/// those bytes. TCP retransmits a lost segment within a few seconds (RTO from 200 ms,
/// doubling); ten seconds covers four losses in a row of the same segment.
pub const HOLE_TIMEOUT_NS: u64 = 10_000_000_000;

/// How long a hole stays open against the peer's acknowledgement of bytes past it: a SPAN
/// port or a tap copies the two directions apart, so the peer's ACK may be captured before
/// the data it acknowledges. Well past any copy path's reordering, well short of a TCP
/// retransmission (RTO from 200 ms).
pub const ACK_GRACE_NS: u64 = 100_000_000;

/// Sooner than [`ACK_GRACE_NS`], a hole yields once [`ACK_QUICK_COUNT`] of the peer's
/// segments have acknowledged past it and it is this old: the peer went on talking (new
/// requests after the responses it got), which a copy path delaying one packet cannot
/// explain; and the responses held behind the hole must not fall far behind their requests.
pub const ACK_QUICK_NS: u64 = 2_000_000;

/// See [`ACK_QUICK_NS`].
pub const ACK_QUICK_COUNT: u32 = 3;

/// How far past a direction's next byte, with nothing held, the peer's acknowledgement must
/// reach to move the stream on at once: no copy path reorders this much of one direction
/// against the other. Less is left to the next segment, held behind the hole.
pub const ACK_JUMP: u32 = 4 * 64 * 1024;
const _: () = assert!(ACK_JUMP as usize == 4 * HOLD_BYTES);

/// One held segment: positions relative to the slot's base, bytes at `at` in the slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    /// First position.
    pub start: u32,
    /// One past the last position.
    pub end: u32,
    /// Packet time of its (first) segment.
    pub ts: u64,
}

/// What [`ReorderPool::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insert {
    /// The segment is held (false: dropped as already held whole).
    pub held: bool,
    /// Held segments dropped, replaced or removed by the overlap rules (the new one included).
    pub overlaps: u32,
}

/// The pool. See the module doc. The default pool has no slots and allocates nothing.
#[derive(Debug, Default)]
pub struct ReorderPool {
    /// `HOLD_SLOTS * HOLD_BYTES` once reserved (a ring per slot); empty before.
    bytes: Vec<u8>,
    /// `HOLD_SEGMENTS` per slot, sorted by start, the first `counts[slot]` in use.
    segs: Vec<Held>,
    counts: Vec<u32>,
    /// Sequence number of each slot's position 0.
    bases: Vec<u32>,
    /// Packet time each slot was last given a segment.
    active: Vec<u64>,
    /// Packet time each slot's hole opened.
    opened: Vec<u64>,
    /// The peer's segments that acknowledged past each slot's hole.
    acks: Vec<u32>,
    /// Where held segments began, a bit per ring position (`HOLD_BYTES / 64` words a slot):
    /// joined segments keep their boundaries, where a stream resynchronising after a loss
    /// looks for a message start.
    starts: Vec<u64>,
    slots: Slots,
}

impl ReorderPool {
    /// Reserves the pool (once; a no-op after).
    fn reserve(&mut self) {
        if !self.bytes.is_empty() {
            return;
        }
        self.bytes = vec![0; HOLD_SLOTS * HOLD_BYTES];
        self.segs = vec![Held::default(); HOLD_SLOTS * HOLD_SEGMENTS];
        self.counts = vec![0; HOLD_SLOTS];
        self.bases = vec![0; HOLD_SLOTS];
        self.active = vec![0; HOLD_SLOTS];
        self.opened = vec![0; HOLD_SLOTS];
        self.acks = vec![0; HOLD_SLOTS];
        self.starts = vec![0; HOLD_SLOTS * START_WORDS];
        self.slots = Slots::new(HOLD_SLOTS);
    }

    /// Takes a slot for `owner`, whose hole starts at sequence number `base`; `None` when
    /// every slot is in use (see [`ReorderPool::reclaim`]).
    pub fn take(&mut self, owner: Owner, base: u32, ts: u64) -> Option<u32> {
        self.reserve();
        let slot = self.slots.take(owner)?;
        self.reset(slot, base, ts);
        Some(slot)
    }

    /// The least recently active slot, taken from its owner (returned) and given to `owner`,
    /// empty; the caller first gives up what the old owner held (see [`ReorderPool::oldest`]).
    pub fn reclaim(&mut self, owner: Owner, base: u32, ts: u64) -> Option<(u32, Owner)> {
        let (slot, old) = self.slots.reclaim(owner)?;
        self.reset(slot, base, ts);
        Some((slot, old))
    }

    fn reset(&mut self, slot: u32, base: u32, ts: u64) {
        let s = slot as usize;
        self.counts[s] = 0;
        self.bases[s] = base;
        self.active[s] = ts;
        self.opened[s] = ts;
        self.acks[s] = 0;
        self.starts[s * START_WORDS..(s + 1) * START_WORDS].fill(0);
    }

    /// The first segment boundary after `from` and before `to` (positions of `slot`), or `to`.
    pub fn next_start(&self, slot: u32, from: u32, to: u32) -> u32 {
        let s = slot as usize;
        let base = self.bases[s];
        let words = &self.starts[s * START_WORDS..(s + 1) * START_WORDS];
        (from + 1..to)
            .find(|&p| {
                let at = ring_index(base.wrapping_add(p));
                words[at / 64] & (1 << (at % 64)) != 0
            })
            .unwrap_or(to)
    }

    /// Marks where a held segment begins.
    fn mark_start(&mut self, slot: u32, pos: u32) {
        let s = slot as usize;
        let at = ring_index(self.bases[s].wrapping_add(pos));
        self.starts[s * START_WORDS + at / 64] |= 1 << (at % 64);
    }

    /// Notes one more of the peer's segments acknowledging past `slot`'s hole; returns how
    /// many there have been.
    pub fn note_ack(&mut self, slot: u32) -> u32 {
        let n = &mut self.acks[slot as usize];
        *n = n.saturating_add(1);
        *n
    }

    /// When `slot`'s hole opened (packet time).
    pub fn opened(&self, slot: u32) -> u64 {
        self.opened[slot as usize]
    }

    /// The least recently active slot in use, its owner and when it was last active.
    pub fn oldest(&self) -> Option<(u32, Owner, u64)> {
        let slot = self.slots.oldest()?;
        Some((slot, self.slots.owner(slot), self.active[slot as usize]))
    }

    /// Gives a slot back (its segments are forgotten).
    pub fn give_back(&mut self, slot: u32) {
        self.slots.give_back(slot);
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.slots.in_use()
    }

    /// The sequence number of `slot`'s position 0.
    pub fn base(&self, slot: u32) -> u32 {
        self.bases[slot as usize]
    }

    /// The segments held in `slot`, sorted by start.
    pub fn held(&self, slot: u32) -> &[Held] {
        let s = slot as usize;
        &self.segs[s * HOLD_SEGMENTS..s * HOLD_SEGMENTS + self.counts[s] as usize]
    }

    /// The bytes at positions `from..to` of `slot` (relative to its base), as one or two
    /// runs: the ring may wrap inside them.
    pub fn bytes(&self, slot: u32, from: u32, to: u32) -> (&[u8], &[u8]) {
        let area = &self.bytes[slot as usize * HOLD_BYTES..(slot as usize + 1) * HOLD_BYTES];
        let at = ring_index(self.bases[slot as usize].wrapping_add(from));
        let len = (to - from) as usize;
        if at + len <= HOLD_BYTES {
            (&area[at..at + len], &[])
        } else {
            (&area[at..], &area[..at + len - HOLD_BYTES])
        }
    }

    /// Moves `slot`'s base up to `base` (the direction's next expected byte, at or before
    /// every held segment's start): positions shift, the ring does not move.
    pub fn rebase(&mut self, slot: u32, base: u32) {
        let s = slot as usize;
        let delta = base.wrapping_sub(self.bases[s]);
        let first = s * HOLD_SEGMENTS;
        for h in &mut self.segs[first..first + self.counts[s] as usize] {
            debug_assert!(h.start >= delta, "rebase past a held segment");
            h.start -= delta.min(h.start);
            h.end -= delta.min(h.end);
        }
        self.bases[s] = base;
    }

    /// Removes `slot`'s first held segment (delivered or given up).
    pub fn pop_front(&mut self, slot: u32) {
        let s = slot as usize;
        let n = self.counts[s] as usize;
        if n > 0 {
            let first = s * HOLD_SEGMENTS;
            self.segs.copy_within(first + 1..first + n, first);
            self.counts[s] -= 1;
        }
    }

    /// Holds `data`, whose first byte has sequence number `seq`, in `slot` by the overlap
    /// rules of the module doc; `None` when it does not fit (past `HOLD_BYTES` of the base,
    /// `HOLD_SEGMENTS` segments, or the slot's byte area): the caller gives the hole up.
    pub fn insert(&mut self, slot: u32, seq: u32, data: &[u8], ts: u64) -> Option<Insert> {
        let s = slot as usize;
        let start = seq.wrapping_sub(self.bases[s]);
        let len = u32::try_from(data.len()).ok()?;
        let end = start.checked_add(len)?;
        if data.is_empty() || end as usize > HOLD_BYTES {
            return None;
        }
        self.active[s] = ts;
        self.slots.touch(slot);
        let first = s * HOLD_SEGMENTS;
        let n = self.counts[s] as usize;
        let held = &self.segs[first..first + n];
        // Already held whole: dropped.
        if held.iter().any(|h| h.start <= start && end <= h.end) {
            return Some(Insert {
                held: false,
                overlaps: 1,
            });
        }
        // Where it goes: after every segment that starts before it.
        let at = held.iter().take_while(|h| h.start < start).count();
        let joins = at > 0 && held[at - 1].end == start;
        let replaces = at < n && held[at].start == start;
        if !joins && !replaces && n == HOLD_SEGMENTS {
            return None;
        }
        // Its bytes win every position no segment that starts before it covers.
        let won = held[..at].iter().map(|h| h.end).fold(start, u32::max);
        if won < end {
            self.write(slot, won, &data[(won - start) as usize..]);
        }
        self.mark_start(slot, start);
        let mut overlaps = 0;
        if joins {
            // Joined to the segment before it, which now ends where this one ends; nothing
            // after it is removed (as Linux's coalescing).
            let before = &mut self.segs[first + at - 1];
            before.end = before.end.max(end);
        } else {
            let placed = Held { start, end, ts };
            if replaces {
                self.segs[first + at] = placed;
                overlaps += 1;
            } else {
                self.segs.copy_within(first + at..first + n, first + at + 1);
                self.segs[first + at] = placed;
                self.counts[s] += 1;
            }
            // The segments after it that it covers whole go.
            loop {
                let n = self.counts[s] as usize;
                let next = first + at + 1;
                if next >= first + n || self.segs[next].end > end {
                    break;
                }
                self.segs.copy_within(next + 1..first + n, next);
                self.counts[s] -= 1;
                overlaps += 1;
            }
        }
        Some(Insert {
            held: true,
            overlaps,
        })
    }

    /// Writes `data` at positions from `from` of `slot`'s ring.
    fn write(&mut self, slot: u32, from: u32, data: &[u8]) {
        let area = slot as usize * HOLD_BYTES;
        let at = ring_index(self.bases[slot as usize].wrapping_add(from));
        let first = data.len().min(HOLD_BYTES - at);
        self.bytes[area + at..area + at + first].copy_from_slice(&data[..first]);
        let rest = &data[first..];
        self.bytes[area..area + rest.len()].copy_from_slice(rest);
    }
}

/// Words of a slot's segment-start bitmap.
const START_WORDS: usize = HOLD_BYTES / 64;

/// Where the byte with sequence number `seq` lives in a slot's ring.
fn ring_index(seq: u32) -> usize {
    seq as usize % HOLD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Owner = Owner { flow: 1, side: 0 };

    /// The bytes a receiver delivers from `slot` once the hole (positions before the first
    /// held one) is filled with `fill` bytes of `b'_'`: Linux's `tcp_ofo_queue`, trimming what
    /// is already delivered.
    fn deliver(pool: &mut ReorderPool, slot: u32, fill: u32) -> Vec<u8> {
        let mut out = vec![b'_'; fill as usize];
        while let Some(&h) = pool.held(slot).first() {
            let delivered = u32::try_from(out.len()).unwrap();
            if h.start > delivered {
                break;
            }
            if h.end > delivered {
                let (a, b) = pool.bytes(slot, delivered, h.end);
                out.extend_from_slice(a);
                out.extend_from_slice(b);
            }
            pool.pop_front(slot);
        }
        out
    }

    fn pool_with_slot(base: u32) -> (ReorderPool, u32) {
        let mut pool = ReorderPool::default();
        let slot = pool.take(OWNER, base, 0).unwrap();
        (pool, slot)
    }

    #[test]
    fn segments_come_out_in_stream_order() {
        let (mut pool, s) = pool_with_slot(1000);
        assert!(pool.insert(s, 1010, b"world", 2).unwrap().held);
        assert!(pool.insert(s, 1004, b" the ", 1).unwrap().held);
        assert!(pool.insert(s, 1009, b" ", 3).unwrap().held);
        assert_eq!(pool.held(s).len(), 2, "\" \" joins \" the \"");
        assert_eq!(deliver(&mut pool, s, 4), b"____ the  world");
    }

    #[test]
    fn overlaps_follow_linux() {
        // Held whole already: dropped.
        let (mut pool, s) = pool_with_slot(0);
        pool.insert(s, 10, b"abcdef", 0);
        let r = pool.insert(s, 11, b"XY", 0).unwrap();
        assert_eq!((r.held, r.overlaps), (false, 1));
        assert_eq!(deliver(&mut pool, s, 10), b"__________abcdef");

        // Same start, longer: replaces.
        let (mut pool, s) = pool_with_slot(0);
        pool.insert(s, 10, b"abc", 0);
        let r = pool.insert(s, 10, b"XYZW", 0).unwrap();
        assert_eq!((r.held, r.overlaps), (true, 1));
        assert_eq!(deliver(&mut pool, s, 10), b"__________XYZW");

        // Partial overlap: both kept, the one that starts first wins where they overlap.
        let (mut pool, s) = pool_with_slot(0);
        pool.insert(s, 12, b"cdef", 0);
        pool.insert(s, 10, b"ABCD", 0);
        assert_eq!(pool.held(s).len(), 2);
        assert_eq!(deliver(&mut pool, s, 10), b"__________ABCDef");

        // A new segment covering later ones whole removes them; a partly covered one stays.
        let (mut pool, s) = pool_with_slot(0);
        pool.insert(s, 12, b"cd", 0);
        pool.insert(s, 15, b"fg", 0);
        pool.insert(s, 18, b"ijk", 0);
        let r = pool.insert(s, 11, b"BCDEFGHI", 0).unwrap();
        assert_eq!(r.overlaps, 2);
        assert_eq!(deliver(&mut pool, s, 11), b"___________BCDEFGHIjk");
    }

    #[test]
    fn bounds_refuse_rather_than_grow() {
        let (mut pool, s) = pool_with_slot(u32::MAX - 10);
        // Across the sequence-number wrap.
        assert!(pool.insert(s, 5, b"x", 0).unwrap().held);
        // Past the window.
        let far = (u32::MAX - 10).wrapping_add(u32::try_from(HOLD_BYTES).unwrap());
        assert!(pool.insert(s, far, b"y", 0).is_none());
        // Too many segments.
        let (mut pool, s) = pool_with_slot(0);
        for i in 0..HOLD_SEGMENTS {
            let seq = 2 * u32::try_from(i).unwrap() + 1;
            assert!(pool.insert(s, seq, b"z", 0).is_some(), "segment {i}");
        }
        assert!(pool.insert(s, 1000, b"z", 0).is_none());
        // A run of joined segments may fill the whole window: nothing is copied to join.
        let (mut pool, s) = pool_with_slot(7);
        let chunk = vec![b'j'; 1448];
        let mut at = 0u32;
        while (at as usize) + chunk.len() <= HOLD_BYTES {
            assert!(pool.insert(s, 7 + at, &chunk, 0).is_some(), "at {at}");
            at += 1448;
        }
        assert_eq!(pool.held(s).len(), 1);
        assert_eq!(pool.held(s)[0].end, at);
    }

    #[test]
    fn the_ring_wraps_and_the_base_moves_up() {
        // A base near the end of the ring: held bytes wrap around it.
        let base = u32::try_from(HOLD_BYTES).unwrap() * 3 - 5;
        let (mut pool, s) = pool_with_slot(base);
        pool.insert(s, base + 2, b"wrapping", 0).unwrap();
        let (a, b) = pool.bytes(s, 2, 10);
        assert_eq!([a, b].concat(), b"wrapping");
        assert!(!b.is_empty(), "the run wraps");
        // One byte before it delivered: the base moves up to the next expected byte,
        // positions shift, bytes stay.
        pool.rebase(s, base + 1);
        assert_eq!(pool.base(s), base + 1);
        let h = pool.held(s)[0];
        assert_eq!((h.start, h.end), (1, 9));
        let (a, b) = pool.bytes(s, 1, 9);
        assert_eq!([a, b].concat(), b"wrapping");
        // The window is the ring's size past the new base.
        let last = base + 1 + u32::try_from(HOLD_BYTES).unwrap() - 1;
        assert!(pool.insert(s, last, b"z", 0).is_some());
        assert!(pool.insert(s, last + 1, b"z", 0).is_none());
    }

    #[test]
    fn the_least_recently_active_hole_is_reclaimed() {
        let mut pool = ReorderPool::default();
        let a = pool.take(Owner { flow: 1, side: 0 }, 0, 5).unwrap();
        let b = pool.take(Owner { flow: 2, side: 1 }, 0, 6).unwrap();
        pool.insert(a, 10, b"x", 7);
        assert_eq!(pool.oldest(), Some((b, Owner { flow: 2, side: 1 }, 6)));
        for flow in 3..=u32::try_from(HOLD_SLOTS).unwrap() {
            pool.take(Owner { flow, side: 0 }, 0, 8).unwrap();
        }
        assert!(pool.take(Owner { flow: 999, side: 0 }, 0, 9).is_none());
        let (slot, old) = pool.reclaim(Owner { flow: 999, side: 0 }, 0, 9).unwrap();
        assert_eq!((slot, old), (b, Owner { flow: 2, side: 1 }));
        assert!(pool.held(slot).is_empty());
    }
}

//! The worker's side of TCP reassembly: a segment ahead of its direction's next byte is held
//! in the direction's slot of the [`ReorderPool`] (see [`crate::reorder`] for the bounds and
//! the overlap rules); when in-order bytes fill the hole, what is held is parsed in stream
//! order, at each segment's own packet time. A hole is given up, and what is held parsed
//! after a loss (the resynchronisation rule of the module doc), when:
//! - the peer acknowledges bytes past it (it got them: the capture missed them);
//! - a segment does not fit the direction's window or segment bound;
//! - every slot is in use and this is the least recently active hole (`reorder_reclaimed`);
//! - nothing came for it in [`HOLE_TIMEOUT_NS`] of packet time ([`Worker::expire_holes`]);
//! - the flow ends, or the run does ([`Worker::finish`]).
//!
//! All of it is off the in-order path: that path pays one test of the direction's slot after
//! its bytes are parsed, and one of the peer's slot per acknowledgement.

use linewatch_parser::wire::TcpSegment;

use super::Worker;
use crate::counters::Counter;
use crate::flow::{Framing, Side};
use crate::reorder::{
    ACK_GRACE_NS, ACK_JUMP, ACK_QUICK_COUNT, ACK_QUICK_NS, HOLD_BYTES, HOLE_TIMEOUT_NS,
};
use crate::slots::Owner;

impl Worker {
    /// A segment ahead of its direction's next byte: held (true), or, when it cannot be, the
    /// hole given up and false: the caller then takes the segment as in order or as a gap.
    #[cold]
    #[inline(never)]
    pub(super) fn out_of_order(
        &mut self,
        slot: u32,
        side: Side,
        seg: &TcpSegment<'_>,
        ts: u64,
    ) -> bool {
        // The rest of a cut or fragmented segment is unknown: it cannot be held. Nor need be
        // what is not parsed: a tunnel, a body that runs to the close, or (with nothing held
        // yet) bytes wholly inside the body being skipped, which the gap path skips exactly.
        let flow = self.flows.flow_mut(slot);
        let dir = &flow.dirs[side];
        if matches!(dir.framing, Framing::Opaque | Framing::UntilClose) {
            // A tunnel or a body to the close may have begun after segments were held.
            self.give_up_hole(slot, side);
            return false;
        }
        let ahead = u64::from(seg.seq.wrapping_sub(dir.next_seq));
        let holdable = !(seg.truncated || seg.fragmented);
        // Past the window of the next expected byte, with nothing held, on a connection seen
        // both ways: dropped, as the server drops it (a forged far-ahead segment must not move
        // the stream); the peer's acknowledgement resynchronises if bytes were really missed.
        // With segments held, it is the window filling up: the hole is given up below.
        if holdable
            && ahead + seg.payload.len() as u64 > HOLD_BYTES as u64
            && dir.held_slot().is_none()
            && flow.dirs[1 - side].seq_known
        {
            self.delta.add(Counter::OutOfWindow, 1);
            return true;
        }
        if holdable && self.hold(slot, side, seg.seq, seg.payload, ts) {
            return true;
        }
        self.give_up_hole(slot, side);
        // Past the given-up hole, a new one may open (in an empty slot it fits unless it is
        // larger than the window).
        let next = self.flows.flow_mut(slot).dirs[side].next_seq;
        holdable
            && seg.seq.wrapping_sub(next) as i32 > 0
            && self.hold(slot, side, seg.seq, seg.payload, ts)
    }

    /// Holds `data` (at `seq`) in the direction's slot, taking one (or the least recently
    /// active one) if it has none; false when it does not fit.
    fn hold(&mut self, slot: u32, side: Side, seq: u32, data: &[u8], ts: u64) -> bool {
        let dir = self.flows.flow_mut(slot).dirs[side];
        let h = match dir.held_slot() {
            Some(h) => h,
            None => {
                let owner = Owner { flow: slot, side };
                let h = match self.reorder.take(owner, dir.next_seq, ts) {
                    Some(h) => h,
                    None => {
                        self.reclaim_hole();
                        match self.reorder.take(owner, dir.next_seq, ts) {
                            Some(h) => h,
                            None => return false,
                        }
                    }
                };
                self.flows.flow_mut(slot).dirs[side].held = h;
                h
            }
        };
        match self.reorder.insert(h, seq, data, ts) {
            Some(insert) => {
                self.delta.add(Counter::Reordered, u64::from(insert.held));
                self.delta
                    .add(Counter::ReorderOverlaps, u64::from(insert.overlaps));
                true
            }
            None => {
                if self.reorder.held(h).is_empty() {
                    self.reorder.give_back(h);
                    self.flows.flow_mut(slot).dirs[side].drop_held();
                }
                false
            }
        }
    }

    /// The peer acknowledged `ack`, past direction `side`'s next expected byte: the peer got
    /// bytes the capture did not. What is held is given up, and the stream moves on to `ack`
    /// (a loss, `sequence_gaps`). The acknowledgement of a FIN (one number past the data) is
    /// not such evidence.
    #[cold]
    #[inline(never)]
    pub(super) fn acked_unseen(&mut self, slot: u32, side: Side, ack: u32, ts: u64) {
        let dir = &self.flows.flow_mut(slot).dirs[side];
        let past = ack.wrapping_sub(dir.next_seq) as i32;
        if past <= i32::from(dir.fin) {
            return;
        }
        match dir.held_slot() {
            Some(h) => {
                // The data may just be late in the copy (see `ACK_GRACE_NS`).
                let age = ts.saturating_sub(self.reorder.opened(h));
                let acks = self.reorder.note_ack(h);
                if age < ACK_GRACE_NS && !(acks >= ACK_QUICK_COUNT && age >= ACK_QUICK_NS) {
                    return;
                }
            }
            // With a crossing the bytes may still be in a lane from another worker, however
            // far behind: only a held segment's expired wait says they were missed.
            None if past.unsigned_abs() <= ACK_JUMP || self.cross.is_some() => return,
            None => {}
        }
        self.capture_missed(slot, side, ack);
    }

    /// The capture missed direction `side`'s bytes up to `ack` (its peer acknowledged them):
    /// what is held is given up, and the stream moves on to `ack` (a loss, `sequence_gaps`).
    pub(super) fn capture_missed(&mut self, slot: u32, side: Side, ack: u32) {
        self.give_up_hole(slot, side);
        let dir = &mut self.flows.flow_mut(slot).dirs[side];
        let missed = ack.wrapping_sub(dir.next_seq) as i32;
        if missed > i32::from(dir.fin) {
            dir.next_seq = ack;
            self.delta.add(Counter::SequenceGaps, 1);
            self.lose(slot, side, u64::from(missed.unsigned_abs()), true);
        }
    }

    /// Every slot is in use: gives up the least recently active hole, freeing its slot.
    fn reclaim_hole(&mut self) {
        if let Some((h, old, _)) = self.reorder.oldest() {
            self.release(h, old);
            self.delta.add(Counter::ReorderReclaimed, 1);
        }
    }

    /// Gives up the hole of the pool's slot `h`, held for `owner`.
    fn release(&mut self, h: u32, owner: Owner) {
        // The pool names the holder, and the holder names its slot.
        let holder = self.flows.flow_mut(owner.flow).dirs[owner.side].held_slot();
        debug_assert_eq!(holder, Some(h), "reorder slot {h} owner out of date");
        if holder == Some(h) {
            self.give_up_hole(owner.flow, owner.side);
        } else {
            // No flow to parse them into: what the slot held is lost, and counted so.
            self.delta.touched = true;
            self.delta.add(Counter::SequenceGaps, 1);
            self.reorder.give_back(h);
        }
    }

    /// In-order bytes arrived on a direction that holds segments: parses those the hole no
    /// longer separates, and frees the slot when none is left.
    #[cold]
    #[inline(never)]
    pub(super) fn deliver_held(&mut self, slot: u32, side: Side) {
        self.drain_held(slot, side, false);
    }

    /// Gives up the direction's hole, if it holds one: what is held is parsed in order, each
    /// hole before a segment a loss (`sequence_gaps`), and the slot freed.
    #[cold]
    #[inline(never)]
    pub(super) fn give_up_hole(&mut self, slot: u32, side: Side) {
        if self.flows.flow_mut(slot).dirs[side].held_slot().is_some() {
            self.drain_held(slot, side, true);
        }
    }

    /// Parses held segments in order from the direction's next byte: up to the first hole,
    /// or (`through_holes`) all of them, each hole a loss.
    fn drain_held(&mut self, slot: u32, side: Side, through_holes: bool) {
        let Some(h) = self.flows.flow_mut(slot).dirs[side].held_slot() else {
            return;
        };
        // What follows counts, also when no frame came in this epoch (a hole given up as a
        // second begins, or at the end): the delta must be merged, not skipped as untouched.
        self.delta.touched = true;
        // Requests parsed from a hole given up came late: their responses have likely passed
        // already (unpaired). They are counted but not queued for pairing, so the requests
        // after them pair with their own responses.
        let queued = self.flows.flow_mut(slot).pending_len();
        // `stream` and `lose` count through `self` but never touch the pool: move it out
        // while they run (the placeholder allocates nothing).
        let mut pool = std::mem::take(&mut self.reorder);
        let base = pool.base(h);
        while let Some(&first) = pool.held(h).first() {
            let start = base.wrapping_add(first.start);
            let end = base.wrapping_add(first.end);
            let next = self.flows.flow_mut(slot).dirs[side].next_seq;
            let gap = start.wrapping_sub(next) as i32;
            if gap > 0 {
                if !through_holes {
                    break;
                }
                self.delta.add(Counter::SequenceGaps, 1);
                self.flows.flow_mut(slot).dirs[side].next_seq = start;
                self.lose(slot, side, u64::from(gap.unsigned_abs()), true);
            }
            let next = self.flows.flow_mut(slot).dirs[side].next_seq;
            let new = end.wrapping_sub(next) as i32;
            if new > 0 {
                // The bytes not yet delivered, segment by segment as they came (after a loss
                // a message start is looked for where a segment began), each in one or two
                // runs (the ring may wrap).
                let mut from = first.end - new.unsigned_abs();
                while from < first.end {
                    let to = pool.next_start(h, from, first.end);
                    let (run, wrapped) = pool.bytes(h, from, to);
                    self.flows.flow_mut(slot).dirs[side].next_seq = base.wrapping_add(to);
                    self.stream(slot, side, run, first.ts);
                    if !wrapped.is_empty() {
                        self.stream(slot, side, wrapped, first.ts);
                    }
                    from = to;
                }
            }
            pool.pop_front(h);
        }
        let flow = self.flows.flow_mut(slot);
        if through_holes && flow.client == Some(side) {
            flow.keep_pending(queued);
        }
        if pool.held(h).is_empty() {
            pool.give_back(h);
            self.flows.flow_mut(slot).dirs[side].drop_held();
        } else {
            // The window follows the next expected byte.
            pool.rebase(h, self.flows.flow_mut(slot).dirs[side].next_seq);
        }
        self.reorder = pool;
    }

    /// Gives up every hole nothing came for in [`HOLE_TIMEOUT_NS`] before `now_ns` (packet
    /// time). The batch loops call it as each second begins ([`crate::epoch`]).
    pub fn expire_holes(&mut self, now_ns: u64) {
        while let Some((h, owner, active)) = self.reorder.oldest() {
            if now_ns.saturating_sub(active) < HOLE_TIMEOUT_NS {
                break;
            }
            self.release(h, owner);
        }
    }

    /// The run is over: gives up every hole, so what is held is counted.
    pub fn finish(&mut self) {
        while let Some((h, owner, _)) = self.reorder.oldest() {
            self.release(h, owner);
        }
    }

    /// Directions holding segments past a hole.
    pub fn holes(&self) -> usize {
        self.reorder.in_use()
    }
}

//! Cut heads: a message head split across segments waits in a carry slot ([`crate::carry`])
//! for the rest; bytes the capture missed end it (`lose`), and a request head cut by a capture
//! hole is counted at its request line (`incomplete_heads`).

use linewatch_parser::http::{parse_request_line, Status};

use super::parse::Stop;
use super::Worker;
use crate::carry::{Owner, CARRY_CAP};
use crate::counters::Counter;
use crate::flow::{Framing, Side};

/// The empty line that closes a head cut by the capture (`Worker::count_incomplete_head`).
const HEAD_END: &[u8] = b"\r\n";

impl Worker {
    /// `gap` bytes of this direction were never captured. A cut request head held in a carry
    /// slot is counted at its request line when `count_head` (see `count_incomplete_head`).
    /// Only at a capture hole, so out of line: inlined into the frame path it cost
    /// `engine_loop` ~12 instructions a frame once it reached the pool's list and the
    /// incomplete-head count.
    #[cold]
    #[inline(never)]
    pub(super) fn lose(&mut self, slot: u32, side: Side, gap: u64, count_head: bool) {
        let dir = &mut self.flows.flow_mut(slot).dirs[side];
        dir.framing = match dir.framing {
            // Missing body bytes are just skipped: framing survives the loss.
            Framing::Body(n) if gap < n => Framing::Body(n - gap),
            Framing::UntilClose => Framing::UntilClose,
            Framing::Opaque => Framing::Opaque,
            _ => Framing::Unsynced,
        };
        if let Some(s) = dir.carry_slot() {
            let carry_ts = dir.carry_ts;
            dir.drop_carry();
            if count_head {
                self.count_incomplete_head(slot, side, s, carry_ts);
            }
            self.carry.give_back(s);
        }
    }

    /// The capture missed bytes of a request head cut at a segment boundary (carry slot `s`,
    /// its first byte seen at `ts`): if its request line was seen, counts the request with
    /// the header lines seen whole (Host `-` when unseen) and under `incomplete_heads`, since
    /// the server got the whole head. The head is closed in its slot (cut after its last whole
    /// line, an empty line appended) and read by `parse` like any other: a second caller of
    /// `count_request` made the compiler stop inlining it into `parse`, which cost
    /// `engine_loop` ~27 instructions a frame. Rare, so out of line.
    #[cold]
    #[inline(never)]
    pub(super) fn count_incomplete_head(&mut self, slot: u32, side: Side, s: u32, ts: u64) {
        if self.flows.flow_mut(slot).client != Some(side) {
            return;
        }
        let data = self.carry.data(s);
        let start = data.iter().position(|&b| b != b'\r' && b != b'\n');
        let line_seen = start
            .is_some_and(|at| matches!(parse_request_line(&data[at..]), Ok(Status::Complete(_))));
        // The request line's LF is the last one at least; a full slot is cut one line earlier
        // to make room for the empty line.
        let room = CARRY_CAP - HEAD_END.len();
        let Some(last_lf) = data[..data.len().min(room)]
            .iter()
            .rposition(|&b| b == b'\n')
            .filter(|_| line_seen)
        else {
            return;
        };
        self.carry.truncate(s, last_lf + 1);
        if self.carry.append(s, HEAD_END) < HEAD_END.len() {
            return;
        }
        let requests = self.delta.get(Counter::Requests);
        // `parse` counts through `self` but never touches the pool (see `continue_carry`). The
        // framing it returns is moot: after the hole, `lose` resynchronises.
        let carry = std::mem::take(&mut self.carry);
        let _ = self.parse(slot, side, carry.data(s), ts, 0, ts);
        self.carry = carry;
        if self.delta.get(Counter::Requests) > requests {
            self.delta.add(Counter::IncompleteHeads, 1);
        }
    }

    /// Keeps the cut head `rest` in a carry slot until the next segment: a free slot, or else
    /// the least recently active cut head's (see [`crate::carry`]).
    pub(super) fn start_carry(&mut self, slot: u32, side: Side, rest: &[u8], ts: u64) {
        if rest.len() > CARRY_CAP {
            self.overflow(slot, side, rest, ts);
            return;
        }
        let owner = Owner { flow: slot, side };
        let taken = match self.carry.take(owner) {
            Some(s) => Some(s),
            None => self.reclaim_carry(owner),
        };
        let dir = &mut self.flows.flow_mut(slot).dirs[side];
        match taken {
            Some(s) => {
                self.carry.append(s, rest);
                dir.carry = s;
                dir.carry_ts = ts;
                dir.framing = Framing::Carry;
            }
            None => {
                self.delta.add(Counter::CarryOverflow, 1);
                dir.framing = Framing::Unsynced;
            }
        }
    }

    /// A head that starts in this segment and is already longer than a carry slot: counted at
    /// its request line from its first `CARRY_CAP` bytes, as a head the capture cut
    /// (`count_incomplete_head`), and under `carry_overflow`; the direction resynchronises.
    #[cold]
    #[inline(never)]
    fn overflow(&mut self, slot: u32, side: Side, head: &[u8], ts: u64) {
        self.delta.add(Counter::CarryOverflow, 1);
        self.flows.flow_mut(slot).dirs[side].framing = Framing::Unsynced;
        let owner = Owner { flow: slot, side };
        let Some(s) = self.carry.take(owner).or_else(|| self.reclaim_carry(owner)) else {
            return;
        };
        self.carry.append(s, &head[..CARRY_CAP]);
        self.count_incomplete_head(slot, side, s, ts);
        self.carry.give_back(s);
    }

    /// Every carry slot is in use: takes the least recently active one for `owner`, dropping
    /// the head it held (`carry_reclaimed`); that direction resynchronises as after a loss.
    /// Rare (only while more heads are cut than there are slots), so out of line.
    #[cold]
    #[inline(never)]
    pub(super) fn reclaim_carry(&mut self, owner: Owner) -> Option<u32> {
        let (s, old) = self.carry.reclaim(owner)?;
        // The pool names the holder, and the holder names its slot: a flow slot since reused
        // by another flow (whose directions start with no carry) would not name it.
        let victim = &mut self.flows.flow_mut(old.flow).dirs[old.side];
        debug_assert_eq!(
            victim.carry_slot(),
            Some(s),
            "carry slot {s} owner out of date"
        );
        if victim.carry_slot() == Some(s) {
            victim.drop_carry();
            victim.framing = Framing::Unsynced;
        }
        self.delta.add(Counter::CarryReclaimed, 1);
        Some(s)
    }

    /// Appends new bytes to a cut head and parses on; returns the bytes not yet used.
    pub(super) fn continue_carry<'d>(
        &mut self,
        slot: u32,
        side: Side,
        data: &'d [u8],
        ts: u64,
    ) -> &'d [u8] {
        let dir = self.flows.flow_mut(slot).dirs[side];
        let Some(cs) = dir.carry_slot() else {
            self.flows.flow_mut(slot).dirs[side].framing = Framing::Unsynced;
            return data;
        };
        let old_len = self.carry.data(cs).len();
        let taken = self.carry.append(cs, data);
        // `parse` counts through `self` but never touches the pool: move the pool out while it
        // runs (a move of three pointers; the placeholder allocates nothing).
        let carry = std::mem::take(&mut self.carry);
        let stop = self.parse(slot, side, carry.data(cs), dir.carry_ts, old_len, ts);
        self.carry = carry;
        match stop {
            Stop::Framing(f) => {
                let d = &mut self.flows.flow_mut(slot).dirs[side];
                d.drop_carry();
                d.framing = f;
                self.carry.give_back(cs);
                &data[taken..]
            }
            Stop::Partial(at) => {
                let d = &mut self.flows.flow_mut(slot).dirs[side];
                if at >= old_len {
                    d.carry_ts = ts;
                }
                if at == 0 && taken < data.len() {
                    // The head fills the whole slot and goes on: counted from what it holds.
                    let carry_ts = d.carry_ts;
                    d.drop_carry();
                    d.framing = Framing::Unsynced;
                    self.count_incomplete_head(slot, side, cs, carry_ts);
                    self.carry.give_back(cs);
                    self.delta.add(Counter::CarryOverflow, 1);
                    return &[];
                }
                self.carry.consume(cs, at);
                self.carry.touch(cs);
                &data[taken..]
            }
        }
    }
}

//! A direction's new in-order bytes through its framing state: body bytes skipped, chunked
//! bodies walked, heads parsed, cut heads carried, and after a loss, nothing parsed until a
//! segment starts like a message.

use linewatch_parser::http::ChunkProgress;

use super::parse::{plausible_request, plausible_response, Stop};
use super::Worker;
use crate::counters::Counter;
use crate::flow::{Framing, Side};

impl Worker {
    /// Feeds new in-order bytes of one direction through its framing state. Always inlined:
    /// the held-segment path (`reorder`) is its second caller, and left to itself the compiler
    /// then made it a call on every frame (+ instructions in `engine_loop`, perf/README.md).
    #[inline(always)]
    pub(super) fn stream(&mut self, slot: u32, side: Side, mut data: &[u8], ts: u64) {
        while !data.is_empty() {
            let flow = self.flows.flow(slot);
            let framing = flow.dirs[side].framing;
            let is_client = flow.client == Some(side);
            match framing {
                Framing::Opaque | Framing::UntilClose => return,
                Framing::Body(n) => {
                    let skip = usize::try_from(n).unwrap_or(usize::MAX).min(data.len());
                    data = &data[skip..];
                    let left = n - skip as u64;
                    self.flows.flow_mut(slot).dirs[side].framing = if left == 0 {
                        Framing::Boundary
                    } else {
                        Framing::Body(left)
                    };
                }
                Framing::Chunked(mut chunked) => {
                    let next = match chunked.advance(data) {
                        Ok(ChunkProgress::Done(used)) => {
                            data = &data[used..];
                            Framing::Boundary
                        }
                        Ok(ChunkProgress::NeedMore) => {
                            data = &[];
                            Framing::Chunked(chunked)
                        }
                        Err(e) => {
                            self.malformed(e);
                            data = &[];
                            Framing::Unsynced
                        }
                    };
                    self.flows.flow_mut(slot).dirs[side].framing = next;
                }
                Framing::Unsynced => {
                    let flow = self.flows.flow_mut(slot);
                    let starts = if is_client {
                        plausible_request(data)
                    } else {
                        plausible_response(data)
                    };
                    if starts {
                        flow.dirs[side].framing = Framing::Boundary;
                    } else {
                        let counter = if flow.http_seen {
                            Counter::OutOfSync
                        } else {
                            Counter::NonHttp
                        };
                        self.delta.add(counter, 1);
                        return;
                    }
                }
                Framing::Boundary => match self.parse_as(slot, side, is_client, data, ts, 0, ts) {
                    // The direction's framing is still `Boundary` (the parse writes only the
                    // other direction's): the common end, a head and its body whole, stores
                    // nothing.
                    Stop::Framing(Framing::Boundary) => return,
                    Stop::Framing(f) => {
                        self.flows.flow_mut(slot).dirs[side].framing = f;
                        return;
                    }
                    Stop::Partial(at) => {
                        self.start_carry(slot, side, &data[at..], ts);
                        return;
                    }
                },
                Framing::Carry => {
                    data = self.continue_carry(slot, side, data, ts);
                }
            }
        }
    }
}

//! The worker's fragment path: IP fragments offered to the reassembler ([`crate::defrag`]),
//! and in a multi-worker replay, which worker counts a fragment and the datagram it completes.

use linewatch_parser::wire::{LinkType, TcpSegment, WireError};

use super::Worker;
use crate::counters::Counter;
use crate::defrag::{FragmentTally, Offer};

/// A worker's place in a replay that offers every IP fragment to every worker.
#[derive(Debug, Clone, Copy)]
pub struct Shard {
    /// This worker's index.
    pub index: usize,
    /// How many workers there are.
    pub workers: usize,
    /// The worker that counts a decoded frame (the replay's sharding function).
    pub owner: fn(&Result<TcpSegment<'_>, WireError>, usize) -> usize,
}

/// What the fragment path does next.
enum FragmentPath {
    /// Nothing more: the fragment is held, dropped, or another worker's to count.
    Done,
    /// Not a fragment the reassembler takes: count the frame as before.
    AsBefore,
    /// A datagram is whole and this worker owns its flow: count its segment.
    Datagram,
}

impl Worker {
    /// Declares that this worker is `index` of `workers` in a replay that offers every IP
    /// fragment to every worker (`crate::offline`): all of them reassemble it; the frame and
    /// the reassembly outcomes are counted by the worker `owner` names for the fragment's own
    /// decode (as for any frame), and a reassembled datagram by the worker `owner` names for
    /// its segment, the owner of its flow. Without it (one worker, live) this worker counts
    /// every fragment and every datagram it reassembles.
    pub fn set_shard(&mut self, shard: Shard) {
        self.shard = Some(shard);
    }

    /// Turns fragment reassembly on (the default, offline and live) or off. Off, a first
    /// fragment is parsed for what it holds and the rest of its datagram counts as lost, as
    /// before reassembly existed; the reassembler's tests compare the two.
    pub fn set_fragment_reassembly(&mut self, on: bool) {
        self.reassemble = on;
    }

    /// The fragment path, for a frame already counted as a packet that did not decode to a
    /// whole segment: a fragment is offered to the reassembler and counted as before or as
    /// the datagram it completes; an error is counted as such. Out of line, so the frame
    /// path carries none of it. The reassembler is out of `self` while its datagram is
    /// counted, so the borrows do not meet; the move copies a few words, once per datagram.
    #[cold]
    #[inline(never)]
    pub(super) fn fragment(
        &mut self,
        ts: u64,
        link: LinkType,
        frame: &[u8],
        decoded: &Result<TcpSegment<'_>, WireError>,
        wire_len: u32,
    ) {
        if !may_be_fragment(decoded) {
            self.decoded(ts, decoded);
            return;
        }
        let counts = self
            .shard
            .is_none_or(|s| (s.owner)(decoded, s.workers) == s.index);
        if !counts {
            // Another worker counts this frame: take back what the caller added.
            self.delta.tally.counts[Counter::Packets as usize] -= 1;
            self.delta.tally.counts[Counter::Bytes as usize] -= u64::from(wire_len);
        }
        let path = if self.reassemble {
            let mut tally = FragmentTally::default();
            let offer = self.defrag.offer(ts, link, frame, &mut tally);
            if counts {
                tally.drain_into(&mut self.delta);
            }
            match offer {
                Offer::NotFragment if counts => FragmentPath::AsBefore,
                Offer::NotFragment | Offer::Held => FragmentPath::Done,
                Offer::Complete => {
                    let mine = self
                        .shard
                        .is_none_or(|s| (s.owner)(&self.defrag.segment(), s.workers) == s.index);
                    if mine {
                        FragmentPath::Datagram
                    } else {
                        FragmentPath::Done
                    }
                }
            }
        } else if counts {
            FragmentPath::AsBefore
        } else {
            FragmentPath::Done
        };
        match path {
            FragmentPath::Done => {}
            FragmentPath::AsBefore => self.decoded(ts, decoded),
            FragmentPath::Datagram => {
                let defrag = std::mem::take(&mut self.defrag);
                self.decoded(ts, &defrag.segment());
                self.defrag = defrag;
            }
        }
    }
}

/// Whether a decoded frame may be an IP fragment: a first one decodes (marked fragmented), a
/// later one does not, and a first one too short for the TCP header (RFC 1858's tiny fragment)
/// decodes as truncated, which the reassembler tells from a frame the capture cut. The parallel
/// replay offers such frames to every worker ([`Worker::set_shard`]).
pub fn may_be_fragment(decoded: &Result<TcpSegment<'_>, WireError>) -> bool {
    match decoded {
        Ok(seg) => seg.fragmented,
        Err(e) => matches!(e, WireError::Fragment | WireError::Truncated),
    }
}

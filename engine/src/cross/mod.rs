//! Crossing: live workers hand each TCP segment to the worker that owns its flow, where the
//! capture does not keep a connection's two directions on one queue.
//!
//! Why: a worker pairs a response with its request, and frames a response's body by its
//! request's method (HEAD, CONNECT), so it must see both directions of a connection. Symmetric
//! RSS and linewatch's mirror steering put them on one queue; a veth SPAN, a NIC that refuses
//! symmetric hashing, or an operator who keeps the NIC's settings do not. Then each direction
//! still stays on one queue (fragments aside), and the two directions of a flow usually meet
//! on different ones.
//!
//! Design: the owner of a flow is [`crate::owner::segment_owner`] (a symmetric hash of its
//! ends) modulo the workers. A worker decodes and counts every frame of its own queue (packets,
//! bytes, new connections, capture latency, IP fragment reassembly); a TCP segment of a flow it
//! does not own goes, as a [`parcel`], over a [`lane`] to the owner: one single-producer
//! single-consumer ring for each ordered pair of workers, bounded, lock-free, no allocation
//! after set-up. The owner takes its lanes after each batch and while its queue is quiet, and
//! parses the segments as if they were its own.
//!
//! Order: a lane keeps a direction's segments in their order, but the two directions of a flow
//! now reach the owner by different paths, and a response can be taken before the request it
//! answers. Packet times cannot order them (each worker reads its clock once per batch). TCP
//! can: a segment acknowledges what its sender received of the other direction, so a segment
//! whose acknowledgement is past what the owner has seen of the other direction was sent
//! after bytes still on their way. The owner holds such a segment (with data, FIN or RST)
//! in its hold queue until the other direction catches up; so a response is parsed after its
//! request, and a FIN or RST does not end a flow before its last bytes. A held segment waits
//! at most [`PEER_WAIT_NS`]; then, or when the hold queue is full, it is parsed as it is and
//! counted (`peer_wait_expired`), and the capture-loss rules of [`crate::worker`] apply.
//!
//! Bounds: each worker's lanes in total take [`INBOX_BYTES`]; a lane that stays full for
//! [`FULL_WAIT`] (the owner not draining) loses the segment, counted (`crossing_lost`); the
//! owner sees it as a capture gap. Each hold queue takes [`HOLD_BYTES`].
//!
//! Cost: per segment that crosses, a hash, a copy of its header and payload into the lane,
//! and a copy back out at the owner; per segment that stays, a hash; per held segment, a copy
//! into the hold queue and a look at each retry (after every batch).

#[allow(unsafe_code)] // the ring's shared buffer; its SAFETY argument is in its module doc
pub mod lane;
pub mod parcel;

use lane::{Consumer, Producer};
use parcel::ParcelQueue;

/// Bytes of the lanes into one worker, shared out among the workers that feed it: at half a
/// million crossings a second of 150-byte frames, the ~80 ms an owner may lose its core for on
/// a busy host (the UMEM of one queue is 128 MiB by default).
pub const INBOX_BYTES: usize = 16 << 20;

/// The smallest lane: a datagram reassembled from fragments (64 KiB) must fit in half of it.
pub const LANE_MIN_BYTES: usize = 256 << 10;

/// Bytes of a worker's hold queue.
pub const HOLD_BYTES: usize = 1 << 20;

/// Longest a segment is held for its peer direction, in ns of the owner's clock: far longer
/// than a lane's delay on a busy host, far shorter than any timeout of HTTP.
pub const PEER_WAIT_NS: u64 = 200_000_000;

/// Passes over the hold queue per retry, at most: each pass after the first runs only if the
/// one before parsed something.
pub const RETRY_PASSES: usize = 8;

/// How long a worker retries a full lane (taking its own lanes meanwhile) before the segment
/// is lost.
pub const FULL_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// What one worker did at the crossing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrossFigures {
    /// Segments handed to the workers that own their flows.
    pub sent: u64,
    /// Segments taken from other workers.
    pub received: u64,
}

/// One worker's end of the crossing: its lanes out (one per other worker), its lanes in, and
/// its hold queue.
#[derive(Debug)]
pub struct Crossing {
    /// This worker's index.
    pub(crate) index: usize,
    /// How many workers there are.
    pub(crate) workers: usize,
    /// To each worker (`None` at our own index).
    pub(crate) out: Vec<Option<Producer>>,
    /// From each other worker.
    pub(crate) inbox: Vec<Consumer>,
    /// Segments held for their peer direction.
    pub(crate) held: ParcelQueue,
    /// The other hold queue: a retry moves what is still held from one to the other.
    pub(crate) spare: ParcelQueue,
    /// A retry's order: (packet time, place in the hold queue) of each held segment.
    pub(crate) order: Vec<(u64, usize)>,
    /// While a held segment is retried: when it was first held.
    pub(crate) retry_since: Option<u64>,
    /// While a held segment is retried past its wait: parse it as it is.
    pub(crate) forcing: bool,
    /// While segments from a lane or the hold queue are parsed: they are this worker's.
    pub(crate) taking: bool,
    /// The retry pass under way (numbered from 1; see `Direction::requeued_pass`).
    pub(crate) pass: u32,
    /// A segment was parsed since the last retry (held ones may be able to go on).
    pub(crate) changed: bool,
    /// The earliest time a held segment's wait is over (`u64::MAX`: none held).
    pub(crate) next_expiry: u64,
    /// Per worker: its lane stayed full past a wait, and has not taken a segment since.
    pub(crate) congested: Vec<bool>,
    /// Counts for the capture figures.
    pub(crate) figures: CrossFigures,
}

impl Crossing {
    /// The figures so far.
    pub fn figures(&self) -> CrossFigures {
        self.figures
    }

    /// Whether no segment from another worker is waiting in a lane.
    pub fn inbox_is_empty(&self) -> bool {
        self.inbox.iter().all(Consumer::is_empty)
    }

    /// Whether segments are held for their peer direction.
    pub fn holds(&self) -> bool {
        !self.held.is_empty()
    }
}

/// The crossings of `workers` workers, in worker order: every ordered pair joined by a lane.
pub fn crossings(workers: usize) -> Vec<Crossing> {
    let feeders = workers.saturating_sub(1).max(1);
    crossings_with_lanes(
        workers,
        prev_power_of_two(INBOX_BYTES / feeders).max(LANE_MIN_BYTES),
    )
}

/// [`crossings`] with lanes of `lane_bytes` each (rounded as [`lane::lane`] does).
pub fn crossings_with_lanes(workers: usize, lane_bytes: usize) -> Vec<Crossing> {
    let mut out: Vec<Vec<Option<Producer>>> = (0..workers)
        .map(|_| (0..workers).map(|_| None).collect())
        .collect();
    let mut inbox: Vec<Vec<Consumer>> = (0..workers).map(|_| Vec::new()).collect();
    for (from, lanes) in out.iter_mut().enumerate() {
        for (to, (slot, into)) in lanes.iter_mut().zip(inbox.iter_mut()).enumerate() {
            if from != to {
                let (p, c) = lane::lane(lane_bytes);
                *slot = Some(p);
                into.push(c);
            }
        }
    }
    out.into_iter()
        .zip(inbox)
        .enumerate()
        .map(|(index, (out, inbox))| Crossing {
            index,
            workers,
            out,
            inbox,
            held: ParcelQueue::with_room(HOLD_BYTES),
            spare: ParcelQueue::with_room(HOLD_BYTES),
            order: Vec::with_capacity(HOLD_BYTES / parcel::HEAD),
            retry_since: None,
            forcing: false,
            taking: false,
            pass: 0,
            changed: false,
            next_expiry: u64::MAX,
            congested: vec![false; workers],
            figures: CrossFigures::default(),
        })
        .collect()
}

/// The largest power of two not above `n` (1 for 0).
fn prev_power_of_two(n: usize) -> usize {
    if n == 0 {
        1
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ordered_pair_has_a_lane_and_the_inbox_stays_bounded() {
        for workers in [2usize, 3, 4, 16] {
            let all = crossings(workers);
            assert_eq!(all.len(), workers);
            for (i, c) in all.iter().enumerate() {
                assert_eq!((c.index, c.workers), (i, workers));
                assert_eq!(c.inbox.len(), workers - 1);
                for (to, p) in c.out.iter().enumerate() {
                    assert_eq!(p.is_some(), to != i);
                }
            }
            let lane = prev_power_of_two(INBOX_BYTES / (workers - 1)).max(LANE_MIN_BYTES);
            assert!(lane * (workers - 1) <= INBOX_BYTES.max(LANE_MIN_BYTES * (workers - 1)));
        }
        assert_eq!(prev_power_of_two(3 << 20), 2 << 20);
        assert_eq!(prev_power_of_two(4 << 20), 4 << 20);
    }
}

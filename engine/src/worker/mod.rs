//! A worker: turns frames into counts, one core, no locks, no allocation per packet.
//!
//! Contract: [`Worker::process_frame`] takes one captured frame with its packet time and
//! counts what it holds into the worker's current [`CoreDelta`]. Every frame of a connection
//! (both directions) must reach the same worker, in capture order: the sharding in
//! [`crate::offline`] (and RSS plus the XDP program, live) guarantees it. The worker owns its
//! flow table and carry pool outright.
//!
//! Per segment:
//!
//! ```text
//! frame ─decode─► TcpSegment ─(send stamp? capture latency)─► port and address filter
//!       ─► flow lookup (or create on SYN / an HTTP start)
//!       ─sequence check─► retransmission? skip : gap? resynchronise
//!       ─framing─► skip body bytes │ carry a cut head │ parse heads ─► count request / response
//! ```
//!
//! The filter ([`PortFilter`], with `--dst`'s [`DstFilter`] inside it) counts a segment it
//! rejects as `unmonitored` and nothing else; a SYN to or from no watched address is not a new
//! connection either (nor the scan detector's). A reassembled datagram is tested like a frame.
//!
//! Exactness rules:
//! - A message is counted once, when its head is complete, at the time of its first byte.
//! - Bytes already seen on a direction (retransmissions, overlaps) are never parsed twice.
//! - After a gap, an error or a flow joined midway, nothing is parsed until a segment starts
//!   like a message (a known method or an `HTTP/1.x` version; a status line): a segment that
//!   starts inside a message must not invent one.
//! - A response pairs with the oldest unanswered request of its flow (HTTP/1.1 pipelining);
//!   1xx responses other than 101 do not consume it; a HEAD response and a 2xx to CONNECT have
//!   no body; 101 and 2xx-to-CONNECT make the connection opaque.
//!
//! Events: with a [`SinkFactory`] configured (`--json`), every request, response and new
//! connection counted also goes to the worker's own [`EventSink`] as a model value, and the batch
//! loop calls [`Worker::flush_events`] after each batch. The worker never formats or writes
//! output itself; without a sink an event costs one `Option` test.
//!
//! Capture latency: live, packet time is CLOCK_MONOTONIC plus a fixed offset
//! ([`Worker::set_monotonic_offset`]), so a frame that ends in a generator's send stamp (see
//! [`linewatch_parser::wire::write_send_stamp`]) gives "sent → seen by this worker" as packet
//! time minus offset minus stamp, recorded in µs into `capture_latency_us`. Offline the offset
//! is unset and stamps are ignored: a capture file's times are not this host's monotonic clock.
//! Offline a frame costs one test of the offset; live, an unstamped frame one length compare
//! more (its trailer is shorter than a stamp). A stamped frame only notes its latency
//! ([`CAPTURE_PENDING`] at most); the batch loop moves the notes into the histogram after each
//! batch ([`Worker::flush_capture_latency`]): a histogram call anywhere in the per-frame path
//! cost every frame, stamped or not, about 20 instructions of spills and reloads around it
//! (callgrind, perf/README.md); a note costs a stamped frame a store.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linewatch_model::{ConnectionEvent, EventSink, SinkFactory};
use linewatch_parser::wire::{
    self, decode_frame, ethernet_ipv4_tcp, LinkType, TcpFlags, TcpSegment, WireError,
};

use crate::carry::{CarryPool, CARRY_SLOTS};
use crate::counters::{addr_key, CoreDelta, Counter, SynRecord, SYN_LOG_CAPACITY};
use crate::cross::Crossing;
use crate::defrag::Defrag;
use crate::flow::{Endpoint, FlowKey, FlowTable, Framing, Inserted, Side, V4Key};
use crate::reorder::ReorderPool;

mod cross;
mod dst;
mod fragment;
mod heads;
mod parse;
mod ports;
mod reorder;
mod stream;
mod top_by;

pub use dst::DstFilter;
pub use fragment::{may_be_fragment, Shard};
use parse::{plausible_request, plausible_response};
pub use ports::PortFilter;

/// Flows one worker tracks at once. At ~600 bytes each this is ~10 MiB per worker; a full
/// table evicts the least recently seen flow (counted as `flows_evicted`).
pub const FLOW_CAPACITY: usize = 16 * 1024;

/// Nanoseconds per microsecond, the unit of the latency histograms.
const NS_PER_US: u64 = 1_000;

/// Capture latencies a worker notes between two [`Worker::flush_capture_latency`] calls: one
/// live batch (`live::run::BATCH` frames, all of them stamped). Stamped frames past it get no
/// capture latency and are counted as `capture_latency_dropped`.
pub const CAPTURE_PENDING: usize = 256;

/// The key under which requests without a Host or User-Agent are counted.
pub const ABSENT: &[u8] = b"-";

/// What a worker is configured with.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Monitored ports.
    pub ports: PortFilter,
    /// Watched server addresses (`--dst`): a segment with neither end in them is counted as
    /// `unmonitored` and nothing else (no request, no new connection, no scan).
    pub dst: DstFilter,
    /// Where each worker's per-message events go (`--json`): every worker gets a sink of its
    /// own from this factory. `None`: nowhere, at the cost of one `Option` test per message.
    pub events: Option<SinkFactory>,
    /// Flow table capacity.
    pub flow_capacity: usize,
    /// The `--top-by` tables' keys (none: one `Option` test per message).
    pub top_by: Vec<linewatch_model::TopByKey>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            ports: PortFilter::any(),
            dst: DstFilter::any(),
            events: None,
            flow_capacity: FLOW_CAPACITY,
            top_by: Vec::new(),
        }
    }
}

/// One core's engine. See the module doc.
#[derive(Debug)]
pub struct Worker {
    flows: FlowTable,
    carry: CarryPool,
    /// Segments held past a hole ([`crate::reorder`]).
    reorder: ReorderPool,
    ports: PortFilter,
    delta: Box<CoreDelta>,
    /// Where request, response and connection events go; flushed by the caller between
    /// batches ([`Worker::flush_events`]).
    events: Option<Box<dyn EventSink>>,
    /// Packet time minus CLOCK_MONOTONIC, in ns (wrapping), when packet time is this host's
    /// clock (live): send stamps are then read. `None` offline.
    monotonic_offset_ns: Option<u64>,
    /// Capture latencies (ns) noted since the last flush: the first `capture_pending_len`.
    capture_pending: Box<[u64; CAPTURE_PENDING]>,
    capture_pending_len: usize,
    /// IP fragments waiting for the rest of their datagram.
    defrag: Defrag,
    /// This worker's share of a multi-worker replay ([`Worker::set_shard`]).
    shard: Option<Shard>,
    /// Fragments go to the reassembler ([`Worker::set_fragment_reassembly`]).
    reassemble: bool,
    /// Responses counted under `unmatched_responses` since the worker started (live capture
    /// shows them per queue: the symptom of a connection split across workers).
    unmatched: u64,
    /// Live on queues that split connections: where segments of other workers' flows go, and
    /// where this worker's come from ([`crate::cross`]). `None` otherwise.
    cross: Option<Box<Crossing>>,
    /// `--top-by`: what requests and responses are also counted under ([`top_by`]).
    top_by: Option<Box<top_by::TopBy>>,
}

impl Worker {
    /// A worker with everything allocated, counting into `delta`.
    pub fn new(config: &WorkerConfig, delta: Box<CoreDelta>) -> Worker {
        Worker {
            flows: FlowTable::with_capacity(config.flow_capacity),
            carry: CarryPool::new(CARRY_SLOTS),
            // Empty: reserved at the first out-of-order segment.
            reorder: ReorderPool::default(),
            ports: config.ports.clone().watching(&config.dst),
            delta,
            events: config.events.as_ref().map(SinkFactory::make),
            monotonic_offset_ns: None,
            capture_pending: Box::new([0; CAPTURE_PENDING]),
            capture_pending_len: 0,
            // Empty: the reassembler takes its pool at the first fragment, so a worker that
            // never sees one (most) neither allocates nor touches it.
            defrag: Defrag::default(),
            shard: None,
            reassemble: true,
            unmatched: 0,
            cross: None,
            top_by: top_by::TopBy::new(&config.top_by),
        }
    }

    /// Declares that packet times are CLOCK_MONOTONIC ns plus `offset_ns` (wrapping `u64`
    /// arithmetic, so `ts.wrapping_sub(offset_ns)` is exactly CLOCK_MONOTONIC), which turns on
    /// capture latency from send stamps; `None` (the default, and always offline) turns it off.
    pub fn set_monotonic_offset(&mut self, offset_ns: Option<u64>) {
        self.monotonic_offset_ns = offset_ns;
    }

    /// The delta being counted into (capture latencies noted since the last
    /// [`Worker::flush_capture_latency`] are not in it yet).
    pub fn delta(&self) -> &CoreDelta {
        &self.delta
    }

    /// Responses this worker could not pair with a request since it started.
    pub fn unmatched_responses(&self) -> u64 {
        self.unmatched
    }

    /// Mutable access to the delta (batch-level counters).
    pub fn delta_mut(&mut self) -> &mut CoreDelta {
        &mut self.delta
    }

    /// Puts `fresh` in place and returns the delta counted so far (capture latencies noted
    /// since the last flush included).
    pub fn swap_delta(&mut self, fresh: Box<CoreDelta>) -> Box<CoreDelta> {
        self.flush_capture_latency();
        std::mem::replace(&mut self.delta, fresh)
    }

    /// Records the capture latencies noted since the last call into the delta's histogram.
    /// The live batch loop calls it after every batch; [`Worker::swap_delta`] before a swap.
    pub fn flush_capture_latency(&mut self) {
        let histogram = &mut self.delta.tally.capture_latency_us;
        for &ns in &self.capture_pending[..self.capture_pending_len] {
            histogram.saturating_record(ns / NS_PER_US);
        }
        self.capture_pending_len = 0;
    }

    /// Tells the event sink a batch is done, so it hands on the events it holds. The batch
    /// loops call it after each batch of frames.
    pub fn flush_events(&mut self) {
        if let Some(sink) = self.events.as_mut() {
            sink.flush();
        }
    }

    /// Counts one frame captured at `ts` (ns since the Unix epoch); `wire_len` is its length on
    /// the wire (the capture may have cut it).
    ///
    /// The common frame (untagged Ethernet, IPv4, TCP) is decoded at fixed offsets and its
    /// segment handed on as a value; any other frame takes the general walk out of line. The
    /// segment is put in memory only on the paths that call out of line (a new flow, a SYN, a
    /// hole): a `Result` of the two decodes, passed on by reference, was built in memory for
    /// every frame (callgrind: ~9 instructions a frame more, perf/README.md).
    #[inline]
    pub fn process_frame(&mut self, ts: u64, link: LinkType, frame: &[u8], wire_len: u32) {
        if link == LinkType::Ethernet {
            if let Some(seg) = ethernet_ipv4_tcp(frame) {
                self.count_frame(wire_len);
                self.segment_decoded::<true, true>(ts, seg, frame);
                return;
            }
        }
        self.process_walked(ts, link, frame, wire_len);
    }

    /// [`Worker::process_frame`] for a frame of any other shape: the general walk.
    #[inline(never)]
    fn process_walked(&mut self, ts: u64, link: LinkType, frame: &[u8], wire_len: u32) {
        self.count_frame(wire_len);
        match decode_frame(link, frame) {
            Ok(seg) if !seg.fragmented => self.segment_decoded::<false, false>(ts, seg, &[]),
            decoded => self.fragment(ts, link, frame, &decoded, wire_len),
        }
    }

    /// [`Worker::process_frame`] for a frame its caller has already decoded (the parallel
    /// replay decodes every frame to find its worker); `decoded` is `decode_frame(link, frame)`.
    /// An IP fragment goes to the reassembler ([`crate::defrag`]); a datagram it completes is
    /// counted here as a whole frame's segment would be, at this (its last fragment's) time.
    #[inline(always)]
    pub fn process_decoded(
        &mut self,
        ts: u64,
        link: LinkType,
        frame: &[u8],
        decoded: Result<TcpSegment<'_>, WireError>,
        wire_len: u32,
    ) {
        self.count_frame(wire_len);
        match decoded {
            Ok(seg) if !seg.fragmented => self.segment_decoded::<true, false>(ts, seg, &[]),
            _ => self.fragment(ts, link, frame, &decoded, wire_len),
        }
    }

    /// Counts a frame in `packets` and `bytes`.
    #[inline(always)]
    fn count_frame(&mut self, wire_len: u32) {
        self.delta.touched = true;
        self.delta.add(Counter::Packets, 1);
        self.delta.add(Counter::Bytes, u64::from(wire_len));
    }

    /// The fragment path's count of a decoded frame (or reassembled datagram) that is not a
    /// fragment to hold: its segment on the out-of-line segment path, or its error.
    #[inline(always)]
    fn decoded(&mut self, ts: u64, decoded: &Result<TcpSegment<'_>, WireError>) {
        match decoded {
            Ok(seg) => self.segment_decoded::<false, false>(ts, *seg, &[]),
            Err(e) => {
                self.delta.add(Counter::Undecoded, 1);
                self.delta.tally.wire_errors[e.index()] += 1;
            }
        }
    }

    /// A decoded segment: its send stamp, a new connection, the filter, then the segment path
    /// (inlined with `INLINE`). By value: see [`Worker::process_frame`].
    #[inline(always)]
    fn segment_decoded<const INLINE: bool, const COMMON: bool>(
        &mut self,
        ts: u64,
        seg: TcpSegment<'_>,
        frame: &[u8],
    ) {
        // Stamps are read only when packet time is this host's clock (live): offline the
        // trailer is not looked at, and its length need not be kept.
        if self.monotonic_offset_ns.is_some() {
            if let Some(sent_ns) = seg.send_stamp() {
                self.capture_latency(ts, sent_ns);
            }
        }
        if COMMON {
            // A SYN (once or twice a connection) and a crossing (live, on queues that split
            // connections) take the whole path out of line (see `common_path`).
            if seg.flags.has(TcpFlags::SYN) || self.cross.is_some() {
                self.filtered_frame(ts, frame);
            } else {
                self.common_path(ts, seg, frame);
            }
            return;
        }
        self.filtered::<INLINE>(ts, seg);
    }

    /// A common frame's segment on the whole path out of line (see
    /// [`Worker::segment_decoded`]): decoded again from `frame`.
    #[inline(never)]
    fn filtered_frame(&mut self, ts: u64, frame: &[u8]) {
        // `frame` decoded to this segment before: the `else` is never taken.
        if let Some(seg) = ethernet_ipv4_tcp(frame) {
            self.filtered::<false>(ts, seg);
        }
    }

    /// [`Worker::segment_decoded`] past the send stamp: a new connection, the filter, then the
    /// segment path (inlined with `INLINE`).
    #[inline(always)]
    fn filtered<const INLINE: bool>(&mut self, ts: u64, seg: TcpSegment<'_>) {
        if seg.flags.0 & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN {
            self.new_connection(ts, &{ seg });
        }
        // Another server's traffic (`--dst`) is unmonitored as another port's is.
        if !self.ports.monitors(&seg) {
            self.delta.add(Counter::Unmonitored, 1);
        } else if INLINE {
            self.segment_path(ts, seg);
        } else {
            self.segment(ts, &{ seg });
        }
    }

    /// A common frame's segment, neither a SYN nor crossing (see
    /// [`Worker::segment_decoded`]): its flow looked up first, and at its first rare turn (no
    /// flow, an acknowledgement of unseen bytes) the rest of the path out of line, decoded
    /// again from `frame`; its rare calls past that point (a segment past a hole) take `frame`
    /// too. No call is then made before its data, and its addresses and ports die at the flow
    /// key: a value kept across a call anywhere in this one large inlined function was
    /// spilled on every frame (callgrind, perf/README.md).
    ///
    /// The filter is tested only when no flow is found: a flow is made only by a segment the
    /// filter passed, and its answer depends only on what the key holds (both ends, either
    /// order), so every segment of a flow in the table passes it too.
    #[inline(always)]
    fn common_path(&mut self, ts: u64, seg: TcpSegment<'_>, frame: &[u8]) {
        let (key, side) = match (seg.src, seg.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => V4Key::of(
                seg.vlan_ids[0],
                s.to_bits(),
                seg.src_port,
                d.to_bits(),
                seg.dst_port,
            ),
            // `ethernet_ipv4_tcp` makes IPv4 ends only.
            _ => {
                self.filtered_frame(ts, frame);
                return;
            }
        };
        // Whether it acknowledges bytes of the other direction not seen, read on the flow
        // the probe found (no second test of its slot). The acknowledgement number is read
        // from the frame here, not kept from the decode (where it was spilled and reloaded).
        let ack = seg.flags.has(TcpFlags::ACK);
        let Some(ack_no) = frame.get(wire::common_frame::ACK..wire::common_frame::ACK + 4) else {
            return; // `frame` decoded to `seg`: never taken
        };
        let ack_no = u32::from_be_bytes([ack_no[0], ack_no[1], ack_no[2], ack_no[3]]);
        let found = self.flows.find_v4_then(&key, |flow| {
            let other = &flow.dirs[1 - side];
            ack && ack_no.wrapping_sub(other.next_seq) as i32 > 0 && other.seq_known
        });
        let Some((slot, acked_unseen)) = found else {
            self.missed_frame(ts, side, frame);
            return;
        };
        // The flow is marked used on each branch (the first thing either does), so the
        // answer read on it is tested once and not kept across the mark.
        if acked_unseen {
            self.after_lookup_frame(ts, slot, side, frame);
            return;
        }
        self.flows.mark_used(slot);
        // Neither a SYN nor one acknowledging unseen bytes.
        self.after_lookup::<true, false>(ts, slot, side, seg, frame);
    }

    /// A common frame's segment of no flow in the table (see [`Worker::common_path`]): the
    /// filter, a new flow, then the rest of the path.
    #[inline(never)]
    fn missed_frame(&mut self, ts: u64, side: Side, frame: &[u8]) {
        let Some(seg) = ethernet_ipv4_tcp(frame) else {
            return;
        };
        if !self.ports.monitors(&seg) {
            self.delta.add(Counter::Unmonitored, 1);
            return;
        }
        if let Some(slot) = self.new_flow(&seg, side) {
            self.crossed(ts, slot, side, seg);
        }
    }

    /// A common frame's segment that acknowledges bytes not seen (see
    /// [`Worker::common_path`]).
    #[cold]
    #[inline(never)]
    fn after_lookup_frame(&mut self, ts: u64, slot: u32, side: Side, frame: &[u8]) {
        self.flows.mark_used(slot);
        if let Some(seg) = ethernet_ipv4_tcp(frame) {
            self.after_lookup::<false, true>(ts, slot, side, seg, &[]);
        }
    }

    /// Notes how long a stamped frame took from the generator's send (`sent_ns`, its
    /// CLOCK_MONOTONIC) to this worker (`ts`), when packet time is this host's clock. No call
    /// in here: see the module doc.
    #[inline(always)]
    pub(super) fn capture_latency(&mut self, ts: u64, sent_ns: u64) {
        let Some(offset) = self.monotonic_offset_ns else {
            return;
        };
        let Some(ns) = ts.wrapping_sub(offset).checked_sub(sent_ns) else {
            self.delta.add(Counter::StampInFuture, 1);
            return;
        };
        match self.capture_pending.get_mut(self.capture_pending_len) {
            Some(slot) => {
                *slot = ns;
                self.capture_pending_len += 1;
            }
            None => self.delta.add(Counter::CaptureLatencyDropped, 1),
        }
    }

    /// Counts a new connection (SYN without ACK, on any port): totals, the source and port
    /// tables, the log for the port-scan detector, and an event.
    #[inline(never)]
    pub(super) fn new_connection(&mut self, ts: u64, seg: &TcpSegment<'_>) {
        // Another server's connection (`--dst`) is not this monitor's: its segments are counted
        // as unmonitored only. Tested here, off the path of every frame that is not a SYN.
        if !self.ports.watches(seg) {
            return;
        }
        let d = &mut *self.delta;
        d.add(Counter::NewConnections, 1);
        let (key, len) = addr_key(seg.src);
        d.tally.conn_sources.record(&key[..len], 1, 0);
        d.tally.conn_ports.record(&seg.dst_port.to_be_bytes(), 1, 0);
        if d.syns.len() < SYN_LOG_CAPACITY {
            d.syns.push(SynRecord {
                ts,
                src: seg.src,
                port: seg.dst_port,
            });
        } else {
            d.add(Counter::ConnectionsUnlogged, 1);
        }
        if let Some(sink) = self.events.as_mut() {
            sink.connection(&ConnectionEvent {
                ts: time_of(ts),
                src: (seg.src, seg.src_port),
                dst: (seg.dst, seg.dst_port),
            });
        }
    }

    /// The segment path out of line, for a reassembled datagram's segment or (through
    /// [`crate::cross`]) one another worker handed on or the hold queue gives back.
    #[inline(never)]
    pub(super) fn segment(&mut self, ts: u64, seg: &TcpSegment<'_>) {
        self.segment_path(ts, *seg);
    }

    /// The segment path: inlined in the frame path of a segment its caller decoded
    /// ([`Worker::process_decoded`]; a call there cost every frame its register saves and the
    /// segment's reloads), out of line for the rest ([`Worker::segment`]); the common frame
    /// takes [`Worker::common_path`]. The segment is a value: the calls out of line take a
    /// copy made where they are (`&{ seg }`), so the frame path never stores it whole.
    #[inline(always)]
    fn segment_path(&mut self, ts: u64, seg: TcpSegment<'_>) {
        // Another worker's flow goes to it (live, on queues that split connections).
        if self.cross.is_some() && self.hand_off(ts, &{ seg }) {
            return;
        }
        // IPv4 flows are looked up by their two-word key (see `V4Key`).
        let (found, side) = match (seg.src, seg.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let vlan = seg.vlan_ids[0];
                let (key, side) =
                    V4Key::of(vlan, s.to_bits(), seg.src_port, d.to_bits(), seg.dst_port);
                (self.flows.get_v4(&key), side)
            }
            _ => {
                let (key, side) = flow_key(&seg);
                (self.flows.get(&key), side)
            }
        };
        // A match, not `or_else`: a hit then tests no merged `Option` again (~3 instructions a
        // frame, callgrind).
        let slot = match found {
            Some(slot) => slot,
            None => match self.new_flow(&{ seg }, side) {
                Some(slot) => slot,
                None => return,
            },
        };
        self.crossed(ts, slot, side, seg);
    }

    /// The segment path past the flow lookup: the crossing's hold, then the rest.
    #[inline(always)]
    fn crossed(&mut self, ts: u64, slot: u32, side: Side, seg: TcpSegment<'_>) {
        // Sent after bytes of the other direction still on their way from another worker:
        // held until they are in (see `cross`).
        if self.cross.is_some() && self.crossing_hold(slot, side, ts, &{ seg }) {
            return;
        }
        self.after_lookup::<false, true>(ts, slot, side, seg, &[]);
    }

    /// The segment path past the flow lookup and the crossing: the acknowledgement and SYN
    /// tests when `ACK_SYN` (without, the caller found that neither applies), then the
    /// segment's data and its FIN or RST. With `COMMON`, `seg` is `frame`'s (see
    /// [`Worker::common_path`]).
    #[inline(always)]
    fn after_lookup<const COMMON: bool, const ACK_SYN: bool>(
        &mut self,
        ts: u64,
        slot: u32,
        side: Side,
        seg: TcpSegment<'_>,
        frame: &[u8],
    ) {
        let syn = ACK_SYN && seg.flags.has(TcpFlags::SYN);
        let ack = ACK_SYN && seg.flags.has(TcpFlags::ACK);
        let rst = seg.flags.has(TcpFlags::RST);
        let fin = seg.flags.has(TcpFlags::FIN);
        // Without `ACK_SYN` the flow is indexed only for data: a pure ACK's slot is tested
        // once, in the lookup.
        if ACK_SYN {
            let mut flow = self.flows.flow_mut(slot);
            // The peer acknowledged bytes of the other direction the capture has not seen: it got
            // them, so the capture missed them (see `reorder`).
            if ack {
                let other = &flow.dirs[1 - side];
                if seg.ack.wrapping_sub(other.next_seq) as i32 > 0 && other.seq_known {
                    self.acked_unseen(slot, 1 - side, seg.ack, ts);
                    flow = self.flows.flow_mut(slot);
                }
            }
            if syn {
                let dir = &flow.dirs[side];
                // A SYN not ahead of what the direction expects is a retransmitted or late one:
                // it changes nothing. One ahead starts a new connection on the same ports.
                if !dir.seq_known || seg.seq.wrapping_add(1).wrapping_sub(dir.next_seq) as i32 > 0 {
                    if dir.held_slot().is_some() {
                        self.give_up_hole(slot, side);
                        flow = self.flows.flow_mut(slot);
                    }
                    let dir = &mut flow.dirs[side];
                    dir.next_seq = seg.seq.wrapping_add(1);
                    dir.seq_known = true;
                    dir.syn = true;
                    if dir.framing == Framing::Unsynced {
                        dir.framing = Framing::Boundary;
                    }
                }
                if flow.client.is_none() {
                    flow.client = Some(if ack { 1 - side } else { side });
                }
                // A SYN-ACK names the client's next byte. Across workers the client's SYN may come
                // after it: knowing the byte lets what acknowledges the client's request wait for
                // it (see `cross`).
                if ack && self.cross.is_some() {
                    let client = &mut flow.dirs[1 - side];
                    if !client.seq_known {
                        client.next_seq = seg.ack;
                        client.seq_known = true;
                        if client.framing == Framing::Unsynced {
                            client.framing = Framing::Boundary;
                        }
                    }
                }
                if !seg.payload.is_empty() {
                    self.syn_data(slot, side, &{ seg }, ts);
                    self.end_of_segment(slot, side, fin, rst);
                    return;
                }
            }
        }

        if !seg.payload.is_empty() {
            let mut data = seg.payload;
            let dir = &mut self.flows.flow_mut(slot).dirs[side];
            let mut gap = 0u64;
            // What `data` leaves out of the payload was seen: the next byte follows the
            // payload (a frame's payload is far below 4 GiB).
            let next_seq = seg
                .seq
                .wrapping_add(u32::try_from(seg.payload.len()).unwrap_or(u32::MAX));
            let partial = seg.truncated | seg.fragmented;
            // Segments held past a hole this one fills: read here, on the flow at hand (the
            // stream and a loss never change them).
            let held;
            if !dir.seq_known || seg.seq == dir.next_seq {
                // In order, or the first bytes seen: the common case, on the flow at hand.
                dir.next_seq = next_seq;
                // Unknown again after a partial segment: set below, past the stream (which
                // never reads it), so `partial` is tested once.
                dir.seq_known = true;
                held = dir.held_slot().is_some();
            } else {
                let mut ahead = seg.seq.wrapping_sub(dir.next_seq) as i32;
                if ahead > 0 {
                    // Ahead of a hole: held until it fills (out of line, see `reorder`). Its FIN
                    // waits too: Linux acts on it once the bytes before it are in.
                    let held = if COMMON {
                        self.out_of_order_frame(slot, side, frame, ts)
                    } else {
                        self.out_of_order(slot, side, &{ seg }, ts)
                    };
                    if held {
                        self.end_of_segment(slot, side, false, rst);
                        return;
                    }
                    // Not held: the hole was given up, and the segment follows what was
                    // delivered, or opens a gap.
                    ahead = seg
                        .seq
                        .wrapping_sub(self.flows.flow_mut(slot).dirs[side].next_seq)
                        as i32;
                }
                if ahead < 0 {
                    let seen = ahead.unsigned_abs() as usize;
                    if seen >= data.len() {
                        self.delta.add(Counter::Retransmitted, 1);
                        self.end_of_segment(slot, side, fin, rst);
                        return;
                    }
                    // Overlap: parse only the new tail.
                    data = &data[seen..];
                } else if ahead > 0 {
                    gap = u64::from(ahead.unsigned_abs());
                }
                let dir = &mut self.flows.flow_mut(slot).dirs[side];
                dir.next_seq = next_seq;
                dir.seq_known = true;
                held = dir.held_slot().is_some();
            }
            if gap > 0 {
                self.delta.add(Counter::SequenceGaps, 1);
                self.lose(slot, side, gap, true);
            }
            self.stream(slot, side, data, ts);
            if held {
                self.deliver_held(slot, side);
            }
            if partial {
                // The rest of this segment was not captured: how much is unknown. A head the
                // snap length cut is counted at its request line; one whose rest is in IP
                // fragments that are not reassembled (`set_fragment_reassembly(false)`) is left
                // uncounted. Segments held past it are parsed after the loss.
                self.flows.flow_mut(slot).dirs[side].seq_known = false;
                self.lose(slot, side, u64::MAX, !seg.fragmented);
                self.give_up_hole(slot, side);
            }
        }
        self.end_of_segment(slot, side, fin, rst);
    }

    /// [`Worker::out_of_order`] for a common frame's segment (see [`Worker::filtered_frame`]).
    #[cold]
    #[inline(never)]
    fn out_of_order_frame(&mut self, slot: u32, side: Side, frame: &[u8], ts: u64) -> bool {
        let Some(seg) = ethernet_ipv4_tcp(frame) else {
            return false;
        };
        self.out_of_order(slot, side, &seg, ts)
    }

    /// A segment of no flow in the table: a flow is created by a SYN (its first byte is then
    /// known to start a message), or by a segment that starts like an HTTP message; its slot,
    /// or `None` when the segment creates none (`side` is the segment's). Once per
    /// connection, so out of line.
    #[inline(never)]
    fn new_flow(&mut self, seg: &TcpSegment<'_>, side: Side) -> Option<u32> {
        let (key, _) = flow_key(seg);
        let syn = seg.flags.has(TcpFlags::SYN);
        let ack = seg.flags.has(TcpFlags::ACK);
        let client = if syn {
            Some(if ack { 1 - side } else { side })
        } else if seg.payload.is_empty() || seg.flags.has(TcpFlags::RST) {
            return None;
        } else if plausible_request(seg.payload) {
            Some(side)
        } else if plausible_response(seg.payload) {
            Some(1 - side)
        } else {
            self.delta.add(Counter::NonHttp, 1);
            return None;
        };
        // The flow this one will replace gives its holes up first: what it holds past them is
        // parsed and each hole counted as a gap, as at the end of a capture (nothing held is
        // dropped with the flow).
        if let Some(victim) = self.flows.next_victim() {
            for side in 0..2 {
                self.give_up_hole(victim, side);
            }
        }
        let (carry, reorder) = (&mut self.carry, &mut self.reorder);
        let mut holes_dropped = 0;
        let (slot, how) = self.flows.get_or_insert(key, |old| {
            for dir in &old.dirs {
                if let Some(s) = dir.carry_slot() {
                    carry.give_back(s);
                }
                // Given up above, so none are held here; were any, each direction's would
                // count as a gap: nothing is dropped without a count.
                if let Some(s) = dir.held_slot() {
                    reorder.give_back(s);
                    holes_dropped += 1;
                }
            }
        });
        if how == Inserted::Evicted {
            self.delta.add(Counter::FlowsEvicted, 1);
            self.delta.add(Counter::SequenceGaps, holes_dropped);
        }
        let flow = self.flows.flow_mut(slot);
        flow.client = client;
        if !syn {
            let dir = &mut flow.dirs[side];
            dir.next_seq = seg.seq;
            dir.seq_known = true;
            dir.framing = Framing::Boundary;
        }
        Some(slot)
    }

    /// Data on a SYN (TCP Fast Open): it follows the number the SYN takes. A new SYN's data
    /// is the stream's first bytes; a late SYN's was seen already. Rare, so out of line.
    #[cold]
    #[inline(never)]
    fn syn_data(&mut self, slot: u32, side: Side, seg: &TcpSegment<'_>, ts: u64) {
        let dir = &mut self.flows.flow_mut(slot).dirs[side];
        let first = seg.seq.wrapping_add(1);
        if dir.next_seq != first {
            self.delta.add(Counter::Retransmitted, 1);
            return;
        }
        let len = u32::try_from(seg.payload.len()).unwrap_or(u32::MAX);
        dir.next_seq = first.wrapping_add(len);
        self.stream(slot, side, seg.payload, ts);
    }

    /// Handles FIN and RST: a flow closed both ways, or reset, leaves the table. The test is
    /// inlined into each caller; the rest, once per connection, is not.
    #[inline(always)]
    pub(super) fn end_of_segment(&mut self, slot: u32, side: Side, fin: bool, rst: bool) {
        if fin || rst {
            self.close(slot, side, fin, rst);
        }
    }

    /// A FIN or RST: see [`Worker::end_of_segment`].
    #[inline(never)]
    fn close(&mut self, slot: u32, side: Side, fin: bool, rst: bool) {
        let flow = self.flows.flow_mut(slot);
        if fin {
            flow.dirs[side].fin = true;
        }
        if rst || (flow.dirs[0].fin && flow.dirs[1].fin) {
            // What is held past a hole is parsed before the flow goes.
            for d in 0..2 {
                self.give_up_hole(slot, d);
            }
            let flow = self.flows.flow_mut(slot);
            for d in 0..2 {
                if let Some(s) = flow.dirs[d].carry_slot() {
                    flow.dirs[d].drop_carry();
                    self.carry.give_back(s);
                }
            }
            self.flows.remove(slot);
        }
    }
}

/// The flow key of `seg`, and which side sent it.
#[inline(always)]
fn flow_key(seg: &TcpSegment<'_>) -> (FlowKey, Side) {
    let src = Endpoint::new(seg.src, seg.src_port);
    let dst = Endpoint::new(seg.dst, seg.dst_port);
    FlowKey::of(seg.vlan_ids[0], src, dst)
}

/// Packet time as a `SystemTime`.
pub fn time_of(ts_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ts_ns)
}

#[cfg(test)]
mod tests;

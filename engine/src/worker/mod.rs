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
//! frame ─decode─► TcpSegment ─(send stamp? capture latency)─► port filter
//!       ─► flow lookup (or create on SYN / an HTTP start)
//!       ─sequence check─► retransmission? skip : gap? resynchronise
//!       ─framing─► skip body bytes │ carry a cut head │ parse heads ─► count request / response
//! ```
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
//! An unstamped frame costs one length compare (its trailer is shorter than a stamp). A stamped
//! frame only notes its latency ([`CAPTURE_PENDING`] at most); the batch loop moves the notes
//! into the histogram after each batch ([`Worker::flush_capture_latency`]): a histogram call
//! anywhere in the per-frame path cost every frame, stamped or not, about 20 instructions of
//! spills and reloads around it (callgrind, perf/README.md); a note costs a stamped frame a
//! store.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linewatch_model::{ConnectionEvent, EventSink, SinkFactory};
use linewatch_parser::wire::{decode_frame, LinkType, TcpFlags, TcpSegment, WireError};

use crate::carry::{CarryPool, CARRY_SLOTS};
use crate::counters::{addr_key, CoreDelta, Counter, SynRecord, SYN_LOG_CAPACITY};
use crate::cross::Crossing;
use crate::defrag::Defrag;
use crate::flow::{Endpoint, FlowKey, FlowTable, Framing, Inserted, Side};
use crate::reorder::ReorderPool;

mod cross;
mod fragment;
mod heads;
mod parse;
mod ports;
mod reorder;
mod stream;
mod top_by;

use fragment::FragmentPath;
pub use fragment::Shard;
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
            ports: config.ports.clone(),
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
    #[inline]
    pub fn process_frame(&mut self, ts: u64, link: LinkType, frame: &[u8], wire_len: u32) {
        self.process_decoded(ts, link, frame, decode_frame(link, frame), wire_len);
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
        self.delta.touched = true;
        self.delta.add(Counter::Packets, 1);
        self.delta.add(Counter::Bytes, u64::from(wire_len));
        // A first fragment too short for the TCP header (RFC 1858's tiny fragment) decodes
        // as truncated: the reassembler tells it from a frame the capture cut.
        let fragment = match &decoded {
            Ok(seg) => seg.fragmented,
            Err(e) => matches!(e, WireError::Fragment | WireError::Truncated),
        };
        // One call site for the segment path, whole frame or reassembled datagram: a second
        // one changes what the compiler inlines and costs every frame (perf/README.md). The
        // reassembler is out of `self` while its datagram is counted, so the borrows do not
        // meet; the move copies a few words, once per datagram.
        let mut held: Option<Defrag> = None;
        let datagram;
        // A reference, not a move: copying the decoded segment cost every frame ~80
        // instructions (callgrind).
        let decoded = if fragment {
            match self.fragment(ts, link, frame, &decoded, wire_len) {
                FragmentPath::Done => return,
                FragmentPath::AsBefore => &decoded,
                FragmentPath::Datagram => {
                    datagram = held.insert(std::mem::take(&mut self.defrag)).segment();
                    &datagram
                }
            }
        } else {
            &decoded
        };
        match decoded {
            Ok(seg) => {
                if let Some(sent_ns) = seg.send_stamp() {
                    self.capture_latency(ts, sent_ns);
                }
                if seg.flags.0 & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN {
                    self.new_connection(ts, seg);
                }
                if self.ports.matches(seg.src_port, seg.dst_port) {
                    self.segment(ts, seg);
                } else {
                    self.delta.add(Counter::Unmonitored, 1);
                }
            }
            Err(e) => {
                self.delta.add(Counter::Undecoded, 1);
                self.delta.tally.wire_errors[e.index()] += 1;
            }
        }
        if let Some(defrag) = held {
            self.defrag = defrag;
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

    /// The segment path, for a frame's segment or (through [`crate::cross`]) one another
    /// worker handed on or the hold queue gives back.
    pub(super) fn segment(&mut self, ts: u64, seg: &TcpSegment<'_>) {
        // Another worker's flow goes to it (live, on queues that split connections).
        if self.cross.is_some() && self.hand_off(ts, seg) {
            return;
        }
        let src = Endpoint::new(seg.src, seg.src_port);
        let dst = Endpoint::new(seg.dst, seg.dst_port);
        let (key, side) = FlowKey::of(seg.vlan_ids[0], src, dst);
        let syn = seg.flags.has(linewatch_parser::wire::TcpFlags::SYN);
        let ack = seg.flags.has(linewatch_parser::wire::TcpFlags::ACK);
        let rst = seg.flags.has(linewatch_parser::wire::TcpFlags::RST);
        let fin = seg.flags.has(linewatch_parser::wire::TcpFlags::FIN);

        let slot = match self.flows.get(&key) {
            Some(slot) => slot,
            None => {
                // A flow is created by a SYN (its first byte is then known to start a message),
                // or by a segment that starts like an HTTP message.
                let client = if syn {
                    Some(if ack { 1 - side } else { side })
                } else if seg.payload.is_empty() || rst {
                    return;
                } else if plausible_request(seg.payload) {
                    Some(side)
                } else if plausible_response(seg.payload) {
                    Some(1 - side)
                } else {
                    self.delta.add(Counter::NonHttp, 1);
                    return;
                };
                let (carry, reorder) = (&mut self.carry, &mut self.reorder);
                let (slot, how) = self.flows.get_or_insert(key, |old| {
                    for dir in &old.dirs {
                        if let Some(s) = dir.carry_slot() {
                            carry.give_back(s);
                        }
                        // An evicted flow's held segments go with it.
                        if let Some(s) = dir.held_slot() {
                            reorder.give_back(s);
                        }
                    }
                });
                if how == Inserted::Evicted {
                    self.delta.add(Counter::FlowsEvicted, 1);
                }
                let flow = self.flows.flow_mut(slot);
                flow.client = client;
                if !syn {
                    let dir = &mut flow.dirs[side];
                    dir.next_seq = seg.seq;
                    dir.seq_known = true;
                    dir.framing = Framing::Boundary;
                }
                slot
            }
        };

        // Sent after bytes of the other direction still on their way from another worker:
        // held until they are in (see `cross`).
        if self.ahead_of_peer(slot, side, seg) && self.hold_for_peer(ts, seg) {
            return;
        }
        let flow = self.flows.flow_mut(slot);
        // The peer acknowledged bytes of the other direction the capture has not seen: it got
        // them, so the capture missed them (see `reorder`).
        if ack {
            let other = &flow.dirs[1 - side];
            if seg.ack.wrapping_sub(other.next_seq) as i32 > 0 && other.seq_known {
                self.acked_unseen(slot, 1 - side, seg.ack, ts);
            }
        }
        let mut flow = self.flows.flow_mut(slot);
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
                self.syn_data(slot, side, seg, ts);
                self.end_of_segment(slot, side, fin, rst);
                return;
            }
        }

        if !seg.payload.is_empty() {
            let mut data = seg.payload;
            let dir = &mut flow.dirs[side];
            let mut gap = 0u64;
            if dir.seq_known {
                let mut ahead = seg.seq.wrapping_sub(dir.next_seq) as i32;
                if ahead > 0 {
                    // Ahead of a hole: held until it fills (out of line, see `reorder`). Its FIN
                    // waits too: Linux acts on it once the bytes before it are in.
                    if self.out_of_order(slot, side, seg, ts) {
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
            }
            let dir = &mut self.flows.flow_mut(slot).dirs[side];
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let seq_of_data = seg
                .seq
                .wrapping_add(u32::try_from(seg.payload.len() - data.len()).unwrap_or(0));
            dir.next_seq = seq_of_data.wrapping_add(len);
            dir.seq_known = !(seg.truncated || seg.fragmented);
            if gap > 0 {
                self.delta.add(Counter::SequenceGaps, 1);
                self.lose(slot, side, gap, true);
            }
            self.stream(slot, side, data, ts);
            if self.flows.flow_mut(slot).dirs[side].held_slot().is_some() {
                self.deliver_held(slot, side);
            }
            if seg.truncated || seg.fragmented {
                // The rest of this segment was not captured: how much is unknown. A head the
                // snap length cut is counted at its request line; one whose rest is in IP
                // fragments that are not reassembled (`set_fragment_reassembly(false)`) is left
                // uncounted. Segments held past it are parsed after the loss.
                self.lose(slot, side, u64::MAX, !seg.fragmented);
                self.give_up_hole(slot, side);
            }
        }
        self.end_of_segment(slot, side, fin, rst);
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

/// Packet time as a `SystemTime`.
pub fn time_of(ts_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ts_ns)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use linewatch_testkit::frame::{Frame, TcpFlags as Flags, TcpRepr};

    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;
    const HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a";

    /// Feeds connection `i`'s segment to `w`: the client's (to port 80) or, `from_server`,
    /// the server's.
    fn feed(w: &mut Worker, i: u16, from_server: bool, tcp: TcpRepr<'_>) {
        feed_at(w, T0 + u64::from(i), i, from_server, tcp);
    }

    /// [`feed`] at packet time `ts`.
    fn feed_at(w: &mut Worker, ts: u64, i: u16, from_server: bool, tcp: TcpRepr<'_>) {
        let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let (ports, ends) = if from_server {
            ((80, 10_000 + i), (server, client))
        } else {
            ((10_000 + i, 80), (client, server))
        };
        let tcp = TcpRepr {
            src_port: ports.0,
            dst_port: ports.1,
            ..tcp
        };
        let frame = Frame::tcp(ends.0, ends.1, tcp).to_vec();
        let len = u32::try_from(frame.len()).unwrap();
        w.process_frame(ts, LinkType::Ethernet, &frame, len);
    }

    /// Feeds the client segment of connection `i` at stream offset `at` to `w`.
    fn send(w: &mut Worker, i: u16, at: u32, payload: &[u8]) {
        let flags = Flags::PSH | Flags::ACK;
        feed(
            w,
            i,
            false,
            TcpRepr {
                seq: 1 + at,
                flags,
                payload,
                ..TcpRepr::default()
            },
        );
    }

    /// Feeds connection `i`'s SYN: the client's stream offset 0 is then sequence number 1.
    fn syn(w: &mut Worker, i: u16) {
        feed(
            w,
            i,
            false,
            TcpRepr {
                seq: 0,
                flags: Flags::SYN,
                ..TcpRepr::default()
            },
        );
    }

    fn sections(w: &Worker) -> Vec<(Vec<u8>, u64)> {
        let mut all: Vec<_> = w
            .delta()
            .tally
            .sections
            .top(64)
            .into_iter()
            .map(|e| (e.key.to_vec(), e.count))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn out_of_order_segments_are_parsed_once_the_hole_fills() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        // A request's second half first.
        let head = b"GET /halves HTTP/1.1\r\nHost: a\r\n\r\n";
        syn(&mut w, 0);
        syn(&mut w, 1);
        send(&mut w, 0, 10, &head[10..]);
        assert_eq!(w.delta().get(Counter::Requests), 0);
        assert_eq!(w.holes(), 1);
        send(&mut w, 0, 0, &head[..10]);
        // Two pipelined requests, the second's segment first, and a third one in order after.
        let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
        let n = u32::try_from(one.len()).unwrap();
        send(&mut w, 1, n, two);
        send(&mut w, 1, 0, one);
        send(&mut w, 1, 2 * n, b"GET /three HTTP/1.1\r\n\r\n");
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 4);
        assert_eq!(d.get(Counter::Reordered), 2);
        assert_eq!(d.get(Counter::SequenceGaps), 0);
        assert_eq!(w.holes(), 0, "a filled hole frees its slot");
        assert_eq!(
            sections(&w),
            [
                (b"/halves".to_vec(), 1),
                (b"/one".to_vec(), 1),
                (b"/three".to_vec(), 1),
                (b"/two".to_vec(), 1)
            ]
        );
    }

    #[test]
    fn held_overlaps_deliver_what_linux_delivers() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn(&mut w, 1);
        // Held: "/aaa ..." at 4, then "/bbbbb ..." at 4 (same start, longer: replaces it).
        send(&mut w, 0, 4, b"/aaa HTTP/1.1\r\n\r\n");
        send(&mut w, 0, 4, b"/bbbbb HTTP/1.1\r\n\r\n");
        // Already held whole: dropped.
        send(&mut w, 0, 5, b"ccc");
        send(&mut w, 0, 0, b"GET ");
        // In order: a retransmission with other bytes keeps what was delivered.
        let first = b"GET /first HTTP/1.1\r\n";
        send(&mut w, 1, 0, first);
        send(&mut w, 1, 0, b"GET /other HTTP/1.1\r\n\r\n");
        assert_eq!(w.delta().get(Counter::ReorderOverlaps), 2);
        assert_eq!(w.delta().get(Counter::Requests), 2);
        assert_eq!(
            sections(&w),
            [(b"/bbbbb".to_vec(), 1), (b"/first".to_vec(), 1)]
        );
    }

    #[test]
    fn a_hole_the_peer_acknowledged_or_nothing_filled_is_given_up() {
        use crate::reorder::{ACK_GRACE_NS, HOLE_TIMEOUT_NS};
        let ack_at = |w: &mut Worker, ts: u64, acked: u32| {
            let flags = Flags::ACK;
            let tcp = TcpRepr {
                seq: 1,
                ack: 1 + acked,
                flags,
                ..TcpRepr::default()
            };
            feed_at(w, ts, 0, true, tcp);
        };
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn(&mut w, 1);
        // Bytes 0..50 not captured yet, the server's ACK past them captured first: a copy
        // path may deliver the data after the ACK, so the hole waits.
        send(&mut w, 0, 50, b"GET /acked HTTP/1.1\r\n\r\n");
        ack_at(&mut w, T0, 0);
        ack_at(&mut w, T0 + ACK_GRACE_NS / 2, 50);
        assert_eq!(
            w.delta().get(Counter::Requests),
            0,
            "within the grace, the hole waits"
        );
        // Past the grace, the ACK is evidence: the capture missed them.
        ack_at(&mut w, T0 + ACK_GRACE_NS, 50);
        assert_eq!(w.delta().get(Counter::Requests), 1);
        assert_eq!(w.delta().get(Counter::SequenceGaps), 1);
        // Nothing more for ten seconds of packet time.
        send(&mut w, 1, 50, b"GET /quiet HTTP/1.1\r\n\r\n");
        w.expire_holes(T0 + 1 + HOLE_TIMEOUT_NS / 2);
        assert_eq!(w.delta().get(Counter::Requests), 1);
        w.expire_holes(T0 + 1 + HOLE_TIMEOUT_NS);
        assert_eq!(w.delta().get(Counter::Requests), 2);
        assert_eq!(w.holes(), 0);
    }

    #[test]
    fn requests_from_a_given_up_hole_do_not_take_later_responses() {
        use crate::reorder::ACK_GRACE_NS;
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn_ack(&mut w, 0);
        let (r1, r2, r3) = (
            b"GET /r1 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /r2 HTTP/1.1\r\n\r\n",
            b"GET /r3 HTTP/1.1\r\n\r\n",
        );
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let len = |b: &[u8]| u32::try_from(b.len()).unwrap();
        let (n1, n2, n3, nr) = (len(r1), len(r2), len(r3), len(ok));
        // The capture misses the end of r1's head; r2 is held behind the hole.
        send(&mut w, 0, 0, &r1[..20]);
        send(&mut w, 0, n1, r2);
        // The server got everything: it answers both, and acknowledges both.
        let answer = |w: &mut Worker, k: u32, ts: u64, ack: u32| {
            let flags = Flags::PSH | Flags::ACK;
            let tcp = TcpRepr {
                seq: 1 + k * nr,
                ack: 1 + ack,
                flags,
                payload: ok,
                ..TcpRepr::default()
            };
            feed_at(w, ts, 0, true, tcp);
        };
        answer(&mut w, 0, T0 + 10, n1 + n2);
        answer(&mut w, 1, T0 + ACK_GRACE_NS, n1 + n2);
        assert_eq!(
            w.delta().get(Counter::Requests),
            2,
            "r1 at its request line, and r2"
        );
        assert_eq!(w.delta().get(Counter::UnmatchedResponses), 2);
        // r3 and its answer pair with each other, not with the late r1.
        let flags = Flags::PSH | Flags::ACK;
        let tcp = TcpRepr {
            seq: 1 + n1 + n2,
            ack: 1 + 2 * nr,
            flags,
            payload: r3,
            ..TcpRepr::default()
        };
        feed_at(&mut w, T0 + ACK_GRACE_NS + 1_000, 0, false, tcp);
        answer(&mut w, 2, T0 + ACK_GRACE_NS + 5_000, n1 + n2 + n3);
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 3);
        assert_eq!(d.get(Counter::UnmatchedResponses), 2);
        assert_eq!(d.tally.response_latency_us.len(), 1);
        assert_eq!(d.tally.response_latency_us.max(), 4, "r3's own 4 us");
    }

    #[test]
    fn after_a_given_up_hole_joined_segments_resynchronise_where_they_began() {
        use crate::reorder::ACK_GRACE_NS;
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn_ack(&mut w, 0);
        let body = |n: usize| {
            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
            r.resize(r.len() + n, b'b');
            r
        };
        // Responses in segments: r1 whole; r2's head and body start (lost by the capture), r2's
        // body end; r3 and r4 whole. The three after the hole are held and joined.
        let (r1, r2, r3, r4) = (body(10), body(400), body(20), body(30));
        let cut = 100;
        let mut at = 0u32;
        let mut segments = Vec::new();
        for piece in [&r1[..], &r2[..cut], &r2[cut..], &r3[..], &r4[..]] {
            segments.push((at, piece.to_vec()));
            at += u32::try_from(piece.len()).unwrap();
        }
        let flags = Flags::PSH | Flags::ACK;
        for (i, (seq, payload)) in segments.iter().enumerate() {
            if i != 1 {
                let tcp = TcpRepr {
                    seq: 1 + seq,
                    ack: 1,
                    flags,
                    payload,
                    ..TcpRepr::default()
                };
                feed(&mut w, 0, true, tcp);
            }
        }
        assert_eq!(w.delta().get(Counter::Responses), 1);
        // The client acknowledges everything, long enough after.
        let tcp = TcpRepr {
            seq: 1,
            ack: 1 + at,
            flags: Flags::ACK,
            ..TcpRepr::default()
        };
        feed_at(&mut w, T0 + ACK_GRACE_NS, 0, false, tcp);
        let d = w.delta();
        assert_eq!(d.get(Counter::Responses), 3, "r1, r3, r4");
        assert_eq!(d.get(Counter::SequenceGaps), 1);
    }

    #[test]
    fn an_ack_captured_before_its_data_loses_nothing() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn_ack(&mut w, 0);
        let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
        let n = u32::try_from(one.len()).unwrap();
        // A SPAN copy: the second request, the server's ACK of both, then the first.
        send(&mut w, 0, n, two);
        let tcp = TcpRepr {
            seq: 1,
            ack: 1 + 2 * n,
            flags: Flags::ACK,
            ..TcpRepr::default()
        };
        feed(&mut w, 0, true, tcp);
        // And with nothing held: the ACK of a whole request before the request.
        let tcp = TcpRepr {
            seq: 1,
            ack: 1 + 3 * n,
            flags: Flags::ACK,
            ..TcpRepr::default()
        };
        feed(&mut w, 0, true, tcp);
        send(&mut w, 0, 0, one);
        send(&mut w, 0, 2 * n, b"GET /thr HTTP/1.1\r\n\r\n");
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 3);
        assert_eq!(d.get(Counter::SequenceGaps), 0);
        assert_eq!(d.get(Counter::Retransmitted), 0);
    }

    /// Any order of a stream's segments, with retransmitted copies and overlapping resends of
    /// the same bytes, gives every request once (a deterministic pseudo-random walk).
    #[test]
    fn every_order_of_a_streams_segments_counts_every_request_once() {
        let mut stream = Vec::new();
        for i in 0..12 {
            stream.extend(
                format!("GET /r{i} HTTP/1.1\r\nHost: h\r\nX-Pad: {i:0>40}\r\n\r\n").bytes(),
            );
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |bound: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            usize::try_from(seed >> 33).unwrap() % bound
        };
        for round in 0..200u16 {
            let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
            syn(&mut w, round);
            // Cut points, then segments (some resent, some widened over their neighbours).
            let mut cuts = vec![0, stream.len()];
            for _ in 0..20 {
                cuts.push(1 + next(stream.len() - 1));
            }
            cuts.sort_unstable();
            cuts.dedup();
            let mut segments: Vec<(usize, usize)> = cuts.windows(2).map(|c| (c[0], c[1])).collect();
            for _ in 0..6 {
                let (a, b) = segments[next(segments.len())];
                let widened = (a.saturating_sub(next(30)), (b + next(30)).min(stream.len()));
                segments.push(if next(2) == 0 { (a, b) } else { widened });
            }
            for i in (1..segments.len()).rev() {
                segments.swap(i, next(i + 1));
            }
            for (a, b) in segments {
                send(&mut w, round, u32::try_from(a).unwrap(), &stream[a..b]);
            }
            let d = w.delta();
            assert_eq!(d.get(Counter::Requests), 12, "round {round}");
            assert_eq!(d.get(Counter::SequenceGaps), 0, "round {round}");
            assert_eq!(w.holes(), 0, "round {round}");
            assert_eq!(sections(&w).len(), 12, "round {round}");
        }
    }

    /// `count` pipelined GETs, and the stream cut into 1,448-byte segments.
    fn pipelined(count: usize) -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
        let mut stream = Vec::new();
        for i in 0..count {
            stream.extend(format!("GET /p{i} HTTP/1.1\r\nHost: h\r\n\r\n").bytes());
        }
        let segments = stream
            .chunks(1_448)
            .enumerate()
            .map(|(i, c)| (u32::try_from(i * 1_448).unwrap(), c.to_vec()))
            .collect();
        (stream, segments)
    }

    #[test]
    fn the_window_holds_64_kib_past_the_next_expected_byte() {
        // 60 KB behind a lost first segment, resent last.
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        let (_, segments) = pipelined(2_000);
        for (at, bytes) in segments.iter().skip(1) {
            send(&mut w, 0, *at, bytes);
        }
        send(&mut w, 0, segments[0].0, &segments[0].1);
        assert_eq!(w.delta().get(Counter::Requests), 2_000);
        assert_eq!(w.delta().get(Counter::SequenceGaps), 0);
        // 70 KB with three holes: the window follows the next expected byte as they fill.
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        let (_, segments) = pipelined(2_300);
        let late = [0usize, 14, 30];
        for (i, (at, bytes)) in segments.iter().enumerate() {
            if !late.contains(&i) {
                send(&mut w, 0, *at, bytes);
            }
            if i == 29 {
                send(&mut w, 0, segments[0].0, &segments[0].1);
            }
        }
        for i in [14, 30] {
            send(&mut w, 0, segments[i].0, &segments[i].1);
        }
        assert_eq!(w.delta().get(Counter::Requests), 2_300);
        assert_eq!(w.delta().get(Counter::SequenceGaps), 0);
        assert_eq!(w.holes(), 0);
    }

    #[test]
    fn a_request_in_one_byte_segments_last_byte_first_is_counted() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        let request = b"GET /one-byte-at-a-time/backwards HTTP/1.1\r\nHost: evasion.example\r\nX-Pad: 0123456789012345678901234567890123456789\r\n\r\n";
        assert!(request.len() > 90);
        for i in (0..request.len()).rev() {
            send(&mut w, 0, u32::try_from(i).unwrap(), &request[i..=i]);
        }
        assert_eq!(w.delta().get(Counter::Requests), 1);
        assert_eq!(sections(&w), [(b"/one-byte-at-a-time".to_vec(), 1)]);
    }

    /// The server's SYN-ACK for connection `i`: the server's direction is then known.
    fn syn_ack(w: &mut Worker, i: u16) {
        let flags = Flags::SYN | Flags::ACK;
        feed(
            w,
            i,
            true,
            TcpRepr {
                seq: 0,
                ack: 1,
                flags,
                ..TcpRepr::default()
            },
        );
    }

    #[test]
    fn a_forged_far_ahead_segment_does_not_move_the_stream() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn_ack(&mut w, 0);
        send(&mut w, 0, 1_000_000_000, b"x");
        let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
        send(&mut w, 0, 0, one);
        send(&mut w, 0, u32::try_from(one.len()).unwrap(), two);
        let d = w.delta();
        assert_eq!(d.get(Counter::OutOfWindow), 1);
        assert_eq!(d.get(Counter::Requests), 2);
        assert_eq!(d.get(Counter::Retransmitted), 0);
    }

    #[test]
    fn a_fin_ahead_of_a_hole_waits_for_the_bytes_before_it() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        syn_ack(&mut w, 0);
        // The server has closed its side.
        feed(
            &mut w,
            0,
            true,
            TcpRepr {
                seq: 1,
                ack: 1,
                flags: Flags::FIN | Flags::ACK,
                ..TcpRepr::default()
            },
        );
        let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
        let at = u32::try_from(one.len()).unwrap();
        let flags = Flags::PSH | Flags::ACK | Flags::FIN;
        feed(
            &mut w,
            0,
            false,
            TcpRepr {
                seq: 1 + at,
                ack: 2,
                flags,
                payload: two,
                ..TcpRepr::default()
            },
        );
        send(&mut w, 0, 0, one);
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 2);
        assert_eq!(d.get(Counter::SequenceGaps), 0);
    }

    #[test]
    fn data_on_a_syn_and_a_late_duplicate_syn_are_read_as_linux_reads_them() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        // TCP Fast Open: the first request rides on the SYN (sequence number 0, data from 1).
        let first = b"GET /tfo HTTP/1.1\r\n\r\n";
        feed(
            &mut w,
            0,
            false,
            TcpRepr {
                seq: 0,
                flags: Flags::SYN,
                payload: first,
                ..TcpRepr::default()
            },
        );
        let at = u32::try_from(first.len()).unwrap();
        let after = b"GET /after HTTP/1.1\r\n\r\n";
        send(&mut w, 0, at, after);
        // The SYN again, late: it changes nothing.
        syn(&mut w, 0);
        let at = at + u32::try_from(after.len()).unwrap();
        send(&mut w, 0, at, b"GET /late HTTP/1.1\r\n\r\n");
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 3, "{:?}", sections(&w));
        assert_eq!(d.get(Counter::Reordered), 0);
        assert_eq!(d.get(Counter::Retransmitted), 0);
        assert_eq!(
            sections(&w),
            [
                (b"/after".to_vec(), 1),
                (b"/late".to_vec(), 1),
                (b"/tfo".to_vec(), 1)
            ]
        );
    }

    #[test]
    fn a_hole_inside_a_body_is_held_and_the_body_skipped_exactly() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, 0);
        let head = b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\n";
        let n = u32::try_from(head.len()).unwrap();
        send(&mut w, 0, 0, head);
        // Body bytes 50..100 and the next request arrive before body bytes 0..50.
        send(&mut w, 0, n + 50, &[b'b'; 50]);
        send(&mut w, 0, n + 100, b"GET /next HTTP/1.1\r\n\r\n");
        assert_eq!(w.holes(), 1);
        send(&mut w, 0, n, &[b'a'; 50]);
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 2);
        assert_eq!(d.get(Counter::Reordered), 2);
        assert_eq!(d.get(Counter::SequenceGaps), 0);
        assert_eq!(d.get(Counter::Retransmitted), 0);
        assert_eq!(w.holes(), 0);
        assert_eq!(sections(&w), [(b"/next".to_vec(), 1), (b"/up".to_vec(), 1)]);
    }

    #[test]
    fn heads_up_to_32_kib_are_carried_and_longer_ones_counted_at_their_request_line() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        let head = |section: &str, cookie: usize| {
            let mut h =
                format!("GET /{section} HTTP/1.1\r\nHost: {section}.example\r\n").into_bytes();
            h.extend(b"Cookie: ");
            h.extend(std::iter::repeat_n(b'c', cookie));
            h.extend(b"\r\n\r\n");
            h
        };
        // 20 KiB and 40 KiB heads in 1,400-byte segments; then a request after each.
        for (i, (section, cookie)) in [("fits", 20_000), ("long", 40_000)].into_iter().enumerate() {
            let i = u16::try_from(i).unwrap();
            syn(&mut w, i);
            let mut bytes = head(section, cookie);
            bytes.extend(b"GET /after HTTP/1.1\r\n\r\n");
            for (n, chunk) in bytes.chunks(1_400).enumerate() {
                send(&mut w, i, u32::try_from(n * 1_400).unwrap(), chunk);
            }
        }
        // A 40 KiB head in one (offloaded) segment, cut before its end.
        syn(&mut w, 2);
        let whole = head("one", 40_000);
        send(&mut w, 2, 0, &whole[..whole.len() - 100]);
        let d = w.delta();
        assert_eq!(d.get(Counter::CarryOverflow), 2);
        assert_eq!(d.get(Counter::IncompleteHeads), 2);
        assert_eq!(
            sections(&w),
            [
                (b"/after".to_vec(), 1),
                (b"/fits".to_vec(), 1),
                (b"/long".to_vec(), 1),
                (b"/one".to_vec(), 1)
            ]
        );
        let hosts = w.delta().tally.hosts.top(8);
        assert!(hosts.iter().any(|e| e.key == b"long.example"));
    }

    #[test]
    fn stalled_holes_cannot_starve_new_ones() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        let slots = u16::try_from(crate::reorder::HOLD_SLOTS).unwrap();
        // Every slot taken by a hole that never fills.
        for i in 0..=slots {
            syn(&mut w, i);
        }
        for i in 0..slots {
            send(&mut w, i, 100, b"x");
        }
        // A live flow's reordered request still goes through.
        let head = b"GET /live HTTP/1.1\r\n\r\n";
        send(&mut w, slots, 5, &head[5..]);
        send(&mut w, slots, 0, &head[..5]);
        assert_eq!(w.delta().get(Counter::ReorderReclaimed), 1);
        assert_eq!(w.delta().get(Counter::Requests), 1);
        assert_eq!(sections(&w), [(b"/live".to_vec(), 1)]);
    }

    #[test]
    fn a_new_cut_head_reclaims_the_least_recently_active_ones_slot() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        let slots = u16::try_from(CARRY_SLOTS).unwrap();
        let head_len = u32::try_from(HEAD.len()).unwrap();
        // Every slot holds a cut head, connection 0's the oldest.
        for i in 0..slots {
            send(&mut w, i, 0, HEAD);
        }
        // Connection 0's head goes on (still cut): connection 1's is now the oldest.
        send(&mut w, 0, head_len, b"bc");
        // A new cut head takes connection 1's slot.
        send(&mut w, slots, 0, HEAD);
        assert_eq!(w.delta().get(Counter::CarryReclaimed), 1);
        assert_eq!(w.delta().get(Counter::CarryOverflow), 0);
        // Connection 1 resynchronises: the rest of its dropped head is not a request.
        send(&mut w, 1, head_len, b"\r\n\r\n");
        assert_eq!(w.delta().get(Counter::Requests), 0);
        // The others' heads were kept: they complete and are counted.
        send(&mut w, 0, head_len + 2, b"\r\n\r\n");
        send(&mut w, 2, head_len, b"\r\n\r\n");
        send(&mut w, slots, head_len, b"\r\n\r\n");
        assert_eq!(w.delta().get(Counter::Requests), 3);
        assert_eq!(w.delta().get(Counter::CarryReclaimed), 1);
    }

    #[test]
    fn a_head_cut_by_the_capture_is_counted_at_its_request_line() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        // Request line and Host seen, the rest of the head in a capture hole.
        let seen = b"GET /a/b HTTP/1.1\r\nHost: h.example\r\nUser-Agent: t\r\nAcc";
        send(&mut w, 0, 0, seen);
        send(
            &mut w,
            0,
            1_000,
            b"GET /next HTTP/1.1\r\nHost: h.example\r\n\r\n",
        );
        // Request line only.
        send(&mut w, 1, 0, b"GET /c HTTP/1.1\r\nHo");
        send(&mut w, 1, 1_000, b"ept: */*\r\n\r\n");
        // The request line itself cut: nothing to count.
        send(&mut w, 2, 0, b"GET /d HT");
        send(&mut w, 2, 1_000, b"TP/1.1\r\n\r\n");
        // The segments past the holes are held until the holes fill; the run ends first.
        assert_eq!(w.delta().get(Counter::Reordered), 3);
        assert_eq!(w.delta().get(Counter::Requests), 0);
        w.finish();
        let d = w.delta();
        assert_eq!(d.get(Counter::SequenceGaps), 3);
        assert_eq!(d.get(Counter::IncompleteHeads), 2);
        assert_eq!(d.get(Counter::Requests), 3);
        let hosts = d.tally.hosts.top(8);
        let count = |key: &[u8]| hosts.iter().find(|e| e.key == key).map(|e| e.count);
        assert_eq!(count(b"h.example"), Some(2));
        assert_eq!(count(ABSENT), Some(1));
        let sections = d.tally.sections.top(8);
        assert!(!sections.iter().any(|e| e.key == b"/d"));
    }
}

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

use linewatch_model::{ConnectionEvent, EventSink, RequestEvent, ResponseEvent, SinkFactory};
use linewatch_parser::http::{
    parse_request, parse_request_line, parse_response, Body, ChunkProgress, ChunkedBody, Method,
    Request, Response, Status, TargetForm,
};
use linewatch_parser::wire::{decode_frame, LinkType, TcpFlags, TcpSegment, WireError};
use linewatch_parser::HttpError;

use crate::carry::{CarryPool, Owner, CARRY_CAP, CARRY_SLOTS};
use crate::counters::{addr_key, CoreDelta, Counter, SynRecord, SYN_LOG_CAPACITY};
use crate::defrag::{Defrag, FragmentTally, Offer};
use crate::flow::{Endpoint, FlowKey, FlowTable, Framing, Inserted, Pending, Side};
use crate::topn::KEY_CAP;

/// Flows one worker tracks at once. At ~600 bytes each this is ~10 MiB per worker; a full
/// table evicts the least recently seen flow (counted as `flows_evicted`).
pub const FLOW_CAPACITY: usize = 16 * 1024;

/// Nanoseconds per microsecond, the unit of the latency histograms.
const NS_PER_US: u64 = 1_000;

/// Capture latencies a worker notes between two [`Worker::flush_capture_latency`] calls: one
/// live batch (`live::run::BATCH` frames, all of them stamped). Stamped frames past it get no
/// capture latency and are counted as `capture_latency_dropped`.
pub const CAPTURE_PENDING: usize = 256;

/// The empty line that closes a head cut by the capture (`Worker::count_incomplete_head`).
const HEAD_END: &[u8] = b"\r\n";

/// The key under which requests without a Host or User-Agent are counted.
pub const ABSENT: &[u8] = b"-";

/// Which TCP ports carry HTTP: a set, or any port (recognised by the start line).
#[derive(Debug, Clone)]
pub struct PortFilter {
    any: bool,
    bits: Box<[u64; 1024]>,
}

impl PortFilter {
    /// Every TCP port.
    pub fn any() -> PortFilter {
        PortFilter {
            any: true,
            bits: Box::new([0; 1024]),
        }
    }

    /// Only these ports.
    pub fn ports(ports: &[u16]) -> PortFilter {
        let mut bits = Box::new([0u64; 1024]);
        for &p in ports {
            bits[usize::from(p) / 64] |= 1 << (p % 64);
        }
        PortFilter { any: false, bits }
    }

    /// A segment between these ports is monitored.
    #[inline]
    pub fn matches(&self, a: u16, b: u16) -> bool {
        self.any || self.has(a) || self.has(b)
    }

    #[inline]
    fn has(&self, p: u16) -> bool {
        self.bits[usize::from(p) / 64] & (1 << (p % 64)) != 0
    }
}

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
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            ports: PortFilter::any(),
            events: None,
            flow_capacity: FLOW_CAPACITY,
        }
    }
}

/// One core's engine. See the module doc.
#[derive(Debug)]
pub struct Worker {
    flows: FlowTable,
    carry: CarryPool,
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
}

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

/// What the fragment path tells [`Worker::process_decoded`] to do next.
enum FragmentPath {
    /// Nothing more: the fragment is held, dropped, or another worker's to count.
    Done,
    /// Not a fragment the reassembler takes: count the frame as before.
    AsBefore,
    /// A datagram is whole and this worker owns its flow: count its segment.
    Datagram,
}

/// Where a run of parsing stopped.
enum Stop {
    /// Every byte was used; the direction continues with this framing.
    Framing(Framing),
    /// A head starting at this offset is cut.
    Partial(usize),
}

impl Worker {
    /// A worker with everything allocated, counting into `delta`.
    pub fn new(config: &WorkerConfig, delta: Box<CoreDelta>) -> Worker {
        Worker {
            flows: FlowTable::with_capacity(config.flow_capacity),
            carry: CarryPool::new(CARRY_SLOTS),
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

    /// Declares that this worker is `index` of `workers` in a replay that offers every IP
    /// fragment to every worker (`crate::offline`): all of them reassemble it; the frame and
    /// the reassembly outcomes are counted by the worker `owner` names for the fragment's own
    /// decode (as for any frame), and a reassembled datagram by the worker `owner` names for
    /// its segment, the owner of its flow. Without it (one worker, live) this worker counts
    /// every fragment and every datagram it reassembles.
    pub fn set_shard(&mut self, shard: Shard) {
        self.shard = Some(shard);
    }

    /// Turns fragment reassembly on (the default) or off. Off, a first fragment is parsed
    /// for what it holds and the rest of its datagram counts as lost, as before reassembly
    /// existed: live capture does that, because its XDP program passes later fragments to
    /// the kernel (they carry no ports to match), so a held first fragment could only time
    /// out.
    pub fn set_fragment_reassembly(&mut self, on: bool) {
        self.reassemble = on;
    }

    /// The fragment path: offers the frame, already counted as a packet, to the reassembler.
    #[cold]
    #[inline(never)]
    fn fragment(
        &mut self,
        ts: u64,
        link: LinkType,
        frame: &[u8],
        decoded: &Result<TcpSegment<'_>, WireError>,
        wire_len: u32,
    ) -> FragmentPath {
        let counts = self
            .shard
            .is_none_or(|s| (s.owner)(decoded, s.workers) == s.index);
        if !counts {
            // Another worker counts this frame: take back what the caller added.
            self.delta.tally.counts[Counter::Packets as usize] -= 1;
            self.delta.tally.counts[Counter::Bytes as usize] -= u64::from(wire_len);
        }
        if !self.reassemble {
            return if counts {
                FragmentPath::AsBefore
            } else {
                FragmentPath::Done
            };
        }
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
    }

    /// Notes how long a stamped frame took from the generator's send (`sent_ns`, its
    /// CLOCK_MONOTONIC) to this worker (`ts`), when packet time is this host's clock. No call
    /// in here: see the module doc.
    #[inline(always)]
    fn capture_latency(&mut self, ts: u64, sent_ns: u64) {
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
    fn new_connection(&mut self, ts: u64, seg: &TcpSegment<'_>) {
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

    fn segment(&mut self, ts: u64, seg: &TcpSegment<'_>) {
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
                let carry = &mut self.carry;
                let (slot, how) = self.flows.get_or_insert(key, |old| {
                    for dir in &old.dirs {
                        if let Some(s) = dir.carry_slot() {
                            carry.give_back(s);
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

        let flow = self.flows.flow_mut(slot);
        if syn {
            let dir = &mut flow.dirs[side];
            dir.next_seq = seg.seq.wrapping_add(1);
            dir.seq_known = true;
            if dir.framing == Framing::Unsynced {
                dir.framing = Framing::Boundary;
            }
            if flow.client.is_none() {
                flow.client = Some(if ack { 1 - side } else { side });
            }
        }

        if !seg.payload.is_empty() {
            let mut data = seg.payload;
            let dir = &mut flow.dirs[side];
            let mut gap = 0u64;
            if dir.seq_known {
                let ahead = seg.seq.wrapping_sub(dir.next_seq) as i32;
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
            if seg.truncated || seg.fragmented {
                // The rest of this segment was not captured: how much is unknown. A head the
                // snap length cut is counted at its request line; one whose rest is in IP
                // fragments this path does not reassemble (see `set_fragment_reassembly`) is
                // left uncounted, as before.
                self.lose(slot, side, u64::MAX, !seg.fragmented);
            }
        }
        self.end_of_segment(slot, side, fin, rst);
    }

    /// Handles FIN and RST: a flow closed both ways, or reset, leaves the table.
    fn end_of_segment(&mut self, slot: u32, side: Side, fin: bool, rst: bool) {
        if !(fin || rst) {
            return;
        }
        let flow = self.flows.flow_mut(slot);
        if fin {
            flow.dirs[side].fin = true;
        }
        if rst || (flow.dirs[0].fin && flow.dirs[1].fin) {
            for d in 0..2 {
                if let Some(s) = flow.dirs[d].carry_slot() {
                    flow.dirs[d].drop_carry();
                    self.carry.give_back(s);
                }
            }
            self.flows.remove(slot);
        }
    }

    /// `gap` bytes of this direction were never captured. A cut request head held in a carry
    /// slot is counted at its request line when `count_head` (see `count_incomplete_head`).
    /// Only at a capture hole, so out of line: inlined into the frame path it cost
    /// `engine_loop` ~12 instructions a frame once it reached the pool's list and the
    /// incomplete-head count.
    #[cold]
    #[inline(never)]
    fn lose(&mut self, slot: u32, side: Side, gap: u64, count_head: bool) {
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
    fn count_incomplete_head(&mut self, slot: u32, side: Side, s: u32, ts: u64) {
        if self.flows.flow_mut(slot).client != Some(side) {
            return;
        }
        let data = self.carry.data(s);
        let start = data.iter().position(|&b| b != b'\r' && b != b'\n');
        let line_seen = start
            .is_some_and(|at| matches!(parse_request_line(&data[at..]), Ok(Status::Complete(_))));
        // The request line's LF is the last one at least.
        let Some(last_lf) = data.iter().rposition(|&b| b == b'\n').filter(|_| line_seen) else {
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

    /// Feeds new in-order bytes of one direction through its framing state.
    fn stream(&mut self, slot: u32, side: Side, mut data: &[u8], ts: u64) {
        while !data.is_empty() {
            let framing = self.flows.flow_mut(slot).dirs[side].framing;
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
                    let is_client = flow.client == Some(side);
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
                Framing::Boundary => match self.parse(slot, side, data, ts, 0, ts) {
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

    /// Keeps the cut head `rest` in a carry slot until the next segment: a free slot, or else
    /// the least recently active cut head's (see [`crate::carry`]).
    fn start_carry(&mut self, slot: u32, side: Side, rest: &[u8], ts: u64) {
        if rest.len() > CARRY_CAP {
            self.delta.add(Counter::CarryOverflow, 1);
            self.flows.flow_mut(slot).dirs[side].framing = Framing::Unsynced;
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

    /// Every carry slot is in use: takes the least recently active one for `owner`, dropping
    /// the head it held (`carry_reclaimed`); that direction resynchronises as after a loss.
    /// Rare (only while more heads are cut than there are slots), so out of line.
    #[cold]
    #[inline(never)]
    fn reclaim_carry(&mut self, owner: Owner) -> Option<u32> {
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
    fn continue_carry<'d>(&mut self, slot: u32, side: Side, data: &'d [u8], ts: u64) -> &'d [u8] {
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
                    // The head fills the whole slot and goes on.
                    d.drop_carry();
                    d.framing = Framing::Unsynced;
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

    /// Parses every message head in `buf` (which starts at a message boundary). Bytes before
    /// `split` arrived at `early_ts`, the rest at `ts`.
    fn parse(
        &mut self,
        slot: u32,
        side: Side,
        buf: &[u8],
        early_ts: u64,
        split: usize,
        ts: u64,
    ) -> Stop {
        let is_client = self.flows.flow_mut(slot).client == Some(side);
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            if rest.iter().all(|&b| b == b'\r' || b == b'\n') {
                return Stop::Framing(Framing::Boundary);
            }
            let msg_ts = if at < split { early_ts } else { ts };
            let parsed = if is_client {
                match parse_request(rest) {
                    Ok(Status::Complete(req)) => {
                        let framing = self.count_request(slot, side, &req, msg_ts);
                        Ok((req.head_len, framing))
                    }
                    Ok(Status::Partial) => return Stop::Partial(at),
                    Err(e) => Err(e),
                }
            } else {
                match parse_response(rest) {
                    Ok(Status::Complete(resp)) => {
                        let framing = self.count_response(slot, side, &resp, msg_ts);
                        Ok((resp.head_len, framing))
                    }
                    Ok(Status::Partial) => return Stop::Partial(at),
                    Err(e) => Err(e),
                }
            };
            let (head_len, body) = match parsed {
                Ok(v) => v,
                Err(e) => {
                    if self.flows.flow_mut(slot).http_seen {
                        self.malformed(e);
                    } else {
                        self.delta.add(Counter::NonHttp, 1);
                    }
                    return Stop::Framing(Framing::Unsynced);
                }
            };
            at += head_len;
            let rest = &buf[at..];
            match body {
                Framing::Boundary => {}
                Framing::Body(n) => match usize::try_from(n) {
                    Ok(n) if n <= rest.len() => at += n,
                    _ => return Stop::Framing(Framing::Body(n - rest.len() as u64)),
                },
                Framing::Chunked(mut chunked) => match chunked.advance(rest) {
                    Ok(ChunkProgress::Done(used)) => at += used,
                    Ok(ChunkProgress::NeedMore) => return Stop::Framing(Framing::Chunked(chunked)),
                    Err(e) => {
                        self.malformed(e);
                        return Stop::Framing(Framing::Unsynced);
                    }
                },
                other => return Stop::Framing(other),
            }
        }
    }

    fn malformed(&mut self, e: HttpError) {
        self.delta.add(Counter::Malformed, 1);
        self.delta.tally.http_errors[e.index()] += 1;
    }

    /// Counts a request head; returns how its body is framed.
    fn count_request(&mut self, slot: u32, side: Side, req: &Request<'_>, ts: u64) -> Framing {
        let d = &mut *self.delta;
        let line = &req.line;
        let kind = line.method_kind();
        let section = line.section();
        let host = match line.target_form() {
            TargetForm::Absolute => line.authority(),
            _ => None,
        }
        .or(req.host)
        .or(match line.target_form() {
            TargetForm::Authority => line.authority(),
            _ => None,
        })
        .unwrap_or(ABSENT);
        let user_agent = req.user_agent.unwrap_or(ABSENT);
        let declared = match req.body {
            Body::Length(n) => n,
            _ => 0,
        };
        let bytes = req.head_len as u64 + declared;

        d.add(Counter::Requests, 1);
        d.add(Counter::RequestBytes, bytes);
        d.add(Counter::BareLf, u64::from(req.bare_lf));
        d.tally.methods[kind.index()] += 1;
        if let Some(e) = req.defect {
            d.add(Counter::Malformed, 1);
            d.tally.http_errors[e.index()] += 1;
        }
        d.tally.sections.record(section, 1, bytes);
        d.tally.hosts.record_lowercase(host, 1, bytes);
        d.tally.user_agents.record(user_agent, 1, bytes);
        let mut pair = [0u8; KEY_CAP];
        let s_len = section.len().min(KEY_CAP);
        pair[..s_len].copy_from_slice(&section[..s_len]);
        let mut len = s_len;
        if len < KEY_CAP {
            pair[len] = 0;
            len += 1;
            let h_len = host.len().min(KEY_CAP - len);
            let host_part = &mut pair[len..len + h_len];
            host_part.copy_from_slice(&host[..h_len]);
            host_part.make_ascii_lowercase();
            len += h_len;
        }
        d.tally.section_hosts.record(&pair[..len], 1, bytes);

        let flow = self.flows.flow_mut(slot);
        flow.http_seen = true;
        let pending = Pending {
            ts,
            head: kind == Method::Head,
            connect: kind == Method::Connect,
        };
        if !flow.push_pending(pending) {
            d.add(Counter::PendingOverflow, 1);
        }
        if let Some(sink) = self.events.as_mut() {
            let (client, server) = (flow.key.ends[side], flow.key.ends[1 - side]);
            sink.request(&RequestEvent {
                ts: time_of(ts),
                src: (client.ip(), client.port),
                dst: (server.ip(), server.port),
                method: line.method,
                target: line.target,
                section,
                version: line.version.as_str(),
                host: req.host,
                user_agent: req.user_agent,
                bytes,
            });
        }
        framing_of(req.body)
    }

    /// Counts a response head; returns how its body is framed.
    fn count_response(&mut self, slot: u32, side: Side, resp: &Response<'_>, ts: u64) -> Framing {
        let d = &mut *self.delta;
        let code = resp.line.code;
        d.add(Counter::Responses, 1);
        d.add(Counter::BareLf, u64::from(resp.bare_lf));
        if let Some(s) = d.tally.status.get_mut(usize::from(code)) {
            *s += 1;
        }
        if let Some(e) = resp.defect {
            d.add(Counter::Malformed, 1);
            d.tally.http_errors[e.index()] += 1;
        }
        let flow = self.flows.flow_mut(slot);
        flow.http_seen = true;
        let interim = (100..200).contains(&code) && code != 101;
        let request = if interim {
            flow.front_pending()
        } else {
            flow.pop_pending()
        };
        let mut latency_us = None;
        let mut body = framing_of(resp.body);
        match request {
            Some(req) => {
                let us = ts.saturating_sub(req.ts) / NS_PER_US;
                if !interim {
                    d.tally.response_latency_us.saturating_record(us.max(1));
                }
                latency_us = Some(us);
                if req.head {
                    body = Framing::Boundary;
                }
                if req.connect && (200..300).contains(&code) {
                    body = Framing::Opaque;
                    flow.dirs[1 - side].framing = Framing::Opaque;
                }
            }
            None => d.add(Counter::UnmatchedResponses, 1),
        }
        if code == 101 {
            body = Framing::Opaque;
            flow.dirs[1 - side].framing = Framing::Opaque;
        }
        if let Some(sink) = self.events.as_mut() {
            let (server, client) = (flow.key.ends[side], flow.key.ends[1 - side]);
            let declared = match resp.body {
                Body::Length(n) => n,
                _ => 0,
            };
            sink.response(&ResponseEvent {
                ts: time_of(ts),
                src: (server.ip(), server.port),
                dst: (client.ip(), client.port),
                status: code,
                latency_us,
                bytes: resp.head_len as u64 + declared,
            });
        }
        body
    }
}

/// The framing after a head whose body is `body`.
fn framing_of(body: Body) -> Framing {
    match body {
        Body::Empty => Framing::Boundary,
        Body::Length(0) => Framing::Boundary,
        Body::Length(n) => Framing::Body(n),
        Body::Chunked => Framing::Chunked(ChunkedBody::new()),
        Body::UntilClose => Framing::UntilClose,
        Body::Unknown => Framing::Unsynced,
    }
}

/// Packet time as a `SystemTime`.
pub fn time_of(ts_ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ts_ns)
}

/// Methods whose name alone makes a segment start believable as a request.
const KNOWN_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"CONNECT ",
    b"OPTIONS ",
    b"TRACE ",
    b"PATCH ",
];

/// `buf` starts like a request: a known method, or any method token on a line that ends in an
/// `HTTP/1.x` version. A cut-off start counts if it is a prefix of a known method.
fn plausible_request(buf: &[u8]) -> bool {
    if KNOWN_METHODS
        .iter()
        .any(|m| buf.starts_with(m) || m.starts_with(buf))
    {
        return true;
    }
    matches!(parse_request_line(buf), Ok(Status::Complete((line, _)))
        if line.version != linewatch_parser::http::Version::Http09)
}

/// `buf` starts like a response: `HTTP/1.` (or a prefix of it).
fn plausible_response(buf: &[u8]) -> bool {
    const START: &[u8] = b"HTTP/1.";
    buf.starts_with(START) || START.starts_with(buf)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use linewatch_testkit::frame::{Frame, TcpFlags as Flags, TcpRepr};

    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;
    const HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a";

    /// Feeds the client segment of connection `i` at stream offset `at` to `w`.
    fn send(w: &mut Worker, i: u16, at: u32, payload: &[u8]) {
        let tcp = TcpRepr {
            src_port: 10_000 + i,
            dst_port: 80,
            seq: 1 + at,
            flags: Flags::PSH | Flags::ACK,
            payload,
            ..TcpRepr::default()
        };
        let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let frame = Frame::tcp(client, server, tcp).to_vec();
        let len = u32::try_from(frame.len()).unwrap();
        w.process_frame(T0 + u64::from(i), LinkType::Ethernet, &frame, len);
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

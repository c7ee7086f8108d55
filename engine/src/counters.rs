//! One worker's counts for one epoch: [`CoreDelta`].
//!
//! Contract: a `CoreDelta` has exactly one writer at a time. The worker that owns it counts
//! into it while its epoch is current, then hands the whole box to the aggregator (see
//! [`crate::epoch`]), which merges it, clears it and gives it back. Nothing in here is atomic:
//! ownership moves with the `Box`, so plain adds are enough and the hot path never does a
//! read-modify-write on shared memory.
//!
//! Everything is allocated once, when the box is built: the heavy-hitter tables have a fixed
//! capacity and the histograms fixed bounds, so counting never allocates.

use std::net::IpAddr;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use linewatch_model::TopByKey;
use linewatch_parser::http::Method;
use linewatch_parser::{HttpError, WireError};

use crate::latency::Latencies;
use crate::topn::HeavyHitters;

/// Keys one core remembers per second per dimension. A core rarely sees more distinct
/// sections in one second; when it does, space-saving keeps the heavy ones and flags the rest
/// as approximate.
pub const CORE_TABLE_CAPACITY: usize = 1024;

/// Keys the aggregator keeps since start per dimension. Counts stay exact for every key as
/// long as fewer distinct keys than this were seen (the corpus captures have at most a few
/// hundred).
pub const TOTAL_TABLE_CAPACITY: usize = 4096;

/// Keys the aggregator keeps per report interval per dimension.
pub const INTERVAL_TABLE_CAPACITY: usize = 1024;

/// Largest latency recorded, in microseconds: one hour. Longer values are clamped
/// (`saturating_record`; the histogram's last bucket reaches 2^32 − 1 us, so only values past
/// it are), so a stuck connection cannot make a histogram grow.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Largest batch service time recorded, in nanoseconds: ten seconds.
pub const MAX_BATCH_NS: u64 = 10_000_000_000;

/// Significant figures kept by every histogram: values are exact to 1%, which is finer than
/// the scheduling noise of any latency measured here, and keeps each histogram near 30 KiB.
pub const HISTOGRAM_SIGFIG: u8 = 2;

/// Highest status code counted individually; codes are three digits (the parser checks).
pub const STATUS_CODES: usize = 1000;

macro_rules! counters {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant,)* }
        impl $name {
            /// Every counter, in index order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// How many there are.
            pub const COUNT: usize = $name::ALL.len();
            /// The counter's name in reports and JSON.
            pub const fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }
    };
}

counters! {
    /// The scalar counters of a [`CoreDelta`].
    pub enum Counter {
        /// Frames read from the source.
        Packets => "packets",
        /// Bytes of those frames as captured.
        Bytes => "bytes",
        /// Frames that did not decode down to TCP (see the wire-error counters).
        Undecoded => "undecoded",
        /// TCP segments outside the monitored ports or the watched addresses (`--dst`).
        Unmonitored => "unmonitored",
        /// HTTP requests (complete heads).
        Requests => "requests",
        /// HTTP responses (complete heads).
        Responses => "responses",
        /// Request bytes: head plus declared body length.
        RequestBytes => "request_bytes",
        /// Payload segments on flows that never carried HTTP.
        NonHttp => "non_http",
        /// Messages that broke the grammar.
        Malformed => "malformed",
        /// Segments already seen (retransmissions), skipped.
        Retransmitted => "retransmitted",
        /// Holes in a flow's sequence space that never filled: bytes the capture missed
        /// (the peer acknowledged them, or the hole was given up at a bound of
        /// `crate::reorder`, its timeout, the flow's end or the end of the run).
        SequenceGaps => "sequence_gaps",
        /// Segments that arrived ahead of a hole in their direction and were held until it
        /// filled or was given up: reordering, or loss and retransmission before the capture
        /// point.
        Reordered => "reordered",
        /// Held segments dropped, replaced or removed because they overlapped held data
        /// (Linux's out-of-order queue rules, see `crate::reorder`).
        ReorderOverlaps => "reorder_overlaps",
        /// Holes given up early to free their slot for a newer one when every slot was in use:
        /// the least recently active goes (stalled or lossy flows).
        ReorderReclaimed => "reorder_reclaimed",
        /// Segments further ahead of their direction's next byte than the reassembly window
        /// (64 KiB), on a connection seen both ways: dropped, as the server drops them; the
        /// direction moves on only when the peer acknowledges bytes the capture missed.
        OutOfWindow => "out_of_window",
        /// Payload segments skipped while waiting for a message start after a gap or error.
        OutOfSync => "out_of_sync",
        /// Request heads longer than the carry buffer (32 KiB, nginx's default limit; counted
        /// at their request line, see `incomplete_heads`), or no carry buffer free.
        CarryOverflow => "carry_overflow",
        /// Cut heads dropped, unfinished, to give their carry slot to a newer cut head when
        /// every slot was in use: the least recently active one goes (stalled clients).
        CarryReclaimed => "carry_reclaimed",
        /// Requests counted (also under `requests`) from a head not seen whole: the request
        /// line was seen, the rest of the head fell into a capture hole (a sequence gap or a
        /// frame cut at the snap length) or past the carry buffer (`carry_overflow`); Host `-`
        /// when its line was not seen whole.
        IncompleteHeads => "incomplete_heads",
        /// Flows evicted from the full flow table before they ended.
        FlowsEvicted => "flows_evicted",
        /// Responses whose request was not seen on the flow.
        UnmatchedResponses => "unmatched_responses",
        /// Segments that could not be handed to the worker owning their flow: its lane stayed
        /// full (live, on queues that split connections; see `crate::cross`). The owner sees
        /// them as a capture gap.
        CrossingLost => "crossing_lost",
        /// Segments held until the other direction of their connection caught up (they
        /// acknowledged bytes still on their way from another queue; see `crate::cross`).
        HeldForPeer => "held_for_peer",
        /// Held segments parsed without the other direction catching up: it did not come in
        /// `cross::PEER_WAIT_NS`, or the hold queue was full.
        PeerWaitExpired => "peer_wait_expired",
        /// Requests and responses (also counted as such) whose head ended a line in a bare LF
        /// instead of CRLF: what nginx serves and RFC 9112 §2.2 allows, but no mainstream
        /// client sends; shows who does.
        BareLf => "bare_lf",
        /// Requests still waiting when their pending queue overflowed (no latency for them).
        PendingOverflow => "pending_overflow",
        /// Send stamps later than the worker's clock (a generator on another clock): no
        /// capture latency recorded for them.
        StampInFuture => "stamp_in_future",
        /// Stamped frames past a worker's note space between two flushes of its capture
        /// latencies (see `worker::CAPTURE_PENDING`): no capture latency recorded for them.
        CaptureLatencyDropped => "capture_latency_dropped",
        /// Batches processed.
        Batches => "batches",
        /// New TCP connections: segments with SYN set and ACK clear, on any port.
        NewConnections => "new_connections",
        /// New connections the port-scan detector did not see: a core's log of them was full
        /// for that second (see [`SYN_LOG_CAPACITY`]).
        ConnectionsUnlogged => "connections_unlogged",
        /// IP fragments of TCP datagrams taken by the reassembler (`crate::defrag`).
        Fragments => "fragments",
        /// Datagrams reassembled from their fragments and counted as if whole.
        FragmentsReassembled => "fragments_reassembled",
        /// Datagrams dropped incomplete after `defrag::TIMEOUT_NS` of packet time.
        FragmentsTimedOut => "fragments_timed_out",
        /// Datagrams dropped incomplete to make room (every slot taken).
        FragmentsEvicted => "fragments_evicted",
        /// Datagrams dropped because two of their fragments overlapped (RFC 5722).
        FragmentsOverlap => "fragments_overlap",
        /// Fragments ignored because their bytes had already arrived (the datagram is kept).
        FragmentsDuplicate => "fragments_duplicate",
        /// Datagrams dropped because they would exceed 65,535 bytes.
        FragmentsTooLarge => "fragments_too_large",
        /// Datagrams dropped for inconsistent fragments (see `crate::defrag`).
        FragmentsInvalid => "fragments_invalid",
    }
}

/// New connections one core logs per second for the port-scan detector; past it they are
/// counted (`connections_unlogged`) but not logged. A port scan at full speed from one host is
/// a few thousand SYNs a second; a flood beyond this is still counted in every other table.
pub const SYN_LOG_CAPACITY: usize = 16 * 1024;

/// One new connection, as the port-scan detector needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynRecord {
    /// Packet time, ns since the Unix epoch.
    pub ts: u64,
    /// Source address.
    pub src: IpAddr,
    /// Destination port.
    pub port: u16,
}

/// The key bytes of an address in the connection tables: 4 bytes for IPv4, 16 for IPv6.
/// Returns the buffer and the length used.
#[inline]
pub fn addr_key(addr: IpAddr) -> ([u8; 16], usize) {
    let mut key = [0u8; 16];
    match addr {
        IpAddr::V4(a) => {
            key[..4].copy_from_slice(&a.octets());
            (key, 4)
        }
        IpAddr::V6(a) => {
            key.copy_from_slice(&a.octets());
            (key, 16)
        }
    }
}

/// The address a connection-table key stands for ([`addr_key`] reversed).
pub fn key_addr(key: &[u8]) -> Option<IpAddr> {
    match key.len() {
        4 => <[u8; 4]>::try_from(key).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(key).ok().map(IpAddr::from),
        _ => None,
    }
}

/// One worker's counts for one epoch. See the module doc.
#[derive(Debug)]
pub struct CoreDelta {
    /// The epoch (second) these counts belong to.
    pub epoch: u64,
    /// The counts, with [`CORE_TABLE_CAPACITY`] keys per table.
    pub tally: Tally,
    /// The epoch's new connections, in the order seen, at most [`SYN_LOG_CAPACITY`]; the
    /// aggregator feeds them to the port-scan detector. Allocated once.
    pub syns: Vec<SynRecord>,
    /// Something was counted since the last clear (an untouched delta needs no merge or
    /// clear).
    pub touched: bool,
}

/// Counts over a span of time: one core's second (inside a [`CoreDelta`]), or a report
/// interval or everything since start in the aggregator, which merges the former into those.
#[derive(Debug)]
pub struct Tally {
    /// Scalar counters by [`Counter`] index. Padded so that the hottest cache line of one
    /// core never shares a line with another core's allocation.
    pub counts: CachePadded<[u64; Counter::COUNT]>,
    /// Requests per method.
    pub methods: [u64; Method::ALL.len()],
    /// Malformed messages per reason.
    pub http_errors: [u64; HttpError::COUNT],
    /// Undecodable frames per reason.
    pub wire_errors: [u64; WireError::COUNT],
    /// Responses per status code.
    pub status: Box<[u64; STATUS_CODES]>,
    /// Requests per section.
    pub sections: HeavyHitters,
    /// Requests per host.
    pub hosts: HeavyHitters,
    /// Requests per user agent.
    pub user_agents: HeavyHitters,
    /// Requests per (section NUL host).
    pub section_hosts: HeavyHitters,
    /// New connections per source address (key: the 4 or 16 address bytes, see
    /// [`addr_key`]).
    pub conn_sources: HeavyHitters,
    /// New connections per destination port (key: the port's 2 bytes, big-endian).
    pub conn_ports: HeavyHitters,
    /// Response latency in microseconds, counted per bucket of a [`latency_histogram`] (a
    /// response's latency is recorded on the packet path; [`Latencies::histogram`] makes the
    /// histogram for the readers).
    pub response_latency_us: Latencies,
    /// Capture latency in microseconds: a generator's send stamp to the worker's batch clock
    /// (live capture only; see [`crate::worker::Worker::set_monotonic_offset`]).
    pub capture_latency_us: Histogram<u64>,
    /// Batch service time in nanoseconds.
    pub batch_service_ns: Histogram<u64>,
    /// The `--top-by` tables, in the order asked for (empty without `--top-by`). Keys:
    /// addresses as [`addr_key`], ports as their 2 bytes big-endian, header values as sent.
    /// A core's delta gets them on its first request with `--top-by` (see
    /// [`Tally::add_top_by`]), so deltas made before the worker knew its keys need nothing.
    pub top_by: Vec<(TopByKey, HeavyHitters)>,
    /// Seconds merged.
    pub seconds: u64,
}

/// A latency histogram with linewatch's bounds.
pub fn latency_histogram(max: u64) -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts (low 1, high > 2, sigfig <= 5).
    Histogram::new_with_bounds(1, max, HISTOGRAM_SIGFIG)
        .expect("constant histogram bounds are valid")
}

impl Tally {
    /// An empty tally whose tables keep `capacity` keys.
    pub fn new(capacity: usize) -> Tally {
        Tally {
            counts: CachePadded::new([0; Counter::COUNT]),
            methods: [0; Method::ALL.len()],
            http_errors: [0; HttpError::COUNT],
            wire_errors: [0; WireError::COUNT],
            status: Box::new([0; STATUS_CODES]),
            sections: HeavyHitters::with_capacity(capacity),
            hosts: HeavyHitters::with_capacity(capacity),
            user_agents: HeavyHitters::with_capacity(capacity),
            section_hosts: HeavyHitters::pairs_with_capacity(capacity),
            conn_sources: HeavyHitters::with_capacity(capacity),
            conn_ports: HeavyHitters::with_capacity(capacity),
            response_latency_us: Latencies::new(),
            capture_latency_us: latency_histogram(MAX_LATENCY_US),
            batch_service_ns: latency_histogram(MAX_BATCH_NS),
            top_by: Vec::new(),
            seconds: 0,
        }
    }

    /// Gives the tally a `--top-by` table of `capacity` keys for each of `keys` it lacks (the
    /// keys are always the run's `--top-by` list, so a tally has a prefix of it).
    pub fn add_top_by(&mut self, keys: &[TopByKey], capacity: usize) {
        for key in keys.iter().skip(self.top_by.len()) {
            self.top_by
                .push((key.clone(), HeavyHitters::with_capacity(capacity)));
        }
    }

    /// A counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.counts[c as usize]
    }

    /// Adds another tally (one core's second) to this one.
    pub fn merge(&mut self, d: &Tally) {
        fn add<const N: usize>(into: &mut [u64; N], from: &[u64; N]) {
            for (a, b) in into.iter_mut().zip(from) {
                *a += b;
            }
        }
        add(&mut self.counts, &d.counts);
        add(&mut self.methods, &d.methods);
        add(&mut self.http_errors, &d.http_errors);
        add(&mut self.wire_errors, &d.wire_errors);
        add(&mut self.status, &d.status);
        self.sections.merge_from(&d.sections);
        self.hosts.merge_from(&d.hosts);
        self.user_agents.merge_from(&d.user_agents);
        self.section_hosts.merge_from(&d.section_hosts);
        self.conn_sources.merge_from(&d.conn_sources);
        self.conn_ports.merge_from(&d.conn_ports);
        // Every tally's tables are a prefix of the same `--top-by` list.
        for ((_, into), (_, from)) in self.top_by.iter_mut().zip(&d.top_by) {
            into.merge_from(from);
        }
        // Same bounds on both sides: `add` cannot fail.
        self.response_latency_us.add(&d.response_latency_us);
        let _ = self.capture_latency_us.add(&d.capture_latency_us);
        let _ = self.batch_service_ns.add(&d.batch_service_ns);
    }

    /// Empties it, keeping the allocations.
    pub fn clear(&mut self) {
        *self.counts = [0; Counter::COUNT];
        self.methods = [0; Method::ALL.len()];
        self.http_errors = [0; HttpError::COUNT];
        self.wire_errors = [0; WireError::COUNT];
        self.status.fill(0);
        self.sections.clear();
        self.hosts.clear();
        self.user_agents.clear();
        self.section_hosts.clear();
        self.conn_sources.clear();
        self.conn_ports.clear();
        for (_, table) in &mut self.top_by {
            table.clear();
        }
        self.response_latency_us.reset();
        self.capture_latency_us.reset();
        self.batch_service_ns.reset();
        self.seconds = 0;
    }
}

impl CoreDelta {
    /// An empty delta for `epoch`, with every table allocated.
    pub fn new(epoch: u64) -> Box<CoreDelta> {
        Box::new(CoreDelta {
            epoch,
            tally: Tally::new(CORE_TABLE_CAPACITY),
            syns: Vec::with_capacity(SYN_LOG_CAPACITY),
            touched: false,
        })
    }

    /// Adds `n` to counter `c`.
    #[inline(always)]
    pub fn add(&mut self, c: Counter, n: u64) {
        self.tally.counts[c as usize] += n;
    }

    /// Reads counter `c`.
    #[inline]
    pub fn get(&self, c: Counter) -> u64 {
        self.tally.get(c)
    }

    /// Empties every count and table, keeping the allocations, and labels it `epoch`.
    pub fn clear(&mut self, epoch: u64) {
        self.epoch = epoch;
        if self.touched {
            self.tally.clear();
            self.syns.clear();
            self.touched = false;
        }
    }
}

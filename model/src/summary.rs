//! The exit summary (and the `--summary` document): totals, errors, alerts, latency
//! percentiles, live capture figures and the connection guard's figures.

use std::time::SystemTime;

use crate::{AlertRecord, Breakdown, Fragments, Traffic};

/// A percentile table of one HDR histogram. The unit is in the histogram's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest value.
    pub max: u64,
}

/// A named histogram for the exit summary, e.g. `("response_us", "response latency", ...)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyTable {
    /// Key in the summary JSON's `latency` object (`response_us`, `batch_service_us`).
    pub name: &'static str,
    /// Title on screen (`response latency (request to first response byte)`).
    pub title: &'static str,
    /// Unit on screen (`us`).
    pub unit: &'static str,
    /// The percentiles.
    pub percentiles: Percentiles,
}

/// Everything the exit summary prints and `--summary` writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Where packets came from (`file.pcap`, `eth0`).
    pub source: String,
    /// The capture file ended in the middle of a record.
    pub truncated: bool,
    /// Time of the first and last packet.
    pub first_packet: Option<SystemTime>,
    /// Time of the last packet.
    pub last_packet: Option<SystemTime>,
    /// Packet counters.
    pub traffic: Traffic,
    /// Malformed messages and undecodable frames by reason (`invalid_target`, `not_ip`, ...).
    pub errors: Vec<(&'static str, u64)>,
    /// All counts since start.
    pub total: Breakdown,
    /// Every alert, oldest first.
    pub alerts: Vec<AlertRecord>,
    /// Latency histograms.
    pub latency: Vec<LatencyTable>,
    /// linewatch's own peak resident memory (Linux `VmHWM`), when known.
    pub peak_rss_bytes: Option<u64>,
    /// Live capture figures; `None` for a replay.
    pub capture: Option<Capture>,
    /// New connections, port scans and blocking.
    pub guard: Guard,
    /// IP fragment reassembly.
    pub fragments: Fragments,
}

/// The connection guard's figures for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guard {
    /// Distinct ports that make a port scan.
    pub scan_ports: u32,
    /// Within this many seconds.
    pub scan_window_secs: u64,
    /// The allow-list, as networks (`10.0.0.0/8`).
    pub allow: Vec<String>,
    /// Blocking was on (`--block-scanners`), and where.
    pub blocking_on: Option<String>,
    /// New connections seen.
    pub new_connections: u64,
    /// New connections the scan detector did not see (a core's per-second log was full).
    pub connections_unlogged: u64,
    /// Sources flagged as port scanners.
    pub scanners_flagged: u64,
    /// Allow-listed sources that scanned (logged, not flagged).
    pub scans_allowed: u64,
    /// SYNs seen from flagged sources (not blocked, or before their block took effect).
    pub syns_from_flagged: u64,
    /// SYNs the XDP guard dropped.
    pub blocked_syns: u64,
    /// Tracked sources forgotten early to keep the detector's memory bounded.
    pub sources_evicted: u64,
}

/// What live capture saw and lost, from the kernel's own counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Capture {
    /// The interface AF_XDP ran on.
    pub interface: String,
    /// XDP mode: `native` or `generic`.
    pub xdp_mode: String,
    /// Zero-copy sockets (else copy mode).
    pub zero_copy: bool,
    /// Frames the XDP program ran on.
    pub xdp_seen: u64,
    /// Frames it redirected to linewatch.
    pub xdp_redirected: u64,
    /// Frames not monitored (passed to the kernel; dropped on linewatch's own mirror veth).
    pub xdp_other: u64,
    /// Monitored frames on a queue without a linewatch socket.
    pub xdp_no_socket: u64,
    /// IP fragments of TCP datagrams the XDP program took (also in `xdp_redirected` or
    /// `xdp_no_socket`).
    pub xdp_fragments: u64,
    /// Of them, later fragments taken before their datagram's first fragment (`--interface`
    /// with a port list: their ports were not known yet).
    pub xdp_fragments_ahead: u64,
    /// First fragments of unmonitored ports taken because their datagram's other fragments
    /// had been: datagrams the host's kernel did not get.
    pub xdp_fragments_unwanted: u64,
    /// Seconds from capture start to stop.
    pub wall_seconds: f64,
    /// Copies the kernel dropped on their way into linewatch's mirror veth (its rings were
    /// full): lost before capture, and counted in the traffic's `dropped`.
    pub copy_dropped: u64,
    /// How a connection's two directions were kept on one queue, so that each response is
    /// paired with its request: `one queue`, `steered` (linewatch's mirror), `symmetric RSS`
    /// (with how), or `crossing` (the workers hand segments to each connection's owner).
    pub pairing: String,
    /// Per rx queue.
    pub queues: Vec<QueueCapture>,
}

/// One rx queue's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueCapture {
    /// The queue.
    pub queue: u32,
    /// The core its worker was pinned to.
    pub core: Option<usize>,
    /// Frames the worker received.
    pub frames: u64,
    /// Kernel: dropped for want of a fill buffer or for length (`XDP_STATISTICS` rx_dropped).
    pub rx_dropped: u64,
    /// Kernel: dropped because the rx ring was full.
    pub rx_ring_full: u64,
    /// Kernel: times the fill ring was found empty.
    pub fill_ring_empty: u64,
    /// Kernel: invalid rx descriptors.
    pub rx_invalid_descs: u64,
    /// CPU seconds the worker used.
    pub cpu_seconds: f64,
    /// Responses the queue's worker could not pair with a request: their request reached
    /// another queue (see `pairing`), or was never seen.
    pub unmatched_responses: u64,
    /// TCP segments of this queue handed to the worker that owns their connection (the
    /// fallback that pairs across queues; 0 where the directions share a queue).
    pub crossed_out: u64,
    /// TCP segments other queues' workers handed to this one.
    pub crossed_in: u64,
}

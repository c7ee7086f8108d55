//! What the engine hands to the renderers: plain data, no behaviour. The engine fills these
//! from its snapshots; every function in this crate reads them. Strings that came off the wire
//! are kept as raw bytes here and escaped only when rendered.

use std::time::SystemTime;

/// One key of a heavy-hitter table (section, host, user agent, ...), as merged by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    /// The key as it came off the wire (hosts lower-cased), at most the engine's key cap long.
    pub key: Vec<u8>,
    /// Requests counted under this key (an overestimate by at most `error`).
    pub count: u64,
    /// How much of `count` may belong to keys this entry replaced (space-saving); 0 = exact.
    pub error: u64,
    /// Request bytes (head + declared body) counted under this key.
    pub bytes: u64,
    /// The key was longer than the cap and was cut.
    pub truncated: bool,
}

impl TopEntry {
    /// The least the key's true count can be: `count - error`, exact when `error` is 0.
    pub fn lower_bound(&self) -> u64 {
        self.count.saturating_sub(self.error)
    }

    /// The count is an estimate: the key took over a slot other keys had counted in.
    pub fn is_approximate(&self) -> bool {
        self.error > 0
    }
}

/// A section with the hosts it was requested under, for "top sections (with their top hosts)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionHosts {
    /// The section.
    pub section: TopEntry,
    /// Its top hosts, largest first.
    pub hosts: Vec<TopEntry>,
}

/// Counts over one span of time: a report interval, or everything since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breakdown {
    /// Length of the span in seconds.
    pub seconds: u64,
    /// HTTP requests.
    pub requests: u64,
    /// HTTP responses.
    pub responses: u64,
    /// Request bytes (head + declared body).
    pub request_bytes: u64,
    /// Requests per method name (`GET`, ..., `other`), largest first; zero counts left out.
    pub methods: Vec<(&'static str, u64)>,
    /// Responses per status code, by code.
    pub status: Vec<(u16, u64)>,
    /// Responses per status class: index 0 = 1xx ... 4 = 5xx; index 5 = codes 600 to 999.
    pub status_classes: [u64; 6],
    /// Top sections, largest first.
    pub sections: Vec<TopEntry>,
    /// Top sections with their top hosts, largest first.
    pub section_hosts: Vec<SectionHosts>,
    /// Top hosts (`-` when a request had no Host), largest first.
    pub hosts: Vec<TopEntry>,
    /// Top user agents (`-` when absent), largest first.
    pub user_agents: Vec<TopEntry>,
    /// New connections (TCP SYN without ACK, any port).
    pub connections: u64,
    /// Top sources of new connections (keys: the address as text), largest first.
    pub connection_sources: Vec<TopEntry>,
    /// Top destination ports of new connections (keys: the port as text), largest first.
    pub connection_ports: Vec<TopEntry>,
}

/// What an alert was about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The window's average request rate went above the threshold.
    HighTraffic,
    /// A source opened connections to too many distinct ports within the scan window.
    PortScan,
}

impl AlertKind {
    /// The name used in JSON (`"kind"`).
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::HighTraffic => "high_traffic",
            AlertKind::PortScan => "port_scan",
        }
    }
}

/// One alert, raised and maybe recovered.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// What it is about.
    pub kind: AlertKind,
    /// The second it was raised (packet time offline, wall time live).
    pub triggered_at: SystemTime,
    /// High traffic: the window average (requests/s) that raised it. Port scan: the
    /// distinct ports seen within the window.
    pub value: f64,
    /// The threshold it crossed (requests/s, or ports).
    pub threshold: f64,
    /// The second it recovered (a port scan: when its block expired), if it has.
    pub recovered_at: Option<SystemTime>,
    /// The window average at recovery.
    pub recovered_value: Option<f64>,
    /// The window it was measured over, in seconds.
    pub window_secs: u64,
    /// Port scan: the scanner.
    pub source: Option<std::net::IpAddr>,
    /// Port scan: its new connections are being dropped (`--block-scanners`).
    pub blocked: bool,
}

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

/// The live status line's inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusLine {
    /// Time of the last closed second.
    pub now: SystemTime,
    /// Packets per second over the last second.
    pub pps: u64,
    /// Requests per second over the last second.
    pub rps: u64,
    /// Packets dropped so far (kernel and engine).
    pub drops: u64,
    /// Average requests/s over the alert window.
    pub window_rate: f64,
    /// The alert threshold; `None` while a baseline is being learned.
    pub threshold: Option<f64>,
    /// An alert is active.
    pub alert_active: bool,
    /// The top section of the last report interval, if any.
    pub top_section: Option<Vec<u8>>,
}

/// The periodic report (every `--report-interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Time of the last second in the interval.
    pub at: SystemTime,
    /// The interval just ended.
    pub interval: Breakdown,
    /// Everything since start.
    pub total: Breakdown,
    /// The last alerts (at most 5), oldest first.
    pub recent_alerts: Vec<AlertRecord>,
}

/// Counters of packets and of what could not be counted as HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets read from the source.
    pub packets: u64,
    /// Bytes of those packets as captured.
    pub bytes: u64,
    /// Packets lost before linewatch saw them (kernel drops; 0 offline).
    pub dropped: u64,
    /// TCP payload segments on monitored ports that were not HTTP (or not at a message start).
    pub non_http: u64,
    /// HTTP messages that broke the grammar (counted once each).
    pub malformed: u64,
    /// TCP segments seen again (retransmissions), counted once.
    pub retransmitted: u64,
    /// Frames that could not be decoded down to TCP (not IP, not TCP, truncated, ...).
    pub undecoded: u64,
    /// Flows evicted from a full flow table before they ended.
    pub flows_evicted: u64,
    /// Responses with no request seen on their flow.
    pub unmatched_responses: u64,
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
    /// Seconds from capture start to stop.
    pub wall_seconds: f64,
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
}

/// A request, for one `--json` line.
#[derive(Debug, Clone, Copy)]
pub struct RequestEvent<'a> {
    /// Packet time of the segment that held the request line.
    pub ts: SystemTime,
    /// Client address and port.
    pub src: (std::net::IpAddr, u16),
    /// Server address and port.
    pub dst: (std::net::IpAddr, u16),
    /// Method token as sent.
    pub method: &'a [u8],
    /// Target as sent.
    pub target: &'a [u8],
    /// Section of the target.
    pub section: &'a [u8],
    /// `HTTP/1.1`, `HTTP/1.0` or `HTTP/0.9`.
    pub version: &'static str,
    /// Host as sent, if present.
    pub host: Option<&'a [u8]>,
    /// User-Agent as sent, if present.
    pub user_agent: Option<&'a [u8]>,
    /// Head plus declared body length.
    pub bytes: u64,
}

/// A new connection (TCP SYN without ACK), for one `--json` line.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionEvent {
    /// Packet time of the SYN.
    pub ts: SystemTime,
    /// Source address and port.
    pub src: (std::net::IpAddr, u16),
    /// Destination address and port.
    pub dst: (std::net::IpAddr, u16),
}

/// A response, for one `--json` line.
#[derive(Debug, Clone, Copy)]
pub struct ResponseEvent {
    /// Packet time of the segment that held the status line.
    pub ts: SystemTime,
    /// Server address and port.
    pub src: (std::net::IpAddr, u16),
    /// Client address and port.
    pub dst: (std::net::IpAddr, u16),
    /// Status code.
    pub status: u16,
    /// Microseconds from the request to this response, when the request was seen.
    pub latency_us: Option<u64>,
    /// Head plus declared body length.
    pub bytes: u64,
}

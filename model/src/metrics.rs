//! What the OpenMetrics exposition (`--metrics`) shows: filled by the engine once per second,
//! rendered on each scrape by the report crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Everything the exposition shows, filled by the engine: plain data, no behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsView {
    /// When linewatch started (`linewatch_start_time_seconds`).
    pub created: SystemTime,
    /// Packets read from the source.
    pub packets: u64,
    /// Bytes of those packets as captured.
    pub bytes: u64,
    /// Frames the kernel dropped before linewatch read them (live capture; 0 offline).
    pub kernel_drops: u64,
    /// HTTP requests; the sum of `methods`, and of the section (host) tables with their `other`.
    pub requests: u64,
    /// HTTP responses; the sum of `status_classes`.
    pub responses: u64,
    /// TCP payload segments on monitored ports that were not HTTP.
    pub non_http: u64,
    /// HTTP messages that broke the grammar.
    pub malformed: u64,
    /// Every method with its request count (`GET`, `POST`, ..., `other`).
    pub methods: Vec<(&'static str, u64)>,
    /// Responses by status class: index 0 = 1xx ... 4 = 5xx, 5 = other.
    pub status_classes: [u64; 6],
    /// The top N sections with their requests since start, largest first.
    pub top_sections: Vec<(Vec<u8>, u64)>,
    /// Requests not counted under a key of `top_sections`.
    pub sections_other: u64,
    /// The top N hosts with their requests since start, largest first.
    pub top_hosts: Vec<(Vec<u8>, u64)>,
    /// Requests not counted under a key of `top_hosts`.
    pub hosts_other: u64,
    /// The `--top-by` tables since start: the top N keys of each.
    pub top_by: Vec<TopByMetrics>,
    /// TCP SYNs without ACK seen.
    pub new_connections: u64,
    /// Port-scan alerts raised.
    pub scan_alerts: u64,
    /// SYNs dropped by the XDP guard.
    pub blocked_syns: u64,
    /// Sources on the blocklist now.
    pub blocked_sources: u64,
    /// The high-traffic alert is active.
    pub alert_active: bool,
    /// Average requests/s over the alert window.
    pub window_rate: f64,
    /// The alert threshold; `None` while a baseline is being learned.
    pub threshold: Option<f64>,
    /// Response latency as recorded: `(value in microseconds, count)` pairs.
    pub response_latency_us: Vec<(u64, u64)>,
    /// Capture latency as recorded, same shape; may be empty.
    pub capture_latency_us: Vec<(u64, u64)>,
}

impl Default for MetricsView {
    /// All zero, started at the unix epoch.
    fn default() -> Self {
        MetricsView {
            created: UNIX_EPOCH,
            packets: 0,
            bytes: 0,
            kernel_drops: 0,
            requests: 0,
            responses: 0,
            non_http: 0,
            malformed: 0,
            methods: Vec::new(),
            status_classes: [0; 6],
            top_sections: Vec::new(),
            sections_other: 0,
            top_hosts: Vec::new(),
            hosts_other: 0,
            top_by: Vec::new(),
            new_connections: 0,
            scan_alerts: 0,
            blocked_syns: 0,
            blocked_sources: 0,
            alert_active: false,
            window_rate: 0.0,
            threshold: None,
            response_latency_us: Vec::new(),
            capture_latency_us: Vec::new(),
        }
    }
}

/// One `--top-by` table in the exposition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopByMetrics {
    /// The table's key as on the command line (`client`, `header:referer`).
    pub by: String,
    /// The top N keys, largest first: `(key, count, bytes)`, the count its guaranteed lower
    /// bound and the bytes those recorded while the key held its entry.
    pub top: Vec<(Vec<u8>, u64, u64)>,
    /// What the table counted not under a listed key.
    pub other: u64,
}

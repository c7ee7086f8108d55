//! What the live dashboard (`--dashboard`) shows beyond the status line: filled by the engine's
//! aggregator once per closed second, only when the dashboard is on, and read by the binary's
//! dashboard thread.

use crate::{AlertRecord, Breakdown, Percentiles};

/// Everything since start that the dashboard draws, plus the recent request rate. Bounded:
/// the tables hold the engine's top keys (a fixed number), the rate history and the alert list
/// a fixed number of entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsoleView {
    /// Everything since start: top sections with their hosts, hosts, user agents, methods,
    /// status codes, new connections and their sources.
    pub total: Breakdown,
    /// Requests in each closed second, oldest first, the last closed second last: the alert
    /// window's seconds (at most the engine's cap), quiet seconds as 0.
    pub rate_history: Vec<u64>,
    /// The alert window, in seconds.
    pub window_secs: u64,
    /// The last alerts of both kinds, oldest first.
    pub alerts: Vec<AlertRecord>,
    /// Port scanners flagged so far (every scan alert ever raised).
    pub scanners: u64,
    /// Response latency since start, microseconds.
    pub response_latency_us: Percentiles,
    /// Capture latency since start (packet time to counted), microseconds; empty offline.
    pub capture_latency_us: Percentiles,
    /// Bytes of the frames read since start.
    pub bytes: u64,
}

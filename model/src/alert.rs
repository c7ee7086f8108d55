//! Alerts as the engine raised them: what, when, against which threshold, and recovery.

use std::time::SystemTime;

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

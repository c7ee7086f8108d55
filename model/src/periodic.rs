//! What linewatch shows while it runs: the status line every second and the report every
//! `--report-interval`.

use std::time::SystemTime;

use crate::{AlertRecord, Breakdown};

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

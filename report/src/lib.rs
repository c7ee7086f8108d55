//! linewatch's output: the status line, the periodic report, alert lines, exit histograms,
//! `--json` events and the `--summary` document.
//!
//! Data path: the engine fills the plain values of `linewatch-model` (re-exported here, so
//! `linewatch_report::Summary` names the same type as `linewatch_model::Summary`) and never
//! prints; the binary hands them to the renderers here, which turn them into text or JSON:
//!
//! ```text
//! engine ──Report, StatusLine, AlertRecord, Summary, MetricsView──► text, status, alert, json,
//!                                                                    metrics
//! worker ──RequestEvent, ResponseEvent, ConnectionEvent──► sink::JsonLines ──per batch──► stdout
//! ```
//!
//! - [`status::render`]: the live status line;
//! - [`text::report`] and [`text::summary`]: the periodic report and the exit summary;
//! - [`alert`]: the alert lines (their texts are a SPEC contract) and the alert history;
//! - [`json`]: the `--json` event lines and the `--summary` document;
//! - [`sink`]: the `--json` event sink, one per worker (the engine calls it through
//!   `linewatch_model::EventSink`);
//! - [`metrics`]: the OpenMetrics text served to Prometheus (`--metrics`);
//! - [`time`]: how times are printed;
//! - [`colour`]: alerts red, recoveries green, drops red, on a terminal;
//! - [`units`]: counts, byte sizes and rates as a person reads them.
//!
//! Every byte string that came off the wire goes through [`escape`] first, so no ANSI or
//! control byte reaches a terminal, and JSON output is always valid. No function here panics on
//! any input. Like `parser`, this crate forbids unsafe code.

#![forbid(unsafe_code)]

pub mod alert;
pub mod colour;
pub mod escape;
pub mod json;
pub mod metrics;
pub mod sink;
pub mod status;
pub mod text;
pub mod time;
pub mod units;

pub use linewatch_model::*;

//! linewatch's output: the status line, the periodic report, alert lines, exit histograms,
//! `--json` events and the `--summary` document.
//!
//! The engine fills the plain structs in [`model`]; the renderers here turn them into text or
//! JSON:
//!
//! - [`status::render`]: the live status line;
//! - [`text::report`] and [`text::summary`]: the periodic report and the exit summary;
//! - [`alert`]: the alert lines (their texts are a SPEC contract) and the alert history;
//! - [`json`]: the `--json` event lines and the `--summary` document;
//! - [`metrics`]: the OpenMetrics text served to Prometheus (`--metrics`);
//! - [`time`]: how times are printed.
//!
//! Every byte string that came off the wire goes through [`escape`] first, so no ANSI or
//! control byte reaches a terminal, and JSON output is always valid. No function here panics on
//! any input. Like `parser`, this crate forbids unsafe code.

#![forbid(unsafe_code)]

pub mod alert;
pub mod escape;
pub mod json;
pub mod metrics;
pub mod model;
pub mod status;
pub mod text;
pub mod time;
mod units;

pub use model::*;

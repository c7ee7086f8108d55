//! linewatch's output: the status line, the periodic report, alert lines, exit histograms,
//! `--json` events, the `--summary` document and OpenMetrics text.
//!
//! Nothing is implemented here yet (issue "2/5" adds it). Like `parser`, this crate forbids
//! unsafe code.

#![forbid(unsafe_code)]

//! The plain data between linewatch's engine and its outputs, and the one trait per-message
//! events go through. No dependencies beyond `std`.
//!
//! The engine fills these values from its snapshots and hands them on; the report crate
//! renders them as text, JSON and OpenMetrics; the binary wires one to the other. Neither side
//! depends on the other, only on this crate.
//!
//! ```text
//! engine ── Report, StatusLine, AlertRecord, Summary, MetricsView ──► report renderers
//!    └─ worker ── RequestEvent, ResponseEvent, ConnectionEvent ──► EventSink (report: JSON lines)
//! ```
//!
//! - [`TopEntry`]: heavy-hitter entries, the [`Breakdown`] of a span, [`Traffic`];
//! - [`AlertRecord`]: an alert raised and maybe recovered;
//! - [`StatusLine`] and [`Report`]: what is shown while linewatch runs;
//! - [`Summary`]: the exit summary and `--summary` document, with [`Capture`] and [`Guard`];
//! - [`MetricsView`]: what `--metrics` exposes; [`ConsoleView`]: what `--dashboard` draws;
//! - [`RequestEvent`], [`ResponseEvent`], [`ConnectionEvent`]: what a worker hands its
//!   [`EventSink`] (made by a [`SinkFactory`]; the calling contract is on the trait)
//!
//! Strings that came off the wire are kept as raw bytes here and escaped only when rendered.

#![forbid(unsafe_code)]

mod alert;
mod console;
mod counts;
mod events;
mod metrics;
mod periodic;
mod summary;

pub use alert::{AlertKind, AlertRecord};
pub use console::ConsoleView;
pub use counts::{
    Breakdown, Fragments, Retained, SectionHosts, TopByKey, TopByTable, TopEntry, Traffic,
};
pub use events::{ConnectionEvent, EventSink, RequestEvent, ResponseEvent, SinkFactory};
pub use metrics::{MetricsView, TopByMetrics};
pub use periodic::{Report, StatusLine};
pub use summary::{Capture, Guard, LatencyTable, Percentiles, QueueCapture, Summary};

//! linewatch's engine: packets in; counts, alerts and per-message events out, as plain values
//! of `linewatch-model`. The engine never formats or prints: the binary hands what it produces
//! to the report crate's renderers and sinks.
//!
//! Data flow (offline; live capture replaces the source with AF_XDP rings):
//!
//! ```text
//! source::Source ──shard by symmetric flow hash──► N × worker::Worker ──events──► EventSink
//!   (pcap, pcapng)                                     │ counts into CoreDelta    (one per worker,
//!                                                      ▼ (one per epoch)           `--json`)
//!                 epoch::EpochCollector ◄── retired deltas
//!                           │
//!              aggregate::Aggregator ── alert::AlertState ──► aggregate::Output
//!                           │                                  (Report, AlertRecord)
//!                           └── ArcSwap<Snapshot> ──► StatusLine, MetricsView
//! ```
//!
//! The model values are [`linewatch_model::Report`], [`linewatch_model::AlertRecord`],
//! [`linewatch_model::StatusLine`] and [`linewatch_model::MetricsView`] while running,
//! [`linewatch_model::Summary`] at the end, and the request, response and connection events a
//! worker hands to its [`linewatch_model::EventSink`] (made per worker by the
//! [`worker::WorkerConfig`]'s factory; flushed by the batch loop after each batch).
//!
//! Module map: [`source`] reads captures; [`worker`] decodes, reassembles IP fragments
//! ([`defrag`]), tracks flows ([`flow`], [`carry`]) and counts ([`counters`], [`topn`], [`latency`]); [`epoch`] moves per-core deltas to the
//! [`aggregate`] thread, which drives [`alert`] and the port-scan detector ([`scan`]);
//! [`offline`] wires them for `--read` ([`paced`] paces a replay at the capture's speed); [`pipeline`] is what it shares with live capture
//! (starting the aggregator, closing a batch, the span of packet times, the
//! [`pipeline::RunResult`]); [`summary`] turns the final tallies into the model's summary.
//! [`live`] captures from the wire: the XDP program, AF_XDP sockets, pinned queue workers, and
//! the `--mirror` set-up ([`live::mirror`]).

// Unsafe code lives in named places only: the modules below marked `allow(unsafe_code)`
// (memory-mapped capture files; AF_XDP sockets and the BPF loader, system calls), each block
// with its `// SAFETY:` argument. Everywhere else the compiler refuses it.
#![deny(unsafe_code)]

pub mod aggregate;
pub mod alert;
pub mod carry;
pub mod counters;
pub mod cross;
pub mod defrag;
pub mod epoch;
pub mod flow;
pub mod latency;
pub mod live;
pub mod offline;
pub mod owner;
pub mod paced;
pub mod pipeline;
pub mod reorder;
pub mod retention;
pub mod scan;
pub mod slots;
#[allow(unsafe_code)] // memory-mapped capture files
pub mod source;
pub mod summary;
pub mod topn;
pub mod worker;

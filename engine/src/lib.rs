//! linewatch's engine: packets in, counts, alerts and reports out.
//!
//! Data flow (offline; live capture replaces the reader with AF_XDP rings):
//!
//! ```text
//! source::Source ──reader thread: shard by symmetric flow hash──► N × worker::Worker
//!     (pcap, pcapng)                                                 │ counts into CoreDelta
//!                                                                    ▼ (one per epoch)
//!                    epoch::EpochCollector ◄── retired deltas ───────┘
//!                              │
//!                 aggregate::Aggregator ── alert::AlertState ── Output (reports, alerts)
//!                              └── ArcSwap<Snapshot> ──► status line
//! ```
//!
//! Module map: [`source`] reads captures; [`worker`] decodes, tracks flows ([`flow`],
//! [`carry`]) and counts ([`counters`], [`topn`]); [`epoch`] moves per-core deltas to the
//! [`aggregate`] thread, which drives [`alert`]; [`offline`] wires them for `--read`;
//! [`pipeline`] is what it shares with live capture (starting the aggregator, closing a batch,
//! the span of packet times, the [`pipeline::RunResult`]);
//! [`summary`] turns the final tallies into the report crate's summary.
//! [`live`] captures from the wire: the XDP program, AF_XDP sockets, pinned queue workers, and
//! the `--mirror` set-up ([`live::mirror`]).

pub mod aggregate;
pub mod alert;
pub mod carry;
pub mod counters;
pub mod epoch;
pub mod flow;
pub mod guard;
pub mod live;
pub mod offline;
pub mod pipeline;
pub mod source;
pub mod summary;
pub mod topn;
pub mod worker;

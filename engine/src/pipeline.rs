//! What a replay ([`crate::offline`]) and a live capture ([`crate::live::run`]) share: the
//! aggregator they start, the way a worker closes a batch, the span of packet times they
//! report, and the [`RunResult`] both hand back.
//!
//! Contract: a run starts one aggregator thread with `start_aggregator` and gets one
//! [`WorkerEpoch`] per worker; each worker counts frames in batches, and after a batch calls
//! `record_batch` (its service time and count) and `Worker::flush_events` (its `--json`
//! events, to the sink the binary gave it); it notes every packet time with
//! `note_packet_time`, and the run merges the workers' spans with `merge_packet_times`. When every worker has finished its epochs, the aggregator
//! thread ends with the merged counts, which go into the [`RunResult`].
//!
//! ```text
//!  source ────────► worker 1..N ──record_batch, flush_events──► EventSink (--json)
//!  (file reader,       │ deltas, through the WorkerEpoch each got from start_aggregator
//!   parallel scans,    ▼
//!   AF_XDP queues)  aggregator thread ──Aggregated──► RunResult (+ CaptureFigures when live)
//! ```
//!
//! This module depends on the engine's parts and on the live capture's counter types, never on
//! the two runners: `offline` and `live::run` both import it, and neither imports the other.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::aggregate::{Aggregated, Aggregator, AggregatorConfig, Output, Snapshot};
use crate::counters::Counter;
use crate::cross::CrossFigures;
use crate::epoch::{EpochCollector, EpochShared, WorkerEpoch};
use crate::live::xdp::XdpCounters;
use crate::live::xsk::XskStats;
use crate::scan::GuardInfo;
use crate::source::SourceEnd;
use crate::worker::Worker;

/// What a run produced: a replay's, or a live capture's.
#[derive(Debug)]
pub struct RunResult {
    /// The merged counts and alerts.
    pub aggregated: Aggregated,
    /// How the source ended.
    pub end: SourceEnd,
    /// What was read.
    pub source: String,
    /// Packets skipped for an unsupported link type.
    pub unsupported_link: u64,
    /// Records skipped as unreadable although the file's framing held (see `source`).
    pub unreadable_records: u64,
    /// Time of the first packet and the latest packet time seen, ns since the Unix epoch.
    pub packet_times: Option<(u64, u64)>,
    /// The replay was stopped early (Ctrl-C, SIGTERM).
    pub interrupted: bool,
    /// Live capture's figures (kernel drops, XDP counters, worker CPU); `None` for a replay.
    pub capture: Option<CaptureFigures>,
    /// The connection guard's settings.
    pub guard: GuardInfo,
}

/// Per-queue figures at the end of a live run (or of the bench rig's rxdrop).
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueFigures {
    /// The rx queue.
    pub queue: u32,
    /// The core its worker ran on, if pinned.
    pub core: Option<usize>,
    /// Frames the worker received.
    pub frames: u64,
    /// The kernel's counters for the socket.
    pub stats: XskStats,
    /// CPU time of the worker thread, ns.
    pub cpu_ns: u64,
    /// Responses this queue's worker could not pair with a request (see
    /// [`crate::worker::Worker::unmatched_responses`]).
    pub unmatched_responses: u64,
    /// Segments the worker handed to the workers owning their flows, and took from others
    /// ([`crate::cross`]; zero where a connection's directions share a queue).
    pub crossed: CrossFigures,
}

/// Capture figures at the end of a live run.
#[derive(Debug, Clone, Default)]
pub struct CaptureFigures {
    /// The interface.
    pub interface: String,
    /// XDP mode (`native`, `generic`).
    pub mode: String,
    /// Zero-copy sockets.
    pub zero_copy: bool,
    /// The XDP program's counters.
    pub xdp: XdpCounters,
    /// Per queue.
    pub queues: Vec<QueueFigures>,
    /// Wall time from the first socket ready to stop, ns.
    pub wall_ns: u64,
    /// Copies lost before capture on linewatch's own mirror veth (set by the command, which
    /// owns the mirror): counted in [`CaptureFigures::dropped`].
    pub copy_dropped: u64,
    /// How a connection's two directions were kept on one queue (and so one worker): set by
    /// the command, which knows the set-up (one queue, linewatch's mirror steering, symmetric
    /// RSS, or nothing).
    pub pairing: String,
}

impl CaptureFigures {
    /// Frames the kernel dropped before linewatch saw them.
    pub fn dropped(&self) -> u64 {
        self.queues.iter().map(|q| q.stats.dropped()).sum::<u64>() + self.copy_dropped
    }
}

/// Starts the aggregator thread over `workers` epoch slots and returns each worker's end of
/// its slot, in order, with the thread. `extend` adds what only some runs have (a live run's
/// kernel-drop gauge and blocklist); a replay passes [`std::convert::identity`].
pub(crate) fn start_aggregator(
    workers: usize,
    config: &AggregatorConfig,
    output: Box<dyn Output>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    extend: impl FnOnce(Aggregator) -> Aggregator,
) -> (Vec<WorkerEpoch>, JoinHandle<Aggregated>) {
    let shared: Vec<Arc<EpochShared>> = (0..workers).map(|_| EpochShared::new()).collect();
    let aggregator = extend(Aggregator::new(
        EpochCollector::new(shared.clone()),
        config.clone(),
        snapshot,
        output,
    ));
    let handle = thread::Builder::new()
        .name("linewatch-aggregator".into())
        .spawn(move || aggregator.run())
        .expect("spawning the aggregator thread");
    let epochs = shared
        .into_iter()
        .map(|slot| WorkerEpoch::new(slot, handle.thread().clone()))
        .collect();
    (epochs, handle)
}

/// Closes a batch that `worker` started counting at `started`: records the batch's service
/// time (at least 1 ns, so that a batch too quick for the clock still shows) and counts it.
#[inline]
pub(crate) fn record_batch(worker: &mut Worker, started: Instant) {
    let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let delta = worker.delta_mut();
    delta.tally.batch_service_ns.saturating_record(ns.max(1));
    delta.add(Counter::Batches, 1);
}

/// Notes a packet time in `span`: (first packet time, latest packet time). "Latest" is the
/// running maximum, since a capture's timestamps may step back a little.
#[inline]
pub(crate) fn note_packet_time(span: &mut Option<(u64, u64)>, ts_ns: u64) {
    let (_, latest) = span.get_or_insert((ts_ns, ts_ns));
    *latest = (*latest).max(ts_ns);
}

/// The span of packet times of two workers together: the earlier first, the later latest.
pub(crate) fn merge_packet_times(
    a: Option<(u64, u64)>,
    b: Option<(u64, u64)>,
) -> Option<(u64, u64)> {
    match (a, b) {
        (Some((a0, a1)), Some((b0, b1))) => Some((a0.min(b0), a1.max(b1))),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_keeps_the_first_time_and_the_latest() {
        let mut span = None;
        for ts in [5, 9, 7, 12, 3] {
            note_packet_time(&mut span, ts);
        }
        // The first packet's time stays first even when a later one steps back before it.
        assert_eq!(span, Some((5, 12)));
    }

    #[test]
    fn spans_merge_to_the_earliest_first_and_the_latest_last() {
        assert_eq!(merge_packet_times(None, None), None);
        assert_eq!(merge_packet_times(Some((4, 8)), None), Some((4, 8)));
        assert_eq!(merge_packet_times(None, Some((4, 8))), Some((4, 8)));
        assert_eq!(merge_packet_times(Some((4, 8)), Some((2, 6))), Some((2, 8)));
        assert_eq!(merge_packet_times(Some((1, 9)), Some((2, 6))), Some((1, 9)));
    }
}

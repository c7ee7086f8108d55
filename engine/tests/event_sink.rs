//! A worker's per-message events: one model value per request, response and new connection it
//! counts, handed to its own sink, which is flushed only when the batch loop says so. Replays a
//! corpus capture through one worker with a recording sink and holds the events against the
//! worker's own counters.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use linewatch_engine::counters::{CoreDelta, Counter};
use linewatch_engine::source::open_capture;
use linewatch_engine::worker::{Worker, WorkerConfig};
use linewatch_model::{ConnectionEvent, EventSink, RequestEvent, ResponseEvent, SinkFactory};

/// 1000 requests over IPv6 loopback, one response missing.
const CAPTURE: &str = "pcaps/zeek__1000-requests-one-dropped-response.pcap";

/// Frames per batch, as the replay's batches.
const BATCH: usize = 256;

/// What a recording sink saw.
#[derive(Debug, Default)]
struct Log {
    requests: u64,
    responses: u64,
    unanswered: u64,
    connections: u64,
    /// Events handed over since the last flush.
    pending: u64,
    /// Events per flush, in order.
    flushed: Vec<u64>,
    /// Requests with an empty method or section (a model value the engine filled badly).
    empty_fields: u64,
}

#[derive(Debug)]
struct Recording(Arc<Mutex<Log>>);

impl Recording {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl EventSink for Recording {
    fn request(&mut self, e: &RequestEvent<'_>) {
        let mut log = self.log();
        log.requests += 1;
        log.pending += 1;
        if e.method.is_empty() || e.section.is_empty() {
            log.empty_fields += 1;
        }
    }

    fn response(&mut self, e: &ResponseEvent) {
        let mut log = self.log();
        log.responses += 1;
        log.pending += 1;
        if e.latency_us.is_none() {
            log.unanswered += 1;
        }
    }

    fn connection(&mut self, _: &ConnectionEvent) {
        let mut log = self.log();
        log.connections += 1;
        log.pending += 1;
    }

    fn flush(&mut self) {
        let mut log = self.log();
        let n = std::mem::take(&mut log.pending);
        log.flushed.push(n);
    }
}

/// The capture, or `None` when the corpus is absent outside CI (in CI: a failure).
fn capture() -> Option<PathBuf> {
    linewatch_testkit::corpus::file(CAPTURE)
}

/// Counts the capture with one worker, flushing its events after every [`BATCH`] frames;
/// returns the worker's delta and the number of batches.
fn replay(path: &Path, config: &WorkerConfig) -> (Box<CoreDelta>, usize) {
    let mut source = open_capture(path).unwrap_or_else(|e| panic!("{e}"));
    let mut worker = Worker::new(config, CoreDelta::new(0));
    let (mut in_batch, mut batches) = (0, 0);
    while let Some(p) = source.next_packet() {
        worker.process_frame(p.ts_ns, p.link, p.data, p.wire_len);
        in_batch += 1;
        if in_batch == BATCH {
            worker.flush_events();
            (in_batch, batches) = (0, batches + 1);
        }
    }
    if in_batch > 0 {
        worker.flush_events();
        batches += 1;
    }
    (worker.swap_delta(CoreDelta::new(0)), batches)
}

#[test]
fn every_message_counted_is_one_event_flushed_only_between_batches() {
    let Some(path) = capture() else { return };
    let log = Arc::new(Mutex::new(Log::default()));
    let shared = Arc::clone(&log);
    let config = WorkerConfig {
        events: Some(SinkFactory::new(move || {
            Box::new(Recording(Arc::clone(&shared)))
        })),
        ..WorkerConfig::default()
    };
    let (delta, batches) = replay(&path, &config);
    let log = log.lock().unwrap_or_else(PoisonError::into_inner);

    assert_eq!(log.requests, 1000);
    assert_eq!(log.requests, delta.get(Counter::Requests));
    assert_eq!(log.responses, delta.get(Counter::Responses));
    assert_eq!(log.unanswered, delta.get(Counter::UnmatchedResponses));
    assert_eq!(log.connections, delta.get(Counter::NewConnections));
    assert!(log.connections > 0, "{log:?}");
    assert_eq!(log.empty_fields, 0);
    // The worker flushes only when told: once per batch, and nothing is left after the last.
    assert_eq!(log.flushed.len(), batches);
    assert_eq!(log.pending, 0);
    assert_eq!(
        log.flushed.iter().sum::<u64>(),
        log.requests + log.responses + log.connections
    );

    // The sink is a bystander: the counts are the same without one.
    let (plain, _) = replay(&path, &WorkerConfig::default());
    for c in [
        Counter::Packets,
        Counter::Requests,
        Counter::Responses,
        Counter::NewConnections,
        Counter::UnmatchedResponses,
        Counter::Malformed,
    ] {
        assert_eq!(plain.get(c), delta.get(c), "{c:?}");
    }
}

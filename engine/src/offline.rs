//! Offline replay: a capture file through the same workers and aggregator as live capture.
//!
//! Contract: [`run`] delivers every packet of the source to exactly one worker, in file
//! order per worker, and returns when every packet is counted and every epoch merged. The
//! answer is the same on every run and for any worker count: flows are sharded by a hash that
//! is the same in both directions, and epochs follow packet time.
//!
//! Threads: the caller's thread reads the file and shards packets into per-worker batches;
//! N worker threads count; one aggregator thread merges. Batches travel over bounded channels
//! and come back empty for reuse, so a steady replay allocates nothing per packet and at most
//! [`BATCHES_PER_WORKER`] batches per worker are in flight.
//!
//! Epochs: the reader keeps the running maximum of packet seconds (a capture's timestamps may
//! step back a little; such packets count in the current second). When it moves on, the
//! reader sends every worker its batch of the old second, even an empty one: that tells each
//! worker to retire the old epoch, so the aggregator can close it (see [`crate::epoch`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender};
use linewatch_parser::wire::{decode_frame, LinkType};

use crate::aggregate::{Aggregated, Aggregator, AggregatorConfig, Output, Snapshot};
use crate::counters::{CoreDelta, Counter};
use crate::epoch::{EpochCollector, EpochShared, WorkerEpoch};
use crate::flow::{Endpoint, FlowKey};
use crate::source::{Source, SourceEnd};
use crate::worker::{Worker, WorkerConfig};

/// Frames per batch: enough to amortise the channel hand-off (~100 ns) to well under a
/// nanosecond per frame, small enough to keep a batch in L2.
pub const BATCH_FRAMES: usize = 256;

/// Bytes per batch: 256 full-size Ethernet frames and room for jumbo ones. A single frame
/// longer than this (a GRO super-packet in a capture) is cut to it.
pub const BATCH_BYTES: usize = 512 * 1024;

/// Batches per worker in flight (being filled, queued, being counted).
pub const BATCHES_PER_WORKER: usize = 8;

/// Packets between two looks at the stop flag.
const STOP_CHECK_EVERY: u32 = 4096;

/// Nanoseconds per second.
const NS_PER_SEC: u64 = 1_000_000_000;

/// Engine settings for a replay.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Per-worker settings.
    pub worker: WorkerConfig,
    /// Aggregator settings.
    pub aggregator: AggregatorConfig,
}

/// What a replay produced.
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
    /// Time of the first packet and the latest packet time seen, ns since the Unix epoch.
    pub packet_times: Option<(u64, u64)>,
    /// The replay was stopped early (Ctrl-C, SIGTERM).
    pub interrupted: bool,
    /// Live capture's figures (kernel drops, XDP counters, worker CPU); `None` for a replay.
    pub capture: Option<crate::live::run::CaptureFigures>,
    /// The connection guard's settings.
    pub guard: crate::guard::GuardInfo,
}

#[derive(Debug, Clone, Copy)]
struct FrameRef {
    ts_ns: u64,
    start: usize,
    len: usize,
    wire_len: u32,
    link: LinkType,
}

#[derive(Debug)]
struct Batch {
    epoch: u64,
    bytes: Vec<u8>,
    frames: Vec<FrameRef>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            epoch: 0,
            bytes: Vec::with_capacity(BATCH_BYTES),
            frames: Vec::with_capacity(BATCH_FRAMES),
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.frames.len() < BATCH_FRAMES && self.bytes.len() + len <= BATCH_BYTES
    }
}

struct WorkerLink {
    full: Sender<Batch>,
    empty: Receiver<Batch>,
    current: Batch,
}

/// Replays `source` through `config.workers` workers; events go to `output`, `--json` lines
/// to stdout, snapshots to `snapshot`. Setting `stop` ends the replay early (what was read so
/// far is still counted and merged).
pub fn run(
    mut source: Box<dyn Source + Send>,
    config: &EngineConfig,
    output: Box<dyn Output>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stop: &AtomicBool,
) -> RunResult {
    let workers = config.workers.max(1);
    let shared: Vec<Arc<EpochShared>> = (0..workers).map(|_| EpochShared::new()).collect();
    let aggregator = Aggregator::new(
        EpochCollector::new(shared.clone()),
        config.aggregator.clone(),
        snapshot,
        output,
    );
    let aggregator = thread::Builder::new()
        .name("linewatch-aggregator".into())
        .spawn(move || aggregator.run())
        .expect("spawning the aggregator thread");
    let aggregator_thread = aggregator.thread().clone();

    let mut links = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for (i, shared) in shared.into_iter().enumerate() {
        let (full_tx, full_rx) = bounded::<Batch>(BATCHES_PER_WORKER);
        let (empty_tx, empty_rx) = bounded::<Batch>(BATCHES_PER_WORKER);
        for _ in 1..BATCHES_PER_WORKER {
            // Cannot fail: the channel has room for all of them.
            let _ = empty_tx.send(Batch::new());
        }
        let worker_config = config.worker.clone();
        let epoch = WorkerEpoch::new(shared, aggregator_thread.clone());
        let handle = thread::Builder::new()
            .name(format!("linewatch-worker-{i}"))
            .spawn(move || work(worker_config, epoch, full_rx, empty_tx))
            .expect("spawning a worker thread");
        handles.push(handle);
        links.push(WorkerLink {
            full: full_tx,
            empty: empty_rx,
            current: Batch::new(),
        });
    }

    let mut epoch = 0u64;
    let mut packet_times: Option<(u64, u64)> = None;
    let mut interrupted = false;
    let mut until_check = STOP_CHECK_EVERY;
    while let Some(p) = source.next_packet() {
        until_check -= 1;
        if until_check == 0 {
            until_check = STOP_CHECK_EVERY;
            // Relaxed: the flag carries no data, only "stop soon".
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
        }
        let times = packet_times.get_or_insert((p.ts_ns, p.ts_ns));
        times.1 = times.1.max(p.ts_ns);
        let second = p.ts_ns / NS_PER_SEC;
        if second > epoch {
            if epoch != 0 {
                for link in &mut links {
                    send(link);
                }
            }
            epoch = second;
            for link in &mut links {
                link.current.epoch = epoch;
            }
        }
        let w = if workers == 1 {
            0
        } else {
            shard(p.link, p.data, workers)
        };
        let link = &mut links[w];
        let len = p.data.len().min(BATCH_BYTES);
        if !link.current.fits(len) {
            send(link);
        }
        let start = link.current.bytes.len();
        link.current.bytes.extend_from_slice(&p.data[..len]);
        link.current.frames.push(FrameRef {
            ts_ns: p.ts_ns,
            start,
            len,
            wire_len: p.wire_len,
            link: p.link,
        });
    }
    for link in &mut links {
        send(link);
    }
    drop(links);
    for handle in handles {
        // A worker that panicked has aborted the process (panic = "abort"); nothing to add.
        let _ = handle.join();
    }
    let aggregated = aggregator
        .join()
        .expect("the aggregator thread ended normally");
    RunResult {
        aggregated,
        end: source.end(),
        source: source.describe(),
        unsupported_link: source.unsupported_link_packets(),
        packet_times,
        interrupted,
        capture: None,
        guard: crate::guard::GuardInfo::of(&config.aggregator.scan, None),
    }
}

/// Sends the link's current batch to its worker and starts a new one with the same epoch.
fn send(link: &mut WorkerLink) {
    let epoch = link.current.epoch;
    // Blocks while the worker has all batches: backpressure, nothing dropped offline.
    let fresh = link.empty.recv().unwrap_or_else(|_| Batch::new());
    let mut full = std::mem::replace(&mut link.current, fresh);
    full.epoch = epoch;
    link.current.epoch = epoch;
    // A worker only hangs up by panicking, which aborts the process (panic = "abort").
    let _ = link.full.send(full);
}

/// The worker a frame belongs to: the same for both directions of a flow.
fn shard(link: LinkType, frame: &[u8], workers: usize) -> usize {
    match decode_frame(link, frame) {
        Ok(seg) => {
            let (key, _) = FlowKey::of(
                seg.vlan_ids[0],
                Endpoint::new(seg.src, seg.src_port),
                Endpoint::new(seg.dst, seg.dst_port),
            );
            // The remainder is below `workers`, so it fits a usize.
            usize::try_from(key.shard_hash() % workers as u64).unwrap_or(0)
        }
        Err(_) => 0,
    }
}

/// A worker thread: counts batches until the reader hangs up.
fn work(config: WorkerConfig, mut epoch: WorkerEpoch, full: Receiver<Batch>, empty: Sender<Batch>) {
    let mut worker = Worker::new(&config, CoreDelta::new(0));
    let stdout = std::io::stdout();
    for mut batch in full {
        epoch.enter(&mut worker, batch.epoch);
        if !batch.frames.is_empty() {
            let started = Instant::now();
            for f in &batch.frames {
                worker.process_frame(
                    f.ts_ns,
                    f.link,
                    &batch.bytes[f.start..f.start + f.len],
                    f.wire_len,
                );
            }
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let delta = worker.delta_mut();
            delta.tally.batch_service_ns.saturating_record(ns.max(1));
            delta.add(Counter::Batches, 1);
            worker.take_json(&mut |lines| {
                // A closed stdout (`| head`) ends the output, not the count.
                let _ = stdout.lock().write_all(lines);
            });
        }
        batch.bytes.clear();
        batch.frames.clear();
        // The reader may have finished and hung up: then the batch is simply dropped.
        let _ = empty.send(batch);
    }
    epoch.finish(&mut worker);
}

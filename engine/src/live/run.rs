//! Live capture through the engine: one AF_XDP socket and one worker thread per rx queue,
//! each worker pinned to its own core, the same epochs and aggregator as a replay.
//!
//! Clock: epochs follow wall time. Each worker reads one clock per received batch (CLOCK_MONOTONIC,
//! offset once to Unix time so reports and alerts carry real times); that reading is every
//! frame's timestamp in the batch and moves the worker's epoch. Epochs only move forward because
//! the clock is monotonic, which the epoch protocol requires. The offset is exact and handed to
//! each worker, so packet time minus offset is CLOCK_MONOTONIC, the clock a traffic generator
//! stamps frames with: capture latency is that minus the stamp (see [`crate::worker`]).
//!
//! Idle policy (explicit, because it decides both CPU use and loss): a worker never busy-spins
//! on an empty ring by default (on these 2-core machines a spinning worker steals the core the
//! kernel needs to deliver packets; measured slower than sleeping). [`IdlePolicy::Hybrid`]:
//! after an empty ring, sleep [`IDLE_SLEEP`] and look again, so a busy queue is drained in
//! batches without a syscall per packet; after [`IDLE_BLOCK_AFTER`] without a frame, block in
//! `poll()` on the socket, which wakes on the next frame and costs nothing while the link is
//! quiet. Every wait ends within [`MAX_WAIT`] so a quiet worker still moves its epoch each
//! second and sees the stop flag. What a sleep cannot bound — the host not running the vCPU
//! for a few hundred ms — the rings absorb (see [`super::xsk`]).
//!
//! Receiving, refilling and waking the kernel are [`super::xsk`]'s (`QueueRx::recv_batch`, the
//! same for the bench rig's rxdrop); the aggregator, the batch bookkeeping and the
//! [`RunResult`] are a replay's too ([`crate::pipeline`]).
//!
//! IP fragments: each worker reassembles the fragments of its own queue ([`crate::defrag`],
//! with its bounds). The XDP program takes every fragment of a datagram it takes (its fragment
//! policy: `engine/bpf/linewatch.bpf.c`), to the socket of the queue the fragment came in on,
//! and RSS hashes a fragment by its address pair alone (a later fragment has no ports), so a
//! datagram's fragments all reach one worker. On linewatch's mirror veth (one queue unless
//! `--workers`) that worker owns every flow. On a multi-queue NIC the fragments' queue need
//! not be the flow's: the worker that reassembles the datagram counts a request it carries
//! under a flow it sees from the middle (a segment that starts like a request opens one), the
//! response reaches the flow's own worker and counts under `unmatched_responses`, and that
//! worker sees a sequence gap where the datagram's bytes were; a head split between the
//! datagram and a later segment is lost there. Handing a datagram to the worker that owns its
//! flow is the planned fix, the same as for a flow's two directions.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use linewatch_parser::wire::LinkType;

use super::blocklist::Blocklist;
use super::error::LiveError;
use super::sys::{self, allowed_cores, monotonic_ns, thread_cpu_ns, NS_PER_SEC};
use super::xdp::{CaptureOptions, RedirectPorts, XdpMode, XdpProgram, XdpRole};
use super::xsk::{self, QueueRx};
use crate::aggregate::{AggregatorConfig, Output, Snapshot};
use crate::counters::CoreDelta;
use crate::cross::{self, CrossFigures, Crossing};
use crate::epoch::WorkerEpoch;
use crate::pipeline::{
    merge_packet_times, note_packet_time, record_batch, start_aggregator, CaptureFigures,
    QueueFigures, RunResult,
};
use crate::scan::{Blocker, GuardInfo};
use crate::source::SourceEnd;
use crate::worker::{Worker, WorkerConfig};

/// Frames taken from the rx ring per batch.
pub const BATCH: usize = 256;

// A worker notes the capture latency of every stamped frame of a batch before the flush.
const _: () = assert!(BATCH <= crate::worker::CAPTURE_PENDING);

/// Sleep after an empty ring while traffic flows.
pub const IDLE_SLEEP: Duration = Duration::from_micros(50);

/// Quiet time after which a worker blocks in `poll()` instead of sleeping.
pub const IDLE_BLOCK_AFTER: Duration = Duration::from_millis(10);

/// Longest wait before a worker looks at its clock and the stop flag again.
pub const MAX_WAIT: Duration = Duration::from_millis(100);

/// Longest wait of a worker in a crossing before it looks at its lanes again: what other
/// workers hand it waits at most this long while its own queue is quiet.
pub const CROSS_MAX_WAIT: Duration = Duration::from_millis(1);

/// What a worker does when its rx ring is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdlePolicy {
    /// Sleep 50 µs between looks while traffic flows; block in `poll()` after 10 ms of quiet.
    #[default]
    Hybrid,
    /// Block in `poll()` whenever the ring is empty (a wake-up per burst).
    Poll,
    /// Spin on the ring (for comparison; uses a whole core).
    Spin,
}

impl std::str::FromStr for IdlePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "hybrid" => Ok(IdlePolicy::Hybrid),
            "poll" => Ok(IdlePolicy::Poll),
            "spin" => Ok(IdlePolicy::Spin),
            _ => Err(format!("'{s}' is not an idle policy (hybrid, poll, spin)")),
        }
    }
}

/// Live capture settings.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// The interface AF_XDP runs on.
    pub interface: String,
    /// What the summary calls the source (`eth0`, `eth0 (mirrored)`).
    pub label: String,
    /// Rx queues to capture (default: all).
    pub queues: Option<Vec<u32>>,
    /// Core of each queue's worker, in queue order (default: see [`default_cores`]).
    pub cores: Option<Vec<usize>>,
    /// What the XDP program redirects.
    pub ports: RedirectPorts,
    /// What the XDP program does beyond redirecting `ports`: drop the rest (linewatch's own
    /// mirror veth), check the blocklist, redirect every pure SYN.
    pub capture: CaptureOptions,
    /// `--block-scanners`: where flagged port scanners' SYNs are dropped. `None`: nowhere.
    pub block: Option<BlockOn>,
    /// Fill/rx ring entries and UMEM frames per queue (a power of two); `None`: as many as
    /// fit [`xsk::DEFAULT_UMEM_BYTES`].
    pub ring: Option<u32>,
    /// Ask for zero-copy sockets (fails where the driver cannot).
    pub zero_copy: bool,
    /// Attach in generic (SKB) mode instead of trying native first.
    pub generic: bool,
    /// Idle policy of the workers.
    pub idle: IdlePolicy,
    /// Hand each TCP segment to the worker that owns its flow ([`crate::cross`]): for queues
    /// that do not keep a connection's two directions together. Ignored on one queue.
    pub cross: bool,
    /// Per-worker engine settings.
    pub worker: WorkerConfig,
    /// Aggregator settings.
    pub aggregator: AggregatorConfig,
}

/// Where `--block-scanners` drops a flagged source's SYNs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockOn {
    /// In the capture program itself (`--interface`: the monitored NIC is the capture
    /// interface; `capture.block` must be set).
    Capture,
    /// In `linewatch_block`, attached to this interface (`--mirror`: the real NIC, while capture
    /// runs on linewatch's veth). Detached like the capture program, on every exit path.
    Nic(String),
}

/// The XDP blocklist as the aggregator's [`Blocker`].
struct XdpBlocker(Blocklist);

impl Blocker for XdpBlocker {
    fn block(&mut self, source: std::net::IpAddr) -> Result<(), String> {
        self.0.insert(source).map_err(|e| e.to_string())
    }

    fn unblock(&mut self, source: std::net::IpAddr) -> Result<(), String> {
        self.0.remove(source).map(|_| ()).map_err(|e| e.to_string())
    }

    fn dropped(&self) -> u64 {
        self.0.dropped()
    }
}

/// What is running, for the "capturing on" line.
#[derive(Debug, Clone)]
pub struct Ready {
    /// The interface AF_XDP runs on.
    pub interface: String,
    /// (queue, core) per worker.
    pub queues: Vec<(u32, Option<usize>)>,
    /// XDP mode.
    pub mode: XdpMode,
    /// Zero-copy sockets.
    pub zero_copy: bool,
    /// UMEM bytes per queue.
    pub umem_bytes: usize,
    /// Notices for the user: a generic-mode fallback, a worker that could not be pinned to
    /// its core. The engine prints nothing itself; the caller shows these.
    pub notices: Vec<String>,
}

/// Workers' cores when none are given: each queue's worker on its own core, skipping the first
/// allowed core while there are more (it usually takes the interrupts and the kernel's packet
/// work), wrapping around when there are more queues than cores.
pub fn default_cores(queues: usize) -> Vec<usize> {
    let allowed = allowed_cores();
    if allowed.is_empty() {
        return Vec::new();
    }
    let skip = usize::from(allowed.len() > 1);
    (0..queues)
        .map(|i| allowed[(i + skip) % allowed.len()])
        .collect()
}

/// Wall clock for epochs and frame times: CLOCK_MONOTONIC, offset once to Unix time.
#[derive(Debug, Clone, Copy)]
struct LiveClock {
    /// Unix time minus CLOCK_MONOTONIC at start, in ns (wrapping, so that a clock set before
    /// 1970 still gives monotonic times).
    offset_ns: u64,
}

impl LiveClock {
    fn new() -> LiveClock {
        let monotonic = monotonic_ns();
        let unix_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        LiveClock {
            offset_ns: unix_ns.wrapping_sub(monotonic),
        }
    }

    /// Now, ns since the Unix epoch.
    fn now_ns(&self) -> u64 {
        monotonic_ns().wrapping_add(self.offset_ns)
    }

    /// What `now_ns` adds to CLOCK_MONOTONIC: `now_ns().wrapping_sub(offset)` is exactly it.
    fn monotonic_offset_ns(&self) -> u64 {
        self.offset_ns
    }
}

/// Validates queues and cores, attaches XDP, opens the sockets, runs until `stop` is set,
/// tears everything down, and returns the counts. `on_ready` runs once capture is live.
pub fn run(
    config: &LiveConfig,
    output: Box<dyn Output>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stop: &AtomicBool,
    on_ready: impl FnOnce(&Ready),
) -> Result<RunResult, LiveError> {
    sys::check_privileges()?;
    let ifname = config.interface.as_str();
    let ifindex = sys::ifindex(ifname)?;
    let available = sys::rx_queues(ifname);
    let queues: Vec<u32> = match &config.queues {
        Some(list) => {
            for &q in list {
                if q >= available {
                    return Err(LiveError(format!(
                        "queue {q} is out of range: {ifname} has {available} rx queue{} (0-{})",
                        if available == 1 { "" } else { "s" },
                        available - 1
                    )));
                }
            }
            list.clone()
        }
        None => (0..available).collect(),
    };
    let cores: Vec<Option<usize>> = match &config.cores {
        Some(list) => {
            if list.len() != queues.len() {
                return Err(LiveError(format!(
                    "--cores lists {} core{} for {} queue{}: give one core per queue",
                    list.len(),
                    if list.len() == 1 { "" } else { "s" },
                    queues.len(),
                    if queues.len() == 1 { "" } else { "s" },
                )));
            }
            let allowed = allowed_cores();
            if let Some(c) = list.iter().find(|c| !allowed.contains(c)) {
                return Err(LiveError(format!(
                    "core {c} is not available to linewatch (allowed: {})",
                    allowed
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                )));
            }
            list.iter().copied().map(Some).collect()
        }
        None => default_cores(queues.len()).into_iter().map(Some).collect(),
    };
    let memlock = sys::raise_memlock();
    let frame = xsk::frame_size(sys::mtu(ifname).unwrap_or(1500));
    let ring = config.ring.unwrap_or_else(|| xsk::default_ring(frame));

    let (program, notice) = XdpProgram::attach(
        ifname,
        ifindex,
        &config.ports,
        config.capture.clone(),
        config.generic,
    )?;
    let mut notices: Vec<String> = notice.into_iter().collect();
    // The block program on the real NIC (--mirror), and the blocklist the aggregator fills.
    let (block_program, blocker, blocking_on) = match &config.block {
        None => (None, None, None),
        Some(BlockOn::Capture) => (None, Some(program.blocklist()?), Some(ifname.to_owned())),
        Some(BlockOn::Nic(nic)) => {
            let nic_index = sys::ifindex(nic)?;
            let (program, notice) = XdpProgram::attach_role(
                XdpRole::Block,
                nic,
                nic_index,
                &RedirectPorts::List(Vec::new()),
                CaptureOptions::default(),
                config.generic,
            )?;
            notices.extend(notice);
            let list = program.blocklist()?;
            (Some(program), Some(list), Some(nic.clone()))
        }
    };
    let mut owners = Vec::with_capacity(queues.len());
    let mut receivers = Vec::with_capacity(queues.len());
    for &q in &queues {
        let (owner, rx) = xsk::open(ifname, q, ring, frame, config.zero_copy, memlock)?;
        owners.push(owner);
        receivers.push(rx);
    }

    let drops = Arc::new(AtomicU64::new(0));
    let clock = LiveClock::new();
    let started = Instant::now();
    let mut ready = Ready {
        interface: ifname.to_owned(),
        queues: queues.iter().copied().zip(cores.iter().copied()).collect(),
        mode: program.mode(),
        zero_copy: config.zero_copy,
        umem_bytes: frame * ring as usize,
        notices,
    };

    // Queues that split connections: every worker hands segments to the flow's owner.
    let workers = queues.len();
    let mut crossings: Vec<Option<Crossing>> = if config.cross && workers > 1 {
        cross::crossings(workers).into_iter().map(Some).collect()
    } else {
        (0..workers).map(|_| None).collect()
    };
    let finished = Arc::new(AtomicUsize::new(0));

    let (epochs, aggregator) = start_aggregator(
        queues.len(),
        &config.aggregator,
        output,
        snapshot,
        |aggregator| {
            let aggregator = aggregator.with_drops(Arc::clone(&drops));
            match blocker {
                Some(list) => aggregator.with_blocker(Box::new(XdpBlocker(list))),
                None => aggregator,
            }
        },
    );
    let (aggregated, results) = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(receivers.len());
        // Each worker says whether it could be pinned before it starts counting, so that
        // capture is announced with what really happened.
        let (pinning, pinned) = mpsc::channel();
        for (((rx, epoch), core), crossing) in receivers
            .into_iter()
            .zip(epochs)
            .zip(cores.iter().copied())
            .zip(crossings.drain(..))
        {
            let job = QueueJob {
                crossing,
                finished: Arc::clone(&finished),
                workers,
                rx,
                core,
                config: config.worker.clone(),
                epoch,
                clock,
                stop,
                idle: config.idle,
                drops: Arc::clone(&drops),
                pinning: pinning.clone(),
            };
            let handle = thread::Builder::new()
                .name(format!("linewatch-q{}", job.rx.queue))
                .spawn_scoped(scope, move || queue_worker(job))
                .expect("spawning a worker thread");
            handles.push(handle);
        }
        drop(pinning);
        // Ends when every worker has answered (or ended: its sender is dropped with it).
        ready.notices.extend(pinned.iter().flatten());
        on_ready(&ready);
        let results: Vec<WorkerResult> = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect();
        let aggregated = aggregator
            .join()
            .expect("the aggregator thread ended normally");
        (aggregated, results)
    });
    let wall_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);

    let mut figures = CaptureFigures {
        interface: ifname.to_owned(),
        mode: program.mode().to_string(),
        zero_copy: config.zero_copy,
        xdp: program.counters(),
        queues: Vec::with_capacity(results.len()),
        wall_ns,
        pairing: String::new(),
        copy_dropped: 0,
    };
    let mut packet_times: Option<(u64, u64)> = None;
    for r in &results {
        figures.queues.push(QueueFigures {
            queue: r.queue,
            core: r.core,
            frames: r.frames,
            stats: xsk::stats(r.fd),
            cpu_ns: r.cpu_ns,
            unmatched_responses: r.unmatched_responses,
            crossed: r.crossed,
        });
        packet_times = merge_packet_times(packet_times, r.times);
    }
    // Sockets first (they hold the UMEM), then the program (closing its link detaches it).
    drop(owners);
    drop(program);
    drop(block_program);
    Ok(RunResult {
        aggregated,
        end: SourceEnd::Complete,
        source: config.label.clone(),
        unsupported_link: 0,
        unreadable_records: 0,
        packet_times,
        interrupted: false,
        capture: Some(figures),
        guard: GuardInfo::of(&config.aggregator.scan, blocking_on),
    })
}

#[derive(Debug, Default)]
struct WorkerResult {
    queue: u32,
    core: Option<usize>,
    fd: i32,
    frames: u64,
    cpu_ns: u64,
    times: Option<(u64, u64)>,
    unmatched_responses: u64,
    crossed: CrossFigures,
}

/// What one queue's worker thread is given.
struct QueueJob<'a> {
    /// The queue's socket.
    rx: QueueRx,
    /// The core to pin the thread to, if any.
    core: Option<usize>,
    config: WorkerConfig,
    epoch: WorkerEpoch,
    clock: LiveClock,
    /// Set when the capture is to end.
    stop: &'a AtomicBool,
    idle: IdlePolicy,
    /// Kernel drops of every queue, for the status line.
    drops: Arc<AtomicU64>,
    /// Where the worker says, once, whether it could be pinned (`Some(notice)` if not).
    pinning: mpsc::Sender<Option<String>>,
    /// Its end of the crossing, on queues that split connections.
    crossing: Option<Crossing>,
    /// Workers past their last frame (a crossing ends when all are, and their lanes empty).
    finished: Arc<AtomicUsize>,
    /// How many workers there are.
    workers: usize,
}

fn queue_worker(job: QueueJob<'_>) -> WorkerResult {
    let QueueJob {
        rx: mut q,
        core,
        config,
        mut epoch,
        clock,
        stop,
        idle,
        drops,
        pinning,
        crossing,
        finished,
        workers,
    } = job;
    let mut pinned = None;
    let mut notice = None;
    if let Some(c) = core {
        match sys::pin_to_core(c) {
            Ok(()) => pinned = Some(c),
            Err(e) => {
                notice = Some(format!(
                    "cannot pin the worker of queue {} to core {c}: {e}",
                    q.queue
                ));
            }
        }
    }
    // The receiver waits for every worker before announcing capture; it is gone only if the
    // capture already ended.
    let _ = pinning.send(notice);
    drop(pinning);
    let mut worker = Worker::new(&config, CoreDelta::new(0));
    worker.set_monotonic_offset(Some(clock.monotonic_offset_ns()));
    let crossing = crossing.is_some_and(|c| {
        worker.set_crossing(c);
        true
    });
    // Counts this worker out however it ends (a panic too), so the others' crossings end.
    let mut past_last_frame = PastLastFrame::new(&finished);
    // Fragment reassembly stays on (the worker's default): the XDP program hands this queue
    // every fragment of a datagram whose fragments it takes, and RSS puts a datagram's
    // fragments on one queue (see the program's header comment and README, "fragments live").
    let mut second = clock.now_ns() / NS_PER_SEC;
    epoch.enter(&mut worker, second);
    let mut frames = 0u64;
    let mut times: Option<(u64, u64)> = None;
    let mut quiet_since: Option<Instant> = None;
    let mut dropped_seen = 0u64;
    let fd = q.fd;

    // Relaxed: the flag carries no data, only "stop soon".
    while !stop.load(Ordering::Relaxed) {
        let (n, now) = q.recv_batch(BATCH, |batch| {
            // One clock reading per batch, after the receive: every frame's time, and what
            // moves the epoch (also when nothing came).
            let now = clock.now_ns();
            let s = now / NS_PER_SEC;
            if s > second {
                second = s;
                epoch.enter(&mut worker, s);
                let dropped = xsk::stats(fd).dropped();
                // Relaxed: a display gauge.
                drops.fetch_add(dropped.saturating_sub(dropped_seen), Ordering::Relaxed);
                dropped_seen = dropped_seen.max(dropped);
            }
            if !batch.is_empty() {
                let started = Instant::now();
                for data in batch.iter() {
                    // A frame fits a UMEM frame (at most 4 KiB): its length fits a u32.
                    let wire_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                    worker.process_frame(now, LinkType::Ethernet, data, wire_len);
                }
                worker.flush_capture_latency();
                record_batch(&mut worker, started);
            }
            (batch.len(), now)
        });
        // What other workers handed on, and what is held for its peer direction: after the
        // batch, whose frames are back in the fill ring by now.
        let crossed = if crossing {
            worker.take_crossed_at(now)
        } else {
            0
        };
        if n == 0 && crossed == 0 {
            wait(&q, idle, &mut quiet_since, now, crossing);
            continue;
        }
        if n > 0 {
            quiet_since = None;
            frames += n as u64;
            note_packet_time(&mut times, now);
        }
        worker.flush_events();
    }
    if crossing {
        finish_crossing(&mut worker, &mut past_last_frame, workers, &clock);
    }
    past_last_frame.count();
    epoch.finish(&mut worker);
    // What the end parsed (held segments, holes given up) has events too.
    worker.flush_events();
    WorkerResult {
        queue: q.queue,
        core: pinned,
        fd: q.fd,
        frames,
        cpu_ns: thread_cpu_ns(),
        times,
        unmatched_responses: worker.unmatched_responses(),
        crossed: worker.cross_figures().unwrap_or_default(),
    }
}

/// The end of a crossing: this worker takes no more frames; it goes on taking what the others
/// hand it until every worker is past its last frame and its lanes are empty, then parses what
/// it still holds. (Once all are past their last frame nothing is handed on: a worker hands
/// on only frames of its own queue.)
fn finish_crossing(
    worker: &mut Worker,
    past_last_frame: &mut PastLastFrame<'_>,
    workers: usize,
    clock: &LiveClock,
) {
    past_last_frame.count();
    let finished = past_last_frame.counter;
    loop {
        let taken = worker.take_crossed_at(clock.now_ns());
        // Acquire: every worker's hand-offs are visible once all have said they are done.
        if taken == 0 && finished.load(Ordering::Acquire) == workers {
            // A last look: records published just before the last worker's count.
            if !worker.crossed_waiting() {
                break;
            }
            continue;
        }
        if taken == 0 {
            thread::sleep(IDLE_SLEEP);
        }
    }
    worker.finish_crossing();
}

/// Counts a worker as past its last frame in the shared count the crossings' ends wait for:
/// once, when told or when dropped (also while a panic unwinds, so that no other worker waits
/// for it forever).
struct PastLastFrame<'a> {
    counter: &'a AtomicUsize,
    counted: bool,
}

impl<'a> PastLastFrame<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        PastLastFrame {
            counter,
            counted: false,
        }
    }

    fn count(&mut self) {
        if !self.counted {
            self.counted = true;
            // Release: this worker's last hand-offs before the count that says it is done.
            self.counter.fetch_add(1, Ordering::Release);
        }
    }
}

impl Drop for PastLastFrame<'_> {
    fn drop(&mut self) {
        self.count();
    }
}

/// Waits for frames according to `idle` (see the module doc); `crossing`: other workers hand
/// this one segments, so it waits at most [`CROSS_MAX_WAIT`].
pub(crate) fn wait(
    q: &QueueRx,
    idle: IdlePolicy,
    quiet_since: &mut Option<Instant>,
    now_ns: u64,
    crossing: bool,
) {
    // Never past the next second: the worker must move its epoch on time.
    let to_next_second = Duration::from_nanos(NS_PER_SEC - now_ns % NS_PER_SEC);
    let longest = if crossing { CROSS_MAX_WAIT } else { MAX_WAIT };
    let block = to_next_second.min(longest);
    match idle {
        IdlePolicy::Spin => std::hint::spin_loop(),
        IdlePolicy::Poll => poll(q.fd, block),
        IdlePolicy::Hybrid => {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() < IDLE_BLOCK_AFTER {
                thread::sleep(IDLE_SLEEP.min(block));
            } else {
                poll(q.fd, block);
            }
        }
    }
}

fn poll(fd: i32, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis())
        .unwrap_or(100)
        .max(1);
    // SAFETY: one valid pollfd; an error (EINTR) just ends the wait early.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_time_minus_the_offset_is_clock_monotonic() {
        let clock = LiveClock::new();
        for _ in 0..1000 {
            let before = monotonic_ns();
            let seen = clock.now_ns().wrapping_sub(clock.monotonic_offset_ns());
            let after = monotonic_ns();
            assert!(
                before <= seen && seen <= after,
                "{before} <= {seen} <= {after}"
            );
        }
        // And packet time is Unix time, up to the moment between the two reads at start.
        let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let unix = u64::try_from(unix.as_nanos()).unwrap();
        let diff = unix.abs_diff(clock.now_ns());
        assert!(
            diff < NS_PER_SEC,
            "packet time {diff} ns away from the wall clock"
        );
    }
}

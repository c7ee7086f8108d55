//! The bench rig's rxdrop baseline: linewatch's capture path without the engine.
//!
//! Same XDP program, same sockets, rings, UMEM, core pinning and idle policy as [`super::run`],
//! and the same receive (`QueueRx::recv_batch`, batches of [`BATCH`] frames); each worker counts
//! the frames of a batch and hands them straight back to the fill ring without reading a byte
//! of them. The difference between this and the full path
//! on the same offered load is what parsing and counting cost; the difference between this and
//! the kernel's XDP_DROP is what the AF_XDP copy and ring hand-off cost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Instant;

use super::error::LiveError;
use super::run::{wait, IdlePolicy, BATCH};
use super::sys;
use super::sys::thread_cpu_ns;
use super::xdp::{CaptureOptions, RedirectPorts, XdpCounters, XdpProgram};
use super::xsk::{self, QueueRx};
use crate::pipeline::QueueFigures;

/// rxdrop settings: the interface, its queues and the worker cores (one per queue).
#[derive(Debug, Clone)]
pub struct RxdropConfig {
    /// The interface AF_XDP runs on.
    pub interface: String,
    /// Rx queues, one socket and worker each.
    pub queues: Vec<u32>,
    /// Core of each queue's worker, in queue order.
    pub cores: Vec<usize>,
    /// Fill/rx ring entries (`None`: linewatch's default).
    pub ring: Option<u32>,
    /// Idle policy, as linewatch's.
    pub idle: IdlePolicy,
    /// Attach XDP in generic (SKB) mode, as `linewatch --xdp-generic`.
    pub generic: bool,
}

/// What rxdrop saw.
#[derive(Debug, Clone, Default)]
pub struct RxdropFigures {
    /// The XDP program's counters.
    pub xdp: XdpCounters,
    /// Per queue: frames received, the socket's kernel counters, the worker's CPU time.
    pub queues: Vec<QueueFigures>,
    /// Wall time from the sockets ready to stop, ns.
    pub wall_ns: u64,
}

/// Attaches the capture program (every TCP port), opens one socket per queue, calls
/// `on_ready`, receives and drops until `stop` is set, and returns the counts.
pub fn run(
    config: &RxdropConfig,
    stop: &AtomicBool,
    on_ready: impl FnOnce(),
) -> Result<RxdropFigures, LiveError> {
    sys::check_privileges()?;
    let ifname = config.interface.as_str();
    let ifindex = sys::ifindex(ifname)?;
    if config.cores.len() != config.queues.len() {
        return Err(LiveError("rxdrop: give one core per queue".into()));
    }
    let memlock = sys::raise_memlock();
    let frame = xsk::frame_size(sys::mtu(ifname).unwrap_or(1500));
    let ring = config.ring.unwrap_or_else(|| xsk::default_ring(frame));
    let (program, _notice) = XdpProgram::attach(
        ifname,
        ifindex,
        &RedirectPorts::Any,
        CaptureOptions::default(),
        config.generic,
    )?;
    let mut owners = Vec::with_capacity(config.queues.len());
    let mut receivers = Vec::with_capacity(config.queues.len());
    for &q in &config.queues {
        let (owner, rx) = xsk::open(ifname, q, ring, frame, false, memlock)?;
        owners.push(owner);
        receivers.push(rx);
    }
    let started = Instant::now();
    let queues: Vec<QueueFigures> = thread::scope(|scope| {
        let handles: Vec<_> = receivers
            .into_iter()
            .zip(config.cores.iter().copied())
            .map(|(rx, core)| {
                let idle = config.idle;
                thread::Builder::new()
                    .name(format!("rxdrop-q{}", rx.queue))
                    .spawn_scoped(scope, move || drop_loop(rx, core, idle, stop))
                    .expect("spawning an rxdrop thread")
            })
            .collect();
        on_ready();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let figures = RxdropFigures {
        xdp: program.counters(),
        queues,
        wall_ns: u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX),
    };
    drop(owners);
    drop(program);
    Ok(figures)
}

fn drop_loop(mut q: QueueRx, core: usize, idle: IdlePolicy, stop: &AtomicBool) -> QueueFigures {
    let pinned = sys::pin_to_core(core).ok().map(|()| core);
    let mut frames = 0u64;
    let mut quiet_since = None;
    let clock = Instant::now();
    // Relaxed: the flag carries no data, only "stop soon".
    while !stop.load(Ordering::Relaxed) {
        let n = q.recv_batch(BATCH, |batch| batch.len());
        if n == 0 {
            let now = u64::try_from(clock.elapsed().as_nanos()).unwrap_or(0);
            wait(&q, idle, &mut quiet_since, now, false);
            continue;
        }
        quiet_since = None;
        frames += n as u64;
    }
    QueueFigures {
        queue: q.queue,
        core: pinned,
        frames,
        stats: xsk::stats(q.fd),
        cpu_ns: thread_cpu_ns(),
        // No engine: nothing is paired, nothing crosses.
        unmatched_responses: 0,
        crossed: Default::default(),
    }
}

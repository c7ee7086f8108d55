//! The traffic generator: request frames (and, for the demo, their responses) on the lab's
//! sending end, at a scripted rate or as fast as one core can send them.
//!
//! Two ways out, both one syscall per batch:
//! - [`TxPath::AfXdp`]: one AF_XDP socket per queue (copy mode on veth), frames written into
//!   the UMEM and posted on the tx ring. The socket's queue is the frame's queue, and on veth
//!   the receiving queue equals the sending one: exact queue steering. Flow `i` goes to queue
//!   `i % queues`.
//! - [`TxPath::AfPacket`]: one raw AF_PACKET socket with `PACKET_QDISC_BYPASS` (no qdisc, no
//!   taps on the way out) and `sendmmsg`; the kernel picks the queue from the flow hash.
//!
//! Rate: the frames due at time `t` of a phase are `floor(t × rate)`; the generator sends what
//! is due in batches of at most [`BATCH`] and spins (or sleeps, when the next frame is more than
//! [`SLEEP_OVER`] away) until more is due. Rate 0 means as fast as possible. Each batch is
//! stamped once, just before its syscall, with CLOCK_MONOTONIC.

// Rates and durations are f64 by nature; every cast here is of a non-negative value far
// below the target type's range (frame counts of a run, nanoseconds of a phase, libc sizes).
#![allow(clippy::cast_possible_truncation)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use afxdp::buf::Buf;
use afxdp::buf_mmap::BufMmap;
use afxdp::mmap_area::{MmapArea, MmapAreaOptions};
use afxdp::socket::{Socket, SocketNewError, SocketOptions, SocketTx};
use afxdp::umem::{Umem, UmemCompletionQueue, UmemFillQueue, UmemNewError};
use afxdp::PENDING_LEN;
use arraydeque::{ArrayDeque, Wrapping};
use serde_json::{json, Value};

use linewatch_engine::live::xdp_socket_fds;

use crate::frames::{self, Flow, FrameSpec};
use crate::sys::{ifindex, monotonic_ns, NS_PER_SEC};

/// Frames per syscall.
pub const BATCH: usize = 64;
/// Wait longer than this by sleeping rather than spinning.
const SLEEP_OVER: Duration = Duration::from_micros(300);
/// UMEM frames per AF_XDP queue (2 KiB each: 8 MiB).
const TX_FRAMES: u32 = 4096;
/// AF_XDP tx and completion ring entries.
const TX_RING: u32 = 2048;
/// Frames handed to an AF_XDP socket and not yet completed, at most. The stamp is written when
/// a frame is posted, so a deep backlog on the tx ring would count the generator's own queue
/// as capture latency; 256 frames is a few syscalls' worth, enough to keep the kernel busy.
const MAX_IN_FLIGHT: usize = 256;
const FRAME_BYTES: usize = 2048;
/// How long a queue still held by a socket that just closed is waited for.
const BUSY_WAIT_NS: u64 = 2 * NS_PER_SEC;

/// How frames leave the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxPath {
    /// AF_XDP tx sockets, one per queue.
    AfXdp,
    /// AF_PACKET + PACKET_QDISC_BYPASS + sendmmsg.
    AfPacket,
}

impl std::str::FromStr for TxPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "afxdp" => Ok(TxPath::AfXdp),
            "afpacket" => Ok(TxPath::AfPacket),
            _ => Err(format!("'{s}' is not a tx path (afxdp, afpacket)")),
        }
    }
}

impl TxPath {
    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            TxPath::AfXdp => "afxdp",
            TxPath::AfPacket => "afpacket",
        }
    }
}

/// One step of the script: `rate` requests per second (0: as fast as possible) for `seconds`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Requests per second; 0 is "as fast as possible".
    pub rate: f64,
    /// How long.
    pub seconds: f64,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    /// The sending interface.
    pub interface: String,
    /// Its queues (AF_XDP: one socket each).
    pub queues: u32,
    /// How frames leave.
    pub tx: TxPath,
    /// The frames.
    pub frames: FrameSpec,
    /// The script.
    pub phases: Vec<Phase>,
    /// Also send a response for every request, `response_delay_ms` later on average (the
    /// demo: gives linewatch's response-latency histogram something to show).
    pub responses: bool,
    /// Mean response delay, ms.
    pub response_delay_ms: f64,
}

/// What was sent.
#[derive(Debug, Clone, Default)]
pub struct GeneratorReport {
    /// Frames handed to the kernel.
    pub sent: u64,
    /// Of which requests.
    pub requests: u64,
    /// Of which responses.
    pub responses: u64,
    /// Frames handed to the kernel per queue (AF_XDP only; AF_PACKET lets the kernel pick).
    pub per_queue: Vec<u64>,
    /// Seconds from the first to the last send.
    pub seconds: f64,
    /// Send syscalls made.
    pub syscalls: u64,
    /// Times the kernel took fewer frames than offered (ring full, ENOBUFS).
    pub short_sends: u64,
}

impl GeneratorReport {
    /// As JSON.
    pub fn to_json(&self, tx: TxPath) -> Value {
        json!({
            "tx": tx.name(),
            "sent": self.sent,
            "requests": self.requests,
            "responses": self.responses,
            "per_queue": self.per_queue,
            "seconds": self.seconds,
            "syscalls": self.syscalls,
            "short_sends": self.short_sends,
        })
    }

    /// From [`GeneratorReport::to_json`]'s output.
    pub fn from_json(v: &Value) -> Option<GeneratorReport> {
        Some(GeneratorReport {
            sent: v.get("sent")?.as_u64()?,
            requests: v.get("requests")?.as_u64()?,
            responses: v.get("responses")?.as_u64()?,
            per_queue: v
                .get("per_queue")?
                .as_array()?
                .iter()
                .filter_map(Value::as_u64)
                .collect(),
            seconds: v.get("seconds")?.as_f64()?,
            syscalls: v.get("syscalls")?.as_u64()?,
            short_sends: v.get("short_sends")?.as_u64()?,
        })
    }
}

/// A way out for frames.
trait Sender {
    /// Sends `frames` on `queue`; returns how many the kernel took.
    fn send(&mut self, queue: usize, frames: &[&[u8]]) -> io::Result<usize>;
    /// Waits until frames handed over have left (AF_XDP completions).
    fn drain(&mut self) {}
}

/// Runs the script until it ends or `stop` is set.
pub fn run(config: &GeneratorConfig, stop: &AtomicBool) -> Result<GeneratorReport, String> {
    let mut flows = frames::flows(&config.frames)?;
    let queues = config.queues.max(1) as usize;
    let mut sender: Box<dyn Sender> = match config.tx {
        TxPath::AfPacket => Box::new(PacketSender::open(&config.interface)?),
        TxPath::AfXdp => Box::new(XdpSender::open(&config.interface, queues)?),
    };
    // Flows by queue (AF_XDP steers exactly; for AF_PACKET the split is only bookkeeping).
    let by_queue: Vec<Vec<usize>> = (0..queues)
        .map(|q| (q..flows.len()).step_by(queues).collect())
        .collect();
    if by_queue.iter().any(Vec::is_empty) {
        return Err(format!(
            "{} flows cannot fill {queues} queues: use at least one flow per queue",
            flows.len()
        ));
    }
    let mut report = GeneratorReport {
        per_queue: vec![0; queues],
        ..GeneratorReport::default()
    };
    let mut cursor = vec![0usize; queues];
    let mut pending: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    // Demo: a flow waits for its response before its next request (keep-alive, in order).
    let mut busy = vec![false; flows.len()];
    let mut rng = crate::capture::SplitMix64(config.frames.seed ^ 0x5eed);
    let mut batch: Vec<(usize, bool)> = Vec::with_capacity(BATCH);
    let started = monotonic_ns();
    let mut queue = 0usize;
    for phase in &config.phases {
        let phase_start = monotonic_ns();
        let phase_ns = (phase.seconds * 1e9) as u64;
        let mut phase_sent = 0u64;
        // Relaxed: a plain "stop soon" flag.
        while !stop.load(Ordering::Relaxed) {
            let now = monotonic_ns();
            let elapsed = now - phase_start;
            if elapsed >= phase_ns {
                break;
            }
            let due = if phase.rate > 0.0 {
                let due_total = (elapsed as f64 * phase.rate / 1e9) as u64;
                due_total.saturating_sub(phase_sent) as usize
            } else {
                BATCH
            };
            batch.clear();
            // Responses that are due go first.
            while batch.len() < BATCH {
                match pending.peek() {
                    Some(Reverse((at, _))) if *at <= now => {
                        let Some(Reverse((_, f))) = pending.pop() else {
                            break;
                        };
                        batch.push((f, true));
                    }
                    _ => break,
                }
            }
            let mut requests = due.min(BATCH - batch.len());
            let q = queue;
            while requests > 0 {
                let list = &by_queue[q];
                let mut tries = list.len();
                let mut chosen = None;
                while tries > 0 {
                    let f = list[cursor[q] % list.len()];
                    cursor[q] += 1;
                    tries -= 1;
                    if !busy[f] {
                        chosen = Some(f);
                        break;
                    }
                }
                let Some(f) = chosen else { break };
                batch.push((f, false));
                requests -= 1;
                if config.responses {
                    busy[f] = true;
                    // Exponential delay around the mean: a long-tailed latency histogram.
                    let u = (f64::from(rng.next_u32()) + 1.0) / 4_294_967_297.0;
                    let delay_ms = -config.response_delay_ms * u.ln();
                    pending.push(Reverse((now + (delay_ms * 1e6) as u64, f)));
                }
            }
            if batch.is_empty() {
                // Nothing due: wait for the next request or response.
                let next_request = if phase.rate > 0.0 {
                    let at = ((phase_sent + 1) as f64 * 1e9 / phase.rate) as u64;
                    phase_start + at
                } else {
                    now
                };
                let next = pending
                    .peek()
                    .map_or(next_request, |Reverse((at, _))| (*at).min(next_request));
                let wait = Duration::from_nanos(next.saturating_sub(now));
                // Yield rather than spin: the receiving veth's NAPI thread may share this
                // core, and a spinning generator would starve it (and drop frames itself).
                if wait > SLEEP_OVER {
                    std::thread::sleep(wait - SLEEP_OVER / 2);
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            let stamp = monotonic_ns();
            for &(f, response) in &batch {
                let flow: &mut Flow = &mut flows[f];
                if response {
                    flow.response.set_ack(flow.request.next_seq());
                    flow.response.next(stamp);
                    flow.request.set_ack(flow.response.next_seq());
                } else {
                    flow.request.next(stamp);
                }
            }
            let refs: Vec<&[u8]> = batch
                .iter()
                .map(|&(f, response)| {
                    if response {
                        flows[f].response.bytes()
                    } else {
                        flows[f].request.bytes()
                    }
                })
                .collect();
            let mut offset = 0;
            let mut stuck = 0u32;
            while offset < refs.len() {
                let n = sender
                    .send(q, &refs[offset..])
                    .map_err(|e| format!("sending on {}: {e}", config.interface))?;
                report.syscalls += 1;
                if n < refs.len() - offset {
                    report.short_sends += 1;
                    stuck += 1;
                    if stuck > 1_000_000 || stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::yield_now();
                }
                offset += n;
            }
            for &(f, response) in &batch[..offset] {
                if response {
                    report.responses += 1;
                    busy[f] = false;
                } else {
                    report.requests += 1;
                    phase_sent += 1;
                }
            }
            report.sent += offset as u64;
            report.per_queue[q] += offset as u64;
            queue = (queue + 1) % queues;
        }
    }
    sender.drain();
    report.seconds = (monotonic_ns() - started) as f64 / 1e9;
    if config.tx == TxPath::AfPacket {
        report.per_queue.clear();
    }
    Ok(report)
}

/// AF_PACKET with `PACKET_QDISC_BYPASS` and `sendmmsg`.
struct PacketSender {
    fd: i32,
    ifindex: i32,
}

impl PacketSender {
    fn open(ifname: &str) -> Result<PacketSender, String> {
        let ifindex = ifindex(ifname).map_err(|_| format!("interface {ifname} not found"))?;
        // Protocol 0: this socket only sends; it receives nothing.
        // SAFETY: plain syscall.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(format!(
                "cannot open an AF_PACKET socket: {} (run as root)",
                io::Error::last_os_error()
            ));
        }
        let sender = PacketSender {
            fd,
            ifindex: i32::try_from(ifindex).unwrap_or(0),
        };
        let one: libc::c_int = 1;
        // SAFETY: an int option of the right size.
        let ret = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if ret != 0 {
            return Err(format!(
                "PACKET_QDISC_BYPASS: {}",
                io::Error::last_os_error()
            ));
        }
        Ok(sender)
    }
}

impl Sender for PacketSender {
    fn send(&mut self, _queue: usize, frames: &[&[u8]]) -> io::Result<usize> {
        // SAFETY: sockaddr_ll is plain data.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        let mut iovs: Vec<libc::iovec> = frames
            .iter()
            .map(|f| libc::iovec {
                iov_base: f.as_ptr().cast_mut().cast(),
                iov_len: f.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = iovs
            .iter_mut()
            .map(|iov| {
                // SAFETY: msghdr is plain data.
                let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                hdr.msg_name = (&raw mut addr).cast();
                hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        let n = u32::try_from(msgs.len()).unwrap_or(u32::MAX);
        // SAFETY: every msghdr points at a live iovec, a live frame and `addr`, all of which
        // outlive the call.
        let ret = unsafe { libc::sendmmsg(self.fd, msgs.as_mut_ptr(), n, 0) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => Ok(0),
                _ => Err(e),
            };
        }
        Ok(usize::try_from(ret).unwrap_or(0))
    }
}

impl Drop for PacketSender {
    fn drop(&mut self) {
        // SAFETY: our fd, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// One AF_XDP tx socket per queue.
struct XdpSender {
    queues: Vec<XdpQueue>,
}

/// Field order is drop order, and it matters: libbpf's socket keeps pointers to the tx ring
/// (in `tx`) and to the UMEM's fill and completion rings, and reads them when the socket is
/// deleted. `tx` holds the only other reference to the socket, so dropping it deletes the
/// socket first (its own ring is freed after that), while `completion` and `_fill` still
/// live. (Dropping the fill ring when the socket was opened and the completion ring before the
/// socket let libbpf read freed memory and, now and then, unmap a page of the heap: the
/// generator died with SIGSEGV after its run.)
struct XdpQueue {
    tx: SocketTx<'static, ()>,
    completion: UmemCompletionQueue<'static, ()>,
    _fill: UmemFillQueue<'static, ()>,
    free: Vec<BufMmap<'static, ()>>,
    posted: Box<ArrayDeque<[BufMmap<'static, ()>; PENDING_LEN], Wrapping>>,
    in_flight: usize,
    /// The socket's fd, for the extra kicks: in copy mode the kernel sends at most 32 frames
    /// per `sendto`.
    fd: i32,
    _umem: Arc<Umem<'static, ()>>,
}

impl XdpSender {
    fn open(ifname: &str, queues: usize) -> Result<XdpSender, String> {
        let mut out = Vec::with_capacity(queues);
        for q in 0..queues {
            // A socket on this queue that just closed (a generator run right before this one)
            // is released by the kernel a little later: until then the bind says EBUSY.
            let until = monotonic_ns() + BUSY_WAIT_NS;
            loop {
                match XdpQueue::open(ifname, q) {
                    Ok(queue) => {
                        out.push(queue);
                        break;
                    }
                    Err(Busy(_)) if monotonic_ns() < until => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(Busy(message) | Failed(message)) => return Err(message),
                }
            }
        }
        Ok(XdpSender { queues: out })
    }
}

/// Frames the kernel sends per `sendto` on a copy-mode AF_XDP socket.
const KICK_BUDGET: usize = 32;

/// Why a queue's socket could not be opened.
enum OpenError {
    /// The queue is still held by a socket the kernel has not released yet (EBUSY).
    Busy(String),
    /// Anything else.
    Failed(String),
}
use OpenError::{Busy, Failed};

impl XdpQueue {
    /// Maps a UMEM and opens a copy-mode tx socket on queue `q` of `ifname`.
    fn open(ifname: &str, q: usize) -> Result<XdpQueue, OpenError> {
        // libbpf creates the socket's fd with the UMEM (the first socket of a UMEM uses it).
        let before = xdp_socket_fds();
        let (area, free) = MmapArea::<'static, ()>::new(
            TX_FRAMES as usize,
            FRAME_BYTES,
            MmapAreaOptions::default(),
        )
        .map_err(|_| Failed("cannot map the generator's UMEM".to_owned()))?;
        let (umem, completion, fill) = Umem::new(area, TX_RING, 64).map_err(|e| {
            Failed(match e {
                UmemNewError::Create(io) => format!(
                    "cannot register the generator's UMEM: {}",
                    libbpf_error(&io)
                ),
                UmemNewError::RingNotPowerOfTwo => {
                    "internal: ring sizes must be powers of two".to_owned()
                }
            })
        })?;
        let options = SocketOptions {
            copy_mode: true,
            ..SocketOptions::default()
        };
        let (_socket, tx) = Socket::new_tx(Arc::clone(&umem), ifname, q, TX_RING, options)
            .map_err(|e| {
                let (busy, why) = match e {
                    SocketNewError::Create(io) => (
                        io.raw_os_error().map(i32::abs) == Some(libc::EBUSY),
                        libbpf_error(&io),
                    ),
                    SocketNewError::RingNotPowerOfTwo => {
                        (false, "ring size not a power of two".to_owned())
                    }
                };
                let message =
                    format!("cannot open an AF_XDP tx socket on queue {q} of {ifname}: {why}");
                if busy {
                    Busy(message)
                } else {
                    Failed(message)
                }
            })?;
        let fd = xdp_socket_fds()
            .into_iter()
            .find(|fd| !before.contains(fd))
            .ok_or_else(|| Failed(format!("cannot find the AF_XDP tx socket of queue {q}")))?;
        Ok(XdpQueue {
            tx,
            completion,
            _fill: fill,
            free,
            posted: Box::new(ArrayDeque::new()),
            in_flight: 0,
            fd,
            _umem: umem,
        })
    }

    /// Asks the kernel to send what is on the tx ring.
    fn kick(&self) {
        // SAFETY: a zero-length non-blocking sendto on our own socket.
        unsafe {
            libc::sendto(
                self.fd,
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
    }

    fn reap(&mut self) {
        let room = self.free.capacity() - self.free.len();
        if let Ok(n) = self.completion.service(&mut self.free, room) {
            self.in_flight -= n.min(self.in_flight);
        }
    }
}

impl Sender for XdpSender {
    fn send(&mut self, queue: usize, frames: &[&[u8]]) -> io::Result<usize> {
        let q = &mut self.queues[queue];
        q.reap();
        let room = MAX_IN_FLIGHT.saturating_sub(q.in_flight);
        if room == 0 {
            q.kick();
            return Ok(0);
        }
        let n = frames.len().min(q.free.len()).min(room);
        for frame in &frames[..n] {
            let Some(mut buf) = q.free.pop() else { break };
            let len = frame.len().min(buf.get_data().len());
            buf.get_data_mut()[..len].copy_from_slice(&frame[..len]);
            buf.set_len(u16::try_from(len).unwrap_or(0));
            let _ = q.posted.push_back(buf);
        }
        let sent = q.tx.try_send(&mut q.posted, BATCH).unwrap_or(0);
        q.in_flight += sent;
        // try_send kicked once; each kick sends up to KICK_BUDGET.
        for _ in 1..sent.div_ceil(KICK_BUDGET) {
            q.kick();
        }
        // What the tx ring did not take goes back to the free list.
        while let Some(buf) = q.posted.pop_front() {
            q.free.push(buf);
        }
        Ok(sent)
    }

    fn drain(&mut self) {
        for q in &mut self.queues {
            let until = monotonic_ns() + NS_PER_SEC;
            while q.in_flight > 0 && monotonic_ns() < until {
                q.kick();
                q.reap();
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

/// afxdp hands back libbpf's negative errno inside `io::Error` (printed as "Unknown error -N"):
/// the OS's text for the positive one, with the usual fix for a permission error.
fn libbpf_error(io: &io::Error) -> String {
    match io.raw_os_error() {
        Some(code) => {
            let errno = code.abs();
            let text = io::Error::from_raw_os_error(errno).to_string();
            if errno == libc::EPERM || errno == libc::EACCES {
                format!("{text} (run as root)")
            } else {
                text
            }
        }
        None => io.to_string(),
    }
}

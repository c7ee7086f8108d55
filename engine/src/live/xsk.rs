//! One AF_XDP socket per rx queue, through the afxdp crate: a UMEM of `ring` frames, fill and
//! rx rings of `ring` entries each (by default as many as fit [`DEFAULT_UMEM_BYTES`]: 65536
//! frames of 2 KiB, or 32768 of 4 KiB for MTUs above 1770), all frames handed to the kernel at
//! start and handed back after each batch.
//!
//! Why so many: the ring is what absorbs the time a worker does not run. On these shared VMs a
//! thread that asks to sleep 50 µs sometimes runs again only after 190–260 ms, on either core and
//! with the machine otherwise idle (the host deschedules the vCPU; `/proc/stat` shows no steal).
//! At the ~140k frames/s nginx and wrk reach here, 16384 entries last ~120 ms, and runs with
//! 16384 lost frames (counted as fill-ring-empty drops); 65536 last ~470 ms.
//!
//! Receiving: `QueueRx::recv_batch` is the one receive loop body of both the engine's workers
//! ([`super::run`]) and the bench rig's rxdrop baseline ([`super::rxdrop`]): up to a batch of
//! descriptors off the rx ring into a buffer the socket owns, the caller's look at them, every
//! frame back onto the fill ring, and a wake-up only when the kernel asks for one
//! (`XDP_USE_NEED_WAKEUP`). Nothing in it allocates or locks; its one possible syscall is that
//! wake-up, once per batch.
//!
//! The afxdp crate returns libbpf's negative errno inside `std::io::Error`; `open` maps each
//! to a sentence with the fix. A queue that is still bound by a process that just exited
//! answers EBUSY for some tens of ms: `open` retries with backoff before giving up.

use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use afxdp::buf::Buf;
use afxdp::buf_mmap::BufMmap;
use afxdp::mmap_area::{MmapArea, MmapAreaOptions};
use afxdp::socket::{Socket, SocketNewError, SocketOptions, SocketRx};
use afxdp::umem::{Umem, UmemCompletionQueue, UmemFillQueue, UmemNewError};
use afxdp::PENDING_LEN;
use arraydeque::{ArrayDeque, Wrapping};

use super::error::LiveError;
use super::sys::{errno_of_io, errno_text, has_ipc_lock, xdp_socket_fds, PRIVILEGE_FIX};

/// UMEM bytes per socket by default; the ring size follows from the frame size.
pub const DEFAULT_UMEM_BYTES: usize = 128 << 20;

/// Default fill/rx ring entries (and UMEM frames) for a frame size.
pub fn default_ring(frame: usize) -> u32 {
    u32::try_from(DEFAULT_UMEM_BYTES / frame.max(1)).unwrap_or(65536)
}

/// Completion ring entries (unused: receive only, but the UMEM needs one).
const COMPLETION_RING: u32 = 64;

/// Bytes of headroom the kernel keeps in front of each frame (XDP_PACKET_HEADROOM).
const HEADROOM: usize = 256;

/// How long to retry a busy queue.
const BUSY_RETRY_FOR: Duration = Duration::from_secs(3);

/// Kernel counters of one socket (`XDP_STATISTICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XskStats {
    /// Frames dropped for want of a fill buffer or for being too long.
    pub rx_dropped: u64,
    /// Frames dropped because the rx ring was full (linewatch fell behind).
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// Invalid descriptors on the rx ring.
    pub rx_invalid_descs: u64,
}

impl XskStats {
    /// Frames lost between the XDP program and linewatch.
    pub fn dropped(&self) -> u64 {
        self.rx_dropped + self.rx_ring_full
    }
}

/// Reads a socket's kernel counters.
pub(crate) fn stats(fd: i32) -> XskStats {
    let mut s = libbpf_sys::xdp_statistics::default();
    let mut len =
        libc::socklen_t::try_from(std::mem::size_of::<libbpf_sys::xdp_statistics>()).unwrap_or(0);
    // SAFETY: the kernel writes at most `len` bytes into `s`.
    let ret = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libbpf_sys::XDP_STATISTICS as libc::c_int,
            (&raw mut s).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return XskStats::default();
    }
    XskStats {
        rx_dropped: s.rx_dropped,
        rx_ring_full: s.rx_ring_full,
        fill_ring_empty: s.rx_fill_ring_empty_descs,
        rx_invalid_descs: s.rx_invalid_descs,
    }
}

/// What stays on the thread that opened the socket until the worker is done with it.
///
/// Not the socket: libbpf's socket keeps pointers to the rx ring (in [`QueueRx`]'s `rx`) and to
/// the UMEM's fill and completion rings, and reads them when it is deleted. The only reference
/// to it is in `rx`, so it is deleted when the worker drops its [`QueueRx`], before the rx
/// ring itself, while `fill` (dropped after `rx`) and `completion` (here, dropped after the
/// workers end) still live. (Held here, it was deleted after the worker had freed the rx and
/// fill rings: libbpf read freed memory, which can unmap a page of the heap.)
#[allow(dead_code)]
pub(crate) struct QueueOwner {
    umem: Arc<Umem<'static, ()>>,
    completion: UmemCompletionQueue<'static, ()>,
}

impl std::fmt::Debug for QueueOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueOwner").finish_non_exhaustive()
    }
}

/// Frames taken off the rx ring and not yet given back: afxdp's receive buffer.
type Received = ArrayDeque<[BufMmap<'static, ()>; PENDING_LEN], Wrapping>;

/// The receive side, moved to the queue's worker thread.
pub(crate) struct QueueRx {
    /// The rx queue.
    pub(crate) queue: u32,
    /// The socket's fd (for `XDP_STATISTICS`, poll and wake-ups).
    pub(crate) fd: i32,
    rx: SocketRx<'static, ()>,
    fill: UmemFillQueue<'static, ()>,
    /// Frames owned by linewatch, to be handed to the fill ring.
    free: Vec<BufMmap<'static, ()>>,
    /// The batch being looked at (empty between two [`QueueRx::recv_batch`] calls). Boxed:
    /// [`PENDING_LEN`] descriptors are too many for a worker's stack, and allocated once, here.
    received: Box<Received>,
}

/// One batch of received frames, lent to the caller of [`QueueRx::recv_batch`].
pub(crate) struct RxBatch<'a> {
    frames: &'a Received,
}

impl std::fmt::Debug for RxBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBatch")
            .field("frames", &self.frames.len())
            .finish()
    }
}

impl RxBatch<'_> {
    /// Frames in the batch.
    pub(crate) fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the rx ring had nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Each frame's bytes, in ring order (the frame's length as the kernel wrote it: the whole
    /// frame in copy mode, as on the wire).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.frames
            .iter()
            .map(|buf| &buf.get_data()[..usize::from(buf.get_len())])
    }
}

impl QueueRx {
    /// Takes up to `max` frames off the rx ring, lends them to `look` (also when none came:
    /// the caller reads its clock there, after the receive and before the frames), then hands
    /// every frame back to the fill ring and wakes the kernel if it asks for it. An empty batch
    /// touches neither ring nor the kernel, as a busy poll must not.
    ///
    /// Returns what `look` returns. The frames' bytes stay valid only inside `look`: the
    /// kernel may write the next frame into them once they are back on the fill ring.
    pub(crate) fn recv_batch<R>(&mut self, max: usize, look: impl FnOnce(&RxBatch<'_>) -> R) -> R {
        // An error reading the ring (none is known for a bound rx socket) reads as no frames.
        let n = self.rx.try_recv(&mut self.received, max, ()).unwrap_or(0);
        let result = look(&RxBatch {
            frames: &self.received,
        });
        if n > 0 {
            self.free.extend(self.received.drain(..));
            let free = self.free.len();
            // A fill ring with less room than `free` takes what fits; the rest waits for the
            // next batch (the kernel then runs short of buffers and counts drops).
            let _ = self.fill.fill(&mut self.free, free);
            self.wake_fill();
        }
        result
    }

    /// Kicks the kernel when the fill ring asks for it (`XDP_USE_NEED_WAKEUP`).
    fn wake_fill(&mut self) {
        if self.fill.needs_wakeup() {
            // SAFETY: a zero-length non-blocking recvfrom on our own socket fd.
            unsafe {
                libc::recvfrom(
                    self.fd,
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            };
        }
    }
}

impl std::fmt::Debug for QueueRx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueRx")
            .field("queue", &self.queue)
            .field("fd", &self.fd)
            .finish_non_exhaustive()
    }
}

/// The frame size for an interface MTU: 2048-byte frames hold a 1500-byte MTU with VLAN tags
/// behind the kernel's headroom; larger MTUs get 4096.
pub(crate) fn frame_size(mtu: u32) -> usize {
    let needed = mtu as usize + 14 + 8 + HEADROOM;
    if needed <= 2048 {
        2048
    } else {
        4096
    }
}

/// Opens the socket of `queue` on `ifname`; the XDP program must already be attached.
pub(crate) fn open(
    ifname: &str,
    queue: u32,
    ring: u32,
    frame: usize,
    zero_copy: bool,
    memlock: u64,
) -> Result<(QueueOwner, QueueRx), LiveError> {
    let before = xdp_socket_fds();
    let frames = ring as usize;
    let umem_bytes = frames * frame;
    let (area, mut free) = MmapArea::<'static, ()>::new(frames, frame, MmapAreaOptions::default())
        .map_err(|_| {
            LiveError(format!(
                "cannot map {} MiB for the UMEM of queue {queue}: out of memory",
                umem_bytes >> 20
            ))
        })?;
    let (umem, completion, mut fill) =
        Umem::new(area, COMPLETION_RING, ring).map_err(|e| match e {
            UmemNewError::Create(io) => {
                let errno = errno_of_io(&io);
                LiveError(match errno {
                    libc::ENOBUFS | libc::ENOMEM | libc::EAGAIN | libc::EPERM
                        if !has_ipc_lock() =>
                    {
                        format!(
                            "cannot lock {} MiB for the UMEM of queue {queue}: the memlock limit \
                             is {} (ulimit -l); run as root, raise it (ulimit -l unlimited) or \
                             grant CAP_IPC_LOCK",
                            umem_bytes >> 20,
                            if memlock == u64::MAX {
                                "unlimited".to_owned()
                            } else {
                                format!("{} KiB", memlock >> 10)
                            }
                        )
                    }
                    libc::EPERM | libc::EACCES => {
                        format!("not allowed to create an AF_XDP socket: {PRIVILEGE_FIX}")
                    }
                    libc::EAFNOSUPPORT => {
                        "this kernel has no AF_XDP sockets (CONFIG_XDP_SOCKETS is off)".to_owned()
                    }
                    _ => format!(
                        "cannot register the UMEM of queue {queue}: {}",
                        errno_text(errno)
                    ),
                })
            }
            UmemNewError::RingNotPowerOfTwo => {
                LiveError("internal: ring sizes must be powers of two".to_owned())
            }
        })?;

    let options = SocketOptions {
        zero_copy_mode: zero_copy,
        copy_mode: !zero_copy,
        ..SocketOptions::default()
    };
    let started = Instant::now();
    let mut backoff = Duration::from_millis(5);
    let (_socket, rx) = loop {
        match Socket::new_rx(Arc::clone(&umem), ifname, queue as usize, ring, options) {
            Ok(pair) => break pair,
            Err(SocketNewError::Create(io)) => {
                let errno = errno_of_io(&io);
                if errno == libc::EBUSY && started.elapsed() < BUSY_RETRY_FOR {
                    sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(200));
                    continue;
                }
                return Err(LiveError(match errno {
                    libc::EBUSY => format!(
                        "queue {queue} of {ifname} is busy: another AF_XDP socket is bound to it \
                         (another linewatch or XDP tool?); still busy after {} s of retries",
                        BUSY_RETRY_FOR.as_secs()
                    ),
                    libc::EOPNOTSUPP if zero_copy => format!(
                        "zero-copy is not supported on {ifname} (its driver or XDP mode); drop \
                         --zero-copy to capture in copy mode"
                    ),
                    libc::EINVAL => format!(
                        "cannot bind queue {queue} of {ifname}: invalid argument (is the queue \
                         in range? see ethtool -l {ifname})"
                    ),
                    libc::ENOENT => format!(
                        "cannot bind queue {queue} of {ifname}: the XDP program has no \
                         xsks_map (was it replaced?)"
                    ),
                    libc::EPERM | libc::EACCES => {
                        format!("not allowed to bind an AF_XDP socket: {PRIVILEGE_FIX}")
                    }
                    _ => format!(
                        "cannot open an AF_XDP socket on queue {queue} of {ifname}: {}",
                        errno_text(errno)
                    ),
                }));
            }
            Err(SocketNewError::RingNotPowerOfTwo) => {
                return Err(LiveError(
                    "internal: ring sizes must be powers of two".to_owned(),
                ))
            }
        }
    };
    let fd = xdp_socket_fds()
        .into_iter()
        .find(|fd| !before.contains(fd))
        .ok_or_else(|| LiveError(format!("cannot find the AF_XDP socket of queue {queue}")))?;

    let n = free.len();
    let filled = fill
        .fill(&mut free, n)
        .map_err(|_| LiveError(format!("cannot fill the fill ring of queue {queue}")))?;
    if filled == 0 {
        return Err(LiveError(format!(
            "the fill ring of queue {queue} took no frames"
        )));
    }
    Ok((
        QueueOwner { umem, completion },
        QueueRx {
            queue,
            fd,
            rx,
            fill,
            free,
            received: Box::new(ArrayDeque::new()),
        },
    ))
}

//! The read buffer a stream (pipe, FIFO, pcapng file) is read through, and how a wait for its
//! writer gives up when the run stops.

use super::*;

/// How long one wait for a stream's writer lasts before the stop flag is looked at again: a
/// stopped run ends this soon even when its writer is silent.
pub(super) const STOP_POLL_MS: i32 = 100;

/// The error a stream's read ends with when the run was stopped while it waited.
#[derive(Debug)]
pub(super) struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stopped while waiting for the capture's writer")
    }
}

impl std::error::Error for Stopped {}

/// How reading ends after the read error `e`: complete when the run was stopped (everything
/// read was delivered), truncated otherwise.
pub(super) fn end_of(e: std::io::Error) -> SourceEnd {
    if e.get_ref().is_some_and(|inner| inner.is::<Stopped>()) {
        SourceEnd::Complete
    } else {
        SourceEnd::Truncated(e.to_string())
    }
}

/// After the run is stopped, how long a stream still reads what its writer hands over: a
/// pipeline stopped as a whole (Ctrl-C reaches tcpdump and linewatch) loses nothing of what
/// tcpdump flushes as it exits, and a writer that never pauses cannot hold the run.
pub(super) const STOP_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// How a stream waits for its writer once [`Source::watch_stop`] gave it the run's flag.
pub(super) struct StopWatch {
    pub(super) stop: Arc<AtomicBool>,
    /// When the flag was first seen set.
    pub(super) seen: Option<std::time::Instant>,
}

impl StopWatch {
    /// Waits until `file` has bytes to read (or its end, or an error for the read to report),
    /// or ends with [`Stopped`]: at the first wait of [`STOP_POLL_MS`] without bytes once the
    /// flag is set, or [`STOP_DRAIN`] after it was set. Called once per read of a stream,
    /// never per packet.
    pub(super) fn wait_readable(&mut self, file: &File) -> std::io::Result<()> {
        loop {
            // Relaxed: the flag carries no data, only "stop soon".
            let stopping = self.stop.load(Ordering::Relaxed);
            if stopping {
                let seen = *self.seen.get_or_insert_with(std::time::Instant::now);
                if seen.elapsed() >= STOP_DRAIN {
                    return Err(std::io::Error::other(Stopped));
                }
            }
            let mut fd = libc::pollfd {
                fd: file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: `fd` is one valid pollfd on the stack, and its descriptor stays open
            // (the `File` is borrowed) for the whole call.
            let ready = unsafe { libc::poll(&mut fd, 1, STOP_POLL_MS) };
            if ready > 0 {
                return Ok(());
            }
            if ready == 0 && stopping {
                return Err(std::io::Error::other(Stopped));
            }
            if ready < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    // Let the read itself report what is wrong.
                    return Ok(());
                }
            }
        }
    }
}

/// Size of a stream's read buffer at first; it grows to the longest record or block read.
pub(super) const STREAM_BUFFER: usize = 1 << 20;

/// A file read through one reused buffer. Records are lent as slices of it; the record lent
/// last is dropped from it (`pending`) only when the next one is asked for.
pub(super) struct Stream {
    pub(super) file: File,
    /// Set (see [`Source::watch_stop`]) on a stream that may wait for its writer: each read
    /// is then preceded by a bounded wait that gives up once the run is stopped.
    pub(super) stop: Option<StopWatch>,
    /// The file is not a regular one (a pipe, a FIFO, a socket): a read may wait.
    pub(super) waits: bool,
    pub(super) buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    pub(super) start: usize,
    pub(super) end: usize,
    /// Bytes of the record lent last, consumed at the next read.
    pub(super) pending: usize,
    /// File offset of `buf[start]`.
    pub(super) offset: u64,
}

impl Stream {
    /// A stream of `file` whose first bytes, `read`, were read from it already.
    pub(super) fn new(file: File, read: &[u8]) -> Stream {
        let mut buf = vec![0; STREAM_BUFFER];
        buf[..read.len()].copy_from_slice(read);
        let waits = !file.metadata().is_ok_and(|m| m.is_file());
        Stream {
            file,
            stop: None,
            waits,
            buf,
            start: 0,
            end: read.len(),
            pending: 0,
            offset: 0,
        }
    }

    /// Makes `n` bytes available at [`Stream::bytes`]; `Ok(false)` when the file ends first
    /// (what there was stays available).
    pub(super) fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n, 0);
            }
        }
        while self.end - self.start < n {
            if let Some(watch) = &mut self.stop {
                watch.wait_readable(&self.file)?;
            }
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(got) => self.end += got,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    pub(super) fn available(&self) -> usize {
        self.end - self.start
    }

    pub(super) fn watch_stop(&mut self, stop: Arc<AtomicBool>) {
        if self.waits {
            self.stop = Some(StopWatch { stop, seen: None });
        }
    }

    /// The first `n` unread bytes (`n` at most [`Stream::available`]).
    pub(super) fn bytes(&self, n: usize) -> &[u8] {
        &self.buf[self.start..self.start + n]
    }

    pub(super) fn consume(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.offset += n as u64;
    }

    pub(super) fn consume_pending(&mut self) {
        let n = std::mem::take(&mut self.pending);
        self.consume(n);
    }

    pub(super) fn offset(&self) -> u64 {
        self.offset
    }
}

//! Where packets come from. The engine sees only [`Packet`]s from a [`Source`] and never
//! knows whether they came from a file or from an AF_XDP ring.
//!
//! Contract: a capture file is read as tcpdump and tshark read it. Every record whose framing
//! holds is delivered, in file order: a record cut at the snap length (`tcpdump -s 96`,
//! `editcap -s 400`; `caplen < origlen`) is a cut frame, the worker counts it as one, and
//! reading goes on; the file header's snap length (0 included) is not a limit; a record with
//! `caplen > origlen` or a fraction-of-a-second field past a second is read as it is. A record
//! that cannot be used but whose length is known (a pcapng packet naming an undescribed
//! interface, or claiming more bytes than its block holds) is skipped and counted
//! ([`Source::unreadable_records`]). Reading ends early only where the framing itself is lost
//! (a record or block claiming an impossible length) or the file ends inside a record: the
//! end is then [`SourceEnd::Truncated`], after every complete record before it.
//!
//! Classic pcap (both byte orders, micro- and nanosecond magic) is parsed here: a regular
//! file is memory-mapped and each record lent as a slice of the map (no copy), with the pages
//! read past handed back; a pipe or FIFO is read through one reused buffer. pcapng is read
//! block by block through the same kind of buffer; of each interface block only its link
//! type, snap length and timestamp resolution are kept, for at most [`MAX_INTERFACES`]
//! interfaces, so memory stays bounded whatever the file holds.
//!
//! Standard input is read when the path is [`STDIN`] (`--read -`): a pipe (`tcpdump -w - |
//! linewatch --read -`, `ssh host tcpdump -w - | …`) is streamed like a FIFO; a regular file
//! redirected in (`< capture.pcap`) is opened again by its `/proc` name, so it is mapped (and
//! re-opened per worker) exactly as a named file is; a terminal is refused. A stream that ends
//! inside a record (its writer killed) ends as a file cut there does. A stream may wait for its
//! writer indefinitely: [`Source::watch_stop`] makes such a wait give up when the run is
//! stopped (Ctrl-C, SIGTERM), once what the writer still hands over is read (at most
//! [`STOP_DRAIN`] more), the reading then ending as complete.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use linewatch_parser::wire::LinkType;

/// One captured frame.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// How the frame starts.
    pub link: LinkType,
    /// The bytes captured (maybe fewer than on the wire).
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub wire_len: u32,
}

/// Why a source cannot be used at all. Each message is one line with the cause.
#[derive(Debug)]
pub enum SourceError {
    /// The file cannot be opened or read.
    Open {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The file is not a pcap or pcapng capture.
    NotCapture {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The capture's link type is not one linewatch decodes.
    UnsupportedLink {
        /// The file.
        path: PathBuf,
        /// The pcap LINKTYPE value.
        linktype: u32,
    },
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::Open { path, error } => {
                write!(f, "cannot read {}: {error}", name_of(path))
            }
            SourceError::NotCapture { path, reason } => {
                write!(f, "{} is not a pcap or pcapng capture ({reason})", name_of(path))
            }
            SourceError::UnsupportedLink { path, linktype } => write!(
                f,
                "{}: link type {linktype} is not supported (Ethernet, raw IP, Linux cooked v1/v2 and BSD loopback are)",
                name_of(path)
            ),
        }
    }
}

/// The `--read` path that names standard input.
pub const STDIN: &str = "-";

/// Standard input's own name, through which a regular file redirected in is opened afresh.
const PROC_STDIN: &str = "/proc/self/fd/0";

/// How a capture path is named in messages and reports (`-` is "standard input").
pub fn name_of(path: &Path) -> String {
    if path == Path::new(STDIN) {
        "standard input".to_owned()
    } else {
        path.display().to_string()
    }
}

/// The path whose metadata is the capture's: `/proc/self/fd/0` for [`STDIN`], so that a caller
/// can tell whether an output file is the capture redirected in.
pub fn metadata_path(path: &Path) -> PathBuf {
    if path == Path::new(STDIN) {
        PathBuf::from(PROC_STDIN)
    } else {
        path.to_path_buf()
    }
}

impl std::error::Error for SourceError {}

/// How reading ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEnd {
    /// Every record was read.
    Complete,
    /// The file ends (or breaks) inside a record: everything before it was delivered.
    Truncated(String),
}

/// A packet source.
pub trait Source {
    /// The next packet; `Ok(None)` at the end (see [`Source::end`]).
    fn next_packet(&mut self) -> Option<Packet<'_>>;
    /// How reading ended, once `next_packet` returned `None`.
    fn end(&self) -> SourceEnd;
    /// What is being read (for reports).
    fn describe(&self) -> String;
    /// Packets skipped because their interface's link type is not decoded (pcapng only).
    fn unsupported_link_packets(&self) -> u64 {
        0
    }
    /// Records skipped because they could not be used although the file's framing held (see
    /// the module's contract).
    fn unreadable_records(&self) -> u64 {
        0
    }
    /// The source is a memory map of a regular file: opening the file again gives an
    /// independent reader of the same packets at almost no cost (see
    /// [`crate::offline::run_parallel`]). False for a pipe, a FIFO and a pcapng file.
    fn is_mapped(&self) -> bool {
        false
    }
    /// Lets a wait for more bytes from a pipe, FIFO or socket give up once `stop` is set (the
    /// source then ends as complete). A regular file never waits, and ignores it.
    fn watch_stop(&mut self, stop: Arc<AtomicBool>) {
        let _ = stop;
    }
}

/// Opens a capture, pcap or pcapng (told apart by the magic number): a file, a FIFO, or
/// standard input when `path` is [`STDIN`].
pub fn open_capture(path: &Path) -> Result<Box<dyn Source + Send>, SourceError> {
    let open_err = |error| SourceError::Open {
        path: path.to_path_buf(),
        error,
    };
    let mut file = if path == Path::new(STDIN) {
        open_stdin()?
    } else {
        File::open(path).map_err(open_err)?
    };
    let meta = file.metadata().map_err(open_err)?;
    if meta.is_dir() {
        return Err(SourceError::NotCapture {
            path: path.to_path_buf(),
            reason: "it is a directory".into(),
        });
    }
    let mut magic = [0u8; 4];
    let got = read_full(&mut file, &mut magic).map_err(open_err)?;
    if got < magic.len() {
        let reason = match (got, meta.is_file()) {
            (0, true) => "the file is empty".to_owned(),
            (0, false) => "the stream ended before its first byte: did its writer fail?".to_owned(),
            (_, true) => format!("only {got} bytes long"),
            (_, false) => format!("the stream ended after {got} bytes"),
        };
        return Err(SourceError::NotCapture {
            path: path.to_path_buf(),
            reason,
        });
    }
    // The file is opened once: a pipe or FIFO cannot be opened again for its first bytes,
    // so those are handed to the reader (a map does not depend on the read position).
    if magic == PCAPNG_MAGIC {
        return Ok(Box::new(PcapNgSource::open(
            Stream::new(file, &magic),
            path,
        )?));
    }
    if let Some(source) = MappedPcap::open(&file, path)? {
        return Ok(Box::new(source));
    }
    Ok(Box::new(PcapStream::open(Stream::new(file, &magic), path)?))
}

/// Standard input as a file of its own (a duplicate descriptor), or why it cannot be read.
fn open_stdin() -> Result<File, SourceError> {
    use std::io::IsTerminal;
    use std::os::fd::AsFd;
    let path = PathBuf::from(STDIN);
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(SourceError::NotCapture {
            path,
            reason: "it is a terminal: pipe a capture into linewatch, as in \
                     `tcpdump -U -w - | linewatch --read -`, or name a file"
                .into(),
        });
    }
    let file = File::from(
        stdin
            .as_fd()
            .try_clone_to_owned()
            .map_err(|error| SourceError::Open { path, error })?,
    );
    // A regular file redirected in shares its read position with the shell's descriptor; opened
    // again by name it has its own, so it can be mapped and re-opened per worker.
    if file.metadata().is_ok_and(|m| m.is_file()) {
        if let Ok(own) = File::open(PROC_STDIN) {
            return Ok(own);
        }
    }
    Ok(file)
}

/// The first four bytes of a pcapng file (a Section Header Block).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..]) {
            Ok(0) => break,
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(at)
}

/// The 32-bit word at `at` in the file's byte order.
#[inline]
fn word(b: &[u8], at: usize, big_endian: bool) -> u32 {
    let w = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big_endian {
        u32::from_be_bytes(w)
    } else {
        u32::from_le_bytes(w)
    }
}

/// The 16-bit half-word at `at` in the file's byte order.
#[inline]
fn half(b: &[u8], at: usize, big_endian: bool) -> u16 {
    let h = [b[at], b[at + 1]];
    if big_endian {
        u16::from_be_bytes(h)
    } else {
        u16::from_le_bytes(h)
    }
}

/// The message for a file that ends inside a record or block.
const ENDS_INSIDE: &str = "the file ends inside a record";

// ---- classic pcap ----

/// Length of the classic pcap file header.
const PCAP_HEADER_LEN: usize = 24;
/// Length of a classic pcap record header (seconds, fraction, caplen, origlen).
const PCAP_RECORD_HEADER_LEN: usize = 16;
/// The magic number of a classic pcap with microsecond timestamps, as written.
const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
/// The magic number of a classic pcap with nanosecond timestamps, as written.
const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// The most bytes one record may claim: tshark's and libpcap's limit for the link types
/// linewatch decodes (256 KiB). A record claiming more is not a record: its length field is
/// garbage, and where the next record starts cannot be known.
const MAX_RECORD: u32 = 262_144;
/// The link type bits of the header's link field (the upper bits carry FCS information).
const LINKTYPE_MASK: u32 = 0x03FF_FFFF;
const NS_PER_SEC: u64 = 1_000_000_000;
const NS_PER_US: u64 = 1_000;

/// What the classic pcap file header says about its records.
#[derive(Debug, Clone, Copy)]
struct PcapFormat {
    big_endian: bool,
    /// The fraction field counts nanoseconds, not microseconds.
    nanos: bool,
    link: LinkType,
}

impl PcapFormat {
    /// Reads the file header (the whole of `header` is its 24 bytes, or fewer if the file
    /// ends first). The header's snap length is not kept: it does not limit what is read.
    fn parse(header: &[u8], path: &Path) -> Result<PcapFormat, SourceError> {
        let not_capture = |reason: String| SourceError::NotCapture {
            path: path.to_path_buf(),
            reason,
        };
        let cut = || {
            not_capture(format!(
                "the {}-byte file header is cut after {} bytes",
                PCAP_HEADER_LEN,
                header.len()
            ))
        };
        // The magic first: bytes that are no capture at all are named so, however short.
        if header.len() < 4 {
            return Err(cut());
        }
        let magic = word(header, 0, false);
        let (big_endian, nanos) = match magic {
            MAGIC_MICROS => (false, false),
            MAGIC_NANOS => (false, true),
            m if m.swap_bytes() == MAGIC_MICROS => (true, false),
            m if m.swap_bytes() == MAGIC_NANOS => (true, true),
            m => return Err(not_capture(format!("unknown magic number {m:#010x}"))),
        };
        if header.len() < PCAP_HEADER_LEN {
            return Err(cut());
        }
        let linktype = word(header, 20, big_endian) & LINKTYPE_MASK;
        let link = LinkType::from_pcap(linktype).ok_or(SourceError::UnsupportedLink {
            path: path.to_path_buf(),
            linktype,
        })?;
        Ok(PcapFormat {
            big_endian,
            nanos,
            link,
        })
    }

    /// A record header: (time in ns, bytes captured, length on the wire), or why the framing
    /// is lost at this record. `caplen` above `origlen`, and a fraction of a second at or past
    /// one second, are read as written (as tshark does).
    #[inline]
    fn record(&self, h: &[u8], offset: u64) -> Result<(u64, usize, u32), String> {
        let secs = u64::from(word(h, 0, self.big_endian));
        let frac = u64::from(word(h, 4, self.big_endian));
        let caplen = word(h, 8, self.big_endian);
        let origlen = word(h, 12, self.big_endian);
        if caplen > MAX_RECORD {
            return Err(format!(
                "the record at byte {offset} claims {caplen} captured bytes, more than any \
                 capture holds ({MAX_RECORD}): where the next record starts is lost"
            ));
        }
        let ns = secs * NS_PER_SEC + if self.nanos { frac } else { frac * NS_PER_US };
        // `caplen <= MAX_RECORD`, so it fits any usize.
        Ok((ns, caplen as usize, origlen))
    }
}

/// A classic pcap file that cannot be mapped (a pipe, a FIFO), read through one buffer.
struct PcapStream {
    stream: Stream,
    format: PcapFormat,
    path: PathBuf,
    end: Option<SourceEnd>,
}

impl PcapStream {
    fn open(mut stream: Stream, path: &Path) -> Result<PcapStream, SourceError> {
        let header_len = match stream.fill(PCAP_HEADER_LEN) {
            Ok(_) => stream.available().min(PCAP_HEADER_LEN),
            Err(error) => {
                return Err(SourceError::Open {
                    path: path.to_path_buf(),
                    error,
                })
            }
        };
        let format = PcapFormat::parse(stream.bytes(header_len), path)?;
        stream.consume(PCAP_HEADER_LEN);
        Ok(PcapStream {
            stream,
            format,
            path: path.to_path_buf(),
            end: None,
        })
    }

    /// The next record's length in the buffer (header included), or how reading ends.
    fn next_record(&mut self) -> Result<(u64, usize, u32), SourceEnd> {
        self.stream.consume_pending();
        let whole = self.stream.fill(PCAP_RECORD_HEADER_LEN).map_err(end_of)?;
        if !whole {
            return Err(if self.stream.available() == 0 {
                SourceEnd::Complete
            } else {
                SourceEnd::Truncated(ENDS_INSIDE.into())
            });
        }
        let (ts, caplen, origlen) = self
            .format
            .record(
                self.stream.bytes(PCAP_RECORD_HEADER_LEN),
                self.stream.offset(),
            )
            .map_err(SourceEnd::Truncated)?;
        let len = PCAP_RECORD_HEADER_LEN + caplen;
        match self.stream.fill(len) {
            Ok(true) => {
                self.stream.pending = len;
                Ok((ts, len, origlen))
            }
            Ok(false) => Err(SourceEnd::Truncated(ENDS_INSIDE.into())),
            Err(e) => Err(end_of(e)),
        }
    }
}

impl Source for PcapStream {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.end.is_some() {
            return None;
        }
        match self.next_record() {
            Err(end) => {
                self.end = Some(end);
                None
            }
            Ok((ts_ns, len, wire_len)) => Some(Packet {
                ts_ns,
                link: self.format.link,
                data: &self.stream.bytes(len)[PCAP_RECORD_HEADER_LEN..],
                wire_len,
            }),
        }
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        name_of(&self.path)
    }

    fn watch_stop(&mut self, stop: Arc<AtomicBool>) {
        self.stream.watch_stop(stop);
    }
}

/// A classic pcap file that is a regular file, read through a memory map: each record is a
/// slice of the page cache, with no read copy, and any number of workers can each walk the
/// same file (see [`crate::offline::run_parallel`]). A capture that another process shortens
/// while it is mapped would fault (SIGBUS); a growing one (tcpdump still writing) is read up
/// to its size at open.
struct MappedPcap {
    map: memmap2::Mmap,
    format: PcapFormat,
    /// Offset of the next record.
    at: usize,
    path: PathBuf,
    end: Option<SourceEnd>,
    /// The map before this offset has been handed back (see [`RELEASE_EVERY`]).
    released: usize,
}

/// Bytes of the map read past before they are handed back with `MADV_DONTNEED`. The pages
/// stay in the page cache, but without this every page read would stay mapped and count in
/// the process's resident set: a 400 MiB capture would look like 400 MiB of linewatch.
const RELEASE_EVERY: usize = 2 << 20;

impl MappedPcap {
    /// `Ok(None)` when the file cannot be mapped (a pipe, a FIFO): the caller reads it instead.
    fn open(file: &File, path: &Path) -> Result<Option<MappedPcap>, SourceError> {
        match file.metadata() {
            Ok(m) if m.is_file() && m.len() > 0 => {}
            _ => return Ok(None),
        }
        // SAFETY: the map is read only and lives in this source; the file changing under it
        // is the documented limit above.
        let Ok(map) = (unsafe { memmap2::Mmap::map(file) }) else {
            return Ok(None);
        };
        let _ = map.advise(memmap2::Advice::Sequential);
        let format = PcapFormat::parse(&map[..map.len().min(PCAP_HEADER_LEN)], path)?;
        Ok(Some(MappedPcap {
            map,
            format,
            at: PCAP_HEADER_LEN,
            path: path.to_path_buf(),
            end: None,
            released: 0,
        }))
    }

    /// Hands back the pages wholly before the next record (the last packet lent out is no
    /// longer borrowed: `next_packet` takes `&mut self`).
    fn release_behind(&mut self) {
        let upto = self.at & !(RELEASE_EVERY - 1);
        if upto > self.released {
            // SAFETY: MADV_DONTNEED on a read-only file mapping only unmaps the pages; a later
            // read of them faults them back in from the file, so no data can change or be
            // lost. Nothing borrows this range any more. Offsets are multiples of 2 MiB, so
            // page aligned.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    self.released,
                    upto - self.released,
                )
            };
            self.released = upto;
        }
    }
}

impl Source for MappedPcap {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.end.is_some() {
            return None;
        }
        if self.at - self.released >= RELEASE_EVERY {
            self.release_behind();
        }
        let rest = &self.map[self.at..];
        if rest.len() < PCAP_RECORD_HEADER_LEN {
            self.end = Some(if rest.is_empty() {
                SourceEnd::Complete
            } else {
                SourceEnd::Truncated(ENDS_INSIDE.into())
            });
            return None;
        }
        let (ts_ns, caplen, wire_len) = match self.format.record(rest, self.at as u64) {
            Ok(r) => r,
            Err(why) => {
                self.end = Some(SourceEnd::Truncated(why));
                return None;
            }
        };
        let Some(data) = rest.get(PCAP_RECORD_HEADER_LEN..PCAP_RECORD_HEADER_LEN + caplen) else {
            self.end = Some(SourceEnd::Truncated(ENDS_INSIDE.into()));
            return None;
        };
        self.at += PCAP_RECORD_HEADER_LEN + caplen;
        Some(Packet {
            ts_ns,
            link: self.format.link,
            data,
            wire_len,
        })
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        name_of(&self.path)
    }

    fn is_mapped(&self) -> bool {
        true
    }
}

// ---- the read buffer ----

/// How long one wait for a stream's writer lasts before the stop flag is looked at again: a
/// stopped run ends this soon even when its writer is silent.
const STOP_POLL_MS: i32 = 100;

/// The error a stream's read ends with when the run was stopped while it waited.
#[derive(Debug)]
struct Stopped;

impl fmt::Display for Stopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stopped while waiting for the capture's writer")
    }
}

impl std::error::Error for Stopped {}

/// How reading ends after the read error `e`: complete when the run was stopped (everything
/// read was delivered), truncated otherwise.
fn end_of(e: std::io::Error) -> SourceEnd {
    if e.get_ref().is_some_and(|inner| inner.is::<Stopped>()) {
        SourceEnd::Complete
    } else {
        SourceEnd::Truncated(e.to_string())
    }
}

/// After the run is stopped, how long a stream still reads what its writer hands over: a
/// pipeline stopped as a whole (Ctrl-C reaches tcpdump and linewatch) loses nothing of what
/// tcpdump flushes as it exits, and a writer that never pauses cannot hold the run.
const STOP_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// How a stream waits for its writer once [`Source::watch_stop`] gave it the run's flag.
struct StopWatch {
    stop: Arc<AtomicBool>,
    /// When the flag was first seen set.
    seen: Option<std::time::Instant>,
}

impl StopWatch {
    /// Waits until `file` has bytes to read (or its end, or an error for the read to report),
    /// or ends with [`Stopped`]: at the first wait of [`STOP_POLL_MS`] without bytes once the
    /// flag is set, or [`STOP_DRAIN`] after it was set. Called once per read of a stream,
    /// never per packet.
    fn wait_readable(&mut self, file: &File) -> std::io::Result<()> {
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
const STREAM_BUFFER: usize = 1 << 20;

/// A file read through one reused buffer. Records are lent as slices of it; the record lent
/// last is dropped from it (`pending`) only when the next one is asked for.
struct Stream {
    file: File,
    /// Set (see [`Source::watch_stop`]) on a stream that may wait for its writer: each read
    /// is then preceded by a bounded wait that gives up once the run is stopped.
    stop: Option<StopWatch>,
    /// The file is not a regular one (a pipe, a FIFO, a socket): a read may wait.
    waits: bool,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Bytes of the record lent last, consumed at the next read.
    pending: usize,
    /// File offset of `buf[start]`.
    offset: u64,
}

impl Stream {
    /// A stream of `file` whose first bytes, `read`, were read from it already.
    fn new(file: File, read: &[u8]) -> Stream {
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
    fn fill(&mut self, n: usize) -> std::io::Result<bool> {
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

    fn available(&self) -> usize {
        self.end - self.start
    }

    fn watch_stop(&mut self, stop: Arc<AtomicBool>) {
        if self.waits {
            self.stop = Some(StopWatch { stop, seen: None });
        }
    }

    /// The first `n` unread bytes (`n` at most [`Stream::available`]).
    fn bytes(&self, n: usize) -> &[u8] {
        &self.buf[self.start..self.start + n]
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.offset += n as u64;
    }

    fn consume_pending(&mut self) {
        let n = std::mem::take(&mut self.pending);
        self.consume(n);
    }

    fn offset(&self) -> u64 {
        self.offset
    }
}

// ---- pcapng ----

/// pcapng block types read here.
const BLOCK_SECTION_HEADER: u32 = 0x0A0D_0D0A;
const BLOCK_INTERFACE: u32 = 1;
/// The obsolete Packet Block (still written by old tools; tshark reads it).
const BLOCK_PACKET: u32 = 2;
const BLOCK_SIMPLE_PACKET: u32 = 3;
const BLOCK_ENHANCED_PACKET: u32 = 6;
/// The section header's byte-order magic, as written in big-endian order.
const BYTE_ORDER_MAGIC: [u8; 4] = [0x1A, 0x2B, 0x3C, 0x4D];
/// Block type and total length before the body, total length again after it.
const BLOCK_OVERHEAD: usize = 12;
/// The longest block read (16 MiB, well above a 256 KiB packet and its options). A longer
/// length field is garbage: where the next block starts is lost.
const MAX_BLOCK: u32 = 16 << 20;
/// Interfaces kept per section. A packet naming one past this is skipped and counted, like a
/// packet naming an interface never described: a file of millions of interface blocks costs
/// at most this many small [`Interface`]s.
pub const MAX_INTERFACES: usize = 1 << 16;
/// The `if_tsresol` option of an interface block.
const OPTION_TSRESOL: u16 = 9;
/// The pcapng default timestamp resolution: microseconds.
const DEFAULT_TSRESOL: u8 = 6;
/// Fixed part of an enhanced (and obsolete) packet block's body before the packet bytes.
const PACKET_FIXED: usize = 20;
/// Fixed part of an interface block's body before its options.
const INTERFACE_FIXED: usize = 8;

/// What a pcapng interface needs for decoding its packets.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
    /// Packet bytes kept per packet (0: no limit); a simple packet block has no caplen.
    snaplen: u32,
    /// Multiply the raw timestamp by `mul` and divide by `div` to get nanoseconds.
    mul: u64,
    div: u64,
}

impl Interface {
    fn ts_ns(&self, raw: u64) -> u64 {
        let ns = u128::from(raw) * u128::from(self.mul) / u128::from(self.div.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// A pcapng file.
struct PcapNgSource {
    stream: Stream,
    path: PathBuf,
    /// The current section's byte order.
    big_endian: bool,
    interfaces: Vec<Interface>,
    end: Option<SourceEnd>,
    unsupported: u64,
    unreadable: u64,
}

/// One block in the read buffer: its type and its body (offsets into [`Stream::bytes`]).
#[derive(Debug, Clone)]
struct BlockAt {
    kind: u32,
    body: std::ops::Range<usize>,
}

impl PcapNgSource {
    fn open(stream: Stream, path: &Path) -> Result<PcapNgSource, SourceError> {
        let mut source = PcapNgSource {
            stream,
            path: path.to_path_buf(),
            big_endian: false,
            interfaces: Vec::new(),
            end: None,
            unsupported: 0,
            unreadable: 0,
        };
        // The section header must frame: otherwise this is not a pcapng file at all.
        match source.next_block() {
            Ok(block) => {
                debug_assert_eq!(block.kind, BLOCK_SECTION_HEADER);
                Ok(source)
            }
            Err(SourceEnd::Complete) => Err(SourceError::NotCapture {
                path: path.to_path_buf(),
                reason: "it holds no section header".into(),
            }),
            Err(SourceEnd::Truncated(reason)) => Err(SourceError::NotCapture {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }

    /// Frames the next block in the buffer (consumed at the next call), or how reading
    /// ends. A section header also sets the byte order and starts a new interface list.
    fn next_block(&mut self) -> Result<BlockAt, SourceEnd> {
        let s = &mut self.stream;
        s.consume_pending();
        let io = end_of;
        if !s.fill(8).map_err(io)? {
            return Err(if s.available() == 0 {
                SourceEnd::Complete
            } else {
                SourceEnd::Truncated(ENDS_INSIDE.into())
            });
        }
        // The section header's type reads the same in both byte orders.
        let mut big_endian = self.big_endian;
        let kind = word(s.bytes(8), 0, big_endian);
        if kind == BLOCK_SECTION_HEADER {
            if !s.fill(BLOCK_OVERHEAD).map_err(io)? {
                return Err(SourceEnd::Truncated(ENDS_INSIDE.into()));
            }
            let bom = &s.bytes(BLOCK_OVERHEAD)[8..12];
            big_endian = if bom == BYTE_ORDER_MAGIC {
                true
            } else if bom.iter().rev().eq(BYTE_ORDER_MAGIC.iter()) {
                false
            } else {
                return Err(SourceEnd::Truncated(format!(
                    "the section header at byte {} has no byte-order magic",
                    s.offset()
                )));
            };
        }
        let len = word(s.bytes(8), 4, big_endian);
        if (len as usize) < BLOCK_OVERHEAD || len % 4 != 0 || len > MAX_BLOCK {
            return Err(SourceEnd::Truncated(format!(
                "the block at byte {} claims a length of {len} bytes: where the next block \
                 starts is lost",
                s.offset()
            )));
        }
        let len = len as usize;
        if !s.fill(len).map_err(io)? {
            return Err(SourceEnd::Truncated(ENDS_INSIDE.into()));
        }
        s.pending = len;
        if kind == BLOCK_SECTION_HEADER {
            self.big_endian = big_endian;
            // A new section starts its own interface numbering.
            self.interfaces.clear();
        }
        Ok(BlockAt {
            kind,
            body: 8..len - 4,
        })
    }
}

/// What a packet of this interface block needs; `None` when the block is too short.
fn interface_of(body: &[u8], big: bool) -> Option<Interface> {
    if body.len() < INTERFACE_FIXED {
        return None;
    }
    let mut tsresol = DEFAULT_TSRESOL;
    let mut at = INTERFACE_FIXED;
    while at + 4 <= body.len() {
        let (code, len) = (half(body, at, big), usize::from(half(body, at + 2, big)));
        if code == 0 || at + 4 + len > body.len() {
            break;
        }
        if code == OPTION_TSRESOL && len >= 1 {
            tsresol = body[at + 4];
        }
        at += 4 + len.next_multiple_of(4);
    }
    let (mul, div) = resolution(tsresol);
    Some(Interface {
        link: LinkType::from_pcap(u32::from(half(body, 0, big))),
        snaplen: word(body, 4, big),
        mul,
        div,
    })
}

impl Source for PcapNgSource {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        // Find the next packet's place in the buffer first, then lend it: a borrow returned
        // from inside the loop would keep the buffer borrowed for every later turn.
        let (data, ts_ns, link, wire_len) = loop {
            if self.end.is_some() {
                return None;
            }
            let block = match self.next_block() {
                Ok(b) => b,
                Err(end) => {
                    self.end = Some(end);
                    return None;
                }
            };
            let big = self.big_endian;
            let body = &self.stream.bytes(block.body.end)[block.body.clone()];
            let (iface, raw_ts, caplen, wire_len, data_at) = match block.kind {
                BLOCK_INTERFACE => {
                    match interface_of(body, big) {
                        None => self.unreadable += 1,
                        // Past the cap an interface is not kept; its packets are skipped and
                        // counted as unreadable.
                        Some(i) if self.interfaces.len() < MAX_INTERFACES => {
                            self.interfaces.push(i);
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                BLOCK_ENHANCED_PACKET | BLOCK_PACKET if body.len() >= PACKET_FIXED => {
                    let iface = if block.kind == BLOCK_PACKET {
                        u32::from(half(body, 0, big))
                    } else {
                        word(body, 0, big)
                    };
                    let raw_ts =
                        u64::from(word(body, 4, big)) << 32 | u64::from(word(body, 8, big));
                    (
                        iface,
                        Some(raw_ts),
                        word(body, 12, big) as usize,
                        word(body, 16, big),
                        PACKET_FIXED,
                    )
                }
                BLOCK_SIMPLE_PACKET if body.len() >= 4 => {
                    let wire_len = word(body, 0, big);
                    let snaplen = self.interfaces.first().map_or(0, |i| i.snaplen);
                    let mut caplen = (wire_len as usize).min(body.len() - 4);
                    if snaplen != 0 {
                        caplen = caplen.min(snaplen as usize);
                    }
                    (0, None, caplen, wire_len, 4)
                }
                BLOCK_ENHANCED_PACKET | BLOCK_PACKET | BLOCK_SIMPLE_PACKET => {
                    self.unreadable += 1;
                    continue;
                }
                _ => continue,
            };
            let Some(iface) = self.interfaces.get(iface as usize).copied() else {
                self.unreadable += 1;
                continue;
            };
            if data_at + caplen > body.len() {
                self.unreadable += 1;
                continue;
            }
            let Some(link) = iface.link else {
                self.unsupported += 1;
                continue;
            };
            let start = block.body.start + data_at;
            break (
                start..start + caplen,
                raw_ts.map_or(0, |t| iface.ts_ns(t)),
                link,
                wire_len,
            );
        };
        Some(Packet {
            ts_ns,
            link,
            data: &self.stream.bytes(data.end)[data],
            wire_len,
        })
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        name_of(&self.path)
    }

    fn unsupported_link_packets(&self) -> u64 {
        self.unsupported
    }

    fn unreadable_records(&self) -> u64 {
        self.unreadable
    }
    fn watch_stop(&mut self, stop: Arc<AtomicBool>) {
        self.stream.watch_stop(stop);
    }
}

/// (multiplier, divisor) turning a raw pcapng timestamp into nanoseconds for `if_tsresol`.
fn resolution(tsresol: u8) -> (u64, u64) {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        // 10^-exp seconds per unit.
        if exp <= 9 {
            (10u64.pow(9 - exp), 1)
        } else {
            (1, 10u64.saturating_pow(exp - 9))
        }
    } else {
        // 2^-exp seconds per unit.
        (1_000_000_000, 1u64.checked_shl(exp).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file in the temp directory holding `bytes`, removed when dropped.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir()
                .join(format!("linewatch-source-{}-{name}", std::process::id()));
            std::fs::write(&path, bytes).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A classic pcap header: magic as written in `big`-endian or little-endian order.
    fn pcap_header(magic: u32, big: bool, snaplen: u32) -> Vec<u8> {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let h = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend_from_slice(&w(magic));
        out.extend_from_slice(&h(2));
        out.extend_from_slice(&h(4));
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&w(snaplen));
        out.extend_from_slice(&w(1)); // Ethernet
        out
    }

    /// One classic pcap record.
    fn pcap_record(out: &mut Vec<u8>, big: bool, words: [u32; 4], data: &[u8]) {
        for v in words {
            out.extend_from_slice(&if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        }
        out.extend_from_slice(data);
    }

    /// (ts, data length, wire length) of each packet read.
    type Got = Vec<(u64, usize, u32)>;

    /// Every packet, and how reading ended.
    fn read_all(source: &mut dyn Source) -> (Got, SourceEnd) {
        let mut got = Vec::new();
        while let Some(p) = source.next_packet() {
            got.push((p.ts_ns, p.data.len(), p.wire_len));
        }
        (got, source.end())
    }

    /// Reads `bytes` both ways a classic pcap is read: mapped and streamed.
    fn both_ways(name: &str, bytes: &[u8]) -> Vec<(Got, SourceEnd)> {
        let file = TempFile::new(name, bytes);
        let mapped = open_capture(&file.0).unwrap();
        assert!(mapped.is_mapped());
        let mut mapped = mapped;
        let stream =
            PcapStream::open(Stream::new(File::open(&file.0).unwrap(), &[]), &file.0).unwrap();
        let mut stream: Box<dyn Source> = Box::new(stream);
        vec![read_all(mapped.as_mut()), read_all(stream.as_mut())]
    }

    #[test]
    fn cut_records_snaplen_zero_long_caplen_and_a_bad_fraction_are_all_read() {
        for (magic, big) in [
            (MAGIC_MICROS, false),
            (MAGIC_MICROS, true),
            (MAGIC_NANOS, true),
        ] {
            let unit = if magic == MAGIC_NANOS { 1 } else { NS_PER_US };
            // Snap length 0 in the header: no limit, as tcpdump reads it.
            let mut f = pcap_header(magic, big, 0);
            let frame = [0xabu8; 200];
            // Cut at 96 of 200 bytes (tcpdump -s 96).
            pcap_record(&mut f, big, [10, 5, 96, 200], &frame[..96]);
            // caplen > origlen.
            pcap_record(&mut f, big, [11, 0, 60, 40], &frame[..60]);
            // A fraction field of 1,500,000 units.
            pcap_record(&mut f, big, [12, 1_500_000, 200, 200], &frame);
            // Another cut one, then a whole one.
            pcap_record(&mut f, big, [13, 0, 96, 1500], &frame[..96]);
            pcap_record(&mut f, big, [14, 0, 54, 54], &frame[..54]);
            for (got, end) in both_ways("odd.pcap", &f) {
                assert_eq!(end, SourceEnd::Complete);
                assert_eq!(
                    got,
                    vec![
                        (10 * NS_PER_SEC + 5 * unit, 96, 200),
                        (11 * NS_PER_SEC, 60, 40),
                        (12 * NS_PER_SEC + 1_500_000 * unit, 200, 200),
                        (13 * NS_PER_SEC, 96, 1500),
                        (14 * NS_PER_SEC, 54, 54),
                    ],
                    "magic {magic:#x} big-endian {big}"
                );
            }
        }
    }

    #[test]
    fn a_file_cut_inside_a_record_or_with_a_garbage_length_ends_after_the_whole_records() {
        let mut f = pcap_header(MAGIC_MICROS, false, 65_535);
        pcap_record(&mut f, false, [1, 0, 10, 10], &[0; 10]);
        let whole = f.len();
        pcap_record(&mut f, false, [2, 0, 10, 10], &[0; 4]);
        for (got, end) in both_ways("cut.pcap", &f) {
            assert_eq!(got.len(), 1);
            assert_eq!(end, SourceEnd::Truncated(ENDS_INSIDE.into()));
        }
        // Inside a record header.
        for (got, end) in both_ways("cut-header.pcap", &f[..whole + 7]) {
            assert_eq!(got.len(), 1);
            assert_eq!(end, SourceEnd::Truncated(ENDS_INSIDE.into()));
        }
        let mut f = f[..whole].to_vec();
        pcap_record(&mut f, false, [2, 0, MAX_RECORD + 1, 10], &[0; 64]);
        for (got, end) in both_ways("garbage.pcap", &f) {
            assert_eq!(got.len(), 1);
            assert!(
                matches!(&end, SourceEnd::Truncated(why) if why.contains("claims 262145")),
                "{end:?}"
            );
        }
    }

    #[test]
    fn a_stream_waiting_for_its_silent_writer_ends_complete_when_stopped() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut writer, reader) = UnixStream::pair().unwrap();
        let mut f = pcap_header(MAGIC_MICROS, false, 0);
        pcap_record(&mut f, false, [1, 0, 10, 10], &[0; 10]);
        writer.write_all(&f).unwrap();
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        let path = Path::new("socket");
        let mut source = PcapStream::open(Stream::new(reader, &[]), path).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        source.watch_stop(Arc::clone(&stop));
        assert!(source.next_packet().is_some());
        let setter = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            stop.store(true, Ordering::Relaxed);
        });
        let waited = std::time::Instant::now();
        // The writer is still open and silent: without the flag this would wait for ever.
        assert!(source.next_packet().is_none());
        assert!(waited.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(source.end(), SourceEnd::Complete);
        setter.join().unwrap();
        drop(writer);
    }

    #[test]
    fn a_stopped_stream_still_reads_what_its_writer_handed_over_then_ends() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut writer, reader) = UnixStream::pair().unwrap();
        let mut f = pcap_header(MAGIC_MICROS, false, 0);
        for second in 1..=3 {
            pcap_record(&mut f, false, [second, 0, 10, 10], &[0; 10]);
        }
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        writer.write_all(&f[..PCAP_HEADER_LEN]).unwrap();
        let mut source = PcapStream::open(Stream::new(reader, &[]), Path::new("s")).unwrap();
        let stop = Arc::new(AtomicBool::new(true));
        source.watch_stop(stop);
        // Stopped before the records arrive (tcpdump flushing as it exits): all are read.
        writer.write_all(&f[PCAP_HEADER_LEN..]).unwrap();
        let (got, end) = read_all(&mut source);
        assert_eq!(got.len(), 3);
        assert_eq!(end, SourceEnd::Complete);
        drop(writer);
    }

    #[test]
    fn a_writer_that_never_pauses_cannot_hold_a_stopped_stream() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (mut writer, reader) = UnixStream::pair().unwrap();
        let reader = File::from(std::os::fd::OwnedFd::from(reader));
        writer
            .write_all(&pcap_header(MAGIC_MICROS, false, 0))
            .unwrap();
        let flood = std::thread::spawn(move || {
            let mut record = Vec::new();
            pcap_record(&mut record, false, [1, 0, 10, 10], &[0; 10]);
            // Until the reader is gone.
            while writer.write_all(&record).is_ok() {}
        });
        let mut source = PcapStream::open(Stream::new(reader, &[]), Path::new("s")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        source.watch_stop(Arc::clone(&stop));
        assert!(source.next_packet().is_some());
        stop.store(true, Ordering::Relaxed);
        let stopped = std::time::Instant::now();
        while source.next_packet().is_some() {}
        assert!(
            stopped.elapsed() < STOP_DRAIN * 3,
            "{:?}",
            stopped.elapsed()
        );
        assert_eq!(source.end(), SourceEnd::Complete);
        drop(source);
        flood.join().unwrap();
    }

    #[test]
    fn standard_input_is_named_so_and_its_metadata_is_procs() {
        let err = SourceError::NotCapture {
            path: PathBuf::from(STDIN),
            reason: "r".into(),
        };
        assert_eq!(
            err.to_string(),
            "standard input is not a pcap or pcapng capture (r)"
        );
        assert_eq!(metadata_path(Path::new(STDIN)), Path::new(PROC_STDIN));
        assert_eq!(metadata_path(Path::new("x.pcap")), Path::new("x.pcap"));
    }

    #[test]
    fn a_classic_header_that_is_not_one_is_refused() {
        let file = TempFile::new("bad-magic.pcap", &[0x11; 64]);
        let err = open_capture(&file.0).err().unwrap().to_string();
        assert!(err.contains("not a pcap or pcapng capture"), "{err}");
        let file = TempFile::new("short.pcap", &pcap_header(MAGIC_MICROS, false, 0)[..20]);
        let err = open_capture(&file.0).err().unwrap().to_string();
        assert!(err.contains("file header is cut"), "{err}");
    }

    /// A pcapng block of `kind` with `body` (padded to 4 bytes).
    fn block(out: &mut Vec<u8>, big: bool, kind: u32, body: &[u8]) {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let padded = body.len().next_multiple_of(4);
        let len = u32::try_from(BLOCK_OVERHEAD + padded).unwrap();
        out.extend_from_slice(&w(kind));
        out.extend_from_slice(&w(len));
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
        out.extend_from_slice(&w(len));
    }

    fn section(out: &mut Vec<u8>, big: bool) {
        let mut body = BYTE_ORDER_MAGIC.to_vec();
        if !big {
            body.reverse();
        }
        body.extend_from_slice(&[0, 1, 0, 0]); // version 1.0 (either order reads as garbage-free)
        body.extend_from_slice(&[0xff; 8]); // section length unknown
        block(out, big, BLOCK_SECTION_HEADER, &body);
    }

    fn interface(out: &mut Vec<u8>, big: bool, linktype: u16, tsresol: Option<u8>) {
        let h = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = Vec::new();
        body.extend_from_slice(&h(linktype));
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // reserved, snaplen 0
        if let Some(r) = tsresol {
            body.extend_from_slice(&h(OPTION_TSRESOL));
            body.extend_from_slice(&h(1));
            body.extend_from_slice(&[r, 0, 0, 0]);
            body.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        }
        block(out, big, BLOCK_INTERFACE, &body);
    }

    fn enhanced(
        out: &mut Vec<u8>,
        big: bool,
        iface: u32,
        ts: u64,
        caplen: u32,
        orig: u32,
        data: &[u8],
    ) {
        let w = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut body = Vec::new();
        let (hi, lo) = (ts >> 32, ts & u64::from(u32::MAX));
        for v in [
            iface,
            hi.try_into().unwrap(),
            lo.try_into().unwrap(),
            caplen,
            orig,
        ] {
            body.extend_from_slice(&w(v));
        }
        body.extend_from_slice(data);
        block(out, big, BLOCK_ENHANCED_PACKET, &body);
    }

    fn pcapng_source(name: &str, bytes: &[u8]) -> (TempFile, Box<dyn Source + Send>) {
        let file = TempFile::new(name, bytes);
        let source = open_capture(&file.0).unwrap();
        (file, source)
    }

    #[test]
    fn pcapng_cut_packets_are_read_and_unusable_ones_skipped_and_counted() {
        for big in [false, true] {
            let mut f = Vec::new();
            section(&mut f, big);
            interface(&mut f, big, 1, Some(9)); // nanoseconds
            let frame = [0x55u8; 300];
            enhanced(&mut f, big, 0, 7, 96, 300, &frame[..96]); // cut at 96
            enhanced(&mut f, big, 5, 8, 60, 60, &frame[..60]); // undescribed interface
            enhanced(&mut f, big, 0, 9, 200, 200, &frame[..60]); // claims more than it holds
            enhanced(&mut f, big, 0, 10, 60, 40, &frame[..60]); // caplen > origlen
                                                                // A simple packet block: no caplen, no time.
            let mut spb = 300u32.to_le_bytes().to_vec();
            if big {
                spb = 300u32.to_be_bytes().to_vec();
            }
            spb.extend_from_slice(&frame);
            block(&mut f, big, BLOCK_SIMPLE_PACKET, &spb);
            // A second section in the other byte order, with its own interfaces.
            section(&mut f, !big);
            interface(&mut f, !big, 1, None); // microseconds
            enhanced(&mut f, !big, 0, 11, 54, 54, &frame[..54]);
            enhanced(&mut f, !big, 1, 12, 54, 54, &frame[..54]); // only interface 0 here
            let (_file, mut source) = pcapng_source("odd.pcapng", &f);
            let (got, end) = read_all(source.as_mut());
            assert_eq!(end, SourceEnd::Complete);
            assert_eq!(
                got,
                vec![(7, 96, 300), (10, 60, 40), (0, 300, 300), (11_000, 54, 54)],
                "big-endian {big}"
            );
            assert_eq!(source.unreadable_records(), 3);
        }
    }

    #[test]
    fn pcapng_keeps_at_most_max_interfaces_and_a_garbage_length_ends_it() {
        let mut f = Vec::new();
        section(&mut f, false);
        for _ in 0..MAX_INTERFACES + 10 {
            interface(&mut f, false, 1, None);
        }
        enhanced(&mut f, false, 0, 1, 54, 54, &[0; 54]);
        enhanced(
            &mut f,
            false,
            u32::try_from(MAX_INTERFACES).unwrap() + 1,
            1,
            54,
            54,
            &[0; 54],
        );
        f.extend_from_slice(&BLOCK_ENHANCED_PACKET.to_le_bytes());
        f.extend_from_slice(&(MAX_BLOCK + 4).to_le_bytes());
        f.extend_from_slice(&[0; 64]);
        let file = TempFile::new("many.pcapng", &f);
        let mut source =
            PcapNgSource::open(Stream::new(File::open(&file.0).unwrap(), &[]), &file.0).unwrap();
        let (got, end) = read_all(&mut source);
        assert_eq!(source.interfaces.len(), MAX_INTERFACES);
        assert_eq!(got.len(), 1);
        assert_eq!(source.unreadable_records(), 1);
        assert!(
            matches!(&end, SourceEnd::Truncated(why) if why.contains("where the next block")),
            "{end:?}"
        );
    }

    #[test]
    fn a_pcapng_without_a_framed_section_header_is_refused() {
        let mut f = PCAPNG_MAGIC.to_vec();
        f.extend_from_slice(&[28, 0, 0, 0, 1, 2, 3, 4]);
        let file = TempFile::new("bad-bom.pcapng", &f);
        let err = open_capture(&file.0).err().unwrap().to_string();
        assert!(err.contains("byte-order magic"), "{err}");
    }
}

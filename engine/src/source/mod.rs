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
    /// This source as the [`MappedPcap`] it is, if it is one: a replay's loop then reads it
    /// with a direct call the compiler inlines instead of one through the trait object, for
    /// every packet.
    fn as_mapped(&mut self) -> Option<&mut MappedPcap> {
        None
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

mod pcap;
mod pcapng;
mod stream;
#[cfg(test)]
mod tests;

pub use pcap::MappedPcap;
use pcap::PcapStream;
use pcapng::PcapNgSource;
pub use pcapng::MAX_INTERFACES;
use stream::{end_of, Stream};

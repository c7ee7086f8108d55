//! Where packets come from. The engine sees only [`Packet`]s from a [`Source`] and never
//! knows whether they came from a file or, later, from an AF_XDP ring.
//!
//! This module reads pcap and pcapng files with the `pcap-file` crate, which hands out each
//! record as a slice of its read buffer (no copy, no allocation per packet). Two corrections
//! on top of it: pcapng timestamps are scaled by the interface's `if_tsresol` (pcap-file 2.0
//! reads the raw 64-bit value as nanoseconds, while the pcapng default is microseconds), and a
//! file that ends inside a record is reported as truncated, not as an error, after every
//! complete record before the cut has been delivered.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use linewatch_parser::wire::LinkType;
use pcap_file::pcap::{PcapPacket, PcapParser, PcapReader};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::PcapError;

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
            SourceError::Open { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            SourceError::NotCapture { path, reason } => {
                write!(f, "{} is not a pcap or pcapng capture ({reason})", path.display())
            }
            SourceError::UnsupportedLink { path, linktype } => write!(
                f,
                "{}: link type {linktype} is not supported (Ethernet, raw IP, Linux cooked v1/v2 and BSD loopback are)",
                path.display()
            ),
        }
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
    /// The source is a memory map of a regular file: opening the file again gives an
    /// independent reader of the same packets at almost no cost (see
    /// [`crate::offline::run_parallel`]). False for a pipe, a FIFO and a pcapng file.
    fn is_mapped(&self) -> bool {
        false
    }
}

/// Opens a capture file, pcap or pcapng (told apart by the magic number).
pub fn open_capture(path: &Path) -> Result<Box<dyn Source + Send>, SourceError> {
    let open_err = |error| SourceError::Open {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(open_err)?;
    if file.metadata().map_err(open_err)?.is_dir() {
        return Err(SourceError::NotCapture {
            path: path.to_path_buf(),
            reason: "it is a directory".into(),
        });
    }
    let mut magic = [0u8; 4];
    let got = read_full(&mut file, &mut magic).map_err(open_err)?;
    if got < magic.len() {
        return Err(SourceError::NotCapture {
            path: path.to_path_buf(),
            reason: format!("only {got} bytes long"),
        });
    }
    let file = File::open(path).map_err(open_err)?;
    if magic != PCAPNG_MAGIC {
        if let Some(source) = MappedPcap::open(&file, path)? {
            return Ok(Box::new(source));
        }
    }
    let reader = BufReader::with_capacity(1 << 16, file);
    let not_capture = |e: PcapError| SourceError::NotCapture {
        path: path.to_path_buf(),
        reason: describe_pcap_error(&e),
    };
    if magic == PCAPNG_MAGIC {
        let reader = PcapNgReader::new(reader).map_err(not_capture)?;
        Ok(Box::new(PcapNgSource {
            reader,
            path: path.to_path_buf(),
            interfaces: Vec::new(),
            end: None,
            unsupported: 0,
            frame: Vec::with_capacity(1 << 16),
        }))
    } else {
        let reader = PcapReader::new(reader).map_err(not_capture)?;
        let linktype = u32::from(reader.header().datalink);
        let link = LinkType::from_pcap(linktype).ok_or(SourceError::UnsupportedLink {
            path: path.to_path_buf(),
            linktype,
        })?;
        Ok(Box::new(PcapSource {
            reader,
            link,
            path: path.to_path_buf(),
            end: None,
        }))
    }
}

/// The first four bytes of a pcapng file (a Section Header Block).
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while at < buf.len() {
        match r.read(&mut buf[at..])? {
            0 => break,
            n => at += n,
        }
    }
    Ok(at)
}

fn describe_pcap_error(e: &PcapError) -> String {
    match e {
        PcapError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends inside a record".into()
        }
        PcapError::IoError(io) => io.to_string(),
        PcapError::InvalidField(what) => format!("invalid field: {what}"),
        PcapError::IncompleteBuffer => "the file ends inside a record".into(),
        other => other.to_string(),
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A classic pcap file.
struct PcapSource {
    reader: PcapReader<BufReader<File>>,
    link: LinkType,
    path: PathBuf,
    end: Option<SourceEnd>,
}

impl Source for PcapSource {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.end.is_some() {
            return None;
        }
        match self.reader.next_packet() {
            None => {
                self.end = Some(SourceEnd::Complete);
                None
            }
            Some(Err(e)) => {
                self.end = Some(SourceEnd::Truncated(describe_pcap_error(&e)));
                None
            }
            Some(Ok(p)) => Some(packet_of(p, self.link)),
        }
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// A pcap record as a [`Packet`].
#[inline]
fn packet_of(p: PcapPacket<'_>, link: LinkType) -> Packet<'_> {
    Packet {
        ts_ns: nanos(p.timestamp),
        link,
        data: match p.data {
            std::borrow::Cow::Borrowed(b) => b,
            // pcap-file's reader and slice parser always lend records out of their buffer
            // or the map, so this arm does not occur; if it ever did, the empty frame would be
            // counted as undecoded (truncated), never silently lost.
            std::borrow::Cow::Owned(_) => &[],
        },
        wire_len: p.orig_len,
    }
}

/// A classic pcap file that is a regular file, read through a memory map: each record is a
/// slice of the page cache, with no read copy, and any number of workers can each walk the
/// same file (see [`crate::offline::run_parallel`]). pcap-file's slice parser reads the
/// records. A capture that another process shortens while it is mapped would fault (SIGBUS);
/// a growing one (tcpdump still writing) is read up to its size at open.
struct MappedPcap {
    map: memmap2::Mmap,
    parser: PcapParser,
    /// Offset of the next record.
    at: usize,
    link: LinkType,
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
        let not_capture = |e: PcapError| SourceError::NotCapture {
            path: path.to_path_buf(),
            reason: describe_pcap_error(&e),
        };
        let (rest, parser) = PcapParser::new(&map[..]).map_err(not_capture)?;
        let at = map.len() - rest.len();
        let linktype = u32::from(parser.header().datalink);
        let link = LinkType::from_pcap(linktype).ok_or(SourceError::UnsupportedLink {
            path: path.to_path_buf(),
            linktype,
        })?;
        Ok(Some(MappedPcap {
            map,
            parser,
            at,
            link,
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
        if rest.is_empty() {
            self.end = Some(SourceEnd::Complete);
            return None;
        }
        match self.parser.next_packet(rest) {
            Err(e) => {
                self.end = Some(SourceEnd::Truncated(describe_pcap_error(&e)));
                None
            }
            Ok((after, p)) => {
                self.at = self.map.len() - after.len();
                Some(packet_of(p, self.link))
            }
        }
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn is_mapped(&self) -> bool {
        true
    }
}

/// What a pcapng interface needs for decoding its packets.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
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
    reader: PcapNgReader<BufReader<File>>,
    path: PathBuf,
    interfaces: Vec<Interface>,
    end: Option<SourceEnd>,
    unsupported: u64,
    /// The current record's bytes.
    frame: Vec<u8>,
}

impl Source for PcapNgSource {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        loop {
            if self.end.is_some() {
                return None;
            }
            // Decide what to do with the block before borrowing the reader for the result,
            // so an interface block can update `self.interfaces`.
            let (raw_ts, iface, wire_len) = match self.reader.next_block() {
                None => {
                    self.end = Some(SourceEnd::Complete);
                    return None;
                }
                Some(Err(e)) => {
                    self.end = Some(SourceEnd::Truncated(describe_pcap_error(&e)));
                    return None;
                }
                Some(Ok(Block::SectionHeader(_))) => {
                    // A new section starts its own interface numbering.
                    self.interfaces.clear();
                    continue;
                }
                Some(Ok(Block::InterfaceDescription(idb))) => {
                    let mut iface = Interface {
                        link: LinkType::from_pcap(u32::from(idb.linktype)),
                        mul: 1_000,
                        div: 1,
                    };
                    for opt in &idb.options {
                        if let InterfaceDescriptionOption::IfTsResol(r) = opt {
                            (iface.mul, iface.div) = resolution(*r);
                        }
                    }
                    self.interfaces.push(iface);
                    continue;
                }
                // The record is copied into `frame`: returning a borrow of the reader from
                // inside this loop is beyond the borrow checker, and pcapng is the rarer format.
                Some(Ok(Block::EnhancedPacket(epb))) => {
                    self.frame.clear();
                    self.frame.extend_from_slice(&epb.data);
                    (
                        nanos(epb.timestamp),
                        usize::try_from(epb.interface_id).unwrap_or(usize::MAX),
                        epb.original_len,
                    )
                }
                Some(Ok(Block::SimplePacket(spb))) => {
                    self.frame.clear();
                    self.frame.extend_from_slice(&spb.data);
                    (0, 0, spb.original_len)
                }
                Some(Ok(_)) => continue,
            };
            let Some(iface) = self.interfaces.get(iface).copied() else {
                self.end = Some(SourceEnd::Truncated(format!(
                    "a packet names interface {iface}, which was never described"
                )));
                return None;
            };
            let Some(link) = iface.link else {
                self.unsupported += 1;
                continue;
            };
            return Some(Packet {
                ts_ns: iface.ts_ns(raw_ts),
                link,
                data: &self.frame,
                wire_len,
            });
        }
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn unsupported_link_packets(&self) -> u64 {
        self.unsupported
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

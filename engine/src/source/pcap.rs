//! Classic pcap: the file header, a memory-mapped file, and a stream (pipe, FIFO).

use super::*;

/// Length of the classic pcap file header.
pub(super) const PCAP_HEADER_LEN: usize = 24;
/// Length of a classic pcap record header (seconds, fraction, caplen, origlen).
pub(super) const PCAP_RECORD_HEADER_LEN: usize = 16;
/// The magic number of a classic pcap with microsecond timestamps, as written.
pub(super) const MAGIC_MICROS: u32 = 0xA1B2_C3D4;
/// The magic number of a classic pcap with nanosecond timestamps, as written.
pub(super) const MAGIC_NANOS: u32 = 0xA1B2_3C4D;
/// The most bytes one record may claim: tshark's and libpcap's limit for the link types
/// linewatch decodes (256 KiB). A record claiming more is not a record: its length field is
/// garbage, and where the next record starts cannot be known.
pub(super) const MAX_RECORD: u32 = 262_144;
/// The link type bits of the header's link field (the upper bits carry FCS information).
pub(super) const LINKTYPE_MASK: u32 = 0x03FF_FFFF;
pub(super) const NS_PER_SEC: u64 = 1_000_000_000;
pub(super) const NS_PER_US: u64 = 1_000;

/// What the classic pcap file header says about its records.
#[derive(Debug, Clone, Copy)]
pub(super) struct PcapFormat {
    pub(super) big_endian: bool,
    /// Nanoseconds per unit of the fraction field: 1 (nanosecond magic) or 1,000.
    pub(super) frac_ns: u64,
    pub(super) link: LinkType,
}

impl PcapFormat {
    /// Reads the file header (the whole of `header` is its 24 bytes, or fewer if the file
    /// ends first). The header's snap length is not kept: it does not limit what is read.
    pub(super) fn parse(header: &[u8], path: &Path) -> Result<PcapFormat, SourceError> {
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
            frac_ns: if nanos { 1 } else { NS_PER_US },
            link,
        })
    }

    /// A record header: (time in ns, bytes captured, length on the wire), or why the framing
    /// is lost at this record. `caplen` above `origlen`, and a fraction of a second at or past
    /// one second, are read as written (as tshark does). Every packet of a replay passes here
    /// (once per worker in a parallel replay), so the header is one fixed-size read with one
    /// byte-order branch, and the refusal is a small value whose message is made only when
    /// asked for ([`RecordTooLong::message`]).
    #[inline]
    pub(super) fn record(
        &self,
        h: &[u8; PCAP_RECORD_HEADER_LEN],
    ) -> Result<(u64, usize, u32), RecordTooLong> {
        let le = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let [mut secs, mut frac, mut caplen, mut origlen] = [le(0), le(4), le(8), le(12)];
        if self.big_endian {
            [secs, frac, caplen, origlen] = [secs, frac, caplen, origlen].map(u32::swap_bytes);
        }
        if caplen > MAX_RECORD {
            return Err(RecordTooLong { caplen });
        }
        let ns = u64::from(secs) * NS_PER_SEC + u64::from(frac) * self.frac_ns;
        // `caplen <= MAX_RECORD`, so it fits any usize.
        Ok((ns, caplen as usize, origlen))
    }
}

/// A record header that claims more than [`MAX_RECORD`] captured bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordTooLong {
    caplen: u32,
}

impl RecordTooLong {
    /// Why reading ends at the record at byte `offset`.
    #[cold]
    pub(super) fn message(self, offset: u64) -> String {
        format!(
            "the record at byte {offset} claims {} captured bytes, more than any capture holds \
             ({MAX_RECORD}): where the next record starts is lost",
            self.caplen
        )
    }
}

/// A classic pcap file that cannot be mapped (a pipe, a FIFO), read through one buffer.
pub(super) struct PcapStream {
    pub(super) stream: Stream,
    pub(super) format: PcapFormat,
    pub(super) path: PathBuf,
    pub(super) end: Option<SourceEnd>,
}

impl PcapStream {
    pub(super) fn open(mut stream: Stream, path: &Path) -> Result<PcapStream, SourceError> {
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
    pub(super) fn next_record(&mut self) -> Result<(u64, usize, u32), SourceEnd> {
        self.stream.consume_pending();
        let whole = self.stream.fill(PCAP_RECORD_HEADER_LEN).map_err(end_of)?;
        if !whole {
            return Err(if self.stream.available() == 0 {
                SourceEnd::Complete
            } else {
                SourceEnd::Truncated(ENDS_INSIDE.into())
            });
        }
        let head = self.stream.bytes(PCAP_RECORD_HEADER_LEN).first_chunk();
        // `fill` made the whole record header available.
        let head = head.ok_or_else(|| SourceEnd::Truncated(ENDS_INSIDE.into()))?;
        let (ts, caplen, origlen) = self
            .format
            .record(head)
            .map_err(|e| SourceEnd::Truncated(e.message(self.stream.offset())))?;
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
#[derive(Debug)]
pub struct MappedPcap {
    pub(super) map: memmap2::Mmap,
    pub(super) format: PcapFormat,
    /// Offset of the next record.
    pub(super) at: usize,
    pub(super) path: PathBuf,
    pub(super) end: Option<SourceEnd>,
    /// The map before this offset has been handed back (see [`RELEASE_EVERY`]).
    pub(super) released: usize,
}

/// Bytes of the map read past before they are handed back with `MADV_DONTNEED`. The pages
/// stay in the page cache, but without this every page read would stay mapped and count in
/// the process's resident set: a 400 MiB capture would look like 400 MiB of linewatch.
pub(super) const RELEASE_EVERY: usize = 2 << 20;

impl MappedPcap {
    /// `Ok(None)` when the file cannot be mapped (a pipe, a FIFO): the caller reads it instead.
    pub(super) fn open(file: &File, path: &Path) -> Result<Option<MappedPcap>, SourceError> {
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
    /// longer borrowed: `next_packet` takes `&mut self`). Out of line: once per 2 MiB.
    #[inline(never)]
    pub(super) fn release_behind(&mut self) {
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

/// How reading ends at `at` of `map`, where no record can be read. Out of line: it runs once.
#[cold]
#[inline(never)]
fn end_at(map: &[u8], at: usize, format: &PcapFormat) -> SourceEnd {
    let rest = &map[at..];
    match rest.first_chunk() {
        None if rest.is_empty() => SourceEnd::Complete,
        Some(head) => match format.record(head) {
            Err(e) => SourceEnd::Truncated(e.message(at as u64)),
            Ok(_) => SourceEnd::Truncated(ENDS_INSIDE.into()),
        },
        None => SourceEnd::Truncated(ENDS_INSIDE.into()),
    }
}

impl Source for MappedPcap {
    /// Short and inlined into the replay's loops (see [`Source::as_mapped`]): the page
    /// release and the end are out of line. Once the end is reached `at` stays there, so
    /// every later call ends the same way.
    #[inline(always)]
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.at - self.released >= RELEASE_EVERY {
            self.release_behind();
        }
        let rest = &self.map[self.at..];
        if let Some((head, body)) = rest.split_first_chunk::<PCAP_RECORD_HEADER_LEN>() {
            if let Ok((ts_ns, caplen, wire_len)) = self.format.record(head) {
                if let Some(data) = body.get(..caplen) {
                    self.at += PCAP_RECORD_HEADER_LEN + caplen;
                    return Some(Packet {
                        ts_ns,
                        link: self.format.link,
                        data,
                        wire_len,
                    });
                }
            }
        }
        if self.end.is_none() {
            self.end = Some(end_at(&self.map, self.at, &self.format));
        }
        None
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

    fn as_mapped(&mut self) -> Option<&mut MappedPcap> {
        Some(self)
    }
}

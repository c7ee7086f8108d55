use super::pcap::*;
use super::pcapng::*;
use super::stream::*;
use super::*;

/// A file in the temp directory holding `bytes`, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("linewatch-source-{}-{name}", std::process::id()));
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
    let stream = PcapStream::open(Stream::new(File::open(&file.0).unwrap(), &[]), &file.0).unwrap();
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

//! Capture latency from send stamps: a worker told the packet-time offset (live) records
//! "packet time − offset − stamp" in µs for stamped frames, once it flushes its notes (after a
//! batch, or at an epoch's swap), and nothing for others; a worker without it (offline, and so
//! a replay) records nothing, and counts the frames as usual.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arc_swap::ArcSwap;
use linewatch_engine::aggregate::{AggregatorConfig, Output, Snapshot};
use linewatch_engine::alert::{AlertConfig, AlertTransition, Threshold};
use linewatch_engine::counters::{CoreDelta, Counter, Tally};
use linewatch_engine::offline::{self, EngineConfig};
use linewatch_engine::source::{Packet, Source, SourceEnd};
use linewatch_engine::summary::summary;
use linewatch_engine::worker::{Worker, WorkerConfig, CAPTURE_PENDING};
use linewatch_model::{AlertRecord, Report};
use linewatch_parser::wire::{write_send_stamp, LinkType, SEND_STAMP_LEN};
use linewatch_testkit::frame::{Frame, TcpFlags, TcpRepr, ETHERNET_MIN_FRAME};

/// Packet time minus CLOCK_MONOTONIC, as a live worker is told: a Unix time around 2026 minus
/// a host up for a day.
const OFFSET_NS: u64 = 1_790_000_000_000_000_000 - 86_400_000_000_000;
/// CLOCK_MONOTONIC of the first frame's arrival.
const SEEN_MONO_NS: u64 = 86_400_000_000_000;

/// Ethernet + IPv4 + TCP 192.0.2.1:49152 → 192.0.2.2:80 carrying `payload` at `seq` (PSH
/// ACK), then `trailer` after the IP packet's end.
fn frame_at(seq: u32, payload: &[u8], trailer: &[u8]) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: 49152,
        dst_port: 80,
        seq,
        ack: 2,
        flags: TcpFlags::PSH | TcpFlags::ACK,
        payload,
        ..TcpRepr::default()
    };
    Frame {
        trailer,
        ..Frame::tcp([192, 0, 2, 1].into(), [192, 0, 2, 2].into(), tcp)
    }
    .to_vec()
}

/// The same at sequence number 1.
fn frame(payload: &[u8], trailer: &[u8]) -> Vec<u8> {
    frame_at(1, payload, trailer)
}

/// `frame_at` with a send stamp for `sent_mono_ns` as its last 16 bytes.
fn stamped_at(seq: u32, payload: &[u8], sent_mono_ns: u64) -> Vec<u8> {
    let mut stamp = [0; SEND_STAMP_LEN];
    write_send_stamp(&mut stamp, sent_mono_ns);
    let f = frame_at(seq, payload, &stamp);
    assert!(f.len() >= ETHERNET_MIN_FRAME);
    f
}

/// The same at sequence number 1.
fn stamped(payload: &[u8], sent_mono_ns: u64) -> Vec<u8> {
    stamped_at(1, payload, sent_mono_ns)
}

const GET: &[u8] = b"GET /stamped HTTP/1.1\r\nHost: lab\r\n\r\n";

fn live_worker() -> Worker {
    let mut worker = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    worker.set_monotonic_offset(Some(OFFSET_NS));
    worker
}

fn feed(worker: &mut Worker, seen_mono_ns: u64, f: &[u8]) {
    let ts = seen_mono_ns.wrapping_add(OFFSET_NS);
    worker.process_frame(ts, LinkType::Ethernet, f, u32::try_from(f.len()).unwrap());
}

#[test]
fn stamped_frames_record_their_latency_in_us() {
    let mut w = live_worker();
    // 7 µs and 7.999 µs (floored to 7), 200 µs, and 0.5 µs (recorded as 0).
    for (latency_ns, payload) in [
        (7_000, GET),
        (7_999, &b""[..]),
        (200_000, b"\r\n"),
        (500, b""),
    ] {
        feed(
            &mut w,
            SEEN_MONO_NS,
            &stamped(payload, SEEN_MONO_NS - latency_ns),
        );
    }
    // Noted, not yet in the histogram: that is the batch loop's flush.
    assert!(w.delta().tally.capture_latency_us.is_empty());
    w.flush_capture_latency();
    let h = &w.delta().tally.capture_latency_us;
    assert_eq!(h.len(), 4);
    assert_eq!(
        (h.count_at(0), h.count_at(7), h.count_at(200)),
        (1, 2, 1),
        "histogram: min {} max {}",
        h.min(),
        h.max()
    );
    assert_eq!(w.delta().get(Counter::StampInFuture), 0);
    // The stamp is not payload: the request still parses as exactly one.
    assert_eq!(w.delta().get(Counter::Requests), 1);
    assert_eq!(w.delta().get(Counter::Malformed), 0);

    // The aggregator's merge carries the histogram over; a clear empties it.
    let mut total = Tally::new(16);
    total.merge(&w.delta().tally);
    total.merge(&w.delta().tally);
    assert_eq!(total.capture_latency_us.len(), 8);
    assert_eq!(total.capture_latency_us.count_at(7), 4);
    total.clear();
    assert!(total.capture_latency_us.is_empty());
}

#[test]
fn unstamped_frames_record_nothing() {
    let mut w = live_worker();
    feed(&mut w, SEEN_MONO_NS, &frame(GET, &[]));
    // Ethernet padding, as on a short frame.
    feed(&mut w, SEEN_MONO_NS, &frame(b"", &[0; 6]));
    // A stamp-sized trailer with another magic.
    let mut wrong = stamped(b"", SEEN_MONO_NS - 1_000);
    let at = wrong.len() - SEND_STAMP_LEN;
    wrong[at] = b'X';
    feed(&mut w, SEEN_MONO_NS, &wrong);
    // A stamp cut by the snap length.
    let cut = stamped(b"", SEEN_MONO_NS - 1_000);
    feed(&mut w, SEEN_MONO_NS, &cut[..cut.len() - 1]);
    w.flush_capture_latency();
    assert!(w.delta().tally.capture_latency_us.is_empty());
    assert_eq!(w.delta().get(Counter::StampInFuture), 0);
    assert_eq!(w.delta().get(Counter::Packets), 4);
    assert_eq!(w.delta().get(Counter::Requests), 1);
}

#[test]
fn a_stamp_in_the_future_is_counted_not_recorded() {
    let mut w = live_worker();
    feed(&mut w, SEEN_MONO_NS, &stamped(b"", SEEN_MONO_NS + 1));
    feed(&mut w, SEEN_MONO_NS, &stamped(b"", SEEN_MONO_NS)); // same nanosecond: 0 µs
    w.flush_capture_latency();
    assert_eq!(w.delta().get(Counter::StampInFuture), 1);
    let h = &w.delta().tally.capture_latency_us;
    assert_eq!((h.len(), h.count_at(0)), (1, 1));
}

#[test]
fn a_worker_without_the_offset_ignores_stamps() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    feed(&mut w, SEEN_MONO_NS, &stamped(GET, SEEN_MONO_NS - 7_000));
    w.flush_capture_latency();
    assert!(w.delta().tally.capture_latency_us.is_empty());
    assert_eq!(w.delta().get(Counter::StampInFuture), 0);
    assert_eq!(w.delta().get(Counter::Requests), 1);
}

#[test]
fn stamped_frames_past_the_note_space_are_counted_as_dropped() {
    let mut w = live_worker();
    let f = stamped(b"", SEEN_MONO_NS - 9_000);
    for _ in 0..CAPTURE_PENDING + 3 {
        feed(&mut w, SEEN_MONO_NS, &f);
    }
    w.flush_capture_latency();
    let recorded = w.delta().tally.capture_latency_us.count_at(9);
    assert_eq!(recorded, u64::try_from(CAPTURE_PENDING).unwrap());
    assert_eq!(w.delta().get(Counter::CaptureLatencyDropped), 3);
    // A flush frees the space.
    feed(&mut w, SEEN_MONO_NS, &f);
    w.flush_capture_latency();
    assert_eq!(w.delta().tally.capture_latency_us.count_at(9), recorded + 1);
    assert_eq!(w.delta().get(Counter::CaptureLatencyDropped), 3);
}

#[test]
fn a_delta_swap_takes_the_notes_with_it() {
    let mut w = live_worker();
    feed(&mut w, SEEN_MONO_NS, &stamped(b"", SEEN_MONO_NS - 9_000));
    feed(&mut w, SEEN_MONO_NS, &stamped(b"", SEEN_MONO_NS - 9_000));
    let old = w.swap_delta(CoreDelta::new(1));
    assert_eq!(old.tally.capture_latency_us.count_at(9), 2);
    w.flush_capture_latency();
    assert!(w.delta().tally.capture_latency_us.is_empty());
}

/// Stamped frames in memory, as a capture file would hand them over.
struct Frames {
    frames: Vec<(u64, Vec<u8>)>,
    next: usize,
}

impl Source for Frames {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        let (ts_ns, data) = self.frames.get(self.next)?;
        self.next += 1;
        Some(Packet {
            ts_ns: *ts_ns,
            link: LinkType::Ethernet,
            data,
            wire_len: u32::try_from(data.len()).unwrap(),
        })
    }
    fn end(&self) -> SourceEnd {
        SourceEnd::Complete
    }
    fn describe(&self) -> String {
        "stamped frames".into()
    }
}

struct Silent;

impl Output for Silent {
    fn alert(&mut self, _: &AlertTransition, _: &[AlertRecord]) {}
    fn report(&mut self, _: &Report) {}
}

#[test]
fn a_replay_of_stamped_frames_records_no_capture_latency() {
    // Packet times that are exactly stamp + offset + 7 µs: a live worker would record them.
    let frames = (0..3u32)
        .map(|i| {
            let sent = SEEN_MONO_NS + u64::from(i) * 1_000_000_000;
            let seq = 1 + i * u32::try_from(GET.len()).unwrap();
            (sent + 7_000 + OFFSET_NS, stamped_at(seq, GET, sent))
        })
        .collect();
    let config = EngineConfig {
        workers: 1,
        worker: WorkerConfig::default(),
        aggregator: AggregatorConfig {
            alert: AlertConfig {
                window_secs: 120,
                threshold: Threshold::Fixed(10.0),
            },
            report_interval_secs: 10,
            top_n: 10,
            scan: Default::default(),
            metrics: false,
            dashboard: false,
            top_by: Vec::new(),
            retention_secs: None,
        },
    };
    let run = offline::run(
        Box::new(Frames { frames, next: 0 }),
        &config,
        Box::new(Silent),
        Arc::new(ArcSwap::from_pointee(Snapshot::default())),
        &AtomicBool::new(false),
    );
    let total = &run.aggregated.total;
    assert_eq!(total.get(Counter::Requests), 3);
    assert!(total.capture_latency_us.is_empty());
    assert_eq!(total.get(Counter::StampInFuture), 0);
    let s = summary(&run);
    let names: Vec<_> = s.latency.iter().map(|t| t.name).collect();
    assert_eq!(names, ["response_us", "capture_us", "batch_service_ns"]);
    assert_eq!(s.latency[1].percentiles.count, 0);
}

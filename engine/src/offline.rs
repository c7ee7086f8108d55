//! Offline replay: a capture file through the same workers and aggregator as live capture.
//!
//! Contract: [`run`] delivers every packet of the source to exactly one worker, in file
//! order per worker, and returns when every packet is counted and every epoch merged. The
//! answer is the same on every run and for any worker count: flows are sharded by a hash that
//! is the same in both directions, and epochs follow packet time.
//!
//! Two ways to run it. [`run_parallel`] (two or more workers on a memory-mapped pcap file, what
//! `--read` does by default on a machine with two or more CPUs): every worker walks the whole
//! capture through its own map of it, reads each frame far enough to hash its flow (the common
//! frame's addresses and ports at fixed offsets, any other by a decode), and counts the frames
//! that hash to it; one aggregator thread merges. [`run`] (one worker, or a
//! pcapng file): the caller's thread reads the file and shards packets
//! into per-worker batches; N worker threads count; one aggregator thread merges. Batches travel over bounded channels
//! and come back empty for reuse, so a steady replay allocates nothing per packet and at most
//! [`BATCHES_PER_WORKER`] batches per worker are in flight.
//!
//! Epochs: the reader keeps the running maximum of packet seconds (a capture's timestamps may
//! step back a little; such packets count in the current second). When it moves on, the
//! reader sends every worker its batch of the old second, even an empty one: that tells each
//! worker to retire the old epoch, so the aggregator can close it (see [`crate::epoch`]).
//!
//! The aggregator, the batch bookkeeping and the [`RunResult`] are the live capture's too: they
//! live in [`crate::pipeline`].

use std::convert::identity;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use arc_swap::ArcSwap;
use crossbeam_channel::{bounded, Receiver, Sender};
use linewatch_parser::wire::{
    decode_frame, ip_protocol, EtherType, LinkType, TcpSegment, WireError,
};

use crate::aggregate::{Aggregated, AggregatorConfig, Output, Snapshot};
use crate::counters::CoreDelta;
use crate::epoch::WorkerEpoch;
use crate::live::sys::NS_PER_SEC;
use crate::owner::{ipv4_owner, segment_owner};
use crate::pipeline::{note_packet_time, record_batch, start_aggregator, RunResult};
use crate::scan::GuardInfo;
use crate::source::{Packet, Source};
use crate::worker::{may_be_fragment, Shard, Worker, WorkerConfig};

/// Frames per batch: enough to amortise the channel hand-off (~100 ns) to well under a
/// nanosecond per frame, small enough to keep a batch in L2.
pub const BATCH_FRAMES: usize = 256;

/// Bytes per batch: 256 full-size Ethernet frames and room for jumbo ones. A single frame
/// longer than this (a GRO super-packet in a capture) is cut to it.
pub const BATCH_BYTES: usize = 512 * 1024;

/// Batches per worker in flight (being filled, queued, being counted).
pub const BATCHES_PER_WORKER: usize = 8;

/// Packets between two looks at the stop flag.
const STOP_CHECK_EVERY: u32 = 4096;

/// Engine settings for a replay.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Per-worker settings.
    pub worker: WorkerConfig,
    /// Aggregator settings.
    pub aggregator: AggregatorConfig,
}

#[derive(Debug, Clone, Copy)]
struct FrameRef {
    ts_ns: u64,
    start: usize,
    len: usize,
    wire_len: u32,
    link: LinkType,
}

#[derive(Debug)]
struct Batch {
    epoch: u64,
    bytes: Vec<u8>,
    frames: Vec<FrameRef>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            epoch: 0,
            bytes: Vec::with_capacity(BATCH_BYTES),
            frames: Vec::with_capacity(BATCH_FRAMES),
        }
    }

    fn fits(&self, len: usize) -> bool {
        self.frames.len() < BATCH_FRAMES && self.bytes.len() + len <= BATCH_BYTES
    }
}

struct WorkerLink {
    full: Sender<Batch>,
    empty: Receiver<Batch>,
    current: Batch,
}

/// Replays `source` through `config.workers` workers; events go to `output`, `--json` events
/// to the workers' sinks, snapshots to `snapshot`. Setting `stop` ends the replay early (what was read so
/// far is still counted and merged).
pub fn run(
    mut source: Box<dyn Source + Send>,
    config: &EngineConfig,
    output: Box<dyn Output>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stop: &AtomicBool,
) -> RunResult {
    let workers = config.workers.max(1);
    let (epochs, aggregator) =
        start_aggregator(workers, &config.aggregator, output, snapshot, identity);

    let mut links = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for (i, epoch) in epochs.into_iter().enumerate() {
        let (full_tx, full_rx) = bounded::<Batch>(BATCHES_PER_WORKER);
        let (empty_tx, empty_rx) = bounded::<Batch>(BATCHES_PER_WORKER);
        for _ in 1..BATCHES_PER_WORKER {
            // Cannot fail: the channel has room for all of them.
            let _ = empty_tx.send(Batch::new());
        }
        let worker_config = config.worker.clone();
        let handle = thread::Builder::new()
            .name(format!("linewatch-worker-{i}"))
            .spawn(move || work(worker_config, (i, workers), epoch, full_rx, empty_tx))
            .expect("spawning a worker thread");
        handles.push(handle);
        links.push(WorkerLink {
            full: full_tx,
            empty: empty_rx,
            current: Batch::new(),
        });
    }

    let (packet_times, mut interrupted) = match source.as_mapped() {
        // The common case, read without a call through the trait object per packet.
        Some(mapped) => read(mapped, &mut links, stop),
        None => read(&mut *source, &mut links, stop),
    };
    // A stream that gave up waiting for its writer on `stop` ends as complete: the run was
    // still cut short.
    interrupted |= stop.load(Ordering::Relaxed);
    for link in &mut links {
        send(link);
    }
    drop(links);
    for handle in handles {
        // A worker that panicked has aborted the process (panic = "abort"); nothing to add.
        let _ = handle.join();
    }
    let aggregated = aggregator
        .join()
        .expect("the aggregator thread ended normally");
    replay_result(aggregated, &*source, packet_times, interrupted, config)
}

/// The reader loop of [`run`] over one kind of source: shards every packet into the links'
/// batches. Returns the packet times seen and whether `stop` cut the reading short.
fn read<S: Source + ?Sized>(
    source: &mut S,
    links: &mut [WorkerLink],
    stop: &AtomicBool,
) -> (Option<(u64, u64)>, bool) {
    let workers = links.len();
    let mut epoch = 0u64;
    // Where the second after `epoch` starts: a packet before it stays in the epoch, which
    // costs one compare instead of a division.
    let mut next_second_ns = NS_PER_SEC;
    let mut packet_times: Option<(u64, u64)> = None;
    let mut interrupted = false;
    let mut until_check = STOP_CHECK_EVERY;
    while let Some(p) = source.next_packet() {
        until_check -= 1;
        if until_check == 0 {
            until_check = STOP_CHECK_EVERY;
            // Relaxed: the flag carries no data, only "stop soon".
            if stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
        }
        note_packet_time(&mut packet_times, p.ts_ns);
        if p.ts_ns >= next_second_ns {
            let second = p.ts_ns / NS_PER_SEC;
            next_second_ns = second.saturating_add(1).saturating_mul(NS_PER_SEC);
            // Only false in the last representable second, which it already is.
            if second > epoch {
                if epoch != 0 {
                    for link in links.iter_mut() {
                        send(link);
                    }
                }
                epoch = second;
                for link in links.iter_mut() {
                    link.current.epoch = epoch;
                }
            }
        }
        if workers == 1 {
            push(&mut links[0], &p);
            continue;
        }
        if let Some(w) = common_owner(p.link, p.data, workers) {
            push(&mut links[w], &p);
            continue;
        }
        // An IP fragment goes to every worker: the one that owns its flow is known only
        // once its datagram is whole (see `Worker::set_shard`).
        let decoded = decode_frame(p.link, p.data);
        if may_be_fragment(&decoded) {
            for link in links.iter_mut() {
                push(link, &p);
            }
        } else {
            push(&mut links[owner(&decoded, workers)], &p);
        }
    }
    (packet_times, interrupted)
}

/// Replays with every worker reading the capture itself: `sources` holds one reader of the
/// same file per worker (the page cache serves them all). Each worker walks every packet,
/// moves its epoch on packet time exactly as the reader of [`run`] does, and counts the
/// packets whose flow hashes to it; the others it only reads far enough to hash. Nothing is
/// copied and nothing crosses threads per packet, so on N cores the counting runs N-wide
/// instead of behind one reader thread. The answer is the same as [`run`]'s for the same
/// worker count: the same flows meet on the same workers in file order, and the epochs follow
/// the same running maximum of packet seconds.
pub fn run_parallel(
    sources: Vec<Box<dyn Source + Send>>,
    config: &EngineConfig,
    output: Box<dyn Output>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stop: &AtomicBool,
) -> RunResult {
    let workers = sources.len().max(1);
    let (epochs, aggregator) =
        start_aggregator(workers, &config.aggregator, output, snapshot, identity);
    let interrupted = AtomicBool::new(false);
    let mut scans: Vec<Scan> = thread::scope(|scope| {
        let handles: Vec<_> = sources
            .into_iter()
            .zip(epochs)
            .enumerate()
            .map(|(index, (source, epoch))| {
                let worker_config = config.worker.clone();
                let interrupted = &interrupted;
                thread::Builder::new()
                    .name(format!("linewatch-worker-{index}"))
                    .spawn_scoped(scope, move || {
                        scan(
                            source,
                            index,
                            workers,
                            &worker_config,
                            epoch,
                            stop,
                            interrupted,
                        )
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        // A worker that panicked has aborted the process (panic = "abort").
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let aggregated = aggregator
        .join()
        .expect("the aggregator thread ended normally");
    // Every worker read the same packets; the first one's reader speaks for the file.
    let first = scans.swap_remove(0);
    replay_result(
        aggregated,
        &*first.source,
        first.packet_times,
        // Relaxed: read after every worker was joined.
        interrupted.load(Ordering::Relaxed),
        config,
    )
}

/// A replay's [`RunResult`]: what `source` says of the file, and no capture figures.
fn replay_result(
    aggregated: Aggregated,
    source: &dyn Source,
    packet_times: Option<(u64, u64)>,
    interrupted: bool,
    config: &EngineConfig,
) -> RunResult {
    RunResult {
        aggregated,
        end: source.end(),
        source: source.describe(),
        unsupported_link: source.unsupported_link_packets(),
        unreadable_records: source.unreadable_records(),
        packet_times,
        interrupted,
        capture: None,
        guard: GuardInfo::of(&config.aggregator.scan, None),
    }
}

/// What one worker of [`run_parallel`] hands back.
struct Scan {
    source: Box<dyn Source + Send>,
    packet_times: Option<(u64, u64)>,
}

/// One worker of [`run_parallel`]: reads every packet, counts its own share.
fn scan(
    mut source: Box<dyn Source + Send>,
    index: usize,
    workers: usize,
    config: &WorkerConfig,
    epoch: WorkerEpoch,
    stop: &AtomicBool,
    interrupted: &AtomicBool,
) -> Scan {
    let share = (index, workers);
    let packet_times = match source.as_mapped() {
        // The common case, read without a call through the trait object per packet.
        Some(mapped) => walk(mapped, share, config, epoch, stop, interrupted),
        None => walk(&mut *source, share, config, epoch, stop, interrupted),
    };
    Scan {
        source,
        packet_times,
    }
}

/// The loop of [`scan`] over one kind of source: the packet times it saw.
fn walk<S: Source + ?Sized>(
    source: &mut S,
    (index, workers): (usize, usize),
    config: &WorkerConfig,
    mut epoch: WorkerEpoch,
    stop: &AtomicBool,
    interrupted: &AtomicBool,
) -> Option<(u64, u64)> {
    let mut worker = Worker::new(config, CoreDelta::new(0));
    if workers > 1 {
        worker.set_shard(Shard {
            index,
            workers,
            owner,
        });
    }
    let mut second = 0u64;
    // Where the second after `second` starts: a packet before it stays in the epoch, which
    // costs one compare instead of a division.
    let mut next_second_ns = NS_PER_SEC;
    let mut packet_times: Option<(u64, u64)> = None;
    let mut until_check = STOP_CHECK_EVERY;
    // Frames counted since the batch clock started: batch service time is measured over
    // BATCH_FRAMES of this worker's own frames, as [`run`]'s workers measure a batch.
    let mut in_batch = 0usize;
    let mut batch_started = Instant::now();
    while let Some(p) = source.next_packet() {
        until_check -= 1;
        if until_check == 0 {
            until_check = STOP_CHECK_EVERY;
            // Relaxed: the flag carries no data, only "stop soon". Every worker stops at its
            // own next check; what each read before is counted.
            if stop.load(Ordering::Relaxed) {
                interrupted.store(true, Ordering::Relaxed);
                break;
            }
        }
        note_packet_time(&mut packet_times, p.ts_ns);
        if p.ts_ns >= next_second_ns {
            let s = p.ts_ns / NS_PER_SEC;
            next_second_ns = s.saturating_add(1).saturating_mul(NS_PER_SEC);
            // Only false in the last representable second, which it already is.
            if s > second {
                if in_batch > 0 {
                    close_batch(&mut worker, &mut in_batch, batch_started);
                }
                second = s;
                epoch.enter(&mut worker, second);
            }
        }
        // As [`run`] batches it: a frame longer than a batch is cut to one.
        let data = &p.data[..p.data.len().min(BATCH_BYTES)];
        // Most frames belong to another worker: those of the common shape are told so from
        // their fixed-offset fields alone, without a decode, and this worker's own go to its
        // common-frame path, as in a single-worker replay.
        let decoded = match common_owner(p.link, data, workers) {
            Some(w) if w != index => continue,
            Some(_) => None,
            None => {
                let decoded = decode_frame(p.link, data);
                if workers > 1 && owner(&decoded, workers) != index && !may_be_fragment(&decoded) {
                    continue;
                }
                Some(decoded)
            }
        };
        if in_batch == 0 {
            batch_started = Instant::now();
        }
        match decoded {
            None => worker.process_frame(p.ts_ns, p.link, data, p.wire_len),
            Some(decoded) => worker.process_decoded(p.ts_ns, p.link, data, decoded, p.wire_len),
        }
        in_batch += 1;
        if in_batch == BATCH_FRAMES {
            close_batch(&mut worker, &mut in_batch, batch_started);
        }
    }
    if in_batch > 0 {
        close_batch(&mut worker, &mut in_batch, batch_started);
    }
    epoch.finish(&mut worker);
    packet_times
}

/// Records a batch's service time and flushes its events to the sink.
fn close_batch(worker: &mut Worker, in_batch: &mut usize, started: Instant) {
    record_batch(worker, started);
    *in_batch = 0;
    worker.flush_events();
}

/// Copies a packet into the link's current batch, sending the batch first if it is full.
#[inline(always)]
fn push(link: &mut WorkerLink, p: &Packet<'_>) {
    let len = p.data.len().min(BATCH_BYTES);
    if !link.current.fits(len) {
        send(link);
    }
    let start = link.current.bytes.len();
    link.current.bytes.extend_from_slice(&p.data[..len]);
    link.current.frames.push(FrameRef {
        ts_ns: p.ts_ns,
        start,
        len,
        wire_len: p.wire_len,
        link: p.link,
    });
}

/// Sends the link's current batch to its worker and starts a new one with the same epoch.
fn send(link: &mut WorkerLink) {
    let epoch = link.current.epoch;
    // Blocks while the worker has all batches: backpressure, nothing dropped offline.
    let fresh = link.empty.recv().unwrap_or_else(|_| Batch::new());
    let mut full = std::mem::replace(&mut link.current, fresh);
    full.epoch = epoch;
    link.current.epoch = epoch;
    // A worker only hangs up by panicking, which aborts the process (panic = "abort").
    let _ = link.full.send(full);
}

/// [`owner`] of an undecoded frame.
#[cfg(test)]
fn shard(link: LinkType, frame: &[u8], workers: usize) -> usize {
    owner(&decode_frame(link, frame), workers)
}

/// The worker a decoded frame belongs to ([`segment_owner`]); a frame that does not decode
/// goes to worker 0.
fn owner(decoded: &Result<TcpSegment<'_>, WireError>, workers: usize) -> usize {
    match decoded {
        Ok(seg) => segment_owner(seg, workers),
        Err(_) => 0,
    }
}

/// The worker that owns a frame of the common shape (untagged Ethernet, IPv4 without options
/// or fragmentation, a whole TCP header), read from fixed offsets without decoding the frame;
/// `None` for one worker and for any other frame, which the caller decodes. For every frame it
/// answers, the answer is [`owner`] of [`decode_frame`], and the frame is no fragment: the
/// tests are those by which `decode_frame` reads the same frame on its own fixed-offset path.
#[inline]
fn common_owner(link: LinkType, frame: &[u8], workers: usize) -> Option<usize> {
    use linewatch_parser::wire::common_frame::*;
    if workers < 2 || link != LinkType::Ethernet {
        return None;
    }
    let head: &[u8; MIN_FRAME] = frame.first_chunk()?;
    let be16 = |at: usize| u16::from_be_bytes([head[at], head[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    // As `decode_frame`: the packet ends at its declared length or the frame's end, whichever
    // comes first, and the TCP header must fit in it.
    let end = IP + usize::from(be16(TOTAL_LEN)).min(frame.len() - IP);
    let tcp_len = usize::from(head[DATA_OFFSET] >> 4) * DATA_OFFSET_UNIT;
    let common = be16(ETHERTYPE) == EtherType::IPV4
        && head[IP] == VER_IHL
        && head[PROTOCOL] == ip_protocol::TCP
        && be16(FLAGS_FRAG_OFFSET) & FRAGMENT_BITS == 0
        && tcp_len >= TCP_MIN_LEN
        && end >= TCP + tcp_len;
    common.then(|| {
        ipv4_owner(
            be32(SOURCE),
            be16(SRC_PORT),
            be32(DESTINATION),
            be16(DST_PORT),
            workers,
        )
    })
}

/// A worker thread of [`run`]: counts batches until the reader hangs up; `(index, workers)`
/// is its place among them.
fn work(
    config: WorkerConfig,
    (index, workers): (usize, usize),
    mut epoch: WorkerEpoch,
    full: Receiver<Batch>,
    empty: Sender<Batch>,
) {
    let mut worker = Worker::new(&config, CoreDelta::new(0));
    if workers > 1 {
        worker.set_shard(Shard {
            index,
            workers,
            owner,
        });
    }
    for mut batch in full {
        epoch.enter(&mut worker, batch.epoch);
        if !batch.frames.is_empty() {
            let started = Instant::now();
            for f in &batch.frames {
                worker.process_frame(
                    f.ts_ns,
                    f.link,
                    &batch.bytes[f.start..f.start + f.len],
                    f.wire_len,
                );
            }
            record_batch(&mut worker, started);
            worker.flush_events();
        }
        batch.bytes.clear();
        batch.frames.clear();
        // The reader may have finished and hung up: then the batch is simply dropped.
        let _ = empty.send(batch);
    }
    epoch.finish(&mut worker);
}

#[cfg(test)]
mod tests {
    use linewatch_testkit::frame::{tcp_frame, TcpFlags};

    use super::*;

    /// A bare ACK between two ends, in Ethernet + IPv4 + TCP.
    fn frame(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        tcp_frame((src, sport).into(), (dst, dport).into(), TcpFlags::ACK, b"")
    }

    #[test]
    fn both_directions_of_a_flow_go_to_one_worker_and_flows_spread() {
        let mut per_worker = [0usize; 4];
        for i in 0..1000u16 {
            let [hi, lo] = i.to_be_bytes();
            let a = [10, 0, hi, lo];
            let b = [192, 0, 2, 80];
            let out = frame(a, 30000 + i, b, 80);
            let back = frame(b, 80, a, 30000 + i);
            for workers in 2..=4 {
                assert_eq!(
                    shard(LinkType::Ethernet, &out, workers),
                    shard(LinkType::Ethernet, &back, workers),
                    "flow {i} with {workers} workers"
                );
            }
            per_worker[shard(LinkType::Ethernet, &out, 4)] += 1;
        }
        // 1000 flows over 4 workers: each gets a fair share (a broken hash gives one all).
        for n in per_worker {
            assert!((150..350).contains(&n), "{per_worker:?}");
        }
        // A frame that does not decode goes to worker 0, on every worker's reckoning.
        assert_eq!(shard(LinkType::Ethernet, &[0u8; 10], 4), 0);
    }

    /// What a worker of [`run_parallel`] must conclude of a frame: `None` when every worker is
    /// offered it (a possible fragment), else its owner.
    fn claim(link: LinkType, frame: &[u8], workers: usize) -> Option<usize> {
        let decoded = decode_frame(link, frame);
        (!may_be_fragment(&decoded)).then(|| owner(&decoded, workers))
    }

    /// [`common_owner`] answers only what a decode answers. Returns whether it answered.
    fn check_common(link: LinkType, frame: &[u8]) -> bool {
        let mut answered = false;
        for workers in 2..=4 {
            if let Some(w) = common_owner(link, frame, workers) {
                assert_eq!(
                    Some(w),
                    claim(link, frame, workers),
                    "{workers} workers, {link:?} frame {frame:02x?}"
                );
                answered = true;
            }
        }
        assert_eq!(common_owner(link, frame, 1), None);
        answered
    }

    /// Every truncation and every one-byte change of the headers of `base`: the number of
    /// variants the fixed-offset path answered.
    fn check_variants(link: LinkType, base: &[u8]) -> usize {
        let mut answered = 0;
        for len in 0..=base.len() {
            answered += usize::from(check_common(link, &base[..len]));
        }
        let mut frame = base.to_vec();
        for at in 0..base.len().min(80) {
            for value in 0..=u8::MAX {
                frame[at] = value;
                answered += usize::from(check_common(link, &frame));
            }
            frame[at] = base[at];
        }
        answered
    }

    #[test]
    fn the_fixed_offset_owner_is_the_decoded_owner_for_crafted_frames() {
        let v4 = |a: [u8; 4], p: u16| std::net::SocketAddr::from((a, p));
        let v6 = |last: u16, p: u16| {
            std::net::SocketAddr::from((
                std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last),
                p,
            ))
        };
        let plain = tcp_frame(
            v4([10, 1, 2, 3], 40000),
            v4([192, 0, 2, 80], 80),
            TcpFlags::ACK,
            b"GET / HTTP/1.1\r\n\r\n",
        );
        // The common frame is answered, as are most of its variants (other payloads, ports,
        // addresses); a broken fast path that never answers fails here.
        assert!(check_common(LinkType::Ethernet, &plain));
        assert!(check_variants(LinkType::Ethernet, &plain) > 40 * 256);
        // Never answered: another link type, a VLAN tag, IPv6, fragments.
        for link in [LinkType::RawIp, LinkType::LinuxSll, LinkType::Null] {
            check_variants(link, &plain);
            assert!(!check_common(link, &plain));
        }
        let mut tagged = plain[..12].to_vec();
        tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x05]);
        tagged.extend_from_slice(&plain[12..]);
        assert!(!check_common(LinkType::Ethernet, &tagged));
        check_variants(LinkType::Ethernet, &tagged);
        let six = tcp_frame(
            v6(1, 40000),
            v6(2, 80),
            TcpFlags::ACK,
            b"GET / HTTP/1.1\r\n\r\n",
        );
        assert!(!check_common(LinkType::Ethernet, &six));
        check_variants(LinkType::Ethernet, &six);
        let whole = linewatch_testkit::frame::Frame::tcp(
            [10, 1, 2, 3].into(),
            [192, 0, 2, 80].into(),
            linewatch_testkit::frame::TcpRepr {
                src_port: 40000,
                dst_port: 80,
                payload: &[b'x'; 64],
                ..Default::default()
            },
        );
        for piece in whole.fragments(7, &[8, 32]) {
            assert!(!check_common(LinkType::Ethernet, &piece));
            check_variants(LinkType::Ethernet, &piece);
        }
        // Options in the IP header (IHL 6) and in TCP (data offset 6).
        let mut ip_options = plain[..34].to_vec();
        ip_options[14] = 0x46;
        ip_options.extend_from_slice(&[1, 1, 1, 0]);
        ip_options.extend_from_slice(&plain[34..]);
        check_variants(LinkType::Ethernet, &ip_options);
        let mut tcp_options = plain.clone();
        tcp_options[46] = 0x60;
        assert!(check_common(LinkType::Ethernet, &tcp_options));
        check_variants(LinkType::Ethernet, &tcp_options);
    }

    #[test]
    fn the_fixed_offset_owner_is_the_decoded_owner_on_the_corpus() {
        let Some(dir) = linewatch_testkit::corpus::file("pcaps") else {
            return;
        };
        let mut answered = 0usize;
        let mut files = 0;
        for entry in std::fs::read_dir(dir).expect("the corpus directory reads") {
            let path = entry.expect("a directory entry").path();
            let Ok(mut source) = crate::source::open_capture(&path) else {
                continue;
            };
            files += 1;
            while let Some(p) = source.next_packet() {
                answered += usize::from(check_common(p.link, p.data));
            }
        }
        assert!(files >= 5, "{files} captures read");
        assert!(
            answered > 1000,
            "{answered} frames answered on the fixed-offset path"
        );
    }
}

//! The generator: requests in time order, each on an idle connection or a new one, its frames
//! queued by timestamp and written once no later request can come before them (the data flow
//! of the [module doc](super)).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use linewatch_testkit::frame::TcpFlags;
use pcap_file::pcap::{PcapHeader, PcapWriter, RawPcapPacket};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use super::addressing::{
    CLIENT_ACK_DELAY_US, CLIENT_HOSTS, EPHEMERAL_COUNT, HANDSHAKE_LEAD_US, HANDSHAKE_STEP_US,
};
use super::choice::{KeyChooser, RequestKeys, SplitMix64};
use super::connection::{tuple_key, Connection, Pending, PortAllocator, TupleKey, Work};
use super::layout::{Direction, FrameLayout, Segment};
use super::shape;
use super::spec::{invalid, CaptureSpec, CaptureTruth};

/// Writes the capture `spec` describes to `out` and returns its truth. `out` is flushed at the
/// end; pass a buffered writer (see [`write_capture_file`]).
pub fn write_capture<W: Write>(spec: &CaptureSpec, out: W) -> io::Result<CaptureTruth> {
    spec.validate()?;
    let header = PcapHeader {
        snaplen: SNAPLEN,
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::MicroSecond,
        // Fixed, not native, so the same seed gives the same bytes on every machine.
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    let writer = PcapWriter::with_header(out, header).map_err(pcap_to_io)?;
    let mut generator = Generator::new(spec, writer);
    generator.run()?;
    let Generator {
        writer, mut truth, ..
    } = generator;
    writer.into_writer().flush()?;
    truth.requests_per_second.shrink_to_fit();
    Ok(truth)
}

/// [`write_capture`] into a new file at `path`, buffered.
pub fn write_capture_file(spec: &CaptureSpec, path: &Path) -> io::Result<CaptureTruth> {
    spec.validate()?;
    let file = File::create(path)?;
    write_capture(spec, BufWriter::with_capacity(FILE_BUFFER, file))
}

/// Bytes of write buffer for [`write_capture_file`]: large writes, few syscalls.
const FILE_BUFFER: usize = 1 << 20;
/// The pcap snap length: every frame here is far shorter, so none is cut.
const SNAPLEN: u32 = 65_535;
const MICROS_PER_SEC: u64 = 1_000_000;

fn pcap_to_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

/// One capture being written: the connections, the queue of frames, and the truth so far.
struct Generator<'s, W: Write> {
    spec: &'s CaptureSpec,
    layout: FrameLayout,
    rng: SplitMix64,
    writer: PcapWriter<W>,
    truth: CaptureTruth,
    pending: BinaryHeap<Reverse<Pending>>,
    /// Creation counter: breaks timestamp ties in creation order.
    order: u64,
    /// Frame buffers already written, for reuse.
    spare: Vec<Vec<u8>>,
    connections: Vec<Connection>,
    free_slots: Vec<usize>,
    /// Open connections waiting for a request: (free from, slot).
    idle: BinaryHeap<Reverse<(u64, usize)>>,
    tuples_in_use: HashSet<TupleKey>,
    ports: PortAllocator,
    next_client: u32,
    keys: KeyChooser,
    request_keys: RequestKeys,
    payload: Vec<u8>,
    requests_made: u64,
    last_request_us: u64,
}

impl<W: Write> std::fmt::Debug for Generator<'_, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("requests_made", &self.requests_made)
            .field("pending", &self.pending.len())
            .field("connections", &self.connections.len())
            .finish_non_exhaustive()
    }
}

impl<'s, W: Write> Generator<'s, W> {
    fn new(spec: &'s CaptureSpec, writer: PcapWriter<W>) -> Self {
        let mut rng = SplitMix64(spec.seed);
        let keys = KeyChooser::new(&spec.keys, &mut rng);
        let ports = PortAllocator::new(CLIENT_HOSTS, &mut rng);
        let next_client = rng.below(CLIENT_HOSTS);
        Generator {
            spec,
            layout: FrameLayout {
                ipv6: spec.ipv6,
                vlan: spec.vlan,
            },
            rng,
            writer,
            truth: CaptureTruth::default(),
            pending: BinaryHeap::new(),
            order: 0,
            spare: Vec::new(),
            connections: Vec::new(),
            free_slots: Vec::new(),
            idle: BinaryHeap::new(),
            tuples_in_use: HashSet::new(),
            ports,
            next_client,
            keys,
            request_keys: RequestKeys::default(),
            payload: Vec::with_capacity(2048),
            requests_made: 0,
            last_request_us: 0,
        }
    }

    fn run(&mut self) -> io::Result<()> {
        let spec = self.spec;
        let mut second = spec.start_unix_secs;
        for phase in &spec.phases {
            let rate = u64::from(phase.requests_per_second);
            for _ in 0..phase.seconds {
                for i in 0..rate {
                    let at_us = second * MICROS_PER_SEC + i * MICROS_PER_SEC / rate;
                    self.request(at_us)?;
                    // No later request creates a frame before at_us - lead: those are final.
                    self.flush_before(at_us.saturating_sub(HANDSHAKE_LEAD_US))?;
                }
                self.truth.requests_per_second.push(rate);
                self.truth.requests += rate;
                second += 1;
            }
        }
        // Close the connections still open once the traffic is over.
        let end = self.last_request_us;
        while let Some(Reverse((free_at, slot))) = self.idle.pop() {
            self.close(slot, free_at.max(end));
        }
        self.flush_before(u64::MAX)
    }

    fn request(&mut self, at_us: u64) -> io::Result<()> {
        let slot = match self.idle.peek() {
            Some(&Reverse((free_at, slot))) if free_at < at_us => {
                self.idle.pop();
                slot
            }
            _ => self.open(at_us)?,
        };
        self.last_request_us = at_us;

        let method = shape::pick_method(&mut self.rng);
        self.keys.choose(self.requests_made, &mut self.request_keys);
        self.requests_made += 1;
        let keys = &self.request_keys;

        let mut payload = std::mem::take(&mut self.payload);
        shape::write_request(&mut payload, method, keys, &mut self.rng)?;

        let truth = &mut self.truth;
        bump(&mut truth.sections, &keys.section);
        bump(&mut truth.hosts, &keys.host_lower);
        bump(&mut truth.user_agents, &keys.user_agent);
        bump_btree(&mut truth.methods, method);

        self.send(
            slot,
            Direction::ToServer,
            at_us,
            TcpFlags::PSH | TcpFlags::ACK,
            &payload,
        );
        let mut free_at = at_us;

        if self.spec.responses {
            let base = u64::from(self.spec.response_latency_us);
            let jitter = u64::from(self.rng.below(self.spec.response_latency_us / 2 + 1));
            let response_at = at_us + base + jitter;
            let response = shape::pick_response(&mut self.rng);
            shape::write_response(&mut payload, response, method)?;
            self.send(
                slot,
                Direction::ToClient,
                response_at,
                TcpFlags::PSH | TcpFlags::ACK,
                &payload,
            );
            let ack_at = response_at + CLIENT_ACK_DELAY_US;
            self.send(slot, Direction::ToServer, ack_at, TcpFlags::ACK, &[]);
            free_at = ack_at;
            self.truth.responses += 1;
            *self.truth.status.entry(response.code).or_insert(0) += 1;
        }
        self.payload = payload;

        let connection = &mut self.connections[slot];
        connection.requests_left -= 1;
        if connection.requests_left == 0 {
            self.close(slot, free_at);
        } else {
            self.idle.push(Reverse((free_at, slot)));
        }
        Ok(())
    }

    /// Opens a connection for a request at `at_us`: picks a client and a free port, and sends
    /// the handshake before `at_us` when the spec wants one.
    fn open(&mut self, at_us: u64) -> io::Result<usize> {
        let client = self.next_client;
        self.next_client = (self.next_client + 1) % CLIENT_HOSTS;
        let port = self
            .ports
            .take(client, &self.tuples_in_use)
            .ok_or_else(|| {
                io::Error::other(format!(
                    "all {EPHEMERAL_COUNT} ports of client {client} are in use: the rate needs more concurrent connections than the generator has 4-tuples"
                ))
            })?;
        self.tuples_in_use.insert(tuple_key(client, port));
        let connection = Connection {
            client,
            port,
            client_seq: self.rng.next_u32(),
            server_seq: self.rng.next_u32(),
            client_ip_id: self.rng.next_u16(),
            server_ip_id: self.rng.next_u16(),
            requests_left: self.spec.requests_per_connection,
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.connections[slot] = connection;
                slot
            }
            None => {
                self.connections.push(connection);
                self.connections.len() - 1
            }
        };
        self.truth.connections += 1;
        if self.spec.handshake {
            let step = HANDSHAKE_STEP_US;
            let syn_at = at_us.saturating_sub(3 * step);
            self.send(slot, Direction::ToServer, syn_at, TcpFlags::SYN, &[]);
            self.send(
                slot,
                Direction::ToClient,
                syn_at + step,
                TcpFlags::SYN | TcpFlags::ACK,
                &[],
            );
            self.send(
                slot,
                Direction::ToServer,
                syn_at + 2 * step,
                TcpFlags::ACK,
                &[],
            );
        }
        Ok(slot)
    }

    /// Ends the connection in `slot` after `after_us`: the FIN exchange when the spec has
    /// handshakes, then the 4-tuple is free again.
    fn close(&mut self, slot: usize, after_us: u64) {
        let mut last = after_us;
        if self.spec.handshake {
            let step = HANDSHAKE_STEP_US;
            self.send(
                slot,
                Direction::ToServer,
                after_us + step,
                TcpFlags::FIN | TcpFlags::ACK,
                &[],
            );
            self.send(
                slot,
                Direction::ToClient,
                after_us + 2 * step,
                TcpFlags::FIN | TcpFlags::ACK,
                &[],
            );
            self.send(
                slot,
                Direction::ToServer,
                after_us + 3 * step,
                TcpFlags::ACK,
                &[],
            );
            last = after_us + 3 * step;
        }
        let connection = &self.connections[slot];
        let key = tuple_key(connection.client, connection.port);
        self.push(last, Work::Release(key));
        self.free_slots.push(slot);
    }

    /// Frames one segment of the connection in `slot` and queues it; advances that side's
    /// sequence number by what the segment consumes (payload, SYN, FIN).
    fn send(
        &mut self,
        slot: usize,
        direction: Direction,
        at_us: u64,
        flags: TcpFlags,
        payload: &[u8],
    ) {
        let connection = &mut self.connections[slot];
        let (seq, peer_seq, ip_id) = match direction {
            Direction::ToServer => (
                &mut connection.client_seq,
                connection.server_seq,
                &mut connection.client_ip_id,
            ),
            Direction::ToClient => (
                &mut connection.server_seq,
                connection.client_seq,
                &mut connection.server_ip_id,
            ),
        };
        let segment = Segment {
            client: connection.client,
            client_port: connection.port,
            direction,
            seq: *seq,
            ack: if flags.contains(TcpFlags::ACK) {
                peer_seq
            } else {
                0
            },
            flags,
            ip_id: *ip_id,
            payload,
        };
        let consumed = u32::try_from(payload.len()).expect("bounded segment")
            + u32::from(flags.intersects(TcpFlags::SYN | TcpFlags::FIN));
        *seq = seq.wrapping_add(consumed);
        *ip_id = ip_id.wrapping_add(1);
        let mut frame = self.spare.pop().unwrap_or_default();
        self.layout.build(&segment, &mut frame);
        self.push(at_us, Work::Frame(frame));
    }

    fn push(&mut self, at_us: u64, work: Work) {
        self.pending.push(Reverse(Pending {
            at_us,
            order: self.order,
            work,
        }));
        self.order += 1;
    }

    /// Writes every queued frame stamped before `bound`, in order.
    fn flush_before(&mut self, bound: u64) -> io::Result<()> {
        while let Some(Reverse(next)) = self.pending.peek() {
            if next.at_us >= bound {
                break;
            }
            let Some(Reverse(next)) = self.pending.pop() else {
                break;
            };
            match next.work {
                Work::Frame(frame) => {
                    let len = u32::try_from(frame.len()).expect("bounded frame");
                    let packet = RawPcapPacket {
                        ts_sec: u32::try_from(next.at_us / MICROS_PER_SEC)
                            .map_err(|_| invalid("timestamp beyond classic pcap's range"))?,
                        ts_frac: u32::try_from(next.at_us % MICROS_PER_SEC)
                            .expect("below a million"),
                        incl_len: len,
                        orig_len: len,
                        data: Cow::Borrowed(&frame),
                    };
                    self.writer.write_raw_packet(&packet).map_err(pcap_to_io)?;
                    self.truth.packets += 1;
                    self.spare.push(frame);
                }
                Work::Release(key) => {
                    self.tuples_in_use.remove(&key);
                }
            }
        }
        Ok(())
    }
}

fn bump(counts: &mut HashMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

fn bump_btree(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(count) => *count += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}

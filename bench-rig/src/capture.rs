//! Deterministic HTTP capture files: pcap traffic whose every count is known before it is read.
//!
//! # Contract
//!
//! [`write_capture`] turns a [`CaptureSpec`] into a classic pcap file (LINKTYPE_ETHERNET,
//! microsecond timestamps, little-endian) and returns its [`CaptureTruth`]: what a perfect
//! monitor must count on it. The same spec, seed included, always gives the same bytes.
//!
//! - **Exact rates.** Request `i` of second `s` (seconds counted from `start_unix_secs`, phase
//!   after phase) is stamped `s + i / rate` seconds, floored to the microsecond, so every second
//!   holds exactly its phase's rate and [`CaptureTruth::requests_per_second`] follows the
//!   timestamps exactly.
//! - **Honest frames.** Ethernet II (optionally one 802.1Q tag), IPv4 (DF, correct header
//!   checksum) or IPv6, TCP with a correct checksum and an MSS option on SYNs. Frames shorter
//!   than the Ethernet minimum are padded to 60 bytes, as a NIC sends them.
//! - **Coherent TCP.** Each connection has seeded initial sequence numbers, a SYN / SYN-ACK /
//!   ACK handshake and a FIN exchange (when [`CaptureSpec::handshake`] is set), sequence numbers
//!   advancing by payload length and acknowledgements that match, so a reassembler such as
//!   tshark follows every stream. A client 4-tuple is never reused while a connection on it is
//!   still open.
//! - **Sequential keep-alive.** A connection carries [`CaptureSpec::requests_per_connection`]
//!   requests one after another: the next request starts only after the response to the last
//!   one and the client's ACK of it. When a rate is too high for the connections already open,
//!   another one is opened; timestamps never move to fit the connections.
//! - **Ordered output.** Frames are written in timestamp order (ties in creation order).
//!
//! # Data flow
//!
//! ```text
//! requests in time order ──► idle connection with the oldest free time, or a new one
//!     ──► frames built at once (handshake, request, response, client ACK, FIN exchange)
//!     ──► pending heap ordered by (timestamp, creation order)
//!     ──► flushed to the PcapWriter once no later request can create an earlier frame
//! ```
//!
//! Memory is bounded by the traffic in flight (a few round trips of frames and the open
//! connections), plus the truth's key maps.
//!
//! # Keys
//!
//! Sections are `/s{n}`, hosts `h{n}.example`, user agents `agent/{n}`, `n` counted from 0.
//! Heavy (section, host) pairs take exactly their per-mille share of every block of 1000
//! consecutive requests (the slots are shuffled once from the seed). The other requests walk
//! each pool in a seeded order that visits every key once before any key twice, so a pool of N
//! keys shows min(N, requests) distinct keys and no key is counted more than one above another.
//! Targets are the section, sometimes followed by a sub-path (`/s12/page7`) and sometimes by a
//! query (`?id=5`), so section extraction is exercised. About 90% of requests are GET, 7% POST
//! (with a small body in the same segment) and 3% HEAD; about 90% of responses are 200, 5% 404,
//! 3% 301 and 2% 500. Responses to HEAD carry a Content-Length and no body.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use pcap_file::pcap::{PcapHeader, PcapWriter, RawPcapPacket};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

/// One stretch of constant request rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// How many seconds the phase lasts.
    pub seconds: u32,
    /// Requests in each of those seconds (0 is an idle second).
    pub requests_per_second: u32,
}

/// A (section, host) pair that takes a fixed share of all requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeavyKey {
    /// The section, e.g. `/api`: starts with `/` and holds no other `/`, no `?` or `#`.
    pub section: String,
    /// The Host header value, e.g. `api.example`; counted lower-cased, as the monitor does.
    pub host: String,
    /// Requests per thousand that go to this pair.
    pub per_mille: u32,
}

/// Which keys the requests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Size of the `/s{n}` section pool.
    pub distinct_sections: u32,
    /// Size of the `h{n}.example` host pool.
    pub distinct_hosts: u32,
    /// Size of the `agent/{n}` user-agent pool.
    pub distinct_user_agents: u32,
    /// Heavy keys: each (section, host) pair gets this many requests per thousand; the rest
    /// spread uniformly (deterministically, from the seed) over the distinct pools.
    pub heavy: Vec<HeavyKey>,
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec {
            distinct_sections: 50,
            distinct_hosts: 10,
            distinct_user_agents: 5,
            heavy: Vec::new(),
        }
    }
}

/// What to generate. See the module doc for what each field guarantees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// Unix time of the first second.
    pub start_unix_secs: u64,
    /// Consecutive stretches of constant rate.
    pub phases: Vec<Phase>,
    /// Keep-alive: this many requests in a row on one TCP connection (at least 1).
    pub requests_per_connection: u32,
    /// SYN, SYN-ACK, ACK before each connection, FIN/ACK exchange after it.
    pub handshake: bool,
    /// A response (and the client's ACK of it) after each request.
    pub responses: bool,
    /// Request → response delay, jittered deterministically by up to +50%.
    pub response_latency_us: u32,
    /// Sections, hosts and user agents.
    pub keys: KeySpec,
    /// IPv6 (client `fd00::/8`, server `fd00:1::1`) instead of IPv4 (`10.0.x.y`, `10.1.0.1`).
    pub ipv6: bool,
    /// One 802.1Q tag with this VLAN ID (1..=4094) on every frame.
    pub vlan: Option<u16>,
    /// Seeds every choice: ISNs, ports, keys, methods, status codes, body lengths, latency.
    pub seed: u64,
}

impl Default for CaptureSpec {
    /// A small capture: 10 s at 100 requests/s, 10 requests per connection, responses and
    /// handshakes on, 50 sections, 10 hosts, 5 user agents, IPv4.
    fn default() -> Self {
        CaptureSpec {
            start_unix_secs: DEFAULT_START_UNIX_SECS,
            phases: vec![Phase {
                seconds: 10,
                requests_per_second: 100,
            }],
            requests_per_connection: 10,
            handshake: true,
            responses: true,
            response_latency_us: 250,
            keys: KeySpec::default(),
            ipv6: false,
            vlan: None,
            seed: 1,
        }
    }
}

/// 2023-11-14T22:13:20Z: a round, recent time that fits classic pcap's 32-bit seconds.
const DEFAULT_START_UNIX_SECS: u64 = 1_700_000_000;

impl CaptureSpec {
    /// The capture the replay benchmark reads: 1,000,000 requests, 100 s at 10,000 requests/s,
    /// 100 requests per keep-alive connection, responses and handshakes on, 2,000 sections,
    /// 500 hosts, 200 user agents, and three heavy keys (10%, 5% and 2% of requests).
    pub fn bench_default() -> Self {
        CaptureSpec {
            start_unix_secs: DEFAULT_START_UNIX_SECS,
            phases: vec![Phase {
                seconds: 100,
                requests_per_second: 10_000,
            }],
            requests_per_connection: 100,
            handshake: true,
            responses: true,
            response_latency_us: 250,
            keys: KeySpec {
                distinct_sections: 2_000,
                distinct_hosts: 500,
                distinct_user_agents: 200,
                heavy: vec![
                    heavy("/api", "api.example", 100),
                    heavy("/static", "cdn.example", 50),
                    heavy("/login", "www.example", 20),
                ],
            },
            ipv6: false,
            vlan: None,
            seed: 0x6c69_6e65_7761_7463, // "linewatc"
        }
    }

    /// How many requests the phases hold.
    pub fn total_requests(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| u64::from(p.seconds) * u64::from(p.requests_per_second))
            .sum()
    }

    /// How many seconds the phases last.
    pub fn total_seconds(&self) -> u64 {
        self.phases.iter().map(|p| u64::from(p.seconds)).sum()
    }

    /// Phases holding exactly `requests` requests at `rate` per second: whole seconds at
    /// `rate`, then one second with the remainder. `rate` 0 gives no phases.
    pub fn phases_for(requests: u64, rate: u32) -> Vec<Phase> {
        if rate == 0 {
            return Vec::new();
        }
        let full = requests / u64::from(rate);
        let rest = requests % u64::from(rate);
        let mut phases = Vec::new();
        // A phase's seconds are u32: more than 136 years of full seconds splits into several.
        let mut left = full;
        while left > 0 {
            let seconds = u32::try_from(left).unwrap_or(u32::MAX);
            phases.push(Phase {
                seconds,
                requests_per_second: rate,
            });
            left -= u64::from(seconds);
        }
        if rest > 0 {
            phases.push(Phase {
                seconds: 1,
                requests_per_second: u32::try_from(rest).expect("rest < rate, a u32"),
            });
        }
        phases
    }

    /// Checks what the generator relies on; the error says which field is wrong and why.
    pub fn validate(&self) -> io::Result<()> {
        if self.requests_per_connection == 0 {
            return Err(invalid("requests_per_connection must be at least 1"));
        }
        let keys = &self.keys;
        if keys.distinct_sections == 0 || keys.distinct_hosts == 0 || keys.distinct_user_agents == 0
        {
            return Err(invalid(
                "distinct sections, hosts and user agents must each be at least 1",
            ));
        }
        let mut per_mille = 0u64;
        for key in &keys.heavy {
            per_mille += u64::from(key.per_mille);
            check_section(&key.section)?;
            check_host(&key.host)?;
        }
        if per_mille > PER_MILLE {
            return Err(invalid(format!(
                "heavy keys take {per_mille} per mille of requests: at most 1000"
            )));
        }
        if let Some(vid) = self.vlan {
            if !(VLAN_ID_MIN..=VLAN_ID_MAX).contains(&vid) {
                return Err(invalid(format!(
                    "VLAN ID {vid} is outside {VLAN_ID_MIN}..={VLAN_ID_MAX} (0 means untagged, 4095 is reserved)"
                )));
            }
        }
        let end = self.start_unix_secs.saturating_add(self.total_seconds());
        if end > u64::from(u32::MAX) {
            return Err(invalid(format!(
                "the capture would end at unix time {end}: classic pcap timestamps stop at {}",
                u32::MAX
            )));
        }
        Ok(())
    }
}

fn heavy(section: &str, host: &str, per_mille: u32) -> HeavyKey {
    HeavyKey {
        section: section.to_owned(),
        host: host.to_owned(),
        per_mille,
    }
}

/// What a perfect monitor must count on the capture [`write_capture`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureTruth {
    /// HTTP requests.
    pub requests: u64,
    /// HTTP responses.
    pub responses: u64,
    /// Frames in the file.
    pub packets: u64,
    /// TCP connections (SYNs without ACK, when the handshake is on).
    pub connections: u64,
    /// Requests per second; index 0 is `start_unix_secs`.
    pub requests_per_second: Vec<u64>,
    /// Requests by method.
    pub methods: BTreeMap<String, u64>,
    /// Responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Requests by section.
    pub sections: HashMap<String, u64>,
    /// Requests by host, lower-cased.
    pub hosts: HashMap<String, u64>,
    /// Requests by user agent.
    pub user_agents: HashMap<String, u64>,
}

impl CaptureTruth {
    /// The `n` sections with the most requests, most first (ties by name).
    pub fn top_sections(&self, n: usize) -> Vec<(&str, u64)> {
        top(&self.sections, n)
    }

    /// The `n` hosts with the most requests, most first (ties by name).
    pub fn top_hosts(&self, n: usize) -> Vec<(&str, u64)> {
        top(&self.hosts, n)
    }

    /// The `n` user agents with the most requests, most first (ties by name).
    pub fn top_user_agents(&self, n: usize) -> Vec<(&str, u64)> {
        top(&self.user_agents, n)
    }
}

fn top(counts: &HashMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut all: Vec<(&str, u64)> = counts.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all
}

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
const PER_MILLE: u64 = 1000;
const MICROS_PER_SEC: u64 = 1_000_000;
const VLAN_ID_MIN: u16 = 1;
const VLAN_ID_MAX: u16 = 4094;
/// Longest heavy section or host: keeps every request inside one 1460-byte segment.
const MAX_KEY_LEN: usize = 256;

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

fn pcap_to_io(error: PcapError) -> io::Error {
    match error {
        PcapError::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

fn check_section(section: &str) -> io::Result<()> {
    let rest = section.strip_prefix('/').ok_or_else(|| {
        invalid(format!(
            "heavy section {section:?} must start with '/' (e.g. /api)"
        ))
    })?;
    if section.len() > MAX_KEY_LEN
        || rest
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#') || !b.is_ascii_graphic())
    {
        return Err(invalid(format!(
            "heavy section {section:?} must be '/' followed by visible ASCII bytes other than '/', '?' and '#', {MAX_KEY_LEN} bytes at most"
        )));
    }
    Ok(())
}

fn check_host(host: &str) -> io::Result<()> {
    if host.is_empty() || host.len() > MAX_KEY_LEN || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "heavy host {host:?} must be 1 to {MAX_KEY_LEN} visible ASCII bytes"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Traffic shape

/// Request methods by per-mille share (the rest is HEAD).
const GET_PER_MILLE: u32 = 900;
const POST_PER_MILLE: u32 = 70;
/// Status codes by per-mille share, in order; they sum to 1000.
const STATUS_MIX: [(u16, &str, u32); 4] = [
    (200, "OK", 900),
    (404, "Not Found", 50),
    (301, "Moved Permanently", 30),
    (500, "Internal Server Error", 20),
];
/// Targets with a sub-path after the section, and with a query, per mille.
const SUB_PATH_PER_MILLE: u32 = 400;
const QUERY_PER_MILLE: u32 = 300;
/// Distinct sub-paths and query values: variety in targets without new sections.
const SUB_PATHS: u32 = 50;
const QUERY_IDS: u32 = 1000;
/// Largest POST body and response body: small, so each message is one short segment.
const POST_BODY_MAX: u32 = 64;
const RESPONSE_BODY_MAX: u32 = 160;
/// Filler the bodies are cut from.
const POST_FILLER: &[u8] =
    b"name=linewatch&value=0123456789&note=generated+by+the+bench+rig&pad=xxxxxxxx";
const HTML_FILLER: &[u8] = b"<html><head><title>linewatch</title></head><body><p>generated by the linewatch bench rig: a deterministic capture</p><p>padding padding padding padding</p></body></html>";

// ---------------------------------------------------------------------------------------------
// Addressing and timing

/// Client addresses connections rotate over. With 64512 ephemeral ports each, a 4-tuple comes
/// back only after some 66 million connections.
const CLIENT_HOSTS: u32 = 1024;
/// Client hosts per /24 in `10.0.x.y` (y from 1 to 250, avoiding .0 and .255).
const HOSTS_PER_SUBNET: u32 = 250;
const EPHEMERAL_FIRST: u16 = 1024;
const EPHEMERAL_LAST: u16 = 65535;
const EPHEMERAL_COUNT: u32 = (EPHEMERAL_LAST - EPHEMERAL_FIRST) as u32 + 1;
const SERVER_PORT: u16 = 80;
const SERVER_V4: [u8; 4] = [10, 1, 0, 1];
const SERVER_V6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Locally administered MAC addresses: the client side's router and the server.
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];

/// Gap between the packets of a handshake or a close: a LAN round trip.
const HANDSHAKE_STEP_US: u64 = 20;
/// How far before its first request a connection's SYN goes out. No frame created for a
/// request at `t` is earlier than `t - HANDSHAKE_LEAD_US`, which is what makes flushing safe.
const HANDSHAKE_LEAD_US: u64 = 3 * HANDSHAKE_STEP_US;
/// The client's delayed ACK of a response.
const CLIENT_ACK_DELAY_US: u64 = 20;

// ---------------------------------------------------------------------------------------------
// Frame layout

const ETHERNET_HEADER_LEN: usize = 14;
const VLAN_TAG_LEN: usize = 4;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86DD;
const ETHERTYPE_VLAN: u16 = 0x8100;
const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;
const IPV4_VERSION_IHL: u8 = 0x45;
const IPV4_DONT_FRAGMENT: u16 = 0x4000;
const IPV6_VERSION: u8 = 0x60;
const HOP_LIMIT: u8 = 64;
const IP_PROTOCOL_TCP: u8 = 6;
const TCP_HEADER_LEN: usize = 20;
/// Kind 2, length 4, the MSS: the one option a SYN here carries.
const TCP_MSS_OPTION_LEN: usize = 4;
const TCP_OPTION_MSS: u8 = 2;
/// MSS of a 1500-byte MTU: minus 40 bytes of IPv4 + TCP, or 60 of IPv6 + TCP.
const MSS_V4: u16 = 1460;
const MSS_V6: u16 = 1440;
const TCP_WINDOW: u16 = 64_240;
const TCP_CHECKSUM_AT: usize = 16;
const IPV4_CHECKSUM_AT: usize = 10;
/// The shortest Ethernet frame without its FCS: shorter ones are padded on the wire.
const ETHERNET_MIN_FRAME: usize = 60;

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// Which way a segment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToServer,
    ToClient,
}

/// One TCP segment to frame.
#[derive(Debug)]
struct Segment<'a> {
    client: u32,
    client_port: u16,
    direction: Direction,
    seq: u32,
    ack: u32,
    flags: u8,
    ip_id: u16,
    payload: &'a [u8],
}

/// The link and network layers every frame of a capture shares.
#[derive(Debug, Clone, Copy)]
struct FrameLayout {
    ipv6: bool,
    vlan: Option<u16>,
}

impl FrameLayout {
    /// Writes `segment` as a whole Ethernet frame into `frame` (cleared first).
    fn build(self, segment: &Segment<'_>, frame: &mut Vec<u8>) {
        frame.clear();
        let (dst_mac, src_mac) = match segment.direction {
            Direction::ToServer => (SERVER_MAC, CLIENT_MAC),
            Direction::ToClient => (CLIENT_MAC, SERVER_MAC),
        };
        frame.extend_from_slice(&dst_mac);
        frame.extend_from_slice(&src_mac);
        if let Some(vid) = self.vlan {
            frame.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            frame.extend_from_slice(&vid.to_be_bytes());
        }
        let ethertype = if self.ipv6 {
            ETHERTYPE_IPV6
        } else {
            ETHERTYPE_IPV4
        };
        frame.extend_from_slice(&ethertype.to_be_bytes());
        let ip_start = frame.len();
        debug_assert_eq!(ip_start, self.link_len());

        let options_len = if segment.flags & SYN != 0 {
            TCP_MSS_OPTION_LEN
        } else {
            0
        };
        let tcp_len = TCP_HEADER_LEN + options_len + segment.payload.len();
        let tcp_len16 = u16::try_from(tcp_len).expect("segments are bounded by MAX_KEY_LEN");
        let (client_port, server_port) = (segment.client_port, SERVER_PORT);
        let (src_port, dst_port) = match segment.direction {
            Direction::ToServer => (client_port, server_port),
            Direction::ToClient => (server_port, client_port),
        };

        // Pseudo-header sum, then the network header.
        let pseudo;
        if self.ipv6 {
            let client = client_v6(segment.client);
            let (src, dst) = ordered(segment.direction, client, SERVER_V6);
            pseudo = ones_sum(&src, 0)
                + ones_sum(&dst, 0)
                + u32::from(tcp_len16)
                + u32::from(IP_PROTOCOL_TCP);
            frame.extend_from_slice(&[IPV6_VERSION, 0, 0, 0]);
            frame.extend_from_slice(&tcp_len16.to_be_bytes());
            frame.extend_from_slice(&[IP_PROTOCOL_TCP, HOP_LIMIT]);
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&dst);
            debug_assert_eq!(frame.len() - ip_start, IPV6_HEADER_LEN);
        } else {
            let client = client_v4(segment.client);
            let (src, dst) = ordered(segment.direction, client, SERVER_V4);
            pseudo = ones_sum(&src, 0)
                + ones_sum(&dst, 0)
                + u32::from(tcp_len16)
                + u32::from(IP_PROTOCOL_TCP);
            let total_len = u16::try_from(IPV4_HEADER_LEN + tcp_len).expect("bounded segment");
            frame.extend_from_slice(&[IPV4_VERSION_IHL, 0]);
            frame.extend_from_slice(&total_len.to_be_bytes());
            frame.extend_from_slice(&segment.ip_id.to_be_bytes());
            frame.extend_from_slice(&IPV4_DONT_FRAGMENT.to_be_bytes());
            frame.extend_from_slice(&[HOP_LIMIT, IP_PROTOCOL_TCP, 0, 0]);
            frame.extend_from_slice(&src);
            frame.extend_from_slice(&dst);
            let checksum = checksum(ones_sum(&frame[ip_start..], 0));
            frame[ip_start + IPV4_CHECKSUM_AT..ip_start + IPV4_CHECKSUM_AT + 2]
                .copy_from_slice(&checksum.to_be_bytes());
        }

        let tcp_start = frame.len();
        let header_words = u8::try_from((TCP_HEADER_LEN + options_len) / 4).expect("6 at most");
        frame.extend_from_slice(&src_port.to_be_bytes());
        frame.extend_from_slice(&dst_port.to_be_bytes());
        frame.extend_from_slice(&segment.seq.to_be_bytes());
        frame.extend_from_slice(&segment.ack.to_be_bytes());
        frame.extend_from_slice(&[header_words << 4, segment.flags]);
        frame.extend_from_slice(&TCP_WINDOW.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
        if options_len > 0 {
            let mss = if self.ipv6 { MSS_V6 } else { MSS_V4 };
            frame.extend_from_slice(&[TCP_OPTION_MSS, 4]);
            frame.extend_from_slice(&mss.to_be_bytes());
        }
        frame.extend_from_slice(segment.payload);
        let checksum = checksum(ones_sum(&frame[tcp_start..], pseudo));
        frame[tcp_start + TCP_CHECKSUM_AT..tcp_start + TCP_CHECKSUM_AT + 2]
            .copy_from_slice(&checksum.to_be_bytes());

        if frame.len() < ETHERNET_MIN_FRAME {
            frame.resize(ETHERNET_MIN_FRAME, 0);
        }
    }

    /// Bytes before the IP header.
    fn link_len(self) -> usize {
        ETHERNET_HEADER_LEN + if self.vlan.is_some() { VLAN_TAG_LEN } else { 0 }
    }
}

fn ordered<const N: usize>(
    direction: Direction,
    client: [u8; N],
    server: [u8; N],
) -> ([u8; N], [u8; N]) {
    match direction {
        Direction::ToServer => (client, server),
        Direction::ToClient => (server, client),
    }
}

/// `10.0.x.y` for client host `index`.
fn client_v4(index: u32) -> [u8; 4] {
    let [.., subnet] = (index / HOSTS_PER_SUBNET).to_be_bytes();
    let [.., host] = (index % HOSTS_PER_SUBNET + 1).to_be_bytes();
    [10, 0, subnet, host]
}

/// `fd00::{index + 1}` for client host `index`.
fn client_v6(index: u32) -> [u8; 16] {
    let mut address = [0; 16];
    address[0] = 0xfd;
    address[12..].copy_from_slice(&(index + 1).to_be_bytes());
    address
}

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte padded
/// with zero), added to `initial`, not yet folded. Frames here are short, so it cannot
/// overflow. Shared with the live generator's frames ([`crate::frames`]).
pub(crate) fn ones_sum(data: &[u8], initial: u32) -> u32 {
    let mut chunks = data.chunks_exact(2);
    let mut sum = initial;
    for pair in chunks.by_ref() {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

/// The Internet checksum (RFC 1071) of a one's-complement sum.
pub(crate) fn checksum(mut sum: u32) -> u16 {
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    let [.., high, low] = sum.to_be_bytes();
    !u16::from_be_bytes([high, low])
}

// ---------------------------------------------------------------------------------------------
// Seeded choices

/// SplitMix64: tiny, fast, and the same sequence everywhere for a seed (also the live
/// generator's).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        high_half(self.next_u64())
    }

    fn next_u16(&mut self) -> u16 {
        let [high, low, ..] = self.next_u32().to_be_bytes();
        u16::from_be_bytes([high, low])
    }

    /// Uniform in `0..n` for `n ≥ 1` (multiply-shift: bias below 2^-32 per draw).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        high_half(u64::from(self.next_u32()) * u64::from(n))
    }

    /// True `per_mille` times in a thousand.
    fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < per_mille
    }
}

fn high_half(x: u64) -> u32 {
    let [a, b, c, d, ..] = x.to_be_bytes();
    u32::from_be_bytes([a, b, c, d])
}

/// Walks `0..len` in a seeded order that visits every index once before any twice:
/// `(offset + k·stride) mod len` with `stride` coprime to `len`.
#[derive(Debug, Clone)]
struct PoolWalk {
    len: u32,
    stride: u32,
    at: u32,
}

impl PoolWalk {
    fn new(len: u32, rng: &mut SplitMix64) -> Self {
        debug_assert!(len > 0);
        // Near the golden ratio of the pool, so neighbours in time are far apart in the pool.
        let golden = u32::try_from(u64::from(len) * 618 / 1000).expect("below len");
        let mut stride = (golden + rng.below(len / 16 + 1)) % len;
        while gcd(stride, len) != 1 {
            stride = (stride + 1) % len;
        }
        PoolWalk {
            len,
            stride,
            at: rng.below(len),
        }
    }

    fn next_index(&mut self) -> u32 {
        let index = self.at;
        // at + stride may exceed u32 for huge pools: step without overflowing.
        if self.at >= self.len - self.stride {
            self.at -= self.len - self.stride;
        } else {
            self.at += self.stride;
        }
        index
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// No heavy key in this slot of the 1000-request block.
const NOT_HEAVY: u32 = u32::MAX;

/// Picks section, host and user agent for each request.
#[derive(Debug)]
struct KeyChooser {
    heavy: Vec<HeavyKey>,
    /// The heavy hosts lower-cased, as the truth counts them.
    heavy_hosts_lower: Vec<String>,
    /// Slot `k % 1000` of request `k`: the index of its heavy key, or [`NOT_HEAVY`].
    slots: Vec<u32>,
    sections: PoolWalk,
    hosts: PoolWalk,
    agents: PoolWalk,
}

impl KeyChooser {
    fn new(keys: &KeySpec, rng: &mut SplitMix64) -> Self {
        let mut slots = Vec::with_capacity(1000);
        for (index, key) in keys.heavy.iter().enumerate() {
            let index = u32::try_from(index).expect("at most 1000 heavy keys take slots");
            slots.extend(std::iter::repeat_n(index, key.per_mille as usize));
        }
        slots.resize(1000, NOT_HEAVY);
        for i in (1..slots.len()).rev() {
            let j = rng.below(u32::try_from(i + 1).expect("i < 1000")) as usize;
            slots.swap(i, j);
        }
        KeyChooser {
            heavy: keys.heavy.clone(),
            heavy_hosts_lower: keys.heavy.iter().map(|k| k.host.to_lowercase()).collect(),
            slots,
            sections: PoolWalk::new(keys.distinct_sections, rng),
            hosts: PoolWalk::new(keys.distinct_hosts, rng),
            agents: PoolWalk::new(keys.distinct_user_agents, rng),
        }
    }

    /// Writes request `k`'s section, wire host, counted host and user agent into the buffers.
    fn choose(&mut self, k: u64, keys: &mut RequestKeys) {
        keys.clear();
        let slot = self.slots[usize::try_from(k % PER_MILLE).expect("below 1000")];
        if slot == NOT_HEAVY {
            let section = self.sections.next_index();
            let host = self.hosts.next_index();
            let _ = write!(keys.section, "/s{section}");
            let _ = write!(keys.host, "h{host}.example");
            keys.host_lower.push_str(&keys.host);
        } else {
            let heavy = &self.heavy[slot as usize];
            keys.section.push_str(&heavy.section);
            keys.host.push_str(&heavy.host);
            keys.host_lower
                .push_str(&self.heavy_hosts_lower[slot as usize]);
        }
        let agent = self.agents.next_index();
        let _ = write!(keys.user_agent, "agent/{agent}");
    }
}

/// Reused buffers for one request's keys.
#[derive(Debug, Default)]
struct RequestKeys {
    section: String,
    host: String,
    host_lower: String,
    user_agent: String,
}

impl RequestKeys {
    fn clear(&mut self) {
        self.section.clear();
        self.host.clear();
        self.host_lower.clear();
        self.user_agent.clear();
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// A client 4-tuple (the server side is fixed): client host index and port.
type TupleKey = u64;

fn tuple_key(client: u32, port: u16) -> TupleKey {
    (u64::from(client) << 16) | u64::from(port)
}

/// Ephemeral ports per client host, cycling through `1024..=65535` from a seeded start.
#[derive(Debug)]
struct PortAllocator {
    next: Vec<u16>,
}

impl PortAllocator {
    fn new(hosts: u32, rng: &mut SplitMix64) -> Self {
        let next = (0..hosts)
            .map(|_| port_at(rng.below(EPHEMERAL_COUNT)))
            .collect();
        PortAllocator { next }
    }

    /// The next port of `client` whose 4-tuple is not in use; `None` if all are.
    fn take(&mut self, client: u32, in_use: &HashSet<TupleKey>) -> Option<u16> {
        let next = &mut self.next[client as usize];
        for _ in 0..EPHEMERAL_COUNT {
            let port = *next;
            *next = if port == EPHEMERAL_LAST {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !in_use.contains(&tuple_key(client, port)) {
                return Some(port);
            }
        }
        None
    }
}

fn port_at(offset: u32) -> u16 {
    let [.., high, low] = (u32::from(EPHEMERAL_FIRST) + offset).to_be_bytes();
    u16::from_be_bytes([high, low])
}

/// One TCP connection's state: where each side's sequence numbers stand.
#[derive(Debug, Clone)]
struct Connection {
    client: u32,
    port: u16,
    /// The next sequence number each side sends.
    client_seq: u32,
    server_seq: u32,
    client_ip_id: u16,
    server_ip_id: u16,
    requests_left: u32,
}

/// A frame waiting for its turn, or the release of a 4-tuple once the connection's last frame
/// is out.
#[derive(Debug)]
enum Work {
    Frame(Vec<u8>),
    Release(TupleKey),
}

#[derive(Debug)]
struct Pending {
    at_us: u64,
    order: u64,
    work: Work,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_us, self.order).cmp(&(other.at_us, other.order))
    }
}

// ---------------------------------------------------------------------------------------------
// The generator

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

        let rng = &mut self.rng;
        let method = match rng.below(1000) {
            n if n < GET_PER_MILLE => "GET",
            n if n < GET_PER_MILLE + POST_PER_MILLE => "POST",
            _ => "HEAD",
        };
        self.keys.choose(self.requests_made, &mut self.request_keys);
        self.requests_made += 1;
        let keys = &self.request_keys;

        let mut payload = std::mem::take(&mut self.payload);
        payload.clear();
        payload.extend_from_slice(method.as_bytes());
        payload.push(b' ');
        payload.extend_from_slice(keys.section.as_bytes());
        if rng.chance(SUB_PATH_PER_MILLE) {
            // After the root section a sub-path would become the section itself.
            let page = rng.below(SUB_PATHS);
            if keys.section != "/" {
                write!(payload, "/page{page}")?;
            }
        }
        if rng.chance(QUERY_PER_MILLE) {
            write!(payload, "?id={}", rng.below(QUERY_IDS))?;
        }
        write!(
            payload,
            " HTTP/1.1\r\nHost: {}\r\nUser-Agent: {}\r\nAccept: */*\r\n",
            keys.host, keys.user_agent
        )?;
        if method == "POST" {
            let len = rng.below(POST_BODY_MAX + 1) as usize;
            write!(payload, "Content-Length: {len}\r\n\r\n")?;
            payload.extend_from_slice(&POST_FILLER[..len]);
        } else {
            payload.extend_from_slice(b"\r\n");
        }

        let truth = &mut self.truth;
        bump(&mut truth.sections, &keys.section);
        bump(&mut truth.hosts, &keys.host_lower);
        bump(&mut truth.user_agents, &keys.user_agent);
        bump_btree(&mut truth.methods, method);

        self.send(slot, Direction::ToServer, at_us, PSH | ACK, &payload);
        let mut free_at = at_us;

        if self.spec.responses {
            let base = u64::from(self.spec.response_latency_us);
            let jitter = u64::from(self.rng.below(self.spec.response_latency_us / 2 + 1));
            let response_at = at_us + base + jitter;
            let pick = self.rng.below(1000);
            let mut share = 0;
            let mut status = STATUS_MIX[0];
            for entry in STATUS_MIX {
                share += entry.2;
                if pick < share {
                    status = entry;
                    break;
                }
            }
            let (code, reason, _) = status;
            let body_len = self.rng.below(RESPONSE_BODY_MAX + 1) as usize;
            payload.clear();
            write!(
                payload,
                "HTTP/1.1 {code} {reason}\r\nContent-Length: {body_len}\r\nContent-Type: text/html\r\n\r\n"
            )?;
            // HTTP: a response to HEAD has the headers of the GET response and no body.
            if method != "HEAD" {
                payload.extend_from_slice(&HTML_FILLER[..body_len]);
            }
            self.send(slot, Direction::ToClient, response_at, PSH | ACK, &payload);
            let ack_at = response_at + CLIENT_ACK_DELAY_US;
            self.send(slot, Direction::ToServer, ack_at, ACK, &[]);
            free_at = ack_at;
            self.truth.responses += 1;
            *self.truth.status.entry(code).or_insert(0) += 1;
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
            self.send(slot, Direction::ToServer, syn_at, SYN, &[]);
            self.send(slot, Direction::ToClient, syn_at + step, SYN | ACK, &[]);
            self.send(slot, Direction::ToServer, syn_at + 2 * step, ACK, &[]);
        }
        Ok(slot)
    }

    /// Ends the connection in `slot` after `after_us`: the FIN exchange when the spec has
    /// handshakes, then the 4-tuple is free again.
    fn close(&mut self, slot: usize, after_us: u64) {
        let mut last = after_us;
        if self.spec.handshake {
            let step = HANDSHAKE_STEP_US;
            self.send(slot, Direction::ToServer, after_us + step, FIN | ACK, &[]);
            self.send(
                slot,
                Direction::ToClient,
                after_us + 2 * step,
                FIN | ACK,
                &[],
            );
            self.send(slot, Direction::ToServer, after_us + 3 * step, ACK, &[]);
            last = after_us + 3 * step;
        }
        let connection = &self.connections[slot];
        let key = tuple_key(connection.client, connection.port);
        self.push(last, Work::Release(key));
        self.free_slots.push(slot);
    }

    /// Frames one segment of the connection in `slot` and queues it; advances that side's
    /// sequence number by what the segment consumes (payload, SYN, FIN).
    fn send(&mut self, slot: usize, direction: Direction, at_us: u64, flags: u8, payload: &[u8]) {
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
            ack: if flags & ACK != 0 { peer_seq } else { 0 },
            flags,
            ip_id: *ip_id,
            payload,
        };
        let consumed = u32::try_from(payload.len()).expect("bounded segment")
            + u32::from(flags & (SYN | FIN) != 0);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_walk_visits_every_index_once_per_round() {
        let mut rng = SplitMix64(7);
        for len in [1u32, 2, 3, 10, 97, 1000, 4096] {
            let mut walk = PoolWalk::new(len, &mut rng);
            let mut seen = vec![0u32; len as usize];
            for _ in 0..2 * len {
                seen[walk.next_index() as usize] += 1;
            }
            assert!(seen.iter().all(|&n| n == 2), "len {len}: {seen:?}");
        }
    }

    #[test]
    fn pool_walk_steps_without_overflow_near_u32_max() {
        let mut walk = PoolWalk {
            len: u32::MAX,
            stride: u32::MAX - 2,
            at: u32::MAX - 1,
        };
        assert_eq!(walk.next_index(), u32::MAX - 1);
        // (MAX - 1) + (MAX - 2) = MAX - 3 (mod MAX).
        assert_eq!(walk.next_index(), u32::MAX - 3);
    }

    #[test]
    fn ports_wrap_and_skip_tuples_in_use() {
        let mut ports = PortAllocator {
            next: vec![65534, 1024],
        };
        let mut in_use = HashSet::new();
        in_use.insert(tuple_key(0, 65535));
        in_use.insert(tuple_key(0, 1024));
        assert_eq!(ports.take(0, &in_use), Some(65534));
        assert_eq!(ports.take(0, &in_use), Some(1025));
        // Client 1 is independent of client 0.
        assert_eq!(ports.take(1, &in_use), Some(1024));
        let everything: HashSet<TupleKey> = (1024..=65535).map(|p| tuple_key(1, p)).collect();
        assert_eq!(ports.take(1, &everything), None);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded); checksum = !ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(ones_sum(&data, 0)), !0xddf2);
        // An odd byte counts as the high half of a word.
        assert_eq!(ones_sum(&[0x12], 0), 0x1200);
    }

    #[test]
    fn frames_carry_valid_checksums_and_padding() {
        for layout in [
            FrameLayout {
                ipv6: false,
                vlan: None,
            },
            FrameLayout {
                ipv6: true,
                vlan: Some(42),
            },
        ] {
            let mut frame = Vec::new();
            let segment = Segment {
                client: 3,
                client_port: 4242,
                direction: Direction::ToServer,
                seq: 1,
                ack: 0,
                flags: SYN,
                ip_id: 9,
                payload: &[],
            };
            layout.build(&segment, &mut frame);
            assert!(frame.len() >= ETHERNET_MIN_FRAME);
            let ip = &frame[layout.link_len()..];
            if layout.ipv6 {
                let tcp = &ip[IPV6_HEADER_LEN..IPV6_HEADER_LEN + 24];
                let pseudo = ones_sum(&ip[8..40], 0) + 24 + u32::from(IP_PROTOCOL_TCP);
                assert_eq!(checksum(ones_sum(tcp, pseudo)), 0);
            } else {
                assert_eq!(checksum(ones_sum(&ip[..IPV4_HEADER_LEN], 0)), 0);
                let tcp = &ip[IPV4_HEADER_LEN..IPV4_HEADER_LEN + 24];
                let pseudo = ones_sum(&ip[12..20], 0) + 24 + u32::from(IP_PROTOCOL_TCP);
                assert_eq!(checksum(ones_sum(tcp, pseudo)), 0);
                assert_eq!(&ip[12..16], &[10, 0, 0, 4]);
            }
        }
    }

    #[test]
    fn client_addresses_avoid_network_and_broadcast() {
        assert_eq!(client_v4(0), [10, 0, 0, 1]);
        assert_eq!(client_v4(249), [10, 0, 0, 250]);
        assert_eq!(client_v4(250), [10, 0, 1, 1]);
        assert_eq!(client_v4(CLIENT_HOSTS - 1)[2], 4);
        assert_eq!(client_v6(0)[15], 1);
    }

    #[test]
    fn phases_for_hold_exactly_the_requests() {
        let phases = CaptureSpec::phases_for(100_001, 10_000);
        let spec = CaptureSpec {
            phases,
            ..CaptureSpec::default()
        };
        assert_eq!(spec.total_requests(), 100_001);
        assert_eq!(spec.total_seconds(), 11);
        assert!(CaptureSpec::phases_for(5, 0).is_empty());
    }
}

//! The generator's frames: one prepared Ethernet/IPv4/TCP frame per flow and direction,
//! rewritten in place before each send.
//!
//! # Contract
//!
//! - Every frame is exactly [`FrameSpec::frame_size`] bytes: the HTTP message is padded with
//!   an `X-Pad` header to fill it, and the frame's last [`SEND_STAMP_LEN`] bytes, after the IP
//!   packet's declared end, hold the send stamp (magic + CLOCK_MONOTONIC ns) that a receiving
//!   linewatch turns into its capture-latency histogram. The stamp is outside the TCP segment,
//!   so it is in no checksum and no parser sees it as payload.
//! - Every send of a flow's request frame carries the next TCP sequence number (advanced by
//!   the payload length) and a correct TCP checksum (updated from a precomputed partial sum),
//!   so a monitor that drops retransmissions still counts every frame as a new request.
//! - Requests vary: method (GET 80%, POST 10%, HEAD 5%, PUT 3%, DELETE 2%), section, sub-path,
//!   host and user agent are drawn per flow from fixed pools, seeded, so a run is repeatable.
//!
//! The destination MAC belongs to no one: without an XDP program the receiving kernel drops
//! the frames after its packet taps (as a NIC on a mirror port would deliver foreign traffic).

// Pool indices and payload lengths are tiny (below 2^16); the casts cannot truncate.
#![allow(clippy::cast_possible_truncation)]

use linewatch_parser::wire::{write_send_stamp, SEND_STAMP_LEN};
use linewatch_testkit::frame::checksum;
use linewatch_testkit::frame::{
    EthernetRepr, Frame, IpRepr, Ipv4Repr, Tags, TcpFlags, TcpOptions, TcpRepr, Transport,
    ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, TCP_ACK_AT, TCP_CHECKSUM_AT, TCP_HEADER_LEN, TCP_SEQ_AT,
};

use crate::capture::SplitMix64;

/// Destination MAC of request frames (locally administered, nobody's).
pub const SERVER_MAC: [u8; 6] = [0x02, 0x6c, 0x77, 0x00, 0x00, 0x02];
/// Source MAC of request frames.
pub const CLIENT_MAC: [u8; 6] = [0x02, 0x6c, 0x77, 0x00, 0x00, 0x01];
/// The server's address and port.
pub const SERVER_V4: [u8; 4] = [10, 207, 255, 1];
/// The server's port: HTTP.
pub const SERVER_PORT: u16 = 80;
/// First client port; flow `i` uses `CLIENT_PORT_BASE + i % 40000`.
const CLIENT_PORT_BASE: u16 = 20_000;
/// Ethernet + IPv4 + TCP headers in front of the payload.
pub const HEADERS_LEN: usize = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN + TCP_HEADER_LEN;
/// Largest frame on the lab's 1500-byte MTU.
pub const MAX_FRAME: usize = 1514;
const TCP_WINDOW: u16 = 502;
const TTL: u8 = 64;
/// Offsets inside the frame.
const IP_AT: usize = ETHERNET_HEADER_LEN;
const TCP_AT: usize = IP_AT + IPV4_HEADER_LEN;
const SEQ_AT: usize = TCP_AT + TCP_SEQ_AT;
const ACK_AT: usize = TCP_AT + TCP_ACK_AT;
const CHECKSUM_AT: usize = TCP_AT + TCP_CHECKSUM_AT;
const PAD_HEADER: &str = "X-Pad: ";

/// What the frames look like.
#[derive(Debug, Clone, Copy)]
pub struct FrameSpec {
    /// Bytes per frame, stamp included.
    pub frame_size: usize,
    /// Distinct flows (client address and port pairs).
    pub flows: u32,
    /// Seed of the per-flow choices.
    pub seed: u64,
    /// Which keys the requests draw from.
    pub pools: Pools,
}

/// The keys requests are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pools {
    /// Compact synthetic keys (`/s12`, `h3.lab`, `bench/5`): small frames.
    Bench,
    /// A small web site's worth of sections, hosts and user agents: the demo.
    Demo,
}

const DEMO_SECTIONS: [&str; 8] = [
    "/", "/api", "/pages", "/images", "/login", "/static", "/search", "/cart",
];
const DEMO_HOSTS: [&str; 3] = ["shop.example", "api.example", "www.example"];
const DEMO_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
];

/// Which way a frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server: a request.
    Request,
    /// Server to client: a response.
    Response,
}

/// One direction of one flow: the frame, ready to be stamped and sent again and again.
#[derive(Debug, Clone)]
pub struct FlowFrame {
    bytes: Vec<u8>,
    /// Sequence number of the next send.
    seq: u32,
    /// One's-complement sum of the pseudo-header and the TCP segment with sequence number and
    /// checksum zero: the checksum of a send is this plus the sequence number, folded.
    partial: u32,
    payload_len: u32,
    /// What the frame carries, for tests and the demo's expectations.
    pub method: &'static str,
    /// The request's section (`/s3`), or the response's status code as text.
    pub key: String,
}

impl FlowFrame {
    /// Writes the next sequence number, its checksum and the send stamp; returns the frame.
    #[inline]
    pub fn next(&mut self, stamp_ns: u64) -> &[u8] {
        let seq = self.seq;
        self.seq = seq.wrapping_add(self.payload_len);
        self.bytes[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_be_bytes());
        let sum = self.partial + (seq >> 16) + (seq & 0xFFFF);
        self.bytes[CHECKSUM_AT..CHECKSUM_AT + 2]
            .copy_from_slice(&checksum::finish(sum).to_be_bytes());
        let len = self.bytes.len();
        write_send_stamp(&mut self.bytes[len - SEND_STAMP_LEN..], stamp_ns);
        &self.bytes
    }

    /// Sets the acknowledgement number (the other direction's next sequence number), keeping
    /// the partial sum right.
    pub fn set_ack(&mut self, ack: u32) {
        let old = u32::from_be_bytes(self.bytes[ACK_AT..ACK_AT + 4].try_into().unwrap_or([0; 4]));
        // Subtract the old words in one's complement (add their complements), add the new.
        let sub = |x: u32| 0xFFFF - (x & 0xFFFF);
        self.partial = u32::from(checksum::fold(
            self.partial + sub(old >> 16) + sub(old) + (ack >> 16) + (ack & 0xFFFF),
        ));
        self.bytes[ACK_AT..ACK_AT + 4].copy_from_slice(&ack.to_be_bytes());
    }

    /// The sequence number the next send will carry.
    pub fn next_seq(&self) -> u32 {
        self.seq
    }

    /// The frame as it was last written.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// HTTP payload bytes per frame.
    pub fn payload_len(&self) -> u32 {
        self.payload_len
    }
}

/// A flow: its request frame and, for the demo, its response frame.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Client to server.
    pub request: FlowFrame,
    /// Server to client.
    pub response: FlowFrame,
}

const METHODS: [(&str, u32); 5] = [
    ("GET", 800),
    ("POST", 100),
    ("HEAD", 50),
    ("PUT", 30),
    ("DELETE", 20),
];
const SECTIONS: u32 = 64;
const HOSTS: u32 = 16;
const AGENTS: u32 = 8;
/// Status codes of responses, per mille.
const STATUSES: [(u16, &str, u32); 4] = [
    (200, "OK", 900),
    (404, "Not Found", 60),
    (301, "Moved Permanently", 25),
    (500, "Internal Server Error", 15),
];

/// Builds the flows of `spec`; fails when a message does not fit the frame size.
pub fn flows(spec: &FrameSpec) -> Result<Vec<Flow>, String> {
    if spec.frame_size > MAX_FRAME {
        return Err(format!(
            "frame size {} is above {MAX_FRAME}, the lab's 1500-byte MTU",
            spec.frame_size
        ));
    }
    let mut rng = SplitMix64(spec.seed);
    let mut out = Vec::with_capacity(spec.flows as usize);
    for i in 0..spec.flows.max(1) {
        let pick = rng.below(1000);
        let mut acc = 0;
        let mut method = METHODS[0].0;
        for (m, w) in METHODS {
            acc += w;
            if pick < acc {
                method = m;
                break;
            }
        }
        let (section, target, host, agent) = match spec.pools {
            Pools::Bench => {
                let section = format!("/s{}", rng.below(SECTIONS));
                let target = if rng.below(4) == 0 {
                    format!("{section}/p{}", rng.below(10))
                } else {
                    section.clone()
                };
                (
                    section,
                    target,
                    format!("h{}.lab", rng.below(HOSTS)),
                    format!("bench/{}", rng.below(AGENTS)),
                )
            }
            Pools::Demo => {
                // Skewed: the first keys of each pool are the busiest.
                let skew = |rng: &mut SplitMix64, n: usize| {
                    let a = rng.below(n as u32);
                    let b = rng.below(n as u32);
                    a.min(b) as usize
                };
                let section = DEMO_SECTIONS[skew(&mut rng, DEMO_SECTIONS.len())].to_owned();
                let target = if section == "/" {
                    section.clone()
                } else {
                    format!("{section}/item{}?id={}", rng.below(20), rng.below(1000))
                };
                let host = DEMO_HOSTS[skew(&mut rng, DEMO_HOSTS.len())].to_owned();
                let agent = DEMO_AGENTS[skew(&mut rng, DEMO_AGENTS.len())].to_owned();
                (section, target, host, agent)
            }
        };
        let head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {agent}\r\n");
        let pick = rng.below(1000);
        let mut acc = 0;
        let mut status = STATUSES[0];
        for s in STATUSES {
            acc += s.2;
            if pick < acc {
                status = s;
                break;
            }
        }
        let response_head = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: 0\r\n",
            status.0, status.1
        );
        let client = [
            10,
            207,
            u8::try_from(i / 250 % 250).unwrap_or(0),
            u8::try_from(i % 250 + 1).unwrap_or(1),
        ];
        let port = CLIENT_PORT_BASE + u16::try_from(i % 40_000).unwrap_or(0);
        let client_isn = rng.next_u32();
        let server_isn = rng.next_u32();
        let mut request = build(
            spec.frame_size,
            Direction::Request,
            client,
            port,
            &head,
            client_isn,
            server_isn,
        )?;
        request.method = method;
        request.key = section;
        let mut response = build(
            spec.frame_size,
            Direction::Response,
            client,
            port,
            &response_head,
            server_isn,
            client_isn,
        )?;
        response.key = status.0.to_string();
        out.push(Flow { request, response });
    }
    Ok(out)
}

/// The smallest frame size every flow of `spec` fits.
pub fn smallest_frame(spec: &FrameSpec) -> usize {
    let mut lo = HEADERS_LEN + SEND_STAMP_LEN;
    while lo < MAX_FRAME
        && flows(&FrameSpec {
            frame_size: lo,
            ..*spec
        })
        .is_err()
    {
        lo += 1;
    }
    lo
}

fn build(
    frame_size: usize,
    direction: Direction,
    client: [u8; 4],
    client_port: u16,
    head: &str,
    seq: u32,
    ack: u32,
) -> Result<FlowFrame, String> {
    let bare = head.len() + PAD_HEADER.len() + 4; // the pad header's CRLF and the blank line
    let room = frame_size
        .checked_sub(HEADERS_LEN + SEND_STAMP_LEN + bare)
        .ok_or_else(|| {
            format!(
                "frame size {frame_size} is too small for `{}`",
                head.lines().next().unwrap_or("")
            )
        })?;
    let mut payload = String::with_capacity(bare + room);
    payload.push_str(head);
    payload.push_str(PAD_HEADER);
    payload.extend(std::iter::repeat_n('a', room));
    payload.push_str("\r\n\r\n");
    let payload_len = u32::try_from(payload.len()).map_err(|_| "payload too long".to_owned())?;

    let (src_mac, dst_mac, src, dst, src_port, dst_port) = match direction {
        Direction::Request => (
            CLIENT_MAC,
            SERVER_MAC,
            client,
            SERVER_V4,
            client_port,
            SERVER_PORT,
        ),
        Direction::Response => (
            SERVER_MAC,
            CLIENT_MAC,
            SERVER_V4,
            client,
            SERVER_PORT,
            client_port,
        ),
    };
    let frame = Frame {
        ethernet: EthernetRepr {
            dst: dst_mac,
            src: src_mac,
            tags: Tags::None,
        },
        ip: IpRepr::V4(Ipv4Repr {
            ident: 0,
            ttl: TTL,
            dont_fragment: true,
            ..Ipv4Repr::new(src.into(), dst.into())
        }),
        transport: Transport::Tcp(TcpRepr {
            src_port,
            dst_port,
            seq: 0, // written per send
            ack,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            window: TCP_WINDOW,
            options: TcpOptions::default(),
            payload: payload.as_bytes(),
        }),
        trailer: &[],
        // The send stamp goes into the padding, after the IP packet's end.
        min_len: frame_size,
    };
    let bytes = frame.to_vec();
    debug_assert_eq!(bytes.len(), frame_size);
    // Emitted with sequence number 0, the checksum is the complement of the sum of everything
    // else: the partial sum each send adds its sequence number to.
    let emitted = u16::from_be_bytes([bytes[CHECKSUM_AT], bytes[CHECKSUM_AT + 1]]);
    Ok(FlowFrame {
        bytes,
        seq,
        partial: u32::from(!emitted),
        payload_len,
        method: "",
        key: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use linewatch_parser::http::{parse_request, parse_response, Status};
    use linewatch_parser::wire::{decode_frame, LinkType};
    use linewatch_testkit::frame::IP_PROTOCOL_TCP;

    fn spec(frame_size: usize) -> FrameSpec {
        FrameSpec {
            frame_size,
            flows: 64,
            seed: 7,
            pools: Pools::Bench,
        }
    }

    /// The TCP checksum recomputed from scratch over the frame.
    fn tcp_checksum_ok(f: &[u8]) -> bool {
        let total = usize::from(u16::from_be_bytes([f[IP_AT + 2], f[IP_AT + 3]]));
        let tcp = &f[TCP_AT..IP_AT + total];
        let pseudo = checksum::sum(&f[IP_AT + 12..IP_AT + 20], 0)
            + u32::from(IP_PROTOCOL_TCP)
            + u32::try_from(tcp.len()).unwrap();
        checksum::fold(checksum::sum(tcp, pseudo)) == 0xFFFF
    }

    #[test]
    fn frames_have_the_size_the_checksums_and_the_stamp() {
        let mut flows = flows(&spec(150)).expect("150 bytes fit");
        for (i, flow) in flows.iter_mut().enumerate() {
            let first_seq = flow.request.next_seq();
            let f = flow.request.next(1_000 + i as u64).to_vec();
            assert_eq!(f.len(), 150);
            assert_eq!(checksum::finish(checksum::sum(&f[IP_AT..TCP_AT], 0)), 0);
            assert!(tcp_checksum_ok(&f), "flow {i}");
            let seg = decode_frame(LinkType::Ethernet, &f).expect("decodes");
            assert_eq!(seg.seq, first_seq);
            assert_eq!(seg.dst_port, SERVER_PORT);
            assert_eq!(seg.send_stamp(), Some(1_000 + i as u64));
            let Ok(Status::Complete(req)) = parse_request(seg.payload) else {
                panic!("flow {i}: not a complete request");
            };
            assert_eq!(
                req.head_len,
                seg.payload.len(),
                "one request per frame, nothing after it"
            );
            assert_eq!(req.line.method, flow.request.method.as_bytes());
            assert!(req.line.target.starts_with(flow.request.key.as_bytes()));
            // The next send advances the sequence number by the payload and stays valid.
            let g = flow.request.next(5).to_vec();
            let seg2 = decode_frame(LinkType::Ethernet, &g).expect("decodes");
            assert_eq!(seg2.seq, first_seq.wrapping_add(seg.payload.len() as u32));
            assert!(tcp_checksum_ok(&g));
            // Responses too, after an ack update.
            flow.response
                .set_ack(seg2.seq.wrapping_add(flow.request.payload_len()));
            let r = flow.response.next(9).to_vec();
            assert!(tcp_checksum_ok(&r), "response of flow {i}");
            let seg = decode_frame(LinkType::Ethernet, &r).expect("decodes");
            let Ok(Status::Complete(resp)) = parse_response(seg.payload) else {
                panic!("flow {i}: not a complete response");
            };
            assert_eq!(resp.line.code.to_string(), flow.response.key);
        }
    }

    #[test]
    fn requests_vary() {
        let flows = flows(&spec(200)).expect("fits");
        let methods: std::collections::HashSet<_> =
            flows.iter().map(|f| f.request.method).collect();
        let sections: std::collections::HashSet<_> =
            flows.iter().map(|f| f.request.key.clone()).collect();
        assert!(methods.len() >= 3, "{methods:?}");
        assert!(sections.len() >= 20, "{}", sections.len());
    }

    #[test]
    fn too_small_a_frame_is_refused_with_a_reason() {
        let e = flows(&spec(90)).expect_err("90 bytes cannot hold a request");
        assert!(e.contains("too small"), "{e}");
        let e = flows(&spec(1600)).expect_err("above the MTU");
        assert!(e.contains("MTU"), "{e}");
        let min = smallest_frame(&spec(0));
        assert!(flows(&spec(min)).is_ok());
        assert!(flows(&spec(min - 1)).is_err());
    }
}

//! The capture generator against an independent reading of what it wrote: each file is read
//! back with pcap-file, every frame decoded with linewatch's parser, checksums and TCP
//! sequence numbers verified here from the raw bytes, and every count compared with the truth
//! the generator returned. tshark, when installed, is the outside oracle.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use linewatch_bench_rig::capture::{
    write_capture, write_capture_file, CaptureSpec, CaptureTruth, HeavyKey, KeySpec, Phase,
};
use linewatch_parser::http::{requests, responses};
use linewatch_parser::wire::{decode_frame, LinkType, TcpFlags};
use linewatch_testkit::frame::checksum::{fold, sum};
use pcap_file::pcap::PcapReader;
use pcap_file::DataLink;

const MICROS_PER_SEC: u64 = 1_000_000;

/// A file in the temp dir, removed when dropped (also when the test fails).
struct TempCapture(PathBuf);

impl TempCapture {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempCapture(std::env::temp_dir().join(format!(
            "linewatch-capture-{}-{n}-{name}.pcap",
            std::process::id()
        )))
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn small_spec(phases: &[(u32, u32)]) -> CaptureSpec {
    CaptureSpec {
        start_unix_secs: 1_600_000_000,
        phases: phases
            .iter()
            .map(|&(seconds, requests_per_second)| Phase {
                seconds,
                requests_per_second,
            })
            .collect(),
        requests_per_connection: 3,
        handshake: true,
        responses: true,
        response_latency_us: 2_000,
        keys: KeySpec {
            distinct_sections: 40,
            distinct_hosts: 7,
            distinct_user_agents: 5,
            heavy: vec![HeavyKey {
                section: "/api".into(),
                host: "API.Example:8080".into(),
                per_mille: 150,
            }],
        },
        ipv6: false,
        vlan: None,
        seed: 42,
    }
}

/// Everything read back from a capture.
#[derive(Debug, Default)]
struct Decoded {
    packets: u64,
    requests: u64,
    responses: u64,
    syns: u64,
    fins: u64,
    requests_per_second: Vec<u64>,
    methods: BTreeMap<String, u64>,
    status: BTreeMap<u16, u64>,
    sections: HashMap<String, u64>,
    hosts: HashMap<String, u64>,
    user_agents: HashMap<String, u64>,
    /// Microsecond timestamps of the requests, in file order.
    request_times: Vec<u64>,
    /// Requests seen on each connection.
    requests_per_flow: HashMap<Flow, u32>,
}

/// (client address, client port): the server side is always port 80.
type Flow = (IpAddr, u16);

/// Per direction of a connection: the next sequence number expected.
type SeqKey = (IpAddr, u16, IpAddr, u16);

fn bump(map: &mut HashMap<String, u64>, key: &[u8]) {
    *map.entry(String::from_utf8(key.to_vec()).expect("ASCII keys"))
        .or_insert(0) += 1;
}

/// Reads `path` back and checks, frame by frame: timestamps never go back, IPv4 and TCP
/// checksums hold, each direction's sequence numbers continue exactly, ACKs acknowledge what
/// the peer sent, and on one connection a request waits for the previous response.
fn decode(path: &Path, spec: &CaptureSpec) -> Decoded {
    let mut reader = PcapReader::new(BufReader::new(File::open(path).expect("open capture")))
        .expect("pcap header");
    assert_eq!(reader.header().datalink, DataLink::ETHERNET);
    let mut out = Decoded::default();
    let mut next_seq: HashMap<SeqKey, u32> = HashMap::new();
    let mut awaiting_response: HashMap<Flow, bool> = HashMap::new();
    let mut fins: HashMap<Flow, u8> = HashMap::new();
    let mut last_ts = 0u64;
    let start_us = spec.start_unix_secs * MICROS_PER_SEC;
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("pcap record");
        let ts = u64::try_from(packet.timestamp.as_micros()).expect("fits");
        assert!(
            ts >= last_ts,
            "timestamps go back at packet {}",
            out.packets
        );
        last_ts = ts;
        out.packets += 1;
        let frame = &packet.data;
        assert_eq!(u32::try_from(frame.len()).unwrap(), packet.orig_len);
        assert!(frame.len() >= 60, "frame below the Ethernet minimum");
        verify_checksums(frame);

        let seg = decode_frame(LinkType::Ethernet, frame).expect("a TCP segment");
        assert_eq!(seg.vlan_ids[0], spec.vlan.unwrap_or(0));
        assert_eq!(seg.src.is_ipv6(), spec.ipv6);
        let to_server = seg.dst_port == 80;
        assert!(to_server || seg.src_port == 80);
        let flow: Flow = if to_server {
            (seg.src, seg.src_port)
        } else {
            (seg.dst, seg.dst_port)
        };
        if spec.ipv6 {
            let server: IpAddr = "fd00:1::1".parse().unwrap();
            assert_eq!(if to_server { seg.dst } else { seg.src }, server);
            assert!(matches!(flow.0, IpAddr::V6(a) if a.octets()[0] == 0xfd));
        } else {
            let server: IpAddr = "10.1.0.1".parse().unwrap();
            assert_eq!(if to_server { seg.dst } else { seg.src }, server);
            assert!(matches!(flow.0, IpAddr::V4(a) if a.octets()[..2] == [10, 0]));
        }

        // Sequence numbers: a SYN starts a direction (without handshakes, the first segment
        // does); everything else continues it exactly.
        let key: SeqKey = (seg.src, seg.src_port, seg.dst, seg.dst_port);
        let reverse: SeqKey = (seg.dst, seg.dst_port, seg.src, seg.src_port);
        let syn = seg.flags.has(TcpFlags::SYN);
        let fin = seg.flags.has(TcpFlags::FIN);
        if syn {
            assert!(
                !next_seq.contains_key(&key),
                "4-tuple {key:?} reused while open"
            );
            if !seg.flags.has(TcpFlags::ACK) {
                out.syns += 1;
            }
        } else {
            match next_seq.get(&key) {
                Some(&expected) => assert_eq!(seg.seq, expected, "sequence gap on {key:?}"),
                None => assert!(!spec.handshake, "data before the handshake on {key:?}"),
            }
        }
        if seg.flags.has(TcpFlags::ACK) {
            if let Some(&peer) = next_seq.get(&reverse) {
                assert_eq!(seg.ack, peer, "ACK does not match the peer on {key:?}");
            }
        }
        let consumed = u32::try_from(seg.payload.len()).unwrap() + u32::from(syn) + u32::from(fin);
        next_seq.insert(key, seg.seq.wrapping_add(consumed));
        if fin {
            out.fins += 1;
            *fins.entry(flow).or_insert(0) += 1;
        } else if !syn && seg.payload.is_empty() && fins.get(&flow) == Some(&2) {
            // The last ACK of the close: the 4-tuple may be used again.
            fins.remove(&flow);
            next_seq.remove(&key);
            next_seq.remove(&reverse);
        }

        if to_server {
            for (_, request) in requests(seg.payload) {
                assert!(
                    !awaiting_response.get(&flow).copied().unwrap_or(false),
                    "request before the previous response on {flow:?}"
                );
                awaiting_response.insert(flow, spec.responses);
                out.requests += 1;
                out.request_times.push(ts);
                let second = usize::try_from((ts - start_us) / MICROS_PER_SEC).unwrap();
                if out.requests_per_second.len() <= second {
                    out.requests_per_second.resize(second + 1, 0);
                }
                out.requests_per_second[second] += 1;
                *out.methods
                    .entry(String::from_utf8(request.line.method.to_vec()).unwrap())
                    .or_insert(0) += 1;
                bump(&mut out.sections, request.line.section());
                bump(
                    &mut out.hosts,
                    &request.host.expect("Host").to_ascii_lowercase(),
                );
                bump(
                    &mut out.user_agents,
                    request.user_agent.expect("User-Agent"),
                );
                *out.requests_per_flow.entry(flow).or_insert(0) += 1;
            }
        } else {
            for (_, response) in responses(seg.payload) {
                assert!(
                    awaiting_response.insert(flow, false).unwrap_or(false),
                    "response without a request on {flow:?}"
                );
                out.responses += 1;
                *out.status.entry(response.line.code).or_insert(0) += 1;
            }
        }
    }
    out
}

/// Verifies the IPv4 header checksum and the TCP checksum from the raw frame bytes.
fn verify_checksums(frame: &[u8]) {
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([frame[at], frame[at + 1]]);
    at += 2;
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        at += 4;
    }
    let ip = &frame[at..];
    let (tcp, pseudo) = match ethertype {
        0x0800 => {
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert_eq!(
                fold(sum(&ip[..header_len], 0)),
                0xffff,
                "IPv4 header checksum"
            );
            let tcp = &ip[header_len..total];
            let pseudo = sum(&ip[12..20], 0) + 6 + u32::try_from(tcp.len()).unwrap();
            (tcp, pseudo)
        }
        0x86dd => {
            let payload = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            assert_eq!(ip[6], 6, "next header TCP");
            let tcp = &ip[40..40 + payload];
            let pseudo = sum(&ip[8..40], 0) + 6 + u32::try_from(tcp.len()).unwrap();
            (tcp, pseudo)
        }
        other => panic!("unexpected ethertype {other:#06x}"),
    };
    assert_eq!(fold(sum(tcp, pseudo)), 0xffff, "TCP checksum");
}

/// Generates `spec` to a temp file, decodes it, and checks every count against the truth.
fn generate_and_check(name: &str, spec: &CaptureSpec) -> (CaptureTruth, Decoded) {
    let file = TempCapture::new(name);
    let truth = write_capture_file(spec, &file.0).expect("write capture");
    let decoded = decode(&file.0, spec);
    assert_eq!(decoded.packets, truth.packets, "packets");
    assert_eq!(decoded.requests, truth.requests, "requests");
    assert_eq!(decoded.requests, spec.total_requests());
    assert_eq!(decoded.responses, truth.responses, "responses");
    let expected_rates: Vec<u64> = spec
        .phases
        .iter()
        .flat_map(|p| std::iter::repeat_n(u64::from(p.requests_per_second), p.seconds as usize))
        .collect();
    assert_eq!(
        truth.requests_per_second, expected_rates,
        "truth per second"
    );
    // Trailing idle seconds hold no request, so the decoded vector stops at the last busy one.
    let mut decoded_rates = decoded.requests_per_second.clone();
    decoded_rates.resize(expected_rates.len(), 0);
    assert_eq!(decoded_rates, expected_rates, "decoded per second");
    assert_eq!(decoded.methods, truth.methods, "methods");
    assert_eq!(decoded.status, truth.status, "status");
    assert_eq!(decoded.sections, truth.sections, "sections");
    assert_eq!(decoded.hosts, truth.hosts, "hosts");
    assert_eq!(decoded.user_agents, truth.user_agents, "user agents");
    for (flow, n) in &decoded.requests_per_flow {
        assert!(
            *n <= spec.requests_per_connection,
            "{flow:?} carried {n} requests"
        );
    }
    if spec.handshake {
        assert_eq!(decoded.syns, truth.connections, "one SYN per connection");
        assert_eq!(decoded.fins, 2 * truth.connections, "a FIN each way");
    }
    (truth, decoded)
}

#[test]
fn ipv4_capture_matches_its_truth() {
    let spec = small_spec(&[(2, 7), (1, 40), (2, 7)]);
    let (truth, _) = generate_and_check("ipv4", &spec);
    assert_eq!(truth.requests, 68);
    assert_eq!(truth.responses, 68);
    // Responses to HEAD carry no body, so the parser reads every response head.
    assert!(truth.methods.contains_key("GET"));
    // The heavy host is counted lower-cased, port kept.
    assert!(truth.hosts.contains_key("api.example:8080"));
    assert!(truth.sections.keys().all(|s| s.starts_with('/')));
}

#[test]
fn ipv6_capture_matches_its_truth() {
    let spec = CaptureSpec {
        ipv6: true,
        seed: 6,
        ..small_spec(&[(3, 20)])
    };
    generate_and_check("ipv6", &spec);
}

#[test]
fn vlan_capture_matches_its_truth() {
    let spec = CaptureSpec {
        vlan: Some(100),
        seed: 8021,
        ..small_spec(&[(1, 30), (2, 5)])
    };
    generate_and_check("vlan", &spec);
    let v6 = CaptureSpec {
        vlan: Some(4094),
        ipv6: true,
        ..small_spec(&[(1, 30)])
    };
    generate_and_check("vlan6", &v6);
}

#[test]
fn requests_only_without_handshake() {
    let spec = CaptureSpec {
        handshake: false,
        responses: false,
        requests_per_connection: 5,
        ..small_spec(&[(2, 50), (1, 0), (1, 9)])
    };
    let (truth, decoded) = generate_and_check("bare", &spec);
    assert_eq!(truth.responses, 0);
    assert!(truth.status.is_empty());
    // Requests only: one frame each, nothing else.
    assert_eq!(truth.packets, truth.requests);
    assert_eq!(decoded.syns, 0);
}

#[test]
fn high_rate_opens_concurrent_connections_without_moving_timestamps() {
    // 2000 req/s is a request every 500 µs against responses 2-3 ms late: one connection
    // cannot carry them, so several run side by side.
    let spec = CaptureSpec {
        requests_per_connection: 100,
        ..small_spec(&[(1, 2000), (1, 3)])
    };
    let (truth, decoded) = generate_and_check("concurrent", &spec);
    assert!(
        truth.connections >= 5,
        "only {} connections",
        truth.connections
    );
    let start = spec.start_unix_secs * MICROS_PER_SEC;
    let expected: Vec<u64> = (0..2000)
        .map(|i| start + i * MICROS_PER_SEC / 2000)
        .chain((0..3).map(|i| start + MICROS_PER_SEC + i * MICROS_PER_SEC / 3))
        .collect();
    assert_eq!(decoded.request_times, expected);
}

#[test]
fn keepalive_of_one_is_one_request_per_connection() {
    let spec = CaptureSpec {
        requests_per_connection: 1,
        ..small_spec(&[(2, 25)])
    };
    let (truth, decoded) = generate_and_check("keepalive1", &spec);
    assert_eq!(truth.connections, 50);
    assert!(decoded.requests_per_flow.values().all(|&n| n == 1));
    assert_eq!(decoded.requests_per_flow.len(), 50);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let spec = small_spec(&[(2, 30)]);
    let mut first = Vec::new();
    let mut second = Vec::new();
    let truth_a = write_capture(&spec, &mut first).unwrap();
    let truth_b = write_capture(&spec, &mut second).unwrap();
    assert!(first == second, "same seed, different bytes");
    assert_eq!(truth_a, truth_b);

    let mut other = Vec::new();
    write_capture(
        &CaptureSpec {
            seed: 43,
            ..spec.clone()
        },
        &mut other,
    )
    .unwrap();
    assert!(first != other, "another seed gave the same bytes");

    // The file writer writes the same bytes as the in-memory one.
    let file = TempCapture::new("same");
    let truth_file = write_capture_file(&spec, &file.0).unwrap();
    assert_eq!(std::fs::read(&file.0).unwrap(), first);
    assert_eq!(truth_file, truth_a);
}

#[test]
fn heavy_keys_take_their_exact_share_and_pools_spread_evenly() {
    let spec = CaptureSpec {
        keys: KeySpec {
            distinct_sections: 100,
            distinct_hosts: 30,
            distinct_user_agents: 7,
            heavy: vec![
                HeavyKey {
                    section: "/hot".into(),
                    host: "hot.example".into(),
                    per_mille: 100,
                },
                HeavyKey {
                    section: "/".into(),
                    host: "warm.example".into(),
                    per_mille: 25,
                },
            ],
        },
        responses: false,
        ..small_spec(&[(10, 1000)])
    };
    let mut sink = Vec::new();
    let truth = write_capture(&spec, &mut sink).unwrap();
    assert_eq!(truth.requests, 10_000);
    assert_eq!(truth.sections["/hot"], 1000);
    assert_eq!(truth.hosts["hot.example"], 1000);
    assert_eq!(truth.sections["/"], 250);
    assert_eq!(truth.hosts["warm.example"], 250);
    assert_eq!(truth.top_sections(2), [("/hot", 1000), ("/", 250)]);
    // The other 8750 requests: every pooled key within one of the others.
    let pooled = |map: &HashMap<String, u64>, prefix: &str| -> Vec<u64> {
        map.iter()
            .filter(|(k, _)| {
                k.strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
            })
            .map(|(_, &n)| n)
            .collect()
    };
    for (counts, keys) in [
        (pooled(&truth.sections, "/s"), 100),
        (pooled(&truth.hosts, "h"), 30),
    ] {
        assert_eq!(counts.len(), keys);
        assert_eq!(counts.iter().sum::<u64>(), 8750);
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 1, "uneven pool: {min}..{max}");
    }
    assert_eq!(truth.user_agents.len(), 7);
    // Every request is one of the three methods, in roughly the documented mix.
    assert_eq!(truth.methods.values().sum::<u64>(), 10_000);
    assert!((8_700..9_300).contains(&truth.methods["GET"]));
    assert!(truth.methods["POST"] > 400 && truth.methods["HEAD"] > 150);
}

#[test]
fn a_pool_larger_than_the_requests_gives_distinct_keys() {
    let spec = CaptureSpec {
        keys: KeySpec {
            distinct_sections: 1_000_000,
            distinct_hosts: 1_000_000,
            distinct_user_agents: 3,
            heavy: vec![],
        },
        handshake: false,
        responses: false,
        ..small_spec(&[(1, 5000)])
    };
    let truth = write_capture(&spec, std::io::sink()).unwrap();
    assert_eq!(truth.sections.len(), 5000);
    assert_eq!(truth.hosts.len(), 5000);
}

#[test]
fn invalid_specs_are_rejected_with_the_reason() {
    let base = small_spec(&[(1, 1)]);
    let mut heavy_over = base.clone();
    heavy_over.keys.heavy[0].per_mille = 1001;
    let mut bad_section = base.clone();
    bad_section.keys.heavy[0].section = "/a/b".into();
    let cases = [
        (
            CaptureSpec {
                requests_per_connection: 0,
                ..base.clone()
            },
            "requests_per_connection",
        ),
        (heavy_over, "per mille"),
        (bad_section, "heavy section"),
        (
            CaptureSpec {
                vlan: Some(4095),
                ..base.clone()
            },
            "VLAN ID",
        ),
        (
            CaptureSpec {
                start_unix_secs: u64::from(u32::MAX),
                ..base.clone()
            },
            "classic pcap",
        ),
    ];
    for (spec, reason) in cases {
        let error = write_capture(&spec, std::io::sink()).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains(reason), "{error} lacks {reason}");
    }
}

#[test]
fn bench_default_is_a_million_requests() {
    let spec = CaptureSpec::bench_default();
    assert_eq!(spec.total_requests(), 1_000_000);
    assert!(spec.validate().is_ok());
    assert!(spec.responses && spec.handshake && spec.requests_per_connection > 1);
}

/// tshark (when installed) is the outside oracle: it reassembles the streams and must find
/// every request and every response, with the same methods and status codes.
#[test]
fn tshark_finds_every_request_and_response() {
    if !linewatch_testkit::tools::need_programs(
        "tshark_finds_every_request_and_response",
        &["tshark"],
    ) {
        return;
    }
    let spec = CaptureSpec {
        vlan: Some(7),
        ..small_spec(&[(2, 15), (1, 60)])
    };
    let file = TempCapture::new("tshark");
    let truth = write_capture_file(&spec, &file.0).unwrap();
    let fields = |filter: &str, field: &str| -> Vec<String> {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&file.0)
            .args([
                "-n",
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "tcp.check_checksum:TRUE",
            ])
            .args(["-Y", filter, "-T", "fields", "-e", field])
            .output()
            .expect("run tshark");
        assert!(out.status.success(), "tshark failed: {out:?}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let methods = fields("http.request", "http.request.method");
    assert_eq!(methods.len() as u64, truth.requests);
    let mut by_method = BTreeMap::new();
    for m in methods {
        *by_method.entry(m).or_insert(0u64) += 1;
    }
    assert_eq!(by_method, truth.methods);

    let codes = fields("http.response", "http.response.code");
    assert_eq!(codes.len() as u64, truth.responses);
    let mut by_code = BTreeMap::new();
    for c in codes {
        *by_code.entry(c.parse::<u16>().unwrap()).or_insert(0u64) += 1;
    }
    assert_eq!(by_code, truth.status);

    // tshark's own checksum validation agrees, and it sees no TCP trouble.
    let bad = fields(
        "ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\" || tcp.analysis.flags",
        "frame.number",
    );
    assert!(bad.is_empty(), "tshark flags frames {bad:?}");
}

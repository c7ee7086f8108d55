//! `--dst` against captures whose answer is known: for every server address in each corpus
//! capture's tshark oracle (`../shared/corpus/oracle/F.tsv`), `linewatch --read F --dst ADDR`
//! counts exactly the requests tshark saw sent to ADDR (by method and host) and the responses
//! it sent (by status code), and nothing of any other server. The servers' runs add up to the
//! run without `--dst`; all of them at once (comma-separated and repeated) is that run; an
//! address that is in no packet counts no request, response or connection, and every TCP
//! segment as unmonitored.
//!
//! The oracle's known blind spots (responses tshark never completes: `KNOWN` in
//! `tests/corpus.rs`) are allowed here too, each on the server whose connection it is.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::{map_of, scratch, summary_of};
use linewatch_testkit::corpus;
use linewatch_testkit::frame::{pcap, Frame, TcpFlags, TcpRepr};

/// Responses linewatch counts and tshark does not, as `tests/corpus.rs` lists them with the
/// reasons: (capture, the client port of the connection, status code).
const KNOWN_EXTRA: &[(&str, &str, &str)] = &[
    ("ppp__many-protocols.pcap", "55282", "302"),
    ("ppp__many-protocols.pcap", "55297", "200"),
    ("chrissanders__http_espn.pcapng", "41835", "200"),
];

/// What tshark saw of one server.
#[derive(Debug, Default, Clone, PartialEq)]
struct Served {
    requests: u64,
    methods: BTreeMap<String, u64>,
    hosts: BTreeMap<String, u64>,
    responses: u64,
    status: BTreeMap<String, u64>,
}

/// The oracle of `capture`, split by server address (a request's destination, a response's
/// source).
fn by_server(capture: &str) -> BTreeMap<IpAddr, Served> {
    let path = corpus::file(&format!("oracle/{capture}.tsv")).expect("an oracle per capture");
    let text = std::fs::read_to_string(path).expect("reading the oracle");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("oracle header").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (src4, src6, dst4, dst6) = (
        col("ip.src"),
        col("ipv6.src"),
        col("ip.dst"),
        col("ipv6.dst"),
    );
    let (sport, method, host, code) = (
        col("tcp.srcport"),
        col("http.request.method"),
        col("http.host"),
        col("http.response.code"),
    );
    let addr = |f: &[&str], v4: usize, v6: usize| -> IpAddr {
        let a = if f[v4].is_empty() { f[v6] } else { f[v4] };
        a.parse().unwrap_or_else(|_| panic!("an address: {a:?}"))
    };
    let mut servers: BTreeMap<IpAddr, Served> = BTreeMap::new();
    let mut client_ports: BTreeMap<String, IpAddr> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let methods: Vec<&str> = f[method].split('|').filter(|m| !m.is_empty()).collect();
        if !methods.is_empty() {
            let server = addr(&f, dst4, dst6);
            client_ports.insert(f[sport].to_owned(), server);
            let s = servers.entry(server).or_default();
            let hosts: Vec<&str> = f[host].split('|').collect();
            for (i, m) in methods.iter().enumerate() {
                s.requests += 1;
                *s.methods.entry((*m).to_owned()).or_default() += 1;
                let h = hosts
                    .get(i)
                    .copied()
                    .filter(|h| !h.is_empty())
                    .unwrap_or("-");
                *s.hosts.entry(h.to_ascii_lowercase()).or_default() += 1;
            }
        }
        let codes: Vec<&str> = f[code].split('|').filter(|c| !c.is_empty()).collect();
        if !codes.is_empty() {
            let s = servers.entry(addr(&f, src4, src6)).or_default();
            for c in codes {
                s.responses += 1;
                *s.status.entry(c.to_owned()).or_default() += 1;
            }
        }
    }
    for (cap, port, status) in KNOWN_EXTRA {
        if *cap == capture {
            let server = client_ports[*port];
            let s = servers
                .get_mut(&server)
                .expect("the known response's server");
            s.responses += 1;
            *s.status.entry((*status).to_owned()).or_default() += 1;
        }
    }
    servers
}

/// What linewatch counted, in the oracle's terms.
fn counted(summary: &serde_json::Value) -> Served {
    Served {
        requests: summary["requests"].as_u64().expect("requests"),
        methods: map_of(summary, "methods"),
        hosts: map_of(summary, "hosts"),
        responses: summary["responses"].as_u64().expect("responses"),
        status: map_of(summary, "status"),
    }
}

/// Every table large enough to hold every key of the corpus.
const WIDE: [&str; 2] = ["--top", "1000"];

#[test]
fn each_server_alone_is_what_tshark_saw_of_it() {
    let captures = common::corpus_captures();
    if captures.is_empty() {
        return;
    }
    let mut servers_checked = 0;
    for capture in &captures {
        let file = corpus::file(&format!("pcaps/{capture}")).expect("listed capture");
        let oracle = by_server(capture);
        let (whole, _) = summary_of(&file, &WIDE);
        let whole_counted = counted(&whole);
        let mut sum = Served::default();
        for (server, want) in &oracle {
            let dst = server.to_string();
            let (ours, out) = summary_of(&file, &[&WIDE[..], &["--dst", &dst]].concat());
            let got = counted(&ours);
            assert_eq!(got, *want, "{capture} --dst {dst}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let prefix = if server.is_ipv4() { 32 } else { 128 };
            assert!(
                stderr.contains(&format!("watching traffic to and from {dst}/{prefix};")),
                "{capture}: the start line: {stderr}"
            );
            sum.requests += got.requests;
            sum.responses += got.responses;
            servers_checked += 1;
        }
        assert_eq!(
            (sum.requests, sum.responses),
            (whole_counted.requests, whole_counted.responses),
            "{capture}: the servers add up to the whole capture"
        );

        // All servers at once, half of them comma-separated, the rest repeated.
        let addrs: Vec<String> = oracle.keys().map(ToString::to_string).collect();
        let (commas, repeated) = addrs.split_at(addrs.len() / 2);
        let mut args: Vec<String> = WIDE.iter().map(|s| (*s).to_owned()).collect();
        if !commas.is_empty() {
            args.extend(["--dst".to_owned(), commas.join(",")]);
        }
        for a in repeated {
            args.extend(["--dst".to_owned(), a.clone()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (all, _) = summary_of(&file, &args);
        assert_eq!(counted(&all), whole_counted, "{capture}: every server");
    }
    assert!(servers_checked >= 20, "{servers_checked} servers checked");
}

#[test]
fn an_address_in_no_packet_counts_nothing_but_unmonitored_segments() {
    let Some(file) = corpus::file("pcaps/ppp__many-protocols.pcap") else {
        return;
    };
    let (whole, _) = summary_of(&file, &[]);
    let unmonitored = |s: &serde_json::Value| s["errors"]["unmonitored"].as_u64().unwrap_or(0);
    assert_eq!(unmonitored(&whole), 0, "--read watches every port");
    assert!(
        whole["connections"]["new"]
            .as_u64()
            .expect("new connections")
            > 0
    );
    let (none, _) = summary_of(&file, &["--dst", "192.0.2.1,2001:db8::dead"]);
    for key in ["requests", "responses"] {
        assert_eq!(none[key].as_u64(), Some(0), "{key}");
    }
    assert_eq!(
        none["connections"]["new"].as_u64(),
        Some(0),
        "no new connection"
    );
    let sources = none["connections"]["sources"]["top"]
        .as_object()
        .map(serde_json::Map::len);
    assert_eq!(
        sources,
        Some(0),
        "no connection source for the scan detector"
    );
    assert!(map_of(&none, "hosts").is_empty());
    // Every frame is still seen; every one that decoded to TCP is unmonitored.
    assert_eq!(none["packets"], whole["packets"]);
    let tcp = whole["packets"].as_u64().expect("packets")
        - whole["undecoded"].as_u64().expect("undecoded");
    assert_eq!(unmonitored(&none), tcp, "{none:#}");
}

#[test]
fn a_bad_dst_is_one_line_naming_it() {
    for (bad, why) in [
        ("10.0.0.256", "`10.0.0.256` is not an address or network"),
        (
            "10.0.0.0/40",
            "`10.0.0.0/40`: the prefix length must be 0 to 32",
        ),
    ] {
        let out = common::linewatch(&["--read", "x.pcap", "--dst", &format!("10.0.0.1,{bad}")]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(why) && stderr.contains("--dst"), "{stderr}");
    }
}

/// One connection to `server` from `client` port `port`: SYN, SYN-ACK, a GET with Host
/// `host`, a 200; the GET in three IP fragments when `fragmented` (last fragment first when
/// `reversed`). Returns the frames in capture order.
fn connection(
    client: IpAddr,
    server: IpAddr,
    port: u16,
    host: &str,
    fragmented: bool,
    reversed: bool,
) -> Vec<Vec<u8>> {
    let request = format!("GET /{host} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let (client_seq, server_seq) = (1_000, 5_000);
    let seg = |from_client: bool, flags: TcpFlags, payload: &[u8]| {
        let (src, dst, sport, dport) = if from_client {
            (client, server, port, 80)
        } else {
            (server, client, 80, port)
        };
        let syn = flags.contains(TcpFlags::SYN);
        let (seq, ack) = if from_client {
            (client_seq, server_seq + 1)
        } else {
            (server_seq, client_seq + 1)
        };
        Frame::tcp(
            src,
            dst,
            TcpRepr {
                src_port: sport,
                dst_port: dport,
                seq: if syn { seq } else { seq + 1 },
                ack,
                flags,
                payload,
                ..TcpRepr::default()
            },
        )
        .to_vec_and_fragments(fragmented && from_client && !syn, u32::from(port), reversed)
    };
    let mut frames = seg(true, TcpFlags::SYN, b"");
    frames.extend(seg(false, TcpFlags::SYN | TcpFlags::ACK, b""));
    frames.extend(seg(true, TcpFlags::PSH | TcpFlags::ACK, request.as_bytes()));
    frames.extend(seg(false, TcpFlags::PSH | TcpFlags::ACK, response));
    frames
}

/// A frame whole, or in three IP fragments with identification `ident`.
trait Fragmented {
    fn to_vec_and_fragments(&self, fragmented: bool, ident: u32, reversed: bool) -> Vec<Vec<u8>>;
}

impl Fragmented for Frame<'_> {
    fn to_vec_and_fragments(&self, fragmented: bool, ident: u32, reversed: bool) -> Vec<Vec<u8>> {
        if !fragmented {
            return vec![self.to_vec()];
        }
        let mut frames = self.fragments(ident, &[16, 32]);
        if reversed {
            frames.reverse();
        }
        frames
    }
}

#[test]
fn fragmented_requests_follow_their_servers_addresses() {
    let a: IpAddr = "10.1.0.1".parse().unwrap();
    let b: IpAddr = "10.1.0.2".parse().unwrap();
    let c: IpAddr = "2001:db8::1".parse().unwrap();
    let v4_client: IpAddr = "10.9.0.1".parse().unwrap();
    let v6_client: IpAddr = "2001:db8:9::1".parse().unwrap();
    // Per server: six connections, whole, fragmented, and fragmented last fragment first.
    let mut frames = Vec::new();
    let mut port = 40_000;
    for i in 0..6 {
        for (server, client, host) in [
            (a, v4_client, "a"),
            (b, v4_client, "b"),
            (c, v6_client, "c"),
        ] {
            port += 1;
            frames.extend(connection(
                client,
                server,
                port,
                host,
                i % 3 != 0,
                i % 3 == 2,
            ));
        }
    }
    let t0 = 1_700_000_000_000_000_000u64;
    let timed: Vec<(u64, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (t0 + i as u64 * 1_000_000, f.as_slice()))
        .collect();
    let dir = scratch("dst-fragments");
    let file = dir.join("three-servers.pcap");
    std::fs::write(&file, pcap(&timed)).expect("writing the capture");

    let hosts = |dst: &[&str]| {
        let args: Vec<&str> = dst.iter().flat_map(|d| ["--dst", *d]).collect();
        let (s, _) = summary_of(&file, &args);
        assert_eq!(s["requests"], s["responses"], "{dst:?}: {s:#}");
        // Four of each server's six requests came in fragments: every datagram is reassembled
        // (fragments carry no ports), then its segment is watched or not by its addresses.
        assert_eq!(s["fragments"]["reassembled"].as_u64(), Some(12), "{dst:?}");
        (
            map_of(&s, "hosts"),
            s["connections"]["new"].as_u64().unwrap(),
        )
    };
    let six = |h: &str| (h.to_owned(), 6);
    assert_eq!(
        hosts(&[]),
        (BTreeMap::from([six("a"), six("b"), six("c")]), 18)
    );
    assert_eq!(hosts(&["10.1.0.1"]), (BTreeMap::from([six("a")]), 6));
    assert_eq!(
        hosts(&["10.1.0.2", "2001:db8::/64"]),
        (BTreeMap::from([six("b"), six("c")]), 12)
    );
    // The clients' networks watch every connection of their family.
    assert_eq!(hosts(&["2001:db8:9::/48"]), (BTreeMap::from([six("c")]), 6));
    let _ = std::fs::remove_dir_all(&dir);
}

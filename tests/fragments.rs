//! IP fragment reassembly through the `linewatch` binary: a GET carried in a fragmented IPv4
//! or IPv6 datagram (in order or last fragment first) is counted like a whole one, with one
//! worker and with several (and as tshark reassembles them); and a flood of 1,000,000 first fragments that never complete stays
//! under 128 MiB resident while the other traffic's counts stay exact.

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use common::{map_of, scratch, summary_of};
use linewatch_testkit::frame::{
    checksum, pcap, Frame, TcpFlags, TcpRepr, IPV4_CHECKSUM_AT, IPV4_HEADER_LEN,
};
use linewatch_testkit::tools::{need_programs, path_of};

const T0: u64 = 1_700_000_000_000_000_000;
const SERVER_PORT: u16 = 80;
const CLIENT_SEQ: u32 = 1_000;
const SERVER_SEQ: u32 = 5_000;
/// Where the IPv4 header starts in an untagged Ethernet frame.
const IP_AT: usize = 14;

/// A TCP segment of one connection's client (`client`) or server side.
fn segment(
    client: (IpAddr, u16),
    server: IpAddr,
    from_client: bool,
    flags: TcpFlags,
    payload: &[u8],
) -> Frame<'_> {
    let (src, dst) = if from_client {
        (client.0, server)
    } else {
        (server, client.0)
    };
    let (seq, ack) = if from_client {
        (CLIENT_SEQ, SERVER_SEQ + 1)
    } else {
        (SERVER_SEQ, CLIENT_SEQ + 1)
    };
    let syn = flags.contains(TcpFlags::SYN);
    Frame::tcp(
        src,
        dst,
        TcpRepr {
            src_port: if from_client { client.1 } else { SERVER_PORT },
            dst_port: if from_client { SERVER_PORT } else { client.1 },
            seq: if syn { seq } else { seq + 1 },
            ack,
            flags,
            payload,
            ..TcpRepr::default()
        },
    )
}

/// One connection: handshake, the client's request as `fragments` (in the order given), the
/// server's 200.
fn connection(client: (IpAddr, u16), server: IpAddr, fragments: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut frames = vec![
        segment(client, server, true, TcpFlags::SYN, b"").to_vec(),
        segment(client, server, false, TcpFlags::SYN | TcpFlags::ACK, b"").to_vec(),
        segment(client, server, true, TcpFlags::ACK, b"").to_vec(),
    ];
    frames.extend(fragments);
    frames.push(segment(client, server, false, TcpFlags::ACK, response).to_vec());
    frames
}

fn write(path: &std::path::Path, frames: &[Vec<u8>]) {
    let timed: Vec<(u64, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (T0 + i as u64 * 1_000_000, f.as_slice()))
        .collect();
    std::fs::write(path, pcap(&timed)).expect("writing the capture");
}

#[test]
fn fragmented_requests_are_counted_in_order_and_reversed_over_v4_and_v6() {
    let dir = scratch("fragments");
    let v4 = (
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
    );
    let v6 = (
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
        IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
    );
    let mut frames = Vec::new();
    let mut expected_hosts = Vec::new();
    let mut port = 40_000;
    for (family, (client, server)) in [("v4", v4), ("v6", v6)] {
        for (order, cuts) in [("in-order", &[24usize][..]), ("reversed", &[16, 48][..])] {
            port += 1;
            let host = format!("{family}-{order}.example");
            let request =
                format!("GET /frag/{order}?x=1 HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n\r\n");
            let whole = segment(
                (client, port),
                server,
                true,
                TcpFlags::PSH | TcpFlags::ACK,
                request.as_bytes(),
            );
            let mut pieces = whole.fragments(u32::from(port), cuts);
            if order == "reversed" {
                pieces.reverse();
            }
            frames.extend(connection((client, port), server, pieces));
            expected_hosts.push(host);
        }
    }
    let capture = dir.join("fragments.pcap");
    write(&capture, &frames);

    for workers in ["1", "2", "3"] {
        let (summary, _) = summary_of(&capture, &["--workers", workers]);
        assert_eq!(summary["requests"], 4, "workers {workers}: {summary}");
        assert_eq!(summary["responses"], 4, "workers {workers}");
        assert_eq!(summary["packets"].as_u64(), Some(frames.len() as u64));
        assert_eq!(map_of(&summary, "methods").get("GET"), Some(&4));
        assert_eq!(map_of(&summary, "status").get("200"), Some(&4));
        assert_eq!(map_of(&summary, "sections").get("/frag"), Some(&4));
        let hosts = map_of(&summary, "hosts");
        for host in &expected_hosts {
            assert_eq!(hosts.get(host), Some(&1), "workers {workers}: {hosts:?}");
        }
        let f = &summary["fragments"];
        assert_eq!(f["fragments"], 10, "workers {workers}: {f}");
        assert_eq!(f["reassembled"], 4, "workers {workers}: {f}");
        assert_eq!(f["timed_out"], 0);
        assert_eq!(f["overlap"], 0);
    }
    if need_programs(
        "fragmented_requests_are_counted_in_order_and_reversed_over_v4_and_v6",
        &["tshark", "editcap"],
    ) {
        // tshark reassembles the hand-made fragments into the same four requests.
        let out = Command::new(path_of("tshark"))
            .args(["-r", capture.to_str().unwrap(), "-Y", "http.request"])
            .args(["-T", "fields", "-e", "http.host"])
            .output()
            .expect("running tshark");
        let mut hosts: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        hosts.sort();
        let mut expected = expected_hosts.clone();
        expected.sort();
        assert_eq!(
            hosts,
            expected,
            "tshark: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A pcapng file is replayed by one reader thread that hands each worker its batches
        // (`offline::run`), where the pcap above had every worker read the file itself.
        let pcapng = dir.join("fragments.pcapng");
        let status = Command::new(path_of("editcap"))
            .args([
                "-F",
                "pcapng",
                capture.to_str().unwrap(),
                pcapng.to_str().unwrap(),
            ])
            .status()
            .expect("running editcap");
        assert!(status.success());
        for workers in ["2", "3"] {
            let (summary, _) = summary_of(&pcapng, &["--workers", workers]);
            assert_eq!(summary["requests"], 4, "pcapng, workers {workers}");
            assert_eq!(summary["packets"].as_u64(), Some(frames.len() as u64));
            assert_eq!(summary["fragments"]["reassembled"], 4);
            assert_eq!(summary["fragments"]["fragments"], 10);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// First fragments of datagrams that never complete.
const FLOOD: u32 = 1_000_000;
/// One whole request and one fragmented one every this many flood fragments.
const EVERY: u32 = 1_000;
const RSS_LIMIT: u64 = 128 * 1024 * 1024;

#[test]
fn a_million_first_fragments_that_never_complete_stay_under_128_mib() {
    let dir = scratch("fragment-flood");
    let capture = dir.join("flood.pcap");
    let server = IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1));
    let request = |i: u32| format!("GET /legit/{i} HTTP/1.1\r\nHost: legit.example\r\n\r\n");
    // The flood's template: the first 16 bytes of a request's segment from 172.16/12.
    let template = {
        let r = request(0);
        let whole = segment(
            (IpAddr::V4(Ipv4Addr::new(172, 16, 0, 0)), 1),
            server,
            true,
            TcpFlags::PSH | TcpFlags::ACK,
            r.as_bytes(),
        );
        whole.fragments(0, &[16]).remove(0)
    };
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(&capture).expect("creating the capture"));
    out.write_all(&pcap(&[])).expect("writing");
    let mut chunk: Vec<Vec<u8>> = Vec::new();
    let mut ns = T0;
    let flush =
        |chunk: &mut Vec<Vec<u8>>, ns: &mut u64, out: &mut std::io::BufWriter<std::fs::File>| {
            let timed: Vec<(u64, &[u8])> = chunk
                .iter()
                .map(|f| {
                    *ns += 10_000; // 100,000 frames a second of packet time
                    (*ns, f.as_slice())
                })
                .collect();
            out.write_all(&pcap(&timed)[24..]).expect("writing");
            chunk.clear();
        };
    let mut legit = 0u32;
    for i in 0..FLOOD {
        let mut f = template.clone();
        // A distinct source and identification for each: every one is a datagram of its own.
        let src = 0xAC10_0000 | (i >> 4);
        f[IP_AT + 12..IP_AT + 16].copy_from_slice(&src.to_be_bytes());
        f[IP_AT + 4..IP_AT + 6].copy_from_slice(&u16::try_from(i & 0xF).unwrap().to_be_bytes());
        f[IP_AT + IPV4_CHECKSUM_AT..IP_AT + IPV4_CHECKSUM_AT + 2].fill(0);
        let sum = checksum::finish(checksum::sum(&f[IP_AT..IP_AT + IPV4_HEADER_LEN], 0));
        f[IP_AT + IPV4_CHECKSUM_AT..IP_AT + IPV4_CHECKSUM_AT + 2]
            .copy_from_slice(&sum.to_be_bytes());
        chunk.push(f);
        if i % EVERY == 0 {
            // One whole request and one fragmented one, each on its own connection.
            for fragmented in [false, true] {
                legit += 1;
                let [_, _, hi, lo] = legit.to_be_bytes();
                let client = (IpAddr::V4(Ipv4Addr::new(10, 8, hi, lo)), 50_000);
                let r = request(legit);
                let whole = segment(
                    client,
                    server,
                    true,
                    TcpFlags::PSH | TcpFlags::ACK,
                    r.as_bytes(),
                );
                let pieces = if fragmented {
                    whole.fragments(1, &[16])
                } else {
                    vec![whole.to_vec()]
                };
                chunk.extend(connection(client, server, pieces));
            }
        }
        if chunk.len() >= 10_000 {
            flush(&mut chunk, &mut ns, &mut out);
        }
    }
    flush(&mut chunk, &mut ns, &mut out);
    drop(out);

    let (summary, _) = summary_of(&capture, &[]);
    let rss = summary["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS reported on Linux");
    println!(
        "peak RSS replaying {FLOOD} first fragments and {legit} requests: {:.1} MiB; fragments {}",
        rss as f64 / 1_048_576.0,
        summary["fragments"]
    );
    assert!(rss < RSS_LIMIT, "peak RSS {rss} bytes is not under 128 MiB");
    assert_eq!(summary["requests"].as_u64(), Some(u64::from(legit)));
    assert_eq!(summary["responses"].as_u64(), Some(u64::from(legit)));
    assert_eq!(
        map_of(&summary, "hosts").get("legit.example"),
        Some(&u64::from(legit))
    );
    let f = &summary["fragments"];
    assert_eq!(f["reassembled"].as_u64(), Some(u64::from(legit / 2)));
    // Every flood datagram is dropped incomplete (evicted or timed out) or still held.
    let gone = f["evicted"].as_u64().unwrap() + f["timed_out"].as_u64().unwrap();
    assert!(gone >= u64::from(FLOOD) - 64 * 4, "{f}");
    let _ = std::fs::remove_dir_all(&dir);
}

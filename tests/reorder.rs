//! TCP reassembly under attack, through the `linewatch` binary (issue 15, "Memory stays
//! bounded under attack"): a capture of 1,000,000 connections that each open a hole (a SYN,
//! then a segment past bytes that never come), with legitimate connections among them whose
//! request halves arrive out of order, replays in bounded memory and counts every legitimate
//! request, with one worker and with two. Each worker holds at most 256 holes
//! (`engine/src/reorder.rs`); the least recently active is given up for a new one, so the
//! flood cannot keep the legitimate holes from filling.

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use common::heads::{segment, syn, T0};
use common::{map_of, scratch, summary_of};
use linewatch_testkit::frame::pcap;

/// Connections that open a hole that never fills.
const FLOOD: u32 = 1_000_000;
/// One legitimate connection every this many flood connections.
const EVERY: u32 = 1_000;
/// Peak resident memory allowed: the bar for memory under attack.
const RSS_LIMIT: u64 = 128 * 1024 * 1024;

fn write_capture(path: &std::path::Path) -> u32 {
    let server = IpAddr::V4(Ipv4Addr::new(10, 210, 0, 1));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("creating"));
    out.write_all(&pcap(&[])).expect("writing");
    let mut ns = T0;
    let mut put = |frame: &[u8], out: &mut std::io::BufWriter<std::fs::File>| {
        ns += 10_000; // 100,000 frames a second of packet time
        out.write_all(&pcap(&[(ns, frame)])[24..]).expect("writing");
    };
    let mut legit = 0u32;
    for i in 0..FLOOD {
        let [_, a, b, c] = i.to_be_bytes();
        let flood = (IpAddr::V4(Ipv4Addr::new(172, 16 + a, b, c)), 40_000);
        put(&syn(flood, server).to_vec(), &mut out);
        // 100 bytes past the SYN that never come.
        put(&segment(flood, server, 100, b"xxxxxxxx").to_vec(), &mut out);
        if i % EVERY == 0 {
            legit += 1;
            let [_, _, hi, lo] = legit.to_be_bytes();
            let client = (IpAddr::V4(Ipv4Addr::new(10, 211, hi, lo)), 50_000);
            let request = format!("GET /legit/{legit} HTTP/1.1\r\nHost: legit.example\r\n\r\n");
            let (first, second) = request.as_bytes().split_at(12);
            put(&syn(client, server).to_vec(), &mut out);
            // The second half first.
            let at = u32::try_from(first.len()).unwrap();
            put(&segment(client, server, at, second).to_vec(), &mut out);
            put(&segment(client, server, 0, first).to_vec(), &mut out);
        }
    }
    out.flush().expect("writing");
    legit
}

#[test]
fn a_million_flows_holding_a_hole_leave_every_reordered_request_counted() {
    let dir = scratch("reorder-flood");
    let capture = dir.join("holes.pcap");
    let legit = write_capture(&capture);
    for workers in ["1", "2"] {
        let (summary, _) = summary_of(&capture, &["--workers", workers]);
        let rss = summary["peak_rss_bytes"]
            .as_u64()
            .expect("peak RSS reported on Linux");
        let errors = &summary["errors"];
        println!(
            "{FLOOD} flows holding a hole, {legit} reordered requests, --workers {workers}: \
             requests {}, errors {errors}, peak RSS {:.1} MiB",
            summary["requests"],
            rss as f64 / 1_048_576.0
        );
        assert_eq!(
            summary["requests"].as_u64(),
            Some(u64::from(legit)),
            "workers {workers}"
        );
        assert_eq!(
            map_of(&summary, "hosts").get("legit.example"),
            Some(&u64::from(legit)),
            "workers {workers}"
        );
        // Every flood segment and every legitimate second half was held.
        let reordered = errors["reordered"].as_u64().unwrap_or(0);
        assert_eq!(
            reordered,
            u64::from(FLOOD + legit),
            "workers {workers}: {errors}"
        );
        // The flood filled the pool: holes were given up to make room.
        assert!(
            errors["reorder_reclaimed"].as_u64().unwrap_or(0) > 0,
            "workers {workers}: {errors}"
        );
        assert!(rss < RSS_LIMIT, "peak RSS {rss} bytes is not under 128 MiB");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

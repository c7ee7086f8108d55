//! Stalled cut heads cannot blind linewatch (issue 15, "Stalled connections cannot blind it"):
//! through the `linewatch` binary, a capture of 100,000 connections that each send the start
//! of a request head and then stall, followed by 1,000 requests each split across two
//! segments on new connections, counts all 1,000, with one worker and with two, in bounded
//! memory. Each worker has 128 carry slots (`engine/src/carry.rs`); before the least recently
//! active cut head could be reclaimed, the stalled heads held every slot and all 1,000 split
//! requests went uncounted (`carry_overflow`).

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};

use common::{map_of, scratch, summary_of};
use linewatch_engine::carry::CARRY_SLOTS;
use linewatch_testkit::frame::{pcap, Frame, TcpFlags, TcpRepr};

const T0: u64 = 1_700_000_000_000_000_000;
const SERVER_PORT: u16 = 80;
const CLIENT_SEQ: u32 = 1_000;
/// Connections that send a cut request head and stall.
const STALLED: u32 = 100_000;
/// Requests split across two segments, on new connections, after the stalled ones.
const SPLIT: u32 = 1_000;
/// The stalled connections' only segment: a request line and the start of a header.
const STALLED_HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a";
/// Peak resident memory allowed: the bar for memory under attack. Measured: 32 MiB with
/// one worker, 54 MiB with two (each with its full flow table and 1 MiB of carry slots); a
/// pool that grew with the stalled heads (100,000 x 8 KiB) would be far past it.
const RSS_LIMIT: u64 = 128 * 1024 * 1024;

/// The client's segment at `offset` bytes into its stream.
fn segment(client: (IpAddr, u16), server: IpAddr, offset: u32, payload: &[u8]) -> Frame<'_> {
    Frame::tcp(
        client.0,
        server,
        TcpRepr {
            src_port: client.1,
            dst_port: SERVER_PORT,
            seq: CLIENT_SEQ + offset,
            ack: 1,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            payload,
            ..TcpRepr::default()
        },
    )
}

/// A distinct client for connection `i`: 10.x.y.z, port 40000 + (i % 16).
fn client(net: u8, i: u32) -> (IpAddr, u16) {
    let [_, _, a, b] = (i >> 4).to_be_bytes();
    let low = u16::try_from(i & 0xF).unwrap();
    (IpAddr::V4(Ipv4Addr::new(10, net, a, b)), 40_000 + low)
}

/// Writes the capture: `stalled` cut heads, then `split` requests in two segments each.
fn write_capture(path: &std::path::Path, stalled: u32, split: u32) {
    let server = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1));
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("creating"));
    out.write_all(&pcap(&[])).expect("writing");
    let mut ns = T0;
    let mut put = |frame: Vec<u8>, out: &mut std::io::BufWriter<std::fs::File>| {
        ns += 10_000; // 100,000 frames a second of packet time
        out.write_all(&pcap(&[(ns, &frame)])[24..])
            .expect("writing");
    };
    for i in 0..stalled {
        put(
            segment(client(1, i), server, 0, STALLED_HEAD).to_vec(),
            &mut out,
        );
    }
    for i in 0..split {
        let request =
            format!("GET /live/{i} HTTP/1.1\r\nHost: live.example\r\nAccept: */*\r\n\r\n");
        let (first, second) = request.as_bytes().split_at(20);
        let c = client(2, i);
        put(segment(c, server, 0, first).to_vec(), &mut out);
        let offset = u32::try_from(first.len()).unwrap();
        put(segment(c, server, offset, second).to_vec(), &mut out);
    }
    out.flush().expect("writing");
}

fn check(stalled: u32, split: u32) {
    let dir = scratch(&format!("stalled-heads-{stalled}"));
    let capture = dir.join("stalled.pcap");
    write_capture(&capture, stalled, split);
    for workers in ["1", "2"] {
        let (summary, _) = summary_of(&capture, &["--workers", workers]);
        let rss = summary["peak_rss_bytes"]
            .as_u64()
            .expect("peak RSS reported on Linux");
        println!(
            "{stalled} stalled heads, {split} split requests, --workers {workers}: requests {}, \
             errors {}, peak RSS {:.1} MiB",
            summary["requests"],
            summary["errors"],
            rss as f64 / 1_048_576.0
        );
        assert_eq!(
            summary["requests"].as_u64(),
            Some(u64::from(split)),
            "workers {workers}: {summary}"
        );
        assert_eq!(
            map_of(&summary, "hosts").get("live.example"),
            Some(&u64::from(split)),
            "workers {workers}"
        );
        assert_eq!(
            map_of(&summary, "sections").get("/live"),
            Some(&u64::from(split))
        );
        let errors = &summary["errors"];
        assert!(
            errors.get("carry_overflow").is_none(),
            "workers {workers}: {errors}"
        );
        // Where the stalled heads filled a worker's slots, a split head took the slot of the
        // least recently active one (and gave it back complete, to the next split head).
        let reclaimed = errors["carry_reclaimed"].as_u64().unwrap_or(0);
        let n: u32 = workers.parse().unwrap();
        let full = stalled / n > 2 * u32::try_from(CARRY_SLOTS).unwrap();
        if full || n == 1 {
            assert!(reclaimed >= u64::from(n), "workers {workers}: {errors}");
        }
        assert!(rss < RSS_LIMIT, "peak RSS {rss} bytes is not under 128 MiB");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hundred_thousand_stalled_heads_leave_every_split_request_counted() {
    check(STALLED, SPLIT);
}

/// The smallest case: 130 stalled heads, just past a worker's 128 slots, used to leave
/// 0 of 100 split requests counted; all stay in the flow table (no eviction frees a slot).
#[test]
fn a_hundred_and_thirty_stalled_heads_leave_every_split_request_counted() {
    check(130, 100);
}

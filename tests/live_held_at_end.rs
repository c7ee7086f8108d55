//! Segments held past a hole that never fills are counted when live capture ends, also when
//! it ends seconds after the last frame (as a capture stopped with Ctrl-C usually does): the
//! end gives every hole up, so what was held is parsed and each hole is a sequence gap. Once,
//! that last count went into a second with no frame of its own, which the aggregator skipped:
//! the held requests were neither parsed nor counted as lost (bench-rig's shortfall under CPU
//! contention). Sent with tcpreplay over the lab's veth to `linewatch --interface`. Run as
//! root (in CI it fails if it cannot).

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;
mod live;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::heads::{client, segment, SERVER_PORT, T0};
use common::scratch;
use linewatch_testkit::frame::pcap;
use live::SETTLE;

/// Connections, each with one request the capture misses.
const CONNECTIONS: u32 = 50;
/// Requests each connection sends after the missed one: held until the end.
const HELD: u32 = 3;
const REQUEST: &[u8] = b"GET /held HTTP/1.1\r\nHost: held.example\r\n\r\n";
/// Slow enough that nothing is dropped on the way.
const PPS: &str = "2000";

/// Every connection: request 0, request 1 missing, requests 2..2+HELD.
fn write_capture(path: &std::path::Path) -> u32 {
    let server = IpAddr::V4(Ipv4Addr::new(10, 200, 0, 1));
    let len = u32::try_from(REQUEST.len()).expect("a short request");
    let mut frames = Vec::new();
    for c in 0..CONNECTIONS {
        for i in std::iter::once(0).chain(2..2 + HELD) {
            frames.push(segment(client(1, c), server, i * len, REQUEST).to_vec());
        }
    }
    let mut out = std::fs::File::create(path).expect("creating the capture");
    let timed: Vec<(u64, &[u8])> = frames
        .iter()
        .zip(0u64..)
        .map(|(f, i)| (T0 + i * 1_000_000, f.as_slice()))
        .collect();
    out.write_all(&pcap(&timed)).expect("writing the capture");
    u32::try_from(frames.len()).expect("few frames")
}

#[test]
fn requests_held_past_a_hole_are_counted_when_capture_ends_after_a_quiet_second() {
    let _serial = live::serial();
    let Some(lab) = live::lab_for("live_held_at_end", &["tcpreplay"]) else {
        return;
    };
    let dir = scratch("live-held-at-end");
    let capture = dir.join("held.pcap");
    let frames = write_capture(&capture);
    // Stopped past the second of the last frame: the worker's epoch moves on without frames.
    let summary = live::tcpreplay_to_linewatch(
        &lab,
        &dir,
        &capture,
        PPS,
        SERVER_PORT,
        SETTLE + Duration::from_secs(2),
    );
    let errors = &summary["errors"];
    println!(
        "live: {CONNECTIONS} connections with a hole, {HELD} requests held each: requests {}, \
         packets {}, dropped {}, errors {errors}",
        summary["requests"], summary["packets"], summary["dropped"]
    );
    assert_eq!(summary["dropped"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["packets"].as_u64(), Some(u64::from(frames)));
    assert_eq!(
        errors["reordered"].as_u64(),
        Some(u64::from(CONNECTIONS * HELD))
    );
    // Every frame is a request, the held ones too; every hole is a gap.
    assert_eq!(summary["requests"].as_u64(), Some(u64::from(frames)));
    assert_eq!(
        errors["sequence_gaps"].as_u64(),
        Some(u64::from(CONNECTIONS))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! Stalled connections cannot blind live capture either (issue 15's bar, "live and offline"):
//! the capture of `cut_heads.rs` — 100,000 connections that each send a cut request head and
//! stall, then 1,000 requests each split across two segments on new connections — is sent
//! over the lab's veth pair by tcpreplay at a steady rate, and `linewatch --interface` on the
//! receiving end (AF_XDP, the same worker as on a NIC) must count all 1,000 split requests
//! with nothing dropped. Run as root (in CI it fails if it cannot).

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;
mod live;

use std::time::Duration;

use common::heads::{write_capture, SERVER_PORT, SPLIT, STALLED};
use common::{map_of, scratch};
use live::SETTLE;

/// Frames a second tcpreplay sends: far below what one worker counts, so the rings never
/// overflow and the test is about the carry pool, not about capture loss.
const PPS: &str = "50000";

#[test]
fn stalled_heads_sent_live_leave_every_split_request_counted() {
    let _serial = live::serial();
    let Some(lab) = live::lab_for("live_cut_heads", &["tcpreplay"]) else {
        return;
    };
    let dir = scratch("live-cut-heads");
    let capture = dir.join("stalled.pcap");
    write_capture(&capture, STALLED, SPLIT);
    let summary = live::tcpreplay_to_linewatch(
        &lab,
        &dir,
        &capture,
        PPS,
        SERVER_PORT,
        SETTLE + Duration::from_millis(500),
    );
    let errors = &summary["errors"];
    println!(
        "live: {STALLED} stalled heads, {SPLIT} split requests at {PPS} frames/s: requests {}, \
         packets {}, dropped {}, errors {errors}",
        summary["requests"], summary["packets"], summary["dropped"]
    );
    assert_eq!(summary["dropped"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["requests"].as_u64(), Some(u64::from(SPLIT)));
    assert_eq!(
        map_of(&summary, "hosts").get("live.example"),
        Some(&u64::from(SPLIT))
    );
    assert!(errors.get("carry_overflow").is_none(), "{errors}");
    assert!(
        errors["carry_reclaimed"].as_u64().unwrap_or(0) > 0,
        "the stalled heads filled the pool: {errors}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

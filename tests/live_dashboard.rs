//! `--dashboard` on live capture, against a real nginx (the lab of `live_nginx.rs`): linewatch
//! `--mirror`s the serving veth with the dashboard up in a terminal (tmux), curl and wrk send
//! the usual traffic, `q` ends it. The summary must still equal nginx's access log exactly:
//! the screen, and the event sinks that feed its recent requests, cost the count nothing. The
//! screen must have shown the requests while they came, and the terminal must be given back.
//!
//! Needs root, ip, tc, nginx, curl, wrk and tmux; without them it prints a note and passes,
//! with `CI` set it fails. Run it (as root):
//!
//! ```text
//! cargo test --profile ci --test live_dashboard -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;
mod live;

use std::time::Duration;

use common::tmux::Tmux;
use linewatch_testkit::tools::path_of;
use live::traffic::{run_curl_set, run_load};
use live::{assert_matches_access_log, lab_for, serial, READY_TIMEOUT, SETTLE};

/// Seconds of the wrk run.
const WRK_SECS: u32 = 2;

#[test]
fn mirror_with_the_dashboard_matches_access_log() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "mirror_with_the_dashboard_matches_access_log",
        &["nginx", "curl", "wrk", "tmux"],
    ) else {
        return;
    };
    let summary = lab.dir.join("dashboard.json");
    let ip = path_of("ip");
    let tmux = Tmux::start(
        "live",
        (150, 45),
        &[],
        &[
            &ip,
            "netns",
            "exec",
            lab.server().name(),
            env!("CARGO_BIN_EXE_linewatch"),
            "--mirror",
            &lab.server_veth,
            "--port",
            "8080",
            "--dashboard",
            "--summary",
            summary.to_str().expect("utf-8 path"),
        ],
    );
    // The screen is taken once capture is ready and its first second published.
    let screen = tmux.wait_for("the dashboard", READY_TIMEOUT, |s| {
        s.contains("most recent requests")
    });
    tmux.assert_taken();
    assert!(
        screen.contains(&format!("live copy of {} (--mirror", lab.server_veth)),
        "{screen}"
    );

    let sent = run_curl_set(&lab);
    let runs = run_load(&lab, WRK_SECS);
    println!("curl: {} requests; wrk: {} runs", sent.len(), runs.len());
    std::thread::sleep(SETTLE);
    // The requests are on the screen: the recent requests with their status.
    let screen = tmux.wait_for("the requests on screen", Duration::from_secs(5), |s| {
        s.lines().any(|l| {
            l.contains(" GET ")
                && l.contains(":8080")
                && (l.contains(" 200 ") || l.contains(" 404 "))
        })
    });
    println!("{screen}");

    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(Duration::from_secs(15)), "0");
    tmux.assert_restored();
    let text = std::fs::read_to_string(&summary).expect("the summary file");
    let summary: serde_json::Value = serde_json::from_str(&text).expect("the summary is JSON");
    assert_matches_access_log("linewatch --mirror --dashboard vs nginx", &lab, &summary);
}

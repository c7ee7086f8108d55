//! The conventional pipe on the nginx lab (issue 17's bar): `tcpdump -i <server veth> -w - |
//! linewatch --read - --port 8080 --summary S` through the curl set and the wrk load. Its
//! summary equals nginx's access log, and equals `--read` of the very bytes it read (`tee`
//! between the two keeps them), packet for packet.
//!
//! Needs root, ip, tc, nginx, curl, wrk, tcpdump, tee; without them it prints a note and
//! passes, with `CI` set it fails. Run it (as root, under the lab lock):
//!
//! ```text
//! flock /tmp/linewatch-netns.lock cargo test --profile ci --test live_pipe -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;
mod live;

use std::time::Duration;

use common::same::comparable;
use live::lab::MONITORED_PORT;
use live::pipe::PipedCapture;
use live::traffic::{run_curl_set, run_load};
use live::{assert_matches_access_log, lab_for, serial};

/// Seconds of the mixed wrk run (as live_nginx's).
const WRK_SECS: u32 = 2;
/// After the last client: time for the last frames to reach tcpdump's ring.
const SETTLE: Duration = Duration::from_millis(200);

#[test]
fn tcpdump_piped_into_read_stdin_matches_access_log_and_the_same_file() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "tcpdump_piped_into_read_stdin",
        &["nginx", "curl", "wrk", "tcpdump", "tee"],
    ) else {
        return;
    };
    let file = lab.dir.join("piped.pcap");
    let summary = lab.dir.join("piped.json");
    let pipe = PipedCapture::start(&lab, &lab.server_veth, &file, &summary, &[]);
    let sent = run_curl_set(&lab);
    println!("curl: {} requests", sent.len());
    run_load(&lab, WRK_SECS);
    std::thread::sleep(SETTLE);
    let done = pipe.stop();
    println!(
        "tcpdump -w - | linewatch --read -: {} frames written, {} read, {} requests",
        done.frames, done.summary["packets"], done.summary["requests"]
    );
    assert_eq!(done.summary["source"], "standard input");
    assert_eq!(done.summary["truncated"], false, "{}", done.stderr);
    assert_eq!(
        done.summary["packets"].as_u64(),
        Some(done.frames),
        "linewatch read every frame tcpdump wrote"
    );
    assert_matches_access_log(
        "tcpdump -w - | linewatch --read - vs nginx",
        &lab,
        &done.summary,
    );

    // The same bytes from the file tee kept: the same summary.
    let port = MONITORED_PORT.to_string();
    let (from_file, _) = common::summary_of(&file, &["--port", &port]);
    assert_eq!(
        comparable(done.summary),
        comparable(from_file),
        "--read - of the pipe and --read of the same bytes in a file"
    );
}

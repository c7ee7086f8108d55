//! `--dst` live against a real nginx (the lab of `live_nginx.rs`): the XDP program applies it.
//!
//! - `--interface <SPAN port> --dst <server>` and `--mirror <server veth> --dst <server>`
//!   count exactly nginx's access log (the watched server is the only one: every request).
//! - `--interface <server veth> --port 8080 --dst <another address>` on the serving veth
//!   itself: without `--dst` port 8080 would be taken from the kernel; with it, nothing is
//!   to or from the watched address, so every segment stays with the kernel (XDP_PASS), nginx
//!   serves every request, and linewatch counts none of them, nor their connections.
//! - `--mirror --dst <another address>`: the copies are dropped in XDP; nothing is counted,
//!   not even the new connections the mirror otherwise shows the scan detector.
//!
//! Needs root, ip, tc, nginx, curl, wrk. Without them these tests print a note and pass; with
//! `CI` set they fail. Run them (as root) under the shared lab lock:
//!
//! ```text
//! flock /tmp/linewatch-netns.lock cargo test --profile ci --test live_dst -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the tests' report.

mod common;
mod live;

use live::access_log;
use live::lab::{Lab, MONITORED_PORT, SERVER_ADDR};
use live::traffic::{run_curl_set, run_load};
use live::{assert_matches_access_log, lab_for, serial, Linewatch};

/// Seconds of the wrk load.
const WRK_SECS: u32 = 2;

/// An address nothing in the lab uses (TEST-NET-1).
const ELSEWHERE: &str = "192.0.2.77";

/// What the start line says for `--dst addr`.
fn watching(addr: &str) -> String {
    format!("linewatch: watching traffic to and from {addr}/32; ")
}

/// Runs linewatch with `args` through the curl set and the wrk load, and checks its summary
/// against nginx's log; returns linewatch's stderr.
fn exact(lab: &Lab, args: &[&str], label: &str) -> String {
    let summary = lab.dir.join("live.json");
    let lw = Linewatch::ready(lab, args, &summary, live::READY_TIMEOUT);
    let stderr = lw.stderr_text();
    run_curl_set(lab);
    run_load(lab, WRK_SECS);
    std::thread::sleep(live::SETTLE);
    let summary = lw.interrupt();
    assert_matches_access_log(label, lab, &summary);
    stderr
}

#[test]
fn the_watched_server_is_counted_exactly() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "the_watched_server_is_counted_exactly",
        &["nginx", "curl", "wrk"],
    ) else {
        return;
    };
    let port = MONITORED_PORT.to_string();
    let span = lab.span_port();
    let stderr = exact(
        &lab,
        &["--interface", &span, "--port", &port, "--dst", SERVER_ADDR],
        "linewatch --interface <SPAN port> --dst <server> vs nginx",
    );
    assert!(stderr.contains(&watching(SERVER_ADDR)), "{stderr}");
}

#[test]
fn the_watched_server_is_counted_exactly_on_a_mirror() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "the_watched_server_is_counted_exactly_on_a_mirror",
        &["nginx", "curl", "wrk"],
    ) else {
        return;
    };
    let port = MONITORED_PORT.to_string();
    let veth = lab.server_veth.clone();
    // The client's address too: a segment is watched when either end is in the set.
    let dst = format!("{ELSEWHERE},{}", live::lab::CLIENT_ADDR);
    exact(
        &lab,
        &["--mirror", &veth, "--port", &port, "--dst", &dst],
        "linewatch --mirror --dst <client> vs nginx",
    );
}

#[test]
fn another_servers_traffic_stays_with_the_kernel() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "another_servers_traffic_stays_with_the_kernel",
        &["nginx", "curl"],
    ) else {
        return;
    };
    let summary = lab.dir.join("live.json");
    let port = MONITORED_PORT.to_string();
    // On the serving veth, port 8080 monitored: without --dst its segments would go to
    // linewatch and nginx would never see them.
    let lw = Linewatch::ready(
        &lab,
        &[
            "--interface",
            &lab.server_veth,
            "--port",
            &port,
            "--dst",
            ELSEWHERE,
        ],
        &summary,
        live::READY_TIMEOUT,
    );
    let stderr = lw.stderr_text();
    assert!(stderr.contains(&watching(ELSEWHERE)), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "other traffic is left to {}'s kernel",
            lab.server_veth
        )),
        "{stderr}"
    );
    let sent = run_curl_set(&lab); // every status checked: each request reached nginx
    std::thread::sleep(live::SETTLE);
    let summary = lw.interrupt();
    let logged = access_log::read(&lab.access_log()).len();
    assert_eq!(logged, sent.len(), "nginx logged every request sent");
    println!(
        "linewatch --dst {ELSEWHERE} on the serving veth: packets {}, requests {}, xdp {}",
        summary["packets"], summary["requests"], summary["capture"]["xdp"]
    );
    assert_eq!(summary["requests"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["connections"]["new"].as_u64(), Some(0), "{summary}");
    let xdp = &summary["capture"]["xdp"];
    assert_eq!(xdp["redirected"].as_u64(), Some(0), "nothing taken: {xdp}");
    assert!(
        xdp["other"]
            .as_u64()
            .is_some_and(|n| n >= 2 * sent.len() as u64),
        "every segment passed: {xdp}"
    );
}

#[test]
fn another_servers_copies_are_dropped_on_the_mirror() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "another_servers_copies_are_dropped_on_the_mirror",
        &["nginx", "curl"],
    ) else {
        return;
    };
    let summary = lab.dir.join("live.json");
    let veth = lab.server_veth.clone();
    let lw = Linewatch::ready(
        &lab,
        &["--mirror", &veth, "--dst", ELSEWHERE],
        &summary,
        live::READY_TIMEOUT,
    );
    let stderr = lw.stderr_text();
    assert!(
        stderr.contains("other traffic is dropped from the mirror copy in XDP"),
        "{stderr}"
    );
    let sent = run_curl_set(&lab);
    std::thread::sleep(live::SETTLE);
    let summary = lw.interrupt();
    let logged = access_log::read(&lab.access_log()).len();
    assert_eq!(logged, sent.len(), "nginx logged every request sent");
    let xdp = &summary["capture"]["xdp"];
    println!("linewatch --mirror --dst {ELSEWHERE}: xdp {xdp}");
    assert_eq!(summary["requests"].as_u64(), Some(0), "{summary}");
    assert_eq!(summary["connections"]["new"].as_u64(), Some(0), "{summary}");
    assert_eq!(xdp["redirected"].as_u64(), Some(0), "{xdp}");
    assert!(xdp["other"].as_u64().is_some_and(|n| n > 0), "{xdp}");
}

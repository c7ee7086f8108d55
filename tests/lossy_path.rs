//! A lossy path, judged by nginx (issue 15 item 6): the client's veth silently drops 3 % of the
//! TCP segments that carry data (a tc BPF program, `tests/live/bpf/drop_data.bpf.c`; these
//! kernels have no netem), the MTU is 600 on both ends, and every request carries a 1.4 KB
//! Cookie, so each spans three segments and a drop leaves a hole that the client's TCP fills
//! later by retransmission: the server sees segments out of order, and a monitor must put them
//! back in order to see the request the server saw. wrk (keep-alive, several methods, sections,
//! hosts and statuses) runs a few seconds against nginx in the lab.
//!
//! The bar: linewatch's requests, responses, methods, sections, hosts and status codes equal
//! nginx's access log exactly, live (`--mirror` on the server's veth) and on the replay of
//! tcpdump's capture of the same veth. The dropper must have dropped something (a lossless run
//! would prove nothing), every frame must fit the small MTU (so segments are one MSS each, not
//! GSO super-frames), and the log must hold what wrk sent.
//!
//! Needs root, ip, tc, clang, nginx, wrk and tcpdump; without them it prints a note and passes,
//! with `CI` set it fails. Run it (as root):
//!
//! ```text
//! cargo test --profile ci --test lossy_path -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;
mod live;

use live::access_log::{self, Counts};
use live::lab::{Lab, MONITORED_PORT};
use live::lossy::{arrivals_to, small_segments, Dropper};
use live::traffic::wrk;
use live::{frame_sizes, lab_for, print_table, serial};

const TOOLS: &[&str] = &["clang", "nginx", "wrk", "tcpdump"];

/// Both ends of the client-server veth: with TCP timestamps the MSS is 548 bytes.
const MTU: u32 = 600;
/// The largest frame the MTU allows (plus the Ethernet header).
const MAX_FRAME: u32 = MTU + 14;
/// The dropper's rate: 3 %.
const DROP_PER_MILLE: u32 = 30;
/// A measured drop rate outside [rate / BAND, rate * BAND] means the dropper is not doing
/// what it was compiled for (thousands of segments make the real spread far narrower).
const BAND: u64 = 2;
/// Each request's Cookie value: with the request line and the other headers the head is
/// about 1.5 KB, three segments at MSS 548.
const COOKIE_BYTES: usize = 1400;
const WRK_SECS: u32 = 5;
const WRK_CONNECTIONS: u32 = 8;
/// wrk's per-request timeout: far above a retransmission timeout, so a lost segment delays a
/// request but never makes wrk give up on its connection.
const WRK_TIMEOUT: &str = "10s";

/// One request of wrk's cycle and the status nginx gives it in the lab.
struct Request {
    method: &'static str,
    target: &'static str,
    body: Option<&'static str>,
    status: u16,
}

const fn req(method: &'static str, target: &'static str, status: u16) -> Request {
    Request {
        method,
        target,
        body: None,
        status,
    }
}

/// wrk's cycle (11 requests; with 3 hosts every pair comes up). No HEAD: wrk's parser waits
/// for the body a HEAD response announces.
const REQUESTS: &[Request] = &[
    req("GET", "/", 200),
    req("GET", "/api/items", 200),
    Request {
        body: Some("name=lossy&n=1"),
        ..req("POST", "/api/items", 200)
    },
    Request {
        body: Some("{\"n\":42}"),
        ..req("PUT", "/api/items/42", 200)
    },
    req("DELETE", "/api/items/42", 200),
    req("GET", "/docs/guide/v1/intro.html", 200),
    req("GET", "/search?q=lossy&page=2", 200),
    req("GET", "/static/app.css", 200),
    req("GET", "/nope/missing.html", 404),
    req("GET", "/old", 301),
    req("GET", "/empty", 204),
];

/// The Host headers wrk sends, as sent (linewatch and the truth count them lower-cased).
const HOSTS: &[&str] = &["alpha.lab", "beta.lab", "Gamma.Lab"];

/// wrk's Lua hook: request `n` is `REQUESTS[n % 11]` to `HOSTS[n % 3]`, each with the cookie.
fn lua_script() -> String {
    let lua_str = |s: &str| format!("{s:?}"); // The targets and bodies hold no Lua escapes.
    let requests: Vec<String> = REQUESTS
        .iter()
        .map(|r| {
            format!(
                "{{ {}, {}, {} }}",
                lua_str(r.method),
                lua_str(r.target),
                r.body.map_or_else(|| "nil".to_string(), lua_str)
            )
        })
        .collect();
    let hosts: Vec<String> = HOSTS.iter().map(|h| lua_str(h)).collect();
    format!(
        r#"
local cookie = "session=" .. string.rep("c", {COOKIE_BYTES})
local hosts = {{ {hosts} }}
local requests = {{ {requests} }}
local n = 0
request = function()
  n = n + 1
  local r = requests[(n % #requests) + 1]
  local headers = {{ ["Host"] = hosts[(n % #hosts) + 1], ["Cookie"] = cookie }}
  return wrk.format(r[1], r[2], headers, r[3])
end
"#,
        hosts = hosts.join(", "),
        requests = requests.join(",\n  "),
    )
}

/// Runs wrk from the client namespace; returns its request count.
///
/// # Panics
/// When wrk fails, reports a socket error or made no request.
fn run_wrk(lab: &Lab) -> u64 {
    let script = lab.dir.join("lossy.lua");
    std::fs::write(&script, lua_script()).expect("writing the wrk script");
    let script = script.to_str().expect("utf-8 path");
    let url = Lab::url(MONITORED_PORT, "/");
    let args = ["--timeout", WRK_TIMEOUT, "-s", script, &url];
    let wrk = wrk(lab, "lossy", WRK_CONNECTIONS, WRK_SECS, &args);
    println!(
        "wrk: -c{WRK_CONNECTIONS} {}s: {} requests, {:.0} req/s, non-2xx/3xx {}, socket errors {}",
        WRK_SECS, wrk.requests, wrk.req_per_s, wrk.non_2xx_3xx, wrk.socket_errors
    );
    assert_eq!(wrk.socket_errors, 0, "wrk: socket errors:\n{}", wrk.output);
    assert!(wrk.requests > 0, "wrk made no requests:\n{}", wrk.output);
    wrk.requests
}

/// nginx's log is what wrk sent: every line one of the cycle's requests with its status and
/// one of the hosts, and as many lines as wrk counted, plus at most one in flight per
/// connection when wrk stopped. Returns the truth for the monitored port.
fn check_log(lab: &Lab, wrk_requests: u64) -> Counts {
    let entries = access_log::read(&lab.access_log());
    for e in &entries {
        let known = REQUESTS
            .iter()
            .find(|r| r.method == e.method && r.target == e.target)
            .unwrap_or_else(|| panic!("nginx logged a request wrk never sends: {e:?}"));
        assert_eq!(e.status, known.status, "nginx's status for {e:?}");
        assert_eq!(e.port, MONITORED_PORT, "{e:?}");
        assert!(HOSTS.contains(&e.host.as_str()), "logged host of {e:?}");
    }
    let logged = entries.len() as u64;
    println!("nginx: {logged} requests logged (wrk counted {wrk_requests})");
    assert!(
        logged >= wrk_requests && logged <= wrk_requests + u64::from(WRK_CONNECTIONS),
        "wrk counted {wrk_requests} requests over {WRK_CONNECTIONS} connections, nginx logged \
         {logged}"
    );
    Counts::of(&entries, MONITORED_PORT)
}

/// A counter of the summary's `errors` object (which lists only the non-zero ones).
fn error_count(summary: &serde_json::Value, name: &str) -> u64 {
    summary["errors"][name].as_u64().unwrap_or(0)
}

#[test]
fn lossy_path_counts_match_access_log() {
    let _serial = serial();
    let Some(lab) = lab_for("lossy_path_counts_match_access_log", TOOLS) else {
        return;
    };
    small_segments(&lab, MTU);
    let dropper = Dropper::attach(&lab, DROP_PER_MILLE);
    let (capture, lw) = live::capture_and_mirror(&lab, "lossy");
    let port = MONITORED_PORT.to_string();
    let wrk_requests = run_wrk(&lab);
    std::thread::sleep(live::SETTLE);
    let live_summary = lw.interrupt();
    let capture_file = capture.file.clone();
    let frames = capture.stop();
    let drops = dropper.counters();

    // The path was lossy, at about the rate asked for, with MSS-sized segments.
    println!(
        "dropper ({} per mille, client egress): {} of {} data segments dropped ({:.2} %)",
        dropper.per_mille,
        drops.dropped,
        drops.data_segments,
        100.0 * drops.dropped as f64 / drops.data_segments.max(1) as f64
    );
    assert!(drops.dropped > 0, "the dropper dropped nothing: {drops:?}");
    let expected = drops.data_segments * u64::from(DROP_PER_MILLE) / 1000;
    assert!(
        drops.dropped >= expected / BAND && drops.dropped <= expected * BAND,
        "dropped {} of {} data segments, expected about {expected}",
        drops.dropped,
        drops.data_segments
    );
    let sizes = frame_sizes(&capture_file);
    println!(
        "tcpdump: {frames} frames captured on {}, largest {} bytes",
        lab.server_veth, sizes.max
    );
    assert!(
        sizes.max <= MAX_FRAME,
        "a {}-byte frame on a {MTU}-byte MTU: GSO is not capped, segments are not one MSS",
        sizes.max
    );

    // The drops made holes at the server: segments after a gap, and the retransmissions that
    // filled it, in tcpdump's capture of the server's veth.
    let arrivals = arrivals_to(&capture_file, MONITORED_PORT);
    println!(
        "capture, client to server: {} data segments, {} after a hole, {} old data \
         (retransmissions)",
        arrivals.data_segments, arrivals.after_hole, arrivals.old_data
    );
    assert_eq!(
        arrivals.data_segments,
        drops.data_segments - drops.dropped,
        "the capture should hold every data segment the dropper passed and none it dropped"
    );
    assert!(
        arrivals.after_hole > 0 && arrivals.old_data > 0,
        "the server saw no segment after a hole, or no retransmission: {arrivals:?}"
    );

    let truth = check_log(&lab, wrk_requests);
    let (replayed, _) = common::summary_of(&capture_file, &["--port", &port]);
    let runs = [
        ("linewatch --mirror vs nginx's access log", &live_summary),
        (
            "linewatch --read <tcpdump> vs nginx's access log",
            &replayed,
        ),
    ];
    for (label, summary) in runs {
        let ours = Counts::of_summary(summary);
        let responses = summary["responses"].as_u64().expect("summary `responses`");
        print_table(label, &truth, &ours, responses);
        println!(
            "linewatch: packets {} retransmitted {} sequence_gaps {} out_of_sync {} \
             incomplete_heads {} unmatched_responses {} dropped {} malformed {} non_http {}",
            summary["packets"],
            summary["retransmitted"],
            error_count(summary, "sequence_gaps"),
            error_count(summary, "out_of_sync"),
            error_count(summary, "incomplete_heads"),
            summary["unmatched_responses"],
            summary["dropped"],
            summary["malformed"],
            summary["non_http"]
        );
        println!("linewatch errors: {}", summary["errors"]);
    }
    for (label, summary) in runs {
        let ours = Counts::of_summary(summary);
        assert_eq!(ours, truth, "{label}: counts differ");
        assert_eq!(
            summary["responses"].as_u64(),
            Some(truth.requests),
            "{label}: responses"
        );
    }
}

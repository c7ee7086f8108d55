//! The crossing fallback pairs every response on queues that split connections (issue 16,
//! item 3): `linewatch --interface` on a SPAN veth of 4 queues, where the kernel's own hash
//! puts most connections' two directions on different queues, so the workers hand segments to
//! the worker owning each connection.
//!
//! The truth is nginx's access log, as in live_nginx.rs: wrk (-t2 -c64, 3 s) against nginx in
//! the lab; the summary must hold nginx's requests, a response for each, no unmatched
//! response, a response latency for every response, segments that crossed (the fallback was
//! needed), none lost at the crossing and none parsed after an expired wait. tcpdump on the
//! server veth records the same traffic: `--read` of it with 1 and with 4 workers gives the
//! same latency count as the live run.
//!
//! Needs root, ip, tc, nginx, wrk, tcpdump (curl for the lab's readiness check). Without them
//! these tests print a note and pass; with `CI` set they fail. Run them (as root):
//!
//! ```text
//! cargo test --profile ci --test live_crossing -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the tests' report.

mod common;
mod live;

use live::lab::{Lab, MONITORED_PORT};
use live::traffic::wrk_low_priority;
use live::{assert_matches_access_log, lab_for, serial, Linewatch, Tcpdump};
use serde_json::Value;

const TOOLS: &[&str] = &["nginx", "curl", "wrk", "tcpdump"];

/// Queues of the SPAN veth, and so workers.
const QUEUES: u32 = 4;

/// The issue's load.
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 64;
const WRK_SECS: u32 = 3;

fn count(summary: &Value, path: &[&str]) -> u64 {
    let mut v = summary;
    for key in path {
        v = &v[*key];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("the summary has no {}: {summary}", path.join(".")))
}

/// `linewatch --read FILE --workers N --port 8080`: its summary.
fn replay(lab: &Lab, file: &std::path::Path, workers: u32) -> Value {
    let summary = lab.dir.join(format!("replay-{workers}.json"));
    let n = workers.to_string();
    let out = common::linewatch(&[
        "--read",
        file.to_str().expect("utf-8 path"),
        "--workers",
        &n,
        "--port",
        "8080",
        "--summary",
        summary.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "linewatch --read --workers {workers}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&summary).expect("the replay summary"))
        .expect("the replay summary is JSON")
}

#[test]
fn crossing_pairs_every_response_on_a_span_of_four_queues() {
    let _serial = serial();
    let Some(lab) = lab_for(
        "crossing_pairs_every_response_on_a_span_of_four_queues",
        TOOLS,
    ) else {
        return;
    };
    let span = lab.span_port_queues(QUEUES);
    let capture = Tcpdump::start(&lab, &lab.server_veth, &lab.dir.join("crossing.pcap"));
    let lw = Linewatch::ready(
        &lab,
        &["--interface", &span, "--port", "8080"],
        &lab.dir.join("live.json"),
        live::READY_TIMEOUT,
    );
    let started = lw.stderr_text();
    let wrk = wrk_low_priority(
        &lab,
        WRK_THREADS,
        WRK_CONNECTIONS,
        WRK_SECS,
        &Lab::url(MONITORED_PORT, "/api/items"),
    );
    std::thread::sleep(live::SETTLE);
    let summary = lw.interrupt();
    let file = capture.file.clone();
    let frames = capture.stop();
    let label = format!("linewatch --interface <SPAN of {QUEUES} queues> vs nginx");
    assert_matches_access_log(&label, &lab, &summary);

    let queues = summary["capture"]["queues"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: no capture.queues: {summary}"))
        .clone();
    let per_queue = |key: &str| -> Vec<u64> {
        queues
            .iter()
            .map(|q| {
                q[key]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{label}: queue without {key}: {q}"))
            })
            .collect()
    };
    let (frames_q, out, into) = (
        per_queue("frames"),
        per_queue("crossed_out"),
        per_queue("crossed_in"),
    );
    let responses = count(&summary, &["responses"]);
    let latency = count(&summary, &["latency", "response_us", "count"]);
    let errors = &summary["errors"];
    println!(
        "wrk: {} requests, {:.0} req/s; tcpdump: {frames} frames; per queue: frames {frames_q:?}, \
         crossed out {out:?}, crossed in {into:?}; responses {responses}, latency count \
         {latency}, held_for_peer {}",
        wrk.requests, wrk.req_per_s, errors["held_for_peer"],
    );
    assert_eq!(
        queues.len(),
        QUEUES as usize,
        "{label}: one worker per queue"
    );
    assert_eq!(count(&summary, &["unmatched_responses"]), 0, "{label}");
    assert_eq!(latency, responses, "{label}: every response has a latency");
    let (sent, got): (u64, u64) = (out.iter().sum(), into.iter().sum());
    assert!(
        sent > 0,
        "{label}: nothing crossed: the fallback was not needed"
    );
    assert_eq!(sent, got, "{label}: what was handed on was taken");
    for lost in ["crossing_lost", "peer_wait_expired"] {
        assert!(errors[lost].is_null(), "{label}: {lost}: {errors}");
    }
    let pairing = summary["capture"]["pairing"].as_str().unwrap_or_default();
    assert!(
        pairing.starts_with("crossing"),
        "{label}: pairing {pairing:?}"
    );
    assert!(
        started.contains("hands a connection's segments to the worker that owns it"),
        "{label}: the start lines do not say how connections are paired:\n{started}"
    );

    // The same traffic from tcpdump's capture: one worker and four give the same latencies.
    for workers in [1, 4] {
        let replayed = replay(&lab, &file, workers);
        assert_eq!(
            count(&replayed, &["latency", "response_us", "count"]),
            latency,
            "--read --workers {workers} of tcpdump's capture vs the live run"
        );
        assert_eq!(count(&replayed, &["unmatched_responses"]), 0);
    }
}

//! `--retention` on a replay whose packet times span more than the retention: the summary's
//! requests and tables hold exactly the requests of the retained stretch it names (from the
//! generator's per-second truth), the traffic before it is gone, the stretch is as long as the
//! contract says (more than 23/24 of the retention, at most all of it), and the reports say
//! what their since-start part covers. Without `--retention` everything since start stays.

mod common;

use common::{linewatch, scratch, summary_of, top_by_table};
use linewatch_bench_rig::capture::{write_capture_file, CaptureSpec, CaptureTruth, Phase};

/// The retention asked for, and the same in seconds.
const RETENTION: &str = "5m";
const RETENTION_SECS: u64 = 300;
/// Buckets a retention is cut into (`engine::retention::BUCKETS`).
const BUCKETS: u64 = 24;

/// 100 s of early traffic, 700 idle seconds, 200 s of late traffic: 1,000 s in all.
fn spec() -> CaptureSpec {
    CaptureSpec {
        phases: [(100, 5), (700, 0), (200, 2)]
            .into_iter()
            .map(|(seconds, requests_per_second)| Phase {
                seconds,
                requests_per_second,
            })
            .collect(),
        requests_per_connection: 10,
        ..CaptureSpec::default()
    }
}

/// `linewatch --read capture --summary S` with 100 s reports, a `client` table and `extra`:
/// (summary, stdout).
fn replay(capture: &std::path::Path, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec!["--report-interval", "100", "--top-by", "client"];
    args.extend_from_slice(extra);
    let (summary, out) = summary_of(capture, &args);
    (summary, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Requests of the truth from unix second `since` on.
fn requests_since(truth: &CaptureTruth, start: u64, since: u64) -> u64 {
    let skip = usize::try_from(since.saturating_sub(start)).expect("small");
    truth.requests_per_second.iter().skip(skip).sum()
}

#[test]
fn the_summary_covers_the_retained_stretch_only() {
    let dir = scratch("retention");
    let capture = dir.join("long.pcap");
    let spec = spec();
    let truth = write_capture_file(&spec, &capture).expect("writing the capture");
    let start = spec.start_unix_secs;

    let (all, _) = replay(&capture, &[]);
    assert_eq!(all["retention"], serde_json::Value::Null);
    assert_eq!(all["requests"].as_u64(), Some(truth.requests));

    let (ours, stdout) = replay(&capture, &["--retention", RETENTION]);
    let r = &ours["retention"];
    assert_eq!(r["retention_secs"], RETENTION_SECS, "{r}");
    let covered = r["seconds"].as_u64().expect("seconds");
    let bucket = RETENTION_SECS.div_ceil(BUCKETS);
    assert!(
        covered > RETENTION_SECS - bucket && covered <= RETENTION_SECS,
        "covers {covered} s of a {RETENTION_SECS} s retention in {bucket} s buckets"
    );
    // Whole unix seconds: the summary writes them as a float with no fraction.
    let since: u64 = r["since"]
        .to_string()
        .trim_end_matches(".0")
        .parse()
        .expect("since");
    let want = requests_since(&truth, start, since);
    // The early phase is gone, the late one (200 s at 2/s) is all there.
    assert!(since > start + 100, "since {since}, start {start}");
    assert!(
        want >= 400 && want < truth.requests,
        "{want} of {}",
        truth.requests
    );
    assert_eq!(ours["requests"].as_u64(), Some(want));
    assert_eq!(ours["seconds"].as_u64(), Some(covered));
    let sections: u64 = common::map_of(&ours, "sections").values().sum();
    assert_eq!(
        sections + ours["sections_other"].as_u64().unwrap_or(0),
        want
    );
    let (_, clients) = top_by_table(&ours, "client");
    assert_eq!(clients, want);
    // Packet counters stay since start.
    assert_eq!(ours["packets"], all["packets"]);

    // The reports say what their second part covers.
    let last_report = stdout
        .rsplit("=== linewatch report")
        .next()
        .expect("a report");
    assert!(
        last_report.contains("\nlast ") && last_report.contains(" (--retention 5m, since "),
        "{last_report}"
    );
}

#[test]
fn bad_retentions_are_one_line_errors() {
    for arg in ["0s", "soon", "400days", "500ms"] {
        let out = linewatch(&["--read", "/dev/null", "--retention", arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--retention {arg}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "--retention {arg}: {err}"
        );
        assert!(err.contains("--retention"), "--retention {arg}: {err}");
    }
}

//! Alerting end to end on captures the test writes itself (bench-rig's generator), replayed
//! with `--read`. The expected alert seconds and values are worked out here by brute force
//! from the generator's per-second truth (SPEC §4: the average over the last `window` seconds,
//! raised when strictly above the threshold, recovered at or below it), not by linewatch's code.

mod common;

use std::path::Path;

use common::{linewatch, scratch};
use linewatch_bench_rig::capture::{write_capture_file, CaptureSpec, CaptureTruth, Phase};

/// An expected transition: second offset from the capture start, raised or recovered, rate.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    second: u64,
    raised: bool,
    rate: f64,
}

/// Brute force over the truth's per-second counts.
fn expected_alerts(truth: &CaptureTruth, window: u64, threshold: f64) -> Vec<Expected> {
    let counts = &truth.requests_per_second;
    let mut active = false;
    let mut out = Vec::new();
    for s in 0..counts.len() {
        let from = (s + 1).saturating_sub(usize::try_from(window).unwrap());
        let sum: u64 = counts[from..=s].iter().sum();
        let rate = sum as f64 / window as f64;
        if !active && rate > threshold {
            active = true;
            out.push(Expected {
                second: s as u64,
                raised: true,
                rate,
            });
        } else if active && rate <= threshold {
            active = false;
            out.push(Expected {
                second: s as u64,
                raised: false,
                rate,
            });
        }
    }
    out
}

fn spec(phases: &[(u32, u32)]) -> CaptureSpec {
    CaptureSpec {
        phases: phases
            .iter()
            .map(|&(seconds, requests_per_second)| Phase {
                seconds,
                requests_per_second,
            })
            .collect(),
        requests_per_connection: 50,
        ..CaptureSpec::default()
    }
}

/// The alert lines linewatch must print for `expected` (SPEC §4 texts).
fn lines_for(expected: &[Expected], start: u64) -> Vec<String> {
    expected
        .iter()
        .map(|e| {
            let at = linewatch_report::time::format_time(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(start + e.second),
            );
            if e.raised {
                format!(
                    "High traffic generated an alert - hits = {:.2}, triggered at {at}",
                    e.rate
                )
            } else {
                format!(
                    "High traffic alert recovered - hits = {:.2}, recovered at {at}",
                    e.rate
                )
            }
        })
        .collect()
}

/// Replays `capture` with `args` and returns (alert lines on stdout, alert log lines, summary).
fn replay(
    capture: &Path,
    dir: &Path,
    args: &[&str],
) -> (Vec<String>, Vec<String>, serde_json::Value) {
    let log = dir.join("alerts.log");
    let _ = std::fs::remove_file(&log);
    let summary = dir.join("summary.json");
    let mut all = vec![
        "--read",
        capture.to_str().unwrap(),
        "--alert-log",
        log.to_str().unwrap(),
        "--summary",
        summary.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = linewatch(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let alert_lines = stdout
        .lines()
        .filter(|l| l.starts_with("High traffic"))
        .map(str::to_string)
        .collect();
    let log_lines = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    let summary = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (alert_lines, log_lines, summary)
}

#[test]
fn seeds_scenario_raises_and_recovers_once_at_the_right_seconds() {
    let dir = scratch("alert-seeds");
    let capture = dir.join("calm-spike-calm.pcap");
    // The seeds' functional test: 20 req/s for 60 s, 100 req/s for 20 s, 20 req/s again.
    let spec = spec(&[(60, 20), (20, 100), (60, 20)]);
    let truth = write_capture_file(&spec, &capture).unwrap();
    assert_eq!(truth.requests_per_second[0], 20);
    assert_eq!(truth.requests_per_second[60], 100);

    let expected = expected_alerts(&truth, 60, 30.0);
    // One alert: raised when the spike's 8th second pushes the average to 30.67 (second 67),
    // recovered when only 7 spike seconds remain in the window (second 132).
    assert_eq!(
        expected
            .iter()
            .map(|e| (e.second, e.raised))
            .collect::<Vec<_>>(),
        vec![(67, true), (132, false)]
    );
    let want = lines_for(&expected, spec.start_unix_secs);
    for workers in ["1", "3"] {
        let (lines, log, summary) = replay(
            &capture,
            &dir,
            &["--window", "60", "--threshold", "30", "--workers", workers],
        );
        assert_eq!(lines, want, "alert lines with {workers} workers");
        assert_eq!(log, want, "alert log with {workers} workers");
        let alerts = summary["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0]["kind"], "high_traffic");
        assert_eq!(
            alerts[0]["triggered_at"].as_f64(),
            Some((spec.start_unix_secs + 67) as f64)
        );
        assert_eq!(
            alerts[0]["recovered_at"].as_f64(),
            Some((spec.start_unix_secs + 132) as f64)
        );
        assert_eq!(summary["requests"].as_u64(), Some(truth.requests));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn totals_above_threshold_with_a_calm_window_never_alert() {
    let dir = scratch("alert-totals");
    let capture = dir.join("burst-then-calm.pcap");
    // 1,000 requests in 10 s, then 1 req/s: far above 10 in total, but the 120 s window's
    // average peaks at 1000/120 = 8.33.
    let spec = spec(&[(10, 100), (200, 1)]);
    let truth = write_capture_file(&spec, &capture).unwrap();
    assert!(truth.requests > 1_000);
    assert!(expected_alerts(&truth, 120, 10.0).is_empty());
    let (lines, log, summary) = replay(&capture, &dir, &[]);
    assert!(lines.is_empty(), "{lines:?}");
    assert!(log.is_empty(), "{log:?}");
    assert_eq!(summary["alerts"].as_array().map(Vec::len), Some(0));

    // The same burst with a window short enough to see it does alert: the test can fail.
    let expected = expected_alerts(&truth, 10, 10.0);
    assert!(!expected.is_empty());
    let (lines, _, _) = replay(&capture, &dir, &["--window", "10"]);
    assert_eq!(lines, lines_for(&expected, spec.start_unix_secs));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Unix second of the first record in a little-endian pcap file written by the generator.
fn first_packet_second(capture: &Path) -> u64 {
    let bytes = std::fs::read(capture).unwrap();
    u64::from(u32::from_le_bytes(bytes[24..28].try_into().unwrap()))
}

#[test]
fn baseline_mode_learns_then_alerts_above_the_margin() {
    let dir = scratch("alert-baseline");
    let capture = dir.join("learn-then-rise.pcap");
    // Learn 30 s at about 20 req/s, then 21 req/s (within the default 10% margin), then
    // 30 req/s (above it).
    let spec = spec(&[(30, 20), (60, 21), (60, 30)]);
    let truth = write_capture_file(&spec, &capture).unwrap();
    let (lines, _, summary) = replay(&capture, &dir, &["--baseline", "30", "--window", "10"]);

    // Learning covers the first 30 seconds of packet time, from the first packet's second
    // (the first connection's handshake may come a moment before the first request).
    let first = first_packet_second(&capture);
    let offset = i64::try_from(first).unwrap() - i64::try_from(spec.start_unix_secs).unwrap();
    let count = |s: i64| {
        usize::try_from(s)
            .ok()
            .and_then(|s| truth.requests_per_second.get(s))
            .copied()
            .unwrap_or(0)
    };
    let learned: u64 = (offset..offset + 30).map(count).sum();
    let threshold = learned as f64 / 30.0 * 1.1;
    let mut expected = expected_alerts(&truth, 10, threshold);
    expected.retain(|e| i64::try_from(e.second).unwrap() >= offset + 30);
    assert_eq!(expected.len(), 1, "{expected:?}");
    assert!(
        (90..93).contains(&expected[0].second),
        "{expected:?}: raised once the rate is 30/s"
    );
    assert_eq!(lines, lines_for(&expected, spec.start_unix_secs));
    let alerts = summary["alerts"].as_array().unwrap();
    let got = alerts[0]["threshold"].as_f64().unwrap();
    assert!(
        (got - threshold).abs() < 1e-9,
        "threshold {got}, expected {threshold}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

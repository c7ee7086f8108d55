//! Bounded memory: a replay of 1,100,000 requests over 1,000,000 distinct sections and
//! 1,000,000 distinct hosts stays under 64 MiB resident, and the two heavy keys still come out
//! on top with their exact counts (space-saving keeps any key above total/capacity per table).
//!
//! The capture (about 200 MB) is written by bench-rig's generator into a scratch directory
//! and removed afterwards. linewatch reports its own peak RSS (`VmHWM`) in the summary.

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;

use common::{scratch, summary_of};
use linewatch_bench_rig::capture::{write_capture_file, CaptureSpec, HeavyKey, KeySpec, Phase};

const LIMIT_BYTES: u64 = 64 * 1024 * 1024;

#[test]
fn a_million_distinct_keys_fit_in_64_mib_and_heavy_keys_stay_exact() {
    let dir = scratch("memory");
    let capture = dir.join("distinct.pcap");
    let heavy = |section: &str, host: &str, per_mille| HeavyKey {
        section: section.into(),
        host: host.into(),
        per_mille,
    };
    let spec = CaptureSpec {
        phases: vec![Phase {
            seconds: 110,
            requests_per_second: 10_000,
        }],
        requests_per_connection: 100,
        handshake: true,
        responses: false,
        keys: KeySpec {
            distinct_sections: 1_000_000,
            distinct_hosts: 1_000_000,
            distinct_user_agents: 1_000,
            heavy: vec![
                heavy("/hot", "hot.example", 30),
                heavy("/warm", "warm.example", 20),
            ],
        },
        ..CaptureSpec::default()
    };
    let truth = write_capture_file(&spec, &capture).expect("writing the capture");
    assert_eq!(truth.requests, 1_100_000);
    // Every pool key appears (the pools are walked in order), plus the two heavy keys.
    assert_eq!(truth.sections.len(), 1_000_002);
    assert_eq!(truth.hosts.len(), 1_000_002);

    let (summary, _) = summary_of(&capture, &[]);
    let rss = summary["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS reported on Linux");
    println!(
        "peak RSS replaying {} requests: {:.1} MiB",
        truth.requests,
        rss as f64 / 1048576.0
    );
    assert!(
        rss < LIMIT_BYTES,
        "peak RSS {rss} bytes is not under 64 MiB"
    );
    assert_eq!(summary["requests"].as_u64(), Some(truth.requests));

    for (map, keys) in [
        ("sections", ["/hot", "/warm"]),
        ("hosts", ["hot.example", "warm.example"]),
    ] {
        let mut top: Vec<(&String, u64)> = summary[map]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k, v.as_u64().unwrap()))
            .collect();
        top.sort_by_key(|e| std::cmp::Reverse(e.1));
        let truth_map = if map == "sections" {
            &truth.sections
        } else {
            &truth.hosts
        };
        for (rank, key) in keys.iter().enumerate() {
            assert_eq!(top[rank].0, key, "{map}: rank {rank}");
            assert_eq!(top[rank].1, truth_map[*key], "{map}: {key} count");
            let approximate = summary["approximate"][map].as_array().unwrap();
            assert!(
                !approximate.iter().any(|k| k == key),
                "{map}: {key} marked approximate"
            );
        }
        // Every other listed key is a light one: at most a few requests each.
        assert!(top[2].1 <= 10, "{map}: third key has {}", top[2].1);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

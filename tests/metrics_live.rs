//! `--metrics` live (SPEC §4): linewatch `--mirror` on the lab's server veth with
//! `--metrics 127.0.0.1:PORT`, scraped with curl inside the server namespace while wrk loads
//! nginx. Every scrape must parse as OpenMetrics (Python's `prometheus_client` OpenMetrics
//! parser, Debian's python3-prometheus-client), and once traffic has stopped and the last
//! second has closed, the scraped counters must equal linewatch's own `--summary`.
//!
//! Needs root, ip, tc, nginx, curl, wrk and python3 with prometheus_client; with `CI` set it
//! fails instead of skipping.

#![allow(clippy::print_stdout)]
// Scraped values are counts that Python parsed as floats, exact below 2^53.
#![allow(clippy::cast_possible_truncation)]

mod common;
mod live;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use linewatch_testkit::lab::Netns;
use linewatch_testkit::tools::skip_or_fail;
use live::traffic::run_load;
use live::{lab_for, mirror_with_metrics, scrape_metrics, serial};
use serde_json::Value;

const METRICS_ADDR: &str = "127.0.0.1:9920";

/// Parses OpenMetrics text with Python's parser; prints `{"name": [[labels, value], ..]}`
/// (sample names, so counters appear with `_total`).
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))
"#;

/// Parsed samples: name → [(labels, value)].
type Samples = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

fn parse(py: &str, text: &str) -> Samples {
    let mut child = Command::new(py)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("writing to python3");
    let out = child.wait_with_output().expect("python3 output");
    assert!(
        out.status.success(),
        "not valid OpenMetrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("python printed JSON");
    json.as_object()
        .expect("an object")
        .iter()
        .map(|(name, samples)| {
            let samples = samples
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| {
                    let labels = s[0]
                        .as_object()
                        .expect("labels")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect();
                    (labels, s[1].as_f64().expect("a number"))
                })
                .collect();
            (name.clone(), samples)
        })
        .collect()
}

/// curl inside the server namespace `ns` (the metrics endpoint is bound there).
fn scrape(ns: &Netns) -> String {
    scrape_metrics(ns, METRICS_ADDR)
}

fn sum(samples: &Samples, name: &str) -> f64 {
    samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
        .iter()
        .map(|(_, v)| v)
        .sum()
}

fn by_label(samples: &Samples, name: &str, label: &str) -> BTreeMap<String, u64> {
    samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in the scrape"))
        .iter()
        .map(|(l, v)| (l.get(label).cloned().unwrap_or_default(), *v as u64))
        .filter(|(_, v)| *v > 0)
        .collect()
}

#[test]
fn metrics_parse_during_load_and_match_the_summary() {
    let _serial = serial();
    let Some(py) = linewatch_testkit::tools::python_with("prometheus_client.openmetrics.parser")
    else {
        skip_or_fail(
            "metrics_live cannot run: python3 with prometheus_client is missing \
             (Debian: apt-get install python3-prometheus-client)",
        );
        return;
    };
    let Some(lab) = lab_for("metrics_live", &["nginx", "curl", "wrk"]) else {
        return;
    };
    let summary = lab.dir.join("metrics.json");
    let lw = mirror_with_metrics(&lab, METRICS_ADDR, &[], &summary);

    // Scrapes during the load: each must parse, and requests never go down.
    let loading = AtomicBool::new(true);
    let ns = lab.server().clone();
    let scrapes = std::thread::scope(|s| {
        let scraper = s.spawn(|| {
            let mut seen = Vec::new();
            while loading.load(Ordering::Relaxed) {
                let text = scrape(&ns);
                let samples = parse(py, &text);
                assert!(
                    samples.contains_key("linewatch_requests_total"),
                    "{samples:?}\n{text}"
                );
                seen.push(sum(&samples, "linewatch_requests_total"));
                std::thread::sleep(Duration::from_millis(300));
            }
            seen
        });
        run_load(&lab, 3);
        loading.store(false, Ordering::Relaxed);
        scraper.join().expect("the scraper")
    });
    println!("requests_total during the load: {scrapes:?}");
    assert!(scrapes.len() >= 3, "{scrapes:?}");
    assert!(
        scrapes.windows(2).all(|w| w[0] <= w[1]),
        "counters only grow"
    );
    assert!(scrapes.iter().any(|&r| r > 0.0), "{scrapes:?}");

    // Let the last second close, then the final scrape must equal the summary.
    std::thread::sleep(Duration::from_millis(2500));
    let text = scrape(lab.server());
    let samples = parse(py, &text);
    let summary = lw.interrupt();
    let requests = summary["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(
        sum(&samples, "linewatch_requests_total") as u64,
        requests,
        "{text}"
    );
    assert_eq!(
        sum(&samples, "linewatch_responses_total") as u64,
        summary["responses"].as_u64().unwrap()
    );
    assert_eq!(
        sum(&samples, "linewatch_packets_total") as u64,
        summary["packets"].as_u64().unwrap()
    );
    assert_eq!(
        sum(&samples, "linewatch_new_connections_total") as u64,
        summary["connections"]["new"].as_u64().unwrap()
    );
    let methods: BTreeMap<String, u64> = summary["methods"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(
        by_label(&samples, "linewatch_requests_total", "method"),
        methods
    );
    let classes: BTreeMap<String, u64> = summary["status_classes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .filter(|(_, v)| *v > 0)
        .collect();
    assert_eq!(
        by_label(&samples, "linewatch_responses_total", "class"),
        classes
    );
    // The section and host families sum to the requests, and the top sections agree.
    assert_eq!(
        sum(&samples, "linewatch_top_section_requests") as u64,
        requests
    );
    assert_eq!(
        sum(&samples, "linewatch_top_host_requests") as u64,
        requests
    );
    let sections = by_label(&samples, "linewatch_top_section_requests", "section");
    for (section, n) in summary["sections"].as_object().unwrap() {
        if let Some(&ours) = sections.get(section) {
            assert_eq!(ours, n.as_u64().unwrap(), "section {section}");
        }
    }
    // The latency histogram counts every response paired with its request.
    assert_eq!(
        sum(&samples, "linewatch_response_latency_seconds_count") as u64,
        summary["latency"]["response_us"]["count"].as_u64().unwrap()
    );
    // wrk's load is far above the default threshold: the alert is raised and still active.
    let active = summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "high_traffic" && a["recovered_at"].is_null());
    assert!(active, "{:#}", summary["alerts"]);
    assert_eq!(sum(&samples, "linewatch_alert_active") as u64, 1);
}

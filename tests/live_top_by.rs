//! `--top-by header:...` live, against nginx's own log of those headers: curl sends requests
//! with varied Referer and X-Forwarded-For values (and some without), linewatch captures them
//! with `--mirror`, and its `top_by` tables (summary and `--metrics`) must equal nginx's log of
//! `$http_referer` and `$http_x_forwarded_for` (the lab's `headers.log`) for the monitored
//! port, key for key; the `client` and `port` tables hold every request under the lab client's
//! address and the monitored port.
//!
//! Needs root, ip, tc, nginx and curl; without them the test prints a note and passes (with
//! `CI` set it fails). Run it (as root, under the lab lock):
//!
//! ```text
//! flock /tmp/linewatch-netns.lock cargo test --profile ci --test live_top_by -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;
mod live;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use linewatch_testkit::tools::path_of;
use live::lab::{Lab, CLIENT_ADDR, MONITORED_PORT, UNMONITORED_PORT};
use live::process::run;
use live::{lab_for, mirror_with_metrics, scrape_metrics, serial, SETTLE};

const METRICS_ADDR: &str = "127.0.0.1:9926";
/// Requests sent on the monitored port; every third goes to the unmonitored port as well, so
/// the tables must leave those out.
const REQUESTS: usize = 60;
/// Requests per curl process (chained with `--next`, on one kept-alive connection).
const PER_CURL: usize = 20;
/// How long the metrics get to show the last second's requests.
const METRICS_WAIT: Duration = Duration::from_secs(5);
const KEYS: &str = "header:referer,header:x-forwarded-for,client,port";

/// The headers request `i` carries: a Referer from seven pages of three sites, an
/// X-Forwarded-For from five addresses; every fifth request has no Referer and every seventh
/// no X-Forwarded-For.
fn headers(i: usize) -> (Option<String>, Option<String>) {
    let referer = (i % 5 != 0).then(|| format!("http://site{}.example/page{}", i % 3, i % 7));
    let forwarded = (i % 7 != 0).then(|| format!("192.0.2.{}", 10 + i % 5));
    (referer, forwarded)
}

/// Sends `REQUESTS` GETs to `port`, `PER_CURL` per curl process.
fn send(lab: &Lab, port: u16) {
    for chunk in (0..REQUESTS).collect::<Vec<_>>().chunks(PER_CURL) {
        let mut cmd = lab.client().exec(path_of("curl"));
        cmd.args(["-sS", "--max-time", "10"]);
        for (n, &i) in chunk.iter().enumerate() {
            if n > 0 {
                cmd.arg("--next");
            }
            cmd.args(["-o", "/dev/null", "-w", "%{http_code}\\n"]);
            let (referer, forwarded) = headers(i);
            if let Some(r) = referer {
                cmd.args(["-H", &format!("Referer: {r}")]);
            }
            if let Some(f) = forwarded {
                cmd.args(["-H", &format!("X-Forwarded-For: {f}")]);
            }
            cmd.arg(Lab::url(port, &format!("/api/item{i}")));
        }
        let done = run("curl", cmd, Duration::from_secs(20));
        assert!(done.status.success(), "curl: {}", done.stderr);
        assert!(
            done.stdout.lines().all(|l| l.trim() == "200"),
            "curl statuses: {}",
            done.stdout
        );
    }
}

/// nginx's headers log for the monitored port: referer and X-Forwarded-For counts.
fn logged(lab: &Lab) -> (BTreeMap<String, u64>, BTreeMap<String, u64>) {
    let text = std::fs::read_to_string(lab.headers_log()).expect("reading headers.log");
    let (mut referers, mut forwarded) = (BTreeMap::new(), BTreeMap::new());
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "headers.log line {line:?}");
        if f[0] != MONITORED_PORT.to_string() {
            continue;
        }
        *referers.entry(f[1].to_owned()).or_default() += 1;
        *forwarded.entry(f[2].to_owned()).or_default() += 1;
    }
    (referers, forwarded)
}

/// The summary's `top_by` table for `by`, as key to count; every key's bytes counted.
fn table(summary: &serde_json::Value, by: &str) -> BTreeMap<String, u64> {
    let (table, _) = common::top_by_table(summary, by);
    table
        .into_iter()
        .map(|(key, (count, bytes))| {
            assert!(bytes > 0, "{by} {key}: no bytes");
            (key, count)
        })
        .collect()
}

/// The scrape's `linewatch_top_by_messages` series of `by`, without `(other)`.
fn scraped(text: &str, by: &str) -> BTreeMap<String, u64> {
    let prefix = format!("linewatch_top_by_messages{{by=\"{by}\",key=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (key, value) = rest.split_once("\"} ")?;
            Some((key.to_owned(), value.trim().parse().ok()?))
        })
        .filter(|(key, _)| key != "(other)")
        .collect()
}

#[test]
fn top_by_headers_match_nginx_log() {
    let _serial = serial();
    let Some(lab) = lab_for("top_by_headers_match_nginx_log", &["nginx", "curl"]) else {
        return;
    };
    let summary = lab.dir.join("top-by.json");
    let lw = mirror_with_metrics(
        &lab,
        METRICS_ADDR,
        &["--top-by", KEYS, "--top", "100"],
        &summary,
    );
    send(&lab, MONITORED_PORT);
    send(&lab, UNMONITORED_PORT);
    std::thread::sleep(SETTLE);
    let (referers, forwarded) = logged(&lab);
    assert_eq!(
        referers.values().sum::<u64>(),
        REQUESTS as u64,
        "{referers:?}"
    );
    assert!(
        referers.len() > 10 && referers.contains_key("-"),
        "{referers:?}"
    );

    let deadline = Instant::now() + METRICS_WAIT;
    let metrics = loop {
        let text = scrape_metrics(lab.server(), METRICS_ADDR);
        if scraped(&text, "header:referer") == referers || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let summary = lw.interrupt();

    println!("\n| header | nginx keys | nginx requests | linewatch keys |");
    println!("|---|---|---|---|");
    for (by, truth) in [
        ("header:referer", &referers),
        ("header:x-forwarded-for", &forwarded),
    ] {
        let ours = table(&summary, by);
        println!(
            "| {by} | {} | {} | {} |",
            truth.len(),
            truth.values().sum::<u64>(),
            ours.len()
        );
        assert_eq!(&ours, truth, "--top-by {by} against nginx's log");
        assert_eq!(&scraped(&metrics, by), truth, "--metrics {by}");
    }
    let n = REQUESTS as u64;
    assert_eq!(
        table(&summary, "client"),
        BTreeMap::from([(CLIENT_ADDR.to_owned(), n)])
    );
    assert_eq!(
        table(&summary, "port"),
        BTreeMap::from([(MONITORED_PORT.to_string(), n)])
    );
    assert!(
        metrics.contains("linewatch_top_by_bytes{by=\"client\",key=\"10.202.0.2\"}"),
        "{metrics}"
    );
}

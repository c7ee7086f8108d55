//! The Grafana dashboard (`grafana/linewatch.json`, issue 17 item 8) queries only what
//! linewatch serves: every metric name in its PromQL (panel targets and template variables) must
//! be a sample name of a live scrape of `--metrics`, under the suffix its family's type gives
//! it (`_total` for a counter, `_bucket`/`_sum`/`_count` for a histogram, `_info` for an info,
//! none for a gauge), and `histogram_quantile` must be taken over `_bucket` series by `le`.
//!
//! The live test runs linewatch `--mirror` in the lab with `--metrics`, sends it a little
//! traffic (wrk against nginx), scrapes with curl and checks the dashboard against the scrape.
//! It needs root, ip, tc, nginx, curl and wrk; with `CI` set it fails instead of skipping. The
//! other tests need nothing: the extractor on known expressions, the check failing on
//! doctored queries, and the dashboard against `linewatch-report`'s rendering.

#![allow(clippy::print_stdout)]

mod common;
mod live;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use live::traffic::run_load;
use live::{lab_for, mirror_with_metrics, scrape_metrics, serial};
use serde_json::Value;

const METRICS_ADDR: &str = "127.0.0.1:9922";

/// PromQL's reserved words that are not metric names: operators, modifiers, and the
/// aggregations (which may take their `by (...)` before their parenthesis).
const KEYWORDS: [&str; 22] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

/// Words followed by a parenthesised list of label names (or, for `group_*`, optionally).
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The dashboard as committed.
fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/linewatch.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// Every PromQL expression of the dashboard, with where it is: panel targets (rows' nested
/// panels too) and the template variables' queries.
fn queries(dash: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((format!("panel {title:?}"), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dash["panels"], &mut out);
    for var in dash["templating"]["list"].as_array().into_iter().flatten() {
        let query = var["query"]["query"].as_str().or(var["query"].as_str());
        if var["type"] == "query" {
            let query = query.expect("a query variable has a query");
            out.push((format!("variable {}", var["name"]), query.to_owned()));
        }
    }
    out
}

/// The metric names a PromQL expression (with Grafana's `$variables`) selects.
///
/// A lexer, enough for dashboards: string literals, `{...}` label matchers, `[...]` ranges
/// and `$variables` are skipped; a word followed by `(` is a function, and PromQL's reserved
/// words (aggregations too: `sum by (le) (...)`) are not names; the list after `by`, `without`, `on`, `ignoring`, `group_left` and `group_right` holds label
/// names; in Grafana's `label_values(metric, label)` the last argument is a label. Numbers
/// and durations start with a digit. Every other word is a metric name.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let word_byte = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    // Skips from an opening byte to its matching close (strings inside are skipped whole).
    let skip_group = |mut i: usize, open: u8, close: u8| -> usize {
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                q @ (b'"' | b'\'' | b'`') => i = skip_string(b, i, q),
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        b.len()
    };
    let mut label_values_args: Option<usize> = None;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(b, i, c) + 1,
            b'{' => i = skip_group(i, b'{', b'}'),
            b'[' => i = skip_group(i, b'[', b']'),
            b'$' => {
                i += 1;
                while i < b.len() && (word_byte(b[i]) || b[i] == b'{' || b[i] == b'}') {
                    i += 1;
                }
            }
            b'0'..=b'9' | b'.' => {
                while i < b.len() && (word_byte(b[i]) || b[i] == b'.') {
                    i += 1;
                }
            }
            c if word_byte(c) => {
                let start = i;
                while i < b.len() && word_byte(b[i]) {
                    i += 1;
                }
                let word = &expr[start..i];
                let mut next = i;
                while next < b.len() && b[next].is_ascii_whitespace() {
                    next += 1;
                }
                let paren = b.get(next) == Some(&b'(');
                if LABEL_LISTS.contains(&word) {
                    if paren {
                        i = skip_group(next, b'(', b')');
                    }
                } else if paren {
                    if word == "label_values" {
                        label_values_args = Some(0);
                    }
                } else if !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
                    // The second argument of label_values is a label, not a metric.
                    if label_values_args != Some(1) {
                        names.insert(word.to_owned());
                    }
                }
            }
            b',' => {
                if let Some(n) = label_values_args.as_mut() {
                    *n += 1;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    names
}

/// The index of the quote that closes the string opening at `start` (or the end).
fn skip_string(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() && b[i] != quote {
        if b[i] == b'\\' && quote != b'`' {
            i += 1;
        }
        i += 1;
    }
    i.min(b.len())
}

/// The sample names of an OpenMetrics exposition with their family's type, each checked to be
/// a name that type allows for the family declared before it.
fn served(exposition: &str) -> BTreeMap<String, String> {
    let mut family = (String::new(), String::new());
    let mut out = BTreeMap::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("# TYPE name type");
            family = (name.to_owned(), ty.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).expect("a sample");
            let name = &line[..end];
            let (f, ty) = &family;
            let allowed: &[&str] = match ty.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                "info" => &["_info"],
                _ => &[""],
            };
            assert!(
                allowed.iter().any(|s| name == format!("{f}{s}")),
                "sample {name} in family {f} of type {ty}"
            );
            out.insert(name.to_owned(), ty.clone());
        }
    }
    out
}

/// What is wrong with the dashboard's queries against `exposition` (nothing: empty).
fn problems(queries: &[(String, String)], exposition: &str) -> Vec<String> {
    let served = served(exposition);
    let mut out = Vec::new();
    for (place, expr) in queries {
        let names = metric_names(expr);
        if names.is_empty() {
            out.push(format!("{place}: no metric in {expr:?}"));
        }
        for name in &names {
            match served.get(name) {
                None => out.push(format!("{place}: {name} is not served ({expr})")),
                Some(ty) if name.ends_with("_bucket") && ty != "histogram" => {
                    out.push(format!("{place}: {name} is a {ty}, not a histogram"));
                }
                Some(_) => {}
            }
        }
        if expr.contains("histogram_quantile")
            && !(names.iter().all(|n| n.ends_with("_bucket")) && expr.contains("by (le)"))
        {
            out.push(format!(
                "{place}: histogram_quantile needs _bucket series summed by (le): {expr}"
            ));
        }
    }
    out
}

/// An exposition as linewatch renders it, with a little of everything in it.
fn rendered() -> String {
    use linewatch_report::metrics::{render, MetricsView};
    render(&MetricsView {
        created: std::time::SystemTime::now(),
        packets: 10,
        requests: 3,
        responses: 3,
        methods: vec![("GET", 3)],
        status_classes: [0, 2, 0, 0, 1, 0],
        top_sections: vec![(b"/a".to_vec(), 3)],
        top_hosts: vec![(b"h".to_vec(), 3)],
        threshold: Some(10.0),
        response_latency_us: vec![(900, 3)],
        ..Default::default()
    })
}

#[test]
fn the_extractor_finds_metric_names_and_nothing_else() {
    let cases: [(&str, &[&str]); 7] = [
        (
            r#"histogram_quantile(0.99, sum by (le) (rate(linewatch_response_latency_seconds_bucket{instance=~"$instance"}[$__rate_interval])))"#,
            &["linewatch_response_latency_seconds_bucket"],
        ),
        (
            r#"sum by (class) (rate(linewatch_responses_total{class=~"4xx|5xx"}[5m])) / ignoring (class) group_left sum(rate(linewatch_responses_total[5m]))"#,
            &["linewatch_responses_total"],
        ),
        (
            r#"topk(10, sum by (section) (linewatch_top_section_requests{section!="(other) by (x)"}))"#,
            &["linewatch_top_section_requests"],
        ),
        (
            "time() - max by (instance) (linewatch_start_time_seconds offset 1h)",
            &["linewatch_start_time_seconds"],
        ),
        (
            "label_values(linewatch_build_info, instance)",
            &["linewatch_build_info"],
        ),
        (
            "a_total * 1e3 + on(job) group_right(x) b:rec:rate5m > bool 0.5 unless c",
            &["a_total", "b:rec:rate5m", "c"],
        ),
        (
            "sum without (le, x) (rate(h_count[1m])) and ${var} > 2",
            &["h_count"],
        ),
    ];
    for (expr, want) in cases {
        let got: Vec<String> = metric_names(expr).into_iter().collect();
        assert_eq!(got, want, "{expr}");
    }
}

#[test]
fn a_query_of_an_unserved_name_or_suffix_fails_the_check() {
    let text = rendered();
    let q = |expr: &str| vec![("panel \"t\"".to_owned(), expr.to_owned())];
    assert!(problems(&q("sum(rate(linewatch_requests_total[5m]))"), &text).is_empty());
    for bad in [
        "sum(rate(linewatch_requests_typo_total[5m]))",
        // The family name is not a sample name: a counter's samples end in _total.
        "sum(rate(linewatch_requests[5m]))",
        "linewatch_requests_total_bucket",
        "histogram_quantile(0.5, sum by (le) (rate(linewatch_response_latency_seconds[5m])))",
        "histogram_quantile(0.5, rate(linewatch_response_latency_seconds_bucket[5m]))",
        "vector(1)",
    ] {
        assert!(!problems(&q(bad), &text).is_empty(), "{bad} passed");
    }
}

#[test]
fn the_dashboard_covers_the_operators_questions_and_queries_what_linewatch_renders() {
    let dash = dashboard();
    let queries = queries(&dash);
    let exprs: Vec<&str> = queries.iter().map(|(_, e)| e.as_str()).collect();
    let uses = |needle: &str| exprs.iter().any(|e| e.contains(needle));
    for needle in [
        "rate(linewatch_requests_total",
        "sum by (class) (rate(linewatch_responses_total",
        "histogram_quantile(0.5, sum by (le) (rate(linewatch_response_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(linewatch_response_latency_seconds_bucket",
        "linewatch_top_section_requests",
        "linewatch_top_host_requests",
        "linewatch_kernel_drops_total",
        "linewatch_scan_alerts_total",
        "linewatch_blocked_syns_total",
        "linewatch_alert_threshold_requests_per_second",
    ] {
        assert!(uses(needle), "the dashboard has no query with {needle}");
    }
    // Every panel with targets reads the data source variable.
    assert!(queries.len() >= 20, "{}", queries.len());
    let problems = problems(&queries, &rendered());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_metric_the_dashboard_queries_is_in_a_live_scrape() {
    let _serial = serial();
    let Some(lab) = lab_for("grafana_dashboard", &["nginx", "curl", "wrk"]) else {
        return;
    };
    let summary = lab.dir.join("grafana.json");
    let lw = mirror_with_metrics(&lab, METRICS_ADDR, &[], &summary);
    run_load(&lab, 1);
    // Let the last second close, so that the scrape has the load in it.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let scrape = scrape_metrics(lab.server(), METRICS_ADDR);
    let queries = queries(&dashboard());
    let names: BTreeSet<String> = queries.iter().flat_map(|(_, e)| metric_names(e)).collect();
    println!(
        "{} queries name {} metrics: {}",
        queries.len(),
        names.len(),
        names.iter().cloned().collect::<Vec<_>>().join(" ")
    );
    let problems = problems(&queries, &scrape);
    assert!(problems.is_empty(), "{}\n{scrape}", problems.join("\n"));
    // The scrape had the traffic in it: the latency buckets the quantiles read are filled.
    assert!(
        scrape.lines().any(
            |l| l.starts_with("linewatch_response_latency_seconds_count ") && !l.ends_with(" 0")
        ),
        "{scrape}"
    );
    let summary = lw.interrupt();
    assert!(summary["requests"].as_u64().unwrap_or(0) > 0);
}

//! The exposition's tests: every family, the label and sum rules, hostile keys.

use super::*;
use linewatch_model::TopByMetrics;
use std::collections::HashSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One sample line, read back.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: String,
}

/// `# TYPE` lines as (family, type), and the samples.
type Parsed = (Vec<(String, String)>, Vec<Sample>);

/// Reads an exposition back, strictly enough for these tests: `# TYPE` lines (family,
/// type) and samples with their label values unescaped. Errors on anything else.
fn parse(text: &str) -> Result<Parsed, String> {
    let body = text
        .strip_suffix("# EOF\n")
        .ok_or("does not end in # EOF\\n")?;
    let mut types = Vec::new();
    let mut samples = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, ty) = rest.split_once(' ').ok_or(format!("TYPE: {line:?}"))?;
            types.push((family.to_owned(), ty.to_owned()));
        } else if line.starts_with("# HELP ") || line.starts_with("# UNIT ") {
            continue;
        } else if line.starts_with('#') || line.is_empty() {
            return Err(format!("unexpected line {line:?}"));
        } else {
            samples.push(parse_sample(line)?);
        }
    }
    Ok((types, samples))
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let end = line.find(['{', ' ']).ok_or(format!("no value: {line:?}"))?;
    let name = &line[..end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("bad name in {line:?}"));
    }
    let mut rest = line[end..].chars().peekable();
    let mut labels = Vec::new();
    if rest.peek() == Some(&'{') {
        rest.next();
        loop {
            let mut key = String::new();
            for c in rest.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if rest.next() != Some('"') {
                return Err(format!("no quote in {line:?}"));
            }
            let mut value = String::new();
            loop {
                match rest.next().ok_or(format!("open label in {line:?}"))? {
                    '"' => break,
                    '\\' => match rest.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?} in {line:?}")),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
            match rest.next() {
                Some(',') => continue,
                Some('}') => break,
                other => return Err(format!("{other:?} after a label in {line:?}")),
            }
        }
    }
    if rest.next() != Some(' ') {
        return Err(format!("no space before the value in {line:?}"));
    }
    let value: String = rest.collect();
    if value.parse::<f64>().is_err() && value != "+Inf" {
        return Err(format!("bad value in {line:?}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parsed(view: &MetricsView) -> Parsed {
    let text = render(view);
    match parse(&text) {
        Ok(p) => p,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn value(s: &Sample) -> u64 {
    s.value
        .parse()
        .unwrap_or_else(|_| panic!("not a u64: {s:?}"))
}

/// The samples named `name`, as (first label value, count).
fn series(samples: &[Sample], name: &str) -> Vec<(String, u64)> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| {
            let label = s.labels.first().map(|l| l.1.clone()).unwrap_or_default();
            (label, value(s))
        })
        .collect()
}

fn rich() -> MetricsView {
    MetricsView {
        created: UNIX_EPOCH + Duration::from_millis(1_614_053_178_250),
        packets: 1_000_000,
        bytes: u64::MAX,
        kernel_drops: 12,
        requests: 100,
        responses: 90,
        non_http: 7,
        malformed: 3,
        methods: vec![
            ("GET", 60),
            ("POST", 25),
            ("PUT", 5),
            ("DELETE", 4),
            ("HEAD", 3),
            ("OPTIONS", 1),
            ("PATCH", 1),
            ("other", 1),
        ],
        status_classes: [1, 70, 9, 6, 3, 1],
        top_sections: vec![(b"/api".to_vec(), 50), (b"/static".to_vec(), 30)],
        sections_other: 20,
        top_hosts: vec![(b"example.com".to_vec(), 80), (b"-".to_vec(), 5)],
        hosts_other: 15,
        new_connections: 40,
        scan_alerts: 2,
        blocked_syns: 1_234,
        blocked_sources: 3,
        alert_active: true,
        window_rate: 15.25,
        threshold: Some(10.0),
        response_latency_us: vec![(50, 10), (100, 5), (101, 4), (1_500, 20), (20_000_000, 1)],
        capture_latency_us: vec![(8, 100), (260, 2)],
        top_by: Vec::new(),
    }
}

/// `rich()` with two `--top-by` tables, one with hostile keys.
fn with_top_by() -> MetricsView {
    MetricsView {
        top_by: vec![
            TopByMetrics {
                by: "client".to_owned(),
                top: vec![
                    (b"10.0.0.1".to_vec(), 60, 6_000),
                    (b"10.0.0.2".to_vec(), 30, 90),
                ],
                other: 10,
            },
            TopByMetrics {
                by: "header:referer".to_owned(),
                top: hostile_keys()
                    .into_iter()
                    .map(|(k, n)| (k, n, n * 10))
                    .collect(),
                other: 1,
            },
        ],
        ..rich()
    }
}

/// Keys as hostile as the wire allows (and worse: the renderer must not trust the engine
/// to have cleaned anything).
fn hostile_keys() -> Vec<(Vec<u8>, u64)> {
    [
        &b"/a\"b"[..],
        b"/back\\slash\\",
        b"/new\nline",
        b"/x\"} 1\n# EOF\nlinewatch_evil_total 9",
        b"/esc\x1b[2J\x1b]0;title\x07",
        b"/cr\rnul\0del\x7f",
        b"/c1\xc2\x9b31m",
        b"/bidi\xe2\x80\xaeevil",
        b"/bad\xff\xfe",
        b"\\",
        b"\"",
        b"/caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac",
    ]
    .iter()
    .enumerate()
    .map(|(i, k)| (k.to_vec(), 1 + i as u64))
    .collect()
}

/// What the hostile keys read back as, in order.
const HOSTILE_READBACK: [&str; 12] = [
    "/a\"b",
    "/back\\slash\\",
    "/new\nline",
    "/x\"} 1\n# EOF\nlinewatch_evil_total 9",
    "/esc\u{fffd}[2J\u{fffd}]0;title\u{fffd}",
    "/cr\u{fffd}nul\u{fffd}del\u{fffd}",
    "/c1\u{fffd}31m",
    "/bidi\u{fffd}evil",
    "/bad\u{fffd}\u{fffd}",
    "\\",
    "\"",
    "/café/日本",
];

fn hostile() -> MetricsView {
    let keys = hostile_keys();
    let total: u64 = keys.iter().map(|k| k.1).sum();
    MetricsView {
        requests: total + 4,
        methods: vec![("GET", total + 4)],
        top_sections: keys.clone(),
        sections_other: 4,
        top_hosts: keys,
        hosts_other: 4,
        window_rate: f64::NAN,
        threshold: Some(f64::INFINITY),
        ..rich()
    }
}

const FAMILIES: [(&str, &str); 20] = [
    ("linewatch_build", "info"),
    ("linewatch_start_time_seconds", "gauge"),
    ("linewatch_packets", "counter"),
    ("linewatch_captured_bytes", "counter"),
    ("linewatch_kernel_drops", "counter"),
    ("linewatch_requests", "counter"),
    ("linewatch_responses", "counter"),
    ("linewatch_top_section_requests", "gauge"),
    ("linewatch_top_host_requests", "gauge"),
    ("linewatch_non_http_segments", "counter"),
    ("linewatch_malformed_messages", "counter"),
    ("linewatch_new_connections", "counter"),
    ("linewatch_scan_alerts", "counter"),
    ("linewatch_blocked_syns", "counter"),
    ("linewatch_blocked_sources", "gauge"),
    ("linewatch_alert_active", "gauge"),
    ("linewatch_window_requests_per_second", "gauge"),
    ("linewatch_alert_threshold_requests_per_second", "gauge"),
    ("linewatch_response_latency_seconds", "histogram"),
    ("linewatch_capture_latency_seconds", "histogram"),
];

fn expected_types(except: &[&str]) -> Vec<(String, String)> {
    FAMILIES
        .iter()
        .filter(|(f, _)| !except.contains(f))
        .map(|&(f, t)| (f.to_owned(), t.to_owned()))
        .collect()
}

/// The sample names a family of `ty` may hold.
fn sample_names(family: &str, ty: &str) -> Vec<String> {
    let suffixes: &[&str] = match ty {
        "counter" => &["_total"],
        "gauge" => &[""],
        "info" => &["_info"],
        "histogram" => &["_bucket", "_sum", "_count"],
        _ => &[],
    };
    suffixes.iter().map(|s| format!("{family}{s}")).collect()
}

#[test]
fn top_by_families_sum_per_table_and_only_with_top_by() {
    let view = with_top_by();
    let (types, samples) = parsed(&view);
    let mut want = expected_types(&[]);
    let at = want
        .iter()
        .position(|(f, _)| f == "linewatch_top_host_requests")
        .map_or(0, |i| i + 1);
    want.insert(
        at,
        ("linewatch_top_by_messages".to_owned(), "gauge".to_owned()),
    );
    want.insert(
        at + 1,
        ("linewatch_top_by_bytes".to_owned(), "gauge".to_owned()),
    );
    assert_eq!(types, want);
    let of = |name: &str, by: &str| -> Vec<(String, u64)> {
        samples
            .iter()
            .filter(|s| {
                s.name == name
                    && s.labels
                        .first()
                        .is_some_and(|l| l == &("by".to_owned(), by.to_owned()))
            })
            .map(|s| (s.labels[1].1.clone(), value(s)))
            .collect()
    };
    assert_eq!(
        of("linewatch_top_by_messages", "client"),
        [
            ("10.0.0.1".to_owned(), 60),
            ("10.0.0.2".to_owned(), 30),
            (OTHER_LABEL.to_owned(), 10)
        ]
    );
    assert_eq!(
        of("linewatch_top_by_bytes", "client"),
        [("10.0.0.1".to_owned(), 6_000), ("10.0.0.2".to_owned(), 90)]
    );
    // Hostile keys: merged as in the other families, the table still sums to what it counted.
    let referers = of("linewatch_top_by_messages", "header:referer");
    let listed: u64 = hostile_keys().iter().map(|(_, n)| n).sum();
    assert_eq!(referers.iter().map(|(_, n)| n).sum::<u64>(), listed + 1);
    let labels: HashSet<&String> = referers.iter().map(|(k, _)| k).collect();
    assert_eq!(labels.len(), referers.len(), "a repeated label set");
    // Without --top-by the families are not there at all.
    assert!(!render(&rich()).contains("top_by"));
}

#[test]
fn every_family_is_present_with_its_type() {
    let (types, samples) = parsed(&rich());
    assert_eq!(types, expected_types(&[]));
    // Every sample belongs to the family declared last, under a name its type allows.
    let text = render(&rich());
    let mut family: Option<(String, String)> = None;
    let mut seen = HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (f, t) = rest.split_once(' ').unwrap_or_default();
            family = Some((f.to_owned(), t.to_owned()));
        } else if !line.starts_with('#') {
            let (f, t) = family.clone().unwrap_or_default();
            let s = parse_sample(line).unwrap_or_else(|e| panic!("{e}"));
            assert!(sample_names(&f, &t).contains(&s.name), "{line} in {f} {t}");
            seen.insert(f);
        }
    }
    assert_eq!(seen.len(), FAMILIES.len(), "a family without samples");
    let one = |name: &str| {
        let s: Vec<_> = samples.iter().filter(|s| s.name == name).collect();
        assert_eq!(s.len(), 1, "{name}");
        s[0].value.clone()
    };
    assert_eq!(one("linewatch_packets_total"), "1000000");
    assert_eq!(one("linewatch_captured_bytes_total"), u64::MAX.to_string());
    assert_eq!(one("linewatch_kernel_drops_total"), "12");
    assert_eq!(one("linewatch_non_http_segments_total"), "7");
    assert_eq!(one("linewatch_malformed_messages_total"), "3");
    assert_eq!(one("linewatch_new_connections_total"), "40");
    assert_eq!(one("linewatch_scan_alerts_total"), "2");
    assert_eq!(one("linewatch_blocked_syns_total"), "1234");
    assert_eq!(one("linewatch_blocked_sources"), "3");
    assert_eq!(one("linewatch_alert_active"), "1");
    assert_eq!(one("linewatch_window_requests_per_second"), "15.25");
    assert_eq!(one("linewatch_alert_threshold_requests_per_second"), "10.0");
    assert_eq!(one("linewatch_start_time_seconds"), "1614053178.25");
    assert!(text.contains("# UNIT linewatch_captured_bytes bytes\n"));
    assert!(text.contains("# UNIT linewatch_response_latency_seconds seconds\n"));
    assert!(text.contains("linewatch_build_info{version=\""));
    // HELP texts are static; they must not need escaping.
    for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
        assert!(!line.contains('\\'), "{line}");
    }
}

#[test]
fn threshold_and_rate_are_left_out_without_a_finite_value() {
    let learning = MetricsView {
        threshold: None,
        ..rich()
    };
    let (types, _) = parsed(&learning);
    assert_eq!(
        types,
        expected_types(&["linewatch_alert_threshold_requests_per_second"])
    );
    let broken = MetricsView {
        threshold: Some(f64::NAN),
        window_rate: f64::INFINITY,
        ..rich()
    };
    let (types, _) = parsed(&broken);
    assert_eq!(
        types,
        expected_types(&[
            "linewatch_alert_threshold_requests_per_second",
            "linewatch_window_requests_per_second"
        ])
    );
    let text = render(&broken);
    assert!(
        !text.contains(" inf\n") && !text.contains(" NaN\n"),
        "{text}"
    );
}

#[test]
fn methods_and_classes_sum_to_requests_and_responses() {
    let view = rich();
    let (_, samples) = parsed(&view);
    let methods = series(&samples, "linewatch_requests_total");
    assert_eq!(methods.len(), view.methods.len());
    assert_eq!(methods[0], ("GET".to_owned(), 60));
    assert_eq!(methods.iter().map(|m| m.1).sum::<u64>(), view.requests);
    let classes = series(&samples, "linewatch_responses_total");
    let names: Vec<_> = classes.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]);
    assert_eq!(classes.iter().map(|c| c.1).sum::<u64>(), view.responses);
}

#[test]
fn sections_and_hosts_with_other_sum_to_requests() {
    let view = rich();
    let (_, samples) = parsed(&view);
    let sections = series(&samples, "linewatch_top_section_requests");
    assert_eq!(
        sections,
        [
            ("/api".to_owned(), 50),
            ("/static".to_owned(), 30),
            ("(other)".to_owned(), 20)
        ]
    );
    assert_eq!(sections.iter().map(|s| s.1).sum::<u64>(), view.requests);
    let hosts = series(&samples, "linewatch_top_host_requests");
    assert_eq!(hosts.last(), Some(&("(other)".to_owned(), 15)));
    assert_eq!(hosts.iter().map(|s| s.1).sum::<u64>(), view.requests);
}

/// (le, cumulative count) of histogram `name`, and its sum and count.
fn histogram(samples: &[Sample], name: &str) -> (Vec<(String, u64)>, f64, u64) {
    let buckets = samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
        .map(|s| {
            assert_eq!(s.labels.len(), 1);
            assert_eq!(s.labels[0].0, "le");
            (s.labels[0].1.clone(), value(s))
        })
        .collect();
    let sum = samples
        .iter()
        .find(|s| s.name == format!("{name}_sum"))
        .and_then(|s| s.value.parse().ok())
        .unwrap_or(f64::NAN);
    let count = samples
        .iter()
        .find(|s| s.name == format!("{name}_count"))
        .map_or(u64::MAX, value);
    (buckets, sum, count)
}

fn check_cumulative(buckets: &[(String, u64)], count: u64) {
    assert_eq!(buckets.len(), LATENCY_BUCKETS_SECONDS.len() + 1);
    let mut last_le = f64::NEG_INFINITY;
    let mut last = 0;
    for (le, n) in buckets {
        let le: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        assert!(le > last_le, "{buckets:?}");
        assert!(*n >= last, "not cumulative: {buckets:?}");
        last_le = le;
        last = *n;
    }
    assert_eq!(buckets.last(), Some(&("+Inf".to_owned(), count)));
}

#[test]
fn histogram_buckets_are_cumulative_and_inf_is_the_count() {
    let (_, samples) = parsed(&rich());
    let (buckets, sum, count) = histogram(&samples, "linewatch_response_latency_seconds");
    assert_eq!(count, 40);
    check_cumulative(&buckets, count);
    let at = |le: &str| buckets.iter().find(|b| b.0 == le).map(|b| b.1);
    // 50 us and 100 us (on the bound) are <= 0.0001 s; 101 us is not.
    assert_eq!(at("0.0001"), Some(15));
    assert_eq!(at("0.00025"), Some(19));
    assert_eq!(at("0.001"), Some(19));
    assert_eq!(at("0.0025"), Some(39));
    assert_eq!(at("10.0"), Some(39));
    let want = (50.0 * 10.0 + 100.0 * 5.0 + 101.0 * 4.0 + 1_500.0 * 20.0 + 20e6) / 1e6;
    assert!((sum - want).abs() < 1e-9, "{sum} {want}");

    let (buckets, sum, count) = histogram(&samples, "linewatch_capture_latency_seconds");
    assert_eq!(count, 102);
    check_cumulative(&buckets, count);
    assert_eq!(buckets[0].1, 100);
    assert_eq!(buckets[2].1, 102);
    assert!((sum - (800.0 + 520.0) / 1e6).abs() < 1e-12, "{sum}");
}

#[test]
fn histogram_counts_saturate_instead_of_overflowing() {
    let view = MetricsView {
        response_latency_us: vec![(0, u64::MAX), (20_000_000, u64::MAX), (u64::MAX, 1)],
        capture_latency_us: vec![(u64::MAX, u64::MAX)],
        ..MetricsView::default()
    };
    let (_, samples) = parsed(&view);
    for name in [
        "linewatch_response_latency_seconds",
        "linewatch_capture_latency_seconds",
    ] {
        let (buckets, sum, count) = histogram(&samples, name);
        assert_eq!(count, u64::MAX);
        check_cumulative(&buckets, count);
        assert!(sum.is_finite() && sum > 0.0);
    }
}

#[test]
fn hostile_label_values_cannot_break_the_format() {
    let view = hostile();
    let text = render(&view);
    // No raw control character but the line ends, no C1, bidi or format character.
    for c in text.chars() {
        assert!(
            c == '\n' || !(c.is_control() || escape::is_dangerous(c)),
            "raw {c:?} in\n{text}"
        );
    }
    assert_eq!(text.lines().filter(|l| *l == "# EOF").count(), 1);
    assert!(!text.contains("\nlinewatch_evil"));
    let (types, samples) = match parse(&text) {
        Ok(p) => p,
        Err(e) => panic!("{e}\n{text}"),
    };
    assert_eq!(
        types,
        expected_types(&[
            "linewatch_alert_threshold_requests_per_second",
            "linewatch_window_requests_per_second"
        ])
    );
    // One sample per line: nothing a key held made a line of its own.
    let sample_lines = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(samples.len(), sample_lines);
    for name in [
        "linewatch_top_section_requests",
        "linewatch_top_host_requests",
    ] {
        let got = series(&samples, name);
        let mut want: Vec<(String, u64)> = HOSTILE_READBACK
            .iter()
            .zip(hostile_keys())
            .map(|(r, (_, n))| ((*r).to_owned(), n))
            .collect();
        want.push((OTHER_LABEL.to_owned(), 4));
        assert_eq!(got, want);
        assert_eq!(got.iter().map(|s| s.1).sum::<u64>(), view.requests);
    }
    // No family repeats a label set.
    let mut seen = HashSet::new();
    for s in &samples {
        assert!(seen.insert((s.name.clone(), s.labels.clone())), "{s:?}");
    }
}

#[test]
fn keys_alike_after_conversion_are_one_series() {
    let view = MetricsView {
        requests: 64,
        methods: vec![("GET", 64)],
        top_sections: vec![
            (b"/a\xff".to_vec(), 20),
            (b"/b".to_vec(), 10),
            (b"/a\xfe".to_vec(), 8),
            (b"(other)".to_vec(), 4),
            (b"/a\x1b".to_vec(), 2),
            (Vec::new(), 1),
        ],
        sections_other: 19,
        ..MetricsView::default()
    };
    let (_, samples) = parsed(&view);
    let sections = series(&samples, "linewatch_top_section_requests");
    assert_eq!(
        sections,
        [
            ("/a\u{fffd}".to_owned(), 30),
            ("/b".to_owned(), 10),
            ("(empty)".to_owned(), 1),
            ("(other)".to_owned(), 23)
        ]
    );
    assert_eq!(sections.iter().map(|s| s.1).sum::<u64>(), view.requests);
    // Duplicate method names (the engine's, not the wire's) are merged the same way.
    let view = MetricsView {
        methods: vec![("GET", 1), ("GET", 2)],
        top_sections: vec![(b"x".to_vec(), u64::MAX), (b"x".to_vec(), 5)],
        ..MetricsView::default()
    };
    let (_, samples) = parsed(&view);
    assert_eq!(
        series(&samples, "linewatch_requests_total"),
        [("GET".to_owned(), 3)]
    );
    assert_eq!(
        series(&samples, "linewatch_top_section_requests")[0],
        ("x".to_owned(), u64::MAX)
    );
}

#[test]
fn empty_view_renders_valid_text() {
    let text = render(&MetricsView::default());
    assert!(text.ends_with("\n# EOF\n"));
    let (types, samples) = parsed(&MetricsView::default());
    assert_eq!(
        types,
        expected_types(&["linewatch_alert_threshold_requests_per_second"])
    );
    for s in &samples {
        if s.name != "linewatch_build_info" {
            assert!(s.value == "0" || s.value == "0.0", "{s:?}");
        }
    }
    assert_eq!(
        series(&samples, "linewatch_top_section_requests"),
        [("(other)".to_owned(), 0)]
    );
    assert!(series(&samples, "linewatch_requests_total").is_empty());
}

#[test]
fn start_time_before_the_epoch_is_negative() {
    let view = MetricsView {
        created: UNIX_EPOCH - Duration::from_secs(5),
        ..MetricsView::default()
    };
    let (_, samples) = parsed(&view);
    let start = samples
        .iter()
        .find(|s| s.name == "linewatch_start_time_seconds")
        .map(|s| s.value.clone());
    assert_eq!(start.as_deref(), Some("-5.0"));
}

/// Parses with prometheus_client's OpenMetrics parser; prints one JSON line per sample:
/// `[family, type, name, labels, value]`.
const PY_PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = sys.stdin.buffer.read().decode("utf-8")
for f in text_string_to_metric_families(text):
    for s in f.samples:
        print(json.dumps([f.name, f.type, s.name, s.labels, repr(s.value)]))
"#;

#[test]
fn parses_with_the_python_openmetrics_parser() {
    let Some(py) = linewatch_testkit::tools::python_with("prometheus_client.openmetrics.parser")
    else {
        linewatch_testkit::tools::skip_or_fail(
            "python3 with prometheus_client (Debian: python3-prometheus-client) not found: \
             the OpenMetrics parse check",
        );
        return;
    };
    for view in [rich(), hostile(), MetricsView::default(), with_top_by()] {
        let text = render(&view);
        let mut child = Command::new(py)
            .args(["-c", PY_PARSE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{py}: {e}"));
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(text.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            out.status.success(),
            "the OpenMetrics parser rejected:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (types, samples) = parsed(&view);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<serde_json::Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        // The parser saw every sample (it drops a repeated label set silently), each in the
        // family and type declared, with the label values read back as ours.
        assert_eq!(rows.len(), samples.len(), "{stdout}");
        for (row, s) in rows.iter().zip(&samples) {
            assert_eq!(row[2], s.name.as_str());
            let family = &row[0].as_str().unwrap_or_default();
            let ty = types.iter().find(|t| t.0 == *family).map(|t| t.1.as_str());
            assert_eq!(row[1].as_str(), ty, "{row}");
            for (k, v) in &s.labels {
                assert_eq!(row[3][k], v.as_str(), "{row}");
            }
        }
    }
}

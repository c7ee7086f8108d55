//! OpenMetrics 1.0 text for Prometheus (`--metrics ADDR`).
//!
//! The engine fills a [`MetricsView`] (plain data, once per second); [`render`] turns it into
//! the exposition served on each scrape, through `prometheus-client`'s text encoder.
//!
//! # Metric families
//!
//! Every name starts with `linewatch_`. Counters are counts since linewatch started and never
//! go down while it runs (a restart is a reset, which `rate()` handles, and
//! `linewatch_start_time_seconds` tells when it happened).
//!
//! | family | type | labels | what |
//! |---|---|---|---|
//! | `linewatch_build_info` | info | `version` | the linewatch version |
//! | `linewatch_start_time_seconds` | gauge | | when linewatch started (unix seconds) |
//! | `linewatch_packets_total` | counter | | packets read from the source |
//! | `linewatch_captured_bytes_total` | counter | | bytes of those packets as captured |
//! | `linewatch_kernel_drops_total` | counter | | frames the kernel dropped before linewatch read them |
//! | `linewatch_requests_total` | counter | `method` | HTTP requests by method (`GET`, ..., `other`) |
//! | `linewatch_responses_total` | counter | `class` | HTTP responses by status class (`1xx` .. `5xx`, `other`) |
//! | `linewatch_top_section_requests` | gauge | `section` | requests since start of the current top sections, plus `(other)` |
//! | `linewatch_top_host_requests` | gauge | `host` | the same for hosts |
//! | `linewatch_non_http_segments_total` | counter | | TCP payload segments on monitored ports that were not HTTP |
//! | `linewatch_malformed_messages_total` | counter | | HTTP messages that broke the grammar |
//! | `linewatch_new_connections_total` | counter | | TCP SYNs without ACK |
//! | `linewatch_scan_alerts_total` | counter | | port-scan alerts raised |
//! | `linewatch_blocked_syns_total` | counter | | SYNs dropped by the XDP guard |
//! | `linewatch_blocked_sources` | gauge | | sources on the blocklist now |
//! | `linewatch_alert_active` | gauge | | 1 while the high-traffic alert is active, else 0 |
//! | `linewatch_window_requests_per_second` | gauge | | average request rate over the alert window |
//! | `linewatch_alert_threshold_requests_per_second` | gauge | | the alert threshold; absent while it is being learned |
//! | `linewatch_response_latency_seconds` | histogram | `le` | request to first response byte |
//! | `linewatch_capture_latency_seconds` | histogram | `le` | send stamp to capture (empty unless stamped) |
//!
//! Sums: `sum(linewatch_requests_total)` is the request count, and so is
//! `sum(linewatch_top_section_requests)` (and the host family) when the engine fills
//! `sections_other` (`hosts_other`) as the requests not counted under a listed key.
//!
//! # Why the top sections and hosts are gauges
//!
//! Each series holds the requests since start counted under one of the keys currently in the
//! top N, and `(other)` holds the rest, so the family sums to the total. The top N changes: a key
//! that enters it takes its count out of `(other)`, which then goes *down*. A counter that goes
//! down reads as a reset to Prometheus, and `rate()` over it would jump by the whole `(other)`
//! count; so these two families are typed gauges, as the OpenMetrics counter contract
//! (monotone) does not hold for them. Keys come and go as series; the counts of keys whose table
//! had to evict are estimates (see the engine's heavy-hitter tables). Use them as "who is big"
//! (`topk(10, linewatch_top_section_requests)`), or `delta()` over a short range for a rough
//! rate of a key that stayed in the top N. The exact totals are the counters above.
//!
//! # Label values
//!
//! Sections and hosts come off the wire. A label value is the key as text: invalid UTF-8 becomes
//! U+FFFD (lossy conversion), and so does every control character but the newline, and every
//! invisible or bidirectional format character (as [`escape`] treats them for a
//! terminal), so a `curl` of the endpoint is as safe to print as linewatch's own output. The
//! encoder writes `\` as `\\`, `"` as `\"` and a newline as `\n`, so no key can end a label
//! value, a sample or a line. An empty key is shown as `(empty)` (an empty label value means "no
//! label" to Prometheus). Keys that end up as the same label value, e.g. two keys that differ
//! only in invalid bytes, are one series with the sum of their counts (a family must not repeat
//! a label set); a key that reads `(other)` is counted in `(other)`.
//!
//! # Histograms
//!
//! Latencies arrive as the `(value in microseconds, count)` pairs an HDR histogram records
//! (values exact to 1%). They are put in fixed buckets, in seconds: [`LATENCY_BUCKETS_SECONDS`]
//! and `+Inf`. A value goes in the first bucket whose bound is at least the value; bucket counts
//! are cumulative, `+Inf` equals `_count`, `_sum` is `sum(value * count)` in seconds. An empty
//! histogram renders with all counts 0.
//!
//! # Not emitted
//!
//! OpenMetrics `_created` samples: `prometheus-client`'s text encoder does not write them, and
//! `linewatch_start_time_seconds` carries the same time once for all families.
//!
//! [`render`] never panics: counts saturate instead of overflowing, a non-finite rate or
//! threshold is left out (OpenMetrics has no `inf` spelling the encoder would write).

use std::collections::HashMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::escape;

/// The plain data rendered here; it lives in `linewatch-model`, where the engine fills it.
pub use linewatch_model::MetricsView;

/// Upper bounds of the latency histograms' buckets, in seconds (`+Inf` comes after).
pub const LATENCY_BUCKETS_SECONDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The same bounds in microseconds, for exact integer comparison with the recorded values.
const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// Label values of the status classes, by `status_classes` index.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];

/// Label value of the series that holds the requests outside the top N.
pub const OTHER_LABEL: &str = "(other)";

/// Label value shown for an empty key.
pub const EMPTY_LABEL: &str = "(empty)";

/// The OpenMetrics exposition of `view`: `# HELP`/`# TYPE`/`# UNIT` and samples for every
/// family in the module table, ending in `# EOF\n`.
pub fn render(view: &MetricsView) -> String {
    let registry = registry(view);
    let mut out = String::with_capacity(4096);
    match prometheus_client::encoding::text::encode(&mut out, &registry) {
        Ok(()) => out,
        // Writing into a String cannot fail, and none of the metrics here returns an error;
        // should the encoder ever do so, an empty exposition is still a valid one.
        Err(fmt::Error) => String::from("# EOF\n"),
    }
}

/// The registry of one scrape, holding its own copy of the values.
fn registry(view: &MetricsView) -> Registry {
    let mut r = Registry::with_prefix("linewatch");
    r.register(
        "build",
        "linewatch version",
        Info::new([("version", env!("CARGO_PKG_VERSION"))]),
    );
    r.register_with_unit(
        "start_time",
        "When linewatch started, in unix seconds",
        Unit::Seconds,
        ConstGauge::new(unix_seconds(view.created)),
    );
    r.register(
        "packets",
        "Packets read from the source",
        ConstCounter::new(view.packets),
    );
    r.register_with_unit(
        "captured",
        "Bytes of the packets read, as captured",
        Unit::Bytes,
        ConstCounter::new(view.bytes),
    );
    r.register(
        "kernel_drops",
        "Frames the kernel dropped before linewatch read them",
        ConstCounter::new(view.kernel_drops),
    );
    r.register(
        "requests",
        "HTTP requests by method",
        Labeled::counters(
            "method",
            merge(view.methods.iter().map(|&(m, n)| (m.as_bytes(), n)), None),
        ),
    );
    r.register(
        "responses",
        "HTTP responses by status class",
        Labeled::counters(
            "class",
            STATUS_CLASSES
                .iter()
                .zip(view.status_classes)
                .map(|(&c, n)| (c.to_owned(), n))
                .collect(),
        ),
    );
    r.register(
        "top_section_requests",
        "Requests since start under each section now in the top N, the rest under (other); a \
         gauge, as (other) goes down when a key enters the top N",
        Labeled::gauges(
            "section",
            merge(
                view.top_sections.iter().map(|(k, n)| (k.as_slice(), *n)),
                Some(view.sections_other),
            ),
        ),
    );
    r.register(
        "top_host_requests",
        "Requests since start under each host now in the top N, the rest under (other); a \
         gauge, as (other) goes down when a key enters the top N",
        Labeled::gauges(
            "host",
            merge(
                view.top_hosts.iter().map(|(k, n)| (k.as_slice(), *n)),
                Some(view.hosts_other),
            ),
        ),
    );
    r.register(
        "non_http_segments",
        "TCP payload segments on monitored ports that were not HTTP",
        ConstCounter::new(view.non_http),
    );
    r.register(
        "malformed_messages",
        "HTTP messages that broke the grammar",
        ConstCounter::new(view.malformed),
    );
    r.register(
        "new_connections",
        "TCP SYNs without ACK seen",
        ConstCounter::new(view.new_connections),
    );
    r.register(
        "scan_alerts",
        "Port-scan alerts raised",
        ConstCounter::new(view.scan_alerts),
    );
    r.register(
        "blocked_syns",
        "SYNs dropped by the XDP guard",
        ConstCounter::new(view.blocked_syns),
    );
    r.register(
        "blocked_sources",
        "Sources on the blocklist now",
        ConstGauge::new(view.blocked_sources),
    );
    r.register(
        "alert_active",
        "1 while the high-traffic alert is active, else 0",
        ConstGauge::new(u64::from(view.alert_active)),
    );
    r.register(
        "window_requests_per_second",
        "Average request rate over the alert window",
        OptionalGauge(Some(view.window_rate).filter(|v| v.is_finite())),
    );
    r.register(
        "alert_threshold_requests_per_second",
        "Request rate above which the high-traffic alert is raised; absent while learned",
        OptionalGauge(view.threshold.filter(|v| v.is_finite())),
    );
    r.register_with_unit(
        "response_latency",
        "Response latency, request to first response byte",
        Unit::Seconds,
        Histogram::from_recorded_us(&view.response_latency_us),
    );
    r.register_with_unit(
        "capture_latency",
        "Capture latency, send stamp to capture",
        Unit::Seconds,
        Histogram::from_recorded_us(&view.capture_latency_us),
    );
    r
}

/// `t` in unix seconds, negative before the epoch.
fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The label value of a key off the wire (see the module doc).
fn label_value(key: &[u8]) -> String {
    if key.is_empty() {
        return EMPTY_LABEL.to_owned();
    }
    String::from_utf8_lossy(key)
        .chars()
        .map(|c| {
            if c != '\n' && (c.is_control() || escape::is_dangerous(c)) {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect()
}

/// `(label value, count)` series of `keys`, in their order, keys with the same label value
/// summed into one; with `other`, a last [`OTHER_LABEL`] series that also takes a key reading
/// `(other)`.
fn merge<'a>(
    keys: impl Iterator<Item = (&'a [u8], u64)>,
    other: Option<u64>,
) -> Vec<(String, u64)> {
    let mut series: Vec<(String, u64)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut other_count = other;
    for (key, n) in keys {
        let value = label_value(key);
        if let Some(o) = other_count.as_mut().filter(|_| value == OTHER_LABEL) {
            *o = o.saturating_add(n);
        } else if let Some(&i) = index.get(&value) {
            if let Some(s) = series.get_mut(i) {
                s.1 = s.1.saturating_add(n);
            }
        } else {
            index.insert(value.clone(), series.len());
            series.push((value, n));
        }
    }
    if let Some(o) = other_count {
        series.push((OTHER_LABEL.to_owned(), o));
    }
    series
}

/// A family of one label, counter or gauge, with values known at scrape time.
#[derive(Debug)]
struct Labeled {
    label: &'static str,
    counter: bool,
    series: Vec<(String, u64)>,
}

impl Labeled {
    fn counters(label: &'static str, series: Vec<(String, u64)>) -> Self {
        Labeled {
            label,
            counter: true,
            series,
        }
    }

    fn gauges(label: &'static str, series: Vec<(String, u64)>) -> Self {
        Labeled {
            label,
            counter: false,
            series,
        }
    }
}

impl EncodeMetric for Labeled {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        for (value, n) in &self.series {
            let labels = [(self.label, value.as_str())];
            let mut e = encoder.encode_family(&labels)?;
            if self.counter {
                e.encode_counter::<NoLabelSet, _, u64>(n, None)?;
            } else {
                e.encode_gauge(n)?;
            }
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        if self.counter {
            MetricType::Counter
        } else {
            MetricType::Gauge
        }
    }
}

/// A gauge whose family is left out while it has no value.
#[derive(Debug)]
struct OptionalGauge(Option<f64>);

impl EncodeMetric for OptionalGauge {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        match self.0 {
            Some(v) => encoder.encode_gauge(&v),
            None => Ok(()),
        }
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// A histogram computed at scrape time: `buckets` holds each bucket's own count (the encoder
/// accumulates them), the last bound being `+Inf`.
#[derive(Debug)]
struct Histogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl Histogram {
    /// Buckets [`LATENCY_BUCKETS_SECONDS`] and `+Inf` of `(microseconds, count)` pairs.
    fn from_recorded_us(recorded: &[(u64, u64)]) -> Self {
        let mut own = [0u64; LATENCY_BUCKETS_US.len() + 1];
        let mut sum_us: u128 = 0;
        for &(value, n) in recorded {
            // The first bound >= value; past the last bound is the +Inf bucket.
            let i = LATENCY_BUCKETS_US.partition_point(|&b| b < value);
            if let Some(c) = own.get_mut(i) {
                *c = c.saturating_add(n);
            }
            sum_us = sum_us.saturating_add(u128::from(value) * u128::from(n));
        }
        // Cumulative counts saturate at u64::MAX; each bucket's own count is then the step, so
        // the encoder's running sum never overflows and `+Inf` equals `count`.
        let bounds = LATENCY_BUCKETS_SECONDS
            .iter()
            .copied()
            .chain([f64::INFINITY]);
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(own.len());
        for (bound, n) in bounds.zip(own) {
            let next = cumulative.saturating_add(n);
            buckets.push((bound, next - cumulative));
            cumulative = next;
        }
        // u128 -> f64 rounds; the sum is a float in the exposition anyway.
        #[allow(clippy::cast_precision_loss)]
        let sum = sum_us as f64 / 1e6;
        Histogram {
            sum,
            count: cumulative,
            buckets,
        }
    }
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// A Python interpreter that has `prometheus_client`: `python3` on PATH, or Debian's.
    fn python_with_parser() -> Option<&'static str> {
        ["python3", "/usr/bin/python3"].into_iter().find(|py| {
            Command::new(py)
                .args(["-c", "import prometheus_client.openmetrics.parser"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
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
        let Some(py) = python_with_parser() else {
            linewatch_testkit::tools::skip_or_fail(
                "python3 with prometheus_client (Debian: python3-prometheus-client) not found: \
                 the OpenMetrics parse check",
            );
            return;
        };
        for view in [rich(), hostile(), MetricsView::default()] {
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
}

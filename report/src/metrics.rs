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
//! | `linewatch_top_by_messages` | gauge | `by`, `key` | with `--top-by`: requests (responses, for `by="response-header:NAME"`) since start under each key now in that table's top N, plus `(other)` |
//! | `linewatch_top_by_bytes` | gauge | `by`, `key` | with `--top-by`: their bytes (head + declared body) under each listed key |
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
//! `sections_other` (`hosts_other`) as the requests not counted under a listed key; so is
//! `sum by (by) (linewatch_top_by_messages)` for each request-keyed `--top-by` table. The
//! `--top-by` families are left out without `--top-by`; there are at most the engine's table
//! count times (N + 1) series, so the label sets stay bounded.
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
    if !view.top_by.is_empty() {
        let (messages, bytes) = top_by_series(view);
        r.register(
            "top_by_messages",
            "With --top-by: requests (responses, for a response header) since start under each \
             key now in the table's top N, the rest under (other); a gauge, as (other) goes down \
             when a key enters the top N",
            Labeled2 {
                labels: ("by", "key"),
                series: messages,
            },
        );
        r.register_with_unit(
            "top_by",
            "With --top-by: bytes (head + declared body) of the messages counted under each \
             key now in the table's top N",
            Unit::Bytes,
            Labeled2 {
                labels: ("by", "key"),
                series: bytes,
            },
        );
    }
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

/// The `--top-by` families' series: `((by, key), messages)` with each table's `(other)`, and
/// `((by, key), bytes)` of the listed keys.
#[allow(clippy::type_complexity)]
fn top_by_series(
    view: &MetricsView,
) -> (Vec<((String, String), u64)>, Vec<((String, String), u64)>) {
    let mut messages = Vec::new();
    let mut bytes = Vec::new();
    for t in &view.top_by {
        let by = label_value(t.by.as_bytes());
        let counts = merge(
            t.top.iter().map(|(k, n, _)| (k.as_slice(), *n)),
            Some(t.other),
        );
        messages.extend(counts.into_iter().map(|(key, n)| ((by.clone(), key), n)));
        let sizes = merge(t.top.iter().map(|(k, _, b)| (k.as_slice(), *b)), None);
        bytes.extend(sizes.into_iter().map(|(key, n)| ((by.clone(), key), n)));
    }
    (messages, bytes)
}

/// A gauge family of two labels with values known at scrape time.
#[derive(Debug)]
struct Labeled2 {
    labels: (&'static str, &'static str),
    series: Vec<((String, String), u64)>,
}

impl EncodeMetric for Labeled2 {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), fmt::Error> {
        for ((a, b), n) in &self.series {
            let labels = [(self.labels.0, a.as_str()), (self.labels.1, b.as_str())];
            encoder.encode_family(&labels)?.encode_gauge(n)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }
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
mod tests;

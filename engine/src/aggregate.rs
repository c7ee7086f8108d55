//! The aggregator: merges closed epochs into interval and since-start tallies, runs alerting,
//! emits reports and publishes a snapshot.
//!
//! Contract: [`Aggregator::run`] takes the epochs that [`EpochCollector`] declares complete,
//! one second at a time and in order, and for each: merges the per-core deltas into the
//! since-start [`Tally`] and the current report interval's, feeds the second's request count to
//! [`AlertState`], emits a report when an interval ends, and stores a fresh [`Snapshot`] in an
//! `ArcSwap` that readers (the status line, the metrics endpoint, the dashboard) load without
//! locks. What goes into the snapshot beyond the status line's figures is built only when
//! asked for ([`AggregatorConfig::metrics`], [`AggregatorConfig::dashboard`]), once per second,
//! on this thread: the workers never pay for it.
//! It runs on its own thread and returns the final tallies when every worker has finished.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use hdrhistogram::Histogram;
use linewatch_model::{
    AlertKind, AlertRecord, Breakdown, ConsoleView, MetricsView, Percentiles, Report, Retained,
    SectionHosts, StatusLine, TopByKey, TopByMetrics, TopByTable, TopEntry,
};
use linewatch_parser::http::Method;

use crate::alert::{AlertConfig, AlertState, AlertTransition};
use crate::counters::{key_addr, CoreDelta, Counter, SynRecord, Tally};
use crate::epoch::EpochCollector;
use crate::retention::Retention;
use crate::scan::{Blocker, ScanConfig, ScanDetector, ScanEvent, ScanStats};
use crate::topn::HeavyHitters;
use crate::worker::time_of;

pub use crate::counters::{INTERVAL_TABLE_CAPACITY, TOTAL_TABLE_CAPACITY};

/// Port-scan alerts kept in the history; older ones are dropped (and counted).
pub const SCAN_HISTORY_CAP: usize = 1024;

/// Keys per table in the dashboard's view: more than a screen shows, so that its filter has
/// keys to narrow to.
pub const CONSOLE_TOP: usize = 100;

/// Seconds of request rate the dashboard's view keeps at most (the alert window's, up to
/// this): a chart is at most a few hundred columns wide.
pub const CONSOLE_RATE_SECONDS: usize = 900;

/// Alerts the dashboard's view carries (the newest).
pub const CONSOLE_ALERTS: usize = 50;

/// How long the aggregator sleeps when nothing wakes it: bounds the delay of a report or
/// alert after the last worker retired its epoch.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// Method names in counter order, as reports and JSON show them.
pub const METHOD_NAMES: [&str; Method::ALL.len()] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "other",
];

impl Tally {
    /// The report view of this tally: top `top_n` keys per dimension.
    pub fn breakdown(&self, top_n: usize) -> Breakdown {
        let mut methods: Vec<(&'static str, u64)> = METHOD_NAMES
            .iter()
            .zip(self.methods)
            .filter(|(_, n)| *n > 0)
            .map(|(name, n)| (*name, n))
            .collect();
        methods.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let status: Vec<(u16, u64)> = self
            .status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(code, n)| Some((u16::try_from(code).ok()?, *n)))
            .collect();
        let mut status_classes = [0u64; 6];
        for &(code, n) in &status {
            let class = usize::from(code / 100).saturating_sub(1).min(5);
            status_classes[class] += n;
        }
        let sections = self.sections.top(top_n);
        // One pass over the (section, host) pairs, largest first: each pair goes to its
        // section's list if that section is shown and the list is not full yet.
        let mut shown: std::collections::HashMap<&[u8], usize> = sections
            .iter()
            .enumerate()
            .map(|(i, s)| (s.key.as_slice(), i))
            .collect();
        let mut hosts_of: Vec<Vec<TopEntry>> = vec![Vec::new(); sections.len()];
        if !shown.is_empty() {
            for pair in self.section_hosts.top(self.section_hosts.capacity()) {
                let Some(nul) = pair.key.iter().position(|&b| b == 0) else {
                    continue;
                };
                let Some(&i) = shown.get(&pair.key[..nul]) else {
                    continue;
                };
                if hosts_of[i].len() < top_n {
                    hosts_of[i].push(TopEntry {
                        key: pair.key[nul + 1..].to_vec(),
                        ..pair
                    });
                }
            }
        }
        shown.clear();
        let section_hosts = sections
            .iter()
            .zip(hosts_of)
            .map(|(s, hosts)| SectionHosts {
                section: s.clone(),
                hosts,
            })
            .collect();
        Breakdown {
            seconds: self.seconds,
            requests: self.get(Counter::Requests),
            responses: self.get(Counter::Responses),
            request_bytes: self.get(Counter::RequestBytes),
            methods,
            status,
            status_classes,
            sections,
            section_hosts,
            hosts: self.hosts.top(top_n),
            user_agents: self.user_agents.top(top_n),
            connections: self.get(Counter::NewConnections),
            connection_sources: self
                .conn_sources
                .top(top_n)
                .into_iter()
                .map(address_entry)
                .collect(),
            connection_ports: self
                .conn_ports
                .top(top_n)
                .into_iter()
                .map(port_entry)
                .collect(),
            retained: None,
            top_by: self
                .top_by
                .iter()
                .map(|(by, table)| TopByTable {
                    by: by.clone(),
                    total: table.total(),
                    entries: top_by_entries(by, table, top_n),
                })
                .collect(),
        }
    }
}

/// An entry keyed by an address ([`crate::counters::addr_key`]) with the address as text.
fn address_entry(e: TopEntry) -> TopEntry {
    TopEntry {
        key: key_addr(&e.key).map_or_else(|| b"?".to_vec(), |a| a.to_string().into_bytes()),
        ..e
    }
}

/// An entry keyed by a port (2 bytes, big-endian) with the port as text.
fn port_entry(e: TopEntry) -> TopEntry {
    TopEntry {
        key: <[u8; 2]>::try_from(e.key.as_slice()).map_or_else(
            |_| b"?".to_vec(),
            |p| u16::from_be_bytes(p).to_string().into_bytes(),
        ),
        ..e
    }
}

/// The top `top_n` entries of a `--top-by` table, keys as text.
fn top_by_entries(by: &TopByKey, table: &HeavyHitters, top_n: usize) -> Vec<TopEntry> {
    let top = table.top(top_n).into_iter();
    match by {
        TopByKey::Client | TopByKey::Server => top.map(address_entry).collect(),
        TopByKey::Port => top.map(port_entry).collect(),
        TopByKey::Header(_) | TopByKey::ResponseHeader(_) => top.collect(),
    }
}

/// Percentiles of a histogram, for the summary.
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// What readers see of the aggregator's state, replaced whole once per closed second.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The last closed second (unix seconds), 0 before the first.
    pub second: u64,
    /// Packets in that second.
    pub pps: u64,
    /// Requests in that second.
    pub rps: u64,
    /// Packets so far.
    pub packets: u64,
    /// Requests so far.
    pub requests: u64,
    /// Responses so far.
    pub responses: u64,
    /// Packets dropped before linewatch saw them.
    pub drops: u64,
    /// Average requests/s over the alert window.
    pub window_rate: f64,
    /// The alert threshold (`None` while learning a baseline).
    pub threshold: Option<f64>,
    /// An alert is active.
    pub alert_active: bool,
    /// The top section of the current report interval.
    pub top_section: Option<Vec<u8>>,
    /// The OpenMetrics view of everything since start, when asked for
    /// ([`AggregatorConfig::metrics`]).
    pub metrics: Option<Arc<MetricsView>>,
    /// The dashboard's view, when asked for ([`AggregatorConfig::dashboard`]).
    pub console: Option<Arc<ConsoleView>>,
}

impl Snapshot {
    /// The status line's view of this snapshot.
    pub fn status_line(&self) -> StatusLine {
        StatusLine {
            now: time_of(self.second.saturating_mul(1_000_000_000)),
            pps: self.pps,
            rps: self.rps,
            drops: self.drops,
            window_rate: self.window_rate,
            threshold: self.threshold,
            alert_active: self.alert_active,
            top_section: self.top_section.clone(),
        }
    }
}

/// Where the aggregator's events go (the binary prints them; tests record them).
pub trait Output: Send {
    /// An alert (high traffic or port scan) was raised or recovered; `history` holds the
    /// alerts of its kind so far.
    fn alert(&mut self, transition: &AlertTransition, history: &[AlertRecord]);
    /// A report interval ended.
    fn report(&mut self, report: &Report);
    /// An allow-listed source reached the port-scan threshold: logged, not flagged.
    fn allowed_scan(&mut self, source: IpAddr, ports: u32, window_secs: u64, at: u64) {
        let _ = (source, ports, window_secs, at);
    }
    /// Something the operator should know that is not an alert (a block that failed).
    fn notice(&mut self, text: &str) {
        let _ = text;
    }
}

/// Aggregator settings.
#[derive(Debug, Clone)]
pub struct AggregatorConfig {
    /// Alerting.
    pub alert: AlertConfig,
    /// Seconds per report (at least 1).
    pub report_interval_secs: u64,
    /// Keys shown per dimension in reports.
    pub top_n: usize,
    /// Port-scan detection.
    pub scan: ScanConfig,
    /// Publish a [`MetricsView`] with every snapshot (`--metrics`).
    pub metrics: bool,
    /// Publish a [`ConsoleView`] with every snapshot (`--dashboard`).
    pub dashboard: bool,
    /// The `--top-by` tables' keys, as the workers count them.
    pub top_by: Vec<TopByKey>,
    /// `--retention`: the since-start breakdown of reports and the summary covers only the
    /// last this many seconds ([`crate::retention`]).
    pub retention_secs: Option<u64>,
}

/// What the aggregator hands back when all input is done.
#[derive(Debug)]
pub struct Aggregated {
    /// Everything since start.
    pub total: Tally,
    /// Every alert, oldest first.
    pub alerts: Vec<AlertRecord>,
    /// Alerts dropped from the bounded history.
    pub alerts_dropped: u64,
    /// First and last closed second with traffic.
    pub first_second: Option<u64>,
    /// Last closed second.
    pub last_second: Option<u64>,
    /// The port-scan detector's counters.
    pub scan: ScanStats,
    /// SYNs the blocker dropped (0 without one).
    pub blocked_syns: u64,
    /// With `--retention`: the retained stretch's breakdown, all of its keys listed.
    pub retained: Option<Breakdown>,
}

impl Aggregated {
    /// Seconds from the first closed second to the last, both included.
    pub fn span_seconds(&self) -> u64 {
        span(self.first_second, self.last_second)
    }
}

/// Adds second `epoch`'s `requests` to `history`, after a 0 for each quiet second since
/// `previous`, keeping the last `keep` seconds.
fn push_rate(
    history: &mut VecDeque<u64>,
    keep: usize,
    previous: Option<u64>,
    epoch: u64,
    requests: u64,
) {
    let quiet = previous.map_or(0, |p| epoch.saturating_sub(p).saturating_sub(1));
    let quiet = usize::try_from(quiet).unwrap_or(usize::MAX).min(keep);
    for rate in std::iter::repeat_n(0, quiet).chain([requests]) {
        if history.len() == keep {
            history.pop_front();
        }
        if keep > 0 {
            history.push_back(rate);
        }
    }
}

/// Seconds from `first` to `last`, both included; 0 before any second closed.
fn span(first: Option<u64>, last: Option<u64>) -> u64 {
    match (first, last) {
        (Some(first), Some(last)) => last.saturating_sub(first) + 1,
        _ => 0,
    }
}

/// The aggregator. See the module doc.
pub struct Aggregator {
    collector: EpochCollector,
    state: State,
}

impl std::fmt::Debug for Aggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aggregator")
            .field("collector", &self.collector)
            .finish_non_exhaustive()
    }
}

struct State {
    config: AggregatorConfig,
    total: Tally,
    interval: Tally,
    interval_index: Option<u64>,
    interval_end: u64,
    alert: AlertState,
    snapshot: Arc<ArcSwap<Snapshot>>,
    output: Box<dyn Output>,
    first_second: Option<u64>,
    last_second: Option<u64>,
    drops: Option<Arc<AtomicU64>>,
    scan: ScanDetector,
    /// Port-scan alerts, oldest first (bounded like the high-traffic history).
    scan_history: Vec<AlertRecord>,
    scan_history_dropped: u64,
    blocker: Option<Box<dyn Blocker>>,
    /// The second's new connections of every core, merged in time order.
    syns: Vec<SynRecord>,
    /// When the aggregator was built (the metrics' start time).
    started: SystemTime,
    /// With the dashboard: requests per closed second, the last `rate_seconds`, oldest first.
    rate_history: VecDeque<u64>,
    /// Seconds the rate history keeps: the alert window, at most [`CONSOLE_RATE_SECONDS`].
    rate_seconds: usize,
    /// `--retention`'s buckets.
    retention: Option<Retention>,
}

impl Aggregator {
    /// An aggregator over `collector`, publishing into `snapshot`, sending events to `output`.
    pub fn new(
        collector: EpochCollector,
        config: AggregatorConfig,
        snapshot: Arc<ArcSwap<Snapshot>>,
        output: Box<dyn Output>,
    ) -> Aggregator {
        let alert = AlertState::new(config.alert.clone());
        let scan = ScanDetector::new(config.scan.clone());
        let rate_seconds = if config.dashboard {
            (config.alert.window_secs.max(1) as usize).min(CONSOLE_RATE_SECONDS)
        } else {
            0
        };
        let mut total = Tally::new(TOTAL_TABLE_CAPACITY);
        total.add_top_by(&config.top_by, TOTAL_TABLE_CAPACITY);
        let mut interval = Tally::new(INTERVAL_TABLE_CAPACITY);
        interval.add_top_by(&config.top_by, INTERVAL_TABLE_CAPACITY);
        let retention = config
            .retention_secs
            .map(|secs| Retention::new(secs, &config.top_by));
        Aggregator {
            collector,
            state: State {
                config,
                total,
                interval,
                interval_index: None,
                interval_end: 0,
                alert,
                snapshot,
                output,
                first_second: None,
                last_second: None,
                drops: None,
                scan,
                scan_history: Vec::new(),
                scan_history_dropped: 0,
                blocker: None,
                syns: Vec::new(),
                started: SystemTime::now(),
                rate_history: VecDeque::with_capacity(rate_seconds),
                rate_seconds,
                retention,
            },
        }
    }

    /// Live capture with `--block-scanners`: flagged sources are blocked through `blocker`
    /// (and unblocked when their flag expires).
    pub fn with_blocker(mut self, blocker: Box<dyn Blocker>) -> Aggregator {
        self.state.blocker = Some(blocker);
        self
    }

    /// Live capture: the status line shows `drops`, the capture's running count of frames
    /// the kernel dropped before linewatch saw them.
    pub fn with_drops(mut self, drops: Arc<AtomicU64>) -> Aggregator {
        self.state.drops = Some(drops);
        self
    }

    /// Merges epochs as they complete until every worker has finished (call on the thread
    /// whose handle the workers unpark).
    pub fn run(mut self) -> Aggregated {
        loop {
            // Read "all finished" before collecting, never after (see `all_finished`).
            let done = self.collector.all_finished();
            let state = &mut self.state;
            self.collector
                .collect(|epoch, deltas| state.close(epoch, deltas));
            if done {
                break;
            }
            std::thread::park_timeout(IDLE_WAIT);
        }
        let blocked_syns = self.state.blocker.as_ref().map_or(0, |b| b.dropped());
        let retained = self.state.retained(TOTAL_TABLE_CAPACITY);
        Aggregated {
            retained,
            alerts: self.state.all_alerts(),
            alerts_dropped: self.state.alert.dropped_history() + self.state.scan_history_dropped,
            total: self.state.total,
            first_second: self.state.first_second,
            last_second: self.state.last_second,
            scan: self.state.scan.stats,
            blocked_syns,
        }
    }
}

impl State {
    fn close(&mut self, epoch: u64, deltas: &[&CoreDelta]) {
        let interval = self.config.report_interval_secs.max(1);
        let previous = self.last_second;
        let first = *self.first_second.get_or_insert(epoch);
        let index = epoch.saturating_sub(first) / interval;
        match self.interval_index {
            Some(current) if current != index => {
                self.emit_report();
                self.interval.clear();
                self.interval_index = Some(index);
            }
            None => self.interval_index = Some(index),
            _ => {}
        }
        self.interval_end = first + (index + 1) * interval - 1;

        let (mut packets, mut requests) = (0, 0);
        for d in deltas {
            self.total.merge(&d.tally);
            self.interval.merge(&d.tally);
            packets += d.get(Counter::Packets);
            requests += d.get(Counter::Requests);
        }
        self.total.seconds += 1;
        self.interval.seconds += 1;
        if let Some(r) = self.retention.as_mut() {
            r.add(epoch, deltas.iter().map(|d| &d.tally));
        }
        self.last_second = Some(epoch);

        let output = &mut self.output;
        let mut transitions = Vec::new();
        self.alert
            .close_second(epoch, requests, |t| transitions.push(t));
        for t in &transitions {
            output.alert(t, self.alert.history());
        }
        self.scan_second(epoch, deltas);

        let metrics = self.config.metrics.then(|| Arc::new(self.metrics_view()));
        let console = self.config.dashboard.then(|| {
            self.note_rate(previous, epoch, requests);
            Arc::new(self.console_view())
        });
        self.snapshot.store(Arc::new(Snapshot {
            second: epoch,
            pps: packets,
            rps: requests,
            packets: self.total.get(Counter::Packets),
            requests: self.total.get(Counter::Requests),
            responses: self.total.get(Counter::Responses),
            // Relaxed: a gauge for display; nothing else is read through it.
            drops: self.drops.as_ref().map_or(0, |d| d.load(Ordering::Relaxed)),
            window_rate: self.alert.window_rate(),
            threshold: self.alert.threshold(),
            alert_active: self.alert.is_active(),
            top_section: self
                .interval
                .sections
                .top(1)
                .into_iter()
                .next()
                .map(|e| e.key),
            metrics,
            console,
        }));

        // A report goes out as soon as the last second of its interval closes.
        if epoch == self.interval_end {
            self.emit_report();
            self.interval.clear();
            self.interval_index = Some(index + 1);
        }
    }

    /// Runs port-scan detection over the second's new connections, in packet-time order,
    /// then expires flags whose time is up at the second's end.
    fn scan_second(&mut self, epoch: u64, deltas: &[&CoreDelta]) {
        self.syns.clear();
        for d in deltas {
            self.syns.extend_from_slice(&d.syns);
        }
        // Stable: one core's records keep their order; cores interleave by time.
        self.syns.sort_by_key(|r| r.ts);
        let mut events = Vec::new();
        self.scan.observe(&self.syns, |e| events.push(e));
        self.scan
            .expire((epoch + 1).saturating_mul(1_000_000_000), |e| {
                events.push(e)
            });
        for e in events {
            self.scan_event(e);
        }
    }

    fn scan_event(&mut self, event: ScanEvent) {
        let window_secs = self.scan.config().window_secs;
        match event {
            ScanEvent::Flagged { source, ts, ports } => {
                let blocked = match self.blocker.as_mut() {
                    Some(b) => match b.block(source) {
                        Ok(()) => true,
                        Err(e) => {
                            self.output
                                .notice(&format!("cannot block port scanner {source}: {e}"));
                            false
                        }
                    },
                    None => false,
                };
                let record = AlertRecord {
                    kind: AlertKind::PortScan,
                    triggered_at: time_of(ts),
                    value: f64::from(ports),
                    threshold: f64::from(self.scan.config().ports),
                    recovered_at: None,
                    recovered_value: None,
                    window_secs,
                    source: Some(source),
                    blocked,
                };
                if self.scan_history.len() == SCAN_HISTORY_CAP {
                    self.scan_history.remove(0);
                    self.scan_history_dropped += 1;
                }
                self.scan_history.push(record.clone());
                self.output
                    .alert(&AlertTransition::Raised(record), &self.scan_history);
            }
            ScanEvent::Expired { source, ts } => {
                if let Some(b) = self.blocker.as_mut() {
                    if let Err(e) = b.unblock(source) {
                        self.output.notice(&format!("cannot unblock {source}: {e}"));
                    }
                }
                let record = self
                    .scan_history
                    .iter_mut()
                    .rev()
                    .find(|r| r.source == Some(source) && r.recovered_at.is_none());
                if let Some(record) = record {
                    record.recovered_at = Some(time_of(ts));
                    let record = record.clone();
                    self.output
                        .alert(&AlertTransition::Recovered(record), &self.scan_history);
                }
            }
            ScanEvent::Allowed { source, ts, ports } => {
                self.output.allowed_scan(source, ports, window_secs, ts);
            }
        }
    }

    /// Sources on the blocklist now (0 without blocking).
    fn blocked_sources(&self) -> u64 {
        if self.blocker.is_some() {
            self.scan.flagged_now() as u64
        } else {
            0
        }
    }

    /// The OpenMetrics view of the since-start tally. Top sections and hosts are counted by
    /// their guaranteed lower bound, the rest under `other`, so each family sums to requests.
    fn metrics_view(&self) -> MetricsView {
        let t = &self.total;
        let top_n = self.config.top_n;
        let requests = t.get(Counter::Requests);
        let top = |table: &crate::topn::HeavyHitters| {
            let list: Vec<(Vec<u8>, u64)> = table
                .top(top_n)
                .into_iter()
                .map(|e| {
                    let n = e.lower_bound();
                    (e.key, n)
                })
                .collect();
            let listed: u64 = list.iter().map(|(_, n)| n).sum();
            let other = requests.saturating_sub(listed);
            (list, other)
        };
        let (top_sections, sections_other) = top(&t.sections);
        let (top_hosts, hosts_other) = top(&t.hosts);
        let top_by = t
            .top_by
            .iter()
            .map(|(by, table)| {
                let top: Vec<(Vec<u8>, u64, u64)> = top_by_entries(by, table, top_n)
                    .into_iter()
                    .map(|e| {
                        let n = e.lower_bound();
                        (e.key, n, e.bytes)
                    })
                    .collect();
                let listed: u64 = top.iter().map(|(_, n, _)| n).sum();
                TopByMetrics {
                    by: by.to_string(),
                    other: table.total().saturating_sub(listed),
                    top,
                }
            })
            .collect();
        let mut status_classes = [0u64; 6];
        for (code, n) in t.status.iter().enumerate() {
            if *n > 0 {
                status_classes[(code / 100).saturating_sub(1).min(5)] += n;
            }
        }
        let recorded = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        MetricsView {
            created: self.started,
            packets: t.get(Counter::Packets),
            bytes: t.get(Counter::Bytes),
            // Relaxed: a gauge for display; nothing else is read through it.
            kernel_drops: self.drops.as_ref().map_or(0, |d| d.load(Ordering::Relaxed)),
            requests,
            responses: t.get(Counter::Responses),
            non_http: t.get(Counter::NonHttp),
            malformed: t.get(Counter::Malformed),
            methods: METHOD_NAMES.iter().copied().zip(t.methods).collect(),
            status_classes,
            top_sections,
            sections_other,
            top_hosts,
            hosts_other,
            top_by,
            new_connections: t.get(Counter::NewConnections),
            scan_alerts: self.scan.stats.flagged,
            blocked_syns: self.blocker.as_ref().map_or(0, |b| b.dropped()),
            blocked_sources: self.blocked_sources(),
            alert_active: self.alert.is_active(),
            window_rate: self.alert.window_rate(),
            threshold: self.alert.threshold(),
            response_latency_us: recorded(&t.response_latency_us.histogram()),
            capture_latency_us: recorded(&t.capture_latency_us),
        }
    }

    /// Adds `epoch`'s requests to the rate history, with a 0 for each quiet second since
    /// `previous` (the last closed second), keeping the last `rate_seconds`.
    fn note_rate(&mut self, previous: Option<u64>, epoch: u64, requests: u64) {
        push_rate(
            &mut self.rate_history,
            self.rate_seconds,
            previous,
            epoch,
            requests,
        );
    }

    /// The dashboard's view of everything since start (see [`ConsoleView`]).
    fn console_view(&self) -> ConsoleView {
        let t = &self.total;
        // With `--retention` the tables cover what the reports' since-start part covers.
        let total = self.retained(CONSOLE_TOP).unwrap_or_else(|| {
            let mut b = t.breakdown(CONSOLE_TOP);
            b.seconds = span(self.first_second, self.last_second);
            b
        });
        let alerts = self.all_alerts();
        ConsoleView {
            total,
            rate_history: self.rate_history.iter().copied().collect(),
            window_secs: u64::from(self.config.alert.window_secs.max(1)),
            alerts: alerts[alerts.len().saturating_sub(CONSOLE_ALERTS)..].to_vec(),
            scanners: self.scan.stats.flagged,
            response_latency_us: percentiles(&t.response_latency_us.histogram()),
            capture_latency_us: percentiles(&t.capture_latency_us),
            bytes: t.get(Counter::Bytes),
        }
    }

    /// With `--retention`: the breakdown of the retained stretch, `top_n` keys per table.
    fn retained(&self, top_n: usize) -> Option<Breakdown> {
        let r = self.retention.as_ref()?;
        let first = self.first_second?;
        let since = r.covers_from(first)?;
        let mut b = r.view().breakdown(top_n);
        b.seconds = span(Some(since), self.last_second);
        b.retained = Some(Retained {
            retention_secs: r.retention_secs(),
            since: time_of(since.saturating_mul(1_000_000_000)),
        });
        Some(b)
    }

    /// Every alert of both kinds, in the order raised.
    fn all_alerts(&self) -> Vec<AlertRecord> {
        let mut all: Vec<AlertRecord> = self
            .alert
            .history()
            .iter()
            .chain(&self.scan_history)
            .cloned()
            .collect();
        all.sort_by_key(|a| a.triggered_at);
        all
    }

    fn emit_report(&mut self) {
        if self.interval.seconds == 0 {
            return;
        }
        let top_n = self.config.top_n;
        let history = self.all_alerts();
        let recent = history[history.len().saturating_sub(5)..].to_vec();
        // Rates are per second of packet time: an interval spans its full length and the
        // total everything since the first second, quiet seconds included.
        let mut interval = self.interval.breakdown(top_n);
        interval.seconds = self.config.report_interval_secs.max(1);
        let total = self.retained(top_n).unwrap_or_else(|| {
            let mut total = self.total.breakdown(top_n);
            total.seconds = span(self.first_second, self.last_second);
            total
        });
        let report = Report {
            at: time_of(self.last_second.unwrap_or(0).saturating_mul(1_000_000_000)),
            interval,
            total,
            recent_alerts: recent,
        };
        self.output.report(&report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_history_keeps_the_window_with_quiet_seconds_as_zero() {
        let mut h = VecDeque::new();
        push_rate(&mut h, 5, None, 100, 7);
        push_rate(&mut h, 5, Some(100), 101, 9);
        // Seconds 102 and 103 had no packets: zeros.
        push_rate(&mut h, 5, Some(101), 104, 4);
        assert_eq!(h.iter().copied().collect::<Vec<_>>(), [7, 9, 0, 0, 4]);
        push_rate(&mut h, 5, Some(104), 105, 1);
        assert_eq!(h.iter().copied().collect::<Vec<_>>(), [9, 0, 0, 4, 1]);
        // A gap longer than the window leaves only zeros and the new second.
        push_rate(&mut h, 5, Some(105), 1_000_000, 3);
        assert_eq!(h.iter().copied().collect::<Vec<_>>(), [0, 0, 0, 0, 3]);
        // Without the dashboard nothing is kept.
        let mut none = VecDeque::new();
        push_rate(&mut none, 0, Some(1), 9, 3);
        assert!(none.is_empty());
    }
}

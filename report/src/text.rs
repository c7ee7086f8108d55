//! The periodic report and the exit summary, as text for a terminal.
//!
//! Contract: every string that came off the wire (keys, and the source name) goes through
//! [`escape`], so the text holds no control byte but `\n`. Lists are in aligned columns (key,
//! requests, share of the span's requests, bytes) that fit 80 columns. A count shown as `~N` is
//! an estimate from a full top-N table (the true count lies between `N - error` and `N`); a key
//! ending in `...` is longer than shown (cut at the engine's cap or to fit the column). A legend
//! under the text says so whenever one of them appears.

use std::fmt::Write as _;
use std::time::Duration;

use linewatch_model::{Breakdown, Capture, Guard, LatencyTable, Report, Summary, TopEntry};

use crate::alert;
use crate::escape;
use crate::time::format_time;
use crate::units;

/// Key column width: most sections and host names fit, and the line stays within 80 columns.
const KEY_WIDTH: usize = 40;

/// Count column width: up to `~` and 9 digits before the columns shift.
const COUNT_WIDTH: usize = 10;

/// Share column width: `100.0%`.
const SHARE_WIDTH: usize = 6;

/// Bytes column width: `999.9 kB`.
const BYTES_WIDTH: usize = 9;

/// Indent of a list row; a section's hosts go one step further in.
const ROW_INDENT: usize = 4;

/// Extra indent of a section's hosts under it.
const HOST_INDENT: usize = 4;

/// Hosts shown under each top section: enough to see who asks for it, short enough that the
/// report still fits a screen.
const HOSTS_PER_SECTION: usize = 3;

/// Alerts kept on screen (SPEC section 4: "last 5 with times").
const RECENT_ALERTS: usize = 5;

/// Which markers the text used, so the legend explains just those.
#[derive(Default)]
struct Marks {
    approximate: bool,
    cut: bool,
    top_by: bool,
}

impl Marks {
    fn legend(&self, out: &mut String) {
        if self.approximate {
            out.push_str(
                "~N: estimated by a full top-N table; the true count is between N - error and N\n",
            );
        }
        if self.cut {
            let _ = writeln!(
                out,
                "{}: the key is longer than shown (cut at the length cap or to fit the column)",
                escape::CUT_MARKER
            );
        }
        if self.top_by {
            out.push_str(
                "top by KEY: bytes = head + declared body of the requests (responses) counted\n\
                 top by header: `-` counts the messages without that header\n",
            );
        }
    }
}

/// Appends `n` spaces.
fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Appends the escaped key cut to `width` columns, a cut marker when the engine cut it, and
/// spaces up to `width`.
fn push_key(out: &mut String, entry: &TopEntry, width: usize, marks: &mut Marks) {
    let (used, cut) = if entry.key.is_empty() {
        out.push_str("\"\"");
        (2, false)
    } else if entry.truncated {
        let (used, cut) = escape::terminal_cut(
            &entry.key,
            width.saturating_sub(escape::CUT_MARKER.len()),
            out,
        );
        if cut {
            (used, true)
        } else {
            out.push_str(escape::CUT_MARKER);
            (used + escape::CUT_MARKER.len(), true)
        }
    } else {
        escape::terminal_cut(&entry.key, width, out)
    };
    marks.cut |= cut;
    pad(out, width.saturating_sub(used));
}

/// `part` as a percentage of `whole`, or `-` when the span had no requests.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "-".to_owned()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// Appends one list row: key, count (`~` when estimated), share of `requests`, bytes.
fn push_row(out: &mut String, indent: usize, entry: &TopEntry, requests: u64, marks: &mut Marks) {
    pad(out, indent);
    let key_width = (ROW_INDENT + KEY_WIDTH).saturating_sub(indent);
    push_key(out, entry, key_width, marks);
    let count = if entry.is_approximate() {
        marks.approximate = true;
        format!("~{}", entry.count)
    } else {
        entry.count.to_string()
    };
    let _ = writeln!(
        out,
        "  {count:>COUNT_WIDTH$}  {:>SHARE_WIDTH$}  {:>BYTES_WIDTH$}",
        share(entry.count, requests),
        units::bytes(entry.bytes),
    );
}

/// Appends a list title with the column headings, aligned over [`push_row`]'s columns.
fn push_list_title(out: &mut String, title: &str) {
    push_title(out, title, "requests");
}

/// [`push_list_title`] with `counted` over the count column.
fn push_title(out: &mut String, title: &str, counted: &str) {
    out.push_str("  ");
    out.push_str(title);
    pad(
        out,
        (ROW_INDENT + KEY_WIDTH).saturating_sub(2 + title.len()),
    );
    let _ = writeln!(
        out,
        "  {:>COUNT_WIDTH$}  {:>SHARE_WIDTH$}  {:>BYTES_WIDTH$}",
        counted, "share", "bytes"
    );
}

/// Appends the `--top-by` tables, each with its share of what it counted.
fn push_top_by(out: &mut String, b: &Breakdown, top_n: usize, marks: &mut Marks) {
    for t in &b.top_by {
        marks.top_by = true;
        let counted = if t.by.is_response() {
            "responses"
        } else {
            "requests"
        };
        push_title(out, &format!("top by {}", t.by), counted);
        if t.entries.is_empty() || top_n == 0 {
            pad(out, ROW_INDENT);
            out.push_str("(none)\n");
            continue;
        }
        for e in t.entries.iter().take(top_n) {
            push_row(out, ROW_INDENT, e, t.total, marks);
        }
    }
}

/// Appends a titled list of the first `top_n` entries.
fn push_list(
    out: &mut String,
    title: &str,
    entries: &[TopEntry],
    b: &Breakdown,
    top_n: usize,
    marks: &mut Marks,
) {
    push_list_title(out, title);
    if entries.is_empty() || top_n == 0 {
        pad(out, ROW_INDENT);
        out.push_str("(none)\n");
        return;
    }
    for e in entries.iter().take(top_n) {
        push_row(out, ROW_INDENT, e, b.requests, marks);
    }
}

/// Appends the top sections, each with its top hosts when the engine gave them. `sections`
/// decides which sections are listed (`section_hosts` may hold fewer); when it is empty, the
/// sections of `section_hosts` are.
fn push_sections(out: &mut String, b: &Breakdown, top_n: usize, marks: &mut Marks) {
    if b.section_hosts.is_empty() {
        push_list(out, "top sections", &b.sections, b, top_n, marks);
        return;
    }
    push_list_title(out, "top sections (with their top hosts)");
    let listed: Vec<&TopEntry> = if b.sections.is_empty() {
        b.section_hosts.iter().map(|sh| &sh.section).collect()
    } else {
        b.sections.iter().collect()
    };
    if listed.is_empty() || top_n == 0 {
        pad(out, ROW_INDENT);
        out.push_str("(none)\n");
        return;
    }
    for section in listed.into_iter().take(top_n) {
        push_row(out, ROW_INDENT, section, b.requests, marks);
        let hosts = b
            .section_hosts
            .iter()
            .find(|sh| sh.section.key == section.key)
            .map_or(&[][..], |sh| &sh.hosts[..]);
        for h in hosts.iter().take(HOSTS_PER_SECTION.min(top_n)) {
            push_row(out, ROW_INDENT + HOST_INDENT, h, b.requests, marks);
        }
    }
}

/// A span length for titles: `10s`, `1h 2m 3s`.
fn span(seconds: u64) -> String {
    humantime::format_duration(Duration::from_secs(seconds)).to_string()
}

/// The title of the since-start span: `since start (1h 2m)`, or with `--retention` what it
/// covers, `last 23h 10m (--retention 1day, since 2021-02-23T04:00:00Z)`.
fn total_title(b: &Breakdown) -> String {
    match &b.retained {
        None => format!("since start ({})", span(b.seconds)),
        Some(r) => format!(
            "last {} (--retention {}, since {})",
            span(b.seconds),
            span(r.retention_secs),
            format_time(r.since)
        ),
    }
}

/// Appends the counts of one span: totals, then sections, hosts, methods, status and agents.
fn push_breakdown(out: &mut String, title: &str, b: &Breakdown, top_n: usize, marks: &mut Marks) {
    let _ = writeln!(
        out,
        "{title}: {} requests ({}/s), {} responses, {} of requests",
        b.requests,
        units::short_rate(units::per_second(b.requests, b.seconds)),
        b.responses,
        units::bytes(b.request_bytes),
    );
    push_sections(out, b, top_n, marks);
    push_list(out, "top hosts", &b.hosts, b, top_n, marks);

    out.push_str("  methods        ");
    if b.methods.is_empty() {
        out.push_str(" (none)");
    }
    for (name, n) in &b.methods {
        out.push(' ');
        escape::terminal(name.as_bytes(), out);
        let _ = write!(out, " {n}");
    }
    out.push('\n');

    out.push_str("  status classes ");
    let names = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    for (name, n) in names.iter().zip(b.status_classes.iter()) {
        let _ = write!(out, " {name} {n}");
    }
    if b.status_classes[5] > 0 {
        let _ = write!(out, " other {}", b.status_classes[5]);
    }
    out.push('\n');

    if !b.status.is_empty() && top_n > 0 {
        // The most frequent codes; ties in code order, as the engine gives them.
        let mut codes: Vec<(u16, u64)> = b.status.clone();
        codes.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        out.push_str("  status codes   ");
        for (code, n) in codes.iter().take(top_n) {
            let _ = write!(out, " {code} {n}");
        }
        out.push('\n');
    }

    push_list(out, "top user agents", &b.user_agents, b, top_n, marks);
    push_top_by(out, b, top_n, marks);
    push_connections(out, b, top_n, marks);
}

/// Appends the new-connection counts: total and rate, top sources and top ports, one line each.
fn push_connections(out: &mut String, b: &Breakdown, top_n: usize, marks: &mut Marks) {
    let _ = writeln!(
        out,
        "  new connections {} ({}/s)",
        b.connections,
        units::short_rate(units::per_second(b.connections, b.seconds)),
    );
    if b.connections == 0 || top_n == 0 {
        return;
    }
    for (title, entries) in [
        ("top sources", &b.connection_sources),
        ("top ports", &b.connection_ports),
    ] {
        let _ = write!(out, "    {title:<13}");
        for e in entries.iter().take(top_n) {
            out.push(' ');
            escape::terminal(&e.key, out);
            if e.is_approximate() {
                marks.approximate = true;
                let _ = write!(out, " ~{}", e.count);
            } else {
                let _ = write!(out, " {}", e.count);
            }
        }
        out.push('\n');
    }
}

/// Appends the connection guard block of the summary.
fn push_guard(out: &mut String, g: &Guard) {
    let _ = writeln!(
        out,
        "connection guard: port scan = {} ports within {} s; allow-list {}; blocking {}",
        g.scan_ports,
        g.scan_window_secs,
        if g.allow.is_empty() {
            "empty".to_owned()
        } else {
            g.allow.join(", ")
        },
        g.blocking_on.as_ref().map_or_else(
            || "off".to_owned(),
            |on| format!("on {}", escape::terminal_string(on.as_bytes()))
        ),
    );
    for (name, n) in [
        ("new_connections", g.new_connections),
        ("scanners_flagged", g.scanners_flagged),
        ("scans_allowed", g.scans_allowed),
        ("syns_from_flagged", g.syns_from_flagged),
        ("blocked_syns", g.blocked_syns),
    ] {
        let _ = writeln!(out, "  {name:<20}{n:>16}");
    }
    for (name, n) in [
        ("connections_unlogged", g.connections_unlogged),
        ("sources_evicted", g.sources_evicted),
    ] {
        if n > 0 {
            let _ = writeln!(out, "  {name:<20}{n:>16}");
        }
    }
}

/// The periodic report: a header with the time, the interval's counts, the counts since start,
/// the recent alerts, and the legend of the markers used.
pub fn report(r: &Report, top_n: usize) -> String {
    let mut out = String::with_capacity(4096);
    let mut marks = Marks::default();
    let _ = writeln!(out, "=== linewatch report {} ===", format_time(r.at));
    push_breakdown(
        &mut out,
        &format!("last {}", span(r.interval.seconds)),
        &r.interval,
        top_n,
        &mut marks,
    );
    out.push('\n');
    push_breakdown(
        &mut out,
        &total_title(&r.total),
        &r.total,
        top_n,
        &mut marks,
    );
    out.push('\n');
    out.push_str(&alert::history(&r.recent_alerts, RECENT_ALERTS));
    marks.legend(&mut out);
    out
}

/// Appends one percentile table: title and unit, then count and the percentile rows.
fn push_latency(out: &mut String, t: &LatencyTable) {
    let _ = writeln!(out, "{}, in {}", t.title, t.unit);
    let p = &t.percentiles;
    if p.count == 0 {
        out.push_str("  no values recorded\n");
        return;
    }
    for (name, v) in [
        ("count", p.count),
        ("p50", p.p50),
        ("p90", p.p90),
        ("p99", p.p99),
        ("p99.9", p.p999),
        ("max", p.max),
    ] {
        let _ = writeln!(out, "  {name:<6}{v:>14}");
    }
}

/// The live-capture block of the summary: XDP counters and, per queue, the kernel's drop
/// counters and the worker's CPU use.
fn capture(c: &Capture, out: &mut String) {
    out.push_str("capture       ");
    escape::terminal(c.interface.as_bytes(), out);
    let _ = writeln!(
        out,
        ": XDP {} mode, {}, {:.1} s",
        c.xdp_mode,
        if c.zero_copy { "zero-copy" } else { "copy" },
        c.wall_seconds
    );
    let _ = write!(
        out,
        "  xdp: seen {}, redirected {}, not monitored {}, no socket {}",
        c.xdp_seen, c.xdp_redirected, c.xdp_other, c.xdp_no_socket
    );
    // Only when the program took fragments: the line stays as it was for everyone else.
    if c.xdp_fragments > 0 {
        let _ = write!(
            out,
            ", ip fragments {} (ahead of their first {}, unmonitored {})",
            c.xdp_fragments, c.xdp_fragments_ahead, c.xdp_fragments_unwanted
        );
    }
    out.push('\n');
    if c.copy_dropped > 0 {
        let _ = writeln!(
            out,
            "  mirror: {} copies dropped before capture (the mirror veth's rings were full)",
            c.copy_dropped
        );
    }
    if !c.pairing.is_empty() {
        out.push_str("  pairing: ");
        escape::terminal(c.pairing.as_bytes(), out);
        out.push('\n');
    }
    out.push_str(
        "  queue  core        frames  rx_dropped  ring_full  fill_empty  cpu_s   cpu%  unpaired  crossed_out  crossed_in\n",
    );
    for q in &c.queues {
        let core = q.core.map_or_else(|| "-".to_owned(), |c| c.to_string());
        let pct = if c.wall_seconds > 0.0 {
            100.0 * q.cpu_seconds / c.wall_seconds
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "  {:>5}  {:>4}  {:>12}  {:>10}  {:>9}  {:>10}  {:>5.2}  {:>5.1}  {:>8}  {:>11}  {:>10}",
            q.queue,
            core,
            q.frames,
            q.rx_dropped,
            q.rx_ring_full,
            q.fill_ring_empty,
            q.cpu_seconds,
            pct,
            q.unmatched_responses,
            q.crossed_out,
            q.crossed_in
        );
    }
}

/// The exit summary: source, a truncation notice, first and last packet, the traffic counters,
/// live capture's figures, errors by reason, the counts since start, the alert history and the
/// latency tables.
pub fn summary(s: &Summary, top_n: usize) -> String {
    let mut out = String::with_capacity(8192);
    let mut marks = Marks::default();
    out.push_str("=== linewatch summary ===\n");
    out.push_str("source        ");
    escape::terminal(s.source.as_bytes(), &mut out);
    out.push('\n');
    if s.truncated {
        out.push_str(
            "capture truncated: the file ends in the middle of a packet; counted up to the cut\n",
        );
    }
    let time_or_none =
        |t: Option<std::time::SystemTime>| t.map_or_else(|| "-".to_owned(), format_time);
    let _ = writeln!(out, "first packet  {}", time_or_none(s.first_packet));
    let _ = write!(out, "last packet   {}", time_or_none(s.last_packet));
    if let (Some(first), Some(last)) = (s.first_packet, s.last_packet) {
        if let Ok(d) = last.duration_since(first) {
            let _ = write!(out, "  (span {})", span(d.as_secs()));
        }
    }
    out.push('\n');
    if let Some(rss) = s.peak_rss_bytes {
        let _ = writeln!(out, "peak memory   {} MiB (resident)", rss / (1024 * 1024));
    }

    let t = &s.traffic;
    out.push_str("traffic\n");
    for (name, n) in [
        ("packets", t.packets),
        ("bytes", t.bytes),
        ("dropped", t.dropped),
        ("requests", s.total.requests),
        ("responses", s.total.responses),
        ("non_http", t.non_http),
        ("malformed", t.malformed),
        ("retransmitted", t.retransmitted),
        ("undecoded", t.undecoded),
        ("flows_evicted", t.flows_evicted),
        ("unmatched_responses", t.unmatched_responses),
        ("bare_lf", t.bare_lf),
    ] {
        let _ = writeln!(out, "  {name:<20}{n:>16}");
    }
    if let Some(c) = &s.capture {
        capture(c, &mut out);
    }
    if s.fragments.fragments > 0 {
        out.push_str("ip fragments\n");
        for (name, n) in s.fragments.named() {
            let _ = writeln!(out, "  {name:<20}{n:>16}");
        }
    }

    if s.errors.is_empty() {
        out.push_str("errors by reason: none\n");
    } else {
        out.push_str("errors by reason\n");
        for (reason, n) in &s.errors {
            out.push_str("  ");
            let (used, _) = escape::terminal_cut(reason.as_bytes(), 20, &mut out);
            pad(&mut out, 20usize.saturating_sub(used));
            let _ = writeln!(out, "{n:>16}");
        }
    }
    out.push('\n');

    push_breakdown(
        &mut out,
        &total_title(&s.total),
        &s.total,
        top_n,
        &mut marks,
    );
    out.push('\n');
    push_guard(&mut out, &s.guard);
    out.push('\n');
    out.push_str(&alert::history(&s.alerts, RECENT_ALERTS));
    out.push('\n');

    if s.latency.is_empty() {
        out.push_str("latency: no histograms\n");
    }
    for table in &s.latency {
        push_latency(&mut out, table);
    }
    marks.legend(&mut out);
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::alert::tests::{alert, at};
    use linewatch_model::{Fragments, Percentiles, SectionHosts, TopByKey, TopByTable, Traffic};

    pub(crate) fn entry(key: &[u8], count: u64, error: u64, truncated: bool) -> TopEntry {
        TopEntry {
            key: key.to_vec(),
            count,
            error,
            bytes: count * 100,
            truncated,
        }
    }

    pub(crate) fn breakdown() -> Breakdown {
        Breakdown {
            seconds: 10,
            requests: 100,
            responses: 98,
            request_bytes: 10_000,
            methods: vec![("GET", 90), ("POST", 10)],
            status: vec![(200, 80), (404, 15), (500, 3)],
            status_classes: [0, 80, 0, 15, 3, 0],
            sections: vec![
                entry(b"/pages", 60, 0, false),
                entry(b"/api", 30, 4, false),
                entry(b"/\x1b[31mevil\xff", 5, 0, false),
            ],
            section_hosts: vec![SectionHosts {
                section: entry(b"/pages", 60, 0, false),
                hosts: vec![
                    entry(b"example.com", 50, 0, false),
                    entry(b"other.org", 10, 0, false),
                ],
            }],
            hosts: vec![
                entry(b"example.com", 70, 0, false),
                entry(b"-", 30, 0, false),
            ],
            user_agents: vec![
                entry(b"curl/8.0", 99, 0, false),
                entry(b"averyveryverylongagent", 1, 0, true),
            ],
            connections: 40,
            connection_sources: vec![
                entry(b"10.0.0.9", 30, 0, false),
                entry(b"2001:db8::1", 10, 0, false),
            ],
            connection_ports: vec![entry(b"80", 38, 0, false), entry(b"22", 2, 0, false)],
            top_by: Vec::new(),
            retained: None,
        }
    }

    pub(crate) fn summary_model() -> Summary {
        Summary {
            source: "cap\x1bture.pcap".to_owned(),
            truncated: true,
            first_packet: Some(at(1_614_053_178)),
            last_packet: Some(at(1_614_053_778)),
            traffic: Traffic {
                packets: 1000,
                bytes: 150_000,
                dropped: 0,
                non_http: 3,
                malformed: 2,
                retransmitted: 4,
                undecoded: 5,
                flows_evicted: 6,
                unmatched_responses: 7,
                bare_lf: 8,
            },
            errors: vec![("invalid_target", 2), ("not_ip", 5)],
            total: breakdown(),
            alerts: vec![
                alert(1_614_053_200, Some(1_614_053_300)),
                alert(1_614_053_400, None),
            ],
            latency: vec![
                LatencyTable {
                    name: "response_us",
                    title: "response latency (request to first response byte)",
                    unit: "us",
                    percentiles: Percentiles {
                        count: 98,
                        p50: 120,
                        p90: 300,
                        p99: 900,
                        p999: 1500,
                        max: 2000,
                    },
                },
                LatencyTable {
                    name: "capture_us",
                    title: "capture latency",
                    unit: "us",
                    percentiles: Percentiles::default(),
                },
            ],
            peak_rss_bytes: Some(24 * 1024 * 1024),
            capture: None,
            guard: Guard {
                scan_ports: 3,
                scan_window_secs: 60,
                allow: vec!["10.0.0.1/32".to_owned()],
                blocking_on: Some("eth0".to_owned()),
                new_connections: 40,
                connections_unlogged: 0,
                scanners_flagged: 1,
                scans_allowed: 0,
                syns_from_flagged: 3,
                blocked_syns: 12,
                sources_evicted: 0,
            },
            fragments: Fragments::default(),
        }
    }

    #[test]
    fn capture_block_names_ip_fragments_only_when_the_program_took_some() {
        let mut c = Capture {
            interface: "eth0".to_owned(),
            xdp_mode: "native".to_owned(),
            xdp_seen: 10,
            xdp_redirected: 6,
            xdp_other: 4,
            ..Capture::default()
        };
        let mut out = String::new();
        capture(&c, &mut out);
        assert!(
            out.contains("  xdp: seen 10, redirected 6, not monitored 4, no socket 0\n"),
            "{out}"
        );
        c.xdp_fragments = 6;
        c.xdp_fragments_ahead = 2;
        c.xdp_fragments_unwanted = 1;
        out.clear();
        capture(&c, &mut out);
        assert!(
            out.contains("no socket 0, ip fragments 6 (ahead of their first 2, unmonitored 1)\n"),
            "{out}"
        );
    }

    fn assert_clean(text: &str) {
        for c in text.chars() {
            assert!(
                c == '\n' || !(c < ' ' || c == '\u{7f}' || escape::is_dangerous(c)),
                "control char {c:?} in:\n{text}"
            );
        }
    }

    #[test]
    fn report_shows_both_spans_with_markers() {
        let r = Report {
            at: at(1_614_053_178),
            interval: breakdown(),
            total: Breakdown {
                seconds: 3_723,
                ..breakdown()
            },
            recent_alerts: vec![alert(1_614_053_000, None)],
        };
        let text = report(&r, 10);
        assert_clean(&text);
        assert!(
            text.starts_with("=== linewatch report 2021-02-23T04:06:18Z ===\n"),
            "{text}"
        );
        assert!(
            text.contains("last 10s: 100 requests (10.0/s), 98 responses, 10.0 kB of requests"),
            "{text}"
        );
        assert!(text.contains("since start (1h 2m 3s)"), "{text}");
        assert!(text.contains("/\\x1b[31mevil\\xff"), "{text}");
        assert!(text.contains("~30"), "{text}");
        assert!(text.contains("averyveryverylongagent..."), "{text}");
        assert!(
            text.contains("status classes  1xx 0 2xx 80 3xx 0 4xx 15 5xx 3\n"),
            "{text}"
        );
        assert!(
            text.contains("status codes    200 80 404 15 500 3\n"),
            "{text}"
        );
        assert!(text.contains("methods         GET 90 POST 10\n"), "{text}");
        assert!(text.contains("Alert history (1)"), "{text}");
        assert!(text.contains("~N: estimated"), "{text}");
        // Hosts under their section, indented further, counts aligned with the section's.
        let pages = text
            .lines()
            .find(|l| l.trim_start().starts_with("/pages"))
            .expect("row");
        let host = text
            .lines()
            .find(|l| l.trim_start().starts_with("example.com"))
            .expect("row");
        assert!(host.find('e') > pages.find('/'));
        assert_eq!(pages.len(), host.len(), "columns align:\n{pages}\n{host}");
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line}");
        }
    }

    #[test]
    fn report_without_section_hosts_and_empty_spans() {
        let mut b = breakdown();
        b.section_hosts.clear();
        let r = Report {
            at: at(0),
            interval: Breakdown::default(),
            total: b,
            recent_alerts: vec![],
        };
        let text = report(&r, 2);
        assert_clean(&text);
        assert!(text.contains("last 0s: 0 requests (0.00/s)"), "{text}");
        assert!(text.contains("(none)"), "{text}");
        assert!(text.contains("  top sections "), "{text}");
        assert!(
            !text.contains("evil"),
            "top_n = 2 shows two sections:\n{text}"
        );
        assert!(text.contains("Alert history: none"), "{text}");
        assert!(text.contains("~N: estimated"), "{text}");
        let mut exact = r.clone();
        exact.total.sections.retain(|e| !e.is_approximate());
        exact.total.user_agents.retain(|e| !e.truncated);
        let text = report(&exact, 2);
        assert!(
            !text.contains("~N") && !text.contains("..."),
            "no legend without markers:\n{text}"
        );
        // top_n = 0 shows no rows at all, and does not panic.
        assert!(report(&r, 0).contains("(none)"));
    }

    #[test]
    fn fragments_are_shown_when_there_were_any() {
        let mut s = summary_model();
        let quiet = summary(&s, 5);
        assert!(!quiet.contains("ip fragments"), "{quiet}");
        s.fragments = Fragments {
            fragments: 9,
            reassembled: 3,
            overlap: 1,
            ..Fragments::default()
        };
        let text = summary(&s, 5);
        assert!(
            text.contains(concat!(
                "ip fragments\n",
                "  fragments                          9\n",
                "  reassembled                        3\n",
                "  timed_out                          0\n",
                "  evicted                            0\n",
                "  overlap                            1\n",
            )),
            "{text}"
        );
    }

    #[test]
    fn connections_and_guard_are_shown() {
        let r = Report {
            at: at(0),
            interval: Breakdown::default(),
            total: breakdown(),
            recent_alerts: vec![],
        };
        let text = report(&r, 5);
        assert!(text.contains("  new connections 40 (4.00/s)\n"), "{text}");
        assert!(
            text.contains("    top sources   10.0.0.9 30 2001:db8::1 10\n"),
            "{text}"
        );
        assert!(text.contains("    top ports     80 38 22 2\n"), "{text}");
        assert!(
            text.contains("last 0s: 0 requests") && text.contains("  new connections 0 (0.00/s)\n")
        );
        let text = summary(&summary_model(), 5);
        assert!(
            text.contains(
                "connection guard: port scan = 3 ports within 60 s; allow-list 10.0.0.1/32; blocking on eth0\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("  blocked_syns                      12\n"),
            "{text}"
        );
        assert!(
            !text.contains("sources_evicted"),
            "zero rare counters are left out"
        );
    }

    #[test]
    fn top_by_tables_follow_the_user_agents_with_their_own_totals() {
        let mut b = breakdown();
        b.top_by = vec![
            TopByTable {
                by: TopByKey::Client,
                total: 100,
                entries: vec![
                    entry(b"10.0.0.1", 75, 0, false),
                    entry(b"10.0.0.2", 25, 0, false),
                ],
            },
            TopByTable {
                by: TopByKey::ResponseHeader("content-type".to_owned()),
                total: 98,
                entries: vec![entry(b"text/html", 49, 0, false), entry(b"-", 49, 0, false)],
            },
        ];
        let r = Report {
            at: at(0),
            interval: b.clone(),
            total: b,
            recent_alerts: vec![],
        };
        let text = report(&r, 5);
        assert_clean(&text);
        let agents = text.find("top user agents").expect("agents");
        let clients = text.find("  top by client ").expect("clients title");
        assert!(agents < clients, "{text}");
        let title = text
            .lines()
            .find(|l| l.starts_with("  top by response-header:content-type"));
        assert!(title.is_some_and(|l| l.contains("responses  ")), "{text}");
        // Shares are of what the table counted: 49 of 98 responses.
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("text/html"))
            .expect("row");
        assert!(row.contains("  50.0%  "), "{row}");
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("10.0.0.1"))
            .expect("row");
        assert!(row.contains("  75.0%  "), "{row}");
        assert!(
            text.contains("top by KEY: bytes = head + declared body"),
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= 80, "too wide: {line}");
        }
        let plain = report(
            &Report {
                at: at(0),
                interval: breakdown(),
                total: breakdown(),
                recent_alerts: vec![],
            },
            5,
        );
        assert!(!plain.contains("top by"), "{plain}");
    }

    #[test]
    fn a_retained_total_says_what_it_covers() {
        let mut s = summary_model();
        s.total.seconds = 3_540;
        s.total.retained = Some(linewatch_model::Retained {
            retention_secs: 3_600,
            since: at(1_614_049_200),
        });
        let text = summary(&s, 5);
        assert!(
            text.contains("last 59m (--retention 1h, since 2021-02-23T03:00:00Z): 100 requests"),
            "{text}"
        );
        let r = Report {
            at: at(0),
            interval: breakdown(),
            total: s.total.clone(),
            recent_alerts: vec![],
        };
        assert!(report(&r, 5).contains("\nlast 59m (--retention 1h, since "));
        assert!(summary(&summary_model(), 5).contains("since start (10s): "));
    }

    #[test]
    fn summary_has_every_part() {
        let text = summary(&summary_model(), 5);
        assert_clean(&text);
        for want in [
            "source        cap\\x1bture.pcap\n",
            "capture truncated: the file ends in the middle of a packet; counted up to the cut\n",
            "first packet  2021-02-23T04:06:18Z\n",
            "last packet   2021-02-23T04:16:18Z  (span 10m)\n",
            "  unmatched_responses                7\n  bare_lf                            8\n",
            "  invalid_target                     2\n",
            "since start (10s): 100 requests",
            "Alert history (2)",
            "response latency (request to first response byte), in us\n",
            "  count             98\n",
            "  p99.9           1500\n",
            "  max             2000\n",
            "capture latency, in us\n  no values recorded\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        let mut plain = summary_model();
        plain.truncated = false;
        plain.first_packet = None;
        plain.errors.clear();
        plain.latency.clear();
        let text = summary(&plain, 5);
        assert!(!text.contains("capture truncated"));
        assert!(text.contains("first packet  -\n"));
        assert!(text.contains("errors by reason: none"));
        assert!(text.contains("latency: no histograms"));
    }

    #[test]
    fn hostile_keys_never_reach_the_terminal_raw() {
        let mut rng = crate::escape::tests::Rng::new(99);
        for _ in 0..500 {
            let mut b = breakdown();
            for e in b
                .sections
                .iter_mut()
                .chain(b.hosts.iter_mut())
                .chain(b.user_agents.iter_mut())
            {
                e.key = crate::escape::tests::random_bytes(&mut rng);
                e.truncated = rng.below(2) == 0;
                e.error = rng.below(3);
            }
            let r = Report {
                at: at(0),
                interval: b.clone(),
                total: b,
                recent_alerts: vec![],
            };
            assert_clean(&report(&r, 10));
        }
    }
}

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
pub(crate) mod tests;

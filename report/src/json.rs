//! Machine output: `--json` event lines and the `--summary` document.
//!
//! Contract:
//!
//! - [`request_event`], [`response_event`] and [`alert_event`] each append exactly one line: a
//!   JSON object followed by `\n`, whatever bytes the request carried (wire strings go through
//!   [`escape::json_string`], which never emits a raw control character). Times are unix seconds
//!   with six decimals, written from integers so no microsecond is lost to f64 rounding.
//!   Request and response lines are written by hand, into `out` only: they run once per
//!   message when `--json` is on, where serde's generic machinery and a temporary `Value` would
//!   cost more than the capture path.
//! - [`summary`] is the SPEC section 4 document, pretty-printed, ending in a newline. Counts in
//!   `sections`, `hosts` and `user_agents` are the guaranteed lower bound `count - error` (exact
//!   when the key never left its top-N table); `*_other` holds the requests not in the listed
//!   keys, so `sum(map) + other == requests`. `approximate` lists the keys whose count is an
//!   estimate and `truncated_keys` those cut at the engine's length cap.
//!
//! Event shapes:
//!
//! ```text
//! {"type":"request","ts":1614053178.123456,"src":"10.0.0.1","src_port":40000,"dst":"10.0.0.2",
//!  "dst_port":80,"method":"GET","target":"/a/b?x","section":"/a","version":"HTTP/1.1",
//!  "host":"example.com"|null,"user_agent":"curl/8"|null,"bytes":78}
//! {"type":"response","ts":..,"src":..,"src_port":..,"dst":..,"dst_port":..,"status":200,
//!  "latency_us":512|null,"bytes":1234}
//! {"type":"connection","ts":..,"src":..,"src_port":..,"dst":..,"dst_port":22}
//! {"type":"alert","kind":"high_traffic"|"port_scan","state":"raised"|"recovered","at":..,
//!  "value":12.5,"threshold":10,"triggered_at":..,"recovered_at":..|null,"window_secs":120,
//!  "source":"10.0.0.9"|null,"blocked":false,"text":"High traffic ..."}
//! {"type":"scan_allowed","at":..,"source":"10.0.0.1","ports":3,"window_secs":60,"text":..}
//! {"type":"top_by","at":..,"span_secs":10,"by":"client","counts":"requests","total":100,
//!  "other":10,"top":[{"key":"10.0.0.1","count":60,"bytes":6000,"approximate":false,
//!  "truncated":false},..]}
//! ```
//!
//! A `top_by` event is one `--top-by` table over one report interval, sent when the interval's
//! report is (one per table); `counts` says whether it counted `requests` or `responses`,
//! `count` is the guaranteed lower bound, `other` what the table counted outside the listed
//! keys, `bytes` the head plus declared body of the messages counted under the key. The
//! `--summary` document holds the same shape, since start, under `top_by` (an array, in the
//! order asked for).
//!
//! With `--retention`, the summary's requests, responses, request bytes, methods, status codes
//! and every table cover only the retained stretch, which `retention` describes
//! (`{"retention_secs":86400,"since":..,"seconds":..}`; `null` without it); the packet counters
//! and latencies cover the whole run.
//!
//! (Each event is one line; it is wrapped here only to be read.)

use std::io::Write as _;
use std::net::IpAddr;

use linewatch_model::{
    AlertRecord, ConnectionEvent, RequestEvent, ResponseEvent, Summary, TopByTable, TopEntry,
};
use serde_json::{json, Map, Value};

use crate::alert;
use crate::escape;
use crate::time::{push_u64, push_unix_micros, unix_seconds};

/// Appends `,"src":"ip","src_port":n,"dst":"ip","dst_port":n`.
fn push_endpoints(src: (IpAddr, u16), dst: (IpAddr, u16), out: &mut Vec<u8>) {
    for (name, (ip, port)) in [("src", src), ("dst", dst)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":\"");
        // RFC 5952 text for IPv6 (what std prints); it never holds a quote or backslash.
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{ip}");
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"_port\":");
        push_u64(u64::from(port), out);
    }
}

/// Appends a JSON string for `Some`, `null` for `None`.
fn push_opt_string(v: Option<&[u8]>, out: &mut Vec<u8>) {
    match v {
        Some(b) => escape::json_string(b, out),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends a finite float as a JSON number (shortest form that reads back the same), and
/// `null` for NaN and infinities, which JSON cannot hold.
fn push_f64(v: f64, out: &mut Vec<u8>) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends one `--json` line for a request.
pub fn request_event(e: &RequestEvent<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"request\",\"ts\":");
    push_unix_micros(e.ts, out);
    push_endpoints(e.src, e.dst, out);
    out.extend_from_slice(b",\"method\":");
    escape::json_string(e.method, out);
    out.extend_from_slice(b",\"target\":");
    escape::json_string(e.target, out);
    out.extend_from_slice(b",\"section\":");
    escape::json_string(e.section, out);
    out.extend_from_slice(b",\"version\":");
    escape::json_string(e.version.as_bytes(), out);
    out.extend_from_slice(b",\"host\":");
    push_opt_string(e.host, out);
    out.extend_from_slice(b",\"user_agent\":");
    push_opt_string(e.user_agent, out);
    out.extend_from_slice(b",\"bytes\":");
    push_u64(e.bytes, out);
    out.extend_from_slice(b"}\n");
}

/// Appends one `--json` line for a new connection (a TCP SYN without ACK).
pub fn connection_event(e: &ConnectionEvent, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"connection\",\"ts\":");
    push_unix_micros(e.ts, out);
    push_endpoints(e.src, e.dst, out);
    out.extend_from_slice(b"}\n");
}

/// Appends one `--json` line for a response.
pub fn response_event(e: &ResponseEvent, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"type\":\"response\",\"ts\":");
    push_unix_micros(e.ts, out);
    push_endpoints(e.src, e.dst, out);
    out.extend_from_slice(b",\"status\":");
    push_u64(u64::from(e.status), out);
    out.extend_from_slice(b",\"latency_us\":");
    match e.latency_us {
        Some(us) => push_u64(us, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"bytes\":");
    push_u64(e.bytes, out);
    out.extend_from_slice(b"}\n");
}

/// Appends one `--json` line for an alert being raised, or recovering when `recovered` is true.
/// `at`, `value` and `text` are those of the event: the raise, or the recovery. The record is
/// the truth: `recovered` on a record with no recovery time gives the raise line.
pub fn alert_event(a: &AlertRecord, recovered: bool, out: &mut Vec<u8>) {
    let recovery = if recovered {
        a.recovered_at.zip(alert::recovered_line(a))
    } else {
        None
    };
    out.extend_from_slice(b"{\"type\":\"alert\",\"kind\":");
    escape::json_string(a.kind.name().as_bytes(), out);
    let text = match &recovery {
        Some((at, text)) => {
            out.extend_from_slice(b",\"state\":\"recovered\",\"at\":");
            push_unix_micros(*at, out);
            out.extend_from_slice(b",\"value\":");
            push_f64(a.recovered_value.unwrap_or(f64::NAN), out);
            text.clone()
        }
        None => {
            out.extend_from_slice(b",\"state\":\"raised\",\"at\":");
            push_unix_micros(a.triggered_at, out);
            out.extend_from_slice(b",\"value\":");
            push_f64(a.value, out);
            alert::raised_line(a)
        }
    };
    out.extend_from_slice(b",\"threshold\":");
    push_f64(a.threshold, out);
    out.extend_from_slice(b",\"triggered_at\":");
    push_unix_micros(a.triggered_at, out);
    out.extend_from_slice(b",\"recovered_at\":");
    match a.recovered_at {
        Some(at) => push_unix_micros(at, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"window_secs\":");
    push_u64(a.window_secs, out);
    out.extend_from_slice(b",\"source\":");
    match a.source {
        // Address text never holds a quote or backslash.
        Some(ip) => {
            let _ = write!(out, "\"{ip}\"");
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"blocked\":");
    out.extend_from_slice(if a.blocked { b"true" } else { b"false" });
    out.extend_from_slice(b",\"text\":");
    escape::json_string(text.as_bytes(), out);
    out.extend_from_slice(b"}\n");
}

/// Appends one `--json` line for an allow-listed source that scanned (logged, not flagged).
pub fn allowed_scan_event(
    source: IpAddr,
    ports: u32,
    window_secs: u64,
    at: std::time::SystemTime,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"type\":\"scan_allowed\",\"at\":");
    push_unix_micros(at, out);
    let _ = write!(out, ",\"source\":\"{source}\",\"ports\":");
    push_u64(u64::from(ports), out);
    out.extend_from_slice(b",\"window_secs\":");
    push_u64(window_secs, out);
    out.extend_from_slice(b",\"text\":");
    let text = alert::allowed_scan_line(source, ports, window_secs, at);
    escape::json_string(text.as_bytes(), out);
    out.extend_from_slice(b"}\n");
}

/// A `--top-by` table as the `top_by` event and the summary write it (see the module doc).
fn top_by_fields(t: &TopByTable, doc: &mut Map<String, Value>) {
    let mut other = t.total;
    let top: Vec<Value> = t
        .entries
        .iter()
        .map(|e| {
            other = other.saturating_sub(e.lower_bound());
            json!({
                "key": escape::json_key(&e.key),
                "count": e.lower_bound(),
                "bytes": e.bytes,
                "approximate": e.is_approximate(),
                "truncated": e.truncated,
            })
        })
        .collect();
    let counts = if t.by.is_response() {
        "responses"
    } else {
        "requests"
    };
    doc.insert("by".to_owned(), json!(t.by.to_string()));
    doc.insert("counts".to_owned(), json!(counts));
    doc.insert("total".to_owned(), json!(t.total));
    doc.insert("other".to_owned(), json!(other));
    doc.insert("top".to_owned(), Value::Array(top));
}

/// Appends one `--json` line for a `--top-by` table over the report interval of `span_secs`
/// seconds that ended at `at` (see the module doc).
pub fn top_by_event(t: &TopByTable, at: std::time::SystemTime, span_secs: u64, out: &mut Vec<u8>) {
    let mut doc = Map::new();
    doc.insert("type".to_owned(), json!("top_by"));
    doc.insert("at".to_owned(), json!(unix_seconds(at)));
    doc.insert("span_secs".to_owned(), json!(span_secs));
    top_by_fields(t, &mut doc);
    let text = Value::Object(doc).to_string();
    out.extend_from_slice(escape::harden_json_document(&text).as_bytes());
    out.push(b'\n');
}

/// Adds `n` to the number under `key`: two raw keys can read back as the same JSON key (see
/// [`escape`]), and their counts must add up rather than overwrite.
fn add_count(map: &mut Map<String, Value>, key: String, n: u64) {
    let slot = map.entry(key).or_insert(json!(0u64));
    let sum = slot.as_u64().unwrap_or(0).saturating_add(n);
    *slot = json!(sum);
}

/// One top-N list as the summary writes it.
struct TopList {
    /// Key to `count - error`.
    counts: Map<String, Value>,
    /// `requests` minus the listed counts.
    other: u64,
    /// Keys whose count is an estimate.
    approximate: Vec<Value>,
    /// Keys cut at the engine's cap.
    truncated: Vec<Value>,
}

fn top_list(entries: &[TopEntry], requests: u64) -> TopList {
    let mut list = TopList {
        counts: Map::new(),
        other: requests,
        approximate: Vec::new(),
        truncated: Vec::new(),
    };
    for e in entries {
        let key = escape::json_key(&e.key);
        if e.is_approximate() {
            list.approximate.push(Value::String(key.clone()));
        }
        if e.truncated {
            list.truncated.push(Value::String(key.clone()));
        }
        list.other = list.other.saturating_sub(e.lower_bound());
        add_count(&mut list.counts, key, e.lower_bound());
    }
    list
}

/// A time as unix seconds, or `null`.
fn opt_time(t: Option<std::time::SystemTime>) -> Value {
    t.map_or(Value::Null, |t| json!(unix_seconds(t)))
}

/// The `--summary` document (see the module contract).
pub fn summary(s: &Summary) -> String {
    let b = &s.total;
    let t = &s.traffic;
    let mut doc = Map::new();
    let mut put = |k: &str, v: Value| {
        doc.insert(k.to_owned(), v);
    };

    put("source", json!(s.source));
    put("truncated", json!(s.truncated));
    put("peak_rss_bytes", json!(s.peak_rss_bytes));
    put("first_packet", opt_time(s.first_packet));
    put("last_packet", opt_time(s.last_packet));
    put("seconds", json!(b.seconds));
    put("packets", json!(t.packets));
    put("bytes", json!(t.bytes));
    put("dropped", json!(t.dropped));
    put("requests", json!(b.requests));
    put("responses", json!(b.responses));
    put("request_bytes", json!(b.request_bytes));
    put("non_http", json!(t.non_http));
    put("malformed", json!(t.malformed));
    put("retransmitted", json!(t.retransmitted));
    put("undecoded", json!(t.undecoded));
    put("flows_evicted", json!(t.flows_evicted));
    put("unmatched_responses", json!(t.unmatched_responses));
    put("bare_lf", json!(t.bare_lf));
    if let Some(c) = &s.capture {
        let queues: Vec<Value> = c
            .queues
            .iter()
            .map(|q| {
                json!({
                    "queue": q.queue,
                    "core": q.core,
                    "frames": q.frames,
                    "rx_dropped": q.rx_dropped,
                    "rx_ring_full": q.rx_ring_full,
                    "fill_ring_empty": q.fill_ring_empty,
                    "rx_invalid_descs": q.rx_invalid_descs,
                    "cpu_seconds": q.cpu_seconds,
                    "unmatched_responses": q.unmatched_responses,
                    "crossed_out": q.crossed_out,
                    "crossed_in": q.crossed_in,
                })
            })
            .collect();
        put(
            "capture",
            json!({
                "interface": c.interface,
                "xdp_mode": c.xdp_mode,
                "zero_copy": c.zero_copy,
                "xdp": {
                    "seen": c.xdp_seen,
                    "redirected": c.xdp_redirected,
                    "other": c.xdp_other,
                    "no_socket": c.xdp_no_socket,
                    "fragments": c.xdp_fragments,
                    "fragments_ahead": c.xdp_fragments_ahead,
                    "fragments_unwanted": c.xdp_fragments_unwanted,
                },
                "wall_seconds": c.wall_seconds,
                "pairing": c.pairing,
                "copy_dropped": c.copy_dropped,
                "queues": queues,
            }),
        );
    }

    let mut errors = Map::new();
    for (reason, n) in &s.errors {
        add_count(&mut errors, escape::json_key(reason.as_bytes()), *n);
    }
    put("errors", Value::Object(errors));

    let mut methods = Map::new();
    for (name, n) in &b.methods {
        add_count(&mut methods, escape::json_key(name.as_bytes()), *n);
    }
    put("methods", Value::Object(methods));

    let mut status = Map::new();
    for (code, n) in &b.status {
        add_count(&mut status, code.to_string(), *n);
    }
    put("status", Value::Object(status));

    let [c1, c2, c3, c4, c5, other] = b.status_classes;
    put(
        "status_classes",
        json!({ "1xx": c1, "2xx": c2, "3xx": c3, "4xx": c4, "5xx": c5, "other": other }),
    );

    let mut approximate = Map::new();
    let mut truncated_keys = Map::new();
    for (name, entries) in [
        ("sections", &b.sections),
        ("hosts", &b.hosts),
        ("user_agents", &b.user_agents),
    ] {
        let list = top_list(entries, b.requests);
        put(name, Value::Object(list.counts));
        put(&format!("{name}_other"), json!(list.other));
        approximate.insert(name.to_owned(), Value::Array(list.approximate));
        truncated_keys.insert(name.to_owned(), Value::Array(list.truncated));
    }
    put("approximate", Value::Object(approximate));
    put("truncated_keys", Value::Object(truncated_keys));

    let mut section_hosts = Map::new();
    for sh in &b.section_hosts {
        let hosts = top_list(&sh.hosts, sh.section.lower_bound());
        let key = escape::json_key(&sh.section.key);
        // Sections that read back the same merge their hosts, like their counts.
        match section_hosts.get_mut(&key).and_then(Value::as_object_mut) {
            Some(existing) => {
                for (host, n) in hosts.counts {
                    add_count(existing, host, n.as_u64().unwrap_or(0));
                }
            }
            None => {
                section_hosts.insert(key, Value::Object(hosts.counts));
            }
        }
    }
    put("section_hosts", Value::Object(section_hosts));

    let top_by: Vec<Value> = b
        .top_by
        .iter()
        .map(|t| {
            let mut table = Map::new();
            top_by_fields(t, &mut table);
            Value::Object(table)
        })
        .collect();
    put("top_by", Value::Array(top_by));
    put(
        "retention",
        b.retained.map_or(Value::Null, |r| {
            json!({
                "retention_secs": r.retention_secs,
                "since": unix_seconds(r.since),
                "seconds": b.seconds,
            })
        }),
    );

    let alerts: Vec<Value> = s
        .alerts
        .iter()
        .map(|a| {
            json!({
                "kind": a.kind.name(),
                "triggered_at": unix_seconds(a.triggered_at),
                "value": a.value,
                "threshold": a.threshold,
                "recovered_at": opt_time(a.recovered_at),
                "recovered_value": a.recovered_value,
                "window_secs": a.window_secs,
                "source": a.source.map(|ip| ip.to_string()),
                "blocked": a.blocked,
            })
        })
        .collect();
    put("alerts", Value::Array(alerts));

    let g = &s.guard;
    let conn_list = |entries: &[TopEntry]| {
        let list = top_list(entries, b.connections);
        json!({ "top": Value::Object(list.counts), "other": list.other,
                "approximate": Value::Array(list.approximate) })
    };
    put(
        "connections",
        json!({
            "new": g.new_connections,
            "unlogged": g.connections_unlogged,
            "sources": conn_list(&b.connection_sources),
            "ports": conn_list(&b.connection_ports),
        }),
    );
    put(
        "guard",
        json!({
            "scan_ports": g.scan_ports,
            "scan_window_secs": g.scan_window_secs,
            "allow": g.allow,
            "blocking_on": g.blocking_on,
            "scanners_flagged": g.scanners_flagged,
            "scans_allowed": g.scans_allowed,
            "syns_from_flagged": g.syns_from_flagged,
            "blocked_syns": g.blocked_syns,
            "sources_evicted": g.sources_evicted,
        }),
    );

    let fragments: Map<String, Value> = s
        .fragments
        .named()
        .into_iter()
        .map(|(name, n)| (name.to_owned(), json!(n)))
        .collect();
    put("fragments", Value::Object(fragments));

    let mut latency = Map::new();
    for table in &s.latency {
        let p = &table.percentiles;
        latency.insert(
            escape::json_key(table.name.as_bytes()),
            json!({
                "count": p.count,
                "p50": p.p50,
                "p90": p.p90,
                "p99": p.p99,
                "p999": p.p999,
                "max": p.max,
            }),
        );
    }
    put("latency", Value::Object(latency));

    let mut text = match serde_json::to_string_pretty(&Value::Object(doc)) {
        Ok(text) => escape::harden_json_document(&text),
        // A Value with string keys always serializes; should that ever change, the file still
        // says what went wrong instead of being empty.
        Err(e) => json!({ "error": e.to_string() }).to_string(),
    };
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::tests::{alert, at};
    use crate::escape::tests::{random_bytes, Rng};
    use crate::text::tests::{entry, summary_model};
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn parse_line(out: &[u8]) -> Value {
        assert_eq!(out.last(), Some(&b'\n'), "ends in a newline");
        assert_eq!(
            out.iter().filter(|&&b| b == b'\n').count(),
            1,
            "exactly one line"
        );
        assert!(
            out.iter().all(|&b| b == b'\n' || (b >= 0x20 && b != 0x7f)),
            "no raw control byte"
        );
        serde_json::from_slice(out)
            .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(out)))
    }

    fn request<'a>(
        target: &'a [u8],
        host: Option<&'a [u8]>,
        ua: Option<&'a [u8]>,
    ) -> RequestEvent<'a> {
        RequestEvent {
            ts: at(1_614_053_178) + Duration::from_micros(123_456),
            src: (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40_000),
            dst: (
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
                80,
            ),
            method: b"GET",
            target,
            section: b"/a",
            version: "HTTP/1.1",
            host,
            user_agent: ua,
            bytes: 78,
        }
    }

    #[test]
    fn request_line_exact() {
        let mut out = Vec::new();
        request_event(&request(b"/a/b?x=1", Some(b"example.com"), None), &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"type\":\"request\",\"ts\":1614053178.123456,\"src\":\"10.0.0.1\",\"src_port\":40000,\
             \"dst\":\"2001:db8::1\",\"dst_port\":80,\"method\":\"GET\",\"target\":\"/a/b?x=1\",\
             \"section\":\"/a\",\"version\":\"HTTP/1.1\",\"host\":\"example.com\",\"user_agent\":null,\
             \"bytes\":78}\n"
        );
        let v = parse_line(&out);
        assert_eq!(v["ts"].as_f64(), Some(1_614_053_178.123_456));
        assert_eq!(v["user_agent"], Value::Null);
    }

    #[test]
    fn hostile_requests_stay_one_valid_line() {
        let target: &[u8] = b"/\"}\n{\"type\":\"evil\x1b[2J\\\xff\xfe\r\n";
        let host: &[u8] = b"h\x00st\xc0\xaf\xe2\x80\xae";
        let ua: &[u8] = b"ua\"\\\n\x7f\xc2\x9b";
        let mut out = Vec::new();
        request_event(&request(target, Some(host), Some(ua)), &mut out);
        let v = parse_line(&out);
        assert_eq!(v["type"], "request");
        assert_eq!(
            v["target"].as_str(),
            Some(escape::json_key(target).as_str())
        );
        assert_eq!(v["host"].as_str(), Some(escape::json_key(host).as_str()));
        assert_eq!(v["user_agent"], "ua\"\\\n\u{7f}\u{9b}");
        let mut rng = Rng::new(3);
        for _ in 0..5_000 {
            let (t, h, u) = (
                random_bytes(&mut rng),
                random_bytes(&mut rng),
                random_bytes(&mut rng),
            );
            out.clear();
            request_event(&request(&t, Some(&h), Some(&u)), &mut out);
            let v = parse_line(&out);
            assert_eq!(v["target"].as_str(), Some(escape::json_key(&t).as_str()));
            assert_eq!(v["bytes"], 78);
        }
    }

    #[test]
    fn response_lines() {
        let mut out = Vec::new();
        let e = ResponseEvent {
            ts: at(5),
            src: (
                IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x0a00, 0x0001)),
                443,
            ),
            dst: (IpAddr::V6(Ipv6Addr::LOCALHOST), 1),
            status: 503,
            latency_us: Some(u64::MAX),
            bytes: 0,
        };
        response_event(&e, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"type\":\"response\",\"ts\":5.000000,\"src\":\"::ffff:10.0.0.1\",\"src_port\":443,\
             \"dst\":\"::1\",\"dst_port\":1,\"status\":503,\"latency_us\":18446744073709551615,\"bytes\":0}\n"
        );
        let v = parse_line(&out);
        assert_eq!(v["latency_us"].as_u64(), Some(u64::MAX));
        out.clear();
        response_event(
            &ResponseEvent {
                latency_us: None,
                ..e
            },
            &mut out,
        );
        assert_eq!(parse_line(&out)["latency_us"], Value::Null);
    }

    #[test]
    fn alert_lines() {
        let a = alert(1_614_053_178, Some(1_614_053_303));
        let mut out = Vec::new();
        alert_event(&a, false, &mut out);
        let v = parse_line(&out);
        assert_eq!(v["type"], "alert");
        assert_eq!(v["kind"], "high_traffic");
        assert_eq!(v["state"], "raised");
        assert_eq!(v["at"].as_f64(), Some(1_614_053_178.0));
        assert_eq!(v["value"].as_f64(), Some(12.345));
        assert_eq!(v["threshold"].as_f64(), Some(10.0));
        assert_eq!(v["recovered_at"].as_f64(), Some(1_614_053_303.0));
        assert_eq!(v["text"].as_str(), Some(alert::raised_line(&a).as_str()));

        out.clear();
        alert_event(&a, true, &mut out);
        let v = parse_line(&out);
        assert_eq!(v["state"], "recovered");
        assert_eq!(v["at"].as_f64(), Some(1_614_053_303.0));
        assert_eq!(v["value"].as_f64(), Some(9.5));
        assert_eq!(v["text"].as_str(), alert::recovered_line(&a).as_deref());

        // Active record asked for as recovered: the record wins. NaN threshold: null.
        let mut active = alert(10, None);
        active.threshold = f64::NAN;
        out.clear();
        alert_event(&active, true, &mut out);
        let v = parse_line(&out);
        assert_eq!(v["state"], "raised");
        assert_eq!(v["recovered_at"], Value::Null);
        assert_eq!(v["threshold"], Value::Null);
    }

    fn referer_table() -> TopByTable {
        TopByTable {
            by: linewatch_model::TopByKey::Header("referer".to_owned()),
            total: 10,
            entries: vec![
                entry(b"http://a/\x1b[31m", 6, 0, false),
                entry(b"-", 3, 1, false),
            ],
        }
    }

    #[test]
    fn top_by_event_is_one_line_with_lower_bounds_and_other() {
        let mut out = Vec::new();
        top_by_event(&referer_table(), at(1_614_053_178), 10, &mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(!out.contains(&0x1b), "raw escape byte");
        let v = parse_line(&out);
        assert_eq!(v["type"], "top_by");
        assert_eq!(v["by"], "header:referer");
        assert_eq!(v["counts"], "requests");
        assert_eq!(v["span_secs"], 10);
        assert_eq!(v["at"], 1_614_053_178.0);
        assert_eq!(v["total"], 10);
        assert_eq!(v["top"][0]["key"], "http://a/\u{1b}[31m");
        assert_eq!(v["top"][0]["count"], 6);
        assert_eq!(v["top"][0]["bytes"], 600);
        // `-` may hold 2 to 3: its lower bound is listed, the rest is in `other`.
        assert_eq!(v["top"][1]["count"], 2);
        assert_eq!(v["top"][1]["approximate"], true);
        assert_eq!(v["other"], 2);
    }

    #[test]
    fn summary_lists_the_top_by_tables_in_order() {
        let mut s = summary_model();
        let v: Value = serde_json::from_str(&summary(&s)).expect("valid JSON");
        assert_eq!(v["top_by"], json!([]));
        assert_eq!(v["retention"], Value::Null);
        s.total.top_by = vec![
            referer_table(),
            TopByTable {
                by: linewatch_model::TopByKey::ResponseHeader("server".to_owned()),
                total: 4,
                entries: vec![entry(b"nginx", 4, 0, false)],
            },
        ];
        let v: Value = serde_json::from_str(&summary(&s)).expect("valid JSON");
        assert_eq!(v["top_by"][0]["by"], "header:referer");
        assert_eq!(v["top_by"][1]["by"], "response-header:server");
        assert_eq!(v["top_by"][1]["counts"], "responses");
        assert_eq!(v["top_by"][1]["top"][0]["key"], "nginx");
        assert_eq!(v["top_by"][1]["other"], 0);
    }

    #[test]
    fn summary_document() {
        let mut s = summary_model();
        // Two raw keys that read back the same: their counts add up.
        s.total.hosts.push(entry(b"\xff", 3, 0, false));
        s.total.hosts.push(entry(b"\\xff", 2, 0, false));
        s.total
            .sections
            .push(entry("\u{202e}rtl".as_bytes(), 1, 0, false));
        // Room for the added keys, so every list sums to at most the requests.
        s.total.requests = 106;
        let text = summary(&s);
        assert!(text.ends_with("}\n"));
        assert!(
            !text.contains('\u{202e}'),
            "bidi control escaped in the file"
        );
        assert!(!text.contains('\u{1b}'));
        let v: Value = serde_json::from_str(&text).expect("valid JSON");
        for key in [
            "packets",
            "bytes",
            "dropped",
            "requests",
            "responses",
            "non_http",
            "malformed",
            "methods",
            "sections",
            "hosts",
            "status",
            "user_agents",
            "alerts",
            "latency",
            "source",
            "truncated",
            "first_packet",
            "last_packet",
            "retransmitted",
            "undecoded",
            "flows_evicted",
            "unmatched_responses",
            "bare_lf",
            "errors",
            "status_classes",
            "request_bytes",
            "approximate",
            "truncated_keys",
            "sections_other",
            "hosts_other",
            "user_agents_other",
            "fragments",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["source"], "cap\u{1b}ture.pcap");
        assert_eq!(v["truncated"], true);
        assert_eq!(v["first_packet"].as_f64(), Some(1_614_053_178.0));
        assert_eq!(v["packets"], 1000);
        assert_eq!(v["unmatched_responses"], 7);
        assert_eq!(v["bare_lf"], 8);
        assert_eq!(v["fragments"]["reassembled"], 0);
        assert_eq!(v["fragments"].as_object().map(Map::len), Some(8));
        assert_eq!(v["errors"]["not_ip"], 5);
        assert_eq!(v["methods"]["GET"], 90);
        assert_eq!(v["status"]["404"], 15);
        assert_eq!(v["status_classes"]["5xx"], 3);
        assert_eq!(v["status_classes"]["other"], 0);
        // /api: count 30, error 4 -> lower bound 26, flagged approximate.
        assert_eq!(v["sections"]["/api"], 26);
        assert_eq!(v["sections"]["/pages"], 60);
        assert_eq!(v["sections"]["/\u{1b}[31mevil\\xff"], 5);
        assert_eq!(v["approximate"]["sections"], json!(["/api"]));
        assert_eq!(
            v["truncated_keys"]["user_agents"],
            json!(["averyveryverylongagent"])
        );
        assert_eq!(v["hosts"]["\\xff"], 5);
        // Totals add up: listed + other == requests.
        for name in ["sections", "hosts", "user_agents"] {
            let listed: u64 = v[name]
                .as_object()
                .expect("map")
                .values()
                .filter_map(Value::as_u64)
                .sum();
            let other = v[format!("{name}_other")].as_u64().expect("other");
            assert_eq!(listed + other, 106, "{name}");
        }
        assert_eq!(v["section_hosts"]["/pages"]["example.com"], 50);
        assert_eq!(v["alerts"][0]["kind"], "high_traffic");
        assert_eq!(
            v["alerts"][0]["triggered_at"].as_f64(),
            Some(1_614_053_200.0)
        );
        assert_eq!(v["alerts"][0]["recovered_value"].as_f64(), Some(9.5));
        assert_eq!(v["alerts"][1]["recovered_at"], Value::Null);
        assert_eq!(v["alerts"][1]["value"].as_f64(), Some(12.345));
        assert_eq!(
            v["latency"]["response_us"],
            json!({"count": 98, "p50": 120, "p90": 300, "p99": 900, "p999": 1500, "max": 2000})
        );
        assert_eq!(v["latency"]["capture_us"]["count"], 0);
    }

    #[test]
    fn connection_and_scan_events() {
        let mut out = Vec::new();
        connection_event(
            &ConnectionEvent {
                ts: at(1_614_053_178) + Duration::from_micros(5),
                src: ("10.0.0.9".parse().unwrap(), 40_000),
                dst: ("2001:db8::1".parse().unwrap(), 22),
            },
            &mut out,
        );
        let v = parse_line(&out);
        assert_eq!(
            v,
            json!({"type": "connection", "ts": 1_614_053_178.000_005, "src": "10.0.0.9",
                   "src_port": 40000, "dst": "2001:db8::1", "dst_port": 22})
        );
        let mut a = alert(1_614_053_178, None);
        a.kind = linewatch_model::AlertKind::PortScan;
        a.source = Some("10.0.0.9".parse().unwrap());
        a.value = 3.0;
        a.threshold = 3.0;
        a.window_secs = 60;
        a.blocked = true;
        out.clear();
        alert_event(&a, false, &mut out);
        let v = parse_line(&out);
        assert_eq!(v["kind"], "port_scan");
        assert_eq!(v["source"], "10.0.0.9");
        assert_eq!(v["blocked"], true);
        assert_eq!(v["window_secs"], 60);
        assert!(v["text"]
            .as_str()
            .unwrap()
            .starts_with("Port scan detected"));
        out.clear();
        allowed_scan_event("::1".parse().unwrap(), 4, 60, at(10), &mut out);
        let v = parse_line(&out);
        assert_eq!(v["type"], "scan_allowed");
        assert_eq!(v["source"], "::1");
        assert_eq!(v["ports"], 4);
    }

    #[test]
    fn summary_of_nothing() {
        let s = Summary {
            source: String::new(),
            truncated: false,
            first_packet: None,
            last_packet: None,
            traffic: Default::default(),
            errors: vec![],
            total: Default::default(),
            alerts: vec![alert(0, None)],
            latency: vec![],
            peak_rss_bytes: None,
            capture: None,
            guard: Default::default(),
            fragments: Default::default(),
        };
        let v: Value = serde_json::from_str(&summary(&s)).expect("valid JSON");
        assert_eq!(v["first_packet"], Value::Null);
        assert_eq!(v["sections_other"], 0);
        assert_eq!(v["sections"], json!({}));
        assert_eq!(v["alerts"][0]["triggered_at"].as_f64(), Some(0.0));
        // Counts larger than requests (estimates) never make `other` negative.
        let mut s = s;
        s.total.hosts.push(entry(b"big", 50, 0, false));
        let v: Value = serde_json::from_str(&summary(&s)).expect("valid JSON");
        assert_eq!(v["hosts_other"], 0);
    }
}

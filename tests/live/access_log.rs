//! nginx's access log as the truth: every request nginx answered, one line each, in the lab's
//! format (`port \t status \t request_time \t Host \t request-line`), reduced to the counts a
//! linewatch summary holds.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::section;

/// One access-log line.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub port: u16,
    pub status: u16,
    /// Seconds, millisecond resolution.
    pub request_time: f64,
    /// The Host header as sent; `-` when absent (nginx's mark for an empty variable).
    pub host: String,
    pub method: String,
    pub target: String,
}

/// Parses the log at `path`.
///
/// # Panics
/// On a line that is not in the lab's format.
pub fn read(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the access log {}: {e}", path.display()));
    text.lines().map(parse_line).collect()
}

fn parse_line(line: &str) -> Entry {
    let bad = || panic!("access-log line not in the lab's format: {line:?}");
    let mut fields = line.splitn(5, '\t');
    let (Some(port), Some(status), Some(time), Some(host), Some(request)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        bad()
    };
    // `METHOD TARGET VERSION`: a target holds no space (nginx would have answered 400 and
    // logged it anyway), so the first two words are the method and the target.
    let mut parts = request.split(' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        bad()
    };
    Entry {
        port: port.parse().unwrap_or_else(|_| bad()),
        status: status.parse().unwrap_or_else(|_| bad()),
        request_time: time.parse().unwrap_or_else(|_| bad()),
        host: host.to_string(),
        method: method.to_string(),
        target: target.to_string(),
    }
}

impl Entry {
    /// The Host header the client sent, as SPEC §3 counts it (trimmed, lower-cased, `-` when
    /// absent). One correction to the log: a request nginx rejects in its request line (a 400
    /// such as `OPTIONS *`) is logged without Host because nginx never read its headers; every
    /// lab client but the HTTP/1.0 one sends `Host: 10.202.0.1:PORT`, so that is what was sent.
    pub fn host_as_sent(&self) -> String {
        if self.status == 400 && self.host == "-" {
            return format!("{}:{}", super::lab::SERVER_ADDR, self.port);
        }
        self.host.trim().to_ascii_lowercase()
    }
}

/// The counts a summary holds, from either side.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub methods: BTreeMap<String, u64>,
    pub hosts: BTreeMap<String, u64>,
    pub sections: BTreeMap<String, u64>,
    pub status: BTreeMap<String, u64>,
}

impl Counts {
    /// The counts of the `entries` on `port`; sections by the SPEC §3 rule, hosts as SPEC §3
    /// counts them (trimmed, lower-cased, `-` when absent).
    pub fn of<'a>(entries: impl IntoIterator<Item = &'a Entry>, port: u16) -> Counts {
        let mut counts = Counts::default();
        for e in entries.into_iter().filter(|e| e.port == port) {
            counts.requests += 1;
            *counts.methods.entry(e.method.clone()).or_default() += 1;
            *counts.hosts.entry(e.host_as_sent()).or_default() += 1;
            *counts.sections.entry(section(&e.target)).or_default() += 1;
            *counts.status.entry(e.status.to_string()).or_default() += 1;
        }
        counts
    }

    /// The same counts read from a linewatch summary.
    pub fn of_summary(summary: &serde_json::Value) -> Counts {
        Counts {
            requests: summary["requests"]
                .as_u64()
                .unwrap_or_else(|| panic!("summary has no `requests`: {summary}")),
            methods: crate::common::map_of(summary, "methods"),
            hosts: crate::common::map_of(summary, "hosts"),
            sections: crate::common::map_of(summary, "sections"),
            status: crate::common::map_of(summary, "status"),
        }
    }
}

/// The largest `$request_time` in seconds (0 for no entries).
pub fn max_request_time(entries: &[Entry]) -> f64 {
    entries.iter().map(|e| e.request_time).fold(0.0, f64::max)
}

#[test]
fn parses_the_lab_format() {
    let e = parse_line("8080\t400\t0.000\t10.202.0.1:8080\tOPTIONS * HTTP/1.1");
    assert_eq!(
        (e.port, e.status, e.method.as_str()),
        (8080, 400, "OPTIONS")
    );
    assert_eq!(e.target, "*");
    let e = parse_line("8080\t200\t0.012\t-\tGET http://10.202.0.1:8080/api/abs/x HTTP/1.1");
    assert_eq!(section(&e.target), "/api");
    assert!((e.request_time - 0.012).abs() < 1e-9);
    let counts = Counts::of(
        &[
            parse_line("8080\t200\t0.000\tLab.Example\tGET /a/b?x=1 HTTP/1.1"),
            parse_line("8081\t200\t0.000\tx\tGET /a/b HTTP/1.1"),
            parse_line("8080\t404\t0.000\t-\tPOST /a HTTP/1.0"),
        ],
        8080,
    );
    assert_eq!(counts.requests, 2);
    assert_eq!(counts.sections, BTreeMap::from([("/a".to_string(), 2)]));
    assert_eq!(counts.status.get("404"), Some(&1));
    assert_eq!(
        counts.hosts,
        BTreeMap::from([("-".to_string(), 1), ("lab.example".to_string(), 1)])
    );
}

//! The text renderers' tests: reports, the summary, markers, hostile keys.

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

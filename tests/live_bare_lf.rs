//! Lenient line ends, judged by nginx (issue 15 item 3): requests whose lines end in a bare LF,
//! mix LF and CRLF, put several spaces between the request line's tokens, or start after empty
//! lines, sent over ordinary TCP sockets to nginx in the lab. nginx's access log is the answer:
//! linewatch `--mirror` on the server's veth, and `--read` on tcpdump's capture of the same
//! run, must count exactly the requests nginx served, per method, section and host, a response
//! for every line of the log (the 400s included), and none of the requests nginx rejected in
//! their request line (a tab between tokens, a space before the method, a bare CR).
//!
//! The client is a few lines of python3 (a plain socket per case: connect, send the bytes,
//! read until nginx closes), so the bytes on the wire are exactly the case's.
//!
//! Needs root, ip, tc, nginx, tcpdump and python3; without them it prints a note and passes,
//! with `CI` set it fails. Run it (as root):
//!
//! ```text
//! cargo test --profile ci --test live_bare_lf -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;
mod live;

use std::collections::BTreeMap;
use std::time::Duration;

use linewatch_testkit::tools::path_of;
use live::lab::{Lab, MONITORED_PORT, SERVER_ADDR};
use live::process::run_ok;
use live::{lab_for, serial, Linewatch, Tcpdump};

const TOOLS: &[&str] = &["nginx", "tcpdump", "python3"];

/// How long the client waits for nginx to close a connection after the case's last byte.
const READ_TIMEOUT_SECS: u32 = 5;
/// Limit for the whole client run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// What nginx does with a case's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Serves this many requests (logged with their status), of which this many have a bare
    /// LF in their head.
    Served { requests: u64, bare_lf: u64 },
    /// Answers 400 and closes: the request line is not HTTP to nginx.
    Rejected,
}

/// One connection's bytes and nginx's verdict on them (each verdict checked in the lab before
/// the parser followed it; the test fails if nginx ever answers otherwise).
struct Case {
    name: &'static str,
    bytes: &'static [u8],
    verdict: Verdict,
}

const fn served(requests: u64, bare_lf: u64) -> Verdict {
    Verdict::Served { requests, bare_lf }
}

const CASES: &[Case] = &[
    Case {
        name: "CRLF throughout (the control)",
        bytes:
            b"GET /docs/guide/v1/intro.html HTTP/1.1\r\nHost: crlf.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
    },
    Case {
        name: "bare LF throughout",
        bytes: b"GET /docs/guide/v1/intro.html HTTP/1.1\nHost: bare.lab\nConnection: close\n\n",
        verdict: served(1, 1),
    },
    Case {
        name: "bare LF after the request line only",
        bytes: b"GET /lf/line HTTP/1.1\nHost: bare.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 1),
    },
    Case {
        name: "bare LF after one header line",
        bytes: b"GET /lf/header HTTP/1.1\r\nHost: bare.lab\nConnection: close\r\n\r\n",
        verdict: served(1, 1),
    },
    Case {
        name: "bare LF as the empty line",
        bytes: b"GET /lf/empty HTTP/1.1\r\nHost: bare.lab\r\nConnection: close\r\n\n",
        verdict: served(1, 1),
    },
    Case {
        name: "LF and CRLF mixed, LF CR LF at the end",
        bytes: b"GET /lf/mixed HTTP/1.1\nHost: Mixed.Lab\r\nConnection: close\n\r\n",
        verdict: served(1, 1),
    },
    Case {
        name: "three pipelined bare-LF requests in one segment",
        bytes: b"GET /pipe/1 HTTP/1.1\nHost: pipe.lab\n\n\
                 HEAD /static/app.css HTTP/1.1\nHost: pipe.lab\n\n\
                 GET /pipe/3 HTTP/1.1\nHost: pipe.lab\nConnection: close\n\n",
        verdict: served(3, 3),
    },
    Case {
        name: "several spaces between the tokens (CRLF)",
        bytes: b"GET  /spaces/two  HTTP/1.1\r\nHost: spaces.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
    },
    Case {
        name: "several spaces, spaces before a bare LF",
        bytes: b"DELETE    /spaces/many     HTTP/1.1   \nHost: spaces.lab\nConnection: close\n\n",
        verdict: served(1, 1),
    },
    Case {
        name: "empty lines (CRLF) before the request line",
        bytes: b"\r\n\r\nGET /empty/crlf HTTP/1.1\r\nHost: empty.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
    },
    Case {
        name: "empty lines (bare LF) before a bare-LF request",
        bytes: b"\n\nGET /empty/lf HTTP/1.1\nHost: empty.lab\nConnection: close\n\n",
        verdict: served(1, 1),
    },
    Case {
        name: "CR CR before the request line",
        bytes: b"\r\rGET /empty/cr HTTP/1.1\r\nHost: empty.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
    },
    Case {
        name: "bare-LF POST with a body, then a GET",
        bytes: b"POST /body/length HTTP/1.1\nHost: body.lab\nContent-Length: 3\n\nabc\
                 GET /body/after HTTP/1.1\nHost: body.lab\nConnection: close\n\n",
        verdict: served(2, 2),
    },
    Case {
        name: "chunked body with bare-LF chunk lines, then a GET",
        bytes: b"POST /chunked/lf HTTP/1.1\nHost: body.lab\nTransfer-Encoding: chunked\n\n\
                 3\nabc\n2;ext=1\nde\r\n0\n\n\
                 GET /chunked/after HTTP/1.1\r\nHost: body.lab\r\nConnection: close\r\n\r\n",
        verdict: served(2, 1),
    },
    Case {
        name: "HTTP/1.0 with bare LF and no Host",
        bytes: b"GET /old/lf HTTP/1.0\n\n",
        verdict: served(1, 1),
    },
    Case {
        name: "a tab after the method",
        bytes: b"GET\t/reject/tab HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
    },
    Case {
        name: "a tab before the version",
        bytes: b"GET /reject/tab2\tHTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
    },
    Case {
        name: "a space before the method",
        bytes: b" GET /reject/space HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
    },
    Case {
        name: "a bare CR after the request line",
        bytes: b"GET /reject/cr HTTP/1.1\rHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
    },
];

/// The client: one connection per file in the directory argv[1] (sorted), the whole file in
/// one send, then read until nginx closes. Prints `file<TAB>first status line` per case.
const CLIENT: &str = r#"
import os, socket, sys
host, port, timeout, directory = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
for name in sorted(os.listdir(directory)):
    data = open(os.path.join(directory, name), "rb").read()
    s = socket.create_connection((host, port))
    s.settimeout(timeout)
    s.sendall(data)
    got = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        got += b" <timeout>"
    s.close()
    print(name + "\t" + got.split(b"\r\n", 1)[0].decode("latin-1"))
"#;

/// What the summaries are compared on.
#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    requests: u64,
    responses: u64,
    bare_lf: u64,
    methods: BTreeMap<String, u64>,
    sections: BTreeMap<String, u64>,
    hosts: BTreeMap<String, u64>,
    status: BTreeMap<String, u64>,
}

/// The access log's lines: (status, Host as logged, request line as logged).
fn access_log(lab: &Lab) -> Vec<(u16, String, String)> {
    let text = std::fs::read_to_string(lab.access_log()).expect("reading nginx's access log");
    text.lines()
        .map(|line| {
            // The lab's format: port, status, request time, Host, request line.
            let fields: Vec<&str> = line.splitn(5, '\t').collect();
            assert_eq!(
                fields.len(),
                5,
                "access-log line not in the lab's format: {line:?}"
            );
            assert_eq!(fields[0], MONITORED_PORT.to_string(), "{line:?}");
            let status = fields[1].parse().expect("a status code");
            (status, fields[3].to_owned(), fields[4].to_owned())
        })
        .collect()
}

/// nginx's side: every logged line is a response; the lines that are not 400 are the requests
/// it served (split on runs of spaces: the lenient request lines keep theirs in the log).
fn truth(log: &[(u16, String, String)], bare_lf: u64) -> Counts {
    let mut c = Counts {
        bare_lf,
        ..Counts::default()
    };
    for (status, host, request) in log {
        c.responses += 1;
        *c.status.entry(status.to_string()).or_default() += 1;
        if *status == 400 {
            continue;
        }
        let mut words = request.split_whitespace();
        let (method, target) = (
            words.next().expect("a method"),
            words.next().expect("a target"),
        );
        c.requests += 1;
        *c.methods.entry(method.to_owned()).or_default() += 1;
        *c.sections.entry(common::section(target)).or_default() += 1;
        *c.hosts.entry(host.to_ascii_lowercase()).or_default() += 1;
    }
    c
}

fn ours(summary: &serde_json::Value) -> Counts {
    let n = |key: &str| {
        summary[key]
            .as_u64()
            .unwrap_or_else(|| panic!("summary has no `{key}`: {summary}"))
    };
    Counts {
        requests: n("requests"),
        responses: n("responses"),
        bare_lf: n("bare_lf"),
        methods: common::map_of(summary, "methods"),
        sections: common::map_of(summary, "sections"),
        hosts: common::map_of(summary, "hosts"),
        status: common::map_of(summary, "status"),
    }
}

/// Runs the client in the client namespace; returns its per-case lines.
fn send_cases(lab: &Lab) -> Vec<String> {
    let dir = lab.dir.join("cases");
    std::fs::create_dir_all(&dir).expect("mkdir cases");
    for (i, case) in CASES.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:02}")), case.bytes).expect("writing a case");
    }
    let mut cmd = lab.client().exec(path_of("python3"));
    cmd.arg("-c")
        .arg(CLIENT)
        .arg(SERVER_ADDR)
        .arg(MONITORED_PORT.to_string())
        .arg(READ_TIMEOUT_SECS.to_string())
        .arg(&dir);
    let done = run_ok("python3 client", cmd, CLIENT_TIMEOUT);
    done.stdout.lines().map(str::to_owned).collect()
}

#[test]
fn bare_lf_and_lenient_start_lines_match_access_log() {
    let _serial = serial();
    let Some(lab) = lab_for("bare_lf_and_lenient_start_lines_match_access_log", TOOLS) else {
        return;
    };
    let capture = Tcpdump::start(&lab, &lab.server_veth, &lab.dir.join("bare-lf.pcap"));
    let port = MONITORED_PORT.to_string();
    let veth = lab.server_veth.clone();
    let lw = Linewatch::ready(
        &lab,
        &["--mirror", &veth, "--port", &port],
        &lab.dir.join("live.json"),
        live::READY_TIMEOUT,
    );
    let answers = send_cases(&lab);
    std::thread::sleep(live::SETTLE);
    let live_summary = lw.interrupt();
    let capture_file = capture.file.clone();
    capture.stop();

    // nginx's behaviour is what this test stands on: each case got the answer its verdict
    // says, or the lab is not the judge the parser was fitted to.
    println!("\nnginx's answers:");
    assert_eq!(answers.len(), CASES.len(), "client output: {answers:#?}");
    for (case, answer) in CASES.iter().zip(&answers) {
        println!("  {:<50} {answer}", case.name);
        let rejected = answer.contains(" 400 ");
        assert_eq!(
            rejected,
            case.verdict == Verdict::Rejected,
            "nginx answered {answer:?} to {:?}",
            case.name
        );
    }
    let log = access_log(&lab);
    let (mut expected_served, mut expected_bare, mut expected_rejected) = (0, 0, 0);
    for case in CASES {
        match case.verdict {
            Verdict::Served { requests, bare_lf } => {
                expected_served += requests;
                expected_bare += bare_lf;
            }
            Verdict::Rejected => expected_rejected += 1,
        }
    }
    let rejected_in_log = log.iter().filter(|(status, ..)| *status == 400).count() as u64;
    assert_eq!(
        (log.len() as u64 - rejected_in_log, rejected_in_log),
        (expected_served, expected_rejected),
        "nginx logged a different number of served and rejected requests: {log:#?}"
    );

    let want = truth(&log, expected_bare);
    let (replayed, _) = common::summary_of(&capture_file, &["--port", &port]);
    for (label, summary) in [
        ("linewatch --mirror", &live_summary),
        ("linewatch --read <tcpdump>", &replayed),
    ] {
        let got = ours(summary);
        println!("\n{label} vs nginx's access log:\n  nginx:     {want:?}\n  linewatch: {got:?}");
        println!(
            "  non_http {} malformed {} unmatched_responses {}",
            summary["non_http"], summary["malformed"], summary["unmatched_responses"]
        );
        assert_eq!(got, want, "{label}: counts differ from nginx's access log");
        // Each 400 answered a request linewatch did not count: it has no request to match.
        assert_eq!(
            summary["unmatched_responses"].as_u64(),
            Some(expected_rejected),
            "{label}: unmatched responses"
        );
    }
}

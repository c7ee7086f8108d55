//! Lenient line ends, judged by nginx (issue 15 item 3): requests whose lines end in a bare LF,
//! mix LF and CRLF, put several spaces between the request line's tokens, or start after empty
//! lines, sent over ordinary TCP sockets to nginx in the lab; and the start-line and header-line
//! leftovers after it (other HTTP/1 minor versions, methods nginx refuses, header lines nginx
//! refuses or only ignores, Host and framing fields it answers 400 or 501). nginx's access log is
//! the answer: linewatch `--mirror` on the server's veth, and `--read` on tcpdump's capture of
//! the same run, must count exactly the requests nginx logged with a method, per method,
//! section, host and status (those it answered 400 or 501 after reading their request line
//! included), a response for every line of the log, and none of the requests whose request line
//! nginx refused (logged with `$request_method` `-`: a tab between tokens, a space before the
//! method, a bare CR, a method byte outside `[A-Z_-]`, a version other than `HTTP/1.x`). Those
//! cases' targets are under `/reject/`, which is how their log lines are told apart.
//!
//! Long heads too: nginx serves a head of up to 32 KiB whose lines are each under 8 KiB
//! (`large_client_header_buffers 4 8k`), and answers 400 to a longer line or head, logging the
//! request with its method; linewatch carries heads up to 32 KiB (`engine::carry`) and counts a
//! longer one at its request line (`incomplete_heads`, `carry_overflow`).
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

use linewatch_parser::http::Method;
use linewatch_testkit::tools::path_of;
use live::lab::{Lab, MONITORED_PORT, SERVER_ADDR};
use live::process::run_ok;
use live::{lab_for, serial};

const TOOLS: &[&str] = &["nginx", "tcpdump", "python3"];

/// How long the client waits for nginx to close a connection after the case's last byte.
const READ_TIMEOUT_SECS: u32 = 5;
/// Limit for the whole client run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// What nginx does with a case's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Logs this many requests with their method (served, or answered 4xx/5xx after their
    /// request line was read), of which this many have a bare LF in their head.
    Served { requests: u64, bare_lf: u64 },
    /// Refuses the request line (400, or 505 for a version above 1.x) and closes: nginx logs the
    /// raw line without a method. The target is under `/reject/`.
    Rejected,
}

/// The summary's name for a method outside linewatch's table (`MK_COL`, `QUERY`, ...).
const OTHER_METHOD: &str = "other";

/// The path under which every [`Verdict::Rejected`] case's target lies, and no other.
const REJECTED_PATH: &str = "/reject/";

/// One connection's bytes and nginx's verdict on them (each verdict checked in the lab before
/// the parser followed it; the test fails if nginx ever answers otherwise).
struct Case {
    name: &'static str,
    bytes: &'static [u8],
    verdict: Verdict,
    /// The status of nginx's first answer on the connection.
    status: u16,
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
        status: 200,
    },
    Case {
        name: "bare LF throughout",
        bytes: b"GET /docs/guide/v1/intro.html HTTP/1.1\nHost: bare.lab\nConnection: close\n\n",
        verdict: served(1, 1),
        status: 200,
    },
    Case {
        name: "bare LF after the request line only",
        bytes: b"GET /lf/line HTTP/1.1\nHost: bare.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "bare LF after one header line",
        bytes: b"GET /lf/header HTTP/1.1\r\nHost: bare.lab\nConnection: close\r\n\r\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "bare LF as the empty line",
        bytes: b"GET /lf/empty HTTP/1.1\r\nHost: bare.lab\r\nConnection: close\r\n\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "LF and CRLF mixed, LF CR LF at the end",
        bytes: b"GET /lf/mixed HTTP/1.1\nHost: Mixed.Lab\r\nConnection: close\n\r\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "three pipelined bare-LF requests in one segment",
        bytes: b"GET /pipe/1 HTTP/1.1\nHost: pipe.lab\n\n\
                 HEAD /static/app.css HTTP/1.1\nHost: pipe.lab\n\n\
                 GET /pipe/3 HTTP/1.1\nHost: pipe.lab\nConnection: close\n\n",
        verdict: served(3, 3),
        status: 404,
    },
    Case {
        name: "several spaces between the tokens (CRLF)",
        bytes: b"GET  /spaces/two  HTTP/1.1\r\nHost: spaces.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "several spaces, spaces before a bare LF",
        bytes: b"DELETE    /spaces/many     HTTP/1.1   \nHost: spaces.lab\nConnection: close\n\n",
        verdict: served(1, 1),
        status: 405,
    },
    Case {
        name: "empty lines (CRLF) before the request line",
        bytes: b"\r\n\r\nGET /empty/crlf HTTP/1.1\r\nHost: empty.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "empty lines (bare LF) before a bare-LF request",
        bytes: b"\n\nGET /empty/lf HTTP/1.1\nHost: empty.lab\nConnection: close\n\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "CR CR before the request line",
        bytes: b"\r\rGET /empty/cr HTTP/1.1\r\nHost: empty.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "bare-LF POST with a body, then a GET",
        bytes: b"POST /body/length HTTP/1.1\nHost: body.lab\nContent-Length: 3\n\nabc\
                 GET /body/after HTTP/1.1\nHost: body.lab\nConnection: close\n\n",
        verdict: served(2, 2),
        status: 404,
    },
    Case {
        name: "chunked body with bare-LF chunk lines, then a GET",
        bytes: b"POST /chunked/lf HTTP/1.1\nHost: body.lab\nTransfer-Encoding: chunked\n\n\
                 3\nabc\n2;ext=1\nde\r\n0\n\n\
                 GET /chunked/after HTTP/1.1\r\nHost: body.lab\r\nConnection: close\r\n\r\n",
        verdict: served(2, 1),
        status: 404,
    },
    Case {
        name: "HTTP/1.0 with bare LF and no Host",
        bytes: b"GET /old/lf HTTP/1.0\n\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "a tab after the method",
        bytes: b"GET\t/reject/tab HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "a tab before the version",
        bytes: b"GET /reject/tab2\tHTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "a space before the method",
        bytes: b" GET /reject/space HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "a bare CR after the request line",
        bytes: b"GET /reject/cr HTTP/1.1\rHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    // The start line: any HTTP/1 minor version nginx reads; its method bytes are [A-Z_-].
    Case {
        name: "HTTP/1.2",
        bytes: b"GET /start/v12 HTTP/1.2\r\nHost: start.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "HTTP/1.10",
        bytes: b"GET /start/v110 HTTP/1.10\r\nHost: start.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "HTTP/1.01 (read as 1.1)",
        bytes: b"GET /start/v101 HTTP/1.01\r\nHost: start.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "HTTP/1.00 without Host",
        bytes: b"GET /start/v100 HTTP/1.00\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "HTTP/1.2, spaces before a bare LF",
        bytes: b"GET /start/v12lf HTTP/1.2  \nHost: start.lab\nConnection: close\n\n",
        verdict: served(1, 1),
        status: 404,
    },
    Case {
        name: "HTTP/1.2 then a pipelined HTTP/1.1 request",
        bytes: b"GET /start/pipe1 HTTP/1.2\r\nHost: start.lab\r\n\r\n\
                 GET /start/pipe2 HTTP/1.1\r\nHost: start.lab\r\nConnection: close\r\n\r\n",
        verdict: served(2, 0),
        status: 404,
    },
    Case {
        name: "an underscore in the method",
        bytes: b"MK_COL /start/method HTTP/1.1\r\nHost: start.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 405,
    },
    Case {
        name: "a lower-case method",
        bytes: b"get /reject/lower HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "a digit in the method",
        bytes: b"FOO1 /reject/digit HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "HTTP/2.0",
        bytes: b"GET /reject/v20 HTTP/2.0\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 505,
    },
    Case {
        name: "HTTP/0.9 written out",
        bytes: b"GET /reject/v09 HTTP/0.9\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "HTTP/1.1000",
        bytes: b"GET /reject/v11000 HTTP/1.1000\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "HTTP/01.1",
        bytes: b"GET /reject/v011 HTTP/01.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "a lower-case http",
        bytes: b"GET /reject/vlower http/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 400,
    },
    Case {
        name: "a 9,000-byte request line (414)",
        bytes: b"GET /reject/long@PAD@ HTTP/1.1\r\nHost: reject.lab\r\nConnection: close\r\n\r\n",
        verdict: Verdict::Rejected,
        status: 414,
    },
    // Long heads: lines under 8 KiB and a head under 32 KiB are served; past either, 400.
    Case {
        name: "a 21 KB head of 7,000-byte lines",
        bytes: b"GET /long/fits HTTP/1.1\r\nHost: long.lab\r\nX-A: @P7K@\r\nX-B: @P7K@\r\nX-C: @P7K@\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "a 9,000-byte header line",
        bytes: b"GET /long/line HTTP/1.1\r\nHost: long.lab\r\nX-A: @PAD@\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "a 42 KB head of 7,000-byte lines",
        bytes: b"GET /long/head HTTP/1.1\r\nHost: long.lab\r\nX-A: @P7K@\r\nX-B: @P7K@\r\nX-C: @P7K@\r\nX-D: @P7K@\r\nX-E: @P7K@\r\nX-F: @P7K@\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    // Header lines: nginx has read the request line, so it logs the request with its method
    // whatever it answers; a Host after a line it refuses is not read.
    Case {
        name: "a space before the colon of Host",
        bytes: b"GET /hdr/h1 HTTP/1.1\r\nHost : hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "a space in a name after Host",
        bytes: b"GET /hdr/h2 HTTP/1.1\r\nHost: hdr.lab\r\nX-A : b\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "a space in a name before Host",
        bytes: b"GET /hdr/h3 HTTP/1.1\r\nX A: b\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "no colon",
        bytes: b"GET /hdr/h4 HTTP/1.1\r\nFoo\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "obs-fold after Host",
        bytes: b"GET /hdr/h5 HTTP/1.1\r\nHost: hdr.lab\r\nX-A: b\r\n  folded\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "obs-fold before Host",
        bytes: b"GET /hdr/h6 HTTP/1.1\r\nX-A: b\r\n\tc\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "a NUL in a value before Host",
        bytes: b"GET /hdr/h7 HTTP/1.1\r\nX-A: a\0b\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "a bare-LF line refused before Host",
        bytes: b"GET /hdr/h8 HTTP/1.1\nX A: b\nHost: hdr.lab\nConnection: close\n\n",
        verdict: served(1, 1),
        status: 400,
    },
    Case {
        name: "an underscore in a name before Host",
        bytes: b"GET /hdr/h9 HTTP/1.1\r\nHost_: other.lab\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "a byte above 0x7f in a name before Host",
        bytes: b"GET /hdr/h10 HTTP/1.1\r\nX\xe9A: b\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "a control byte in a value",
        bytes: b"GET /hdr/h11 HTTP/1.1\r\nX-A: a\x01b\x7f\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "a bare CR in a value after Host",
        bytes: b"GET /hdr/h12 HTTP/1.1\r\nHost: hdr.lab\r\nX-A: a\rb\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "an empty Host",
        bytes: b"GET /hdr/h13 HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "no Host in HTTP/1.1",
        bytes: b"GET /hdr/h14 HTTP/1.1\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "two Hosts",
        bytes: b"GET /hdr/h15 HTTP/1.1\r\nHost: hdr.lab\r\nHost: other.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "a Host with a port, mixed case",
        bytes: b"GET /hdr/h16 HTTP/1.1\r\nHost: Hdr.Lab:8080\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "a Host with a trailing dot",
        bytes: b"GET /hdr/h17 HTTP/1.1\r\nHost: hdr.lab.\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    Case {
        name: "a Host with a slash",
        bytes: b"GET /hdr/h18 HTTP/1.1\r\nHost: hdr.lab/x\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "an absolute-form target naming another host",
        bytes: b"GET http://abs.lab/hdr/h19 HTTP/1.1\r\nHost: hdr.lab\r\nConnection: close\r\n\r\n",
        verdict: served(1, 0),
        status: 404,
    },
    // Framing fields nginx refuses.
    Case {
        name: "two Content-Lengths that differ",
        bytes: b"POST /hdr/b1 HTTP/1.1\r\nHost: hdr.lab\r\nContent-Length: 3\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "an invalid Content-Length",
        bytes: b"POST /hdr/b2 HTTP/1.1\r\nHost: hdr.lab\r\nContent-Length: +3\r\nConnection: close\r\n\r\nabc",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "Transfer-Encoding and Content-Length",
        bytes: b"POST /hdr/b3 HTTP/1.1\r\nHost: hdr.lab\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        verdict: served(1, 0),
        status: 400,
    },
    Case {
        name: "Transfer-Encoding gzip (501)",
        bytes: b"POST /hdr/b4 HTTP/1.1\r\nHost: hdr.lab\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\nabc",
        verdict: served(1, 0),
        status: 501,
    },
];

/// The client: one connection per file in the directory argv[1] (sorted), the whole file in
/// one send, then read until nginx closes (with a FIN, or with a reset when it closed before
/// reading all the case's bytes). Prints `file<TAB>first status line` per case.
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
    except ConnectionResetError:
        # nginx closed with bytes of ours still unread (a refused head): the kernel answers
        # those with a reset, after the answer already read, or in place of it.
        if not got:
            got = b"<reset before any answer>"
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

/// nginx's side: every logged line is a response; the lines whose request line nginx read (all
/// but the [`REJECTED_PATH`] cases') are requests (split on runs of spaces: the lenient request
/// lines keep theirs in the log). Their host is the Host nginx logged, or an absolute-form
/// target's authority, which nginx takes over Host (its `$host`) as SPEC §3 counts it.
fn truth(log: &[(u16, String, String)], bare_lf: u64) -> Counts {
    let mut c = Counts {
        bare_lf,
        ..Counts::default()
    };
    for (status, host, request) in log {
        c.responses += 1;
        *c.status.entry(status.to_string()).or_default() += 1;
        if request.contains(REJECTED_PATH) {
            continue;
        }
        let mut words = request.split_whitespace();
        let (method, target) = (
            words.next().expect("a method"),
            words.next().expect("a target"),
        );
        let host = target.split_once("://").map_or(host.as_str(), |(_, rest)| {
            rest.split(['/', '?']).next().unwrap_or_default()
        });
        // linewatch counts a method of its own table by name, any other under `other`.
        let method = match Method::of(method.as_bytes()) {
            Method::Other => OTHER_METHOD,
            _ => method,
        };
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

/// Where a case's bytes hold a pad, that many letters go on the wire: [`PAD`] makes a line
/// longer than nginx's 8 KiB header buffer, [`PAD_7K`] one just under it.
const PADS: [(&[u8], usize); 2] = [(PAD, 9_000), (PAD_7K, 7_000)];
const PAD: &[u8] = b"@PAD@";
const PAD_7K: &[u8] = b"@P7K@";

/// A case's bytes as sent: every pad replaced by its letters.
fn expand(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (pad, len) in PADS {
        while let Some(at) = out.windows(pad.len()).position(|w| w == pad) {
            out.splice(at..at + pad.len(), std::iter::repeat_n(b'a', len));
        }
    }
    out
}

/// Runs the client in the client namespace; returns its per-case lines.
fn send_cases(lab: &Lab) -> Vec<String> {
    let dir = lab.dir.join("cases");
    std::fs::create_dir_all(&dir).expect("mkdir cases");
    for (i, case) in CASES.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:02}")), expand(case.bytes)).expect("writing a case");
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
    let (capture, lw) = live::capture_and_mirror(&lab, "bare-lf");
    let port = MONITORED_PORT.to_string();
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
        // `file<TAB>HTTP/1.1 404 Not Found`: the status is the status line's second word.
        let status = answer
            .split_once('\t')
            .and_then(|(_, line)| line.split(' ').nth(1))
            .and_then(|code| code.parse::<u16>().ok());
        assert_eq!(
            status,
            Some(case.status),
            "nginx answered {answer:?} to {:?}",
            case.name
        );
        let target_rejected = expand(case.bytes)
            .windows(REJECTED_PATH.len())
            .any(|w| w == REJECTED_PATH.as_bytes());
        assert_eq!(
            target_rejected,
            case.verdict == Verdict::Rejected,
            "{:?}: a rejected case's target, and only its, is under {REJECTED_PATH}",
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
    let rejected_in_log = log
        .iter()
        .filter(|(_, _, request)| request.contains(REJECTED_PATH))
        .count() as u64;
    assert_eq!(
        (log.len() as u64 - rejected_in_log, rejected_in_log),
        (expected_served, expected_rejected),
        "nginx logged a different number of requests and refused request lines: {log:#?}"
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
        // Each answer to a refused request line answered a request linewatch did not count: it
        // has no request to match.
        assert_eq!(
            summary["unmatched_responses"].as_u64(),
            Some(expected_rejected),
            "{label}: unmatched responses"
        );
    }
}

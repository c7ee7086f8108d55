//! What nginx serves, as the parser's table: every request sent to nginx 1.22.1 (Debian 12,
//! default configuration, static files) while fitting the lenient line ends of issue 15, with
//! what nginx answered and logged, against the requests linewatch's parser reads from the same
//! bytes. The same judgement runs live against nginx in `tests/live_bare_lf.rs`; this table
//! keeps the whole survey, and runs everywhere.
//!
//! A case nginx served must yield exactly the requests nginx logged (their targets, in order);
//! a case nginx rejected in its request line (400, nothing logged but the raw line) must yield
//! none. Where linewatch knowingly differs, the case is in `DIFFERENCES` with the reason; the
//! test fails if the set of differences changes either way.

use linewatch_parser::http;

/// nginx's answer to one connection's bytes.
#[derive(Debug, Clone, Copy)]
enum Nginx {
    /// Served and logged these targets (as nginx's `$uri` before normalising: the target
    /// sent), in order.
    Served(&'static [&'static str]),
    /// Answered 400 (or, for a version it refuses, 505) without serving.
    Rejected,
}

use Nginx::{Rejected, Served};

/// (name, bytes, nginx's answer).
const CASES: &[(&str, &[u8], Nginx)] = &[
    (
        "crlf",
        b"GET /c1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/c1"]),
    ),
    (
        "lf everywhere",
        b"GET /c2 HTTP/1.1\nHost: h\nConnection: close\n\n",
        Served(&["/c2"]),
    ),
    (
        "lf after the request line",
        b"GET /c3 HTTP/1.1\nHost: h\r\n\r\n",
        Served(&["/c3"]),
    ),
    (
        "lf after a header line",
        b"GET /c4 HTTP/1.1\r\nHost: h\n\r\n",
        Served(&["/c4"]),
    ),
    (
        "lf as the empty line",
        b"GET /c5 HTTP/1.1\r\nHost: h\r\n\n",
        Served(&["/c5"]),
    ),
    (
        "mix",
        b"GET /c6 HTTP/1.1\nHost: h\r\nConnection: close\n\r\n",
        Served(&["/c6"]),
    ),
    (
        "lf cr lf as the empty line",
        b"GET /c7 HTTP/1.1\nHost: h\n\r\n",
        Served(&["/c7"]),
    ),
    (
        "three pipelined bare-lf requests",
        b"GET /p1 HTTP/1.1\nHost: h\n\nGET /p2 HTTP/1.1\nHost: h\n\nGET /p3 HTTP/1.1\nHost: h\n\n",
        Served(&["/p1", "/p2", "/p3"]),
    ),
    (
        "two spaces between tokens",
        b"GET  /s1  HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/s1"]),
    ),
    (
        "many spaces",
        b"GET    /s2     HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/s2"]),
    ),
    (
        "a space before crlf",
        b"GET /s3 HTTP/1.1 \r\nHost: h\r\n\r\n",
        Served(&["/s3"]),
    ),
    (
        "spaces before a bare lf",
        b"GET /s4   HTTP/1.1   \nHost: h\n\n",
        Served(&["/s4"]),
    ),
    (
        "two spaces before crlf",
        b"GET /s5 HTTP/1.1  \r\nHost: h\r\n\r\n",
        Served(&["/s5"]),
    ),
    (
        "a space before lf",
        b"GET /s7 HTTP/1.1 \nHost: h\n\n",
        Served(&["/s7"]),
    ),
    (
        "absolute form, several spaces",
        b"GET  http://abs.example/x/y  HTTP/1.1\nHost: h\n\n",
        Served(&["http://abs.example/x/y"]),
    ),
    (
        "empty lines (crlf) first",
        b"\r\n\r\nGET /e1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/e1"]),
    ),
    (
        "empty lines (lf) first",
        b"\n\nGET /e2 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/e2"]),
    ),
    (
        "mixed empty lines first",
        b"\r\n\n\r\nGET /e3 HTTP/1.1\nHost: h\n\n",
        Served(&["/e3"]),
    ),
    (
        "cr cr first",
        b"\r\rGET /e4 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/e4"]),
    ),
    ("http/0.9, lf", b"GET /n1\n", Served(&["/n1"])),
    ("http/0.9, crlf", b"GET /n2\r\n", Served(&["/n2"])),
    ("http/0.9, spaces then lf", b"GET /n3  \n", Served(&["/n3"])),
    // nginx answers the HTTP/0.9 line and closes; what follows is never read.
    (
        "http/0.9, a space then crlf",
        b"GET /s6 \r\nHost: h\r\n\r\n",
        Served(&["/s6"]),
    ),
    ("http/1.0, lf", b"GET /v0 HTTP/1.0\n\n", Served(&["/v0"])),
    (
        "post, content-length, lf",
        b"POST /b1 HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc",
        Served(&["/b1"]),
    ),
    (
        "chunked with lf lines, then a get",
        b"POST /b2 HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n\
          GET /b3 HTTP/1.1\nHost: h\n\n",
        Served(&["/b2", "/b3"]),
    ),
    (
        "chunked, lf after sizes only, then a get",
        b"POST /b4 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\n\r\n\
          GET /b5 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/b4", "/b5"]),
    ),
    (
        "a tab after the method",
        b"GET\t/t1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a tab before the version",
        b"GET /t2\tHTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a space before the method",
        b" GET /l1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a bare cr ends the request line",
        b"GET /r1 HTTP/1.1\rHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "cr cr lf",
        b"GET /r2 HTTP/1.1\r\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a space inside the target",
        b"GET /u1 bar/ HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a control byte in the target",
        b"GET /u2\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a lower-case method",
        b"get /m1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/2.0 (505)",
        b"GET /v3 HTTP/2.0\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/1.2",
        b"GET /v2 HTTP/1.2\r\nHost: h\r\n\r\n",
        Served(&["/v2"]),
    ),
    (
        "a space before the colon",
        b"GET /h1 HTTP/1.1\nHost : h\n\n",
        Rejected,
    ),
    (
        "a bare cr in a header line",
        b"GET /h2 HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        Rejected,
    ),
];

/// Cases where linewatch knowingly counts otherwise than nginx, with the reason.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "a lower-case method",
        "any token is a method (RFC 9110 §9.1) and linewatch counts unknown ones under Other \
         (SPEC §3; see MKCOLA among the llhttp exceptions); nginx knows only its own upper-case \
         table. Left as it was: not a line-end leniency",
    ),
    (
        "HTTP/1.2",
        "nginx serves any HTTP/1.x; llhttp's strict mode and linewatch read only 0.9, 1.0 and \
         1.1 (no client sends another, and the version is reported as read)",
    ),
    (
        "a space before the colon",
        "header lines other than the four fields linewatch reads are not validated (module \
         contract): nginx's 400 for a malformed field name is not seen",
    ),
    (
        "a bare cr in a header line",
        "as a space before the colon: header lines are split on LF and not validated",
    ),
];

/// The targets linewatch reads from `bytes`, in order.
fn ours(bytes: &[u8]) -> Vec<String> {
    http::requests(bytes)
        .map(|(_, r)| String::from_utf8_lossy(r.line.target).into_owned())
        .collect()
}

#[test]
#[allow(clippy::print_stdout)] // The table is the test's report.
fn counts_what_nginx_serves() {
    let mut differs = Vec::new();
    for &(name, bytes, nginx) in CASES {
        let got = ours(bytes);
        let want: Vec<String> = match nginx {
            Served(targets) => targets.iter().map(|t| (*t).to_owned()).collect(),
            Rejected => Vec::new(),
        };
        let reason = DIFFERENCES.iter().find(|(n, _)| *n == name);
        let verdict = if got == want { "same" } else { "DIFFERS" };
        println!("{verdict:7} {name:40} nginx {nginx:?}, linewatch {got:?}");
        if got != want {
            if let Some((_, why)) = reason {
                println!("        why: {why}");
            }
            differs.push(name);
        }
    }
    let mut listed: Vec<&str> = DIFFERENCES.iter().map(|(n, _)| *n).collect();
    differs.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        differs, listed,
        "the differences with nginx changed: explain or fix each one"
    );
}

#[test]
fn bare_lf_heads_are_flagged_and_others_are_not() {
    for &(name, bytes, nginx) in CASES {
        if !matches!(nginx, Served(_)) {
            continue;
        }
        for (at, r) in http::requests(bytes) {
            // The head's own lines, leading empty lines left out.
            let start = at
                + bytes[at..]
                    .iter()
                    .position(|&b| b != b'\r' && b != b'\n')
                    .unwrap_or(0);
            let head = &bytes[start..at + r.head_len];
            let bare = head
                .iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'));
            assert_eq!(
                r.bare_lf,
                bare,
                "{name}: {:?}",
                String::from_utf8_lossy(head)
            );
        }
    }
}

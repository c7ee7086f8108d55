//! What nginx serves, as the parser's table: every request sent to nginx 1.22.1 (Debian 12,
//! default configuration, static files) while fitting the lenient line ends of issue 15 and the
//! start-line and header-line leftovers after it, with what nginx answered and logged, against the
//! requests linewatch's parser reads from the same bytes. The same judgement runs live against
//! nginx in `tests/live_bare_lf.rs`; this table keeps the whole survey, and runs everywhere.
//!
//! A request is what nginx logs with a method: its access log has a `$request_method` for every
//! request whose request line it read, whether it served it or answered 4xx or 5xx after reading
//! its header lines (a header line or field it refuses: the request, its method, section and
//! 400 are all in the log). A request line nginx cannot read is answered 400 (505 for a version
//! above 1.x) and logged with `$request_method` `-`: that is not a request, and linewatch must
//! count none.
//!
//! A case nginx logged must yield exactly the requests nginx logged (their targets, in order);
//! a case whose request line nginx refused must yield none. `HOSTS` holds, for header-line cases,
//! the Host nginx logged (`$http_host`), which linewatch must read. Where linewatch knowingly
//! differs, the case is in `DIFFERENCES` with the reason; the test fails if the set of
//! differences changes either way.

use linewatch_parser::http;

/// nginx's answer to one connection's bytes.
#[derive(Debug, Clone, Copy)]
enum Nginx {
    /// Logged these requests with their method (served, or answered 4xx/5xx after their
    /// request line was read), by target as sent, in order.
    Served(&'static [&'static str]),
    /// Refused the request line: answered 400 (505 for a version above 1.x) and logged it with
    /// `$request_method` `-`.
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
    // The method: nginx reads `[A-Z_-]+` and refuses any other byte in it.
    (
        "a lower-case method",
        b"get /m1 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a mixed-case method",
        b"Get /m2 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a digit in the method",
        b"FOO1 /m3 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a dot in the method",
        b"G.T /m4 HTTP/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a lower-case method, HTTP/1.0",
        b"get /m5 HTTP/1.0\r\n\r\n",
        Rejected,
    ),
    (
        "an underscore in the method (405)",
        b"MK_COL /m6 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/m6"]),
    ),
    (
        "a method of one hyphen (405)",
        b"- /m7 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/m7"]),
    ),
    (
        "an unknown upper-case method (405)",
        b"QUERY /m8 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/m8"]),
    ),
    // The version: nginx reads `HTTP/1.` and a minor version up to 999 (leading zeros
    // allowed), answers 505 for a major version above 1, 400 for anything else.
    (
        "HTTP/2.0 (505)",
        b"GET /v3 HTTP/2.0\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/2 (505)",
        b"GET /v4 HTTP/2\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/10.0 (505)",
        b"GET /v5 HTTP/10.0\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/1.2",
        b"GET /v2 HTTP/1.2\r\nHost: h\r\n\r\n",
        Served(&["/v2"]),
    ),
    (
        "HTTP/1.9",
        b"GET /v6 HTTP/1.9\r\nHost: h\r\n\r\n",
        Served(&["/v6"]),
    ),
    (
        "HTTP/1.10",
        b"GET /v7 HTTP/1.10\r\nHost: h\r\n\r\n",
        Served(&["/v7"]),
    ),
    (
        "HTTP/1.999",
        b"GET /v8 HTTP/1.999\r\nHost: h\r\n\r\n",
        Served(&["/v8"]),
    ),
    (
        "HTTP/1.1000",
        b"GET /v9 HTTP/1.1000\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/1.01",
        b"GET /v10 HTTP/1.01\r\nHost: h\r\n\r\n",
        Served(&["/v10"]),
    ),
    (
        "HTTP/1.00",
        b"GET /v11 HTTP/1.00\r\n\r\n",
        Served(&["/v11"]),
    ),
    (
        "HTTP/1.0000000000001",
        b"GET /v12 HTTP/1.0000000000001\r\nHost: h\r\n\r\n",
        Served(&["/v12"]),
    ),
    (
        "HTTP/1.2, spaces and a bare lf",
        b"GET /v13 HTTP/1.2  \nHost: h\n\n",
        Served(&["/v13"]),
    ),
    (
        "HTTP/1.2 then a pipelined request",
        b"GET /v14 HTTP/1.2\r\nHost: h\r\n\r\nGET /v15 HTTP/1.1\r\nHost: h\r\n\r\n",
        Served(&["/v14", "/v15"]),
    ),
    (
        "HTTP/01.1",
        b"GET /v16 HTTP/01.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/0.9 written out",
        b"GET /v17 HTTP/0.9\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/1 without a minor version",
        b"GET /v18 HTTP/1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "HTTP/1. without a minor version",
        b"GET /v19 HTTP/1.\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a lower-case http",
        b"GET /v20 http/1.1\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a letter after the version",
        b"GET /v21 HTTP/1.1x\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    (
        "a tab after the version",
        b"GET /v22 HTTP/1.1\t\r\nHost: h\r\n\r\n",
        Rejected,
    ),
    // Header lines: nginx has read the request line, so whatever it then refuses (400, or 501
    // for an unknown transfer coding) is logged with the method, target and status.
    (
        "a space before the colon",
        b"GET /h1 HTTP/1.1\nHost : h\n\n",
        Served(&["/h1"]),
    ),
    (
        "a bare cr in a header line",
        b"GET /h2 HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        Served(&["/h2"]),
    ),
    (
        "a space before the colon, another field",
        b"GET /h3 HTTP/1.1\r\nHost: h\r\nX-A : b\r\n\r\n",
        Served(&["/h3"]),
    ),
    (
        "no colon",
        b"GET /h4 HTTP/1.1\r\nHost: h\r\nFoo\r\n\r\n",
        Served(&["/h4"]),
    ),
    (
        "no colon before Host",
        b"GET /h5 HTTP/1.1\r\nFoo\r\nHost: h\r\n\r\n",
        Served(&["/h5"]),
    ),
    (
        "obs-fold after Host",
        b"GET /h6 HTTP/1.1\r\nHost: h\r\n  folded\r\n\r\n",
        Served(&["/h6"]),
    ),
    (
        "obs-fold before Host",
        b"GET /h7 HTTP/1.1\r\nX-A: b\r\n\tc\r\nHost: h\r\n\r\n",
        Served(&["/h7"]),
    ),
    (
        "leading whitespace, then Host",
        b"GET /h8 HTTP/1.1\r\n X-A: b\r\nHost: h\r\n\r\n",
        Served(&["/h8"]),
    ),
    (
        "a nul in a value after Host",
        b"GET /h9 HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n",
        Served(&["/h9"]),
    ),
    (
        "a nul in a value before Host",
        b"GET /h10 HTTP/1.1\r\nX-A: a\0b\r\nHost: h\r\n\r\n",
        Served(&["/h10"]),
    ),
    (
        "a space in a name before Host",
        b"GET /h11 HTTP/1.1\r\nX A: b\r\nHost: h\r\n\r\n",
        Served(&["/h11"]),
    ),
    (
        "a bare-lf line refused before Host",
        b"GET /h12 HTTP/1.1\nX A: b\nHost: h\n\n",
        Served(&["/h12"]),
    ),
    (
        "a colon first before Host",
        b"GET /h13 HTTP/1.1\r\n:x\r\nHost: h\r\n\r\n",
        Served(&["/h13"]),
    ),
    (
        "a DEL in a name before Host",
        b"GET /h14 HTTP/1.1\r\nX\x7fA: b\r\nHost: h\r\n\r\n",
        Served(&["/h14"]),
    ),
    (
        "a high byte in a name before Host",
        b"GET /h15 HTTP/1.1\r\nX\xe9A: b\r\nHost: h\r\n\r\n",
        Served(&["/h15"]),
    ),
    (
        "an underscore in a name before Host",
        b"GET /h16 HTTP/1.1\r\nHost_: x\r\nHost: h\r\n\r\n",
        Served(&["/h16"]),
    ),
    (
        "a control byte in a value before Host",
        b"GET /h17 HTTP/1.1\r\nX-A: a\x01b\r\nHost: h\r\n\r\n",
        Served(&["/h17"]),
    ),
    (
        "cr cr lf before Host",
        b"GET /h18 HTTP/1.1\r\nX-A: b\r\r\nHost: h\r\n\r\n",
        Served(&["/h18"]),
    ),
    (
        "a Host with a nul",
        b"GET /h19 HTTP/1.1\r\nHost: a\0b\r\n\r\n",
        Served(&["/h19"]),
    ),
    (
        "a Host with a bare cr",
        b"GET /h20 HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        Served(&["/h20"]),
    ),
    (
        "a Host without a value",
        b"GET /h21 HTTP/1.1\r\nHost:\r\n\r\n",
        Served(&["/h21"]),
    ),
    (
        "no Host in HTTP/1.1",
        b"GET /h22 HTTP/1.1\r\n\r\n",
        Served(&["/h22"]),
    ),
    (
        "duplicate Host, differing",
        b"GET /h23 HTTP/1.1\r\nHost: h\r\nHost: o\r\n\r\n",
        Served(&["/h23"]),
    ),
    (
        "a Host with a port",
        b"GET /h24 HTTP/1.1\r\nHost: H.Lab:8080\r\n\r\n",
        Served(&["/h24"]),
    ),
    (
        "a Host with a slash",
        b"GET /h25 HTTP/1.1\r\nHost: a/b\r\n\r\n",
        Served(&["/h25"]),
    ),
    (
        "duplicate Content-Length, differing",
        b"POST /h26 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        Served(&["/h26"]),
    ),
    (
        "an invalid Content-Length",
        b"POST /h27 HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc",
        Served(&["/h27"]),
    ),
    (
        "Transfer-Encoding and Content-Length",
        b"POST /h28 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n",
        Served(&["/h28"]),
    ),
    (
        "Transfer-Encoding gzip (501)",
        b"POST /h29 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        Served(&["/h29"]),
    ),
    (
        "absolute form with another Host",
        b"GET http://abs.lab/h30 HTTP/1.1\r\nHost: other.lab\r\n\r\n",
        Served(&["http://abs.lab/h30"]),
    ),
];

/// For header-line cases: the Host nginx logged (`$http_host`, `-` when it read none). nginx
/// reads header lines in order and stops at the first it refuses, so a Host after such a line
/// is not logged.
const HOSTS: &[(&str, &str)] = &[
    ("a space before the colon", "-"),
    ("a space before the colon, another field", "h"),
    ("no colon before Host", "h"),
    ("obs-fold after Host", "h"),
    ("obs-fold before Host", "-"),
    ("leading whitespace, then Host", "-"),
    ("a nul in a value after Host", "h"),
    ("a nul in a value before Host", "-"),
    ("a space in a name before Host", "-"),
    ("a bare-lf line refused before Host", "-"),
    ("a colon first before Host", "-"),
    ("a DEL in a name before Host", "-"),
    ("a high byte in a name before Host", "h"),
    ("an underscore in a name before Host", "h"),
    ("a control byte in a value before Host", "h"),
    ("cr cr lf before Host", "h"),
    ("a Host with a nul", "-"),
    ("a Host with a bare cr", "-"),
    ("a Host without a value", ""),
    ("no Host in HTTP/1.1", "-"),
    ("duplicate Host, differing", "h"),
    ("a Host with a port", "H.Lab:8080"),
    ("absolute form with another Host", "other.lab"),
];

/// Cases where linewatch knowingly counts otherwise than nginx, with the reason.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "a Host with a nul",
        "nginx refuses the Host line itself (400, logged without Host); linewatch checks the \
         lines before Host as nginx does but not Host's own value, which would cost every \
         request a scan of it. The request, its method, section and 400 are counted the same; \
         only the Host it is counted under differs (as sent, escaped in reports)",
    ),
    (
        "a Host with a bare cr",
        "as a Host with a nul: a CR inside Host's value is not looked for",
    ),
];

/// The targets linewatch reads from `bytes`, in order.
fn ours(bytes: &[u8]) -> Vec<String> {
    http::requests(bytes)
        .map(|(_, r)| String::from_utf8_lossy(r.line.target).into_owned())
        .collect()
}

/// The Host field linewatch reads in the first request of `bytes` (`-` when none), as nginx's
/// `$http_host` shows it.
fn our_host(bytes: &[u8]) -> String {
    http::requests(bytes)
        .next()
        .and_then(|(_, r)| r.host)
        .map_or_else(
            || "-".to_owned(),
            |h| String::from_utf8_lossy(h).into_owned(),
        )
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
        let host_differs = HOSTS.iter().find(|(n, _)| *n == name).map(|(_, host)| {
            let ours = our_host(bytes);
            let verdict = if ours == *host { "same" } else { "DIFFERS" };
            println!("{verdict:7}   Host: nginx {host:?}, linewatch {ours:?}");
            ours != *host
        });
        if got != want || host_differs == Some(true) {
            if let Some((_, why)) = reason {
                println!("        why: {why}");
            }
            differs.push(name);
        }
    }
    for (name, _) in HOSTS {
        assert!(
            CASES.iter().any(|(n, ..)| n == name),
            "HOSTS names no case {name:?}"
        );
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

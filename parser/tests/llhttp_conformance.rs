//! Conformance of our start lines with llhttp's own test cases.
//!
//! `../shared/corpus/parser/llhttp_{requests,responses}.jsonl` hold llhttp's request and
//! response cases with what llhttp (strict by default) made of them. For every strict case this
//! test compares the *start line*: whether it is an error, and if not its method, target and
//! version (requests) or version and status code (responses). Errors llhttp raises later in the
//! head or body are not start-line errors; there the start line must parse and match.
//!
//! Where nginx serves what llhttp's strict mode rejects (a bare LF as a line end, several
//! spaces between the request line's tokens), linewatch follows nginx: those cases are
//! exceptions below, each checked against nginx's access log (`tests/live_bare_lf.rs`).
//! linewatch also reads request versions, methods and the header lines before Host as nginx
//! does (any `HTTP/1.` minor version up to 999; methods of `[A-Z_-]` only; no Host after a
//! header line nginx refuses): llhttp's cases hold none of those (the counts and exceptions
//! were the same before and after), so they are measured against nginx in
//! `parser/tests/nginx_lenient.rs` instead.
//!
//! Every disagreement is listed in `EXCEPTIONS` with the reason linewatch differs on purpose;
//! the test fails if the set of disagreements changes in either direction. Where our head
//! parse completes and llhttp reports Host or User-Agent, those must match too.

#![allow(clippy::print_stdout)]

mod common;

use common::{llhttp_cases, LlhttpCase};
use linewatch_parser::http::{self, Status, Version};
use serde_json::Value;

/// Strict cases where linewatch deliberately differs from llhttp, with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "test/request/invalid.md:66",
        "ANNOUNCE with HTTP/1.0: an unknown method is still an HTTP request to a monitor, and \
         SPEC §3 counts unknown methods; llhttp accepts only the methods in its own table",
    ),
    (
        "test/request/invalid.md:356",
        "MKCOLA: an unknown method token, counted like any other (see ANNOUNCE)",
    ),
    (
        "test/request/method.md:372",
        "SOURCE ... ICE/1.0: Icecast's protocol is not HTTP; linewatch counts it as not_http",
    ),
    (
        "test/request/method.md:400",
        "OPTIONS ... RTSP/1.0: RTSP is not HTTP; counted as not_http",
    ),
    (
        "test/request/method.md:430",
        "ANNOUNCE ... RTSP/1.0: RTSP is not HTTP; counted as not_http",
    ),
    (
        "test/request/uri.md:148",
        "raw UTF-8 in the path: llhttp's strict mode rejects it, but nginx and Apache serve \
         such requests, so a monitor that dropped them would undercount what servers answered",
    ),
    (
        "test/request/invalid.md:531",
        "bare LF after the request line (then bare-LF headers and chunk lines): nginx 1.22 serves \
         such a request and logs it (checked in the lab: tests/live_bare_lf.rs), and RFC 9112 \
         §2.2 lets a recipient take a bare LF as a line end; a monitor that rejected it would \
         miss what the server answered. Counted under `bare_lf` too",
    ),
    (
        "test/response/invalid.md:287",
        "bare LF after the status line: RFC 9112 §2.2 lets a recipient accept it and llhttp's \
         lenient mode does; linewatch reads request and response line ends alike (see \
         invalid.md:531) and counts the response under `bare_lf`",
    ),
    (
        "test/response/invalid.md:327",
        "bare LF after the status line, headers and empty line: as invalid.md:287",
    ),
    (
        "test/response/sample.md:330",
        "a real server's head with bare LFs (news.ycombinator.com): as invalid.md:287; a \
         client that accepts it got a response, so the monitor counts it",
    ),
    (
        "test/response/sample.md:40",
        "RTSP/1.1 status line: RTSP is not HTTP; counted as not_http",
    ),
    (
        "test/response/sample.md:60",
        "ICE/1.1 status line: not HTTP; counted as not_http",
    ),
];

/// What a start line came to.
#[derive(Debug, PartialEq)]
enum StartLine {
    /// Parsed: method (requests only), target or status code, version.
    Parsed {
        method: Option<String>,
        target_or_code: String,
        version: Option<String>,
    },
    /// Rejected.
    Error(String),
    /// The input ends inside a line that is valid so far.
    Incomplete,
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// llhttp skips empty lines before a message, as [`http::parse_request`] does.
fn after_empty_lines(mut input: &[u8]) -> &[u8] {
    loop {
        input = match input {
            [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] => rest,
            _ => return input,
        };
    }
}

fn version_number(version: Version) -> Option<String> {
    Some(version.as_str().trim_start_matches("HTTP/").to_owned())
}

fn ours(case: &LlhttpCase, request: bool) -> StartLine {
    let input = after_empty_lines(&case.input);
    if request {
        match http::parse_request_line(input) {
            Ok(Status::Complete((line, _))) => StartLine::Parsed {
                method: Some(lossy(line.method)),
                target_or_code: lossy(line.target),
                // llhttp reports no version for an HTTP/0.9 request line.
                version: (line.version != Version::Http09)
                    .then(|| version_number(line.version))
                    .flatten(),
            },
            Ok(Status::Partial) => StartLine::Incomplete,
            Err(error) => StartLine::Error(error.name().to_owned()),
        }
    } else {
        match http::parse_status_line(input) {
            Ok(Status::Complete((line, _))) => StartLine::Parsed {
                method: None,
                target_or_code: line.code.to_string(),
                version: version_number(line.version),
            },
            Ok(Status::Partial) => StartLine::Incomplete,
            Err(error) => StartLine::Error(error.name().to_owned()),
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn theirs(case: &LlhttpCase, request: bool) -> StartLine {
    let start_line_error =
        !case.expect["ok"].as_bool().unwrap_or(false) && case.expect["error_in_start_line"] == true;
    if start_line_error {
        return StartLine::Error(text(&case.expect["error"]["name"]).unwrap_or_default());
    }
    StartLine::Parsed {
        method: if request {
            text(&case.first["method"])
        } else {
            None
        },
        target_or_code: if request {
            text(&case.first["url"]).unwrap_or_default()
        } else {
            text(&case.first["status_code"]).unwrap_or_default()
        },
        version: text(&case.first["version"]),
    }
}

/// Whether the two agree: both errors (the error names differ between the parsers), or the
/// same parsed fields. llhttp's extraction leaves a response's status code out when a later
/// header error stopped the message (the version is still there); only what it reported is
/// compared.
fn agree(ours: &StartLine, theirs: &StartLine) -> bool {
    match (ours, theirs) {
        (StartLine::Error(_), StartLine::Error(_)) => true,
        (
            StartLine::Parsed {
                method: None,
                version,
                ..
            },
            StartLine::Parsed {
                method: None,
                target_or_code,
                version: their_version,
            },
        ) if target_or_code.is_empty() => version == their_version,
        (ours, theirs) => ours == theirs,
    }
}

/// Host and User-Agent as llhttp reported them, against ours, for cases whose head we read.
/// Returns how many fields were compared and the ones that differ.
fn header_disagreements(case: &LlhttpCase) -> (usize, Vec<String>) {
    let mut compared = 0;
    let mut out = Vec::new();
    if let Ok(Status::Complete(request)) = http::parse_request(&case.input) {
        for (name, expected, got) in [
            ("host", &case.first["host"], request.host),
            ("user_agent", &case.first["user_agent"], request.user_agent),
        ] {
            if let Some(expected) = text(expected) {
                compared += 1;
                let got = got.map(lossy);
                if got.as_deref() != Some(expected.trim()) {
                    out.push(format!("{}: {name} {expected:?} vs ours {got:?}", case.id));
                }
            }
        }
    }
    (compared, out)
}

#[test]
fn start_lines_agree_with_llhttp() {
    let Some(requests) = llhttp_cases("llhttp_requests.jsonl") else {
        return;
    };
    let Some(responses) = llhttp_cases("llhttp_responses.jsonl") else {
        return;
    };

    let mut disagreements = Vec::new();
    let mut header_problems = Vec::new();
    let mut headers_compared = 0;
    println!("llhttp start-line conformance (strict cases; lenient cases for information):");
    for (kind, cases, request) in [
        ("requests", &requests, true),
        ("responses", &responses, false),
    ] {
        let (mut strict, mut strict_agree, mut lenient, mut lenient_agree) = (0, 0, 0, 0);
        let (mut valid, mut valid_agree, mut invalid, mut invalid_agree) = (0, 0, 0, 0);
        for case in cases.iter() {
            let (ours, theirs) = (ours(case, request), theirs(case, request));
            let agrees = agree(&ours, &theirs);
            if !case.strict {
                lenient += 1;
                lenient_agree += usize::from(agrees);
                continue;
            }
            strict += 1;
            strict_agree += usize::from(agrees);
            if matches!(theirs, StartLine::Error(_)) {
                invalid += 1;
                invalid_agree += usize::from(agrees);
            } else {
                valid += 1;
                valid_agree += usize::from(agrees);
            }
            if !agrees {
                disagreements.push((case.id.clone(), case.name.clone(), ours, theirs));
            }
            if request && case.expect["ok"] == true {
                let (compared, problems) = header_disagreements(case);
                headers_compared += compared;
                header_problems.extend(problems);
            }
        }
        println!(
            "  {kind:9}: strict {strict_agree}/{strict} agree (valid start line {valid_agree}/{valid}, \
             invalid {invalid_agree}/{invalid}); lenient-mode cases {lenient_agree}/{lenient}"
        );
    }

    for (id, name, ours, theirs) in &disagreements {
        let reason = EXCEPTIONS
            .iter()
            .find(|(e, _)| e == id)
            .map_or("NOT LISTED", |(_, r)| r);
        println!(
            "  differs {id} ({name}): ours {ours:?}, llhttp {theirs:?}\n          why: {reason}"
        );
    }
    let mut found: Vec<&str> = disagreements.iter().map(|(id, ..)| id.as_str()).collect();
    let mut listed: Vec<&str> = EXCEPTIONS.iter().map(|(id, _)| *id).collect();
    found.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        found, listed,
        "the disagreements with llhttp changed: explain or fix each one"
    );
    println!(
        "  Host/User-Agent: {} of {headers_compared} fields llhttp reported agree",
        headers_compared - header_problems.len()
    );
    assert!(
        header_problems.is_empty(),
        "Host/User-Agent differ: {header_problems:#?}"
    );
    // The field comparison must have had something to compare (the corpus has dozens).
    assert!(
        headers_compared >= 10,
        "only {headers_compared} Host/User-Agent fields compared"
    );
}

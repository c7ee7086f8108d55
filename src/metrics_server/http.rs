//! The HTTP of the metrics endpoint: where a request head ends, and the whole response to a
//! complete head. The request line is read by `linewatch-parser`, as the monitored traffic is;
//! the header fields are not looked at. Nothing here panics on any bytes.

use linewatch_parser::http::{parse_request_line, Method, Status, Version};

use super::CONTENT_TYPE;

/// The media type of every other answer: one line of text.
const TEXT: &str = "text/plain; charset=utf-8";

/// Length of the request head (through its blank line: CRLF CRLF, or a bare LF LF), looking
/// from `from` on.
pub(super) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let tail = buf.get(from..)?;
    let crlf = tail
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = tail.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(from + end)
}

/// The response to a complete request head. The request line is read by the parser crate (the
/// same code that reads the monitored traffic); the header fields are not looked at.
pub(super) fn answer(head: &[u8], render: &(dyn Fn() -> String + Send + Sync)) -> Vec<u8> {
    let line = request_line(head);
    let request = match parse_request_line(line) {
        Ok(Status::Complete((request, _))) if request.version != Version::Http09 => request,
        // HTTP/0.9's `GET /path` lands here too, as a bad line (it has no version).
        _ if refused_for_version(line) => {
            return error("505 HTTP Version Not Supported", "HTTP/1.x only\n")
        }
        _ => return error("400 Bad Request", "bad request line\n"),
    };
    let head_only = match request.method_kind() {
        Method::Get => false,
        Method::Head => true,
        _ => return method_not_allowed(),
    };
    match path(request.target) {
        Some(b"/metrics") => {
            let body = render();
            response("200 OK", CONTENT_TYPE, body.as_bytes(), head_only)
        }
        Some(b"/") => response(
            "200 OK",
            TEXT,
            b"linewatch: metrics for Prometheus are at /metrics\n",
            head_only,
        ),
        Some(_) => response(
            "404 Not Found",
            TEXT,
            b"not found; metrics are at /metrics\n",
            head_only,
        ),
        None => error("400 Bad Request", "bad request target\n"),
    }
}

/// The first line of `head`, through its LF. The parser reads line ends as nginx does (CRLF
/// or a bare LF, RFC 9112 §2.2), so a request typed into `nc` is taken as it is.
fn request_line(head: &[u8]) -> &[u8] {
    let end = head
        .iter()
        .position(|&b| b == b'\n')
        .map_or(head.len(), |lf| lf + 1);
    head.get(..end).unwrap_or_default()
}

/// True when the parser refused `line` for its version alone (`HTTP/2.0`, `HTTP/0.9`, `FOO`):
/// the line is three words, and the first two could begin a request line, which the parser
/// says by answering Partial (it does so only while every byte seen could still begin one).
fn refused_for_version(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(_), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    let method_and_target = line.get(..method.len() + target.len() + 2);
    parse_request_line(method_and_target.unwrap_or_default()) == Ok(Status::Partial)
}

/// The path of a request target (origin form `/p?q`, or absolute form `http://h/p?q`).
fn path(target: &[u8]) -> Option<&[u8]> {
    let target = match target.iter().position(|&b| b == b'?') {
        Some(q) => target.get(..q)?,
        None => target,
    };
    if target.starts_with(b"/") {
        return Some(target);
    }
    let lower = target.to_ascii_lowercase();
    let scheme = if lower.starts_with(b"http://") {
        7
    } else if lower.starts_with(b"https://") {
        8
    } else {
        return None;
    };
    let rest = target.get(scheme..)?;
    match rest.iter().position(|&b| b == b'/') {
        Some(slash) => rest.get(slash..),
        None => Some(b"/"),
    }
}

/// A 405, which says what is allowed (RFC 9110 §15.5.6).
fn method_not_allowed() -> Vec<u8> {
    let body = b"method not allowed: use GET or HEAD\n";
    let mut out = head(
        "405 Method Not Allowed",
        TEXT,
        body.len(),
        "Allow: GET, HEAD\r\n",
    );
    out.extend_from_slice(body);
    out
}

/// An error answer: `text` as a plain-text body.
pub(super) fn error(status: &str, text: &str) -> Vec<u8> {
    response(status, TEXT, text.as_bytes(), false)
}

/// A whole response; for HEAD (`head_only`) the same head without the body.
fn response(status: &str, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut out = head(status, content_type, body.len(), "");
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// A response head; `extra` is more header lines, each ending in CRLF.
fn head(status: &str, content_type: &str, len: usize, extra: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n{extra}\r\n"
    )
    .into_bytes()
}
#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "# EOF\n";

    #[test]
    fn request_lines_are_read_by_the_parser() {
        let render = || BODY.to_owned();
        for (head, want) in [
            (&b"GET /metrics HTTP/1.1\r\n\r\n"[..], "200 OK"),
            (b"GET /metrics HTTP/1.0\nHost: a\n\n", "200 OK"),
            (b"HEAD / HTTP/1.1\r\n\r\n", "200 OK"),
            (b"GET /%ff\xff HTTP/1.1\r\n\r\n", "404 Not Found"),
            // A method byte nginx does not read (lower case): a bad request line, as to nginx.
            (b"get /metrics HTTP/1.1\r\n\r\n", "400 Bad Request"),
            (b"M-SEARCH * HTTP/1.1\r\n\r\n", "405 Method Not Allowed"),
            (
                b"GET /metrics HTTP/0.9\r\n\r\n",
                "505 HTTP Version Not Supported",
            ),
            (
                b"GET /metrics RTSP/1.0\r\n\r\n",
                "505 HTTP Version Not Supported",
            ),
            (b"BREW /pot HTTP/2.0\n\n", "505 HTTP Version Not Supported"),
            (b"GET / \r\n\r\n", "505 HTTP Version Not Supported"),
            (b"\r\nGET /metrics HTTP/1.1\r\n\r\n", "400 Bad Request"),
            (b"GET /a\tb HTTP/1.1\r\n\r\n", "400 Bad Request"),
            (b"GET /a\x7f HTTP/2.0\r\n\r\n", "400 Bad Request"),
            (b"GET ftp://h/metrics HTTP/1.1\r\n\r\n", "400 Bad Request"),
            (b"G T /metrics HTTP/1.1\r\n\r\n", "400 Bad Request"),
        ] {
            let out = answer(head, &render);
            let line = out.split(|&b| b == b'\r').next().unwrap_or_default();
            let want = format!("HTTP/1.1 {want}");
            assert_eq!(String::from_utf8_lossy(line), want, "{head:?}");
        }
    }
}

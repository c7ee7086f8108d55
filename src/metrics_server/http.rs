//! The HTTP of the metrics endpoint: where a request head ends, and the whole response to a
//! complete head. The request line is read by `linewatch-parser`, as the monitored traffic is;
//! the header fields are not looked at. A response is its head and, for a scrape, the
//! exposition as a shared buffer (scrapes that overlap share one rendering: see
//! [`super::exposition`]). Nothing here panics on any bytes.

use std::sync::Arc;

use linewatch_parser::http::{parse_request_line, Method, Status, Version};

use super::CONTENT_TYPE;

/// The media type of every other answer: one line of text.
const TEXT: &str = "text/plain; charset=utf-8";

/// A response to write: `head` (with the whole body of every short answer), then `body` (the
/// exposition of a scrape).
#[derive(Debug)]
pub(super) struct Response {
    pub(super) head: Vec<u8>,
    pub(super) body: Option<Arc<[u8]>>,
}

impl Response {
    /// The bytes still to write after `sent`: the rest of the head, and of the body.
    pub(super) fn rest(&self, sent: usize) -> (&[u8], &[u8]) {
        let body = self.body.as_deref().unwrap_or_default();
        match self.head.get(sent..) {
            Some(head) => (head, body),
            None => (
                &[],
                body.get(sent.saturating_sub(self.head.len())..)
                    .unwrap_or_default(),
            ),
        }
    }
}

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
pub(super) fn answer(request_head: &[u8], render: &mut dyn FnMut() -> Arc<[u8]>) -> Response {
    let line = request_line(request_head);
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
            Response {
                head: head("200 OK", CONTENT_TYPE, body.len(), ""),
                body: (!head_only).then_some(body),
            }
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
fn method_not_allowed() -> Response {
    let body = b"method not allowed: use GET or HEAD\n";
    let mut out = head(
        "405 Method Not Allowed",
        TEXT,
        body.len(),
        "Allow: GET, HEAD\r\n",
    );
    out.extend_from_slice(body);
    Response {
        head: out,
        body: None,
    }
}

/// An error answer: `text` as a plain-text body.
pub(super) fn error(status: &str, text: &str) -> Response {
    response(status, TEXT, text.as_bytes(), false)
}

/// A whole response; for HEAD (`head_only`) the same head without the body.
fn response(status: &str, content_type: &str, body: &[u8], head_only: bool) -> Response {
    let mut out = head(status, content_type, body.len(), "");
    if !head_only {
        out.extend_from_slice(body);
    }
    Response {
        head: out,
        body: None,
    }
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
        let mut render = || Arc::from(BODY.as_bytes());
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
            let out = answer(head, &mut render).head;
            let line = out.split(|&b| b == b'\r').next().unwrap_or_default();
            let want = format!("HTTP/1.1 {want}");
            assert_eq!(String::from_utf8_lossy(line), want, "{head:?}");
        }
    }

    #[test]
    fn a_scrape_is_the_head_then_the_shared_body_and_head_has_no_body() {
        let body: Arc<[u8]> = Arc::from(BODY.as_bytes());
        let mut render = || Arc::clone(&body);
        let get = answer(b"GET /metrics HTTP/1.1\r\n\r\n", &mut render);
        let shared = get.body.as_ref().expect("a body");
        assert!(
            Arc::ptr_eq(shared, &body),
            "the rendering is shared, not copied"
        );
        assert!(String::from_utf8_lossy(&get.head).ends_with("\r\n\r\n"));
        // The rest after each byte sent is the remainder of head then body, and ends empty.
        let whole = [get.head.as_slice(), BODY.as_bytes()].concat();
        for sent in 0..=whole.len() {
            let (h, b) = get.rest(sent);
            assert_eq!([h, b].concat(), whole[sent..], "{sent}");
        }
        let head_only = answer(b"HEAD /metrics HTTP/1.1\r\n\r\n", &mut render);
        assert!(head_only.body.is_none());
        assert!(String::from_utf8_lossy(&head_only.head)
            .contains(&format!("Content-Length: {}\r\n", BODY.len())));
    }
}

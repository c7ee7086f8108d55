//! Request heads: `method SP target SP HTTP/x.y CRLF` and the header block after it.

use super::headers::{self, HeadFields};
use super::target::{self, TargetForm};
use super::{class, line_end, scan, skip_empty_lines, Body, HttpError, Status, Version};

/// The longest method token read before the bytes are judged not to be HTTP. The longest
/// registered method, `UPDATEREDIRECTREF`, has 17 bytes.
pub const MAX_METHOD_LEN: usize = 24;

/// The bytes of `HTTP/d.d` after the target's space.
const VERSION_LEN: usize = 8;

/// Methods with a counter slot of their own; every other token is [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// CONNECT
    Connect,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
    /// PATCH
    Patch,
    /// Any other token (WebDAV, QUERY, PURGE, custom methods...).
    Other,
}

impl Method {
    /// Every variant, in counter-index order.
    pub const ALL: [Method; 10] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Connect,
        Method::Options,
        Method::Trace,
        Method::Patch,
        Method::Other,
    ];

    /// Classifies a method token (methods are case-sensitive: `get` is `Other`).
    #[inline]
    pub fn of(token: &[u8]) -> Method {
        // Most requests are GETs: one length and one 3-byte compare settle them (the match
        // below starts with a jump on the length, then compares byte by byte: callgrind, about
        // 24 instructions for a GET).
        if token == b"GET" {
            return Method::Get;
        }
        Self::of_any(token)
    }

    /// [`Method::of`] for every token.
    fn of_any(token: &[u8]) -> Method {
        match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"CONNECT" => Method::Connect,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            _ => Method::Other,
        }
    }

    /// This method's counter slot.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// A request line, borrowed from the input. Two lines are equal when their method, target and
/// version are (the section length the parse may have kept follows from the target).
#[derive(Clone, Copy)]
pub struct RequestLine<'a> {
    /// The method token, e.g. `GET`.
    pub method: &'a [u8],
    /// The request target as sent.
    pub target: &'a [u8],
    /// The protocol version ([`Version::Http09`] when the line has none).
    pub version: Version,
    /// The length of the target's section when the parse found it (0: not found, computed
    /// by [`RequestLine::section`] when asked).
    section_len: usize,
    /// The method's counter class, told while the method was read.
    kind: Method,
}

impl PartialEq for RequestLine<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.method, self.target, self.version) == (other.method, other.target, other.version)
    }
}

impl Eq for RequestLine<'_> {}

impl core::fmt::Debug for RequestLine<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RequestLine")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("version", &self.version)
            .finish()
    }
}

impl<'a> RequestLine<'a> {
    /// The method's counter class.
    pub fn method_kind(&self) -> Method {
        self.kind
    }

    /// The target's form.
    pub fn target_form(&self) -> TargetForm {
        // A section kept by the parse is an origin-form target's.
        if self.section_len != 0 {
            return TargetForm::Origin;
        }
        TargetForm::of(self.target)
    }

    /// The section the request is counted under (see [`super::section`]).
    pub fn section(&self) -> &'a [u8] {
        match self.target.get(..self.section_len) {
            Some(section) if self.section_len != 0 => section,
            _ => target::section(self.target),
        }
    }

    /// The authority of an absolute-form target, which takes precedence over Host.
    pub fn authority(&self) -> Option<&'a [u8]> {
        target::authority(self.target)
    }
}

/// A request head: the line and the header fields linewatch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    /// The request line.
    pub line: RequestLine<'a>,
    /// The Host field's value as sent, OWS trimmed; `None` if absent.
    pub host: Option<&'a [u8]>,
    /// The User-Agent field's value, OWS trimmed; `None` if absent.
    pub user_agent: Option<&'a [u8]>,
    /// How the body after the head is framed.
    pub body: Body,
    /// Bytes from the start of the input to the end of the head (empty lines before the
    /// request line included).
    pub head_len: usize,
    /// The first defect in the header block; the request is still a request.
    pub defect: Option<HttpError>,
    /// A line of the head (the request line, a header line or the empty line) ended in a bare
    /// LF rather than CRLF. Empty lines before the request line are not part of the head.
    pub bare_lf: bool,
}

/// Reads the request head at the start of `buf` (after any empty lines). Always inlined:
/// the engine's request loop is its one hot caller, and there it saves a call and the
/// `Request` copied out of it (3 instructions a frame on the engine's bench mix).
#[inline(always)]
pub fn parse_request(buf: &[u8]) -> Result<Status<Request<'_>>, HttpError> {
    let start = skip_empty_lines(buf);
    let (line, line_len) = match parse_request_line(&buf[start..])? {
        Status::Complete(parsed) => parsed,
        Status::Partial => return Ok(Status::Partial),
    };
    let headers_at = start + line_len;
    // HTTP/0.9 has no header block: the head is the line.
    let mut fields = HeadFields::none(headers_at);
    if line.version != Version::Http09 && headers::scan(buf, headers_at, &mut fields).is_partial() {
        return Ok(Status::Partial);
    }
    let body = fields.request_body();
    // The line is at least `GET /` and its LF: the byte before the LF is in `buf`.
    let line_bare_lf = buf[headers_at - 2] != b'\r';
    Ok(Status::Complete(Request {
        line,
        host: fields.host,
        user_agent: fields.user_agent,
        body,
        head_len: fields.end,
        defect: fields.defect,
        bare_lf: line_bare_lf || fields.bare_lf,
    }))
}

/// The longest request line nginx reads, line end included: one of its large header buffers
/// (`large_client_header_buffers 4 8k`); a longer one is answered 414 and logged without a
/// method, so it is not a request.
pub const MAX_REQUEST_LINE: usize = 8 * 1024;

/// Reads a request line at the very start of `buf`; returns it with its length (line end
/// included). Unlike [`parse_request`] it neither skips empty lines before the line nor waits for
/// the header block, so a caller whose head outgrew its buffer can still count the line.
///
/// Beyond llhttp's strict grammar it accepts what nginx serves: a bare LF as the line end,
/// several SPs between the tokens, and SPs between the version (or an HTTP/0.9 target) and the
/// line end.
#[inline]
pub fn parse_request_line(buf: &[u8]) -> Result<Status<(RequestLine<'_>, usize)>, HttpError> {
    let (method_len, kind) = match method_len(buf)? {
        Status::Complete(read) => read,
        Status::Partial => return Ok(Status::Partial),
    };
    let method = &buf[..method_len];
    // An error after a known method is malformed HTTP; after an unknown token it is more
    // likely not HTTP at all.
    let fail = |error: HttpError| {
        if kind == Method::Other {
            HttpError::NotHttp
        } else {
            error
        }
    };

    let mut target_at = method_len + 1;
    let (mut target_len, section_len) = scan::target_end_and_section(&buf[target_at..]);
    if target_len == 0 && buf.get(target_at) == Some(&b' ') {
        // Several SPs after the method, which nginx serves: off the common path.
        target_at = skip_spaces(buf, target_at);
        target_len = scan::target_end(&buf[target_at..]);
    }
    let after_method = &buf[target_at..];
    let Some(&sep_byte) = after_method.get(target_len) else {
        // Every byte so far may stand in a target, up to nginx's limit.
        if buf.len() > MAX_REQUEST_LINE {
            return Err(HttpError::RequestLineTooLong);
        }
        return Ok(Status::Partial);
    };
    let target = &after_method[..target_len];
    if target.is_empty() {
        return Err(fail(HttpError::InvalidTarget));
    }

    let sep = target_at + target_len;
    match sep_byte {
        b' ' => {}
        b'\r' | b'\n' => return http_09(method, target, buf, sep).map_err(fail),
        _ => return Err(fail(HttpError::InvalidTarget)),
    }
    let version_at = sep + 1;
    let (version, len) = match version_and_end(buf, version_at) {
        Ok(Status::Complete(parsed)) => parsed,
        Ok(Status::Partial) => return Ok(Status::Partial),
        // More SPs before the version, or an HTTP/0.9 line with SPs before its end: nginx
        // serves both. Checked only once the strict reading failed.
        Err(_) if matches!(buf.get(version_at), Some(b' ' | b'\r' | b'\n')) => {
            return lenient_after_target(method, target, buf, version_at).map_err(fail);
        }
        Err(error) => return Err(fail(error)),
    };
    if len > MAX_REQUEST_LINE {
        return Err(HttpError::RequestLineTooLong);
    }
    let line = RequestLine {
        method,
        target,
        version,
        section_len,
        kind,
    };
    Ok(Status::Complete((line, len)))
}

/// The version at `at`, then SPs (nginx serves them) and the line end (CRLF or a bare LF).
/// Returns the version and the index past the line end.
#[inline]
fn version_and_end(buf: &[u8], at: usize) -> Result<Status<(Version, usize)>, HttpError> {
    /// The versions as little-endian words, so one load and compare checks all 8 bytes.
    const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
    const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");
    if let Some(&[a, b, c, d, e, f, g, h]) = buf.get(at..at + VERSION_LEN) {
        let after = at + VERSION_LEN;
        if let Some(b"\r\n") = buf.get(after..after + 2) {
            match u64::from_le_bytes([a, b, c, d, e, f, g, h]) {
                HTTP_11 => return Ok(Status::Complete((Version::Http11, after + 2))),
                HTTP_10 => return Ok(Status::Complete((Version::Http10, after + 2))),
                _ => {}
            }
        }
    }
    lenient_version_and_end(buf, at)
}

/// [`version_and_end`] off the common path: the version read as nginx reads it, then SPs and a
/// CRLF or bare LF.
#[cold]
fn lenient_version_and_end(buf: &[u8], at: usize) -> Result<Status<(Version, usize)>, HttpError> {
    let (version, after) = match nginx_version(buf, at)? {
        Status::Complete(parsed) => parsed,
        Status::Partial => return Ok(Status::Partial),
    };
    Ok(
        match line_end(buf, skip_spaces(buf, after), HttpError::InvalidVersion)? {
            Status::Complete((len, _)) => Status::Complete((version, len)),
            Status::Partial => Status::Partial,
        },
    )
}

/// A request's version as nginx 1.22 reads it: `HTTP/1.` and a minor version of decimal digits
/// whose value is at most [`MAX_MINOR`] (leading zeros allowed: `HTTP/1.01` is 1.1). nginx
/// answers 505 to a major version above 1 and 400 to `HTTP/0.9` written out, `HTTP/01.1`, a
/// missing minor version or lower-case `http`, logging no method: none of them is a request.
/// Returns the version and the index just past it.
fn nginx_version(buf: &[u8], at: usize) -> Result<Status<(Version, usize)>, HttpError> {
    /// The largest minor version nginx reads.
    const MAX_MINOR: u32 = 999;
    const PREFIX: &[u8] = b"HTTP/1.";
    /// How much of [`PREFIX`] names the protocol: a mismatch there is not HTTP at all.
    const PROTOCOL_LEN: usize = "HTTP/".len();
    let rest = &buf[at..];
    for (i, &want) in PREFIX.iter().enumerate() {
        match rest.get(i) {
            None => return Ok(Status::Partial),
            Some(&byte) if byte == want => {}
            Some(_) if i < PROTOCOL_LEN => return Err(HttpError::NotHttp),
            Some(_) => return Err(HttpError::InvalidVersion),
        }
    }
    let digits = &rest[PREFIX.len()..];
    let len = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let minor = digits[..len]
        .iter()
        .try_fold(0u32, |n, &b| {
            let n = n * 10 + u32::from(b - b'0');
            (n <= MAX_MINOR).then_some(n)
        })
        .ok_or(HttpError::InvalidVersion)?;
    if len == digits.len() {
        // The buffer ends inside the minor version: more digits may follow.
        return Ok(Status::Partial);
    }
    let version = match (len, minor) {
        (0, _) => return Err(HttpError::InvalidVersion),
        (_, 0) => Version::Http10,
        (_, 1) => Version::Http11,
        _ => Version::Http1Later,
    };
    Ok(Status::Complete((version, at + PREFIX.len() + len)))
}

/// After `method SP target SP`, at `at`: more SPs, then the version or (HTTP/0.9) the line
/// end.
#[cold]
fn lenient_after_target<'a>(
    method: &'a [u8],
    target: &'a [u8],
    buf: &[u8],
    at: usize,
) -> Result<Status<(RequestLine<'a>, usize)>, HttpError> {
    let at = skip_spaces(buf, at);
    match buf.get(at) {
        None => Ok(Status::Partial),
        Some(b'\r' | b'\n') => http_09(method, target, buf, at),
        Some(_) => Ok(match version_and_end(buf, at)? {
            Status::Complete((version, len)) => {
                let line = RequestLine {
                    method,
                    target,
                    version,
                    section_len: 0,
                    kind: Method::of(method),
                };
                Status::Complete((line, len))
            }
            Status::Partial => Status::Partial,
        }),
    }
}

/// The index of the first byte at or after `at` that is not SP.
#[inline]
fn skip_spaces(buf: &[u8], mut at: usize) -> usize {
    while buf.get(at) == Some(&b' ') {
        at += 1;
    }
    at
}

/// `GET target` ended at `at` (a CR or LF): an HTTP/0.9 request line, which has no other
/// method.
fn http_09<'a>(
    method: &'a [u8],
    target: &'a [u8],
    buf: &[u8],
    at: usize,
) -> Result<Status<(RequestLine<'a>, usize)>, HttpError> {
    let len = match line_end(buf, at, HttpError::InvalidLineEnding)? {
        Status::Complete((len, _)) => len,
        Status::Partial => return Ok(Status::Partial),
    };
    if method != b"GET" {
        return Err(HttpError::InvalidVersion);
    }
    let line = RequestLine {
        method,
        target,
        version: Version::Http09,
        section_len: 0,
        kind: Method::Get,
    };
    Ok(Status::Complete((line, len)))
}

/// The length of the method token at the start of `buf`, which a space must follow, and its
/// counter class (GET told by the same compare that finds its length).
#[inline]
fn method_len(buf: &[u8]) -> Result<Status<(usize, Method)>, HttpError> {
    if buf.starts_with(b"GET ") {
        return Ok(Status::Complete((3, Method::Get)));
    }
    for (i, &byte) in buf.iter().enumerate().take(MAX_METHOD_LEN + 1) {
        match byte {
            b' ' if i > 0 => return Ok(Status::Complete((i, Method::of_any(&buf[..i])))),
            _ if class::is_method(byte) && i < MAX_METHOD_LEN => {}
            _ => return Err(HttpError::NotHttp),
        }
    }
    Ok(Status::Partial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Status::{Complete, Partial};

    /// A request line of `len` bytes, CRLF included, with its target padded.
    fn line_of(len: usize) -> std::vec::Vec<u8> {
        let mut line = b"GET /".to_vec();
        line.resize(len - b" HTTP/1.1\r\n".len(), b'a');
        line.extend_from_slice(b" HTTP/1.1\r\n");
        line
    }

    #[test]
    fn request_lines_longer_than_nginx_reads_are_refused() {
        let fits = line_of(MAX_REQUEST_LINE);
        assert!(matches!(parse_request_line(&fits), Ok(Complete((_, n))) if n == MAX_REQUEST_LINE));
        let long = line_of(MAX_REQUEST_LINE + 1);
        assert_eq!(
            parse_request_line(&long),
            Err(HttpError::RequestLineTooLong)
        );
        // Cut before its end: partial while it may still fit, refused once it cannot.
        assert_eq!(
            parse_request_line(&fits[..MAX_REQUEST_LINE / 2]),
            Ok(Partial)
        );
        assert_eq!(
            parse_request_line(&long[..MAX_REQUEST_LINE - 1]),
            Ok(Partial)
        );
        let mut endless = b"GET /".to_vec();
        endless.resize(MAX_REQUEST_LINE + 1, b'a');
        assert_eq!(
            parse_request_line(&endless),
            Err(HttpError::RequestLineTooLong)
        );
    }

    fn line(input: &[u8]) -> Result<Status<(RequestLine<'_>, usize)>, HttpError> {
        parse_request_line(input)
    }

    #[test]
    fn request_lines() {
        let (l, len) = line(b"GET /index.html?x=1 HTTP/1.1\r\nHost")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(
            (l.method, l.target, l.version),
            (&b"GET"[..], &b"/index.html?x=1"[..], Version::Http11)
        );
        assert_eq!(len, 30);
        assert_eq!(l.section(), b"/index.html");
        assert_eq!(l.method_kind(), Method::Get);

        let (l, _) = line(b"M-SEARCH * HTTP/1.1\r\n")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(
            (l.method, l.target, l.target_form()),
            (&b"M-SEARCH"[..], &b"*"[..], TargetForm::Asterisk)
        );
        assert_eq!(l.method_kind(), Method::Other);

        let (l, _) = line(b"CONNECT example.com:443 HTTP/1.0\r\n")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(
            (l.section(), l.version),
            (&b"example.com:443"[..], Version::Http10)
        );

        let (l, len) = line(b"GET /\r\n\r\n").unwrap().complete().unwrap();
        assert_eq!((l.version, len), (Version::Http09, 7));

        let (l, _) = line(b"QUERY /contacts HTTP/1.1\r\n")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(l.method, b"QUERY");
        let (l, _) = line("GET /δ HTTP/1.1\r\n".as_bytes())
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(l.target, "/δ".as_bytes());
    }

    #[test]
    fn sections_kept_by_the_parse_are_the_targets_sections() {
        for line in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"GET /s123 HTTP/1.1\r\n",
            b"GET /s123/page4?id=5 HTTP/1.1\r\nHost: h\r\n\r\n",
            b"POST /a?b/c HTTP/1.0\r\n",
            b"GET /#frag HTTP/1.1\r\n",
            b"GET //x HTTP/1.1\r\n",
            b"GET /a-first-segment-longer-than-sixteen/b HTTP/1.1\r\n",
            b"GET  /spaces/before HTTP/1.1\r\n",
            b"GET /http09\r\n",
            b"OPTIONS * HTTP/1.1\r\n",
            b"HEAD /h HTTP/1.1\r\n",
            b"PURGE /p HTTP/1.1\r\n",
            b"HEAD  /lenient  HTTP/1.1\r\n",
            b"GET http://example.com/a/b HTTP/1.1\r\n",
            b"CONNECT example.com:443 HTTP/1.1\r\n",
        ] {
            let (parsed, _) = parse_request_line(line).unwrap().complete().unwrap();
            assert_eq!(parsed.target_form(), TargetForm::of(parsed.target));
            assert_eq!(parsed.method_kind(), Method::of(parsed.method));
            assert_eq!(
                parsed.section(),
                target::section(parsed.target),
                "{:?}",
                std::string::String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn request_line_errors() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"GET /foo bar/ HTTP/1.1\r\n", HttpError::NotHttp),
            (b"GET / HTTP/5.6\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/5.6", HttpError::InvalidVersion),
            (b"GET / HTTP/1.1\rLine: 1\r\n", HttpError::InvalidLineEnding),
            (b"GET / RTSP/1.0\r\n", HttpError::NotHttp),
            (b"GET /a\x01b HTTP/1.1\r\n", HttpError::InvalidTarget),
            (b"GET /a\x7f HTTP/1.1\r\n", HttpError::InvalidTarget),
            (b"GET /\rX", HttpError::InvalidLineEnding),
            (b"POST /\r\n", HttpError::InvalidVersion),
            (b"FOO /\r\n", HttpError::NotHttp),
            (b"SSH-2.0-OpenSSH_9.6 Ubuntu\r\n", HttpError::NotHttp),
            (b"\x16\x03\x01\x02\x00\x01", HttpError::NotHttp),
            (b" GET / HTTP/1.1\r\n", HttpError::NotHttp),
            (b"GET\t/ HTTP/1.1\r\n", HttpError::NotHttp),
            (
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n",
                HttpError::NotHttp,
            ),
            (b"G@T / HTTP/1.1\r\n", HttpError::NotHttp),
            (b"PUT / XTTP", HttpError::NotHttp),
            (b"PUT / HTTP/x", HttpError::InvalidVersion),
            (b"PUT / HTTP/1.1\r\r", HttpError::InvalidLineEnding),
            // What nginx rejects with 400 stays rejected: a tab between tokens, a CR not
            // followed by LF, a version not followed by SP, CR or LF, an empty target.
            (b"GET /t2\tHTTP/1.1\r\n", HttpError::InvalidTarget),
            (b"GET /r2 HTTP/1.1\r\r\n", HttpError::InvalidLineEnding),
            (b"GET / HTTP/1.1 \rX", HttpError::InvalidLineEnding),
            (b"GET / HTTP/1.1x\r\n", HttpError::InvalidVersion),
            (b"GET   \r\n", HttpError::InvalidTarget),
            (b"POST /  \n", HttpError::InvalidVersion),
            // nginx refuses these request lines (400, or 505 above HTTP/1.x) and logs no
            // method: a method byte outside `[A-Z_-]`, a version it does not read.
            (b"get / HTTP/1.1\r\n", HttpError::NotHttp),
            (b"Get / HTTP/1.1\r\n", HttpError::NotHttp),
            (b"FOO1 / HTTP/1.1\r\n", HttpError::NotHttp),
            (b"G.T / HTTP/1.1\r\n", HttpError::NotHttp),
            (b"GET / HTTP/2.0\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/2\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/10.0\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/0.9\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/01.1\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/1\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/1.\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/1.1000\r\n", HttpError::InvalidVersion),
            (b"GET / HTTP/1.1000", HttpError::InvalidVersion),
            (b"GET / http/1.1\r\n", HttpError::NotHttp),
            (b"GET / HTTP/1.1\t\r\n", HttpError::InvalidVersion),
        ];
        for &(input, error) in cases {
            assert_eq!(
                line(input),
                Err(error),
                "{:?}",
                std::string::String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn what_nginx_serves() {
        // (line, method, target, version, length): each served by nginx 1.22 and logged.
        type Case = (&'static [u8], &'static [u8], &'static [u8], Version, usize);
        let cases: &[Case] = &[
            (
                b"GET /c2 HTTP/1.1\nHost",
                b"GET",
                b"/c2",
                Version::Http11,
                17,
            ),
            (
                b"GET  /s1  HTTP/1.1\r\n",
                b"GET",
                b"/s1",
                Version::Http11,
                20,
            ),
            (
                b"PUT    /s2     HTTP/1.0\n",
                b"PUT",
                b"/s2",
                Version::Http10,
                24,
            ),
            (
                b"GET /s3 HTTP/1.1 \r\n",
                b"GET",
                b"/s3",
                Version::Http11,
                19,
            ),
            (
                b"GET /s4   HTTP/1.1   \nX",
                b"GET",
                b"/s4",
                Version::Http11,
                22,
            ),
            (b"GET /n1\n", b"GET", b"/n1", Version::Http09, 8),
            (b"GET /n3  \n", b"GET", b"/n3", Version::Http09, 10),
            (b"GET /s6 \r\n", b"GET", b"/s6", Version::Http09, 10),
            (
                b"GET  http://abs.example/x/y  HTTP/1.1\n",
                b"GET",
                b"http://abs.example/x/y",
                Version::Http11,
                38,
            ),
            // Any HTTP/1 minor version up to 999, leading zeros allowed, read by value.
            (
                b"GET /v2 HTTP/1.2\r\n",
                b"GET",
                b"/v2",
                Version::Http1Later,
                18,
            ),
            (
                b"GET /v8 HTTP/1.999\r\n",
                b"GET",
                b"/v8",
                Version::Http1Later,
                20,
            ),
            (
                b"GET /v10 HTTP/1.01\r\n",
                b"GET",
                b"/v10",
                Version::Http11,
                20,
            ),
            (
                b"GET /v11 HTTP/1.00\n",
                b"GET",
                b"/v11",
                Version::Http10,
                19,
            ),
            (
                b"GET /v12 HTTP/1.0000000000001\r\n",
                b"GET",
                b"/v12",
                Version::Http11,
                31,
            ),
            (
                b"GET /v13 HTTP/1.2  \n",
                b"GET",
                b"/v13",
                Version::Http1Later,
                20,
            ),
            // Methods: nginx reads upper-case letters, `_` and `-`.
            (
                b"MK_COL /m6 HTTP/1.1\r\n",
                b"MK_COL",
                b"/m6",
                Version::Http11,
                21,
            ),
            (b"- /m7 HTTP/1.1\r\n", b"-", b"/m7", Version::Http11, 16),
        ];
        for &(input, method, target, version, len) in cases {
            let (l, n) = line(input).unwrap().complete().unwrap();
            assert_eq!(
                (l.method, l.target, l.version, n),
                (method, target, version, len),
                "{:?}",
                std::string::String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn bare_lf_in_a_head_is_flagged() {
        // (head, bare LF somewhere)
        let cases: &[(&[u8], bool)] = &[
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", false),
            (b"\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", false),
            (b"GET / HTTP/1.1\nHost: h\n\n", true),
            (b"GET / HTTP/1.1\nHost: h\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: h\r\n\n", true),
            (b"GET /\n", true),
            (b"GET /\r\n", false),
        ];
        for &(input, bare) in cases {
            let r = parse_request(input).unwrap().complete().unwrap();
            assert_eq!(
                (
                    r.bare_lf,
                    r.head_len,
                    r.host.is_some() || r.line.version == Version::Http09
                ),
                (bare, input.len(), true),
                "{:?}",
                std::string::String::from_utf8_lossy(input)
            );
        }
        // Three pipelined bare-LF requests in one segment: all three.
        let three = b"GET /p1 HTTP/1.1\nHost: h\n\nGET /p2 HTTP/1.1\nHost: h\n\nGET /p3 HTTP/1.1\nHost: h\n\n";
        let found: std::vec::Vec<&[u8]> = crate::http::requests(three)
            .map(|(_, r)| r.line.target)
            .collect();
        assert_eq!(found, [&b"/p1"[..], b"/p2", b"/p3"]);
        // Any run of CR and LF before the request line is skipped, as nginx skips it.
        let r = parse_request(b"\r\rGET /e4 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(r.complete().unwrap().line.target, b"/e4");
        assert_eq!(parse_request(b"\r"), Ok(Partial));
    }

    #[test]
    fn every_prefix_of_a_valid_line_is_partial() {
        for input in [
            &b"GET /a/b HTTP/1.1\r\n"[..],
            b"DELETE /x HTTP/1.0\r\n",
            b"GET /\r\n",
            b"GET  /a  HTTP/1.1  \n",
            b"GET /x \n",
            b"GET /a HTTP/1.12\r\n",
            b"GET /a HTTP/1.000\n",
        ] {
            for cut in 0..input.len() {
                assert_eq!(line(&input[..cut]), Ok(Partial), "{:?}", &input[..cut]);
            }
            assert!(matches!(line(input), Ok(Complete(_))));
        }
    }

    #[test]
    fn whole_requests() {
        let input = b"\r\nPOST /api/v1 HTTP/1.1\r\nHost: Example.com\r\nUser-Agent: t/1\r\nContent-Length: 3\r\n\r\nabc";
        let r = parse_request(input).unwrap().complete().unwrap();
        assert_eq!(r.line.method, b"POST");
        assert_eq!(r.line.section(), b"/api");
        assert_eq!(r.host, Some(&b"Example.com"[..]));
        assert_eq!(r.user_agent, Some(&b"t/1"[..]));
        assert_eq!(r.body, Body::Length(3));
        assert_eq!(r.head_len, input.len() - 3);
        assert_eq!(r.defect, None);

        let r = parse_request(b"GET /\r\n").unwrap().complete().unwrap();
        assert_eq!(
            (r.line.version, r.host, r.head_len, r.body),
            (Version::Http09, None, 7, Body::Empty)
        );

        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(Partial));
        assert_eq!(parse_request(b"\r\n"), Ok(Partial));
        assert_eq!(parse_request(b"\r\n\r\nG"), Ok(Partial));
    }

    #[test]
    fn method_table() {
        for m in Method::ALL {
            let name = std::format!("{m:?}").to_ascii_uppercase();
            if m != Method::Other {
                assert_eq!(Method::of(name.as_bytes()), m);
            }
            assert_eq!(Method::ALL[m.index()], m);
        }
        assert_eq!(Method::of(b"get"), Method::Other);
        assert_eq!(Method::of(b"QUERY"), Method::Other);
    }
}

//! Response heads: `HTTP/x.y SP 3DIGIT [SP reason] CRLF` and the header block after it.

use super::headers::{self, HeadFields};
use super::{class, line_end, skip_empty_lines, Body, HttpError, Status, Version};

/// `HTTP/d.d SP ddd` and the byte after it: the fixed-width part of a status line.
const FIXED_LEN: usize = 13;
/// Where the status code starts.
const CODE_AT: usize = 9;
/// Where the version ends.
const VERSION_LEN: usize = 8;
/// The usual status line.
const OK_LINE: &[u8] = b"HTTP/1.1 200 OK\r\n";
/// The usual reason phrase and its line end.
const OK_CRLF: &[u8] = b"OK\r\n";

/// A status line, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLine<'a> {
    /// The protocol version.
    pub version: Version,
    /// The status code, 100 to 999.
    pub code: u16,
    /// The reason phrase as sent (may be empty).
    pub reason: &'a [u8],
}

/// A response head: the status line and how its body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// The status line.
    pub line: StatusLine<'a>,
    /// How the body after the head is framed. A response to HEAD, or a 2xx response to
    /// CONNECT, has no body whatever its headers say: the caller, who saw the request, must
    /// treat this as [`Body::Empty`].
    pub body: Body,
    /// Bytes from the start of the input to the end of the head.
    pub head_len: usize,
    /// The first defect in the header block.
    pub defect: Option<HttpError>,
    /// A line of the head (the status line, a header line or the empty line) ended in a bare
    /// LF rather than CRLF.
    pub bare_lf: bool,
}

/// Reads the response head at the start of `buf` (after any empty lines).
#[inline]
pub fn parse_response(buf: &[u8]) -> Result<Status<Response<'_>>, HttpError> {
    let start = skip_empty_lines(buf);
    let (line, line_len) = match parse_status_line(&buf[start..])? {
        Status::Complete(parsed) => parsed,
        Status::Partial => return Ok(Status::Partial),
    };
    let mut fields = HeadFields::none(0);
    if headers::scan(buf, start + line_len, &mut fields).is_partial() {
        return Ok(Status::Partial);
    }
    let body = fields.response_body(line.code);
    // A status line is at least 13 bytes and its LF: the byte before the LF is in `buf`.
    let line_bare_lf = buf[start + line_len - 2] != b'\r';
    Ok(Status::Complete(Response {
        line,
        body,
        head_len: fields.end,
        defect: fields.defect,
        bare_lf: line_bare_lf || fields.bare_lf,
    }))
}

/// Reads a status line at the very start of `buf`; returns it with its length (line end
/// included: CRLF or a bare LF). Unlike [`parse_response`] it neither skips empty lines before the line nor waits for
/// the header block, so a caller whose head outgrew its buffer can still count the line.
#[inline]
pub fn parse_status_line(buf: &[u8]) -> Result<Status<(StatusLine<'_>, usize)>, HttpError> {
    // `HTTP/1.1 200 OK` and its CRLF, the status line of most responses: two words and a byte
    // compared (read field by field, about 30 instructions).
    if let Some(&[a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, b'\n']) = buf.get(..OK_LINE.len())
    {
        /// The line as two little-endian words.
        const FIRST: u64 = u64::from_le_bytes(*b"HTTP/1.1");
        const SECOND: u64 = u64::from_le_bytes(*b" 200 OK\r");
        if u64::from_le_bytes([a, b, c, d, e, f, g, h]) == FIRST
            && u64::from_le_bytes([i, j, k, l, m, n, o, p]) == SECOND
        {
            let line = StatusLine {
                version: Version::Http11,
                code: 200,
                reason: &buf[FIXED_LEN..FIXED_LEN + 2],
            };
            return Ok(Status::Complete((line, OK_LINE.len())));
        }
    }
    let (version, code) = match fixed_part(buf)? {
        Status::Complete(fixed) => fixed,
        Status::Partial => return Ok(Status::Partial),
    };

    // `200 OK` as nearly every server writes it: one compare for the reason and the line end
    // (the loop below and the line-end match took about 25 instructions for it).
    if buf.get(FIXED_LEN..FIXED_LEN + OK_CRLF.len()) == Some(OK_CRLF) && buf[FIXED_LEN - 1] == b' '
    {
        let line = StatusLine {
            version,
            code,
            reason: &buf[FIXED_LEN..FIXED_LEN + 2],
        };
        return Ok(Status::Complete((line, FIXED_LEN + OK_CRLF.len())));
    }
    let reason_end = match buf[FIXED_LEN - 1] {
        b' ' => {
            let after = &buf[FIXED_LEN..];
            match after.iter().position(|&b| !class::is_reason(b)) {
                Some(len) => FIXED_LEN + len,
                None => return Ok(Status::Partial),
            }
        }
        _ => FIXED_LEN - 1,
    };
    // Without a reason phrase this is the empty slice at the line's end, still in `buf`.
    let reason = &buf[reason_end.min(FIXED_LEN)..reason_end];
    // CRLF, or a bare LF (RFC 9112 §2.2; llhttp's lenient mode): see the module contract.
    match line_end(buf, reason_end, HttpError::InvalidReason)? {
        Status::Complete((len, _)) => Ok(Status::Complete((
            StatusLine {
                version,
                code,
                reason,
            },
            len,
        ))),
        Status::Partial => Ok(Status::Partial),
    }
}

/// Reads `HTTP/d.d SP ddd` and checks the byte after it.
#[inline]
fn fixed_part(buf: &[u8]) -> Result<Status<(Version, u16)>, HttpError> {
    // Fast path: a whole fixed part with the two versions real servers send.
    if let Some(&[a, b, c, d, e, f, g, h, space, hundreds, tens, ones, after]) =
        buf.get(..FIXED_LEN)
    {
        /// The versions as little-endian words, so one load and compare checks all 8 bytes
        /// (a 9-byte slice compare was about 24 instructions per response).
        const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
        const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");
        let version = match (u64::from_le_bytes([a, b, c, d, e, f, g, h]), space) {
            (HTTP_11, b' ') => Some(Version::Http11),
            (HTTP_10, b' ') => Some(Version::Http10),
            _ => None,
        };
        if let Some(version) = version {
            if matches!(hundreds, b'1'..=b'9')
                && tens.is_ascii_digit()
                && ones.is_ascii_digit()
                && matches!(after, b' ' | b'\r' | b'\n')
            {
                let code = u16::from(hundreds - b'0') * 100
                    + u16::from(tens - b'0') * 10
                    + u16::from(ones - b'0');
                return Ok(Status::Complete((version, code)));
            }
        }
    }
    // Slow path: check byte by byte, telling a partial line from a wrong one.
    const PROTOCOL: &[u8] = b"HTTP/";
    for (i, &byte) in buf.iter().enumerate().take(FIXED_LEN) {
        let (ok, error) = match i {
            0..=4 => (byte == PROTOCOL[i], HttpError::NotHttp),
            5 | 7 => (byte.is_ascii_digit(), HttpError::InvalidVersion),
            6 => (byte == b'.', HttpError::InvalidVersion),
            8 => (byte == b' ', HttpError::InvalidVersion),
            CODE_AT => (matches!(byte, b'1'..=b'9'), HttpError::InvalidStatusCode),
            10 | 11 => (byte.is_ascii_digit(), HttpError::InvalidStatusCode),
            _ => (
                matches!(byte, b' ' | b'\r' | b'\n'),
                HttpError::InvalidStatusCode,
            ),
        };
        if !ok {
            return Err(error);
        }
    }
    // `HTTP/5.6` has the right shape but is no version we read: an error even when cut short.
    let version = match buf.get(..VERSION_LEN) {
        Some(version) => Version::from_wire(version)?,
        None => return Ok(Status::Partial),
    };
    if buf.len() < FIXED_LEN {
        return Ok(Status::Partial);
    }
    let code = buf[CODE_AT..CODE_AT + 3]
        .iter()
        .fold(0u16, |code, &digit| code * 10 + u16::from(digit - b'0'));
    Ok(Status::Complete((version, code)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Status::Partial;

    fn line(input: &[u8]) -> Result<Status<(StatusLine<'_>, usize)>, HttpError> {
        parse_status_line(input)
    }

    #[test]
    fn status_lines() {
        // (input, version, code, reason, line length)
        type Case = (&'static [u8], Version, u16, &'static [u8], usize);
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\n", Version::Http11, 200, b"OK", 17),
            (
                b"HTTP/1.0 404 Not Found\r\nX",
                Version::Http10,
                404,
                b"Not Found",
                24,
            ),
            (b"HTTP/1.1 301\r\n", Version::Http11, 301, b"", 14),
            (b"HTTP/1.1 200 \r\n", Version::Http11, 200, b"", 15),
            (b"HTTP/1.1 200  OK\r\n", Version::Http11, 200, b" OK", 18),
            (b"HTTP/0.9 200 OK\r\n", Version::Http09, 200, b"OK", 17),
            (
                b"HTTP/1.1 999 Odd\tbut ok\r\n",
                Version::Http11,
                999,
                b"Odd\tbut ok",
                25,
            ),
        ];
        for &(input, version, code, reason, len) in cases {
            let (l, n) = line(input).unwrap().complete().unwrap();
            assert_eq!(
                (l.version, l.code, l.reason, n),
                (version, code, reason, len)
            );
        }
        // A bare LF ends a status line (RFC 9112 §2.2, llhttp's lenient mode).
        for (input, code, reason, len) in [
            (
                &b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"[..],
                200,
                &b"OK"[..],
                16,
            ),
            (b"HTTP/1.1 200\n", 200, b"", 13),
            (b"HTTP/1.0 404 Not Found \nX", 404, b"Not Found ", 24),
        ] {
            let (l, n) = line(input).unwrap().complete().unwrap();
            assert_eq!((l.code, l.reason, n), (code, reason, len));
        }
        let utf8 = "HTTP/1.1 500 Oriëntatieprobleem\r\n".as_bytes();
        assert_eq!(
            line(utf8).unwrap().complete().unwrap().0.reason,
            "Oriëntatieprobleem".as_bytes()
        );
    }

    #[test]
    fn status_line_errors() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"HTP/1.1 200 OK\r\n", HttpError::NotHttp),
            (b"HTTPER/1.1 200 OK\r\n", HttpError::NotHttp),
            (b"RTSP/1.1 200 OK\r\n", HttpError::NotHttp),
            (b"\rHTTP/1.1\t200 OK\r\n", HttpError::NotHttp),
            (b"HTTP/01.1 200 OK\r\n", HttpError::InvalidVersion),
            (b"HTTP/1.01 200 OK\r\n", HttpError::InvalidVersion),
            (b"HTTP/1.1\t200 OK\r\n", HttpError::InvalidVersion),
            (b"HTTP/5.6 200 OK\r\n", HttpError::InvalidVersion),
            (b"HTTP/2.0", HttpError::InvalidVersion),
            (b"HTTP/1.1  200 OK\r\n", HttpError::InvalidStatusCode),
            (b"HTTP/1.1 2 OK\r\n", HttpError::InvalidStatusCode),
            (b"HTTP/1.1 099 Low\r\n", HttpError::InvalidStatusCode),
            (b"HTTP/1.1 2000 OK\r\n", HttpError::InvalidStatusCode),
            (
                b"HTTP/1.1 200 OK\rContent-Length: 0\r\n",
                HttpError::InvalidLineEnding,
            ),
            (
                b"HTTP/1.1 200 OK\r\rContent-Length: 4\r\n",
                HttpError::InvalidLineEnding,
            ),
            (b"HTTP/1.1 200 O\x01K\r\n", HttpError::InvalidReason),
            (b"HTTP/1.1 200 O\x7fK\r\n", HttpError::InvalidReason),
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
    fn every_prefix_of_a_valid_line_is_partial() {
        for input in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.0 304\r\n",
            b"HTTP/1.1 200 OK\n",
        ] {
            for cut in 0..input.len() {
                assert_eq!(line(&input[..cut]), Ok(Partial), "{:?}", &input[..cut]);
            }
        }
    }

    #[test]
    fn whole_responses() {
        let r = parse_response(b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        let r = r.complete().unwrap();
        assert_eq!(
            (r.line.code, r.body, r.head_len),
            (200, Body::Length(5), 40)
        );
        let r = parse_response(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(r.body, Body::Empty);
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\nServer: x\r\n"),
            Ok(Partial)
        );
        assert!(!r.bare_lf);
        for (head, bare) in [
            (&b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"[..], true),
            (b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n", true),
            (b"\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false),
        ] {
            let r = parse_response(head).unwrap().complete().unwrap();
            assert_eq!(
                (r.bare_lf, r.head_len, r.body),
                (bare, head.len(), Body::Empty)
            );
        }
    }
}

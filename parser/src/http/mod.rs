//! HTTP/1.x message heads read in place: request lines, status lines and the four header fields
//! a traffic monitor needs (Host, User-Agent, Content-Length, Transfer-Encoding).
//!
//! # Contract
//!
//! - Results borrow the input (`&'a [u8]`); nothing is copied or allocated.
//! - A head cut off by the end of the buffer is [`Status::Partial`], not an error: the caller
//!   keeps the bytes and tries again with more. Partial is only returned while every byte seen
//!   could still begin a valid head, so a non-HTTP payload fails fast instead of being held.
//! - Malformed input is an [`HttpError`]; never a panic, never a read past the input.
//! - Start lines are checked as llhttp's strict mode checks them (RFC 9112 §3 and §4): a
//!   method token, SP, a target of visible bytes, SP, `HTTP/1.0|1.1`, CRLF; or
//!   `HTTP/x.y SP 3DIGIT [SP reason] CRLF`. `GET target CRLF` (HTTP/0.9) is accepted. Any method
//!   nginx reads is a method (upper-case letters, `_`, `-`; unknown ones are counted, not
//!   rejected), and bytes ≥ 0x80 in a target are accepted (servers such as nginx serve them).
//! - Where nginx serves what llhttp's strict mode rejects, linewatch counts what the server
//!   answered (each checked against nginx 1.22's access log; see `parser/tests/nginx_lenient.rs`):
//!   a bare LF ends any line (the request line, the status line, a header line, the empty line
//!   and a chunk-size line; RFC 9112 §2.2 lets a recipient do this), alone or mixed with CRLF;
//!   a request line may have several SPs between its tokens and SPs before its line end; any
//!   run of CR and LF before a message is skipped; a request's version may be any `HTTP/1.`
//!   minor version up to 999, leading zeros allowed ([`Version::Http1Later`] above 1). A head
//!   that used a bare LF says so (`bare_lf`), so it can be counted apart. What nginx refuses in
//!   a request line (400 or 505, logged without a method) is refused: a tab between tokens, a
//!   space before the method, a CR not followed by LF, a method byte outside `[A-Z_-]`,
//!   `HTTP/0.9` written out, a major version other than 1.
//! - Header lines are split on LF (a CR before it is dropped). Only the fields linewatch uses are
//!   examined; other header lines are skipped, except that until Host is found each is checked
//!   as nginx checks it, and after a line nginx refuses no Host is taken (nginx logs none). A
//!   header line nginx refuses does not unmake the request: nginx logs it with its method and
//!   400. Defects in the fields that decide where a message ends (Content-Length,
//!   Transfer-Encoding) are reported in the head's `defect`, with [`Body::Unknown`] when the end
//!   cannot be known.
//!
//! # Data flow
//!
//! [`parse_request`] / [`parse_response`] read one head at the start of a buffer.
//! [`requests`] / [`responses`] iterate over every message in a buffer (pipelining), skipping
//! bodies by Content-Length or chunked framing, and say at the end why they stopped
//! ([`Outcome`]) so the caller knows what to carry into the next segment.

mod chunked;
mod headers;
mod pipeline;
mod request;
mod response;
mod scan;
mod target;

pub use chunked::{ChunkProgress, ChunkedBody};
pub use pipeline::{requests, responses, Message, Messages, Outcome};
pub use request::{
    parse_request, parse_request_line, Method, Request, RequestLine, MAX_METHOD_LEN,
    MAX_REQUEST_LINE,
};
pub use response::{parse_response, parse_status_line, Response, StatusLine};
pub use target::{authority, section, TargetForm};

use crate::counter_enum::counter_enum;

/// The result of reading a head that may continue in bytes not yet seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The whole head was in the buffer.
    Complete(T),
    /// The buffer ends inside a head that is valid so far.
    Partial,
}

impl<T> Status<T> {
    /// The complete value, or `None` for `Partial`.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(value) => Some(value),
            Status::Partial => None,
        }
    }

    /// Whether this is `Partial`.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }
}

/// The protocol version of a start line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// HTTP/0.9: a request line without a version, or a status line saying `HTTP/0.9`.
    Http09,
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// A later HTTP/1 minor version (`HTTP/1.2` … `HTTP/1.999`), which nginx serves as 1.1.
    /// Request lines only.
    Http1Later,
}

impl Version {
    /// The version as it is written on the wire (`HTTP/1.x` for [`Version::Http1Later`]).
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::Http09 => "HTTP/0.9",
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http1Later => "HTTP/1.x",
        }
    }

    /// Reads a status line's `HTTP/d.d` from exactly 8 bytes. `Err` tells how it is wrong.
    #[inline]
    fn from_wire(bytes: &[u8]) -> Result<Version, HttpError> {
        /// The versions as little-endian words, so one load and compare checks all 8 bytes.
        const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
        const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");
        const HTTP_09: u64 = u64::from_le_bytes(*b"HTTP/0.9");
        let word = match bytes {
            &[a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => return Err(HttpError::InvalidVersion),
        };
        match word {
            HTTP_11 => Ok(Version::Http11),
            HTTP_10 => Ok(Version::Http10),
            HTTP_09 => Ok(Version::Http09),
            _ if bytes.starts_with(b"HTTP/") => Err(HttpError::InvalidVersion),
            _ => Err(HttpError::NotHttp),
        }
    }
}

/// How the body after a head is framed (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// No body follows: a request without Content-Length or Transfer-Encoding, or a 1xx, 204
    /// or 304 response.
    Empty,
    /// Exactly this many bytes follow (Content-Length).
    Length(u64),
    /// Chunked transfer coding: skip it with [`ChunkedBody`].
    Chunked,
    /// The body runs until the connection closes (a response without a length).
    UntilClose,
    /// The framing headers are contradictory or invalid (see the head's `defect`): where the
    /// next message starts cannot be known.
    Unknown,
}

counter_enum! {
    /// Why bytes are not (or not wholly) a valid HTTP/1.x message. Each variant indexes a
    /// counter.
    pub enum HttpError {
        /// The bytes do not begin like an HTTP message: no method token followed by a space
        /// within [`MAX_METHOD_LEN`] bytes, or a response not starting with `HTTP/`, or a
        /// protocol other than HTTP after the target (RTSP, ICE, SIP, ...).
        NotHttp => "not_http",
        /// The request target is empty or holds a control byte.
        InvalidTarget => "invalid_target",
        /// `HTTP/` is followed by a version not read (a response: other than 0.9, 1.0 or 1.1;
        /// a request: other than `1.` and a minor version up to 999), or the version is not
        /// followed by the expected separator.
        InvalidVersion => "invalid_version",
        /// A CR in a start line is not followed by LF (a bare LF is a line end: see the
        /// contract).
        InvalidLineEnding => "invalid_line_ending",
        /// The status code is not three digits from 100 to 999.
        InvalidStatusCode => "invalid_status_code",
        /// The reason phrase holds a control byte.
        InvalidReason => "invalid_reason",
        /// A header line directly after the start line begins with whitespace.
        LeadingWhitespace => "leading_whitespace",
        /// Content-Length is empty, not a decimal number, too large, or given twice with
        /// different values.
        InvalidContentLength => "invalid_content_length",
        /// A request's Transfer-Encoding does not end in `chunked`: its length is unknowable.
        InvalidTransferEncoding => "invalid_transfer_encoding",
        /// Both Content-Length and Transfer-Encoding: the framing request smuggling relies on.
        AmbiguousFraming => "ambiguous_framing",
        /// A chunked body whose chunk-size line or chunk terminator is malformed.
        InvalidChunk => "invalid_chunk",
        /// A request line longer than [`MAX_REQUEST_LINE`] bytes: nginx answers 414 and logs
        /// no request.
        RequestLineTooLong => "request_line_too_long",
    }
}

/// Byte classes for start-line scanning, one table lookup per byte. (Targets are checked many
/// bytes at a time instead: see `scan::target_end`.)
mod class {
    /// The bytes nginx reads in a method: upper-case letters, `_` and `-`. Any other byte there
    /// (a lower-case letter, a digit, other `tchar` punctuation) gets a 400 from nginx, logged
    /// without a method; `parser/tests/nginx_lenient.rs` has the cases.
    const METHOD: u8 = 1;
    /// Bytes allowed in a reason phrase: HTAB, SP, visible ASCII, bytes ≥ 0x80.
    const REASON: u8 = 2;

    static TABLE: [u8; 256] = build();

    const fn build() -> [u8; 256] {
        let mut table = [0u8; 256];
        let mut byte: u8 = 0;
        loop {
            let visible = byte > b' ' && byte != 0x7F;
            let mut class = 0;
            if byte.is_ascii_uppercase() || byte == b'_' || byte == b'-' {
                class |= METHOD;
            }
            if visible || byte == b' ' || byte == b'\t' {
                class |= REASON;
            }
            table[byte as usize] = class;
            if byte == u8::MAX {
                return table;
            }
            byte += 1;
        }
    }

    #[inline]
    pub(super) fn is_method(byte: u8) -> bool {
        TABLE[usize::from(byte)] & METHOD != 0
    }

    #[inline]
    pub(super) fn is_reason(byte: u8) -> bool {
        TABLE[usize::from(byte)] & REASON != 0
    }
}

/// Skips the empty lines that RFC 9112 §2.2 lets a peer send before a message: any run of CR
/// and LF, as nginx and llhttp skip them (a lone CR included). Returns where the message
/// starts; `buf.len()` if there is nothing else.
#[inline]
fn skip_empty_lines(buf: &[u8]) -> usize {
    // Almost every message starts right away: one byte check settles it.
    match buf.first() {
        Some(b'\r' | b'\n') => buf
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(buf.len()),
        _ => 0,
    }
}

/// Whether `buf` holds nothing but the empty lines [`skip_empty_lines`] skips.
fn only_empty_lines(buf: &[u8]) -> bool {
    skip_empty_lines(buf) == buf.len()
}

/// Where a line that may end in CRLF or a bare LF ends, looking at `buf[at..]`: the index just
/// past its LF and whether that LF was bare. `Partial` when `buf` ends first (or after a CR);
/// [`HttpError::InvalidLineEnding`] for a CR not followed by LF; `other` for any other byte.
#[inline]
fn line_end(buf: &[u8], at: usize, other: HttpError) -> Result<Status<(usize, bool)>, HttpError> {
    match buf.get(at..) {
        Some([b'\r', b'\n', ..]) => Ok(Status::Complete((at + 2, false))),
        Some([b'\n', ..]) => Ok(Status::Complete((at + 1, true))),
        Some([] | [b'\r']) | None => Ok(Status::Partial),
        Some([b'\r', ..]) => Err(HttpError::InvalidLineEnding),
        Some(_) => Err(other),
    }
}

/// Trims optional whitespace (SP and HTAB) from both ends.
#[inline]
fn trim_ows(value: &[u8]) -> &[u8] {
    // As clients write a field: one SP after the colon and none after the value. A byte above
    // SP is neither SP nor HTAB, so three compares settle it; the loops below only run for
    // other spacing, or a control byte at either end (callgrind: the loops alone were about 20
    // instructions a field).
    let value = match value {
        [b' ', first, ..] if *first > b' ' => &value[1..],
        _ => trim_leading_ows(value),
    };
    match value {
        [.., last] if *last <= b' ' => trim_trailing_ows(value),
        _ => value,
    }
}

/// Trims SP and HTAB from the start.
fn trim_leading_ows(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    value
}

/// Trims SP and HTAB from the end.
fn trim_trailing_ows(mut value: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_classes() {
        for b in 0..=255u8 {
            let method = b.is_ascii_uppercase() || b == b'_' || b == b'-';
            assert_eq!(class::is_method(b), method, "method {b:#x}");
            let reason = b == b'\t' || (b >= 0x20 && b != 0x7F);
            assert_eq!(class::is_reason(b), reason, "reason {b:#x}");
        }
    }

    #[test]
    fn versions() {
        // Responses still read the three versions llhttp reads; requests read nginx's (see
        // `request::nginx_version`).
        assert_eq!(Version::Http1Later.as_str(), "HTTP/1.x");
        assert_eq!(Version::from_wire(b"HTTP/1.1"), Ok(Version::Http11));
        assert_eq!(Version::from_wire(b"HTTP/1.0"), Ok(Version::Http10));
        assert_eq!(Version::from_wire(b"HTTP/0.9"), Ok(Version::Http09));
        assert_eq!(
            Version::from_wire(b"HTTP/2.0"),
            Err(HttpError::InvalidVersion)
        );
        assert_eq!(Version::from_wire(b"RTSP/1.0"), Err(HttpError::NotHttp));
        assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
    }

    #[test]
    fn empty_lines_and_ows() {
        assert_eq!(skip_empty_lines(b"\r\n\nGET"), 3);
        // nginx serves `\r\rGET / HTTP/1.1`: a lone CR before a message is skipped too.
        assert_eq!(skip_empty_lines(b"\rGET"), 1);
        assert_eq!(skip_empty_lines(b"GET"), 0);
        assert!(only_empty_lines(b"\r\n\r"));
        assert!(!only_empty_lines(b"\r\nG"));
        assert_eq!(
            line_end(b"x\r\n", 1, HttpError::NotHttp),
            Ok(Status::Complete((3, false)))
        );
        assert_eq!(
            line_end(b"x\n", 1, HttpError::NotHttp),
            Ok(Status::Complete((2, true)))
        );
        assert_eq!(line_end(b"x\r", 1, HttpError::NotHttp), Ok(Status::Partial));
        assert_eq!(line_end(b"x", 1, HttpError::NotHttp), Ok(Status::Partial));
        assert_eq!(
            line_end(b"x\rx", 1, HttpError::NotHttp),
            Err(HttpError::InvalidLineEnding)
        );
        assert_eq!(
            line_end(b"xy", 1, HttpError::NotHttp),
            Err(HttpError::NotHttp)
        );
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
        for (value, trimmed) in [
            (&b" a"[..], &b"a"[..]),
            (b" a b", b"a b"),
            (b"a", b"a"),
            (b"", b""),
            (b" ", b""),
            (b"\t", b""),
            (b" \ta", b"a"),
            (b"  a ", b"a"),
            (b" a\t", b"a"),
            (b"\ta \t ", b"a"),
            (b" \x01a\x01", b"\x01a\x01"),
            (b" \xffa\xff ", b"\xffa\xff"),
        ] {
            assert_eq!(trim_ows(value), trimmed, "{value:?}");
        }
    }

    #[test]
    fn error_counters_are_dense() {
        for (i, e) in HttpError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        assert_eq!(HttpError::COUNT, HttpError::ALL.len());
        assert_eq!(HttpError::NotHttp.name(), "not_http");
    }
}

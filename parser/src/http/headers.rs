//! The header block after a start line: found line by line (`scan::LineFeeds`, every LF from
//! a bit mask per 64 bytes), and only the four fields linewatch uses are looked at.
//!
//! Host is taken as nginx takes it ([`later_host_as_nginx_reads`]): nginx reads header
//! lines in order and stops at the first it refuses (answering 400, logged with the request's
//! method but without a Host that came later), so the lines before the Host line are checked as
//! nginx 1.22 checks them ([`refused_by_nginx`]) and after a refused line no Host is taken. The
//! loop over the lines checks nothing: the check runs once the block is complete, and only when
//! Host is not the first line, so a head with Host first, as clients send it, pays one compare.

use super::{scan::LineFeeds, trim_ows, Body, HttpError, Status};

/// What the header block says, and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeadFields<'a> {
    /// The first Host field's value, OWS trimmed.
    pub(super) host: Option<&'a [u8]>,
    /// Where the line of that Host field starts.
    host_line: usize,
    /// The first User-Agent field's value, OWS trimmed.
    pub(super) user_agent: Option<&'a [u8]>,
    /// Content-Length, when present and valid.
    pub(super) content_length: Option<u64>,
    /// A Content-Length field was present but invalid (or two disagreed).
    pub(super) content_length_invalid: bool,
    /// `Some(chunked)` when Transfer-Encoding was present; `chunked` says whether its final
    /// coding is `chunked`.
    pub(super) transfer_encoding: Option<bool>,
    /// The first defect seen.
    pub(super) defect: Option<HttpError>,
    /// A header line or the empty line ended in a bare LF.
    pub(super) bare_lf: bool,
    /// Index just past the empty line that ends the block.
    pub(super) end: usize,
}

/// A field name as matched: lower case with its colon, so one comparison checks both, and
/// precomputed as 64-bit words so that matching a line costs a few integer compares instead
/// of a case-folding loop (callgrind: the loop was about 100 instructions per request).
struct FieldName {
    /// The name's bytes, lower case, colon included.
    bytes: &'static [u8],
    /// Per word: (the bytes, the bits to OR in before comparing: 0x20 on letters only so `-`
    /// and `:` must match exactly, the bytes that count).
    words: [(u64, u64, u64); FieldName::MAX_WORDS],
}

impl FieldName {
    /// Words enough for the longest name, `transfer-encoding:` (18 bytes).
    const MAX_WORDS: usize = 3;

    const fn new(bytes: &'static [u8]) -> FieldName {
        let mut words = [(0, 0, 0); Self::MAX_WORDS];
        let mut i = 0;
        while i < bytes.len() {
            let shift = (i % 8) * 8;
            let (value, fold, care) = words[i / 8];
            let byte = bytes[i] as u64;
            let letter = if bytes[i].is_ascii_lowercase() {
                0x20
            } else {
                0
            };
            words[i / 8] = (
                value | byte << shift,
                fold | letter << shift,
                care | 0xFF << shift,
            );
            i += 1;
        }
        FieldName { bytes, words }
    }

    /// The value after the name if `line` starts with it, in any letter case. Always inlined:
    /// the name's words are then constants in the compares (as a call, the words were loaded
    /// from memory and the caller spilled and reloaded its registers around it; callgrind,
    /// engine_loop: 78 instructions per frame).
    #[inline(always)]
    fn value_in<'a>(&self, line: &'a [u8]) -> Option<&'a [u8]> {
        let len = self.bytes.len();
        let words = len.div_ceil(8);
        let matched = if line.len() >= words * 8 {
            let mut matched = true;
            for (i, &(value, fold, care)) in self.words[..words].iter().enumerate() {
                let b = &line[i * 8..i * 8 + 8];
                let word = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                matched &= (word | fold) & care == value;
            }
            matched
        } else {
            self.is_prefix_of_short(line)
        };
        matched.then(|| &line[len..])
    }
}

impl FieldName {
    /// Whether a line too short to load whole words starts with the name: a byte at a time,
    /// out of line (such a line has an empty or a short value: rare).
    #[cold]
    #[inline(never)]
    fn is_prefix_of_short(&self, line: &[u8]) -> bool {
        let len = self.bytes.len();
        line.len() >= len && line[..len].eq_ignore_ascii_case(self.bytes)
    }
}

/// The bit that tells a lower-case ASCII letter from its upper case.
const CASE_BIT: u8 = 0x20;

const HOST: FieldName = FieldName::new(b"host:");
const USER_AGENT: FieldName = FieldName::new(b"user-agent:");
const CONTENT_LENGTH: FieldName = FieldName::new(b"content-length:");
const TRANSFER_ENCODING: FieldName = FieldName::new(b"transfer-encoding:");

/// Scans the header lines of `buf` starting at `at` (just past the start line) into `fields`,
/// which the caller passes as [`HeadFields::none`] (written in place: returned by value, the
/// fields were stored, then copied by the caller).
///
/// `Partial` when the empty line that ends the block is not in `buf`.
///
/// A line costs its first byte and the byte before its LF: a first byte above SP picks the field
/// to match (most lines match none); one at or below SP is the empty line, leading whitespace
/// or a line of no interest. The CR of a CRLF stays in the line: no field name holds a CR, so
/// a name matches as it would without it, and the values drop it (`field_value`).
#[inline]
pub(super) fn scan<'a>(buf: &'a [u8], at: usize, fields: &mut HeadFields<'a>) -> Status<()> {
    let mut line_start = at;
    let mut line_feeds = LineFeeds::new(buf, at);
    while let Some(lf) = line_feeds.next_lf() {
        // The line is `buf[line_start..lf]`, `line_start <= lf < buf.len()`.
        let first = buf[line_start];
        if first > b' ' {
            // Not empty: `line_start < lf`.
            if buf[lf - 1] != b'\r' {
                mark_bare_lf(&mut fields.bare_lf);
            }
            fields.read_line(buf, line_start, lf, first);
        } else if first == b'\n' || (first == b'\r' && lf == line_start + 1) {
            // The empty line: the block ends with its LF.
            fields.end = lf + 1;
            if first == b'\n' {
                fields.bare_lf = true;
            }
            if let Some(host) = fields.host.filter(|_| fields.host_line != at) {
                // Scalars only: a reference to `fields` would keep it out of registers.
                fields.host = later_host_as_nginx_reads(buf, at, fields.host_line, host);
            }
            return Status::Complete(());
        } else {
            // Not empty either (`first` is no LF, and no CR alone before one).
            if buf[lf - 1] != b'\r' {
                mark_bare_lf(&mut fields.bare_lf);
            }
            if line_start == at && (first == b' ' || first == b'\t') {
                fields.defect.get_or_insert(HttpError::LeadingWhitespace);
            }
        }
        line_start = lf + 1;
    }
    Status::Partial
}

/// A field's value as read: the CR of a CRLF line end dropped, then OWS trimmed.
#[inline]
fn field_value(value: &[u8]) -> &[u8] {
    trim_ows(strip_cr(value))
}

/// `value` without the one CR that ends it, if it ends in one (a CRLF line's; a bare LF line
/// has none).
#[inline]
fn strip_cr(value: &[u8]) -> &[u8] {
    match value {
        [value @ .., b'\r'] => value,
        value => value,
    }
}

/// Notes a bare LF in `fields.bare_lf`: a call out of line, so that the line loop tests the byte
/// before each LF with a branch (a bare LF is rare) instead of OR-ing the test into a flag on
/// the stack every line (callgrind, engine_loop: 792.5 against 786.0 with the branch); the flag
/// written where it is kept, not in a local copied out at the end (783.7 -> 779.7).
#[cold]
#[inline(never)]
fn mark_bare_lf(bare_lf: &mut bool) {
    *bare_lf = true;
}

/// The Host of a header block at `at` whose Host line is not the first, as nginx reads it:
/// `None` when a line before the Host line is one nginx refuses. (A Host on the first line,
/// where clients put it, is taken as it is, at the cost of one compare.)
#[cold]
fn later_host_as_nginx_reads<'a>(
    buf: &[u8],
    at: usize,
    host_line: usize,
    host: &'a [u8],
) -> Option<&'a [u8]> {
    let before = buf.get(at..host_line).unwrap_or_default();
    (!lines_refused_by_nginx(before)).then_some(host)
}

/// Whether any of the LF-ended header lines in `lines` is one nginx refuses.
fn lines_refused_by_nginx(lines: &[u8]) -> bool {
    let lines = lines.strip_suffix(b"\n").unwrap_or(lines);
    lines
        .split(|&b| b == b'\n')
        .any(|line| refused_by_nginx(line.strip_suffix(b"\r").unwrap_or(line)))
}

/// Whether nginx 1.22 refuses this header line (CR LF or LF already taken off; measured in the
/// lab, see `parser/tests/nginx_lenient.rs`): it starts with a control byte, SP, DEL or `:`
/// (an obs-fold continuation line included), its name holds a control byte, SP or DEL, or its
/// value holds a NUL or a CR not at the line's end. nginx only ignores other odd names (an
/// underscore, a byte ≥ 0x80), and reads any other byte in a value.
fn refused_by_nginx(line: &[u8]) -> bool {
    // CRs before the line end are part of it for nginx (`X: y CR CR LF` is a line).
    let mut line = line;
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    if matches!(line.first(), None | Some(b':')) {
        return true;
    }
    let mut in_name = true;
    for &byte in line {
        if in_name {
            if byte == b':' {
                in_name = false;
            } else if byte <= b' ' || byte == 0x7F {
                return true;
            }
        } else if byte == 0 || byte == b'\r' {
            return true;
        }
    }
    false
}

impl<'a> HeadFields<'a> {
    /// An empty header block that ends at `end`.
    pub(super) const fn none(end: usize) -> Self {
        HeadFields {
            host: None,
            host_line: 0,
            user_agent: None,
            content_length: None,
            content_length_invalid: false,
            transfer_encoding: None,
            defect: None,
            bare_lf: false,
            end,
        }
    }

    /// Reads the header line `buf[line_start..lf]`, whose first byte is `first` (above SP).
    #[inline]
    fn read_line(&mut self, buf: &'a [u8], line_start: usize, lf: usize, first: u8) {
        // Dispatch on the first letter, folded to lower case; most lines match none. Setting
        // bit 5 folds exactly for these letters: only `H` and `h` OR to `h`, and so on. The
        // line still holds the CR of a CRLF: no field name holds a CR, so a name matches as it
        // would without it, and the values drop it (`field_value`).
        match first | CASE_BIT {
            b'h' if self.host.is_none() => {
                self.host = HOST.value_in(&buf[line_start..lf]).map(field_value);
                self.host_line = line_start;
            }
            b'u' if self.user_agent.is_none() => {
                self.user_agent = USER_AGENT.value_in(&buf[line_start..lf]).map(field_value);
            }
            b'c' => {
                if let Some(value) = CONTENT_LENGTH.value_in(&buf[line_start..lf]) {
                    self.read_content_length(value);
                }
            }
            b't' => {
                if let Some(value) = TRANSFER_ENCODING.value_in(&buf[line_start..lf]) {
                    // The last coding of the last field decides (RFC 9112 §6.3).
                    let value = strip_cr(value);
                    let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
                    self.transfer_encoding = Some(trim_ows(last).eq_ignore_ascii_case(b"chunked"));
                }
            }
            _ => {}
        }
    }

    /// Reads a Content-Length value as it follows the colon, the CR of a CRLF line still in
    /// it: dropped and OWS trimmed here, out of the line loop (callgrind, engine_loop: 729.9
    /// -> 729.2 against trimming in the loop and passing the trimmed value).
    fn read_content_length(&mut self, raw: &[u8]) {
        self.content_length_value(field_value(raw));
    }

    /// Reads a Content-Length value, CR dropped and OWS trimmed.
    #[inline(always)]
    fn content_length_value(&mut self, value: &[u8]) {
        /// The most digits whose value always fits a `u64` (10^19 - 1 < 2^64): up to this
        /// length the digits are summed without overflow checks (callgrind: the checked loop
        /// was 14 instructions a digit).
        const UNCHECKED_DIGITS: usize = 19;
        /// A decimal digit's value.
        fn digit(b: u8) -> Option<u64> {
            let digit = b.wrapping_sub(b'0');
            (digit <= 9).then_some(u64::from(digit))
        }
        let parsed = if let [a, b, c] = *value {
            // The usual small body lengths read without a loop (callgrind: the loop below was
            // about 10 instructions a digit).
            digit(a)
                .zip(digit(b))
                .zip(digit(c))
                .map(|((a, b), c)| a * 100 + b * 10 + c)
        } else if let [a, b] = *value {
            digit(a).zip(digit(b)).map(|(a, b)| a * 10 + b)
        } else if let [a] = *value {
            digit(a)
        } else if value.is_empty() {
            None
        } else if value.len() <= UNCHECKED_DIGITS {
            value.iter().try_fold(0u64, |n, &b| {
                let digit = b.wrapping_sub(b'0');
                (digit <= 9).then_some(n * 10 + u64::from(digit))
            })
        } else {
            value.iter().try_fold(0u64, |n, &b| {
                let digit = b.wrapping_sub(b'0');
                if digit > 9 {
                    return None;
                }
                n.checked_mul(10)?.checked_add(u64::from(digit))
            })
        };
        match (parsed, self.content_length) {
            (Some(n), None) if !self.content_length_invalid => self.content_length = Some(n),
            (Some(n), Some(seen)) if n == seen => {}
            _ => {
                self.content_length = None;
                self.content_length_invalid = true;
                self.defect.get_or_insert(HttpError::InvalidContentLength);
            }
        }
    }

    /// How a request's body is framed (RFC 9112 §6.3, rules 3–6), recording any defect.
    #[inline]
    pub(super) fn request_body(&mut self) -> Body {
        match self.transfer_encoding {
            Some(chunked) => {
                self.flag_length_beside_coding();
                if chunked {
                    Body::Chunked
                } else {
                    self.defect
                        .get_or_insert(HttpError::InvalidTransferEncoding);
                    Body::Unknown
                }
            }
            None => self.length_body(Body::Empty),
        }
    }

    /// How a response's body is framed (RFC 9112 §6.3), recording any defect. Responses to
    /// HEAD and 2xx responses to CONNECT also have no body; only the caller knows the request.
    #[inline]
    pub(super) fn response_body(&mut self, code: u16) -> Body {
        if code < 200 || code == 204 || code == 304 {
            return Body::Empty;
        }
        match self.transfer_encoding {
            Some(chunked) => {
                self.flag_length_beside_coding();
                if chunked {
                    Body::Chunked
                } else {
                    Body::UntilClose
                }
            }
            None => self.length_body(Body::UntilClose),
        }
    }

    /// Transfer-Encoding overrides Content-Length (RFC 9112 §6.3 rule 3), but a message that
    /// sends both is what request smuggling relies on: flag it.
    fn flag_length_beside_coding(&mut self) {
        if self.content_length.is_some() || self.content_length_invalid {
            self.defect.get_or_insert(HttpError::AmbiguousFraming);
        }
    }

    fn length_body(&self, without_length: Body) -> Body {
        match (self.content_length, self.content_length_invalid) {
            (_, true) => Body::Unknown,
            (Some(0), false) => Body::Empty,
            (Some(n), false) => Body::Length(n),
            (None, false) => without_length,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(block: &[u8]) -> HeadFields<'_> {
        let mut fields = HeadFields::none(0);
        assert!(
            !scan(block, 0, &mut fields).is_partial(),
            "complete header block"
        );
        fields
    }

    /// The Host nginx reads from `block`.
    fn nginx_host(block: &[u8]) -> Option<&[u8]> {
        fields(block).host
    }

    #[test]
    fn finds_the_four_fields_in_any_case() {
        let block = b"Accept: */*\r\nHOST:  example.com:8080 \r\nuser-AGENT:\tcurl/8.5\r\n\
                      Content-Length: 42\r\n\r\nbody";
        let f = fields(block);
        assert_eq!(f.host, Some(&b"example.com:8080"[..]));
        assert_eq!(f.user_agent, Some(&b"curl/8.5"[..]));
        assert_eq!(f.content_length, Some(42));
        assert_eq!(f.end, block.len() - 4);
        assert_eq!(f.defect, None);
    }

    #[test]
    fn first_host_wins_and_lookalikes_do_not_match() {
        let f = fields(b"Hostname: no\r\nHost: a\r\nHost: b\r\nContent-Length-X: 9\r\n\r\n");
        assert_eq!(f.host, Some(&b"a"[..]));
        assert_eq!(f.content_length, None);
    }

    #[test]
    fn empty_block_and_bare_lf() {
        assert_eq!(fields(b"\r\n").end, 2);
        assert!(!fields(b"\r\n").bare_lf);
        let f = fields(b"Host: a\nX: y\n\n");
        assert_eq!((f.host, f.end, f.bare_lf), (Some(&b"a"[..]), 14, true));
        assert!(fields(b"Host: a\r\n\n").bare_lf, "the empty line");
        assert!(fields(b"Host: a\nX: y\r\n\r\n").bare_lf, "one header line");
        assert!(!fields(b"Host: a\r\nX: y\r\n\r\n").bare_lf);
    }

    #[test]
    fn partial_until_the_empty_line() {
        for block in [
            &b""[..],
            b"\r",
            b"Host: a\r\n",
            b"Host: a\r\n\r",
            b"Host: a",
        ] {
            assert!(
                scan(block, 0, &mut HeadFields::none(0)).is_partial(),
                "{block:?}"
            );
        }
    }

    /// A header block of one Content-Length field with `value`.
    fn content_length_block(value: &[u8]) -> std::vec::Vec<u8> {
        [&b"Content-Length: "[..], value, b"\r\n\r\n"].concat()
    }

    #[test]
    fn content_length_defects() {
        let malformed = [&b""[..], b"4 2", b"-1", b"0x10", b"999999999999999999/"];
        let too_large = [
            &b"18446744073709551616"[..],
            b"99999999999999999999",
            b"1000000000000000000000",
        ];
        for value in malformed.into_iter().chain(too_large) {
            let block = content_length_block(value);
            let mut f = fields(&block);
            assert_eq!(f.defect, Some(HttpError::InvalidContentLength), "{value:?}");
            assert_eq!(f.request_body(), Body::Unknown);
        }
        // The longest values that fit: 19 digits (summed unchecked), and u64::MAX (20 digits,
        // checked).
        for (value, n) in [
            (&b"9999999999999999999"[..], 9_999_999_999_999_999_999),
            (b"18446744073709551615", u64::MAX),
            (b"00000000000000000000042", 42),
        ] {
            let block = content_length_block(value);
            assert_eq!(fields(&block).content_length, Some(n), "{value:?}");
        }
        let mut same = fields(b"Content-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!((same.defect, same.request_body()), (None, Body::Length(3)));
        let mut differ = fields(b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n");
        assert_eq!(differ.request_body(), Body::Unknown);
        assert_eq!(differ.defect, Some(HttpError::InvalidContentLength));
    }

    #[test]
    fn short_content_lengths_read_as_the_digit_loop_reads_them() {
        let bytes = [b'0', b'1', b'5', b'9', b'/', b':', b' ', b'a', 0xB0];
        let mut values: std::vec::Vec<std::vec::Vec<u8>> = std::vec![];
        for &a in &bytes {
            values.push(std::vec![a]);
            for &b in &bytes {
                values.push(std::vec![a, b]);
                for &c in &bytes {
                    values.push(std::vec![a, b, c]);
                }
            }
        }
        for value in values {
            let block = content_length_block(&value);
            let f = fields(&block);
            // What is left after the trim, read digit by digit.
            let want = core::str::from_utf8(trim_ows(&value))
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            assert_eq!(f.content_length, want, "{value:?}");
            assert_eq!(f.content_length_invalid, want.is_none(), "{value:?}");
        }
    }

    #[test]
    fn request_framing() {
        assert_eq!(fields(b"\r\n").request_body(), Body::Empty);
        assert_eq!(
            fields(b"Content-Length: 0\r\n\r\n").request_body(),
            Body::Empty
        );
        let mut f = fields(b"Transfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!((f.request_body(), f.defect), (Body::Chunked, None));
        let mut f = fields(b"Transfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!(f.request_body(), Body::Unknown);
        assert_eq!(f.defect, Some(HttpError::InvalidTransferEncoding));
        let mut f = fields(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(f.request_body(), Body::Chunked);
        assert_eq!(f.defect, Some(HttpError::AmbiguousFraming));
    }

    #[test]
    fn response_framing() {
        assert_eq!(fields(b"\r\n").response_body(200), Body::UntilClose);
        assert_eq!(
            fields(b"Content-Length: 10\r\n\r\n").response_body(304),
            Body::Empty
        );
        assert_eq!(
            fields(b"Content-Length: 10\r\n\r\n").response_body(200),
            Body::Length(10)
        );
        assert_eq!(fields(b"\r\n").response_body(101), Body::Empty);
        assert_eq!(fields(b"\r\n").response_body(204), Body::Empty);
        let mut f = fields(b"Transfer-Encoding: chunked\r\n\r\n");
        assert_eq!(f.response_body(200), Body::Chunked);
        let mut f = fields(b"Transfer-Encoding: gzip\r\n\r\n");
        assert_eq!(f.response_body(200), Body::UntilClose);
    }

    #[test]
    fn field_names_fold_letters_only() {
        for name in [&HOST, &USER_AGENT, &CONTENT_LENGTH, &TRANSFER_ENCODING] {
            let upper = name.bytes.to_ascii_uppercase();
            for line in [
                name.bytes.to_vec(),
                upper.clone(),
                [&upper[..], b" value padding"].concat(),
            ] {
                assert!(name.value_in(&line).is_some(), "{line:?}");
            }
            // Every single-byte change of the name breaks the match, whatever the line length,
            // except changing the case of a letter.
            for at in 0..name.bytes.len() {
                for byte in 0..=255u8 {
                    for padding in [&b""[..], b" and a long enough value"] {
                        let mut line = [name.bytes, padding].concat();
                        line[at] = byte;
                        let same = byte.to_ascii_lowercase() == name.bytes[at];
                        assert_eq!(name.value_in(&line).is_some(), same, "{line:?}");
                    }
                }
            }
            assert!(name.value_in(&name.bytes[..name.bytes.len() - 1]).is_none());
        }
    }

    #[test]
    fn case_bit_folds_exactly_for_the_dispatch_letters() {
        for byte in 0..=255u8 {
            for letter in [b'h', b'u', b'c', b't'] {
                assert_eq!(
                    byte | CASE_BIT == letter,
                    byte.to_ascii_lowercase() == letter,
                    "{byte:#x}"
                );
            }
        }
    }

    #[test]
    fn lines_nginx_refuses() {
        for line in [
            &b" X: y"[..],
            b"\tfolded",
            b"X A: b",
            b"X\tA: b",
            b"X\x01A: b",
            b"X\x7fA: b",
            b"X\0A: b",
            b":x",
            b"X: a\0b",
            b"X: a\rb",
            b"X\r: b",
            b"\r",
            b"\rX: y",
        ] {
            assert!(refused_by_nginx(line), "{line:?}");
        }
        for line in [
            &b"X-A: b"[..],
            b"X_A: b",
            b"X\xe9A: b",
            b"X\"A: b",
            b"Foo",
            b"X-A:",
            b"X-A: a\x01b\x7f",
            b"X-A:\tb c ",
            b"X-A: b\r",
            b"X-A\r\r",
        ] {
            assert!(!refused_by_nginx(line), "{line:?}");
        }
    }

    #[test]
    fn no_host_after_a_line_nginx_refuses() {
        // nginx stops at the refused line and logs no Host.
        for block in [
            &b"X A: b\r\nHost: h\r\n\r\n"[..],
            b"X-A: a\0b\r\nHost: h\r\n\r\n",
            b"X-A: b\r\n\tc\r\nHost: h\r\n\r\n",
            b" X-A: b\nHost: h\n\n",
        ] {
            assert_eq!(nginx_host(block), None, "{block:?}");
        }
        // Lines nginx only ignores, and any line after Host, leave Host as read.
        for block in [
            &b"Foo\r\nX_A: b\r\nX-A: \x01\r\nHost: h\r\n\r\n"[..],
            b"Host: h\r\nX A: b\r\n\r\n",
            b"Host: h\r\nX-A: b\r\n folded\r\nHost: o\r\n\r\n",
        ] {
            assert_eq!(nginx_host(block), Some(&b"h"[..]), "{block:?}");
        }
        // Host first, with any OWS; an empty Host; no Host.
        for (block, host) in [
            (&b"Host:   h\r\n\r\n"[..], Some(&b"h"[..])),
            (b"HOST:\th \r\nX A: b\r\n\r\n", Some(b"h")),
            (b"Host:\r\n\r\n", Some(b"")),
            (b"X A: b\r\nHost:  \r\n\r\n", None),
            (b"X A: b\r\n\r\n", None),
        ] {
            assert_eq!(nginx_host(block), host, "{block:?}");
        }
        // The other fields are still read after a refused line: they frame the body.
        let f = fields(b"X A: b\r\nContent-Length: 3\r\nUser-Agent: u\r\n\r\n");
        assert_eq!((f.content_length, f.user_agent), (Some(3), Some(&b"u"[..])));
    }

    /// The header block at `at` read the plain way: split on LF, a CR before it dropped, each
    /// line's name compared byte by byte. `None` while the empty line is not in `buf`.
    fn plain_scan(buf: &[u8], at: usize) -> Option<HeadFields<'_>> {
        let mut fields = HeadFields::none(0);
        let mut line_start = at;
        for lf in (at..buf.len()).filter(|&i| buf[i] == b'\n') {
            let raw = &buf[line_start..lf];
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            fields.bare_lf |= line.len() == raw.len();
            if line.is_empty() {
                fields.end = lf + 1;
                if fields.host.is_some() && fields.host_line != at {
                    let before = &buf[at..fields.host_line];
                    let refused = before
                        .strip_suffix(b"\n")
                        .unwrap_or(before)
                        .split(|&b| b == b'\n')
                        .any(|l| refused_by_nginx(l.strip_suffix(b"\r").unwrap_or(l)));
                    if refused {
                        fields.host = None;
                    }
                }
                return Some(fields);
            }
            if line_start == at && matches!(line[0], b' ' | b'\t') {
                fields.defect.get_or_insert(HttpError::LeadingWhitespace);
            }
            let value = |name: &[u8]| {
                (line.len() >= name.len() && line[..name.len()].eq_ignore_ascii_case(name))
                    .then(|| trim_ows(&line[name.len()..]))
            };
            if fields.host.is_none() {
                if let Some(host) = value(b"host:") {
                    fields.host = Some(host);
                    fields.host_line = line_start;
                }
            }
            if fields.user_agent.is_none() {
                fields.user_agent = value(b"user-agent:");
            }
            if let Some(length) = value(b"content-length:") {
                fields.content_length_value(length);
            }
            if let Some(coding) = value(b"transfer-encoding:") {
                let last = coding.rsplit(|&b| b == b',').next().unwrap_or_default();
                fields.transfer_encoding = Some(trim_ows(last).eq_ignore_ascii_case(b"chunked"));
            }
            line_start = lf + 1;
        }
        None
    }

    #[test]
    fn scan_reads_as_the_plain_scan_reads() {
        // Pieces of header blocks: the four fields in mixed case and lookalikes, odd line
        // ends (bare LF, CR CR LF, a lone CR), obs-fold and leading whitespace, control bytes,
        // and long lines so that lines and line ends fall across 64-byte windows.
        let pieces: [&[u8]; 30] = [
            b"Host: a.example\r\n",
            b"HOST:b\n",
            b"host:\r\n",
            b"Hostname: no\r\n",
            b"User-Agent: curl/8 \r\n",
            b"uSER-aGENT:\tx\r\r\n",
            b"Content-Length: 12\r\n",
            b"content-length: 0012\n",
            b"Content-Length: 1x\r\n",
            b"Content-Type: text/html\r\n",
            b"Transfer-Encoding: gzip, chunked\r\n",
            b"transfer-encoding: chunked, x\n",
            b"Accept: */*\r\n",
            b" folded\r\n",
            b"\tfolded\n",
            b"X A: b\r\n",
            b"X: a\rb\r\n",
            b"\rX: y\r\n",
            b"\r\r\n",
            b"X-Long: 0123456789012345678901234567890123456789012345678901234567890123\r\n",
            b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n",
            b"C\r\n",
            b"H\n",
            b"t: x\r\n",
            b":\r\n",
            b"\x00\x7f\xff: v\r\n",
            b"Cookie: a=1; b=2\r\n",
            b"\r\n",
            b"\n",
            b"\r",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % n as u64).expect("below n")
        };
        for _ in 0..20_000 {
            let lead = next(70);
            // What comes before the block: a start line's CRLF end (or part of one).
            let mut buf = std::vec![b'z'; lead];
            for (at, byte) in buf.iter_mut().rev().zip(b"\n\r") {
                *at = *byte;
            }
            for _ in 0..next(12) {
                buf.extend_from_slice(pieces[next(pieces.len())]);
            }
            if next(4) != 0 {
                buf.extend_from_slice([&b"\r\n"[..], b"\n"][next(2)]);
            }
            for _ in 0..next(3) {
                buf.extend_from_slice(pieces[next(pieces.len())]);
            }
            for len in [buf.len(), next(buf.len() + 1)] {
                let buf = &buf[..len];
                let mut fields = HeadFields::none(0);
                // Where a Host line starts only means something with a Host.
                fn known(fields: HeadFields<'_>) -> HeadFields<'_> {
                    HeadFields {
                        host_line: if fields.host.is_some() {
                            fields.host_line
                        } else {
                            0
                        },
                        ..fields
                    }
                }
                let got = scan(buf, lead.min(len), &mut fields)
                    .complete()
                    .map(|()| known(fields));
                let want = plain_scan(buf, lead.min(len)).map(known);
                assert_eq!(got, want, "{buf:?} at {lead}");
            }
        }
    }

    #[test]
    fn leading_whitespace_after_start_line() {
        let f = fields(b" Host: foo\r\n\r\n");
        assert_eq!(f.defect, Some(HttpError::LeadingWhitespace));
        let f = fields(b"Host: foo\r\n folded\r\n\r\n");
        assert_eq!(f.defect, None);
    }
}

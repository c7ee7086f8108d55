//! Skipping a chunked body (RFC 9112 §7.1) without copying it, across as many buffers as it
//! spans.
//!
//! [`ChunkedBody`] is a small `Copy` state machine: feed it consecutive pieces of the stream
//! with [`ChunkedBody::advance`] until it reports [`ChunkProgress::Done`] with the number of
//! bytes of the last piece that belonged to the body. Chunk data is skipped by arithmetic;
//! only the size lines and trailers are read byte by byte, so the work is bounded by the
//! number of chunks, not their size.
//!
//! Every line end may be CRLF or a bare LF (the size line, the line end after chunk data, the
//! trailer lines and the final empty line), as nginx accepts them; a CR not followed by LF is
//! an error.

use memchr::{memchr, memchr2};

use super::HttpError;

/// Hex digits in a chunk size before it would overflow a `u64`.
const MAX_SIZE_DIGITS: u8 = 16;

/// How far [`ChunkedBody::advance`] got in the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkProgress {
    /// The body ended after this many bytes of the input; the next message starts there.
    Done(usize),
    /// The whole input belonged to the body and the body goes on.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size.
    Size,
    /// Skipping a chunk extension up to CR.
    Extension,
    /// Expecting the LF of a chunk-size line.
    SizeLf,
    /// Skipping chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line, skipping to LF.
    TrailerLine,
    /// Expecting the LF of the final empty line.
    FinalLf,
}

/// The position inside a chunked body. Keep it per flow to skip bodies split over segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedBody {
    state: State,
    /// The chunk size being read, then the data bytes still to skip.
    size: u64,
    /// Hex digits read for the current size.
    digits: u8,
}

impl Default for ChunkedBody {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedBody {
    /// The position at the first byte of a chunked body.
    pub const fn new() -> Self {
        ChunkedBody {
            state: State::Size,
            size: 0,
            digits: 0,
        }
    }

    /// Consumes `buf`, the next bytes of the body.
    ///
    /// Errors with [`HttpError::InvalidChunk`] on a malformed size line or a chunk not followed
    /// by CRLF; the state is then meaningless.
    pub fn advance(&mut self, buf: &[u8]) -> Result<ChunkProgress, HttpError> {
        let mut at = 0;
        while at < buf.len() {
            let byte = buf[at];
            match self.state {
                State::Size => {
                    match byte {
                        b'\r' if self.digits > 0 => self.state = State::SizeLf,
                        b';' if self.digits > 0 => self.state = State::Extension,
                        // A bare LF ends the size line (nginx accepts it; see the module doc).
                        b'\n' if self.digits > 0 => self.size_line_ended(),
                        _ => {
                            let digit = hex_value(byte).ok_or(HttpError::InvalidChunk)?;
                            if self.digits == MAX_SIZE_DIGITS {
                                return Err(HttpError::InvalidChunk);
                            }
                            self.size = self.size << 4 | u64::from(digit);
                            self.digits += 1;
                        }
                    }
                    at += 1;
                }
                State::Extension => match memchr2(b'\r', b'\n', &buf[at..]) {
                    Some(end) => {
                        if buf[at + end] == b'\r' {
                            self.state = State::SizeLf;
                        } else {
                            self.size_line_ended();
                        }
                        at += end + 1;
                    }
                    None => at = buf.len(),
                },
                State::SizeLf => {
                    expect(byte, b'\n')?;
                    at += 1;
                    self.size_line_ended();
                }
                State::Data => {
                    let available = buf.len() - at;
                    match usize::try_from(self.size) {
                        Ok(size) if size <= available => {
                            at += size;
                            self.size = 0;
                            self.state = State::DataCr;
                        }
                        _ => {
                            self.size -= available as u64;
                            at = buf.len();
                        }
                    }
                }
                State::DataCr => {
                    at += 1;
                    match byte {
                        b'\r' => self.state = State::DataLf,
                        // A bare LF after the data ends the chunk too.
                        b'\n' => *self = ChunkedBody::new(),
                        _ => return Err(HttpError::InvalidChunk),
                    }
                }
                State::DataLf => {
                    expect(byte, b'\n')?;
                    at += 1;
                    *self = ChunkedBody::new();
                }
                State::TrailerStart => {
                    at += 1;
                    match byte {
                        b'\r' => self.state = State::FinalLf,
                        b'\n' => return Ok(ChunkProgress::Done(at)),
                        _ => self.state = State::TrailerLine,
                    }
                }
                State::TrailerLine => match memchr(b'\n', &buf[at..]) {
                    Some(lf) => {
                        at += lf + 1;
                        self.state = State::TrailerStart;
                    }
                    None => at = buf.len(),
                },
                State::FinalLf => {
                    expect(byte, b'\n')?;
                    return Ok(ChunkProgress::Done(at + 1));
                }
            }
        }
        Ok(ChunkProgress::NeedMore)
    }

    /// After the LF of a chunk-size line: the data, or the trailers after the last chunk.
    #[inline]
    fn size_line_ended(&mut self) {
        self.state = if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        };
    }
}

#[inline]
fn expect(byte: u8, wanted: u8) -> Result<(), HttpError> {
    if byte == wanted {
        Ok(())
    } else {
        Err(HttpError::InvalidChunk)
    }
}

#[inline]
fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"a\r\n0123456789\r\n5;name=\"v\"\r\nhello\r\n0\r\nTrailer: x\r\n\r\nNEXT";

    #[test]
    fn whole_body_in_one_buffer() {
        let mut c = ChunkedBody::new();
        assert_eq!(c.advance(BODY), Ok(ChunkProgress::Done(BODY.len() - 4)));
    }

    #[test]
    fn body_split_at_every_point() {
        for cut in 0..BODY.len() - 4 {
            let mut c = ChunkedBody::new();
            assert_eq!(
                c.advance(&BODY[..cut]),
                Ok(ChunkProgress::NeedMore),
                "cut {cut}"
            );
            assert_eq!(
                c.advance(&BODY[cut..]),
                Ok(ChunkProgress::Done(BODY.len() - 4 - cut))
            );
        }
    }

    #[test]
    fn byte_at_a_time() {
        let mut c = ChunkedBody::new();
        let end = BODY.len() - 4;
        for (i, byte) in BODY[..end].iter().enumerate() {
            let progress = c.advance(core::slice::from_ref(byte)).unwrap();
            let expected = if i + 1 == end {
                ChunkProgress::Done(1)
            } else {
                ChunkProgress::NeedMore
            };
            assert_eq!(progress, expected, "byte {i}");
        }
    }

    #[test]
    fn uppercase_hex_and_no_trailers() {
        let mut c = ChunkedBody::new();
        assert_eq!(
            c.advance(b"A\r\n0123456789\r\n0\r\n\r\n"),
            Ok(ChunkProgress::Done(20))
        );
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            &b"\r\n"[..],              // no size
            b"3 \r\nfoo\r\n0\r\n\r\n", // space after size
            b"2 erfr\r\n",             // text after size
            b"3\r\nfoo\r\n\r\n",       // missing last-chunk
            b"5\r\nABCDE0\r\n",        // data not followed by CRLF
            b"5\r\r;ABCD",             // CR CR
            b"11111111111111111\r\n",  // 17 hex digits
            b"0\r\n\rX",               // final CR without LF
            b"g\r\n",                  // not hex
        ] {
            let mut c = ChunkedBody::new();
            assert_eq!(c.advance(body), Err(HttpError::InvalidChunk), "{body:?}");
        }
    }

    #[test]
    fn bare_lf_ends_every_line() {
        // What nginx served in the lab: bare LF after the size, after the data and as the
        // final line; mixed with CRLF; after an extension.
        for body in [
            &b"3\nabc\n0\n\nNEXT"[..],
            b"3\nabc\r\n0\n\r\nNEXT",
            b"3;ext=1\nabc\n0;x\nTrailer: t\n\nNEXT",
        ] {
            let end = body.len() - 4;
            let mut c = ChunkedBody::new();
            assert_eq!(c.advance(body), Ok(ChunkProgress::Done(end)), "{body:?}");
            for cut in 0..end {
                let mut c = ChunkedBody::new();
                assert_eq!(c.advance(&body[..cut]), Ok(ChunkProgress::NeedMore));
                assert_eq!(c.advance(&body[cut..]), Ok(ChunkProgress::Done(end - cut)));
            }
        }
        for body in [&b"3\nfoo"[..], b"1;ext\nA"] {
            let mut c = ChunkedBody::new();
            assert_eq!(c.advance(body), Ok(ChunkProgress::NeedMore), "{body:?}");
        }
        // A bare CR is still an error, wherever it stands.
        for body in [&b"3\rabc"[..], b"3\r\nabc\rX", b"1;e\rX"] {
            let mut c = ChunkedBody::new();
            assert_eq!(c.advance(body), Err(HttpError::InvalidChunk), "{body:?}");
        }
    }

    #[test]
    fn huge_chunk_is_skipped_without_reading_it() {
        let mut c = ChunkedBody::new();
        assert_eq!(
            c.advance(b"ffffffffffffffff\r\nxyz"),
            Ok(ChunkProgress::NeedMore)
        );
        assert_eq!(c.size, u64::MAX - 3);
    }
}

//! Every message in a buffer, one after another: pipelined requests, or the responses to them.
//!
//! [`requests`] and [`responses`] return a [`Messages`] iterator over `(offset, head)` pairs.
//! Between heads it skips the body as its framing says (Content-Length, or chunked via
//! [`ChunkedBody`]). When it stops, [`Messages::outcome`] says why, which is what the caller
//! must carry to the next segment of the same flow: nothing, a partial head, or the rest of a
//! body.

use core::marker::PhantomData;

use super::{
    only_empty_lines, parse_request, parse_response, Body, ChunkProgress, ChunkedBody, HttpError,
    Request, Response, Status,
};

/// A message head the iterator can step over: how to parse one, how long it is, and how its
/// body is framed.
pub trait Message<'a>: Sized {
    /// Reads one head at the start of `buf`.
    fn parse(buf: &'a [u8]) -> Result<Status<Self>, HttpError>;
    /// Bytes from the start of the parsed buffer to the end of the head.
    fn head_len(&self) -> usize;
    /// How the body after the head is framed.
    fn body(&self) -> Body;
}

impl<'a> Message<'a> for Request<'a> {
    fn parse(buf: &'a [u8]) -> Result<Status<Self>, HttpError> {
        parse_request(buf)
    }
    fn head_len(&self) -> usize {
        self.head_len
    }
    fn body(&self) -> Body {
        self.body
    }
}

impl<'a> Message<'a> for Response<'a> {
    fn parse(buf: &'a [u8]) -> Result<Status<Self>, HttpError> {
        parse_response(buf)
    }
    fn head_len(&self) -> usize {
        self.head_len
    }
    fn body(&self) -> Body {
        self.body
    }
}

/// Why a [`Messages`] iterator stopped, and what the next segment of the flow starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte was used: the next segment starts with a new message.
    Complete,
    /// A head begins at `offset` but is cut off: carry `buf[offset..]` to the next segment.
    Partial {
        /// Where the cut head starts.
        offset: usize,
    },
    /// The last message's body has this many bytes beyond the buffer.
    BodyBytes(u64),
    /// The last message's chunked body continues; feed the next segment to this state.
    BodyChunked(ChunkedBody),
    /// The last message's body runs until the connection closes.
    BodyUntilClose,
    /// The last message's framing was invalid (its `defect` says how): the next message's
    /// start is unknown.
    LostFraming,
    /// The bytes at `offset` are not a valid message (or a chunked body broke there).
    Error {
        /// Where the bad bytes start.
        offset: usize,
        /// What is wrong with them.
        error: HttpError,
    },
}

/// An iterator over the message heads in a buffer. See the module doc.
#[derive(Debug, Clone)]
pub struct Messages<'a, M> {
    buf: &'a [u8],
    at: usize,
    outcome: Option<Outcome>,
    kind: PhantomData<M>,
}

/// Iterates over the requests in `buf`.
pub fn requests(buf: &[u8]) -> Messages<'_, Request<'_>> {
    Messages::new(buf)
}

/// Iterates over the responses in `buf`.
pub fn responses(buf: &[u8]) -> Messages<'_, Response<'_>> {
    Messages::new(buf)
}

impl<'a, M: Message<'a>> Messages<'a, M> {
    /// An iterator positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Messages {
            buf,
            at: 0,
            outcome: None,
            kind: PhantomData,
        }
    }

    /// Why iteration stopped; `None` while it has not.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    fn stop(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.at = self.buf.len();
    }

    /// Steps over the body that starts at `body_at`.
    fn skip_body(&mut self, body: Body, body_at: usize) {
        let rest = &self.buf[body_at..];
        match body {
            Body::Empty => self.at = body_at,
            Body::Length(len) => match usize::try_from(len) {
                Ok(len) if len <= rest.len() => self.at = body_at + len,
                _ => self.stop(Outcome::BodyBytes(len - rest.len() as u64)),
            },
            Body::Chunked => {
                let mut chunked = ChunkedBody::new();
                match chunked.advance(rest) {
                    Ok(ChunkProgress::Done(len)) => self.at = body_at + len,
                    Ok(ChunkProgress::NeedMore) => self.stop(Outcome::BodyChunked(chunked)),
                    Err(error) => self.stop(Outcome::Error {
                        offset: body_at,
                        error,
                    }),
                }
            }
            Body::UntilClose => self.stop(Outcome::BodyUntilClose),
            Body::Unknown => self.stop(Outcome::LostFraming),
        }
    }
}

impl<'a, M: Message<'a>> Iterator for Messages<'a, M> {
    type Item = (usize, M);

    fn next(&mut self) -> Option<Self::Item> {
        if self.outcome.is_some() {
            return None;
        }
        let offset = self.at;
        let rest = &self.buf[offset..];
        if only_empty_lines(rest) {
            self.stop(Outcome::Complete);
            return None;
        }
        match M::parse(rest) {
            Ok(Status::Complete(message)) => {
                self.skip_body(message.body(), offset + message.head_len());
                Some((offset, message))
            }
            Ok(Status::Partial) => {
                self.stop(Outcome::Partial { offset });
                None
            }
            Err(error) => {
                self.stop(Outcome::Error { offset, error });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn targets(buf: &[u8]) -> (Vec<&[u8]>, Option<Outcome>) {
        let mut it = requests(buf);
        let found = it.by_ref().map(|(_, r)| r.line.target).collect();
        (found, it.outcome())
    }

    #[test]
    fn nine_pipelined_gets() {
        let mut segment = Vec::new();
        for i in 0..9 {
            segment
                .extend_from_slice(std::format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        }
        let (found, outcome) = targets(&segment);
        assert_eq!(found.len(), 9);
        assert_eq!(found[8], b"/8");
        assert_eq!(outcome, Some(Outcome::Complete));
    }

    #[test]
    fn bodies_are_skipped() {
        let buf = b"POST /aaa HTTP/1.1\r\nContent-Length: 3\r\n\r\nAAA\r\n\
                    PUT /bbb HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n0\r\n\r\n\
                    GET /ccc HTTP/1.1\r\n\r\n";
        let (found, outcome) = targets(buf);
        assert_eq!(found, [&b"/aaa"[..], b"/bbb", b"/ccc"]);
        assert_eq!(outcome, Some(Outcome::Complete));
    }

    #[test]
    fn offsets_point_at_each_message() {
        let buf = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let offsets: Vec<usize> = requests(buf).map(|(at, _)| at).collect();
        assert_eq!(offsets, [0, 19]);
    }

    #[test]
    fn stops_with_what_to_carry() {
        let (found, outcome) = targets(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nHo");
        assert_eq!(
            (found.len(), outcome),
            (1, Some(Outcome::Partial { offset: 19 }))
        );

        let (_, outcome) = targets(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n1234");
        assert_eq!(outcome, Some(Outcome::BodyBytes(6)));

        let (_, outcome) = targets(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
        let Some(Outcome::BodyChunked(mut state)) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            state.advance(b"cde\r\n0\r\n\r\n"),
            Ok(ChunkProgress::Done(10))
        );

        let (found, outcome) = targets(b"GET / HTTP/1.1\r\n\r\n\x16\x03\x01");
        assert_eq!(
            (found.len(), outcome),
            (
                1,
                Some(Outcome::Error {
                    offset: 18,
                    error: HttpError::NotHttp
                })
            )
        );

        let (_, outcome) =
            targets(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!(outcome, Some(Outcome::LostFraming));

        let (found, outcome) = targets(b"GET / HTTP/1.1\r\n\r\n\r\n");
        assert_eq!((found.len(), outcome), (1, Some(Outcome::Complete)));
    }

    #[test]
    fn a_huge_content_length_never_overflows() {
        let (_, outcome) =
            targets(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nab");
        assert_eq!(outcome, Some(Outcome::BodyBytes(u64::MAX - 2)));
    }

    #[test]
    fn responses_in_sequence() {
        let buf = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 404 Not Found\r\n";
        let mut it = responses(buf);
        let codes: Vec<u16> = it.by_ref().map(|(_, r)| r.line.code).collect();
        assert_eq!(codes, [100, 200]);
        assert_eq!(it.outcome(), Some(Outcome::Partial { offset: 65 }));
        let (_, outcome) = {
            let mut it = responses(b"HTTP/1.0 200 OK\r\n\r\nbody bytes");
            let n = it.by_ref().count();
            (n, it.outcome())
        };
        assert_eq!(outcome, Some(Outcome::BodyUntilClose));
    }
}

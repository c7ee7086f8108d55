//! One client connection of the metrics endpoint, as a state machine that the event loop
//! moves on whenever its socket is ready: read the request head, write the response, linger,
//! close.
//!
//! The socket is non-blocking and registered edge-triggered, so [`Conn::step`] goes as far
//! as it can (until the socket would block) every time it is called. Each state has its own
//! deadline, which the loop enforces with [`Conn::expired`]. A connection that has sent
//! nothing holds no buffer; a request head that arrives whole in one read is answered from
//! the read buffer on the stack, and only a head that arrives in pieces is kept, within the
//! room the loop grants (the endpoint's budget for partial heads).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use super::exposition::Exposition;
use super::http::{answer, error, head_end, Response};
use super::{HEAD_TIMEOUT, LINGER, MAX_HEAD, WRITE_TIMEOUT};

/// Bytes read from a socket at a time (on the stack).
const CHUNK: usize = 2048;

/// Where a connection is.
#[derive(Debug)]
enum State {
    /// Reading the request head (`buf` holds what came so far, empty until it comes in
    /// pieces), due by the deadline.
    Head { buf: Vec<u8>, deadline: Instant },
    /// Writing the response from byte `sent` on, due by the deadline.
    Write {
        out: Response,
        sent: usize,
        deadline: Instant,
    },
    /// Response sent and write side shut: dropping what the client still sends until EOF or
    /// the deadline, then closing (so that unread bytes do not turn the close into a reset
    /// that could cost the client the response).
    Linger { deadline: Instant },
}

#[derive(Debug)]
pub(super) struct Conn {
    stream: TcpStream,
    state: State,
}

impl Conn {
    /// A connection accepted at `now`, waiting for its request head.
    pub(super) fn new(stream: TcpStream, now: Instant) -> Conn {
        Conn {
            stream,
            state: State::Head {
                buf: Vec::new(),
                deadline: now + HEAD_TIMEOUT,
            },
        }
    }

    /// Bytes of partial request head this connection holds (counted against the budget).
    pub(super) fn held(&self) -> usize {
        match &self.state {
            State::Head { buf, .. } => buf.capacity(),
            State::Write { .. } | State::Linger { .. } => 0,
        }
    }

    /// Whether the current state's deadline has passed at `now`.
    pub(super) fn expired(&self, now: Instant) -> bool {
        let deadline = match &self.state {
            State::Head { deadline, .. }
            | State::Write { deadline, .. }
            | State::Linger { deadline } => *deadline,
        };
        now >= deadline
    }

    /// Moves the connection on as far as it goes without blocking; `room` is how many bytes
    /// of partial head it may hold (a head that needs more is answered 503). Returns whether
    /// it is still open.
    pub(super) fn step(&mut self, exposition: &mut Exposition, room: usize, now: Instant) -> bool {
        loop {
            match &mut self.state {
                State::Head { buf, .. } => {
                    let mut chunk = [0u8; CHUNK];
                    let want = MAX_HEAD.saturating_sub(buf.len()).min(CHUNK);
                    let n = match read_some(&mut self.stream, chunk.get_mut(..want)) {
                        Io::Data(n) => n,
                        Io::Blocked => return true,
                        // Closed before a full head, or failed: close.
                        Io::Closed | Io::Failed => return false,
                    };
                    let got = chunk.get(..n).unwrap_or_default();
                    let out = if buf.is_empty() && head_end(got, 0).is_some() {
                        // The usual scrape: the whole head in one read, never buffered.
                        Some(respond_to(got, exposition, now))
                    } else {
                        let from = buf.len().saturating_sub(3);
                        if buf.len() + n > room
                            || buf.try_reserve(n).is_err()
                            || buf.capacity() > room
                        {
                            Some(error("503 Service Unavailable", "server busy\n"))
                        } else {
                            buf.extend_from_slice(got);
                            if head_end(buf, from).is_some() {
                                Some(respond_to(buf, exposition, now))
                            } else if buf.len() >= MAX_HEAD {
                                Some(error(
                                    "431 Request Header Fields Too Large",
                                    "request head too large\n",
                                ))
                            } else {
                                None
                            }
                        }
                    };
                    if let Some(out) = out {
                        self.state = State::Write {
                            out,
                            sent: 0,
                            deadline: now + WRITE_TIMEOUT,
                        };
                    }
                }
                State::Write { out, sent, .. } => {
                    let (head, body) = out.rest(*sent);
                    if head.is_empty() && body.is_empty() {
                        let _ = self.stream.shutdown(Shutdown::Write);
                        self.state = State::Linger {
                            deadline: now + LINGER,
                        };
                        continue;
                    }
                    // Head and body in one write, so neither waits on the other's ACK.
                    match self
                        .stream
                        .write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
                    {
                        Ok(0) => return false,
                        Ok(n) => *sent = sent.saturating_add(n),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                        Err(_) => return false,
                    }
                }
                State::Linger { .. } => {
                    let mut sink = [0u8; CHUNK];
                    match read_some(&mut self.stream, Some(&mut sink)) {
                        Io::Data(_) => {}
                        Io::Blocked => return true,
                        Io::Closed | Io::Failed => return false,
                    }
                }
            }
        }
    }
}

/// The response to the complete head at the start of `buf`.
fn respond_to(buf: &[u8], exposition: &mut Exposition, now: Instant) -> Response {
    let len = head_end(buf, 0).unwrap_or(buf.len());
    answer(buf.get(..len).unwrap_or_default(), &mut || {
        exposition.body(now)
    })
}

/// What a non-blocking read gave.
enum Io {
    Data(usize),
    Blocked,
    Closed,
    Failed,
}

/// One read into `buf`; an empty or missing buffer reads nothing (as if blocked).
fn read_some(stream: &mut TcpStream, buf: Option<&mut [u8]>) -> Io {
    let Some(buf) = buf.filter(|b| !b.is_empty()) else {
        return Io::Blocked;
    };
    loop {
        return match stream.read(buf) {
            Ok(0) => Io::Closed,
            Ok(n) => Io::Data(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Io::Blocked,
            Err(_) => Io::Failed,
        };
    }
}

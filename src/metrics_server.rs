//! `--metrics ADDR`: the HTTP endpoint Prometheus scrapes.
//!
//! One thread, `std::net` only. The listener and every connection are non-blocking and the
//! thread serves them all in turn, so a client that stalls holds nothing but its own slot: the
//! next scrape is answered while it waits. Each connection has its own deadlines (the request
//! head within [`HEAD_TIMEOUT`], the response written within [`WRITE_TIMEOUT`]). At most
//! [`MAX_CONNECTIONS`] are served at once; as many more are answered 503, and beyond that a
//! connection is closed at once. A request head is at most [`MAX_HEAD`] bytes (more is
//! answered 431). The thread polls: every [`IDLE_POLL`] with no connection open, every
//! [`BUSY_POLL`] with some, so a scrape waits at most that long to be accepted and
//! [`MetricsServer::stop`] returns about as fast.
//!
//! Routes: `GET /metrics` (and `HEAD`) renders the exposition on each request, `200` with
//! [`CONTENT_TYPE`]; `GET /` is a short `text/plain` pointer to `/metrics`; any other path is
//! `404`; any method but `GET` and `HEAD` is `405`. A query string is ignored. The request line
//! is read by `linewatch-parser`, as the monitored traffic is (RFC 9112: a method token, a
//! target without control bytes, `HTTP/1.0` or `HTTP/1.1`; line ends and spaces as nginx
//! reads them): a line it refuses is `400`, or `505` when only the version is refused. Every response
//! says `Connection: close`, and the connection is closed after it (after reading what the
//! client still sends for a moment, so that an unread body does not turn the close into a
//! reset that could cost the client the response). Nothing here panics on any bytes.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

mod addr;
mod http;

use addr::io_text;
pub(crate) use addr::parse_addr;
use http::{answer, error, head_end};

/// The media type of OpenMetrics 1.0 text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Longest request head (request line and headers) read.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// Time a client has, from its connection, to send the request head.
pub(crate) const HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// Time a client has to take the response, from when it is ready.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Time spent after the response reading (and dropping) what the client still sends.
const LINGER: Duration = Duration::from_millis(500);

/// Connections open at once; more are answered 503.
pub(crate) const MAX_CONNECTIONS: usize = 32;

/// Poll interval with no connection open: a scrape waits at most this long to be accepted.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Poll interval while some connection is open and none made progress.
const BUSY_POLL: Duration = Duration::from_millis(2);

/// What renders the exposition, called on each scrape of `/metrics`.
pub(crate) type Render = Box<dyn Fn() -> String + Send + Sync>;

/// The running endpoint. [`stop`](MetricsServer::stop) or dropping it ends its thread.
pub(crate) struct MetricsServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Binds `addr` and serves the metrics endpoint on a thread of its own. The error is one line,
/// e.g. `cannot serve metrics on 127.0.0.1:9100: Address already in use`.
pub(crate) fn start(addr: SocketAddr, render: Render) -> Result<MetricsServer, String> {
    let fail = |e: io::Error| format!("cannot serve metrics on {addr}: {}", io_text(&e));
    let listener = TcpListener::bind(addr).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let local_addr = listener.local_addr().map_err(fail)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || serve(&listener, &*render, &flag))
        .map_err(fail)?;
    Ok(MetricsServer {
        local_addr,
        stop,
        thread: Some(thread),
    })
}

impl MetricsServer {
    /// The address it listens on (with the port the system chose, for port 0 in tests).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Closes the listener and every connection, and waits for the thread (a poll interval).
    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread does not panic; if it did, there is nothing left to clean up.
            let _ = thread.join();
        }
    }
}

/// The server loop: accept, serve every connection a step, sleep when nothing moved.
fn serve(listener: &TcpListener, render: &(dyn Fn() -> String + Send + Sync), stop: &AtomicBool) {
    let mut conns: Vec<Conn> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        // Until WouldBlock (none waiting) or another error (a connection reset before it was
        // accepted, out of descriptors: tried again at the next poll), and at most a
        // connection cap's worth per round, so that a flood does not starve the open ones.
        for _ in 0..MAX_CONNECTIONS {
            let Ok((stream, _)) = listener.accept() else {
                break;
            };
            progressed = true;
            if conns.len() >= 2 * MAX_CONNECTIONS || stream.set_nonblocking(true).is_err() {
                // Over even the refusals' room: closed at once.
                drop(stream);
            } else if conns.len() >= MAX_CONNECTIONS {
                conns.push(Conn::refused(stream));
            } else {
                conns.push(Conn::new(stream));
            }
        }
        let now = Instant::now();
        conns.retain_mut(|c| {
            let (open, moved) = c.step(render, now);
            progressed |= moved;
            open
        });
        if !progressed {
            thread::sleep(if conns.is_empty() {
                IDLE_POLL
            } else {
                BUSY_POLL
            });
        }
    }
}

/// Where a connection is.
#[derive(Debug)]
enum State {
    /// Reading the request head, due by the deadline.
    Head { buf: Vec<u8>, deadline: Instant },
    /// Writing `out[sent..]`, due by the deadline.
    Write {
        out: Vec<u8>,
        sent: usize,
        deadline: Instant,
    },
    /// Response sent and write side shut: dropping what the client still sends until EOF or
    /// the deadline, then closing.
    Linger { deadline: Instant },
}

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    state: State,
}

impl Conn {
    fn new(stream: TcpStream) -> Self {
        Conn {
            stream,
            state: State::Head {
                buf: Vec::with_capacity(1024),
                deadline: Instant::now() + HEAD_TIMEOUT,
            },
        }
    }

    /// Moves the connection on as far as it goes without blocking. Returns (still open, made
    /// progress).
    fn step(&mut self, render: &(dyn Fn() -> String + Send + Sync), now: Instant) -> (bool, bool) {
        let mut moved = false;
        loop {
            match &mut self.state {
                State::Head { buf, deadline } => {
                    let mut chunk = [0u8; 2048];
                    let room = MAX_HEAD.saturating_sub(buf.len()).min(chunk.len());
                    let end = chunk.get_mut(..room).unwrap_or_default();
                    match read_some(&mut self.stream, end) {
                        Io::Data(n) => {
                            moved = true;
                            let from = buf.len().saturating_sub(3);
                            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                            let out = if let Some(head_len) = head_end(buf, from) {
                                Some(answer(buf.get(..head_len).unwrap_or_default(), render))
                            } else if buf.len() >= MAX_HEAD {
                                Some(error(
                                    "431 Request Header Fields Too Large",
                                    "request head too large\n",
                                ))
                            } else {
                                None
                            };
                            if let Some(out) = out {
                                self.respond(out);
                            }
                        }
                        Io::Blocked if now < *deadline => return (true, moved),
                        // Timed out, closed before a full head, or failed: close.
                        Io::Blocked | Io::Closed | Io::Failed => return (false, moved),
                    }
                }
                State::Write {
                    out,
                    sent,
                    deadline,
                } => {
                    let rest = out.get(*sent..).unwrap_or_default();
                    if rest.is_empty() {
                        let _ = self.stream.shutdown(Shutdown::Write);
                        self.state = State::Linger {
                            deadline: now + LINGER,
                        };
                        continue;
                    }
                    match self.stream.write(rest) {
                        Ok(0) => return (false, moved),
                        Ok(n) => {
                            moved = true;
                            *sent = sent.saturating_add(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock && now < *deadline => {
                            return (true, moved)
                        }
                        Err(_) => return (false, moved),
                    }
                }
                State::Linger { deadline } => {
                    let mut sink = [0u8; 2048];
                    match read_some(&mut self.stream, &mut sink) {
                        Io::Data(_) => moved = true,
                        Io::Blocked if now < *deadline => return (true, moved),
                        Io::Blocked | Io::Closed | Io::Failed => return (false, moved),
                    }
                }
            }
        }
    }

    /// A connection over [`MAX_CONNECTIONS`]: answered 503 without reading its request (the
    /// linger after the answer drops it, so the close is not a reset).
    fn refused(stream: TcpStream) -> Self {
        let mut conn = Conn::new(stream);
        conn.respond(error("503 Service Unavailable", "too many connections\n"));
        conn
    }

    fn respond(&mut self, out: Vec<u8>) {
        self.state = State::Write {
            out,
            sent: 0,
            deadline: Instant::now() + WRITE_TIMEOUT,
        };
    }
}

/// What a non-blocking read gave.
enum Io {
    Data(usize),
    Blocked,
    Closed,
    Failed,
}

fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Io {
    if buf.is_empty() {
        return Io::Blocked;
    }
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

#[cfg(test)]
mod tests;

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

use linewatch_parser::http::{parse_request_line, Method, Status, Version};

mod addr;
use addr::io_text;
pub(crate) use addr::parse_addr;

/// The media type of OpenMetrics 1.0 text.
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The media type of every other answer: one line of text.
const TEXT: &str = "text/plain; charset=utf-8";

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

/// Length of the request head (through its blank line: CRLF CRLF, or a bare LF LF), looking
/// from `from` on.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
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
fn answer(head: &[u8], render: &(dyn Fn() -> String + Send + Sync)) -> Vec<u8> {
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
fn error(status: &str, text: &str) -> Vec<u8> {
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
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::AtomicUsize;

    const BODY: &str = "# TYPE linewatch_packets counter\nlinewatch_packets_total 1\n# EOF\n";

    fn server() -> MetricsServer {
        server_with(Box::new(|| BODY.to_owned()))
    }

    fn server_with(render: Render) -> MetricsServer {
        let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        start(any, render).unwrap_or_else(|e| panic!("{e}"))
    }

    fn connect(s: &MetricsServer) -> TcpStream {
        let stream = TcpStream::connect(s.local_addr()).unwrap_or_else(|e| panic!("{e}"));
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
        stream
    }

    /// (status line, headers as lines, body) of the response to `request`.
    fn exchange(s: &MetricsServer, request: &[u8]) -> (String, Vec<String>, Vec<u8>) {
        let mut stream = connect(s);
        stream.write_all(request).unwrap_or_else(|e| panic!("{e}"));
        read_response(&mut stream)
    }

    fn read_response(stream: &mut TcpStream) -> (String, Vec<String>, Vec<u8>) {
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .unwrap_or_else(|e| panic!("{e}"));
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n").map(str::to_owned);
        let status = lines.next().unwrap_or_default();
        (status, lines.collect(), raw[split + 4..].to_vec())
    }

    /// The status line of the response to `request`.
    fn status_of(s: &MetricsServer, request: &[u8]) -> String {
        exchange(s, request).0
    }

    /// A scrape still gets the exposition.
    fn assert_scrapes(s: &MetricsServer) {
        let (status, _, body) = exchange(s, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, BODY.as_bytes());
    }

    fn header<'a>(headers: &'a [String], name: &str) -> Option<&'a str> {
        headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    #[test]
    fn get_metrics_is_200_with_the_rendered_body() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let s = server_with(Box::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            BODY.to_owned()
        }));
        let (status, headers, body) = exchange(
            &s,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n",
        );
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(&headers, "content-type"), Some(CONTENT_TYPE));
        assert_eq!(header(&headers, "connection"), Some("close"));
        assert_eq!(
            header(&headers, "content-length"),
            Some(BODY.len().to_string().as_str())
        );
        assert_eq!(body, BODY.as_bytes());
        // Rendered on each scrape; a query string and the absolute form reach it too.
        for request in [
            &b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"[..],
            b"GET http://example.com:9100/metrics HTTP/1.1\n\n",
        ] {
            let (status, _, body) = exchange(&s, request);
            assert_eq!(status, "HTTP/1.1 200 OK");
            assert_eq!(body, BODY.as_bytes());
        }
        assert_eq!(calls.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn head_has_the_headers_and_no_body() {
        let s = server();
        let (status, headers, body) = exchange(&s, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(header(&headers, "content-type"), Some(CONTENT_TYPE));
        assert_eq!(
            header(&headers, "content-length"),
            Some(BODY.len().to_string().as_str())
        );
        assert!(body.is_empty());
    }

    #[test]
    fn root_points_to_metrics_and_other_paths_are_404() {
        let s = server();
        let (status, headers, body) = exchange(&s, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(
            header(&headers, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert!(String::from_utf8_lossy(&body).contains("/metrics"));
        for path in [
            "/metric",
            "/metrics/",
            "/favicon.ico",
            "/%2e%2e/etc/passwd",
            "*",
        ] {
            let request = format!("GET {path} HTTP/1.1\r\n\r\n");
            let want = if path == "*" {
                "HTTP/1.1 400 Bad Request"
            } else {
                "HTTP/1.1 404 Not Found"
            };
            assert_eq!(status_of(&s, request.as_bytes()), want, "{path}");
        }
    }

    #[test]
    fn other_methods_are_405() {
        let s = server();
        for method in [
            "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
        ] {
            let request = format!("{method} /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
            let (status, headers, _) = exchange(&s, request.as_bytes());
            assert_eq!(status, "HTTP/1.1 405 Method Not Allowed", "{method}");
            assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
        }
    }

    #[test]
    fn oversized_and_garbage_requests_get_an_error_and_the_server_goes_on() {
        let s = server();
        // A head that never ends: 431 once MAX_HEAD bytes are in.
        let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
        while big.len() <= MAX_HEAD + 1024 {
            big.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            );
        }
        assert_eq!(
            status_of(&s, &big),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        // A request line longer than the limit.
        let mut long = b"GET /".to_vec();
        long.resize(MAX_HEAD * 2, b'a');
        assert_eq!(
            status_of(&s, &long),
            "HTTP/1.1 431 Request Header Fields Too Large"
        );
        for junk in [
            &b"\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET /metrics\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n\n",
            b"G\xffT /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"\0\0\0\0\n\n",
        ] {
            assert_eq!(status_of(&s, junk), "HTTP/1.1 400 Bad Request", "{junk:?}");
        }
        // Several spaces between tokens: read as nginx reads them (the parser's leniency).
        assert_eq!(
            status_of(&s, b"GET  /metrics HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 200 OK"
        );
        assert_eq!(
            status_of(&s, b"GET /metrics HTTP/2.0\r\n\r\n"),
            "HTTP/1.1 505 HTTP Version Not Supported"
        );
        // Every byte value, with no head end: closed at the deadline, no answer needed.
        let mut stream = connect(&s);
        let all: Vec<u8> = (0..=255u8).collect();
        stream.write_all(&all).unwrap_or_else(|e| panic!("{e}"));
        drop(stream);
        assert_scrapes(&s);
    }

    #[test]
    fn a_head_sent_in_pieces_is_read_whole() {
        let s = server();
        let mut stream = connect(&s);
        let _ = stream.set_nodelay(true);
        for piece in [
            &b"GE"[..],
            b"T /met",
            b"rics HTTP/1.1\r",
            b"\nHost: a\r\n\r",
            b"\n",
        ] {
            stream.write_all(piece).unwrap_or_else(|e| panic!("{e}"));
            thread::sleep(Duration::from_millis(30));
        }
        let (status, _, body) = read_response(&mut stream);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, BODY.as_bytes());
    }

    #[test]
    fn random_bytes_never_stop_the_server() {
        let s = server();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut handles = Vec::new();
        for i in 0..200 {
            let len = (next() % 600) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
            if i % 2 == 0 {
                bytes.extend_from_slice(b"\r\n\r\n");
            }
            if i % 3 == 0 {
                bytes.splice(0..0, b"GET /metrics".iter().copied());
            }
            let mut stream = connect(&s);
            let _ = stream.write_all(&bytes);
            let _ = stream.shutdown(Shutdown::Write);
            handles.push(stream);
            if handles.len() >= 16 {
                for mut h in handles.drain(..) {
                    let mut sink = Vec::new();
                    let _ = h.read_to_end(&mut sink);
                    if !sink.is_empty() {
                        assert!(sink.starts_with(b"HTTP/1.1 "), "{sink:?}");
                    }
                }
            }
        }
        drop(handles);
        assert_scrapes(&s);
    }

    #[test]
    fn a_stalled_client_does_not_block_the_next_scrape() {
        // A big body, so that a client that asks and never reads fills its socket buffers.
        let big = "x".repeat(16 << 20);
        let s = server_with(Box::new(move || big.clone()));
        let mut idle = connect(&s);
        let mut partial = connect(&s);
        partial
            .write_all(b"GET /metr")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut not_reading = connect(&s);
        not_reading
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .unwrap_or_else(|e| panic!("{e}"));
        thread::sleep(Duration::from_millis(100));

        let t = Instant::now();
        let (status, _, body) = exchange(&s, b"GET /metrics HTTP/1.1\r\n\r\n");
        let took = t.elapsed();
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body.len(), 16 << 20);
        assert!(took < Duration::from_secs(2), "scrape took {took:?}");

        // The idle and partial ones are closed at the head deadline.
        for stream in [&mut idle, &mut partial] {
            let t = Instant::now();
            let mut buf = [0u8; 16];
            let n = stream.read(&mut buf).unwrap_or(0);
            assert_eq!(n, 0);
            assert!(t.elapsed() < HEAD_TIMEOUT + Duration::from_secs(1));
        }
        drop(not_reading);
    }

    #[test]
    fn connections_over_the_cap_get_503() {
        let s = server();
        let held: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect(&s)).collect();
        thread::sleep(Duration::from_millis(100));
        assert_eq!(
            status_of(&s, b"GET /metrics HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 503 Service Unavailable"
        );
        drop(held);
        thread::sleep(Duration::from_millis(100));
        assert_scrapes(&s);
    }

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

    #[test]
    fn port_in_use_is_a_one_line_error() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = taken.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let err = start(addr, Box::new(String::new)).map(|_| ()).unwrap_err();
        assert_eq!(
            err,
            format!("cannot serve metrics on {addr}: Address already in use")
        );
    }

    #[test]
    fn stop_ends_the_thread_promptly_and_closes_the_port() {
        let s = server();
        let addr = s.local_addr();
        let mut waiting = connect(&s);
        waiting.write_all(b"GET").unwrap_or_else(|e| panic!("{e}"));
        let t = Instant::now();
        s.stop();
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        assert!(TcpStream::connect(addr).is_err());
        let mut buf = [0u8; 4];
        assert_eq!(waiting.read(&mut buf).unwrap_or(0), 0);
    }
}

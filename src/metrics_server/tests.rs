//! The endpoint over real sockets: routes, limits, hostile and stalled clients, stop.

use super::*;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpStream};
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

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
    let mut stream = connect(s);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_exposition(&mut stream);
}

/// The response on `stream` is the exposition.
fn assert_exposition(stream: &mut TcpStream) {
    let (status, _, body) = read_response(stream);
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
        big.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
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
    assert_exposition(&mut stream);
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
fn a_connection_over_the_cap_closes_the_oldest() {
    let cap = 16;
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let limits = Limits::for_nofile(Some(u64::try_from(cap).unwrap_or(16) + 128));
    assert_eq!(limits.connections, cap);
    let s = launch(any, Box::new(|| BODY.to_owned()), limits).unwrap_or_else(|e| panic!("{e}"));
    let mut held: Vec<TcpStream> = (0..cap).map(|_| connect(&s)).collect();
    thread::sleep(Duration::from_millis(100));
    // The scrape is taken in, and answered, while the cap's worth of idle ones are open.
    assert_scrapes(&s);
    // To make room the oldest was closed; the newest are still open.
    let mut buf = [0u8; 4];
    assert_eq!(
        held[0].read(&mut buf).unwrap_or(0),
        0,
        "the oldest is closed"
    );
    let newest = held.last_mut().unwrap_or_else(|| panic!("none held"));
    let _ = newest.set_read_timeout(Some(Duration::from_millis(200)));
    let still_open = newest.read(&mut buf).map_err(|e| e.kind());
    assert!(
        matches!(
            still_open,
            Err(io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
        ),
        "{still_open:?}"
    );
}

#[test]
fn partial_heads_over_the_budget_get_503_and_whole_scrapes_are_still_answered() {
    let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let fit = 8;
    let mut limits = Limits::for_nofile(None);
    limits.buffered_heads = fit * MAX_HEAD;
    let s = launch(any, Box::new(|| BODY.to_owned()), limits).unwrap_or_else(|e| panic!("{e}"));
    // Heads that never end, each held just under MAX_HEAD (in a buffer of MAX_HEAD bytes).
    let partial = vec![b'a'; MAX_HEAD - 100];
    let started = Instant::now();
    let mut held = Vec::new();
    for _ in 0..fit {
        let mut stream = connect(&s);
        stream.write_all(&partial).unwrap_or_else(|e| panic!("{e}"));
        held.push(stream);
    }
    thread::sleep(Duration::from_millis(200));
    // The budget is spent: one more partial head is refused, a whole one is answered.
    let mut over = connect(&s);
    over.write_all(&partial).unwrap_or_else(|e| panic!("{e}"));
    let (status, _, body) = read_response(&mut over);
    assert!(
        started.elapsed() < HEAD_TIMEOUT,
        "too slow to test the budget"
    );
    assert_eq!(status, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(body, b"server busy\n");
    assert_scrapes(&s);
    // The held ones are closed at the head deadline, which frees the budget.
    let mut buf = [0u8; 4];
    for stream in &mut held {
        assert_eq!(stream.read(&mut buf).unwrap_or(0), 0);
    }
    thread::sleep(Duration::from_millis(100));
    let mut again = connect(&s);
    let mut long = b"GET /metrics HTTP/1.1\r\nX-Pad: ".to_vec();
    long.resize(MAX_HEAD - 100, b'a');
    again.write_all(&long).unwrap_or_else(|e| panic!("{e}"));
    thread::sleep(Duration::from_millis(50));
    again
        .write_all(b"\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_exposition(&mut again);
}

#[test]
fn thousands_of_idle_connections_do_not_delay_a_scrape() {
    let s = server();
    let idle: Vec<TcpStream> = (0..2000).map(|_| connect(&s)).collect();
    thread::sleep(Duration::from_millis(100));
    for _ in 0..10 {
        let t = Instant::now();
        assert_scrapes(&s);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
    }
    drop(idle);
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

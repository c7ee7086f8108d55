//! The `--json` event sink: a worker's request, response and connection events as JSON lines
//! (shapes in [`crate::json`]), written out once per batch.
//!
//! Contract: [`JsonLines`] appends each event's line to its own buffer as the worker counts it,
//! and at [`EventSink::flush`] hands the whole buffer to its output in one `write_all` (on
//! stdout: under one lock), so lines of different workers never mix within a line and a worker
//! takes the lock once per batch, not once per message. A failed write (stdout closed, as by
//! `| head`) is dropped: the output ends quietly, the counting goes on.

use std::io::{self, Write};

use linewatch_model::{ConnectionEvent, EventSink, RequestEvent, ResponseEvent};

use crate::json;

/// Buffer reserved up front: a batch of short requests and responses fits without regrowing.
const BUFFER_CAPACITY: usize = 64 * 1024;

/// One worker's JSON-lines sink over `W` (stdout for `--json`).
#[derive(Debug)]
pub struct JsonLines<W> {
    out: W,
    /// The lines of the current batch.
    buf: Vec<u8>,
}

impl JsonLines<io::Stdout> {
    /// A sink writing to this process's stdout.
    pub fn stdout() -> Self {
        JsonLines::new(io::stdout())
    }
}

impl<W: Write> JsonLines<W> {
    /// A sink writing each batch's lines to `out`.
    pub fn new(out: W) -> Self {
        JsonLines {
            out,
            buf: Vec::with_capacity(BUFFER_CAPACITY),
        }
    }

    /// The output, with what was flushed into it.
    pub fn get_ref(&self) -> &W {
        &self.out
    }
}

impl<W: Write + Send + std::fmt::Debug> EventSink for JsonLines<W> {
    fn request(&mut self, event: &RequestEvent<'_>) {
        json::request_event(event, &mut self.buf);
    }

    fn response(&mut self, event: &ResponseEvent) {
        json::response_event(event, &mut self.buf);
    }

    fn connection(&mut self, event: &ConnectionEvent) {
        json::connection_event(event, &mut self.buf);
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            // A closed output ends the lines, not the count: the error is not the worker's.
            let _ = self.out.write_all(&self.buf);
            self.buf.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, UNIX_EPOCH};

    const CLIENT: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    const SERVER: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80);

    /// One event of each kind, as a worker would hand them over.
    fn events() -> (RequestEvent<'static>, ResponseEvent, ConnectionEvent) {
        let at = |micros: u64| UNIX_EPOCH + Duration::from_micros(micros);
        let request = RequestEvent {
            ts: at(1_614_053_178_123_456),
            src: CLIENT,
            dst: SERVER,
            method: b"GET",
            target: b"/a/b?x",
            section: b"/a",
            version: "HTTP/1.1",
            host: Some(b"example.com"),
            user_agent: None,
            bytes: 78,
        };
        let response = ResponseEvent {
            ts: at(1_614_053_179_000_000),
            src: SERVER,
            dst: CLIENT,
            status: 200,
            latency_us: Some(512),
            bytes: 1234,
        };
        let connection = ConnectionEvent {
            ts: at(1_614_053_177_000_000),
            src: CLIENT,
            dst: SERVER,
        };
        (request, response, connection)
    }

    #[test]
    fn lines_are_written_at_flush_in_order_as_the_json_module_writes_them() {
        let (request, response, connection) = events();
        let mut sink = JsonLines::new(Vec::new());
        sink.connection(&connection);
        sink.request(&request);
        sink.response(&response);
        assert!(sink.get_ref().is_empty(), "written before flush");
        sink.flush();
        let mut want = Vec::new();
        json::connection_event(&connection, &mut want);
        json::request_event(&request, &mut want);
        json::response_event(&response, &mut want);
        assert_eq!(sink.get_ref(), &want);
        assert_eq!(want.iter().filter(|&&b| b == b'\n').count(), 3);
        // A flush writes only what came since the last one.
        sink.flush();
        assert_eq!(sink.get_ref(), &want);
        sink.response(&response);
        sink.flush();
        json::response_event(&response, &mut want);
        assert_eq!(sink.get_ref(), &want);
    }

    /// An output that fails every write, as stdout does once its reader has gone.
    #[derive(Debug, Default)]
    struct Closed {
        writes: usize,
    }

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            Err(io::ErrorKind::BrokenPipe.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_output_is_dropped_quietly_and_the_buffer_does_not_grow() {
        let mut sink = JsonLines::new(Closed::default());
        sink.flush();
        assert_eq!(sink.get_ref().writes, 0, "an empty batch is not written");
        for _ in 0..3 {
            sink.request(&events().0);
            sink.flush();
            assert!(sink.buf.is_empty());
        }
        assert_eq!(sink.get_ref().writes, 3);
    }
}

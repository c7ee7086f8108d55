//! The `--json` event sink: a worker's request, response and connection events as JSON lines
//! (shapes in [`crate::json`]), written out once per batch.
//!
//! Contract: [`JsonLines`] appends each event's line to its own buffer as the worker counts it,
//! and at [`EventSink::flush`] hands the whole buffer to its output in one `write_all` (on
//! stdout: under one lock), so lines of different workers never mix within a line and a worker
//! takes the lock once per batch, not once per message. A failed write never stops the
//! counting: it is recorded, once, in the output's [`WriteStatus`] (for stdout the process-wide
//! [`STDOUT`], which every writer of stdout shares), later batches are dropped, and the binary
//! reads the status at the end: a closed pipe (`| head`) ends the output quietly, any other
//! failure (`> /dev/full`) is the run's error.

use std::io::{self, Write};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use linewatch_model::{ConnectionEvent, EventSink, RequestEvent, ResponseEvent};

use crate::json;

/// Buffer reserved up front: a batch of short requests and responses fits without regrowing.
const BUFFER_CAPACITY: usize = 64 * 1024;

/// What became of the writes to one output, shared by all its writers (worker threads, the
/// aggregator's printer, the summary): written so far, closed by its reader, or failed.
#[derive(Debug)]
pub struct WriteStatus {
    /// [`StatusKind`] as a byte: only ever raised (ok → closed → failed).
    state: AtomicU8,
    /// The first failure other than a closed pipe.
    first_error: OnceLock<String>,
}

/// How an output's writes went, from [`WriteStatus::outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Every write succeeded.
    Written,
    /// The reader went away (EPIPE, as with `| head`): output ended quietly.
    Closed,
    /// A write failed for another reason (the first one's message).
    Failed(String),
}

const STATE_WRITTEN: u8 = 0;
const STATE_CLOSED: u8 = 1;
const STATE_FAILED: u8 = 2;

impl WriteStatus {
    /// An output with nothing failed yet.
    #[must_use]
    pub const fn new() -> WriteStatus {
        WriteStatus {
            state: AtomicU8::new(STATE_WRITTEN),
            first_error: OnceLock::new(),
        }
    }

    /// Records the result of one write; true when it succeeded.
    pub fn record(&self, result: io::Result<()>) -> bool {
        match result {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.state.fetch_max(STATE_CLOSED, Ordering::Relaxed);
                false
            }
            Err(e) => {
                let _ = self.first_error.set(e.to_string());
                self.state.fetch_max(STATE_FAILED, Ordering::Relaxed);
                false
            }
        }
    }

    /// A write has failed or the reader has gone: further writes are skipped.
    pub fn is_broken(&self) -> bool {
        self.state.load(Ordering::Relaxed) != STATE_WRITTEN
    }

    /// How the writes went.
    pub fn outcome(&self) -> WriteOutcome {
        match self.state.load(Ordering::Relaxed) {
            STATE_WRITTEN => WriteOutcome::Written,
            STATE_CLOSED => WriteOutcome::Closed,
            _ => WriteOutcome::Failed(
                self.first_error
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "write failed".into()),
            ),
        }
    }

    /// Writes `bytes` to `out` and flushes, unless the output is already broken; records
    /// the result.
    pub fn write(&self, out: &mut impl Write, bytes: &[u8]) {
        if !self.is_broken() {
            self.record(out.write_all(bytes).and_then(|()| out.flush()));
        }
    }
}

impl Default for WriteStatus {
    fn default() -> Self {
        WriteStatus::new()
    }
}

/// The status of this process's stdout, shared by every writer of it: stdout is one per
/// process, and so is what became of it.
pub static STDOUT: WriteStatus = WriteStatus::new();

/// One worker's JSON-lines sink over `W` (stdout for `--json`).
#[derive(Debug)]
pub struct JsonLines<W> {
    out: W,
    /// The lines of the current batch.
    buf: Vec<u8>,
    /// Where a failed write is recorded.
    status: &'static WriteStatus,
}

impl JsonLines<io::Stdout> {
    /// A sink writing to this process's stdout, recording failures in [`STDOUT`].
    pub fn stdout() -> Self {
        JsonLines::new(io::stdout(), &STDOUT)
    }
}

impl<W: Write> JsonLines<W> {
    /// A sink writing each batch's lines to `out`, recording failures in `status`.
    pub fn new(out: W, status: &'static WriteStatus) -> Self {
        JsonLines {
            out,
            buf: Vec::with_capacity(BUFFER_CAPACITY),
            status,
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
            // A failed output ends the lines, not the count: the error is recorded for the
            // binary to report, and later batches are dropped unwritten.
            self.status.write(&mut self.out, &self.buf);
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
        let mut sink = JsonLines::new(Vec::new(), Box::leak(Box::default()));
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

    /// An output that fails every write with `error`, as stdout does once its reader has
    /// gone (EPIPE) or its device is full (ENOSPC).
    #[derive(Debug)]
    struct Failing {
        error: io::ErrorKind,
        writes: usize,
    }

    impl Write for Failing {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            self.writes += 1;
            Err(self.error.into())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_output_is_recorded_once_and_later_batches_are_dropped() {
        for (error, want) in [
            (io::ErrorKind::BrokenPipe, WriteOutcome::Closed),
            (
                io::ErrorKind::StorageFull,
                WriteOutcome::Failed(io::Error::from(io::ErrorKind::StorageFull).to_string()),
            ),
        ] {
            let status: &'static WriteStatus = Box::leak(Box::default());
            let mut sink = JsonLines::new(Failing { error, writes: 0 }, status);
            sink.flush();
            assert_eq!(sink.get_ref().writes, 0, "an empty batch is not written");
            assert_eq!(status.outcome(), WriteOutcome::Written);
            for _ in 0..3 {
                sink.request(&events().0);
                sink.flush();
                assert!(sink.buf.is_empty());
            }
            assert_eq!(
                sink.get_ref().writes,
                1,
                "written until the first failure only"
            );
            assert_eq!(status.outcome(), want);
        }
    }

    #[test]
    fn a_failure_outranks_a_closed_pipe_and_the_first_message_is_kept() {
        let status = WriteStatus::new();
        assert!(status.record(Ok(())));
        assert!(!status.record(Err(io::ErrorKind::BrokenPipe.into())));
        assert_eq!(status.outcome(), WriteOutcome::Closed);
        status.record(Err(io::Error::other("first")));
        status.record(Err(io::Error::other("second")));
        status.record(Err(io::ErrorKind::BrokenPipe.into()));
        assert_eq!(status.outcome(), WriteOutcome::Failed("first".into()));
    }
}

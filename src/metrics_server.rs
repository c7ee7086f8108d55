//! `--metrics ADDR`: the HTTP endpoint Prometheus scrapes, built so that no client, and no
//! crowd of idle or slow clients, can keep a scrape from being answered.
//!
//! One thread serves every connection from one epoll instance ([`serve`]): sockets are
//! non-blocking and a connection is moved on only when its socket is ready ([`conn`]), so a
//! client that stalls holds nothing but its descriptor and a few dozen bytes, and the next
//! scrape is answered while thousands wait. Each connection has its own deadlines (the
//! request head within [`HEAD_TIMEOUT`], the response written within [`WRITE_TIMEOUT`]). At
//! most [`MAX_CONNECTIONS`] are open at once (fewer when the open-files limit, raised to the
//! hard limit at start, leaves less room: [`nofile`]); a connection beyond that closes the
//! oldest, so a new scraper is always taken in. A request head is at most [`MAX_HEAD`] bytes
//! (more is answered 431); a head that arrives whole is answered without being buffered, and
//! heads that arrive in pieces share a budget of [`MAX_BUFFERED_HEADS`] bytes (over it:
//! 503). Scrapes that overlap share one rendering ([`exposition`]). So the endpoint's memory is
//! bounded whatever its clients do.
//!
//! Routes: `GET /metrics` (and `HEAD`) renders the exposition on each request, `200` with
//! [`CONTENT_TYPE`]; `GET /` is a short `text/plain` pointer to `/metrics`; any other path is
//! `404`; any method but `GET` and `HEAD` is `405`. A query string is ignored. The request line
//! is read by `linewatch-parser`, as the monitored traffic is (RFC 9112: a method token, a
//! target without control bytes, `HTTP/1.0` or `HTTP/1.1`; line ends and spaces as nginx
//! reads them): a line it refuses is `400`, or `505` when only the version is refused
//! ([`http`]). Every response says `Connection: close`, and the connection is closed after it
//! (after reading what the client still sends for a moment, so that an unread body does not
//! turn the close into a reset that could cost the client the response). Nothing here panics
//! on any bytes.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

mod addr;
mod conn;
mod exposition;
mod http;
mod nofile;
mod serve;

use addr::io_text;
pub(crate) use addr::parse_addr;
use exposition::Exposition;
use nofile::Limits;
use serve::Poller;

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

/// Connections open at once at most; a new one beyond closes the oldest.
pub(crate) const MAX_CONNECTIONS: usize = 4096;

/// Bytes of partial request heads held across all connections at most.
pub(crate) const MAX_BUFFERED_HEADS: usize = 4 << 20;

/// What renders the exposition, called on each scrape of `/metrics`.
pub(crate) type Render = Box<dyn Fn() -> String + Send + Sync>;

/// The running endpoint. [`stop`](MetricsServer::stop) or dropping it ends its thread.
pub(crate) struct MetricsServer {
    local_addr: SocketAddr,
    limits: Limits,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("local_addr", &self.local_addr)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// Raises the open-files limit, binds `addr` and serves the metrics endpoint on a thread of
/// its own. The error is one line, e.g. `cannot serve metrics on 127.0.0.1:9100: Address
/// already in use`.
pub(crate) fn start(addr: SocketAddr, render: Render) -> Result<MetricsServer, String> {
    launch(addr, render, Limits::raise())
}

/// [`start`] with the connections cap of `limits`.
fn launch(addr: SocketAddr, render: Render, limits: Limits) -> Result<MetricsServer, String> {
    let fail = |e: std::io::Error| format!("cannot serve metrics on {addr}: {}", io_text(&e));
    let listener = TcpListener::bind(addr).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let local_addr = listener.local_addr().map_err(fail)?;
    let poller = Poller::new(listener).map_err(fail)?;
    let exposition = Exposition::new(render);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || serve::serve(poller, limits, exposition, &flag))
        .map_err(fail)?;
    Ok(MetricsServer {
        local_addr,
        limits,
        stop,
        thread: Some(thread),
    })
}

impl MetricsServer {
    /// The address it listens on (with the port the system chose, for port 0 in tests).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A warning line for the start when the open-files limit holds the endpoint below
    /// [`MAX_CONNECTIONS`], saying how to raise it.
    pub(crate) fn limit_note(&self) -> Option<String> {
        self.limits.note()
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

#[cfg(test)]
mod tests;

//! Per-message events (`--json`) and the sink a worker hands them to; the calling contract is
//! on [`EventSink`].

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// A request, for one `--json` line.
#[derive(Debug, Clone, Copy)]
pub struct RequestEvent<'a> {
    /// Packet time of the segment that held the request line.
    pub ts: SystemTime,
    /// Client address and port.
    pub src: (std::net::IpAddr, u16),
    /// Server address and port.
    pub dst: (std::net::IpAddr, u16),
    /// Method token as sent.
    pub method: &'a [u8],
    /// Target as sent.
    pub target: &'a [u8],
    /// Section of the target.
    pub section: &'a [u8],
    /// `HTTP/1.1`, `HTTP/1.0` or `HTTP/0.9`.
    pub version: &'static str,
    /// Host as sent, if present.
    pub host: Option<&'a [u8]>,
    /// User-Agent as sent, if present.
    pub user_agent: Option<&'a [u8]>,
    /// Head plus declared body length.
    pub bytes: u64,
}

/// A new connection (TCP SYN without ACK), for one `--json` line.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionEvent {
    /// Packet time of the SYN.
    pub ts: SystemTime,
    /// Source address and port.
    pub src: (std::net::IpAddr, u16),
    /// Destination address and port.
    pub dst: (std::net::IpAddr, u16),
}

/// A response, for one `--json` line.
#[derive(Debug, Clone, Copy)]
pub struct ResponseEvent {
    /// Packet time of the segment that held the status line.
    pub ts: SystemTime,
    /// Server address and port.
    pub src: (std::net::IpAddr, u16),
    /// Client address and port.
    pub dst: (std::net::IpAddr, u16),
    /// Status code.
    pub status: u16,
    /// Microseconds from the request to this response, when the request was seen.
    pub latency_us: Option<u64>,
    /// Head plus declared body length.
    pub bytes: u64,
}

/// Where a worker's per-message events go.
///
/// Contract: each worker owns one sink, made for it by the [`SinkFactory`] in its
/// configuration, and calls it from its own thread only, in the order it counts: one
/// [`request`](EventSink::request), [`response`](EventSink::response) or
/// [`connection`](EventSink::connection) per message counted, then [`flush`](EventSink::flush)
/// after each batch of frames. A sink may hold events until `flush`. It cannot fail the worker:
/// a failed output is the sink's to record where the program can read it at the end (once, not
/// per event) and to drop from then on, and counting goes on. A [`RequestEvent`] borrows from the frame being counted, so a sink copies what it keeps
/// past the call.
///
/// ```text
/// worker ──request / response / connection (per message)──► EventSink ──flush (per batch)──► out
/// ```
///
/// Without `--json` a worker has no sink: the cost per message is one `Option` test, no call.
pub trait EventSink: Send + fmt::Debug {
    /// A request was counted.
    fn request(&mut self, event: &RequestEvent<'_>);
    /// A response was counted.
    fn response(&mut self, event: &ResponseEvent);
    /// A new connection was counted.
    fn connection(&mut self, event: &ConnectionEvent);
    /// A batch of frames is done: hand on what is held.
    fn flush(&mut self);
}

/// Makes one [`EventSink`] per worker. Cloning shares the maker.
#[derive(Clone)]
pub struct SinkFactory(Arc<dyn Fn() -> Box<dyn EventSink> + Send + Sync>);

impl SinkFactory {
    /// A factory that calls `make` for each worker.
    pub fn new(make: impl Fn() -> Box<dyn EventSink> + Send + Sync + 'static) -> SinkFactory {
        SinkFactory(Arc::new(make))
    }

    /// A new sink for one worker.
    pub fn make(&self) -> Box<dyn EventSink> {
        (self.0)()
    }
}

impl fmt::Debug for SinkFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkFactory")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    /// Counts what it is handed.
    #[derive(Debug, Default)]
    struct Counting {
        events: usize,
        flushed: usize,
    }

    impl EventSink for Counting {
        fn request(&mut self, _: &RequestEvent<'_>) {
            self.events += 1;
        }
        fn response(&mut self, _: &ResponseEvent) {
            self.events += 1;
        }
        fn connection(&mut self, _: &ConnectionEvent) {
            self.events += 1;
        }
        fn flush(&mut self) {
            self.flushed += 1;
        }
    }

    #[test]
    fn a_factory_and_its_clones_make_a_new_sink_per_call() {
        let made = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&made);
        let factory = SinkFactory::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            Box::new(Counting::default())
        });
        let mut first = factory.make();
        let second = factory.clone().make();
        assert_eq!(made.load(Ordering::Relaxed), 2);
        let end = (IpAddr::V4(Ipv4Addr::LOCALHOST), 80);
        first.connection(&ConnectionEvent {
            ts: UNIX_EPOCH,
            src: end,
            dst: end,
        });
        first.flush();
        // Two sinks, not one shared: what the first was handed is not in the second.
        assert_eq!(format!("{first:?}"), "Counting { events: 1, flushed: 1 }");
        assert_eq!(format!("{second:?}"), "Counting { events: 0, flushed: 0 }");
        assert_eq!(format!("{factory:?}"), "SinkFactory");
    }
}

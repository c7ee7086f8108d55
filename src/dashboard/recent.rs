//! The dashboard's "most recent requests": an [`EventSink`] per worker that keeps its last
//! [`PER_WORKER`] requests, each paired with its response when one comes, and a [`Board`] the
//! dashboard reads them from once a second.
//!
//! Contract: used only with `--dashboard` (without it a worker has no sink and pays nothing).
//! The panel is read by a person once a second, so a worker keeps at most one request per
//! [`SAMPLE_EVERY`] of packet time (the first): at a high rate the list is a sample of the most
//! recent requests, at a low rate it is all of them. A request not kept costs one comparison.
//! A kept one copies a few fields into a fixed slot of the sink's own ring (keys cut to fixed
//! lengths): no allocation, no lock, no system call. A response is looked for only among the
//! kept requests still unanswered (a bit per slot), and pairs with one only if its connection
//! and its latency lead back to that request's packet time, so a response to a request that
//! was not kept never lands on another. After each batch the sink copies the slots that
//! changed (a bit per slot) into its slot of the board with `try_lock`: when the dashboard
//! happens to be reading, the copy waits for the next batch instead of the worker waiting. A
//! request that left the ring before its response stays unanswered.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use linewatch_report::{ConnectionEvent, EventSink, RequestEvent, ResponseEvent, SinkFactory};

/// Requests each worker keeps (64: one bit each in the sink's `changed` mask).
pub(crate) const PER_WORKER: usize = 64;
const _: () = assert!(PER_WORKER <= u64::BITS as usize);

/// A worker keeps at most one request per this much packet time.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_millis(1);

/// Packet times and latencies are in microseconds: a response's latency leads back to its
/// request's time within this.
const TIME_SLACK: Duration = Duration::from_micros(1);

/// Bytes kept of a method, a host, a target, a user agent.
const METHOD_BYTES: usize = 8;
const HOST_BYTES: usize = 48;
const TARGET_BYTES: usize = 96;
const AGENT_BYTES: usize = 48;

/// A byte string cut to `N` bytes, stored inline.
#[derive(Clone, Copy)]
pub(crate) struct Cut<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Cut<N> {
    const EMPTY: Cut<N> = Cut {
        len: 0,
        bytes: [0; N],
    };

    fn set(&mut self, from: &[u8]) {
        let n = from.len().min(N).min(usize::from(u8::MAX));
        self.bytes[..n].copy_from_slice(&from[..n]);
        self.len = u8::try_from(n).unwrap_or(u8::MAX);
    }

    /// The bytes kept.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl<const N: usize> std::fmt::Debug for Cut<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.bytes()))
    }
}

/// One request as the dashboard lists it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recent {
    /// Packet time of the request.
    pub(crate) ts: SystemTime,
    /// Client and server.
    pub(crate) client: (IpAddr, u16),
    pub(crate) server: (IpAddr, u16),
    pub(crate) method: Cut<METHOD_BYTES>,
    /// `-` when the request had no Host.
    pub(crate) host: Cut<HOST_BYTES>,
    pub(crate) target: Cut<TARGET_BYTES>,
    pub(crate) user_agent: Cut<AGENT_BYTES>,
    /// The response's status, once it came.
    pub(crate) status: Option<u16>,
    /// Request to response, microseconds.
    pub(crate) latency_us: Option<u64>,
}

const UNSPECIFIED: (IpAddr, u16) = (IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

impl Recent {
    const EMPTY: Recent = Recent {
        ts: SystemTime::UNIX_EPOCH,
        client: UNSPECIFIED,
        server: UNSPECIFIED,
        method: Cut::EMPTY,
        host: Cut::EMPTY,
        target: Cut::EMPTY,
        user_agent: Cut::EMPTY,
        status: None,
        latency_us: None,
    };
}

/// A worker's last requests, oldest first once read out.
#[derive(Debug)]
struct Ring {
    slots: Box<[Recent; PER_WORKER]>,
    /// Where the next request goes.
    next: usize,
    /// Slots filled (up to `PER_WORKER`).
    filled: usize,
}

impl Ring {
    fn new() -> Ring {
        Ring {
            slots: Box::new([Recent::EMPTY; PER_WORKER]),
            next: 0,
            filled: 0,
        }
    }

    /// Indexes of the filled slots, oldest first.
    fn order(&self) -> impl Iterator<Item = usize> + '_ {
        let start = (self.next + PER_WORKER - self.filled) % PER_WORKER;
        (0..self.filled).map(move |i| (start + i) % PER_WORKER)
    }
}

/// Where the workers' rings are copied for the dashboard: one slot per worker.
#[derive(Debug, Default)]
pub(crate) struct Board {
    slots: Mutex<Vec<Arc<Mutex<Ring>>>>,
}

impl Board {
    /// A slot for one more worker.
    fn register(&self) -> Arc<Mutex<Ring>> {
        let slot = Arc::new(Mutex::new(Ring::new()));
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&slot));
        slot
    }

    /// Every worker's last requests, newest first (the dashboard thread, once a second).
    pub(crate) fn newest_first(&self) -> Vec<Recent> {
        let slots: Vec<Arc<Mutex<Ring>>> = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut all = Vec::with_capacity(slots.len() * PER_WORKER);
        for slot in slots {
            let ring = slot.lock().unwrap_or_else(PoisonError::into_inner);
            all.extend(ring.order().map(|i| ring.slots[i]));
        }
        // Stable: one worker's requests of the same instant keep their order.
        all.sort_by_key(|r| std::cmp::Reverse(r.ts));
        all
    }

    /// The factory that gives each worker its sink into this board.
    pub(crate) fn factory(board: &Arc<Board>) -> SinkFactory {
        let board = Arc::clone(board);
        SinkFactory::new(move || {
            Box::new(RecentSink {
                ring: Ring::new(),
                shared: board.register(),
                changed: 0,
                unanswered: 0,
                next_due: SystemTime::UNIX_EPOCH,
            })
        })
    }
}

/// One worker's sink (see the module contract).
#[derive(Debug)]
struct RecentSink {
    ring: Ring,
    shared: Arc<Mutex<Ring>>,
    /// Slots written since the last copy to the board, one bit each.
    changed: u64,
    /// Slots whose request has no response yet, one bit each.
    unanswered: u64,
    /// The packet time from which the next request is kept.
    next_due: SystemTime,
}

impl EventSink for RecentSink {
    fn request(&mut self, e: &RequestEvent<'_>) {
        if e.ts < self.next_due {
            return;
        }
        self.next_due = e.ts + SAMPLE_EVERY;
        let slot = self.ring.next;
        let r = &mut self.ring.slots[slot];
        r.ts = e.ts;
        r.client = e.src;
        r.server = e.dst;
        r.method.set(e.method);
        r.host.set(e.host.unwrap_or(b"-"));
        r.target.set(e.target);
        r.user_agent.set(e.user_agent.unwrap_or(b"-"));
        r.status = None;
        r.latency_us = None;
        self.changed |= 1 << slot;
        self.unanswered |= 1 << slot;
        self.ring.next = (self.ring.next + 1) % PER_WORKER;
        self.ring.filled = (self.ring.filled + 1).min(PER_WORKER);
    }

    fn response(&mut self, e: &ResponseEvent) {
        // An interim response (100 Continue, ...) is not the answer the list shows.
        let interim = (100..200).contains(&e.status) && e.status != 101;
        if self.unanswered == 0 || interim {
            return;
        }
        // When its request was not seen there is nothing to pair it with.
        let Some(sent) = e
            .latency_us
            .and_then(|us| e.ts.checked_sub(Duration::from_micros(us)))
        else {
            return;
        };
        // Of the unanswered requests of this connection sent at that time, the oldest.
        let mut best: Option<usize> = None;
        let mut candidates = self.unanswered;
        while candidates != 0 {
            let slot = candidates.trailing_zeros() as usize;
            candidates &= candidates - 1;
            let r = &self.ring.slots[slot];
            let close = match r.ts.duration_since(sent) {
                Ok(after) => after <= TIME_SLACK,
                Err(before) => before.duration() <= TIME_SLACK,
            };
            // Ports first: the cheap test that rules out most other connections.
            if close
                && r.client.1 == e.dst.1
                && r.server.1 == e.src.1
                && r.client == e.dst
                && r.server == e.src
                && best.is_none_or(|b| r.ts < self.ring.slots[b].ts)
            {
                best = Some(slot);
            }
        }
        if let Some(slot) = best {
            let r = &mut self.ring.slots[slot];
            r.status = Some(e.status);
            r.latency_us = e.latency_us;
            self.changed |= 1 << slot;
            self.unanswered &= !(1 << slot);
        }
    }

    fn connection(&mut self, _: &ConnectionEvent) {}

    fn flush(&mut self) {
        if self.changed == 0 {
            return;
        }
        // Never wait for the dashboard: try again after the next batch.
        if let Ok(mut shared) = self.shared.try_lock() {
            let mut changed = self.changed;
            while changed != 0 {
                let slot = changed.trailing_zeros() as usize;
                shared.slots[slot] = self.ring.slots[slot];
                changed &= changed - 1;
            }
            shared.next = self.ring.next;
            shared.filled = self.ring.filled;
            self.changed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    const SERVER: (IpAddr, u16) = (IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1)), 80);

    fn client(n: u8) -> (IpAddr, u16) {
        (IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), 40000)
    }

    fn request(sink: &mut dyn EventSink, s: u64, from: u8, host: &[u8], target: &[u8]) {
        sink.request(&RequestEvent {
            ts: at(s),
            src: client(from),
            dst: SERVER,
            method: b"GET",
            target,
            section: b"/",
            version: "HTTP/1.1",
            host: Some(host),
            user_agent: None,
            bytes: 100,
        });
    }

    /// What the board lists, newest first: (target, status).
    fn targets_and_status(board: &Board) -> Vec<(String, Option<u16>)> {
        board
            .newest_first()
            .iter()
            .map(|r| {
                (
                    String::from_utf8_lossy(r.target.bytes()).into_owned(),
                    r.status,
                )
            })
            .collect()
    }

    /// The response to the request sent at second `s`, 1.5 ms later.
    fn response(sink: &mut dyn EventSink, s: u64, to: u8, status: u16) {
        sink.response(&ResponseEvent {
            ts: at(s) + Duration::from_micros(1500),
            src: SERVER,
            dst: client(to),
            status,
            latency_us: Some(1500),
            bytes: 10,
        });
    }

    #[test]
    fn responses_pair_in_order_per_connection_and_the_ring_keeps_the_newest() {
        let board = Arc::new(Board::default());
        let factory = Board::factory(&board);
        let mut a = factory.make();
        let mut b = factory.make();
        request(a.as_mut(), 1, 1, b"a.example", b"/one");
        request(a.as_mut(), 2, 1, b"a.example", b"/two");
        request(a.as_mut(), 3, 2, b"B.example", b"/three");
        response(a.as_mut(), 1, 1, 200);
        response(a.as_mut(), 2, 1, 404);
        response(a.as_mut(), 3, 9, 500); // no request of that connection: ignored
        response(a.as_mut(), 7, 2, 500); // not the time of /three's request: ignored
        request(b.as_mut(), 7, 3, b"c.example", b"/four");
        assert!(board.newest_first().is_empty(), "nothing before a flush");
        a.flush();
        b.flush();
        let got = targets_and_status(&board);
        assert_eq!(
            got,
            [
                ("/four".to_owned(), None),
                ("/three".to_owned(), None),
                ("/two".to_owned(), Some(404)),
                ("/one".to_owned(), Some(200)),
            ]
        );
        assert_eq!(board.newest_first()[3].latency_us, Some(1500));

        // Past the ring's size only the newest stay; a long key is cut.
        let long = vec![b'x'; 500];
        for s in 0..(PER_WORKER as u64 + 10) {
            request(b.as_mut(), 100 + s, 3, &long, b"/many");
        }
        b.flush();
        let all = board.newest_first();
        assert_eq!(all.len(), 3 + PER_WORKER);
        assert_eq!(all[0].ts, at(100 + PER_WORKER as u64 + 9));
        assert_eq!(all[0].host.bytes().len(), HOST_BYTES);
    }

    #[test]
    fn one_request_per_millisecond_is_kept_and_a_response_finds_only_its_own() {
        let board = Arc::new(Board::default());
        let mut sink = Board::factory(&board).make();
        let event = |ts, target| RequestEvent {
            ts,
            src: client(1),
            dst: SERVER,
            method: b"GET",
            target,
            section: b"/",
            version: "HTTP/1.1",
            host: Some(b"a"),
            user_agent: None,
            bytes: 100,
        };
        let t0 = at(10);
        let ms = Duration::from_millis(1);
        sink.request(&event(t0, b"/kept"));
        sink.request(&event(t0 + ms / 2, b"/skipped")); // same millisecond: not kept
        sink.request(&event(t0 + ms, b"/kept-too"));
        // The response to /skipped (pipelined on the same connection) must not land on
        // /kept-too: its latency leads back to /skipped's time.
        let answer = |sent: SystemTime, status| ResponseEvent {
            ts: sent + Duration::from_micros(200),
            src: SERVER,
            dst: client(1),
            status,
            latency_us: Some(200),
            bytes: 10,
        };
        sink.response(&answer(t0, 200));
        sink.response(&answer(t0 + ms / 2, 500));
        sink.flush();
        let got = targets_and_status(&board);
        assert_eq!(
            got,
            [
                ("/kept-too".to_owned(), None),
                ("/kept".to_owned(), Some(200))
            ]
        );
    }

    #[test]
    fn a_busy_board_never_makes_the_worker_wait() {
        let board = Arc::new(Board::default());
        let mut sink = Board::factory(&board).make();
        request(sink.as_mut(), 1, 1, b"a", b"/");
        let slot = Arc::clone(&board.slots.lock().unwrap()[0]);
        let held = slot.lock().unwrap();
        sink.flush(); // returns at once; the copy waits for the next flush
        drop(held);
        assert!(board.newest_first().is_empty());
        sink.flush();
        assert_eq!(board.newest_first().len(), 1);
        assert_eq!(board.newest_first()[0].status, None);
        // The response comes in a later batch: only its slot is copied, and it is.
        response(sink.as_mut(), 1, 1, 304);
        sink.flush();
        assert_eq!(board.newest_first()[0].status, Some(304));
    }
}

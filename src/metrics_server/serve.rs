//! The event loop of the metrics endpoint: one thread, one epoll instance, every socket
//! non-blocking.
//!
//! The listener is level-triggered; each accepted connection is registered edge-triggered for
//! reading and writing, and moved on ([`Conn::step`]) when its socket reports readiness, so
//! the cost of a connection that sends nothing is its descriptor and a few dozen bytes, and
//! thousands of them do not slow a scrape. Connections are kept in accept order: when
//! [`Limits::connections`] are open, or the process runs out of descriptors, the oldest is
//! closed to make room, so a new scraper is always taken in (an attacker's idle connections
//! are older than any scrape). Partial request heads share a budget of
//! [`Limits::buffered_heads`] bytes. Every [`TICK`] the loop wakes whatever happened, to close
//! connections past their deadline and to see the stop flag.

use std::collections::BTreeMap;
use std::io;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::{epoll, Timespec};
use rustix::io::Errno;

use super::conn::Conn;
use super::exposition::Exposition;
use super::nofile::{Limits, RAISE_HINT};

/// Longest sleep of the loop: deadlines are enforced, and [`super::MetricsServer::stop`]
/// returns, within about this long.
pub(super) const TICK: Duration = Duration::from_millis(25);

/// Connections the kernel completes ahead of accept (capped by `net.core.somaxconn`): with
/// std's 128, a burst of connects while the thread waits for a core overflows the queue, and
/// each connect dropped there, a scrape's too, is retried by its client only a second later.
const BACKLOG: i32 = 4096;

/// Readiness events taken per wait.
const EVENTS: usize = 256;

/// Connections accepted per wake-up at most, so that a flood of connects does not starve the
/// connections already open (the listener is level-triggered: the rest come next round). Small:
/// at the connection cap every accept closes the oldest, and a scraper accepted early in a
/// large batch was closed by the rest of it before its request was read (seen in CI under a
/// 300-file limit: a cap of 172 against 2,000 reconnecting clients).
const ACCEPT_BATCH: usize = 32;

/// The epoll data of the listener; connections are numbered from 1 in accept order.
const LISTENER: u64 = 0;

/// The epoll instance with the listener registered on it.
#[derive(Debug)]
pub(super) struct Poller {
    epoll: OwnedFd,
    listener: TcpListener,
}

impl Poller {
    /// Registers `listener` (already non-blocking) on a new epoll instance, with a backlog of
    /// [`BACKLOG`].
    pub(super) fn new(listener: TcpListener) -> io::Result<Poller> {
        // Listening again only sets the backlog (std listens with 128).
        rustix::net::listen(&listener, BACKLOG)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        epoll::add(
            &epoll,
            &listener,
            epoll::EventData::new_u64(LISTENER),
            epoll::EventFlags::IN,
        )?;
        Ok(Poller { epoll, listener })
    }
}

/// The loop's state.
struct Server {
    poller: Poller,
    limits: Limits,
    exposition: Exposition,
    /// Open connections by accept number: the first is the oldest.
    conns: BTreeMap<u64, Conn>,
    next: u64,
    /// Bytes of partial heads held, the sum of [`Conn::held`].
    buffered: usize,
    /// Whether running out of descriptors has been reported (once per run).
    warned: bool,
}

/// Serves until `stop` is set.
pub(super) fn serve(poller: Poller, limits: Limits, exposition: Exposition, stop: &AtomicBool) {
    let mut server = Server {
        poller,
        limits,
        exposition,
        conns: BTreeMap::new(),
        next: LISTENER + 1,
        buffered: 0,
        warned: false,
    };
    let tick = Timespec::try_from(TICK).unwrap_or(Timespec {
        tv_sec: 0,
        tv_nsec: 25_000_000,
    });
    let mut events = Vec::with_capacity(EVENTS);
    let mut swept = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        events.clear();
        if let Err(e) = epoll::wait(
            &server.poller.epoll,
            spare_capacity(&mut events),
            Some(&tick),
        ) {
            if e != Errno::INTR {
                // Not expected on a valid epoll fd; do not spin on it.
                thread::sleep(TICK);
            }
        }
        let now = Instant::now();
        for event in events.drain(..) {
            match event.data.u64() {
                LISTENER => server.accept(now),
                id => server.step(id, now),
            }
        }
        if now.saturating_duration_since(swept) >= TICK {
            server.sweep(now);
            swept = now;
        }
    }
}

impl Server {
    /// Takes in the connections waiting, closing the oldest open ones to make room.
    fn accept(&mut self, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            match self.poller.listener.accept() {
                Ok((stream, _)) => {
                    while self.conns.len() >= self.limits.connections {
                        self.close_oldest();
                    }
                    let id = self.next;
                    self.next += 1;
                    let flags = epoll::EventFlags::IN
                        | epoll::EventFlags::OUT
                        | epoll::EventFlags::RDHUP
                        | epoll::EventFlags::ET;
                    if stream.set_nonblocking(true).is_ok()
                        && epoll::add(
                            &self.poller.epoll,
                            &stream,
                            epoll::EventData::new_u64(id),
                            flags,
                        )
                        .is_ok()
                    {
                        self.conns.insert(id, Conn::new(stream, now));
                        // A request that came with the connect is answered now, before more
                        // accepts can make this the oldest connection.
                        self.step(id, now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_out_of_files(&e) => {
                    self.out_of_files();
                    if self.conns.is_empty() {
                        // Nothing of ours to close: the descriptors are held elsewhere in
                        // the process. Wait rather than spin on the ready listener.
                        thread::sleep(TICK);
                        return;
                    }
                    self.close_oldest();
                }
                // A connection reset before it was accepted, and the like: the next one.
                Err(_) => {}
            }
        }
    }

    /// Moves connection `id` on after a readiness event (it may have been closed already).
    fn step(&mut self, id: u64, now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let before = conn.held();
        let others = self.buffered.saturating_sub(before);
        let room = self.limits.buffered_heads.saturating_sub(others);
        let open = conn.step(&mut self.exposition, room, now);
        self.buffered = others.saturating_add(conn.held());
        if !open {
            self.close(id);
        }
    }

    /// Closes every connection past its deadline.
    fn sweep(&mut self, now: Instant) {
        let mut freed = 0usize;
        self.conns.retain(|_, c| {
            let expired = c.expired(now);
            if expired {
                freed = freed.saturating_add(c.held());
            }
            !expired
        });
        self.buffered = self.buffered.saturating_sub(freed);
    }

    fn close(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            self.buffered = self.buffered.saturating_sub(conn.held());
        }
    }

    /// Closes the oldest connection to make room, after serving what it already sent: a
    /// scrape whose request is in its socket is answered (into the socket's send buffer)
    /// before it goes, so a flood of connects cannot close it unanswered.
    fn close_oldest(&mut self) {
        if let Some((&id, _)) = self.conns.first_key_value() {
            self.step(id, Instant::now());
            self.close(id);
        }
    }

    /// Says once what to do when the process has no descriptor left for a scrape.
    fn out_of_files(&mut self) {
        if !self.warned {
            self.warned = true;
            eprintln!(
                "linewatch: warning: the metrics endpoint ran out of open files at {} \
                 connections (limit {}): closing the oldest to take new ones; {RAISE_HINT}",
                self.conns.len(),
                self.limits.nofile_text(),
            );
        }
    }
}

/// Whether `e` says the process (EMFILE) or the system (ENFILE) has no descriptor left.
fn is_out_of_files(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    [Errno::MFILE, Errno::NFILE]
        .iter()
        .any(|errno| code == Some(errno.raw_os_error()))
}

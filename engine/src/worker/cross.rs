//! The worker's side of the crossing ([`crate::cross`]): segments of flows another worker owns
//! are handed to it; segments from other workers are taken after each batch; a segment that
//! acknowledges bytes of the other direction not yet seen is held until they come.
//!
//! Without a crossing (one queue, steered queues, symmetric RSS, every replay) the segment path
//! pays one `Option` test for all of this.

use linewatch_parser::wire::{TcpFlags, TcpSegment};

use super::Worker;
use crate::counters::Counter;
use crate::cross::{parcel, CrossFigures, Crossing, FULL_WAIT, PEER_WAIT_NS, RETRY_PASSES};
use crate::flow::Side;
use crate::owner::segment_owner;
use crate::reorder::ACK_JUMP;

impl Worker {
    /// Joins this worker to a crossing: from now on it keeps only the segments of the flows
    /// it owns, hands the others on, and takes its own from the other workers'
    /// ([`Worker::take_crossed`]).
    pub fn set_crossing(&mut self, crossing: Crossing) {
        self.cross = Some(Box::new(crossing));
    }

    /// The crossing's figures, when the worker has one.
    pub fn cross_figures(&self) -> Option<CrossFigures> {
        self.cross.as_ref().map(|c| c.figures())
    }

    /// Whether a segment from another worker is waiting for this one (false without a
    /// crossing).
    pub fn crossed_waiting(&self) -> bool {
        self.cross.as_ref().is_some_and(|c| !c.inbox_is_empty())
    }

    /// Hands `seg` to the worker that owns its flow, when that is not this one: true when it
    /// is gone (handed on, or lost to a lane that stayed full, counted). A lane that is full
    /// is retried for [`FULL_WAIT`] while this worker takes its own lanes, so that two
    /// workers filling each other's lanes both go on; once a wait has run out, the lane is
    /// congested and what does not fit is lost at once, until a segment fits again (an owner
    /// that stalls must not stall its feeders segment after segment).
    #[inline(never)]
    pub(super) fn hand_off(&mut self, ts: u64, seg: &TcpSegment<'_>) -> bool {
        let Some(c) = self.cross.as_deref_mut() else {
            return false;
        };
        if c.retry_since.is_none() {
            // A segment parsed here (this worker's own, or taken from a lane) may be what a
            // held one waits for: the next retry looks.
            c.changed = true;
        }
        if c.taking {
            // From a lane or the hold queue: this worker's already.
            return false;
        }
        let owner = segment_owner(seg, c.workers);
        if owner == c.index {
            return false;
        }
        let len = parcel::len(seg);
        let mut deadline = None;
        loop {
            let Some(c) = self.cross.as_deref_mut() else {
                return false;
            };
            let Some(lane) = c.out.get_mut(owner).and_then(Option::as_mut) else {
                return false;
            };
            if lane.push(len, |out| parcel::write(out, ts, 0, seg)) {
                c.figures.sent += 1;
                c.congested[owner] = false;
                return true;
            }
            let started = *deadline.get_or_insert_with(std::time::Instant::now);
            if c.congested[owner] || started.elapsed() >= FULL_WAIT {
                c.congested[owner] = true;
                self.delta.add(Counter::CrossingLost, 1);
                return true;
            }
            if self.take_crossed() == 0 {
                std::thread::yield_now();
            }
        }
    }

    /// With a crossing, after the flow lookup: holds `seg` (of the flow in `slot`, from
    /// `side`) when it must wait, and says so (true). What changes the flow (data, FIN, RST)
    /// waits when it acknowledges bytes of the other direction this worker has not seen yet
    /// (by less than a jump only a capture loss explains), or acknowledges anything while the
    /// other direction's SYN is unseen after this one's was seen: it was sent after bytes still
    /// on their way from another queue. And it waits behind this direction's held segments,
    /// so a direction is parsed in its order. A held segment whose wait is over (or that the
    /// full hold queue cannot take) is parsed as it is, the other direction's missing bytes
    /// taken as a capture loss; counted under `peer_wait_expired`.
    #[inline(never)]
    pub(super) fn crossing_hold(
        &mut self,
        slot: u32,
        side: Side,
        ts: u64,
        seg: &TcpSegment<'_>,
    ) -> bool {
        let Some(c) = self.cross.as_deref_mut() else {
            return false;
        };
        let retrying = c.retry_since.is_some();
        let pass = c.pass;
        let dirs = &mut self.flows.flow_mut(slot).dirs;
        if retrying {
            // This one leaves the queue (it is parsed, or held again below).
            dirs[side].waiting = dirs[side].waiting.saturating_sub(1);
        }
        if seg.payload.is_empty() && seg.flags.0 & (TcpFlags::FIN | TcpFlags::RST) == 0 {
            return false;
        }
        let behind = if retrying {
            dirs[side].requeued_pass == pass
        } else {
            dirs[side].waiting > 0
        };
        let other = &dirs[1 - side];
        let ahead = seg.flags.has(TcpFlags::ACK)
            && if other.seq_known {
                let past = seg.ack.wrapping_sub(other.next_seq) as i32;
                past > i32::from(other.fin) && past.unsigned_abs() <= ACK_JUMP
            } else {
                // Once a wait for the peer's SYN ran out, the capture does not see that
                // direction: its segments are not held again.
                dirs[side].syn && !dirs[side].peer_unseen
            };
        if !behind && !ahead {
            return false;
        }
        let since = c.retry_since.unwrap_or(ts);
        if !c.forcing && c.held.push(ts, since, seg) {
            c.next_expiry = c.next_expiry.min(since.saturating_add(PEER_WAIT_NS));
            let dir = &mut dirs[side];
            dir.waiting = dir.waiting.saturating_add(1);
            if retrying {
                dir.requeued_pass = pass;
            } else {
                self.delta.add(Counter::HeldForPeer, 1);
            }
            return true;
        }
        self.delta.add(Counter::PeerWaitExpired, 1);
        if ahead {
            self.peer_missed(slot, side, seg.ack);
        }
        false
    }

    /// A segment of `side` waited in vain for the other direction: the capture missed that
    /// direction's bytes up to `ack` (or, where its SYN was never seen, does not see it).
    #[cold]
    fn peer_missed(&mut self, slot: u32, side: Side, ack: u32) {
        let dirs = &mut self.flows.flow_mut(slot).dirs;
        if dirs[1 - side].seq_known {
            self.capture_missed(slot, 1 - side, ack);
        } else {
            dirs[side].peer_unseen = true;
        }
    }

    /// Takes the segments other workers handed to this one and parses them, then retries the
    /// held segments (those whose wait is over, at `now_ns` of this worker's clock, are parsed
    /// as they are). Returns how many segments came from other workers. The batch loop calls
    /// it after every batch and while its queue is quiet.
    pub fn take_crossed_at(&mut self, now_ns: u64) -> usize {
        let n = self.take_crossed();
        self.retry_held(now_ns);
        n
    }

    /// Parses what other workers handed on; returns how many segments.
    fn take_crossed(&mut self) -> usize {
        let Some(c) = self.cross.as_deref_mut() else {
            return 0;
        };
        // Out of `self` while its records are parsed through `self` (a segment from another
        // worker is always this one's: it never goes back to a lane).
        let mut inbox = std::mem::take(&mut c.inbox);
        let outer = std::mem::replace(&mut c.taking, true);
        let mut n = 0;
        for lane in &mut inbox {
            n += lane.drain(|bytes| {
                let p = parcel::read(bytes);
                self.crossed_segment(p.ts, &p.seg);
            });
        }
        if let Some(c) = self.cross.as_deref_mut() {
            c.inbox = inbox;
            c.taking = outer;
            c.figures.received += n as u64;
        }
        n
    }

    /// Retries the held segments, in packet-time order, each parsed if the other direction
    /// has caught up or its wait is over and held again otherwise; again while a pass parses
    /// something (a request and its answer held together need one pass each way), at most
    /// [`RETRY_PASSES`] times.
    fn retry_held(&mut self, now_ns: u64) {
        // Nothing parsed since the last retry and no wait over: nothing can have changed (a
        // quiet worker looks every millisecond; the held segments need not be run again).
        match self.cross.as_deref_mut() {
            Some(c) if c.changed || now_ns >= c.next_expiry => c.changed = false,
            _ => return,
        }
        for _ in 0..RETRY_PASSES {
            let Some(c) = self.cross.as_deref_mut() else {
                return;
            };
            if c.held.is_empty() {
                return;
            }
            // The parcels held again in this pass set the next expiry anew.
            c.next_expiry = u64::MAX;
            // Packet-time order is the order they were sent in, up to the batch granularity
            // of each worker's clock: one pass then parses most of what can be parsed.
            c.order.clear();
            c.order.extend(c.held.times().map(|(at, ts)| (ts, at)));
            // Unstable (no allocation) yet the same order: the places break ties in arrival
            // order.
            c.order.sort_unstable();
            c.pass = c.pass.wrapping_add(1).max(1);
            let order = std::mem::take(&mut c.order);
            let spare = std::mem::take(&mut c.spare);
            let queue = std::mem::replace(&mut c.held, spare);
            let outer = std::mem::replace(&mut c.taking, true);
            for &(_, at) in &order {
                let p = queue.get(at);
                if let Some(c) = self.cross.as_deref_mut() {
                    c.retry_since = Some(p.since);
                    c.forcing = now_ns.saturating_sub(p.since) >= PEER_WAIT_NS;
                }
                self.crossed_segment(p.ts, &p.seg);
            }
            let Some(c) = self.cross.as_deref_mut() else {
                return;
            };
            c.retry_since = None;
            c.forcing = false;
            c.taking = outer;
            c.order = order;
            let parsed = queue.len() - c.held.len();
            let mut queue = queue;
            queue.clear();
            c.spare = queue;
            if parsed == 0 {
                return;
            }
        }
    }

    /// The segment path for a segment from a lane or the hold queue: one call site for both.
    #[inline(never)]
    fn crossed_segment(&mut self, ts: u64, seg: &TcpSegment<'_>) {
        // Counted outside the frame path, perhaps in an epoch without a frame of this
        // worker's own: the delta must be merged, not skipped as untouched.
        self.delta.touched = true;
        self.segment(ts, seg);
    }

    /// The run is over and no worker hands anything on any more: every held segment is
    /// parsed as it is.
    pub fn finish_crossing(&mut self) {
        self.retry_held(u64::MAX);
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // small test numbers
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use linewatch_parser::wire::{decode_frame, LinkType};
    use linewatch_testkit::frame::{Frame, TcpFlags as Flags, TcpRepr};

    use super::*;
    use crate::counters::CoreDelta;
    use crate::cross::{crossings, crossings_with_lanes};
    use crate::worker::WorkerConfig;

    const T0: u64 = 1_700_000_000_000_000_000;
    const CLIENT_ISN: u32 = 1_000;
    const SERVER_ISN: u32 = 90_000;
    const HEAD_REQ: &[u8] = b"HEAD /first HTTP/1.1\r\nHost: a\r\n\r\n";
    const GET_REQ: &[u8] = b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n";
    // A HEAD response declares the length of a body it does not carry.
    const HEAD_RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    const GET_RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

    /// One frame of the connection, from the client or the server, at packet time `ts`.
    struct Seg {
        from_server: bool,
        ts: u64,
        seq: u32,
        ack: u32,
        flags: Flags,
        payload: &'static [u8],
    }

    fn frame(port: u16, s: &Seg) -> Vec<u8> {
        let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let ((src, sport), (dst, dport)) = if s.from_server {
            ((server, 80), (client, port))
        } else {
            ((client, port), (server, 80))
        };
        Frame::tcp(
            src,
            dst,
            TcpRepr {
                src_port: sport,
                dst_port: dport,
                seq: s.seq,
                ack: s.ack,
                flags: s.flags,
                payload: s.payload,
                ..TcpRepr::default()
            },
        )
        .to_vec()
    }

    /// A keep-alive connection: handshake, a HEAD and its answer, a GET and its answer; the
    /// server's packets 50 us after what they answer.
    fn connection() -> (Vec<Seg>, Vec<Seg>) {
        let c = CLIENT_ISN + 1;
        let s = SERVER_ISN + 1;
        let (h, g) = (HEAD_REQ.len() as u32, GET_REQ.len() as u32);
        let (hr, gr) = (HEAD_RESP.len() as u32, GET_RESP.len() as u32);
        let ack = Flags::ACK;
        let data = Flags::ACK | Flags::PSH;
        let us = 1_000;
        let client = vec![
            Seg {
                from_server: false,
                ts: T0,
                seq: CLIENT_ISN,
                ack: 0,
                flags: Flags::SYN,
                payload: b"",
            },
            Seg {
                from_server: false,
                ts: T0 + 20 * us,
                seq: c,
                ack: s,
                flags: ack,
                payload: b"",
            },
            Seg {
                from_server: false,
                ts: T0 + 30 * us,
                seq: c,
                ack: s,
                flags: data,
                payload: HEAD_REQ,
            },
            Seg {
                from_server: false,
                ts: T0 + 200 * us,
                seq: c + h,
                ack: s + hr,
                flags: data,
                payload: GET_REQ,
            },
        ];
        let server = vec![
            Seg {
                from_server: true,
                ts: T0 + 10 * us,
                seq: SERVER_ISN,
                ack: c,
                flags: Flags::SYN | ack,
                payload: b"",
            },
            Seg {
                from_server: true,
                ts: T0 + 80 * us,
                seq: s,
                ack: c + h,
                flags: data,
                payload: HEAD_RESP,
            },
            Seg {
                from_server: true,
                ts: T0 + 250 * us,
                seq: s + hr,
                ack: c + h + g,
                flags: data,
                payload: GET_RESP,
            },
        ];
        let _ = gr;
        (client, server)
    }

    fn feed(w: &mut Worker, port: u16, segs: &[Seg]) {
        for s in segs {
            let f = frame(port, s);
            w.process_frame(s.ts, LinkType::Ethernet, &f, f.len() as u32);
        }
    }

    fn total(workers: &[Worker], c: Counter) -> u64 {
        workers.iter().map(|w| w.delta().get(c)).sum()
    }

    /// The client's frames reach worker `a`, the server's worker `b`, and the server's are
    /// taken first (its worker was quicker): with a crossing, every response is paired and
    /// framed (the HEAD answer has no body, so the GET's answer is parsed).
    fn split_run(port: u16, crossing: bool) -> Vec<Worker> {
        let mut workers: Vec<Worker> = (0..2)
            .map(|_| Worker::new(&WorkerConfig::default(), CoreDelta::new(0)))
            .collect();
        if crossing {
            for (w, c) in workers.iter_mut().zip(crossings(2)) {
                w.set_crossing(c);
            }
        }
        let (client, server) = connection();
        // Which worker owns the flow does not matter: the client's side goes to the worker
        // that does not own it when `port` is odd, to the owner otherwise.
        let seg = frame(port, &client[0]);
        let owner = segment_owner(&decode_frame(LinkType::Ethernet, &seg).unwrap(), 2);
        let a = if port % 2 == 1 { 1 - owner } else { owner };
        let b = 1 - a;
        feed(&mut workers[b], port, &server);
        for w in &mut workers {
            w.take_crossed_at(T0 + 300_000);
        }
        feed(&mut workers[a], port, &client);
        for _ in 0..2 {
            for w in &mut workers {
                w.take_crossed_at(T0 + 400_000);
            }
        }
        for w in &mut workers {
            w.finish_crossing();
        }
        workers
    }

    #[test]
    fn a_split_connection_is_paired_and_framed_whichever_worker_owns_it() {
        for port in [40_000u16, 40_001, 40_002, 40_003] {
            let workers = split_run(port, true);
            assert_eq!(total(&workers, Counter::Requests), 2, "port {port}");
            assert_eq!(total(&workers, Counter::Responses), 2, "port {port}");
            assert_eq!(
                total(&workers, Counter::UnmatchedResponses),
                0,
                "port {port}"
            );
            assert_eq!(total(&workers, Counter::PeerWaitExpired), 0, "port {port}");
            assert!(total(&workers, Counter::HeldForPeer) >= 1, "port {port}");
            // 80 - 30 us and 250 - 200 us: each response against its own request.
            let recorded: u64 = workers
                .iter()
                .map(|w| w.delta().tally.response_latency_us.len())
                .sum();
            assert_eq!(recorded, 2, "port {port}");
            for w in &workers {
                let h = w.delta().tally.response_latency_us.histogram();
                assert!(
                    h.is_empty() || (h.min() == 50 && h.max() == 50),
                    "port {port}"
                );
            }
            let sent: u64 = workers
                .iter()
                .map(|w| w.cross_figures().unwrap().sent)
                .sum();
            let got: u64 = workers
                .iter()
                .map(|w| w.cross_figures().unwrap().received)
                .sum();
            assert_eq!(sent, got);
            assert!(sent >= 3, "port {port}: {sent} segments crossed");
        }
    }

    #[test]
    fn without_a_crossing_the_same_split_loses_the_pairs() {
        let workers = split_run(40_001, false);
        assert_eq!(total(&workers, Counter::Requests), 2);
        assert_eq!(
            total(&workers, Counter::UnmatchedResponses),
            1,
            "the HEAD answer"
        );
        // Its declared 100 bytes swallow the GET's answer.
        assert_eq!(total(&workers, Counter::Responses), 1);
    }

    #[test]
    fn a_held_segment_whose_peer_never_comes_is_parsed_after_its_wait() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        let mut all = crossings(1);
        w.set_crossing(all.remove(0));
        let (client, server) = connection();
        // The handshake, then the HEAD's answer without the HEAD (the capture lost it).
        feed(&mut w, 40_000, &client[..2]);
        feed(&mut w, 40_000, &server[..2]);
        assert_eq!(w.delta().get(Counter::HeldForPeer), 1);
        assert_eq!(w.delta().get(Counter::Responses), 0);
        w.take_crossed_at(T0 + 100 * 1_000);
        assert_eq!(w.delta().get(Counter::Responses), 0, "still waiting");
        w.take_crossed_at(T0 + 80 * 1_000 + PEER_WAIT_NS);
        assert_eq!(w.delta().get(Counter::PeerWaitExpired), 1);
        assert_eq!(w.delta().get(Counter::Responses), 1);
        assert_eq!(w.delta().get(Counter::UnmatchedResponses), 1);
    }

    #[test]
    fn a_lane_that_stays_full_loses_what_does_not_fit_counted_then_takes_again() {
        let mut all = crossings_with_lanes(2, crate::cross::lane::MIN_LANE_BYTES);
        let mut workers: Vec<Worker> = all
            .drain(..)
            .map(|c| {
                let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
                w.set_crossing(c);
                w
            })
            .collect();
        // Connections owned by worker 1, their client frames fed to worker 0, which never
        // hears from worker 1 meanwhile (it does not drain its lanes).
        let mut fed = 0u64;
        let body = [b'x'; 1_000];
        let mut port = 40_000u16;
        while fed < 200 {
            port += 1;
            let seg = Seg {
                from_server: false,
                ts: T0,
                seq: CLIENT_ISN + 1,
                ack: SERVER_ISN + 1,
                flags: Flags::ACK | Flags::PSH,
                payload: b"",
            };
            let f = frame(port, &seg);
            if segment_owner(&decode_frame(LinkType::Ethernet, &f).unwrap(), 2) != 1 {
                continue;
            }
            let mut request =
                b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 900\r\n\r\n".to_vec();
            request.extend_from_slice(&body[..900]);
            let frame = Frame::tcp(
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
                TcpRepr {
                    src_port: port,
                    dst_port: 80,
                    seq: CLIENT_ISN + 1,
                    ack: SERVER_ISN + 1,
                    flags: Flags::ACK | Flags::PSH,
                    payload: &request,
                    ..TcpRepr::default()
                },
            )
            .to_vec();
            workers[0].process_frame(T0, LinkType::Ethernet, &frame, frame.len() as u32);
            fed += 1;
        }
        let sent = workers[0].cross_figures().unwrap().sent;
        let lost = workers[0].delta().get(Counter::CrossingLost);
        // 64 KiB of ~1 KiB parcels: about 60 fit; the rest are lost, and counted.
        assert!((50..70).contains(&sent), "{sent} handed on");
        assert_eq!(sent + lost, fed, "every segment handed on or counted lost");
        workers[1].take_crossed_at(T0);
        assert_eq!(workers[1].cross_figures().unwrap().received, sent);
        assert_eq!(workers[1].delta().get(Counter::Requests), sent);
        // Drained: the lane takes again (and is no longer congested).
        let before = workers[0].cross_figures().unwrap().sent;
        let f = frame(
            port,
            &Seg {
                from_server: false,
                ts: T0,
                seq: CLIENT_ISN + 1 + 1_000,
                ack: SERVER_ISN + 1,
                flags: Flags::ACK | Flags::PSH,
                payload: GET_REQ,
            },
        );
        workers[0].process_frame(T0, LinkType::Ethernet, &f, f.len() as u32);
        assert_eq!(workers[0].cross_figures().unwrap().sent, before + 1);
        assert_eq!(workers[0].delta().get(Counter::CrossingLost), lost);
    }

    #[test]
    fn after_one_wait_runs_out_the_rest_of_the_answer_is_not_held() {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        w.set_crossing(crossings(1).remove(0));
        let (client, server) = connection();
        let c = CLIENT_ISN + 1;
        let s = SERVER_ISN + 1;
        let h = HEAD_REQ.len() as u32;
        const EMPTY: &[u8] = b"HTTP/1.1 204 No Content\r\n\r\n";
        let n = EMPTY.len() as u32;
        // The handshake; the HEAD request is lost; its answer comes in segments that all
        // acknowledge it, the last after the wait has run out.
        feed(&mut w, 40_000, &client[..2]);
        feed(&mut w, 40_000, &server[..1]);
        let answer = |i: u32, ts: u64| Seg {
            from_server: true,
            ts,
            seq: s + i * n,
            ack: c + h,
            flags: Flags::ACK | Flags::PSH,
            payload: EMPTY,
        };
        feed(
            &mut w,
            40_000,
            &[answer(0, T0 + 80_000), answer(1, T0 + 90_000)],
        );
        assert_eq!(
            w.delta().get(Counter::HeldForPeer),
            2,
            "ahead, then behind it"
        );
        w.take_crossed_at(T0 + 80_000 + PEER_WAIT_NS);
        // The first is parsed as it is and the request taken as lost; the second follows.
        assert_eq!(w.delta().get(Counter::PeerWaitExpired), 1);
        assert_eq!(w.delta().get(Counter::SequenceGaps), 1);
        assert_eq!(w.delta().get(Counter::Responses), 2);
        feed(&mut w, 40_000, &[answer(2, T0 + 80_000 + PEER_WAIT_NS)]);
        assert_eq!(w.delta().get(Counter::HeldForPeer), 2, "not held again");
        assert_eq!(w.delta().get(Counter::Responses), 3);
    }
}

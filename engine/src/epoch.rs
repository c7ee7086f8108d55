//! The epoch protocol: how per-core counts reach the aggregator without locks, without loss
//! and without double counting.
//!
//! # Contract
//!
//! Time is cut into epochs of one second (packet time offline, wall time live). Each worker
//! counts into a [`CoreDelta`] that belongs to exactly one epoch and has exactly one owner at a
//! time. When a worker's epoch changes it *retires* the delta to the aggregator and continues
//! with a cleared spare. The aggregator merges every retired delta exactly once, clears it and
//! hands it back as a spare. A count made by a worker lands in exactly one delta, and every
//! delta is merged exactly once, so nothing is lost or counted twice. `tests/epoch_stress.rs`
//! checks it with several threads.
//!
//! # Data flow, per worker
//!
//! ```text
//!   worker ──retired: ArrayQueue<Box<CoreDelta>>──► aggregator
//!   worker ◄──spare:  ArrayQueue<Box<CoreDelta>>─── aggregator
//!   worker ──acked:   AtomicU64 (epochs below it are finished)──► aggregator
//! ```
//!
//! # The protocol and its memory orderings
//!
//! Worker, when a batch of epoch `e` arrives and its delta holds epoch `d < e`:
//! 1. pop a spare (waits while none is free: the aggregator is behind; offline this is
//!    backpressure, live it does not happen with [`SPARES_PER_WORKER`] spares and a
//!    once-a-second aggregator);
//! 2. swap it in, push the old delta onto `retired`;
//! 3. `acked.store(e, Release)`.
//!
//! Aggregator, to close epochs:
//! 1. `m = min over workers of acked.load(Acquire)`;
//! 2. drain every `retired` queue;
//! 3. every epoch below `m` is now complete: merge its deltas, in epoch order.
//!
//! Why this is enough: the push in worker step 2 happens before the Release store in step 3;
//! the aggregator's Acquire load that reads that store (or a later one) synchronises with it,
//! so its drain in step 2 finds the pushed delta. A worker never counts into an epoch below
//! its `acked` again (epochs only grow: offline the reader stamps batches with the running
//! maximum of packet seconds; live the clock is monotonic), so no count for an epoch below
//! `m` can appear after the aggregator closed it. The queues themselves are crossbeam's
//! `ArrayQueue`: a push is a Release and a pop an Acquire on the slot, so the delta's contents
//! written by one thread are visible to the thread that pops it — ownership of the `Box`
//! moves, and no field of a `CoreDelta` is ever touched by two threads at once.
//!
//! A delta the worker counted nothing into (a second it only saw go by) is not merged: the
//! aggregator skips it by its `touched` flag. So whatever counts outside the frame path sets
//! the flag too: holes given up as a second begins or at the end (`worker::reorder`), and
//! segments other workers hand on (`worker::cross`). Live, those often come in seconds
//! without a frame of the worker's own: the end of a capture, above all.
//!
//! `acked` uses Release/Acquire and nothing stronger: there is one writer per counter and the
//! aggregator only needs to see each worker's own history in order, not a total order across
//! workers (a `SeqCst` fence would buy nothing). The end of input is `acked = u64::MAX`.
//! The aggregator is woken with `Thread::unpark` after step 3; an unpark that races with the
//! aggregator's `park_timeout` is never lost (std guarantees a token), and the timeout bounds the
//! wait anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use crate::counters::CoreDelta;
use crate::live::sys::NS_PER_SEC;
use crate::worker::Worker;

/// Deltas per worker besides the one being counted into: how many epochs a worker may run
/// ahead of the aggregator before it waits. Four seconds of slack live; offline, enough that
/// the reader, workers and aggregator overlap.
pub const SPARES_PER_WORKER: usize = 4;

/// `acked` value meaning "this worker has finished: no more deltas".
pub const FINISHED: u64 = u64::MAX;

/// The state one worker shares with the aggregator.
#[derive(Debug)]
pub struct EpochShared {
    retired: ArrayQueue<Box<CoreDelta>>,
    spare: ArrayQueue<Box<CoreDelta>>,
    acked: CachePadded<AtomicU64>,
}

impl EpochShared {
    /// Shared state with `SPARES_PER_WORKER` cleared spares.
    pub fn new() -> Arc<EpochShared> {
        // Room for every delta that exists for this worker: the counted one and the spares.
        let slots = SPARES_PER_WORKER + 1;
        let shared = EpochShared {
            retired: ArrayQueue::new(slots),
            spare: ArrayQueue::new(slots),
            acked: CachePadded::new(AtomicU64::new(0)),
        };
        for _ in 0..SPARES_PER_WORKER {
            // Cannot fail: the queue has room for all of them.
            let _ = shared.spare.push(CoreDelta::new(0));
        }
        Arc::new(shared)
    }

    /// Epochs below this are finished for this worker.
    pub fn acked(&self) -> u64 {
        // Acquire: pairs with the worker's Release store so that the deltas it retired before
        // that store are visible to the drain that follows (see the module doc).
        self.acked.load(Ordering::Acquire)
    }

    /// Takes every retired delta (aggregator side).
    pub fn drain_retired(&self, mut each: impl FnMut(Box<CoreDelta>)) {
        while let Some(d) = self.retired.pop() {
            each(d);
        }
    }

    /// Returns a merged delta to its worker (aggregator side). It must come from this
    /// worker's queue, so the number of deltas per worker stays constant.
    pub fn give_back(&self, mut delta: Box<CoreDelta>) {
        delta.clear(0);
        // Cannot fail: every delta of this worker fits in the queue at once.
        let _ = self.spare.push(delta);
    }
}

/// The worker's end of the protocol.
#[derive(Debug)]
pub struct WorkerEpoch {
    shared: Arc<EpochShared>,
    aggregator: Thread,
}

impl WorkerEpoch {
    /// The worker's handle on `shared`; `aggregator` is woken whenever a delta is retired.
    pub fn new(shared: Arc<EpochShared>, aggregator: Thread) -> WorkerEpoch {
        WorkerEpoch { shared, aggregator }
    }

    /// Called before counting anything of epoch `epoch`: retires the current delta if it
    /// belongs to an older epoch. An `epoch` below the current one is counted in the current
    /// one (epochs only move forward).
    pub fn enter(&mut self, worker: &mut Worker, epoch: u64) {
        if epoch <= worker.delta().epoch {
            return;
        }
        // Holes nothing came for are given up as the second begins (packet time): what they
        // held is counted in the epoch it belongs to, not held on indefinitely.
        worker.expire_holes(epoch.saturating_mul(NS_PER_SEC));
        let mut fresh = self.take_spare();
        fresh.clear(epoch);
        let old = worker.swap_delta(fresh);
        self.retire(old, epoch);
    }

    /// Retires the last delta: this worker is done.
    pub fn finish(&mut self, worker: &mut Worker) {
        // Segments held past a hole at the end are counted: the capture missed the hole.
        worker.finish();
        let mut fresh = self.take_spare();
        let epoch = worker.delta().epoch;
        fresh.clear(epoch);
        let old = worker.swap_delta(fresh);
        self.retire(old, FINISHED);
    }

    fn retire(&self, old: Box<CoreDelta>, acked: u64) {
        // Cannot fail: the queue holds every delta of this worker at once.
        let _ = self.shared.retired.push(old);
        // Release: the push above must be visible to whoever reads this value (module doc).
        self.shared.acked.store(acked, Ordering::Release);
        self.aggregator.unpark();
    }

    fn take_spare(&self) -> Box<CoreDelta> {
        loop {
            if let Some(d) = self.shared.spare.pop() {
                return d;
            }
            self.aggregator.unpark();
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The aggregator's view of all workers: drains them and tells which epochs are complete.
#[derive(Debug)]
pub struct EpochCollector {
    workers: Vec<Arc<EpochShared>>,
    /// Retired deltas not merged yet (their epoch is not complete), with their worker.
    waiting: Vec<(usize, Box<CoreDelta>)>,
}

impl EpochCollector {
    /// A collector over these workers' shared states.
    pub fn new(workers: Vec<Arc<EpochShared>>) -> EpochCollector {
        let room = workers.len() * (SPARES_PER_WORKER + 1);
        EpochCollector {
            workers,
            waiting: Vec::with_capacity(room),
        }
    }

    /// Every worker has finished: one more [`EpochCollector::collect`] after this returned
    /// true merges everything (the Acquire loads here see every delta pushed before the
    /// workers' final Release stores). Checking the queues *before* that last collect would
    /// race with a worker's final push.
    pub fn all_finished(&self) -> bool {
        self.workers.iter().all(|w| w.acked() == FINISHED)
    }

    /// Collects retired deltas and calls `close(epoch, deltas)` for every complete epoch that
    /// has deltas (passing only the deltas that counted something), in epoch order. The deltas go back to their workers afterwards.
    pub fn collect(&mut self, mut close: impl FnMut(u64, &[&CoreDelta])) {
        // Step 1 before step 2 (module doc): read the acks, then drain.
        let complete_below = self
            .workers
            .iter()
            .map(|w| w.acked())
            .min()
            .unwrap_or(FINISHED);
        for (i, w) in self.workers.iter().enumerate() {
            let waiting = &mut self.waiting;
            w.drain_retired(|d| waiting.push((i, d)));
        }
        loop {
            let next = self
                .waiting
                .iter()
                .map(|(_, d)| d.epoch)
                .filter(|&e| e < complete_below)
                .min();
            let Some(epoch) = next else { break };
            let mut batch: Vec<(usize, Box<CoreDelta>)> = Vec::new();
            let mut i = 0;
            while i < self.waiting.len() {
                if self.waiting[i].1.epoch == epoch {
                    batch.push(self.waiting.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            // Merged in worker order, whatever order they were drained in: space-saving merges
            // settle ties by order, so the approximate tail of a report would differ run to run.
            batch.sort_by_key(|(w, _)| *w);
            // Untouched deltas (a worker that only saw the epoch go by) still close the
            // second: an idle second is a second with zero requests.
            let touched: Vec<&CoreDelta> = batch
                .iter()
                .map(|(_, d)| &**d)
                .filter(|d| d.touched)
                .collect();
            // Epoch 0 untouched is the delta every worker starts with, before any input.
            if epoch != 0 || !touched.is_empty() {
                close(epoch, &touched);
            }
            for (w, d) in batch {
                self.workers[w].give_back(d);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // small test numbers
mod tests {
    //! What a worker counts off the frame path (held segments given up as a second begins or
    //! at the end, segments another worker handed on) reaches the aggregator even in a second
    //! in which the worker took no frame of its own: live, the epoch follows the wall clock,
    //! and the end of a capture usually comes seconds after its last frame.

    use std::net::{IpAddr, Ipv4Addr};

    use linewatch_parser::wire::{decode_frame, LinkType};
    use linewatch_testkit::frame::{Frame, TcpFlags, TcpRepr};

    use super::*;
    use crate::counters::Counter;
    use crate::cross::crossings;
    use crate::owner::segment_owner;
    use crate::reorder::HOLE_TIMEOUT_NS;
    use crate::worker::WorkerConfig;

    /// A second of wall time, as live capture numbers it.
    const S: u64 = 1_800_000_000;
    const REQUEST: &[u8] = b"GET /held HTTP/1.1\r\nHost: a\r\n\r\n";
    const ISN: u32 = 1_000;

    /// The `i`th request of the client on `port`: one segment each, back to back.
    fn request(port: u16, i: u32) -> Vec<u8> {
        Frame::tcp(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            TcpRepr {
                src_port: port,
                dst_port: 80,
                seq: ISN + i * REQUEST.len() as u32,
                ack: 1,
                flags: TcpFlags::ACK | TcpFlags::PSH,
                payload: REQUEST,
                ..TcpRepr::default()
            },
        )
        .to_vec()
    }

    fn feed(worker: &mut Worker, ts: u64, frame: &[u8]) {
        worker.process_frame(ts, LinkType::Ethernet, frame, frame.len() as u32);
    }

    /// Workers with their epochs, and the aggregator's collector over them.
    fn pipeline(workers: usize) -> (Vec<Worker>, Vec<WorkerEpoch>, EpochCollector) {
        let shared: Vec<Arc<EpochShared>> = (0..workers).map(|_| EpochShared::new()).collect();
        let epochs = shared
            .iter()
            .map(|s| WorkerEpoch::new(Arc::clone(s), std::thread::current()))
            .collect();
        let workers = (0..workers)
            .map(|_| Worker::new(&WorkerConfig::default(), CoreDelta::new(0)))
            .collect();
        (workers, epochs, EpochCollector::new(shared))
    }

    /// `counter` summed over every delta the collector merges now.
    fn merged(collector: &mut EpochCollector, counter: Counter) -> u64 {
        let mut sum = 0;
        collector.collect(|_, deltas| sum += deltas.iter().map(|d| d.get(counter)).sum::<u64>());
        sum
    }

    /// Requests 0 and 2 of one connection in second `S`, request 1 missed by the capture:
    /// request 2 is held past the hole.
    fn hole(worker: &mut Worker, epoch: &mut WorkerEpoch) {
        epoch.enter(worker, S);
        feed(worker, S * NS_PER_SEC, &request(40_000, 0));
        feed(worker, S * NS_PER_SEC + 1_000, &request(40_000, 2));
        assert_eq!(worker.holes(), 1);
        assert_eq!(worker.delta().get(Counter::Requests), 1);
    }

    #[test]
    fn what_the_end_gives_up_is_counted_after_a_second_without_frames() {
        let (mut workers, mut epochs, mut collector) = pipeline(1);
        let (worker, epoch) = (&mut workers[0], &mut epochs[0]);
        hole(worker, epoch);
        // Live: the clock moves the epoch on while nothing comes, then the capture is stopped.
        epoch.enter(worker, S + 1);
        epoch.finish(worker);
        assert_eq!(worker.holes(), 0);
        // One request counted as it came, the held one as the end gave the hole up.
        let mut requests = 0;
        let mut gaps = 0;
        collector.collect(|_, deltas| {
            for d in deltas {
                requests += d.get(Counter::Requests);
                gaps += d.get(Counter::SequenceGaps);
            }
        });
        assert_eq!((requests, gaps), (2, 1));
    }

    #[test]
    fn a_hole_given_up_in_a_quiet_second_is_counted_in_it() {
        let (mut workers, mut epochs, mut collector) = pipeline(1);
        let (worker, epoch) = (&mut workers[0], &mut epochs[0]);
        hole(worker, epoch);
        let quiet = HOLE_TIMEOUT_NS / NS_PER_SEC + 1;
        let mut requests = 0;
        for s in 1..=quiet {
            epoch.enter(worker, S + s);
            // The aggregator's part, once a second (it hands the spares back).
            requests += merged(&mut collector, Counter::Requests);
        }
        assert_eq!(worker.holes(), 0, "given up after {quiet} quiet seconds");
        // Merged with its second, not kept back in a delta nobody merges.
        assert_eq!(requests, 2);
        epoch.finish(worker);
        assert_eq!(merged(&mut collector, Counter::Requests), 0);
    }

    #[test]
    fn what_another_worker_hands_on_is_counted_by_a_worker_without_frames() {
        let (mut workers, mut epochs, mut collector) = pipeline(2);
        for (w, c) in workers.iter_mut().zip(crossings(2)) {
            w.set_crossing(c);
        }
        // A connection owned by worker 1, whose frame reaches worker 0's queue.
        let port = (40_000..)
            .find(|&p| {
                let f = request(p, 0);
                segment_owner(&decode_frame(LinkType::Ethernet, &f).unwrap(), 2) == 1
            })
            .unwrap();
        for (w, e) in workers.iter_mut().zip(&mut epochs) {
            e.enter(w, S);
        }
        feed(&mut workers[0], S * NS_PER_SEC, &request(port, 0));
        assert_eq!(workers[1].take_crossed_at(S * NS_PER_SEC), 1);
        assert_eq!(workers[1].delta().get(Counter::Requests), 1);
        for (w, e) in workers.iter_mut().zip(&mut epochs) {
            e.enter(w, S + 1);
        }
        assert_eq!(merged(&mut collector, Counter::Requests), 1);
        for (w, e) in workers.iter_mut().zip(&mut epochs) {
            w.finish_crossing();
            e.finish(w);
        }
        assert_eq!(merged(&mut collector, Counter::Requests), 0);
    }
}

//! The epoch protocol under concurrency: several workers count as fast as they can while
//! their epochs advance at different paces; the collector runs on its own thread. Every count
//! must arrive exactly once, in the epoch it was made in, and every epoch must close once, in
//! order, only after every worker has left it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread;

use linewatch_engine::counters::{CoreDelta, Counter};
use linewatch_engine::epoch::{EpochCollector, EpochShared, WorkerEpoch};
use linewatch_engine::worker::{Worker, WorkerConfig};

const WORKERS: usize = 4;
const EPOCHS: u64 = 2_000;

/// A tiny deterministic generator, so a failure can be replayed.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn no_count_is_lost_or_counted_twice() {
    let shared: Vec<Arc<EpochShared>> = (0..WORKERS).map(|_| EpochShared::new()).collect();
    let mut collector = EpochCollector::new(shared.clone());

    let aggregator = thread::spawn(move || {
        let mut closed: Vec<(u64, u64)> = Vec::new();
        loop {
            let done = collector.all_finished();
            collector.collect(|epoch, deltas| {
                let sum = deltas.iter().map(|d| d.get(Counter::Requests)).sum();
                for d in deltas {
                    assert_eq!(d.epoch, epoch, "a delta of another epoch was handed in");
                }
                closed.push((epoch, sum));
            });
            if done {
                return closed;
            }
            thread::park_timeout(std::time::Duration::from_micros(200));
        }
    });
    let aggregator_thread = aggregator.thread().clone();

    let workers: Vec<_> = shared
        .into_iter()
        .enumerate()
        .map(|(i, shared)| {
            let handle = aggregator_thread.clone();
            thread::spawn(move || {
                let mut worker = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
                let mut epoch_end = WorkerEpoch::new(shared, handle);
                let mut truth: BTreeMap<u64, u64> = BTreeMap::new();
                let mut rng = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
                let mut epoch = 1;
                while epoch <= EPOCHS {
                    epoch_end.enter(&mut worker, epoch);
                    // A burst of counts, sometimes none (an idle worker still moves on).
                    let n = xorshift(&mut rng) % 50;
                    for _ in 0..n {
                        let d = worker.delta_mut();
                        d.touched = true;
                        d.add(Counter::Requests, 1);
                    }
                    *truth.entry(epoch).or_default() += n;
                    // Workers advance at different paces and sometimes skip epochs.
                    epoch += 1 + xorshift(&mut rng) % 3 * u64::from(i % 2 == 0);
                    if xorshift(&mut rng) % 64 == 0 {
                        thread::yield_now();
                    }
                }
                epoch_end.finish(&mut worker);
                truth
            })
        })
        .collect();

    let mut truth: BTreeMap<u64, u64> = BTreeMap::new();
    for w in workers {
        for (epoch, n) in w.join().expect("worker thread") {
            *truth.entry(epoch).or_default() += n;
        }
    }
    let closed = aggregator.join().expect("aggregator thread");

    for pair in closed.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "epochs closed out of order or twice: {pair:?}"
        );
    }
    let got: BTreeMap<u64, u64> = closed.into_iter().filter(|(_, n)| *n > 0).collect();
    let want: BTreeMap<u64, u64> = truth.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(
        got.values().sum::<u64>(),
        want.values().sum::<u64>(),
        "total counts differ"
    );
    assert_eq!(got, want, "per-epoch counts differ");
}

/// Deltas of one epoch reach `close` in worker order, however many epochs wait at once: the
/// heavy-hitter merges settle ties by order, so another order would change the approximate
/// tail of a report from run to run.
#[test]
fn an_epochs_deltas_are_merged_in_worker_order() {
    const SECONDS: u64 = 4;
    let shared: Vec<Arc<EpochShared>> = (0..3).map(|_| EpochShared::new()).collect();
    let mut collector = EpochCollector::new(shared.clone());
    for (i, s) in shared.iter().enumerate() {
        let mut worker = Worker::new(&WorkerConfig::default(), CoreDelta::new(1));
        let mut epoch = WorkerEpoch::new(Arc::clone(s), thread::current());
        // Every worker retires several epochs before the collector drains any.
        for second in 1..=SECONDS {
            epoch.enter(&mut worker, second);
            let delta = worker.delta_mut();
            delta.touched = true;
            delta.add(Counter::Requests, i as u64 + 1);
        }
        epoch.finish(&mut worker);
    }
    let mut order = Vec::new();
    collector.collect(|epoch, deltas| {
        order.push((
            epoch,
            deltas
                .iter()
                .map(|d| d.get(Counter::Requests))
                .collect::<Vec<_>>(),
        ));
    });
    let expected: Vec<(u64, Vec<u64>)> = (1..=SECONDS).map(|s| (s, vec![1, 2, 3])).collect();
    assert_eq!(order, expected);
}

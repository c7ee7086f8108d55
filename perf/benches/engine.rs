//! The engine's per-packet cost: Ethernet frame to counted, through one worker (decode, flow
//! table, sequence check, HTTP parse, per-core counters and heavy-hitter tables), measured
//! beside a baseline that only decodes the frame and runs httparse on payloads that start
//! like a message (no flows, no counting): what a stateless tool would do at the least.
//!
//! `cargo bench -p linewatch-perf --bench engine`; results in perf/README.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use linewatch_engine::counters::{CoreDelta, Counter};
use linewatch_engine::worker::{Worker, WorkerConfig};
use linewatch_parser::wire::decode_frame;
use linewatch_perf::frames::{ack_heavy_mix, bench_mix, Frame, LINK};

/// Requests in the measured set: about 6,000 frames, a few hundred KiB, kept in cache as
/// they would be in a worker's batch.
const REQUESTS: u32 = 2_000;

fn engine(c: &mut Criterion) {
    measure(c, "engine", &bench_mix(REQUESTS));
    // The smallest frames: eight of nine are 64-byte pure ACKs.
    measure(c, "engine_ack_heavy", &ack_heavy_mix(REQUESTS));
}

/// The worker and the baseline over `frames`, side by side in one group.
fn measure(c: &mut Criterion, name: &str, frames: &[Frame]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.bench_function("linewatch worker", |b| {
        // A fresh worker each time: replaying the same frames into one worker would see
        // retransmissions. Building it is setup, not measured.
        b.iter_batched_ref(
            || Worker::new(&WorkerConfig::default(), CoreDelta::new(1)),
            |worker| {
                for f in frames {
                    worker.process_frame(f.ts_ns, LINK, black_box(&f.data), f.wire_len);
                }
                assert_eq!(worker.delta().get(Counter::Requests), u64::from(REQUESTS));
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("baseline decode + httparse", |b| {
        b.iter(|| black_box(baseline(black_box(frames))));
    });
    group.finish();
}

/// Decode every frame and parse payloads that start a request or response with httparse.
fn baseline(frames: &[Frame]) -> (u64, u64) {
    let (mut requests, mut responses) = (0, 0);
    for f in frames {
        let Ok(seg) = decode_frame(LINK, &f.data) else {
            continue;
        };
        if seg.payload.is_empty() {
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; 16];
        if seg.payload.starts_with(b"HTTP/") {
            let mut resp = httparse::Response::new(&mut headers);
            if matches!(resp.parse(seg.payload), Ok(httparse::Status::Complete(_))) {
                responses += 1;
            }
        } else {
            let mut req = httparse::Request::new(&mut headers);
            if matches!(req.parse(seg.payload), Ok(httparse::Status::Complete(_))) {
                requests += 1;
            }
        }
    }
    (requests, responses)
}

criterion_group!(benches, engine);
criterion_main!(benches);

//! Our HTTP head parser beside httparse, on the same inputs, in one run.
//!
//! The job compared is what linewatch needs from each request: method, target and Host (and
//! from each response: status code and Content-Length). httparse has to parse every header to
//! hand out Host, and the caller then has to look Host up among them: that is the real cost a
//! user of httparse pays for the same answer, so it is what is measured.
//!
//! The jobs and inputs are in `perf/src/lib.rs` (`jobs`), shared with the callgrind driver
//! `examples/parse_loop.rs`.
//!
//! Run: `cargo bench -p linewatch-perf --bench parse`. Results: `perf/README.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use linewatch_perf::jobs;

fn parse(c: &mut Criterion) {
    for (name, input, ours, theirs) in jobs::all() {
        let input = &input[..];
        // Both must find the same answer, or the comparison means nothing.
        assert_eq!(ours(input), theirs(input), "{name}: parsers disagree");
        assert_ne!(ours(input), 0, "{name}: nothing parsed");
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::new("linewatch", input.len()), input, |b, i| {
            b.iter(|| ours(black_box(i)))
        });
        group.bench_with_input(BenchmarkId::new("httparse", input.len()), input, |b, i| {
            b.iter(|| theirs(black_box(i)))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parse
}
criterion_main!(benches);

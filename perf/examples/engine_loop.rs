//! Drives one worker over the engine benchmark's frames `passes` times (a fresh worker per
//! pass), for instruction counts that do not depend on machine noise:
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/engine_loop 1
//! valgrind --tool=callgrind target/release/examples/engine_loop 3
//! valgrind --tool=callgrind target/release/examples/engine_loop 1 setup-only
//! valgrind --tool=callgrind target/release/examples/engine_loop 3 setup-only
//! ```
//!
//! ((3 − 1) − (3 setup-only − 1 setup-only)) / (2 × frames) = instructions per frame, with
//! building the workers (their tables are allocated and initialised once) taken out.

use std::hint::black_box;

use linewatch_engine::counters::{CoreDelta, Counter};
use linewatch_engine::worker::{Worker, WorkerConfig};
use linewatch_perf::frames::{bench_mix, LINK};

fn main() {
    let passes: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let process = std::env::args().nth(2).as_deref() != Some("setup-only");
    let frames = bench_mix(2_000);
    let mut requests = 0;
    for _ in 0..passes {
        let mut worker = Worker::new(&WorkerConfig::default(), CoreDelta::new(1));
        for f in frames.iter().filter(|_| process) {
            worker.process_frame(f.ts_ns, LINK, black_box(&f.data), f.wire_len);
        }
        requests += worker.delta().get(Counter::Requests);
    }
    eprintln!(
        "{} frames per pass, {passes} passes, {requests} requests",
        frames.len()
    );
}

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
//!
//! A further argument `ack-heavy` runs [`ack_heavy_mix`] instead: the same requests with eight
//! minimum-size pure ACKs after every segment with data. The frame count per pass is printed.

use std::hint::black_box;

use linewatch_engine::counters::{CoreDelta, Counter};
use linewatch_engine::worker::{Worker, WorkerConfig};
use linewatch_perf::frames::{ack_heavy_mix, bench_mix, LINK};

fn main() {
    let passes: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let words: Vec<String> = std::env::args().skip(2).collect();
    let process = !words.iter().any(|w| w == "setup-only");
    let frames = if words.iter().any(|w| w == "ack-heavy") {
        ack_heavy_mix(2_000)
    } else {
        bench_mix(2_000)
    };
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

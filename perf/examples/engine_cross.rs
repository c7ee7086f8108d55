//! Drives two workers joined by a crossing (`linewatch_engine::cross`) over the engine
//! benchmark's frames, the way queues that split connections do: every client frame reaches
//! worker 0, every server frame worker 1, and each takes what the other handed it after every
//! 256 frames (a live batch). Instruction counts, as `engine_loop`'s:
//!
//! ```text
//! valgrind --tool=callgrind target/release/examples/engine_cross 1
//! valgrind --tool=callgrind target/release/examples/engine_cross 3
//! valgrind --tool=callgrind target/release/examples/engine_cross 1 setup-only
//! valgrind --tool=callgrind target/release/examples/engine_cross 3 setup-only
//! ```
//!
//! ((3 − 1) − (3 setup-only − 1 setup-only)) / (2 × frames) = instructions per frame of the
//! crossing fallback, both workers together; minus `engine_loop`'s figure, its cost. (A binary
//! of its own: a second worker call site in `engine_loop` would change what the compiler
//! inlines there, and so the figure that example exists to measure.)

use std::hint::black_box;

use linewatch_engine::counters::{CoreDelta, Counter};
use linewatch_engine::cross::crossings;
use linewatch_engine::worker::{Worker, WorkerConfig};
use linewatch_perf::frames::{bench_mix, LINK};

/// Frames per live batch (`live::run::BATCH`).
const BATCH: usize = 256;

/// The server's port in the benchmark's frames.
const SERVER_PORT: u16 = 80;

fn main() {
    let passes: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let process = std::env::args().nth(2).as_deref() != Some("setup-only");
    let frames = bench_mix(2_000);
    // Which worker each frame reaches when the queues split connections.
    let queue: Vec<usize> = frames
        .iter()
        .map(|f| usize::from(source_port(&f.data) == Some(SERVER_PORT)))
        .collect();
    let (mut requests, mut crossed, mut held, mut expired, mut unmatched, mut responses) =
        (0, 0, 0, 0, 0, 0);
    for _ in 0..passes {
        let mut workers: Vec<Worker> = crossings(2)
            .into_iter()
            .map(|c| {
                let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(1));
                w.set_crossing(c);
                w
            })
            .collect();
        let mut now = 0;
        for (i, f) in frames.iter().enumerate().filter(|_| process) {
            now = f.ts_ns;
            workers[queue[i]].process_frame(f.ts_ns, LINK, black_box(&f.data), f.wire_len);
            if i % BATCH == BATCH - 1 {
                for w in &mut workers {
                    w.take_crossed_at(now);
                }
            }
        }
        for w in &mut workers {
            w.take_crossed_at(now);
            w.finish_crossing();
            requests += w.delta().get(Counter::Requests);
            responses += w.delta().get(Counter::Responses);
            held += w.delta().get(Counter::HeldForPeer);
            expired += w.delta().get(Counter::PeerWaitExpired);
            unmatched += w.delta().get(Counter::UnmatchedResponses);
            crossed += w.cross_figures().map_or(0, |c| c.sent);
        }
    }
    eprintln!(
        "{} frames per pass, {passes} passes: {requests} requests, {responses} responses \
         ({unmatched} unmatched), {crossed} segments crossed, {held} held for their peer \
         ({expired} past their wait)",
        frames.len()
    );
}

/// The TCP source port of an Ethernet + IPv4 frame.
fn source_port(frame: &[u8]) -> Option<u16> {
    const ETHERNET: usize = 14;
    let ihl = usize::from(frame.get(ETHERNET)? & 0x0f) * 4;
    let at = ETHERNET + ihl;
    Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
}

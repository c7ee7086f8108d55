//! Runs one benchmark job many times, for instruction counts under callgrind, which are stable
//! on a shared machine where wall times are not:
//!
//! `valgrind --tool=callgrind target/release/examples/parse_loop browser_get linewatch 10000`
//!
//! Jobs and inputs are the criterion benchmark's (`perf::jobs`).

use std::hint::black_box;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "browser_get".to_owned());
    let parser = args.next().unwrap_or_else(|| "linewatch".to_owned());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let Some((_, input, ours, theirs)) = linewatch_perf::jobs::all()
        .into_iter()
        .find(|j| j.0 == name)
    else {
        eprintln!(
            "unknown input {name:?}: short_get, browser_get, pipelined_9_gets, response_head"
        );
        std::process::exit(2);
    };
    let job = match parser.as_str() {
        "linewatch" => ours,
        "httparse" => theirs,
        other => {
            eprintln!("unknown parser {other:?}: linewatch or httparse");
            std::process::exit(2);
        }
    };
    let mut found = 0usize;
    for _ in 0..rounds {
        found = found.wrapping_add(job(black_box(&input)));
    }
    black_box(found);
}

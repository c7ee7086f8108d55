//! Parses one benchmark input many times, for instruction counts under callgrind:
//! `valgrind --tool=callgrind target/release/examples/parse_loop browser_get 10000`.
//! Instruction counts are stable on a shared machine where wall times are not.

use std::hint::black_box;

use linewatch_parser::http::{self, Status};
use linewatch_perf::{pipelined_segment, BROWSER_GET, RESPONSE_HEAD, SHORT_GET};

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "browser_get".to_owned());
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let segment = pipelined_segment();
    let input: &[u8] = match name.as_str() {
        "short_get" => SHORT_GET,
        "browser_get" => BROWSER_GET,
        "pipelined_9_gets" => &segment,
        "response_head" => RESPONSE_HEAD,
        other => {
            eprintln!(
                "unknown input {other:?}: short_get, browser_get, pipelined_9_gets, response_head"
            );
            std::process::exit(2);
        }
    };
    let mut found = 0usize;
    for _ in 0..rounds {
        let input = black_box(input);
        if name == "response_head" {
            if let Ok(Status::Complete(r)) = http::parse_response(input) {
                found += usize::from(r.line.code);
            }
        } else {
            for (_, r) in http::requests(input) {
                found += r.line.target.len() + r.host.map_or(0, <[u8]>::len);
            }
        }
    }
    black_box(found);
}

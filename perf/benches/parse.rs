//! Our HTTP head parser beside httparse, on the same inputs, in one run.
//!
//! The job compared is what linewatch needs from each request: method, target and Host (and
//! from each response: status code and Content-Length). httparse has to parse every header to
//! hand out Host, and the caller then has to look Host up among them: that is the real cost a
//! user of httparse pays for the same answer, so it is what is measured.
//!
//! Run: `cargo bench -p linewatch-perf --bench parse`. Results: `perf/README.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use linewatch_parser::http::{self, Status};
use linewatch_perf::{pipelined_segment, BROWSER_GET, RESPONSE_HEAD, SHORT_GET};

/// One parser doing the job on one input; the result is summed so it cannot be optimised away.
type Job = fn(&[u8]) -> usize;

/// httparse needs a header array up front; 64 covers any browser request.
const MAX_HEADERS: usize = 64;

/// What both parsers must produce for a request: lengths of method, target and Host, summed so
/// the work cannot be optimised away.
fn ours_request(buf: &[u8]) -> usize {
    match http::parse_request(buf) {
        Ok(Status::Complete(r)) => {
            r.line.method.len() + r.line.target.len() + r.host.map_or(0, <[u8]>::len)
        }
        _ => 0,
    }
}

fn httparse_request(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let host = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("host"));
            req.method.map_or(0, str::len)
                + req.path.map_or(0, str::len)
                + host.map_or(0, |h| h.value.len())
        }
        _ => 0,
    }
}

/// Every request of a pipelined segment, one after another.
fn ours_pipelined(buf: &[u8]) -> usize {
    http::requests(buf)
        .map(|(_, r)| r.line.method.len() + r.line.target.len() + r.host.map_or(0, <[u8]>::len))
        .sum()
}

fn httparse_pipelined(mut buf: &[u8]) -> usize {
    let mut sum = 0;
    while !buf.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = req.parse(buf) else {
            break;
        };
        let host = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"));
        sum += req.method.map_or(0, str::len)
            + req.path.map_or(0, str::len)
            + host.map_or(0, |h| h.value.len());
        // No bodies in this segment (GETs without Content-Length).
        buf = &buf[len..];
    }
    sum
}

/// Status code and Content-Length: what linewatch needs from a response head.
fn ours_response(buf: &[u8]) -> usize {
    match http::parse_response(buf) {
        Ok(Status::Complete(r)) => {
            let length = match r.body {
                http::Body::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
                _ => 0,
            };
            usize::from(r.line.code) + length
        }
        _ => 0,
    }
}

fn httparse_response(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {
            let length = res
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| {
                    std::str::from_utf8(h.value)
                        .ok()?
                        .trim()
                        .parse::<usize>()
                        .ok()
                })
                .unwrap_or(0);
            usize::from(res.code.unwrap_or(0)) + length
        }
        _ => 0,
    }
}

fn parse(c: &mut Criterion) {
    let segment = pipelined_segment();
    let inputs: [(&str, &[u8], Job, Job); 4] = [
        ("short_get", SHORT_GET, ours_request, httparse_request),
        ("browser_get", BROWSER_GET, ours_request, httparse_request),
        (
            "pipelined_9_gets",
            &segment,
            ours_pipelined,
            httparse_pipelined,
        ),
        (
            "response_head",
            RESPONSE_HEAD,
            ours_response,
            httparse_response,
        ),
    ];
    for (name, input, ours, theirs) in inputs {
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

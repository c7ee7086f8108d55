//! Hostile input: the parser's "never panic, never read out of bounds" promise, tested.
//!
//! Seeds are every frame of the capture corpus, their TCP payloads, llhttp's request and
//! response cases, and a few frames and heads built here (so the test still means something
//! without the corpus). Each iteration mutates a seed with a fixed-seed PRNG (bit flips, special
//! bytes, cuts, inserted/deleted/duplicated runs, splices, extreme length fields) or makes a
//! random buffer, then runs `decode_frame` under every link type and every HTTP entry point,
//! checking that every returned slice borrows the input, every length and offset stays inside
//! it (a segment's trailer is the end of the frame, after its payload, and holds a send stamp
//! exactly when the frame ends in one), and that cutting a buffer short never changes a
//! complete parse.
//!
//! `LINEWATCH_HOSTILE_ITERATIONS=N` runs longer. A failure prints the input in hex.

#![allow(clippy::print_stdout)]

mod common;

use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};

use linewatch_parser::http::{
    parse_request, parse_response, requests, responses, ChunkProgress, ChunkedBody, Message,
    Messages, Outcome, Request, Response, Status, Version,
};
use linewatch_parser::wire::{
    decode_frame, write_send_stamp, LinkType, SEND_STAMP_LEN, SEND_STAMP_MAGIC,
};
use linewatch_parser::HttpError;
use linewatch_testkit::corpus;

/// About 3.5 s in the debug profile on two cores, seeds included: room for a slower machine
/// within the 10 s budget.
const DEFAULT_ITERATIONS: u64 = 1_000_000;
/// Fewer mutated inputs than this proves too little: the test refuses to pass on it.
const MIN_MUTATED_INPUTS: u64 = 200_000;
/// Fixed so every run, and every failure, is reproducible.
const PRNG_SEED: u64 = 0x6c69_6e65_7761_7463;
/// PRNG streams, one per thread; fixed rather than the core count so that the inputs do not
/// depend on the machine.
const WORKERS: u64 = 2;
/// One iteration in this many feeds a fully random buffer instead of a mutated seed.
const RANDOM_EVERY: u64 = 16;
/// Random buffers are 0 to this many bytes: past the largest Ethernet frame.
const MAX_RANDOM_LEN: usize = 2000;
/// Mutations stacked on one seed: 1 to this many.
const MAX_STACKED: usize = 4;
/// Longest run inserted, deleted or duplicated by one mutation.
const MAX_RUN: usize = 64;
/// Kinds of mutation in [`mutate`].
const MUTATIONS: usize = 8;
/// Cut points per input for the prefix and split checks. Unmutated heads get every cut instead
/// (the sweep is quadratic, so only for the seeds).
const SAMPLED_CUTS: usize = 6;
/// Bytes that steer the parsers: delimiters, controls, the edges of the ASCII range.
const INTERESTING: [u8; 8] = [0x00, 0xff, b'\r', b'\n', b' ', b':', 0x7f, 0x80];
/// Written over two bytes to hit length fields (IPv4 total length, IPv6 payload length, ...).
const EXTREME_U16: [u16; 2] = [0xffff, 0x0000];
/// Sections that are static, not borrowed: the root of an empty path, and `*`.
const STATIC_SECTIONS: [&[u8]; 2] = [b"/", b"*"];
const LINK_TYPES: [LinkType; 8] = {
    use LinkType::{Ethernet, Ipv4, Ipv6, LinuxSll, LinuxSll2, Loop, Null, RawIp};
    [Ethernet, RawIp, Ipv4, Ipv6, LinuxSll, LinuxSll2, Null, Loop]
};

/// splitmix64 (constants from its reference implementation): tiny, and enough to steer
/// mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let z = (self.0 ^ (self.0 >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// In `0..n` (`0` when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        let n = n.max(1) as u64;
        usize::try_from(self.next() % n).expect("below a usize")
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One mutation of `buf`; a splice takes its tail from `other`.
fn mutate(rng: &mut Rng, buf: &mut Vec<u8>, other: &[u8]) {
    let len = buf.len();
    let at = rng.below(len + 1);
    let run = (rng.below(MAX_RUN) + 1).min(len - at);
    match rng.below(MUTATIONS) {
        0 if at < len => buf[at] ^= 1 << rng.below(u8::BITS as usize),
        1 if at < len => buf[at] = *rng.pick(&INTERESTING),
        2 => buf.truncate(at),
        3 => {
            let (fill, random) = (*rng.pick(&INTERESTING), rng.below(2) == 0);
            let mut byte = || if random { rng.byte() } else { fill };
            let bytes: Vec<u8> = (0..=run).map(|_| byte()).collect();
            buf.splice(at..at, bytes);
        }
        4 => drop(buf.drain(at..at + run)),
        5 => {
            buf.truncate(at);
            buf.extend_from_slice(&other[rng.below(other.len() + 1)..]);
        }
        6 => {
            let region = buf[at..at + run].to_vec();
            let to = rng.below(len + 1);
            buf.splice(to..to, region);
        }
        7 if len >= 2 => {
            let at = rng.below(len - 1);
            buf[at..at + 2].copy_from_slice(&rng.pick(&EXTREME_U16).to_be_bytes());
        }
        _ => buf.push(rng.byte()),
    }
}

/// Asserts that `part` lies within `buf` by address, not merely that it equals some bytes.
fn assert_inside(buf: &[u8], part: &[u8], what: &str) {
    let (start, at) = (buf.as_ptr() as usize, part.as_ptr() as usize);
    let inside = start <= at && at + part.len() <= start + buf.len();
    assert!(inside, "{what} {part:?} is not borrowed from the input");
}

/// `trailer` is the end of `frame` and starts at or after the end of `payload`.
fn assert_trailer(frame: &[u8], payload: &[u8], trailer: &[u8]) {
    assert_inside(frame, trailer, "trailer");
    let (start, at) = (frame.as_ptr() as usize, trailer.as_ptr() as usize);
    if !trailer.is_empty() {
        assert_eq!(
            at + trailer.len(),
            start + frame.len(),
            "trailer ends the frame"
        );
        assert!(
            payload.as_ptr() as usize + payload.len() <= at,
            "trailer {trailer:?} overlaps the payload"
        );
    }
}

/// Where a head ends read the plain way, line by line: after the first empty line (CRLF or LF)
/// that follows the start line. Any run of CR and LF bytes before the start line is skipped
/// first, as nginx does (`"\r\r\n"` there is no start line). An oracle for the parser's
/// word-at-a-time line scan.
fn naive_head_end(buf: &[u8]) -> Option<usize> {
    let start = buf.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let mut lines = buf[start..].split_inclusive(|&b| b == b'\n');
    let mut end = start + lines.next()?.len();
    for line in lines {
        end += line.len();
        if line == b"\r\n" || line == b"\n" {
            return Some(end);
        }
    }
    None
}

fn check_request(buf: &[u8], r: &Request<'_>) {
    let head = buf.get(..r.head_len).expect("head_len within the input");
    // HTTP/0.9 has no header block: its head ends with the request line.
    if r.line.version != Version::Http09 {
        assert_eq!(Some(r.head_len), naive_head_end(buf), "request head_len");
    }
    assert_inside(head, r.line.method, "method");
    assert_inside(head, r.line.target, "target");
    let section = r.line.section();
    if !STATIC_SECTIONS.contains(&section) {
        assert_inside(head, section, "section");
    }
    let fields = [r.line.authority(), r.host, r.user_agent];
    for (field, what) in fields.into_iter().zip(["authority", "host", "user_agent"]) {
        assert_inside(head, field.unwrap_or(head), what);
    }
}

fn check_response(buf: &[u8], r: &Response<'_>) {
    let head = buf.get(..r.head_len).expect("head_len within the input");
    assert_eq!(Some(r.head_len), naive_head_end(buf), "response head_len");
    assert_inside(head, r.line.reason, "reason");
}

/// Runs a message iterator to exhaustion: offsets rise and stay inside, and so does the
/// outcome's.
fn walk<'a, M: Message<'a>>(buf: &'a [u8], mut it: Messages<'a, M>, check: fn(&[u8], &M)) {
    let mut previous = None;
    for (offset, message) in it.by_ref() {
        let rising = previous < Some(offset) && offset < buf.len();
        assert!(rising, "message at {offset} after {previous:?}");
        check(&buf[offset..], &message);
        previous = Some(offset);
    }
    match it.outcome().expect("an exhausted iterator has an outcome") {
        Outcome::Partial { offset } | Outcome::Error { offset, .. } => {
            assert!(offset <= buf.len(), "outcome at {offset}");
        }
        _ => {}
    }
}

/// `advance`, checking that `Done` stays inside the piece.
fn advance(state: &mut ChunkedBody, piece: &[u8]) -> Result<ChunkProgress, HttpError> {
    let progress = state.advance(piece);
    if let Ok(ChunkProgress::Done(n)) = progress {
        assert!(n <= piece.len(), "chunked Done({n}) past the piece");
    }
    progress
}

/// A chunked body fed in two pieces must end exactly where it ends when fed whole.
fn check_chunked(buf: &[u8], cuts: &[usize]) {
    let whole = advance(&mut ChunkedBody::new(), buf);
    for &cut in cuts {
        let (first, second) = buf.split_at(cut.min(buf.len()));
        let mut state = ChunkedBody::new();
        let split = match advance(&mut state, first) {
            Ok(ChunkProgress::NeedMore) => match advance(&mut state, second) {
                Ok(ChunkProgress::Done(n)) => Ok(ChunkProgress::Done(first.len() + n)),
                other => other,
            },
            other => other,
        };
        assert_eq!(split, whole, "chunked body split at {cut}");
    }
}

type Parse<'a, M> = fn(&'a [u8]) -> Result<Status<M>, HttpError>;

/// Cutting a buffer short never changes a complete head, and never turns a head that is (or may
/// still become) valid into an error.
fn check_prefixes<'a, M>(buf: &'a [u8], cuts: &[usize], parse: Parse<'a, M>)
where
    M: Message<'a> + PartialEq + Debug,
{
    let whole = parse(buf);
    for &cut in cuts {
        let prefix = parse(&buf[..cut]);
        match (&whole, &prefix) {
            (_, Ok(Status::Complete(_))) => assert_eq!(prefix, whole, "complete at cut {cut}"),
            (Ok(Status::Complete(w)), _) if cut >= w.head_len() => {
                assert_eq!(prefix, whole, "whole head before cut {cut}");
            }
            (Ok(_), Err(_)) => {
                panic!("cut at {cut}: {prefix:?}, whole: {whole:?}");
            }
            _ => {}
        }
    }
}

/// Every HTTP entry point on `buf`, with `cuts` for the prefix and split checks.
fn check_http(buf: &[u8], cuts: &[usize]) {
    // The body after a complete head is where a chunked body would start.
    if let Ok(Status::Complete(r)) = parse_request(buf) {
        check_request(buf, &r);
        check_chunked(&buf[r.head_len..], cuts);
    }
    if let Ok(Status::Complete(r)) = parse_response(buf) {
        check_response(buf, &r);
        check_chunked(&buf[r.head_len..], cuts);
    }
    walk(buf, requests(buf), check_request);
    walk(buf, responses(buf), check_response);
    check_chunked(buf, cuts);
    check_prefixes(buf, cuts, parse_request);
    check_prefixes(buf, cuts, parse_response);
}

/// Inputs exercised: frames (each under every link type), HTTP buffers (the TCP payloads of
/// those frames included), and how many frames and buffers were mutated or random.
#[derive(Default)]
struct Counts {
    frames: u64,
    http: u64,
    mutated: u64,
}

/// Runs `f` on `input`; if it panics, panics again with the input in hex so it can be replayed.
fn guarded(kind: &str, input: &[u8], f: impl FnOnce()) {
    if panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
        panic!("failing {kind} input (hex): {}", hex(input));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run_http(rng: &mut Rng, counts: &mut Counts, buf: &[u8], every_cut: bool) {
    let len = buf.len();
    let cuts: Vec<usize> = if every_cut {
        (0..=len).collect()
    } else {
        (0..SAMPLED_CUTS).map(|_| rng.below(len + 1)).collect()
    };
    check_http(buf, &cuts);
    counts.http += 1;
}

fn run_frame(rng: &mut Rng, counts: &mut Counts, frame: &[u8]) {
    guarded("frame", frame, || {
        for link in LINK_TYPES {
            if let Ok(segment) = decode_frame(link, frame) {
                assert_inside(frame, segment.payload, "payload");
                assert_trailer(frame, segment.payload, segment.trailer);
                // A stamp is the last 16 bytes of the trailer (and so of the frame).
                let stamped = segment.trailer.len() >= SEND_STAMP_LEN
                    && frame[frame.len() - SEND_STAMP_LEN..].starts_with(&SEND_STAMP_MAGIC);
                assert_eq!(segment.send_stamp().is_some(), stamped, "send stamp");
                run_http(rng, counts, segment.payload, false);
            }
        }
    });
    counts.frames += 1;
}

/// One worker's share of the iterations, on its own PRNG stream; frames and heads alternate.
fn fuzz(worker: u64, iterations: u64, frames: &[Vec<u8>], heads: &[Vec<u8>]) -> Counts {
    let (mut rng, mut counts) = (Rng(PRNG_SEED ^ (worker + 1)), Counts::default());
    for i in 0..iterations {
        let pool = if i % 2 == 0 { frames } else { heads };
        // Pairs of iterations, so that frames and heads both get random buffers.
        let buf = if (i / 2) % RANDOM_EVERY == 0 {
            let len = rng.below(MAX_RANDOM_LEN + 1);
            (0..len).map(|_| rng.byte()).collect()
        } else {
            let mut buf = rng.pick(pool).clone();
            for _ in 0..=rng.below(MAX_STACKED) {
                let other = rng.pick(pool);
                mutate(&mut rng, &mut buf, other);
            }
            buf
        };
        if i % 2 == 0 {
            run_frame(&mut rng, &mut counts, &buf);
        } else {
            guarded("http", &buf, || {
                run_http(&mut rng, &mut counts, &buf, false)
            });
        }
        counts.mutated += 1;
    }
    counts
}

/// `frame` with a send stamp appended.
fn stamped(mut frame: Vec<u8>) -> Vec<u8> {
    frame.extend_from_slice(&[0; SEND_STAMP_LEN]);
    let at = frame.len() - SEND_STAMP_LEN;
    write_send_stamp(&mut frame[at..], 0x1122_3344_5566_7788);
    frame
}

/// Frames and heads that exist without the corpus: every link type, VLAN/QinQ, IPv4, IPv6,
/// send stamps.
fn builtin_seeds() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    // 49152 → 80, seq 1, ack 2, data offset 5 words, PSH|ACK, window/checksum/urgent 0.
    const TCP: [u8; 20] = [
        0xc0, 0, 0, 80, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0, 0, 0, 0, 0, 0,
    ];
    // Version 4, IHL 5, total length (filled in), DF, TTL 64, TCP, 192.0.2.1 → 192.0.2.2.
    const V4: [u8; 20] = [
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
    ];
    // Version 6, payload length (filled in), next header TCP, hop limit 64, ::1 → ::2.
    const V6: [u8; 40] = {
        let mut h = [0; 40];
        (h[0], h[6], h[7], h[23], h[39]) = (0x60, 6, 64, 1, 2);
        h
    };
    const ETH: [u8; 12] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    // 802.1ad tag (VID 1), then 802.1Q tag (VID 2), then IPv4.
    const QINQ: [u8; 10] = [0x88, 0xa8, 0, 1, 0x81, 0, 0, 2, 0x08, 0x00];
    let heads: Vec<Vec<u8>> = [
        &b"GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\n\r\n"[..],
        b"\r\nPOST http://u:p@h:80/x/y HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /\r\n",
        b"PUT /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        b"CONNECT h:443 HTTP/1.1\r\n\r\nOPTIONS * HTTP/1.0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 301\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHTTP/1.1 204 \r\n\r\n",
    ]
    .map(<[u8]>::to_vec)
    .into();
    let with_len = |mut packet: Vec<u8>, at: usize, len: usize| {
        let len = u16::try_from(len).expect("a small packet").to_be_bytes();
        packet[at..at + 2].copy_from_slice(&len);
        packet
    };
    // IPv4 counts its header in the total length, IPv6 leaves it out of the payload length.
    let v4 = |h: &[u8]| with_len([&V4, &TCP, h].concat(), 2, V4.len() + TCP.len() + h.len());
    let v6 = |h: &[u8]| with_len([&V6[..], &TCP, h].concat(), 4, TCP.len() + h.len());
    let frames = vec![
        [&ETH[..], &[0x08, 0x00], &v4(&heads[0])].concat(),
        [&ETH[..], &[0x81, 0x00, 0, 10, 0x86, 0xdd], &v6(&heads[4])].concat(),
        [&ETH[..], &QINQ, &v4(&heads[1])].concat(),
        v6(&heads[5]),
        [&[0; 14][..], &[0x08, 0x00], &v4(&heads[2])].concat(),
        [&[0x86, 0xdd][..], &[0; 18], &v6(&heads[3])].concat(),
        [&2u32.to_le_bytes()[..], &v4(&heads[3])].concat(),
        [&24u32.to_be_bytes()[..], &v6(&heads[0])].concat(),
        // Send stamps after the IP packet, one behind padding.
        stamped([&ETH[..], &[0x08, 0x00], &v4(&heads[1]), &[0; 3]].concat()),
        stamped([&ETH[..], &QINQ[..8], &[0x86, 0xdd], &v6(&heads[2])].concat()),
    ];
    // A seed that does not decode would only exercise the error paths.
    let decodes = |f: &Vec<u8>| LINK_TYPES.iter().any(|&l| decode_frame(l, f).is_ok());
    assert!(frames.iter().all(decodes), "built-in frame");
    (frames, heads)
}

#[test]
fn hostile_inputs_never_break_the_parser() {
    let (mut frames, mut heads) = builtin_seeds();
    let mut payloads = Vec::new();
    // Without the corpus this fails under CI and runs on the built-in seeds elsewhere.
    if let Some(pcaps) = corpus::file("pcaps") {
        let (captured, carried) = common::corpus_frames(&pcaps);
        assert!(!carried.is_empty(), "no TCP payload in the captures");
        frames.extend(captured);
        payloads = carried;
    }
    for file in ["llhttp_requests.jsonl", "llhttp_responses.jsonl"] {
        let cases = common::llhttp_cases(file).unwrap_or_default();
        heads.extend(cases.into_iter().map(|case| case.input));
    }
    let iterations = std::env::var("LINEWATCH_HOSTILE_ITERATIONS")
        .map(|n| n.parse().expect("LINEWATCH_HOSTILE_ITERATIONS: a number"))
        .unwrap_or(DEFAULT_ITERATIONS);

    // The seeds themselves, unmutated, heads with every prefix checked. The captures' TCP
    // payloads then join the heads, deduplicated (the captures repeat requests a lot).
    let (mut rng, mut seeds) = (Rng(PRNG_SEED), Counts::default());
    for frame in &frames {
        run_frame(&mut rng, &mut seeds, frame);
    }
    for head in &heads {
        guarded("http", head, || run_http(&mut rng, &mut seeds, head, true));
    }
    payloads.retain(|p| !p.is_empty());
    payloads.sort_unstable();
    payloads.dedup();
    heads.extend(payloads);

    let share = iterations.div_ceil(WORKERS);
    let (frames, heads) = (&frames, &heads);
    let counts: Vec<Counts> = std::thread::scope(|s| {
        let spawn = |w| s.spawn(move || fuzz(w, share, frames, heads));
        let workers: Vec<_> = (0..WORKERS).map(spawn).collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a worker"))
            .collect()
    });
    let sum = |count: fn(&Counts) -> u64| counts.iter().chain([&seeds]).map(count).sum::<u64>();
    let (frames, http, mutated) = (sum(|c| c.frames), sum(|c| c.http), sum(|c| c.mutated));
    let total = frames + http;
    println!("hostile: {total} inputs ({frames} frames, {http} HTTP buffers; {mutated} mutated)");
    println!("hostile: 0 panics, no invariant broken");
    assert!(mutated >= MIN_MUTATED_INPUTS, "{mutated} mutated inputs");
}

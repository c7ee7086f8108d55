//! The worker's tests: frames through a worker, counted as the contract says.

use std::net::{IpAddr, Ipv4Addr};

use linewatch_testkit::frame::{Frame, TcpFlags as Flags, TcpRepr};

use super::*;

const T0: u64 = 1_700_000_000_000_000_000;
const HEAD: &[u8] = b"GET /x HTTP/1.1\r\nHost: a";

/// Feeds connection `i`'s segment to `w`: the client's (to port 80) or, `from_server`,
/// the server's.
fn feed(w: &mut Worker, i: u16, from_server: bool, tcp: TcpRepr<'_>) {
    feed_at(w, T0 + u64::from(i), i, from_server, tcp);
}

/// [`feed`] at packet time `ts`.
fn feed_at(w: &mut Worker, ts: u64, i: u16, from_server: bool, tcp: TcpRepr<'_>) {
    let client = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let server = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let (ports, ends) = if from_server {
        ((80, 10_000 + i), (server, client))
    } else {
        ((10_000 + i, 80), (client, server))
    };
    let tcp = TcpRepr {
        src_port: ports.0,
        dst_port: ports.1,
        ..tcp
    };
    let frame = Frame::tcp(ends.0, ends.1, tcp).to_vec();
    let len = u32::try_from(frame.len()).unwrap();
    w.process_frame(ts, LinkType::Ethernet, &frame, len);
}

/// Feeds the client segment of connection `i` at stream offset `at` to `w`.
fn send(w: &mut Worker, i: u16, at: u32, payload: &[u8]) {
    let flags = Flags::PSH | Flags::ACK;
    feed(
        w,
        i,
        false,
        TcpRepr {
            seq: 1 + at,
            flags,
            payload,
            ..TcpRepr::default()
        },
    );
}

/// Feeds connection `i`'s SYN: the client's stream offset 0 is then sequence number 1.
fn syn(w: &mut Worker, i: u16) {
    feed(
        w,
        i,
        false,
        TcpRepr {
            seq: 0,
            flags: Flags::SYN,
            ..TcpRepr::default()
        },
    );
}

fn sections(w: &Worker) -> Vec<(Vec<u8>, u64)> {
    let mut all: Vec<_> = w
        .delta()
        .tally
        .sections
        .top(64)
        .into_iter()
        .map(|e| (e.key.to_vec(), e.count))
        .collect();
    all.sort();
    all
}

/// `--dst`: a connection to a watched server is counted; to another one, only its segments
/// as unmonitored (no request, no new connection, nothing for the scan detector).
#[test]
fn only_the_watched_servers_connections_count() {
    for (watched, counted) in [
        ("10.0.0.2", true),
        ("10.0.0.0/30", true),
        ("10.0.0.9", false),
    ] {
        let config = WorkerConfig {
            dst: DstFilter::nets(&[watched.parse().unwrap()]),
            ..WorkerConfig::default()
        };
        let mut w = Worker::new(&config, CoreDelta::new(0));
        syn(&mut w, 0);
        send(&mut w, 0, 0, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
        let d = w.delta();
        let n = u64::from(counted);
        assert_eq!(d.get(Counter::Packets), 2, "{watched}");
        assert_eq!(d.get(Counter::Requests), n, "{watched}");
        assert_eq!(d.get(Counter::NewConnections), n, "{watched}");
        assert_eq!(d.syns.len() as u64, n, "{watched}");
        assert_eq!(d.get(Counter::Unmonitored), 2 - 2 * n, "{watched}");
    }
}

/// A flow evicted while it holds segments past holes gives them up first: what it held is
/// parsed and each hole counted as a gap, as at the end of a capture.
#[test]
fn an_evicted_flows_held_segments_are_given_up_first() {
    let config = WorkerConfig {
        flow_capacity: 1,
        ..WorkerConfig::default()
    };
    let mut w = Worker::new(&config, CoreDelta::new(0));
    syn(&mut w, 0);
    let head = b"GET /held HTTP/1.1\r\n\r\n";
    let n = u32::try_from(head.len()).unwrap();
    // Two holes: bytes 0..10 and n + 10..n + 20 never come.
    send(&mut w, 0, 10, head);
    send(&mut w, 0, n + 20, head);
    assert_eq!(w.holes(), 1);
    syn(&mut w, 1);
    let d = w.delta();
    assert_eq!(d.get(Counter::FlowsEvicted), 1);
    assert_eq!(d.get(Counter::SequenceGaps), 2, "one gap per hole");
    assert_eq!(d.get(Counter::Requests), 2, "the held requests are parsed");
    assert_eq!(w.holes(), 0, "the evicted flow's slot is free");
}

#[test]
fn out_of_order_segments_are_parsed_once_the_hole_fills() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    // A request's second half first.
    let head = b"GET /halves HTTP/1.1\r\nHost: a\r\n\r\n";
    syn(&mut w, 0);
    syn(&mut w, 1);
    send(&mut w, 0, 10, &head[10..]);
    assert_eq!(w.delta().get(Counter::Requests), 0);
    assert_eq!(w.holes(), 1);
    send(&mut w, 0, 0, &head[..10]);
    // Two pipelined requests, the second's segment first, and a third one in order after.
    let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
    let n = u32::try_from(one.len()).unwrap();
    send(&mut w, 1, n, two);
    send(&mut w, 1, 0, one);
    send(&mut w, 1, 2 * n, b"GET /three HTTP/1.1\r\n\r\n");
    let d = w.delta();
    assert_eq!(d.get(Counter::Requests), 4);
    assert_eq!(d.get(Counter::Reordered), 2);
    assert_eq!(d.get(Counter::SequenceGaps), 0);
    assert_eq!(w.holes(), 0, "a filled hole frees its slot");
    assert_eq!(
        sections(&w),
        [
            (b"/halves".to_vec(), 1),
            (b"/one".to_vec(), 1),
            (b"/three".to_vec(), 1),
            (b"/two".to_vec(), 1)
        ]
    );
}

#[test]
fn held_overlaps_deliver_what_linux_delivers() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn(&mut w, 1);
    // Held: "/aaa ..." at 4, then "/bbbbb ..." at 4 (same start, longer: replaces it).
    send(&mut w, 0, 4, b"/aaa HTTP/1.1\r\n\r\n");
    send(&mut w, 0, 4, b"/bbbbb HTTP/1.1\r\n\r\n");
    // Already held whole: dropped.
    send(&mut w, 0, 5, b"ccc");
    send(&mut w, 0, 0, b"GET ");
    // In order: a retransmission with other bytes keeps what was delivered.
    let first = b"GET /first HTTP/1.1\r\n";
    send(&mut w, 1, 0, first);
    send(&mut w, 1, 0, b"GET /other HTTP/1.1\r\n\r\n");
    assert_eq!(w.delta().get(Counter::ReorderOverlaps), 2);
    assert_eq!(w.delta().get(Counter::Requests), 2);
    assert_eq!(
        sections(&w),
        [(b"/bbbbb".to_vec(), 1), (b"/first".to_vec(), 1)]
    );
}

#[test]
fn a_hole_the_peer_acknowledged_or_nothing_filled_is_given_up() {
    use crate::reorder::{ACK_GRACE_NS, HOLE_TIMEOUT_NS};
    let ack_at = |w: &mut Worker, ts: u64, acked: u32| {
        let flags = Flags::ACK;
        let tcp = TcpRepr {
            seq: 1,
            ack: 1 + acked,
            flags,
            ..TcpRepr::default()
        };
        feed_at(w, ts, 0, true, tcp);
    };
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn(&mut w, 1);
    // Bytes 0..50 not captured yet, the server's ACK past them captured first: a copy
    // path may deliver the data after the ACK, so the hole waits.
    send(&mut w, 0, 50, b"GET /acked HTTP/1.1\r\n\r\n");
    ack_at(&mut w, T0, 0);
    ack_at(&mut w, T0 + ACK_GRACE_NS / 2, 50);
    assert_eq!(
        w.delta().get(Counter::Requests),
        0,
        "within the grace, the hole waits"
    );
    // Past the grace, the ACK is evidence: the capture missed them.
    ack_at(&mut w, T0 + ACK_GRACE_NS, 50);
    assert_eq!(w.delta().get(Counter::Requests), 1);
    assert_eq!(w.delta().get(Counter::SequenceGaps), 1);
    // Nothing more for ten seconds of packet time.
    send(&mut w, 1, 50, b"GET /quiet HTTP/1.1\r\n\r\n");
    w.expire_holes(T0 + 1 + HOLE_TIMEOUT_NS / 2);
    assert_eq!(w.delta().get(Counter::Requests), 1);
    w.expire_holes(T0 + 1 + HOLE_TIMEOUT_NS);
    assert_eq!(w.delta().get(Counter::Requests), 2);
    assert_eq!(w.holes(), 0);
}

#[test]
fn requests_from_a_given_up_hole_do_not_take_later_responses() {
    use crate::reorder::ACK_GRACE_NS;
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn_ack(&mut w, 0);
    let (r1, r2, r3) = (
        b"GET /r1 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /r2 HTTP/1.1\r\n\r\n",
        b"GET /r3 HTTP/1.1\r\n\r\n",
    );
    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let len = |b: &[u8]| u32::try_from(b.len()).unwrap();
    let (n1, n2, n3, nr) = (len(r1), len(r2), len(r3), len(ok));
    // The capture misses the end of r1's head; r2 is held behind the hole.
    send(&mut w, 0, 0, &r1[..20]);
    send(&mut w, 0, n1, r2);
    // The server got everything: it answers both, and acknowledges both.
    let answer = |w: &mut Worker, k: u32, ts: u64, ack: u32| {
        let flags = Flags::PSH | Flags::ACK;
        let tcp = TcpRepr {
            seq: 1 + k * nr,
            ack: 1 + ack,
            flags,
            payload: ok,
            ..TcpRepr::default()
        };
        feed_at(w, ts, 0, true, tcp);
    };
    answer(&mut w, 0, T0 + 10, n1 + n2);
    answer(&mut w, 1, T0 + ACK_GRACE_NS, n1 + n2);
    assert_eq!(
        w.delta().get(Counter::Requests),
        2,
        "r1 at its request line, and r2"
    );
    assert_eq!(w.delta().get(Counter::UnmatchedResponses), 2);
    // r3 and its answer pair with each other, not with the late r1.
    let flags = Flags::PSH | Flags::ACK;
    let tcp = TcpRepr {
        seq: 1 + n1 + n2,
        ack: 1 + 2 * nr,
        flags,
        payload: r3,
        ..TcpRepr::default()
    };
    feed_at(&mut w, T0 + ACK_GRACE_NS + 1_000, 0, false, tcp);
    answer(&mut w, 2, T0 + ACK_GRACE_NS + 5_000, n1 + n2 + n3);
    let d = w.delta();
    assert_eq!(d.get(Counter::Requests), 3);
    assert_eq!(d.get(Counter::UnmatchedResponses), 2);
    assert_eq!(d.tally.response_latency_us.len(), 1);
    assert_eq!(
        d.tally.response_latency_us.histogram().max(),
        4,
        "r3's own 4 us"
    );
}

#[test]
fn after_a_given_up_hole_joined_segments_resynchronise_where_they_began() {
    use crate::reorder::ACK_GRACE_NS;
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn_ack(&mut w, 0);
    let body = |n: usize| {
        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n").into_bytes();
        r.resize(r.len() + n, b'b');
        r
    };
    // Responses in segments: r1 whole; r2's head and body start (lost by the capture), r2's
    // body end; r3 and r4 whole. The three after the hole are held and joined.
    let (r1, r2, r3, r4) = (body(10), body(400), body(20), body(30));
    let cut = 100;
    let mut at = 0u32;
    let mut segments = Vec::new();
    for piece in [&r1[..], &r2[..cut], &r2[cut..], &r3[..], &r4[..]] {
        segments.push((at, piece.to_vec()));
        at += u32::try_from(piece.len()).unwrap();
    }
    let flags = Flags::PSH | Flags::ACK;
    for (i, (seq, payload)) in segments.iter().enumerate() {
        if i != 1 {
            let tcp = TcpRepr {
                seq: 1 + seq,
                ack: 1,
                flags,
                payload,
                ..TcpRepr::default()
            };
            feed(&mut w, 0, true, tcp);
        }
    }
    assert_eq!(w.delta().get(Counter::Responses), 1);
    // The client acknowledges everything, long enough after.
    let tcp = TcpRepr {
        seq: 1,
        ack: 1 + at,
        flags: Flags::ACK,
        ..TcpRepr::default()
    };
    feed_at(&mut w, T0 + ACK_GRACE_NS, 0, false, tcp);
    let d = w.delta();
    assert_eq!(d.get(Counter::Responses), 3, "r1, r3, r4");
    assert_eq!(d.get(Counter::SequenceGaps), 1);
}

#[test]
fn an_ack_captured_before_its_data_loses_nothing() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn_ack(&mut w, 0);
    let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
    let n = u32::try_from(one.len()).unwrap();
    // A SPAN copy: the second request, the server's ACK of both, then the first.
    send(&mut w, 0, n, two);
    let tcp = TcpRepr {
        seq: 1,
        ack: 1 + 2 * n,
        flags: Flags::ACK,
        ..TcpRepr::default()
    };
    feed(&mut w, 0, true, tcp);
    // And with nothing held: the ACK of a whole request before the request.
    let tcp = TcpRepr {
        seq: 1,
        ack: 1 + 3 * n,
        flags: Flags::ACK,
        ..TcpRepr::default()
    };
    feed(&mut w, 0, true, tcp);
    send(&mut w, 0, 0, one);
    send(&mut w, 0, 2 * n, b"GET /thr HTTP/1.1\r\n\r\n");
    let d = w.delta();
    assert_eq!(d.get(Counter::Requests), 3);
    assert_eq!(d.get(Counter::SequenceGaps), 0);
    assert_eq!(d.get(Counter::Retransmitted), 0);
}

/// Any order of a stream's segments, with retransmitted copies and overlapping resends of
/// the same bytes, gives every request once (a deterministic pseudo-random walk).
#[test]
fn every_order_of_a_streams_segments_counts_every_request_once() {
    let mut stream = Vec::new();
    for i in 0..12 {
        stream.extend(format!("GET /r{i} HTTP/1.1\r\nHost: h\r\nX-Pad: {i:0>40}\r\n\r\n").bytes());
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |bound: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap() % bound
    };
    for round in 0..200u16 {
        let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
        syn(&mut w, round);
        // Cut points, then segments (some resent, some widened over their neighbours).
        let mut cuts = vec![0, stream.len()];
        for _ in 0..20 {
            cuts.push(1 + next(stream.len() - 1));
        }
        cuts.sort_unstable();
        cuts.dedup();
        let mut segments: Vec<(usize, usize)> = cuts.windows(2).map(|c| (c[0], c[1])).collect();
        for _ in 0..6 {
            let (a, b) = segments[next(segments.len())];
            let widened = (a.saturating_sub(next(30)), (b + next(30)).min(stream.len()));
            segments.push(if next(2) == 0 { (a, b) } else { widened });
        }
        for i in (1..segments.len()).rev() {
            segments.swap(i, next(i + 1));
        }
        for (a, b) in segments {
            send(&mut w, round, u32::try_from(a).unwrap(), &stream[a..b]);
        }
        let d = w.delta();
        assert_eq!(d.get(Counter::Requests), 12, "round {round}");
        assert_eq!(d.get(Counter::SequenceGaps), 0, "round {round}");
        assert_eq!(w.holes(), 0, "round {round}");
        assert_eq!(sections(&w).len(), 12, "round {round}");
    }
}

/// `count` pipelined GETs, and the stream cut into 1,448-byte segments.
fn pipelined(count: usize) -> (Vec<u8>, Vec<(u32, Vec<u8>)>) {
    let mut stream = Vec::new();
    for i in 0..count {
        stream.extend(format!("GET /p{i} HTTP/1.1\r\nHost: h\r\n\r\n").bytes());
    }
    let segments = stream
        .chunks(1_448)
        .enumerate()
        .map(|(i, c)| (u32::try_from(i * 1_448).unwrap(), c.to_vec()))
        .collect();
    (stream, segments)
}

#[test]
fn the_window_holds_64_kib_past_the_next_expected_byte() {
    // 60 KB behind a lost first segment, resent last.
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    let (_, segments) = pipelined(2_000);
    for (at, bytes) in segments.iter().skip(1) {
        send(&mut w, 0, *at, bytes);
    }
    send(&mut w, 0, segments[0].0, &segments[0].1);
    assert_eq!(w.delta().get(Counter::Requests), 2_000);
    assert_eq!(w.delta().get(Counter::SequenceGaps), 0);
    // 70 KB with three holes: the window follows the next expected byte as they fill.
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    let (_, segments) = pipelined(2_300);
    let late = [0usize, 14, 30];
    for (i, (at, bytes)) in segments.iter().enumerate() {
        if !late.contains(&i) {
            send(&mut w, 0, *at, bytes);
        }
        if i == 29 {
            send(&mut w, 0, segments[0].0, &segments[0].1);
        }
    }
    for i in [14, 30] {
        send(&mut w, 0, segments[i].0, &segments[i].1);
    }
    assert_eq!(w.delta().get(Counter::Requests), 2_300);
    assert_eq!(w.delta().get(Counter::SequenceGaps), 0);
    assert_eq!(w.holes(), 0);
}

#[test]
fn a_request_in_one_byte_segments_last_byte_first_is_counted() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    let request = b"GET /one-byte-at-a-time/backwards HTTP/1.1\r\nHost: evasion.example\r\nX-Pad: 0123456789012345678901234567890123456789\r\n\r\n";
    assert!(request.len() > 90);
    for i in (0..request.len()).rev() {
        send(&mut w, 0, u32::try_from(i).unwrap(), &request[i..=i]);
    }
    assert_eq!(w.delta().get(Counter::Requests), 1);
    assert_eq!(sections(&w), [(b"/one-byte-at-a-time".to_vec(), 1)]);
}

/// The server's SYN-ACK for connection `i`: the server's direction is then known.
fn syn_ack(w: &mut Worker, i: u16) {
    let flags = Flags::SYN | Flags::ACK;
    feed(
        w,
        i,
        true,
        TcpRepr {
            seq: 0,
            ack: 1,
            flags,
            ..TcpRepr::default()
        },
    );
}

#[test]
fn a_forged_far_ahead_segment_does_not_move_the_stream() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn_ack(&mut w, 0);
    send(&mut w, 0, 1_000_000_000, b"x");
    let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
    send(&mut w, 0, 0, one);
    send(&mut w, 0, u32::try_from(one.len()).unwrap(), two);
    let d = w.delta();
    assert_eq!(d.get(Counter::OutOfWindow), 1);
    assert_eq!(d.get(Counter::Requests), 2);
    assert_eq!(d.get(Counter::Retransmitted), 0);
}

#[test]
fn a_fin_ahead_of_a_hole_waits_for_the_bytes_before_it() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    syn_ack(&mut w, 0);
    // The server has closed its side.
    feed(
        &mut w,
        0,
        true,
        TcpRepr {
            seq: 1,
            ack: 1,
            flags: Flags::FIN | Flags::ACK,
            ..TcpRepr::default()
        },
    );
    let (one, two) = (b"GET /one HTTP/1.1\r\n\r\n", b"GET /two HTTP/1.1\r\n\r\n");
    let at = u32::try_from(one.len()).unwrap();
    let flags = Flags::PSH | Flags::ACK | Flags::FIN;
    feed(
        &mut w,
        0,
        false,
        TcpRepr {
            seq: 1 + at,
            ack: 2,
            flags,
            payload: two,
            ..TcpRepr::default()
        },
    );
    send(&mut w, 0, 0, one);
    let d = w.delta();
    assert_eq!(d.get(Counter::Requests), 2);
    assert_eq!(d.get(Counter::SequenceGaps), 0);
}

#[test]
fn data_on_a_syn_and_a_late_duplicate_syn_are_read_as_linux_reads_them() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    // TCP Fast Open: the first request rides on the SYN (sequence number 0, data from 1).
    let first = b"GET /tfo HTTP/1.1\r\n\r\n";
    feed(
        &mut w,
        0,
        false,
        TcpRepr {
            seq: 0,
            flags: Flags::SYN,
            payload: first,
            ..TcpRepr::default()
        },
    );
    let at = u32::try_from(first.len()).unwrap();
    let after = b"GET /after HTTP/1.1\r\n\r\n";
    send(&mut w, 0, at, after);
    // The SYN again, late: it changes nothing.
    syn(&mut w, 0);
    let at = at + u32::try_from(after.len()).unwrap();
    send(&mut w, 0, at, b"GET /late HTTP/1.1\r\n\r\n");
    let d = w.delta();
    assert_eq!(d.get(Counter::Requests), 3, "{:?}", sections(&w));
    assert_eq!(d.get(Counter::Reordered), 0);
    assert_eq!(d.get(Counter::Retransmitted), 0);
    assert_eq!(
        sections(&w),
        [
            (b"/after".to_vec(), 1),
            (b"/late".to_vec(), 1),
            (b"/tfo".to_vec(), 1)
        ]
    );
}

#[test]
fn a_hole_inside_a_body_is_held_and_the_body_skipped_exactly() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    syn(&mut w, 0);
    let head = b"POST /up HTTP/1.1\r\nContent-Length: 100\r\n\r\n";
    let n = u32::try_from(head.len()).unwrap();
    send(&mut w, 0, 0, head);
    // Body bytes 50..100 and the next request arrive before body bytes 0..50.
    send(&mut w, 0, n + 50, &[b'b'; 50]);
    send(&mut w, 0, n + 100, b"GET /next HTTP/1.1\r\n\r\n");
    assert_eq!(w.holes(), 1);
    send(&mut w, 0, n, &[b'a'; 50]);
    let d = w.delta();
    assert_eq!(d.get(Counter::Requests), 2);
    assert_eq!(d.get(Counter::Reordered), 2);
    assert_eq!(d.get(Counter::SequenceGaps), 0);
    assert_eq!(d.get(Counter::Retransmitted), 0);
    assert_eq!(w.holes(), 0);
    assert_eq!(sections(&w), [(b"/next".to_vec(), 1), (b"/up".to_vec(), 1)]);
}

#[test]
fn heads_up_to_32_kib_are_carried_and_longer_ones_counted_at_their_request_line() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    let head = |section: &str, cookie: usize| {
        let mut h = format!("GET /{section} HTTP/1.1\r\nHost: {section}.example\r\n").into_bytes();
        h.extend(b"Cookie: ");
        h.extend(std::iter::repeat_n(b'c', cookie));
        h.extend(b"\r\n\r\n");
        h
    };
    // 20 KiB and 40 KiB heads in 1,400-byte segments; then a request after each.
    for (i, (section, cookie)) in [("fits", 20_000), ("long", 40_000)].into_iter().enumerate() {
        let i = u16::try_from(i).unwrap();
        syn(&mut w, i);
        let mut bytes = head(section, cookie);
        bytes.extend(b"GET /after HTTP/1.1\r\n\r\n");
        for (n, chunk) in bytes.chunks(1_400).enumerate() {
            send(&mut w, i, u32::try_from(n * 1_400).unwrap(), chunk);
        }
    }
    // A 40 KiB head in one (offloaded) segment, cut before its end.
    syn(&mut w, 2);
    let whole = head("one", 40_000);
    send(&mut w, 2, 0, &whole[..whole.len() - 100]);
    let d = w.delta();
    assert_eq!(d.get(Counter::CarryOverflow), 2);
    assert_eq!(d.get(Counter::IncompleteHeads), 2);
    assert_eq!(
        sections(&w),
        [
            (b"/after".to_vec(), 1),
            (b"/fits".to_vec(), 1),
            (b"/long".to_vec(), 1),
            (b"/one".to_vec(), 1)
        ]
    );
    let hosts = w.delta().tally.hosts.top(8);
    assert!(hosts.iter().any(|e| e.key == b"long.example"));
}

#[test]
fn stalled_holes_cannot_starve_new_ones() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    let slots = u16::try_from(crate::reorder::HOLD_SLOTS).unwrap();
    // Every slot taken by a hole that never fills.
    for i in 0..=slots {
        syn(&mut w, i);
    }
    for i in 0..slots {
        send(&mut w, i, 100, b"x");
    }
    // A live flow's reordered request still goes through.
    let head = b"GET /live HTTP/1.1\r\n\r\n";
    send(&mut w, slots, 5, &head[5..]);
    send(&mut w, slots, 0, &head[..5]);
    assert_eq!(w.delta().get(Counter::ReorderReclaimed), 1);
    assert_eq!(w.delta().get(Counter::Requests), 1);
    assert_eq!(sections(&w), [(b"/live".to_vec(), 1)]);
}

#[test]
fn a_new_cut_head_reclaims_the_least_recently_active_ones_slot() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    let slots = u16::try_from(CARRY_SLOTS).unwrap();
    let head_len = u32::try_from(HEAD.len()).unwrap();
    // Every slot holds a cut head, connection 0's the oldest.
    for i in 0..slots {
        send(&mut w, i, 0, HEAD);
    }
    // Connection 0's head goes on (still cut): connection 1's is now the oldest.
    send(&mut w, 0, head_len, b"bc");
    // A new cut head takes connection 1's slot.
    send(&mut w, slots, 0, HEAD);
    assert_eq!(w.delta().get(Counter::CarryReclaimed), 1);
    assert_eq!(w.delta().get(Counter::CarryOverflow), 0);
    // Connection 1 resynchronises: the rest of its dropped head is not a request.
    send(&mut w, 1, head_len, b"\r\n\r\n");
    assert_eq!(w.delta().get(Counter::Requests), 0);
    // The others' heads were kept: they complete and are counted.
    send(&mut w, 0, head_len + 2, b"\r\n\r\n");
    send(&mut w, 2, head_len, b"\r\n\r\n");
    send(&mut w, slots, head_len, b"\r\n\r\n");
    assert_eq!(w.delta().get(Counter::Requests), 3);
    assert_eq!(w.delta().get(Counter::CarryReclaimed), 1);
}

#[test]
fn a_head_cut_by_the_capture_is_counted_at_its_request_line() {
    let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
    // Request line and Host seen, the rest of the head in a capture hole.
    let seen = b"GET /a/b HTTP/1.1\r\nHost: h.example\r\nUser-Agent: t\r\nAcc";
    send(&mut w, 0, 0, seen);
    send(
        &mut w,
        0,
        1_000,
        b"GET /next HTTP/1.1\r\nHost: h.example\r\n\r\n",
    );
    // Request line only.
    send(&mut w, 1, 0, b"GET /c HTTP/1.1\r\nHo");
    send(&mut w, 1, 1_000, b"ept: */*\r\n\r\n");
    // The request line itself cut: nothing to count.
    send(&mut w, 2, 0, b"GET /d HT");
    send(&mut w, 2, 1_000, b"TP/1.1\r\n\r\n");
    // The segments past the holes are held until the holes fill; the run ends first.
    assert_eq!(w.delta().get(Counter::Reordered), 3);
    assert_eq!(w.delta().get(Counter::Requests), 0);
    w.finish();
    let d = w.delta();
    assert_eq!(d.get(Counter::SequenceGaps), 3);
    assert_eq!(d.get(Counter::IncompleteHeads), 2);
    assert_eq!(d.get(Counter::Requests), 3);
    let hosts = d.tally.hosts.top(8);
    let count = |key: &[u8]| hosts.iter().find(|e| e.key == key).map(|e| e.count);
    assert_eq!(count(b"h.example"), Some(2));
    assert_eq!(count(ABSENT), Some(1));
    let sections = d.tally.sections.top(8);
    assert!(!sections.iter().any(|e| e.key == b"/d"));
}

//! The XDP program's `--dst` step, exactly: crafted frames through `BPF_PROG_TEST_RUN` (the
//! kernel runs the real program; nothing is attached or sent). With an empty `xsks_map` a frame
//! the program wants falls back to the "other" action and counts as `no_socket`, so the
//! counters tell "monitored" (`no_socket`) from "not monitored" (`other`).
//!
//! Needs root (loading BPF). With `CI` set the tests fail without it; otherwise they say so
//! and return.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use linewatch_engine::live::xdp::{
    CaptureOptions, RedirectPorts, XdpCounters, XdpProgram, DST_CAPACITY,
};
use linewatch_engine::scan::Cidr;
use linewatch_testkit::frame::{
    EthernetRepr, Frame, IpRepr, Ipv4Repr, Ipv6Repr, Tags, TcpFlags, TcpRepr, Transport, UdpRepr,
};
use linewatch_testkit::tools::need_root;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

/// Loading BPF needs root: a note and a skip without it, a failure when `CI` is set.
fn can_run() -> bool {
    need_root("xdp_dst", "loading BPF")
}

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The watched server.
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// Another server on the same link.
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
const V6_CLIENT: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// In the watched 2001:db8:1::/48.
const V6_SERVER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 5);
const V6_ELSEWHERE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// What `--dst 10.0.0.2,2001:db8:1::/48` gives the program.
fn watched() -> Vec<Cidr> {
    ["10.0.0.2", "2001:db8:1::/48"]
        .iter()
        .map(|n| n.parse().expect("network"))
        .collect()
}

fn tcp(src: u16, dst: u16, flags: TcpFlags) -> Transport<'static> {
    Transport::Tcp(TcpRepr {
        src_port: src,
        dst_port: dst,
        seq: 1,
        flags,
        payload: if flags.contains(TcpFlags::PSH) {
            b"GET / HTTP/1.1\r\n\r\n"
        } else {
            b""
        },
        ..TcpRepr::default()
    })
}

fn request(src: u16, dst: u16) -> Transport<'static> {
    tcp(src, dst, TcpFlags::PSH | TcpFlags::ACK)
}

fn ip(src: IpAddr, dst: IpAddr) -> IpRepr<'static> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => IpRepr::V4(Ipv4Repr::new(s, d)),
        (IpAddr::V6(s), IpAddr::V6(d)) => IpRepr::V6(Ipv6Repr::new(s, d)),
        _ => panic!("one family"),
    }
}

fn frame(src: impl Into<IpAddr>, dst: impl Into<IpAddr>, l4: Transport<'_>) -> Vec<u8> {
    Frame::new(ip(src.into(), dst.into()), l4).to_vec()
}

/// A request in three fragments (the ports in the first), identification `ident`.
fn fragments(
    src: impl Into<IpAddr>,
    dst: impl Into<IpAddr>,
    port: u16,
    ident: u32,
) -> Vec<Vec<u8>> {
    Frame::new(ip(src.into(), dst.into()), request(40000, port)).fragments(ident, &[8, 24])
}

/// Runs `frame` and returns (action, was it monitored): `Some(true)` for a monitored frame
/// (counted `no_socket`), `Some(false)` for one that is not (`other`), `None` for anything else.
fn run(program: &XdpProgram, frame: &[u8]) -> (u32, Option<bool>) {
    let before = program.counters();
    let action = program.test_run(frame).expect("BPF_PROG_TEST_RUN");
    let after = program.counters();
    let delta = XdpCounters {
        seen: after.seen - before.seen,
        other: after.other - before.other,
        no_socket: after.no_socket - before.no_socket,
        redirected: after.redirected - before.redirected,
        ..XdpCounters::default()
    };
    let monitored = match (delta.seen, delta.no_socket, delta.other, delta.redirected) {
        (1, 1, 0, 0) => Some(true),
        (1, 0, 1, 0) => Some(false),
        _ => None,
    };
    (action, monitored)
}

/// (what, frame, action, monitored) cases that did not come out as expected.
fn check(program: &XdpProgram, cases: &[(&str, Vec<u8>, u32, bool)]) -> Vec<String> {
    cases
        .iter()
        .filter_map(|(what, f, action, monitored)| {
            let got = run(program, f);
            (got != (*action, Some(*monitored)))
                .then(|| format!("{what}: got {got:?}, wanted ({action}, Some({monitored}))"))
        })
        .collect()
}

#[test]
fn only_the_watched_servers_traffic_is_taken_from_the_kernel() {
    if !can_run() {
        return;
    }
    // --interface --port 8080 --dst 10.0.0.2,2001:db8:1::/48.
    let program = XdpProgram::load(
        &RedirectPorts::List(vec![8080]),
        CaptureOptions {
            dst: watched(),
            ..CaptureOptions::default()
        },
    )
    .expect("load");
    let mapped = SERVER.to_ipv6_mapped();
    let tagged = Frame {
        ethernet: EthernetRepr {
            dst: [0x02, 0, 0, 0, 0, 1],
            src: [0x02, 0, 0, 0, 0, 2],
            tags: Tags::QinQ {
                outer: 100,
                inner: 101,
            },
        },
        ..Frame::new(ip(CLIENT.into(), SERVER.into()), request(40000, 8080))
    }
    .to_vec();
    let cases = vec![
        (
            "request to the server",
            frame(CLIENT, SERVER, request(40000, 8080)),
            XDP_PASS,
            true,
        ),
        (
            "its response",
            frame(SERVER, CLIENT, request(8080, 40000)),
            XDP_PASS,
            true,
        ),
        ("behind two VLAN tags", tagged, XDP_PASS, true),
        (
            "another server",
            frame(CLIENT, ELSEWHERE, request(40000, 8080)),
            XDP_PASS,
            false,
        ),
        (
            "its response",
            frame(ELSEWHERE, CLIENT, request(8080, 40000)),
            XDP_PASS,
            false,
        ),
        (
            "a SYN to another server",
            frame(CLIENT, ELSEWHERE, tcp(40000, 8080, TcpFlags::SYN)),
            XDP_PASS,
            false,
        ),
        (
            "the server, unmonitored port",
            frame(CLIENT, SERVER, request(40000, 22)),
            XDP_PASS,
            false,
        ),
        (
            "UDP to the server",
            frame(
                CLIENT,
                SERVER,
                Transport::Udp(UdpRepr {
                    src_port: 53,
                    dst_port: 8080,
                    payload: &[1, 2, 3, 4],
                }),
            ),
            XDP_PASS,
            false,
        ),
        (
            "IPv6 in the watched /48",
            frame(V6_CLIENT, V6_SERVER, request(40000, 8080)),
            XDP_PASS,
            true,
        ),
        (
            "its response",
            frame(V6_SERVER, V6_CLIENT, request(8080, 40000)),
            XDP_PASS,
            true,
        ),
        (
            "IPv6 outside it",
            frame(V6_CLIENT, V6_ELSEWHERE, request(40000, 8080)),
            XDP_PASS,
            false,
        ),
        (
            "the server's IPv4-mapped address",
            frame(V6_CLIENT, mapped, request(40000, 8080)),
            XDP_PASS,
            true,
        ),
    ];
    let mut failures = check(&program, &cases);

    // Every fragment carries its datagram's addresses: another server's datagram stays with
    // the kernel whole, in any order, and is not taken as "ahead"; the watched server's
    // follows the fragment policy as before.
    let pass = (XDP_PASS, Some(false));
    let take = (XDP_PASS, Some(true));
    for (what, frames, want) in [
        (
            "another server's fragments",
            fragments(CLIENT, ELSEWHERE, 8080, 1),
            pass,
        ),
        ("reversed", rev(fragments(CLIENT, ELSEWHERE, 8080, 2)), pass),
        (
            "IPv6, another server's",
            fragments(V6_CLIENT, V6_ELSEWHERE, 8080, 3),
            pass,
        ),
        (
            "the server's fragments",
            fragments(CLIENT, SERVER, 8080, 4),
            take,
        ),
        ("reversed", rev(fragments(CLIENT, SERVER, 8080, 5)), take),
        (
            "IPv6, the server's",
            fragments(V6_CLIENT, V6_SERVER, 8080, 6),
            take,
        ),
        (
            "the server's, unmonitored port",
            fragments(CLIENT, SERVER, 22, 7),
            pass,
        ),
    ] {
        for (i, f) in frames.iter().enumerate() {
            let got = run(&program, f);
            if got != want {
                failures.push(format!(
                    "{what}, fragment {i}: got {got:?}, wanted {want:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let counters = program.counters();
    assert_eq!(
        counters.fragments_ahead, 1,
        "only the watched server's reversed datagram came ahead of its first fragment"
    );
}

fn rev(mut frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames.reverse();
    frames
}

#[test]
fn on_the_mirror_veth_other_servers_are_dropped_syns_included() {
    if !can_run() {
        return;
    }
    // --mirror --dst ...: every port, every SYN for scan detection, the rest dropped.
    let program = XdpProgram::load(
        &RedirectPorts::Any,
        CaptureOptions {
            drop_others: true,
            all_syns: true,
            dst: watched(),
            ..CaptureOptions::default()
        },
    )
    .expect("load");
    let syn = |dst: Ipv4Addr| frame(CLIENT, dst, tcp(40000, 22, TcpFlags::SYN));
    let cases = vec![
        (
            "a request to the server",
            frame(CLIENT, SERVER, request(40000, 9000)),
            XDP_DROP,
            true,
        ),
        ("a SYN to the server", syn(SERVER), XDP_DROP, true),
        (
            "a request elsewhere",
            frame(CLIENT, ELSEWHERE, request(40000, 9000)),
            XDP_DROP,
            false,
        ),
        ("a SYN elsewhere", syn(ELSEWHERE), XDP_DROP, false),
    ];
    let mut failures = check(&program, &cases);
    for (i, f) in fragments(CLIENT, ELSEWHERE, 80, 9).iter().enumerate() {
        let got = run(&program, f);
        if got != (XDP_DROP, Some(false)) {
            failures.push(format!("fragment {i} elsewhere: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn without_dst_every_address_is_monitored() {
    if !can_run() {
        return;
    }
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), CaptureOptions::default())
        .expect("load");
    for dst in [SERVER, ELSEWHERE] {
        let f = frame(CLIENT, dst, request(40000, 8080));
        assert_eq!(run(&program, &f), (XDP_PASS, Some(true)), "{dst}");
    }
}

#[test]
fn the_tries_hold_their_capacity_and_no_more() {
    // Refused before anything is loaded: no root needed.
    let nth = |i: usize| Ipv4Addr::from(0x0a00_0000 + u32::try_from(i).expect("small"));
    let too_many: Vec<Cidr> = (0..=DST_CAPACITY)
        .map(|i| Cidr::host(IpAddr::V4(nth(i))))
        .collect();
    let e = XdpProgram::load(
        &RedirectPorts::Any,
        CaptureOptions {
            dst: too_many.clone(),
            ..CaptureOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("1025 watched networks (--dst)"), "{e}");
    if !can_run() {
        return;
    }
    // A full set of IPv4 networks fills dst_v4 and half of dst_v6 (their mapped prefixes), and
    // each of them is watched.
    let full = &too_many[..DST_CAPACITY];
    let program = XdpProgram::load(
        &RedirectPorts::Any,
        CaptureOptions {
            dst: full.to_vec(),
            ..CaptureOptions::default()
        },
    )
    .expect("a full set loads");
    let last = nth(DST_CAPACITY - 1);
    let beyond = nth(DST_CAPACITY);
    let f = frame(
        CLIENT.to_ipv6_mapped(),
        last.to_ipv6_mapped(),
        request(40000, 80),
    );
    assert_eq!(run(&program, &f), (XDP_PASS, Some(true)));
    let f = frame(Ipv4Addr::new(192, 0, 2, 1), beyond, request(40000, 80));
    assert_eq!(run(&program, &f), (XDP_PASS, Some(false)));
}

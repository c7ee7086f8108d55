//! The XDP program's decisions, exactly: crafted frames through `BPF_PROG_TEST_RUN` (the kernel
//! runs the real program; nothing is attached or sent). With an empty `xsks_map`, a frame the
//! program wants to redirect falls back to the "other" action and counts as `no_socket`, so the
//! counters tell a redirect decision (`no_socket`) from a pass-through (`other`).
//!
//! The blocklist cases load with `block` on and put the frames' source (10.0.0.1, 2001:db8::1)
//! in the blocklist: its pure SYNs are dropped and counted as `blocked`, the rest runs as before.
//!
//! Needs root (loading BPF). With `CI` set the tests fail without it; otherwise they say so
//! and return.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use linewatch_engine::live::blocklist::{Blocklist, BLOCKLIST_CAPACITY};
use linewatch_engine::live::xdp::{
    CaptureOptions, RedirectPorts, XdpCounters, XdpProgram, XdpRole,
};
use linewatch_testkit::frame::Ipv6Extension::{DestinationOptions, HopByHop, Routing};
use linewatch_testkit::frame::{
    EthernetRepr, Frame, IpRepr, Ipv4Repr, Ipv6Extension, Ipv6Repr, Tags, TcpFlags, TcpRepr,
    Transport, UdpRepr, ETHERNET_HEADER_LEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, IP_PROTOCOL_ICMP,
};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

use linewatch_testkit::tools::{in_ci, is_root};

fn can_run(test: &str) -> bool {
    if is_root() {
        return true;
    }
    assert!(
        !in_ci(),
        "{test}: needs root to load BPF; CI is set, so this fails instead of skipping"
    );
    eprintln!("note: {test} skipped: needs root to load BPF");
    false
}

/// Ethernet with `tags` VLAN tags: none, 802.1Q (VLAN 100), or QinQ (100 outside, 101 inside).
fn ethernet(tags: usize) -> EthernetRepr {
    let tags = match tags {
        0 => Tags::None,
        1 => Tags::Dot1Q(100),
        _ => Tags::QinQ {
            outer: 100,
            inner: 101,
        },
    };
    EthernetRepr {
        dst: [0x02, 0, 0, 0, 0, 1],
        src: [0x02, 0, 0, 0, 0, 2],
        tags,
    }
}

fn tcp(src: u16, dst: u16) -> Transport<'static> {
    tcp_flags(src, dst, PSH | ACK)
}

const SYN: TcpFlags = TcpFlags::SYN;
const RST: TcpFlags = TcpFlags::RST;
const PSH: TcpFlags = TcpFlags::PSH;
const ACK: TcpFlags = TcpFlags::ACK;

/// A TCP segment with these flags; a request line as payload when PSH is set.
fn tcp_flags(src: u16, dst: u16, flags: TcpFlags) -> Transport<'static> {
    Transport::Tcp(TcpRepr {
        src_port: src,
        dst_port: dst,
        seq: 1,
        flags,
        payload: if flags.contains(PSH) {
            b"GET / HTTP/1.1\r\n\r\n"
        } else {
            b""
        },
        ..TcpRepr::default()
    })
}

fn udp(src: u16, dst: u16) -> Transport<'static> {
    Transport::Udp(UdpRepr {
        src_port: src,
        dst_port: dst,
        payload: &[1, 2, 3, 4],
    })
}

/// An ICMP echo request.
const ICMP_ECHO: Transport<'static> = Transport::Raw {
    protocol: IP_PROTOCOL_ICMP,
    bytes: &[8, 0, 0, 0, 0, 1, 0, 1],
};

/// IPv4 from 10.0.0.1: `options` 4-byte words of options, `frag` = the flags/offset field.
fn ipv4(options: usize, frag: u16) -> IpRepr<'static> {
    ipv4_from(V4_SOURCE, options, frag)
}

const V4_SOURCE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Ten words of NOP options: the most an IPv4 header holds.
const NOP_OPTIONS: [u8; 40] = [1; 40];
const DONT_FRAGMENT: u16 = 0x4000;
const MORE_FRAGMENTS: u16 = 0x2000;
/// Fragment offset 16 (128 bytes in): a fragment without the transport header.
const LATER_FRAGMENT: u16 = 16;

/// IPv4 from `src` to 10.0.0.2.
fn ipv4_from(src: Ipv4Addr, options: usize, frag: u16) -> IpRepr<'static> {
    IpRepr::V4(Ipv4Repr {
        ident: 1,
        dont_fragment: frag & DONT_FRAGMENT != 0,
        more_fragments: frag & MORE_FRAGMENTS != 0,
        fragment_offset: frag & !(DONT_FRAGMENT | MORE_FRAGMENTS),
        options: &NOP_OPTIONS[..options * 4],
        ..Ipv4Repr::new(src, Ipv4Addr::new(10, 0, 0, 2))
    })
}

/// IPv6 from 2001:db8::1 with extension headers `ext`.
fn ipv6(ext: &'static [Ipv6Extension]) -> IpRepr<'static> {
    ipv6_from(V6_SOURCE, ext)
}

const V6_SOURCE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// IPv6 from `src` to 2001:db8::2.
fn ipv6_from(src: Ipv6Addr, ext: &'static [Ipv6Extension]) -> IpRepr<'static> {
    IpRepr::V6(Ipv6Repr {
        extensions: ext,
        ..Ipv6Repr::new(src, Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2))
    })
}

/// An IPv6 fragment header: the first fragment of a whole packet.
const FRAGMENT: Ipv6Extension = Ipv6Extension::Fragment {
    offset: 0,
    more: false,
    ident: 0,
};

/// `l4` in IPv4 from 10.0.0.1, untagged.
fn v4(l4: Transport<'_>) -> Vec<u8> {
    frame(ethernet(0), ipv4(0, 0), l4)
}

/// `l4` in IPv6 from 2001:db8::1, untagged, no extension headers.
fn v6(l4: Transport<'_>) -> Vec<u8> {
    frame(ethernet(0), ipv6(&[]), l4)
}

fn frame(ethernet: EthernetRepr, ip: IpRepr<'_>, l4: Transport<'_>) -> Vec<u8> {
    Frame {
        ethernet,
        ..Frame::new(ip, l4)
    }
    .to_vec()
}

/// Runs `frame` and returns (action, what changed in the counters).
fn run(program: &XdpProgram, frame: &[u8]) -> (u32, XdpCounters) {
    let before = program.counters();
    let action = program.test_run(frame).expect("BPF_PROG_TEST_RUN");
    let after = program.counters();
    (
        action,
        XdpCounters {
            seen: after.seen - before.seen,
            redirected: after.redirected - before.redirected,
            other: after.other - before.other,
            no_socket: after.no_socket - before.no_socket,
            blocked: after.blocked - before.blocked,
            fragments: after.fragments - before.fragments,
            fragments_ahead: after.fragments_ahead - before.fragments_ahead,
            fragments_unwanted: after.fragments_unwanted - before.fragments_unwanted,
        },
    )
}

/// Nothing counted: the base of the expectations below.
const NONE: XdpCounters = XdpCounters {
    seen: 0,
    redirected: 0,
    other: 0,
    no_socket: 0,
    blocked: 0,
    fragments: 0,
    fragments_ahead: 0,
    fragments_unwanted: 0,
};
const WANTED: XdpCounters = XdpCounters {
    seen: 1,
    no_socket: 1,
    ..NONE
};
const OTHER: XdpCounters = XdpCounters {
    seen: 1,
    other: 1,
    ..NONE
};
/// A fragment of a TCP datagram, taken.
const FRAGMENT_TAKEN: XdpCounters = XdpCounters {
    fragments: 1,
    ..WANTED
};
/// A later fragment taken before its first fragment was seen.
const TAKEN_AHEAD: XdpCounters = XdpCounters {
    fragments_ahead: 1,
    ..FRAGMENT_TAKEN
};
/// A first fragment of an unmonitored port, taken after fragments of its datagram were.
const TAKEN_UNWANTED: XdpCounters = XdpCounters {
    fragments_unwanted: 1,
    ..FRAGMENT_TAKEN
};

#[test]
fn monitored_ports_are_chosen_in_both_directions_through_every_header_layout() {
    if !can_run("xdp_program") {
        return;
    }
    let program = XdpProgram::load(
        &RedirectPorts::List(vec![8080, 80]),
        CaptureOptions::default(),
    )
    .expect("load");
    let cases: Vec<(&str, Vec<u8>, XdpCounters)> = vec![
        (
            "v4 to 8080",
            frame(ethernet(0), ipv4(0, DONT_FRAGMENT), tcp(40000, 8080)),
            WANTED,
        ),
        ("v4 from 8080 (response)", v4(tcp(8080, 40000)), WANTED),
        ("v4 to 80", v4(tcp(40000, 80)), WANTED),
        ("v4 to 22", v4(tcp(40000, 22)), OTHER),
        ("v4 to 8081", v4(tcp(40000, 8081)), OTHER),
        ("v4 udp to 8080", v4(udp(40000, 8080)), OTHER),
        (
            "v4 options",
            frame(ethernet(0), ipv4(3, 0), tcp(40000, 8080)),
            WANTED,
        ),
        (
            "v4 max options",
            frame(ethernet(0), ipv4(10, 0), tcp(40000, 8080)),
            WANTED,
        ),
        // Fragments follow the fragment policy (`fragments_follow_their_first_fragment`):
        // this later one comes before its first, so it is taken ahead, and the first follows.
        (
            "v4 later fragment",
            frame(ethernet(0), ipv4(0, LATER_FRAGMENT), tcp(40000, 8080)),
            TAKEN_AHEAD,
        ),
        (
            "v4 first fragment (MF)",
            frame(ethernet(0), ipv4(0, MORE_FRAGMENTS), tcp(40000, 8080)),
            FRAGMENT_TAKEN,
        ),
        (
            "802.1Q",
            frame(ethernet(1), ipv4(0, 0), tcp(40000, 8080)),
            WANTED,
        ),
        (
            "QinQ",
            frame(ethernet(2), ipv4(0, 0), tcp(8080, 40000)),
            WANTED,
        ),
        (
            "QinQ to 22",
            frame(ethernet(2), ipv4(0, 0), tcp(40000, 22)),
            OTHER,
        ),
        ("v6 to 8080", v6(tcp(40000, 8080)), WANTED),
        ("v6 to 443", v6(tcp(40000, 443)), OTHER),
        (
            "v6 hop-by-hop + dest opts",
            frame(
                ethernet(0),
                ipv6(&[HopByHop, DestinationOptions]),
                tcp(40000, 8080),
            ),
            WANTED,
        ),
        (
            "v6 routing",
            frame(ethernet(1), ipv6(&[Routing]), tcp(8080, 40000)),
            WANTED,
        ),
        (
            "v6 fragment header",
            frame(ethernet(0), ipv6(&[FRAGMENT]), tcp(40000, 8080)),
            FRAGMENT_TAKEN,
        ),
        (
            "v6 fragment header to 443",
            frame(ethernet(0), ipv6(&[FRAGMENT]), tcp(40000, 443)),
            OTHER,
        ),
        ("v6 udp", v6(udp(40000, 8080)), OTHER),
        ("ARP", ethernet(0).frame(ETHERTYPE_ARP, &[0; 28]), OTHER),
        (
            "cut in the IPv4 header",
            v4(tcp(1, 8080))[..ETHERNET_HEADER_LEN + 19].to_vec(),
            OTHER,
        ),
        (
            "cut before the ports",
            v4(tcp(1, 8080))[..ETHERNET_HEADER_LEN + 22].to_vec(),
            OTHER,
        ),
        (
            "bare Ethernet",
            ethernet(0).frame(ETHERTYPE_IPV4, &[]),
            OTHER,
        ),
    ];
    let mut failures = Vec::new();
    for (name, f, want) in &cases {
        let (action, got) = run(&program, f);
        if action != XDP_PASS || got != *want {
            failures.push(format!(
                "{name}: action {action}, counters {got:?}, wanted {want:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn any_port_and_drop_others() {
    if !can_run("xdp_program") {
        return;
    }
    let any = XdpProgram::load(&RedirectPorts::Any, CaptureOptions::default()).expect("load");
    let f = v4(tcp(40000, 22));
    assert_eq!(
        run(&any, &f),
        (XDP_PASS, WANTED),
        "any: TCP to 22 is wanted"
    );
    let u = v4(udp(53, 8080));
    assert_eq!(run(&any, &u), (XDP_PASS, OTHER), "any: UDP is not");

    // On linewatch's own mirror veth, what is not monitored is dropped, not passed; a
    // monitored frame without a socket is dropped too.
    let mirror = XdpProgram::load(
        &RedirectPorts::List(vec![8080]),
        CaptureOptions {
            drop_others: true,
            ..CaptureOptions::default()
        },
    )
    .expect("load");
    assert_eq!(run(&mirror, &u), (XDP_DROP, OTHER));
    let t = v4(tcp(40000, 8080));
    assert_eq!(run(&mirror, &t), (XDP_DROP, WANTED));
}

/// A blocked pure SYN: dropped, counted as seen and blocked, nothing else.
const BLOCKED: XdpCounters = XdpCounters {
    seen: 1,
    blocked: 1,
    ..NONE
};

/// What the block program counts for a frame it passes: seen, nothing else.
const SEEN_ONLY: XdpCounters = XdpCounters { seen: 1, ..NONE };

const BLOCKED_V4: Ipv4Addr = V4_SOURCE;
const OTHER_V4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 7);

fn blocking() -> CaptureOptions {
    CaptureOptions {
        block: true,
        ..CaptureOptions::default()
    }
}

/// Runs each case and collects the ones whose (action, counters) differ.
fn check(program: &XdpProgram, cases: &[(&str, Vec<u8>, u32, XdpCounters)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (name, f, want_action, want) in cases {
        let (action, got) = run(program, f);
        if action != *want_action || got != *want {
            failures.push(format!(
                "{name}: action {action}, counters {got:?}; wanted action {want_action}, {want:?}"
            ));
        }
    }
    failures
}

/// The pure SYNs of a blocked source, in every header layout the program decodes: (name,
/// frame, whether it is IPv6).
fn blocked_syns() -> Vec<(&'static str, Vec<u8>, bool)> {
    vec![
        (
            "v4 SYN",
            frame(
                ethernet(0),
                ipv4(0, DONT_FRAGMENT),
                tcp_flags(40000, 8080, SYN),
            ),
            false,
        ),
        (
            "v4 SYN to an unmonitored port",
            v4(tcp_flags(40000, 22, SYN)),
            false,
        ),
        (
            "v4 SYN behind 802.1Q",
            frame(ethernet(1), ipv4(0, 0), tcp_flags(40000, 8080, SYN)),
            false,
        ),
        (
            "v4 SYN behind QinQ",
            frame(ethernet(2), ipv4(0, 0), tcp_flags(40000, 8080, SYN)),
            false,
        ),
        (
            "v4 SYN with options",
            frame(ethernet(0), ipv4(3, 0), tcp_flags(40000, 8080, SYN)),
            false,
        ),
        (
            "v4 SYN with options behind 802.1Q",
            frame(ethernet(1), ipv4(10, 0), tcp_flags(40000, 8080, SYN)),
            false,
        ),
        ("v6 SYN", v6(tcp_flags(40000, 8080, SYN)), true),
        (
            "v6 SYN behind 802.1Q",
            frame(ethernet(1), ipv6(&[]), tcp_flags(40000, 8080, SYN)),
            true,
        ),
        (
            "v6 SYN after hop-by-hop and routing headers",
            frame(
                ethernet(0),
                ipv6(&[HopByHop, Routing]),
                tcp_flags(40000, 8080, SYN),
            ),
            true,
        ),
        // A SYN in a first fragment is a SYN to the kernel, which reassembles it.
        (
            "v4 SYN in a first fragment",
            frame(
                ethernet(0),
                ipv4(0, MORE_FRAGMENTS),
                tcp_flags(40000, 8080, SYN),
            ),
            false,
        ),
        (
            "v6 SYN after a fragment header",
            frame(ethernet(0), ipv6(&[FRAGMENT]), tcp_flags(40000, 8080, SYN)),
            true,
        ),
    ]
}

#[test]
fn a_blocked_source_loses_its_new_connections_and_nothing_else() {
    if !can_run("xdp_program") {
        return;
    }
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), blocking()).expect("load");
    let list = program.blocklist().expect("blocklist");
    list.insert(IpAddr::V4(BLOCKED_V4)).expect("insert v4");
    list.insert(IpAddr::V6(V6_SOURCE)).expect("insert v6");
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), Some(0));
    assert_eq!(list.dropped(), 0);

    let syns = blocked_syns();
    let mut cases: Vec<(&str, Vec<u8>, u32, XdpCounters)> = syns
        .iter()
        .map(|(name, f, _)| (*name, f.clone(), XDP_DROP, BLOCKED))
        .collect();
    let from_other = |l4: Transport<'static>| frame(ethernet(0), ipv4_from(OTHER_V4, 0, 0), l4);
    cases.extend([
        // The blocked source's other traffic goes on exactly as without a blocklist.
        (
            "v4 SYN-ACK",
            v4(tcp_flags(8080, 40000, SYN | ACK)),
            XDP_PASS,
            WANTED,
        ),
        (
            "v4 ACK with a request",
            v4(tcp(40000, 8080)),
            XDP_PASS,
            WANTED,
        ),
        ("v4 RST", v4(tcp_flags(40000, 8080, RST)), XDP_PASS, WANTED),
        (
            "v4 RST to 22",
            v4(tcp_flags(40000, 22, RST)),
            XDP_PASS,
            OTHER,
        ),
        (
            "v4 ACK to 22",
            v4(tcp_flags(40000, 22, ACK)),
            XDP_PASS,
            OTHER,
        ),
        ("v4 UDP", v4(udp(40000, 8080)), XDP_PASS, OTHER),
        ("v4 ICMP", v4(ICMP_ECHO), XDP_PASS, OTHER),
        // A later fragment has no TCP header, so no SYN to block: the fragment policy takes
        // it (ahead of its first fragment).
        (
            "v4 SYN, later fragment",
            frame(
                ethernet(0),
                ipv4(0, LATER_FRAGMENT),
                tcp_flags(40000, 8080, SYN),
            ),
            XDP_PASS,
            TAKEN_AHEAD,
        ),
        (
            "v6 SYN-ACK",
            v6(tcp_flags(8080, 40000, SYN | ACK)),
            XDP_PASS,
            WANTED,
        ),
        (
            "v6 ACK with a request",
            v6(tcp(40000, 8080)),
            XDP_PASS,
            WANTED,
        ),
        // Another source's SYNs are untouched.
        (
            "v4 SYN from 10.0.0.7",
            from_other(tcp_flags(40000, 8080, SYN)),
            XDP_PASS,
            WANTED,
        ),
        (
            "v4 SYN from 10.0.0.7 to 22",
            from_other(tcp_flags(40000, 22, SYN)),
            XDP_PASS,
            OTHER,
        ),
        (
            "v6 SYN from 2001:db8::7",
            frame(
                ethernet(0),
                ipv6_from(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7), &[]),
                tcp_flags(40000, 8080, SYN),
            ),
            XDP_PASS,
            WANTED,
        ),
        (
            "cut in the TCP flags",
            v4(tcp_flags(40000, 8080, SYN))[..ETHERNET_HEADER_LEN + 20 + 12].to_vec(),
            XDP_PASS,
            WANTED,
        ),
    ]);
    let failures = check(&program, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let v4_syns = syns.iter().filter(|(_, _, v6)| !v6).count() as u64;
    let v6_syns = syns.iter().filter(|(_, _, v6)| *v6).count() as u64;
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), Some(v4_syns));
    assert_eq!(list.dropped_from(IpAddr::V6(V6_SOURCE)), Some(v6_syns));
    assert_eq!(list.dropped(), v4_syns + v6_syns);
    assert_eq!(program.counters().blocked, v4_syns + v6_syns);
    assert_eq!(list.dropped_from(IpAddr::from(OTHER_V4)), None);

    // Blocking again keeps the count; after remove the SYN passes as before.
    list.insert(IpAddr::V4(BLOCKED_V4)).expect("insert again");
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), Some(v4_syns));
    let syn = &syns[0].1;
    assert_eq!(list.remove(IpAddr::V4(BLOCKED_V4)), Ok(true));
    assert_eq!(list.remove(IpAddr::V4(BLOCKED_V4)), Ok(false));
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), None);
    assert_eq!(run(&program, syn), (XDP_PASS, WANTED), "SYN after remove");
    assert_eq!(list.dropped(), v4_syns + v6_syns, "remove keeps the total");
    // The v6 entry is still there.
    let v6_syn = &syns.iter().find(|(_, _, v6)| *v6).expect("a v6 case").1;
    assert_eq!(run(&program, v6_syn), (XDP_DROP, BLOCKED));
}

#[test]
fn ipv4_mapped_addresses_block_the_ipv4_source() {
    if !can_run("xdp_program") {
        return;
    }
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), blocking()).expect("load");
    let list = program.blocklist().expect("blocklist");
    let mapped = IpAddr::V6(BLOCKED_V4.to_ipv6_mapped());
    list.insert(mapped).expect("insert ::ffff:10.0.0.1");
    let syn = v4(tcp_flags(40000, 8080, SYN));
    assert_eq!(run(&program, &syn), (XDP_DROP, BLOCKED));
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), Some(1));
    assert_eq!(list.dropped_from(mapped), Some(1));
    assert_eq!(list.remove(IpAddr::V4(BLOCKED_V4)), Ok(true));
    assert_eq!(run(&program, &syn), (XDP_PASS, WANTED));
}

#[test]
fn without_block_nothing_is_looked_up_or_dropped() {
    if !can_run("xdp_program") {
        return;
    }
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), CaptureOptions::default())
        .expect("load");
    let list = program.blocklist().expect("blocklist");
    list.insert(IpAddr::V4(BLOCKED_V4)).expect("insert v4");
    list.insert(IpAddr::V6(V6_SOURCE)).expect("insert v6");
    for (name, f, _) in blocked_syns() {
        let (action, got) = run(&program, &f);
        assert_eq!(action, XDP_PASS, "{name}");
        assert_eq!(got.blocked, 0, "{name}");
        assert_eq!(got.seen, 1, "{name}");
    }
    assert_eq!(list.dropped(), 0);
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), Some(0));
    assert_eq!(list.dropped_from(IpAddr::V6(V6_SOURCE)), Some(0));
}

#[test]
fn the_guard_passes_everything_but_blocked_syns() {
    if !can_run("xdp_program") {
        return;
    }
    // Ports and options mean nothing to the guard: it blocks with block off, never redirects.
    let guard = XdpProgram::load_role(
        XdpRole::Block,
        &RedirectPorts::Any,
        CaptureOptions::default(),
    )
    .expect("load the guard");
    let list = guard.blocklist().expect("blocklist");
    list.insert(IpAddr::V4(BLOCKED_V4)).expect("insert v4");
    list.insert(IpAddr::V6(V6_SOURCE)).expect("insert v6");
    let syns = blocked_syns();
    let mut cases: Vec<(&str, Vec<u8>, u32, XdpCounters)> = syns
        .iter()
        .map(|(name, f, _)| (*name, f.clone(), XDP_DROP, BLOCKED))
        .collect();
    cases.extend([
        (
            "v4 SYN-ACK",
            v4(tcp_flags(8080, 40000, SYN | ACK)),
            XDP_PASS,
            SEEN_ONLY,
        ),
        (
            "v4 ACK with a request",
            v4(tcp(40000, 8080)),
            XDP_PASS,
            SEEN_ONLY,
        ),
        (
            "v4 RST",
            v4(tcp_flags(40000, 8080, RST)),
            XDP_PASS,
            SEEN_ONLY,
        ),
        ("v4 UDP", v4(udp(40000, 8080)), XDP_PASS, SEEN_ONLY),
        (
            "v4 SYN from 10.0.0.7",
            frame(
                ethernet(0),
                ipv4_from(OTHER_V4, 0, 0),
                tcp_flags(40000, 8080, SYN),
            ),
            XDP_PASS,
            SEEN_ONLY,
        ),
        (
            "ARP",
            ethernet(0).frame(ETHERTYPE_ARP, &[0; 28]),
            XDP_PASS,
            SEEN_ONLY,
        ),
        (
            "bare Ethernet",
            ethernet(0).frame(ETHERTYPE_IPV4, &[]),
            XDP_PASS,
            SEEN_ONLY,
        ),
        (
            "cut in the IPv6 header",
            v6(tcp_flags(1, 8080, SYN))[..ETHERNET_HEADER_LEN + 30].to_vec(),
            XDP_PASS,
            SEEN_ONLY,
        ),
    ]);
    let failures = check(&guard, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let total = syns.len() as u64;
    assert_eq!(list.dropped(), total);
    assert_eq!(guard.counters().blocked, total);
    assert_eq!(
        list.dropped_from(IpAddr::V4(BLOCKED_V4)).unwrap_or(0)
            + list.dropped_from(IpAddr::V6(V6_SOURCE)).unwrap_or(0),
        total
    );
}

#[test]
fn all_syns_redirects_every_new_connection() {
    if !can_run("xdp_program") {
        return;
    }
    let options = CaptureOptions {
        all_syns: true,
        ..CaptureOptions::default()
    };
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), options).expect("load");
    let cases: Vec<(&str, Vec<u8>, u32, XdpCounters)> = vec![
        (
            "v4 SYN to 22",
            v4(tcp_flags(40000, 22, SYN)),
            XDP_PASS,
            WANTED,
        ),
        (
            "v6 SYN to 443 after a hop-by-hop header",
            frame(ethernet(0), ipv6(&[HopByHop]), tcp_flags(40000, 443, SYN)),
            XDP_PASS,
            WANTED,
        ),
        (
            "QinQ v4 SYN to 22",
            frame(ethernet(2), ipv4(2, 0), tcp_flags(40000, 22, SYN)),
            XDP_PASS,
            WANTED,
        ),
        (
            "v4 SYN-ACK from 22",
            v4(tcp_flags(22, 40000, SYN | ACK)),
            XDP_PASS,
            OTHER,
        ),
        (
            "v4 ACK to 22",
            v4(tcp_flags(40000, 22, ACK)),
            XDP_PASS,
            OTHER,
        ),
        ("v4 request to 22", v4(tcp(40000, 22)), XDP_PASS, OTHER),
        (
            "v4 RST to 22",
            v4(tcp_flags(40000, 22, RST)),
            XDP_PASS,
            OTHER,
        ),
        ("v4 request to 8080", v4(tcp(40000, 8080)), XDP_PASS, WANTED),
        ("v4 UDP to 22", v4(udp(40000, 22)), XDP_PASS, OTHER),
        (
            "cut in the TCP flags",
            v4(tcp_flags(40000, 22, SYN))[..ETHERNET_HEADER_LEN + 20 + 12].to_vec(),
            XDP_PASS,
            OTHER,
        ),
    ];
    let failures = check(&program, &cases);
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Off (the default): a SYN to an unmonitored port is not wanted.
    let plain = XdpProgram::load(&RedirectPorts::List(vec![8080]), CaptureOptions::default())
        .expect("load");
    assert_eq!(
        run(&plain, &v4(tcp_flags(40000, 22, SYN))),
        (XDP_PASS, OTHER)
    );
}

#[test]
fn the_blocklist_outlives_its_program_and_says_when_it_is_full() {
    if !can_run("xdp_program") {
        return;
    }
    fn is_send<T: Send>(_: &T) {}
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), blocking()).expect("load");
    let list: Blocklist = program.blocklist().expect("blocklist");
    is_send(&list);
    drop(program);
    let list = std::thread::spawn(move || {
        list.insert(IpAddr::V4(BLOCKED_V4))
            .expect("insert after the program is gone");
        list
    })
    .join()
    .expect("thread");
    assert_eq!(list.dropped_from(IpAddr::V4(BLOCKED_V4)), Some(0));
    assert_eq!(list.dropped(), 0);

    // Fill the IPv4 map: 10.0.0.1 is in it already.
    let capacity = u32::try_from(BLOCKLIST_CAPACITY).expect("capacity");
    for n in 1..capacity {
        let addr = IpAddr::V4(Ipv4Addr::from(0x0b00_0000 + n));
        list.insert(addr)
            .unwrap_or_else(|e| panic!("insert number {n}: {e}"));
    }
    let err = list
        .insert(IpAddr::V4(Ipv4Addr::new(12, 0, 0, 1)))
        .expect_err("a full blocklist");
    assert!(
        err.to_string()
            .contains("the blocklist is full (65536 sources)"),
        "{err}"
    );
    assert!(!err.to_string().contains('\n'), "{err}");
    // An address already in it is still fine, and IPv6 has its own map.
    list.insert(IpAddr::V4(BLOCKED_V4))
        .expect("insert an existing entry");
    list.insert(IpAddr::V6(V6_SOURCE))
        .expect("insert v6 while v4 is full");
    assert_eq!(
        list.remove(IpAddr::V4(Ipv4Addr::from(0x0b00_0001))),
        Ok(true)
    );
    list.insert(IpAddr::V4(Ipv4Addr::new(12, 0, 0, 1)))
        .expect("room again");
}

/// The frames of `l4` in `ip` (untagged) as IP fragments with identification `ident`, cut at
/// `cuts` (bytes of the transport header and payload), in order.
fn fragments(ip: IpRepr<'_>, l4: Transport<'_>, ident: u32, cuts: &[usize]) -> Vec<Vec<u8>> {
    Frame {
        ethernet: ethernet(0),
        ..Frame::new(ip, l4)
    }
    .fragments(ident, cuts)
}

/// Cuts of [`tcp`]'s 38 bytes (20 of header, an 18-byte request) into three fragments: the
/// ports and sequence number, the rest of the header, the request.
const THREE: &[usize] = &[8, 24];

/// Sends `frames` in order and collects each whose (action, counters) is not `want`'s.
fn send(
    program: &XdpProgram,
    name: &str,
    frames: &[Vec<u8>],
    want: &[(u32, XdpCounters)],
) -> Vec<String> {
    assert_eq!(frames.len(), want.len(), "{name}: one expectation a frame");
    let mut failures = Vec::new();
    for (i, (f, (want_action, want))) in frames.iter().zip(want).enumerate() {
        let (action, got) = run(program, f);
        if action != *want_action || got != *want {
            failures.push(format!(
                "{name}, frame {i}: action {action}, counters {got:?}; wanted action \
                 {want_action}, {want:?}"
            ));
        }
    }
    failures
}

/// A request to or from a port in fragments: (port, identification) to frames.
type Datagram = fn(u16, u32) -> Vec<Vec<u8>>;

/// A request from 10.0.0.1:40000 to 10.0.0.2:`port` in three fragments.
fn v4_to(port: u16, ident: u32) -> Vec<Vec<u8>> {
    fragments(ipv4(0, 0), tcp(40000, port), ident, THREE)
}

/// A request from [2001:db8::1]:40000 to [2001:db8::2]:`port` in three fragments, after a
/// hop-by-hop header.
fn v6_to(port: u16, ident: u32) -> Vec<Vec<u8>> {
    fragments(ipv6(&[HopByHop]), tcp(40000, port), ident, THREE)
}

fn reversed(mut frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    frames.reverse();
    frames
}

#[test]
fn fragments_follow_their_first_fragment_on_a_monitored_nic() {
    if !can_run("xdp_program") {
        return;
    }
    // --interface with a port list: the fragment policy's map decides.
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080]), CaptureOptions::default())
        .expect("load");
    let taken = (XDP_PASS, FRAGMENT_TAKEN);
    let ahead = (XDP_PASS, TAKEN_AHEAD);
    let unwanted = (XDP_PASS, TAKEN_UNWANTED);
    let other = (XDP_PASS, OTHER);
    let mut failures = Vec::new();
    let mut check = |name: &str, frames: &[Vec<u8>], want: &[(u32, XdpCounters)]| {
        failures.extend(send(&program, name, frames, want));
    };
    // Identifications: v4 from 100, v6 from 200, in the order of these four datagrams.
    let families: [(&str, u32, Datagram); 2] = [("v4", 100, v4_to), ("v6", 200, v6_to)];
    for (family, ident, to) in families {
        check(
            &format!("{family} to 8080 in order"),
            &to(8080, ident),
            &[taken; 3],
        );
        check(
            &format!("{family} to 22 in order"),
            &to(22, ident + 1),
            &[other; 3],
        );
        check(
            &format!("{family} to 8080 reversed"),
            &reversed(to(8080, ident + 2)),
            &[ahead, taken, taken],
        );
        // Fragments ahead of an unmonitored first fragment: the datagram goes to linewatch
        // whole (the kernel could not complete it without them), counted.
        check(
            &format!("{family} to 22 reversed"),
            &reversed(to(22, ident + 3)),
            &[ahead, taken, unwanted],
        );
    }
    check(
        "v4 response from 8080 in order",
        &fragments(ipv4(0, 0), tcp(8080, 40000), 104, THREE),
        &[taken; 3],
    );
    // The key holds the source: identification 101 from 10.0.0.7 is another datagram.
    check(
        "v4 from 10.0.0.7 to 8080, identification 101",
        &fragments(ipv4_from(OTHER_V4, 0, 0), tcp(40000, 8080), 101, THREE),
        &[taken; 3],
    );
    check(
        "v4 to 22, identification 101, a late copy of its last fragment",
        &v4_to(22, 101)[2..],
        &[other],
    );
    check(
        "v4 behind 802.1Q, reversed",
        &reversed(
            Frame {
                ethernet: ethernet(1),
                ..Frame::new(ipv4(0, 0), tcp(40000, 8080))
            }
            .fragments(105, THREE),
        ),
        &[ahead, taken, taken],
    );
    // Fragments of anything but TCP are the kernel's, in any order.
    let udp_fragments = fragments(ipv4(0, 0), udp(40000, 8080), 106, &[8]);
    check("v4 UDP in order", &udp_fragments, &[other; 2]);
    check("v4 UDP reversed", &reversed(udp_fragments), &[other; 2]);
    // IPv6 identifications are 32 bits: 0x1_0000 + 201 is not datagram 201 (passed).
    check(
        "v6 to 22, identification 0x100c9, reversed",
        &reversed(v6_to(22, 0x1_0000 + 201)),
        &[ahead, taken, unwanted],
    );
    let v6_udp = fragments(ipv6(&[]), udp(40000, 8080), 204, &[8]);
    check("v6 UDP reversed", &reversed(v6_udp), &[other; 2]);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_tcp_fragment_is_taken_on_the_mirror_and_with_any_port() {
    if !can_run("xdp_program") {
        return;
    }
    let mirror = XdpProgram::load(
        &RedirectPorts::List(vec![8080]),
        CaptureOptions {
            drop_others: true,
            all_syns: true,
            ..CaptureOptions::default()
        },
    )
    .expect("load the mirror's program");
    let any = XdpProgram::load(&RedirectPorts::Any, CaptureOptions::default()).expect("load");
    let v4_to_22 = reversed(fragments(ipv4(0, 0), tcp(40000, 22), 300, THREE));
    let v6_to_22 = reversed(fragments(ipv6(&[]), tcp(40000, 22), 301, THREE));
    let v4_udp = reversed(fragments(ipv4(0, 0), udp(40000, 8080), 302, &[8]));
    let v6_udp = reversed(fragments(ipv6(&[]), udp(40000, 8080), 303, &[8]));
    let mut failures = Vec::new();
    // No state, no port: every TCP fragment in any order, never a UDP one. On the mirror a
    // frame without a socket, and anything not taken, is dropped (it is a copy).
    let cases = [
        ("v4 to 22 reversed", &v4_to_22, FRAGMENT_TAKEN),
        ("v6 to 22 reversed", &v6_to_22, FRAGMENT_TAKEN),
        ("v4 UDP reversed", &v4_udp, OTHER),
        ("v6 UDP reversed", &v6_udp, OTHER),
    ];
    for (program, label, action) in [(&mirror, "mirror", XDP_DROP), (&any, "any", XDP_PASS)] {
        for (name, frames, want) in cases {
            failures.extend(send(
                program,
                &format!("{label}: {name}"),
                frames,
                &vec![(action, want); frames.len()],
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

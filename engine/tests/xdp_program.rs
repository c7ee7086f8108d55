//! The XDP program's decisions, exactly: crafted frames through `BPF_PROG_TEST_RUN` (the kernel
//! runs the real program; nothing is attached or sent). With an empty `xsks_map`, a frame the
//! program wants to redirect falls back to the "other" action and counts as `no_socket`, so the
//! counters tell a redirect decision (`no_socket`) from a pass-through (`other`).
//!
//! Needs root (loading BPF). With `CI` set the tests fail without it; otherwise they say so
//! and return.

use linewatch_engine::live::xdp::{RedirectPorts, XdpCounters, XdpProgram};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

mod common;
use common::{in_ci, is_root};

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

/// Ethernet header with `tags` VLAN tags (0x8100 each, 0x88a8 for the outer of two).
fn ethernet(tags: usize, ethertype: u16) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for i in 0..tags {
        let tpid: u16 = if tags == 2 && i == 0 { 0x88a8 } else { 0x8100 };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&(100 + u16::try_from(i).unwrap()).to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

fn tcp(src: u16, dst: u16) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&src.to_be_bytes());
    t.extend_from_slice(&dst.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    t
}

fn udp(src: u16, dst: u16) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.to_be_bytes());
    u.extend_from_slice(&dst.to_be_bytes());
    u.extend_from_slice(&[0, 12, 0, 0, 1, 2, 3, 4]);
    u
}

/// IPv4 packet: `options` 4-byte words of options, `frag` = the flags/offset field.
fn ipv4(proto: u8, options: usize, frag: u16, payload: &[u8]) -> Vec<u8> {
    let ihl = 5 + options;
    let total = u16::try_from(ihl * 4 + payload.len()).unwrap();
    let mut p = vec![0x40 | u8::try_from(ihl).unwrap(), 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    p.extend(std::iter::repeat_n(1u8, options * 4)); // NOP options
    p.extend_from_slice(payload);
    p
}

/// IPv6 packet with extension headers `ext` (each: its type), then `proto`.
fn ipv6(ext: &[u8], proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (i, _) in ext.iter().enumerate() {
        let next = ext.get(i + 1).copied().unwrap_or(proto);
        body.extend_from_slice(&[next, 0, 0, 0, 0, 0, 0, 0]); // 8 bytes, length field 0
    }
    body.extend_from_slice(payload);
    let first = ext.first().copied().unwrap_or(proto);
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    p.extend_from_slice(&[first, 64]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    p.extend_from_slice(&body);
    p
}

fn frame(mut eth: Vec<u8>, packet: Vec<u8>) -> Vec<u8> {
    eth.extend_from_slice(&packet);
    eth
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
        },
    )
}

const WANTED: XdpCounters = XdpCounters {
    seen: 1,
    redirected: 0,
    other: 0,
    no_socket: 1,
};
const OTHER: XdpCounters = XdpCounters {
    seen: 1,
    redirected: 0,
    other: 1,
    no_socket: 0,
};

#[test]
fn monitored_ports_are_chosen_in_both_directions_through_every_header_layout() {
    if !can_run("xdp_program") {
        return;
    }
    let program = XdpProgram::load(&RedirectPorts::List(vec![8080, 80]), false).expect("load");
    let cases: Vec<(&str, Vec<u8>, XdpCounters)> = vec![
        (
            "v4 to 8080",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0x4000, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "v4 from 8080 (response)",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0, &tcp(8080, 40000))),
            WANTED,
        ),
        (
            "v4 to 80",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0, &tcp(40000, 80))),
            WANTED,
        ),
        (
            "v4 to 22",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0, &tcp(40000, 22))),
            OTHER,
        ),
        (
            "v4 to 8081",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0, &tcp(40000, 8081))),
            OTHER,
        ),
        (
            "v4 udp to 8080",
            frame(ethernet(0, 0x0800), ipv4(17, 0, 0, &udp(40000, 8080))),
            OTHER,
        ),
        (
            "v4 options",
            frame(ethernet(0, 0x0800), ipv4(6, 3, 0, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "v4 max options",
            frame(ethernet(0, 0x0800), ipv4(6, 10, 0, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "v4 later fragment",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0x0010, &tcp(40000, 8080))),
            OTHER,
        ),
        (
            "v4 first fragment (MF)",
            frame(ethernet(0, 0x0800), ipv4(6, 0, 0x2000, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "802.1Q",
            frame(ethernet(1, 0x0800), ipv4(6, 0, 0, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "QinQ",
            frame(ethernet(2, 0x0800), ipv4(6, 0, 0, &tcp(8080, 40000))),
            WANTED,
        ),
        (
            "QinQ to 22",
            frame(ethernet(2, 0x0800), ipv4(6, 0, 0, &tcp(40000, 22))),
            OTHER,
        ),
        (
            "v6 to 8080",
            frame(ethernet(0, 0x86dd), ipv6(&[], 6, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "v6 to 443",
            frame(ethernet(0, 0x86dd), ipv6(&[], 6, &tcp(40000, 443))),
            OTHER,
        ),
        (
            "v6 hop-by-hop + dest opts",
            frame(ethernet(0, 0x86dd), ipv6(&[0, 60], 6, &tcp(40000, 8080))),
            WANTED,
        ),
        (
            "v6 routing",
            frame(ethernet(1, 0x86dd), ipv6(&[43], 6, &tcp(8080, 40000))),
            WANTED,
        ),
        (
            "v6 fragment header",
            frame(ethernet(0, 0x86dd), ipv6(&[44], 6, &tcp(40000, 8080))),
            OTHER,
        ),
        (
            "v6 udp",
            frame(ethernet(0, 0x86dd), ipv6(&[], 17, &udp(40000, 8080))),
            OTHER,
        ),
        ("ARP", frame(ethernet(0, 0x0806), vec![0; 28]), OTHER),
        (
            "cut in the IPv4 header",
            frame(
                ethernet(0, 0x0800),
                ipv4(6, 0, 0, &tcp(1, 8080))[..19].to_vec(),
            ),
            OTHER,
        ),
        (
            "cut before the ports",
            frame(
                ethernet(0, 0x0800),
                ipv4(6, 0, 0, &tcp(1, 8080))[..22].to_vec(),
            ),
            OTHER,
        ),
        ("bare Ethernet", ethernet(0, 0x0800), OTHER),
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
    let any = XdpProgram::load(&RedirectPorts::Any, false).expect("load");
    let f = frame(ethernet(0, 0x0800), ipv4(6, 0, 0, &tcp(40000, 22)));
    assert_eq!(
        run(&any, &f),
        (XDP_PASS, WANTED),
        "any: TCP to 22 is wanted"
    );
    let u = frame(ethernet(0, 0x0800), ipv4(17, 0, 0, &udp(53, 8080)));
    assert_eq!(run(&any, &u), (XDP_PASS, OTHER), "any: UDP is not");

    // On linewatch's own mirror veth, what is not monitored is dropped, not passed; a
    // monitored frame without a socket is dropped too.
    let mirror = XdpProgram::load(&RedirectPorts::List(vec![8080]), true).expect("load");
    assert_eq!(run(&mirror, &u), (XDP_DROP, OTHER));
    let t = frame(ethernet(0, 0x0800), ipv4(6, 0, 0, &tcp(40000, 8080)));
    assert_eq!(run(&mirror, &t), (XDP_DROP, WANTED));
}

//! What the XDP program costs per frame, measured in the kernel with `BPF_PROG_TEST_RUN` and a
//! repeat count (the kernel's mean time per run; no NIC, no socket: `xsks_map` is empty, so a
//! frame the program wants ends as "no socket").
//!
//! `xdp_cost [REPEAT] [ROUNDS]` (root; defaults 1000000 and 7) prints, for each case, the
//! minimum and the median over the rounds of the mean ns per run. The frames are 150 bytes:
//! an HTTP request to a monitored port (8080), the same to an unmonitored port (22), UDP, and
//! pure SYNs; first with the default options, then with the blocklist check (`block`), with
//! `all_syns`, with watched networks (`dst`: the frame's server watched, or neither of its
//! addresses, two trie lookups), and through the block program.
//! Noisy on a busy machine: compare runs made side by side, not across days.

use std::net::IpAddr;
use std::process::ExitCode;

use linewatch_engine::live::xdp::{CaptureOptions, RedirectPorts, XdpProgram, XdpRole};
use linewatch_engine::scan::Cidr;
use linewatch_testkit::frame::{
    Frame, TcpFlags, TcpRepr, UdpRepr, ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, TCP_HEADER_LEN,
    UDP_HEADER_LEN,
};

/// Every frame measured is this long.
const FRAME_LEN: usize = 150;
/// The frames' source: the one the blocklists hold (or do not).
const SOURCE: [u8; 4] = [10, 0, 0, 1];
const DESTINATION: [u8; 4] = [10, 0, 0, 2];

/// A 150-byte Ethernet + IPv4 + TCP frame carrying the start of an HTTP request.
fn http_frame(dst_port: u16, flags: TcpFlags) -> Vec<u8> {
    let mut payload = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    payload.resize(
        FRAME_LEN - ETHERNET_HEADER_LEN - IPV4_HEADER_LEN - TCP_HEADER_LEN,
        b'a',
    );
    let tcp = TcpRepr {
        src_port: 40000,
        dst_port,
        seq: 1,
        ack: 1,
        flags,
        payload: &payload,
        ..TcpRepr::default()
    };
    Frame::tcp(SOURCE.into(), DESTINATION.into(), tcp).to_vec()
}

/// A 150-byte UDP frame to port 53.
fn udp_frame() -> Vec<u8> {
    let payload = [b'a'; FRAME_LEN - ETHERNET_HEADER_LEN - IPV4_HEADER_LEN - UDP_HEADER_LEN];
    let udp = UdpRepr {
        src_port: 40000,
        dst_port: 53,
        payload: &payload,
    };
    Frame::udp(SOURCE.into(), DESTINATION.into(), udp).to_vec()
}

/// Mean ns per run of `frame` on `program`: (min, median) over `rounds` runs of `repeat`.
fn measure(
    program: &XdpProgram,
    frame: &[u8],
    repeat: u32,
    rounds: usize,
) -> Result<(u32, u32), String> {
    let mut ns = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let (_, d) = program
            .test_run_repeat(frame, repeat)
            .map_err(|e| e.to_string())?;
        ns.push(d);
    }
    ns.sort_unstable();
    let min = ns.first().copied().unwrap_or(0);
    let median = ns.get(ns.len() / 2).copied().unwrap_or(0);
    Ok((min, median))
}

fn run(repeat: u32, rounds: usize) -> Result<(), String> {
    let ports = RedirectPorts::List(vec![80, 8080]);
    let load =
        |role, options| XdpProgram::load_role(role, &ports, options).map_err(|e| e.to_string());
    let plain = load(XdpRole::Capture, CaptureOptions::default())?;
    let block = CaptureOptions {
        block: true,
        ..CaptureOptions::default()
    };
    // Blocklists with one other source (a miss), and with the frames' source (a hit).
    let (source, other) = (IpAddr::from(SOURCE), IpAddr::from([10, 9, 9, 9]));
    let block_miss = load(XdpRole::Capture, block.clone())?;
    block_miss
        .blocklist()
        .map_err(|e| e.to_string())?
        .insert(other)
        .map_err(|e| e.to_string())?;
    let block_hit = load(XdpRole::Capture, block)?;
    block_hit
        .blocklist()
        .map_err(|e| e.to_string())?
        .insert(source)
        .map_err(|e| e.to_string())?;
    let all_syns = load(
        XdpRole::Capture,
        CaptureOptions {
            all_syns: true,
            ..CaptureOptions::default()
        },
    )?;
    let watching = |nets: &[&str]| -> Result<XdpProgram, String> {
        let dst = nets
            .iter()
            .map(|n| n.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()?;
        load(
            XdpRole::Capture,
            CaptureOptions {
                dst,
                ..CaptureOptions::default()
            },
        )
    };
    let dst_hit = watching(&["10.0.0.2"])?;
    let dst_miss = watching(&["192.0.2.0/24", "10.1.0.0/16", "2001:db8::/32"])?;
    let block = load(XdpRole::Block, CaptureOptions::default())?;
    block
        .blocklist()
        .map_err(|e| e.to_string())?
        .insert(source)
        .map_err(|e| e.to_string())?;

    let psh_ack = TcpFlags::PSH | TcpFlags::ACK;
    let syn = TcpFlags::SYN;
    let cases: [(&str, &XdpProgram, Vec<u8>); 14] = [
        (
            "http request to 8080 (monitored)",
            &plain,
            http_frame(8080, psh_ack),
        ),
        (
            "http request to 22 (not monitored)",
            &plain,
            http_frame(22, psh_ack),
        ),
        ("udp", &plain, udp_frame()),
        (
            "block=1: http request to 8080",
            &block_miss,
            http_frame(8080, psh_ack),
        ),
        ("block=1: udp", &block_miss, udp_frame()),
        (
            "block=1: SYN to 8080, source not blocked",
            &block_miss,
            http_frame(8080, syn),
        ),
        (
            "block=1: SYN to 8080, source blocked",
            &block_hit,
            http_frame(8080, syn),
        ),
        (
            "all_syns=1: http request to 22",
            &all_syns,
            http_frame(22, psh_ack),
        ),
        ("all_syns=1: SYN to 22", &all_syns, http_frame(22, syn)),
        (
            "dst=1: http request to 8080, server watched",
            &dst_hit,
            http_frame(8080, psh_ack),
        ),
        (
            "dst=1: http request to 8080, not watched",
            &dst_miss,
            http_frame(8080, psh_ack),
        ),
        (
            "dst=1: http request to 22 (no lookup)",
            &dst_miss,
            http_frame(22, psh_ack),
        ),
        (
            "block: http request to 8080",
            &block,
            http_frame(8080, psh_ack),
        ),
        ("block: SYN, source blocked", &block, http_frame(8080, syn)),
    ];
    for (name, program, frame) in &cases {
        let (min, median) = measure(program, frame, repeat, rounds)?;
        eprintln!(
            "{name:<44} {} bytes: min {min} ns, median {median} ns ({rounds} x {repeat})",
            frame.len()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let repeat: u32 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    match run(repeat, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xdp_cost: {e}");
            ExitCode::FAILURE
        }
    }
}

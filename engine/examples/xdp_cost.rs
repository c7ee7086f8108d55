//! What the XDP program costs per frame, measured in the kernel with `BPF_PROG_TEST_RUN` and a
//! repeat count (the kernel's mean time per run; no NIC, no socket: `xsks_map` is empty, so a
//! frame the program wants ends as "no socket").
//!
//! `xdp_cost [REPEAT] [ROUNDS]` (root; defaults 1000000 and 7) prints, for each case, the
//! minimum and the median over the rounds of the mean ns per run. The frames are 150 bytes:
//! an HTTP request to a monitored port (8080), the same to an unmonitored port (22), and UDP.
//! Noisy on a busy machine: compare runs made side by side, not across days.

use std::process::ExitCode;

use linewatch_engine::live::xdp::{RedirectPorts, XdpProgram};

/// A 150-byte Ethernet + IPv4 + TCP frame carrying the start of an HTTP request.
fn http_frame(dst_port: u16, flags: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let payload_len = 150 - 14 - 20 - 20;
    let total = u16::try_from(20 + 20 + payload_len).unwrap_or(u16::MAX);
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&total.to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    f.extend_from_slice(&40000u16.to_be_bytes());
    f.extend_from_slice(&dst_port.to_be_bytes());
    f.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    let mut payload = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n".to_vec();
    payload.resize(payload_len, b'a');
    f.extend_from_slice(&payload);
    f
}

fn udp_frame() -> Vec<u8> {
    let mut f = http_frame(53, 0x18);
    f[23] = 17;
    f
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let repeat: u32 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(7);
    let program = match XdpProgram::load(&RedirectPorts::List(vec![80, 8080]), false) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xdp_cost: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cases = [
        ("http request to 8080 (monitored)", http_frame(8080, 0x18)),
        ("http request to 22 (not monitored)", http_frame(22, 0x18)),
        ("udp", udp_frame()),
    ];
    for (name, frame) in &cases {
        let mut ns = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            match program.test_run_repeat(frame, repeat) {
                Ok((_, d)) => ns.push(d),
                Err(e) => {
                    eprintln!("xdp_cost: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        ns.sort_unstable();
        let min = ns.first().copied().unwrap_or(0);
        let median = ns.get(ns.len() / 2).copied().unwrap_or(0);
        eprintln!(
            "{name:<40} {} bytes: min {min} ns, median {median} ns ({rounds} x {repeat})",
            frame.len()
        );
    }
    ExitCode::SUCCESS
}

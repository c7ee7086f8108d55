//! The command line: bad input gives one line on stderr and exit code 2, never a panic; a
//! truncated capture is counted up to the cut and reported as truncated; a replay of stamped
//! frames counts them and records no capture latency; `--help` explains every option with its
//! default.

mod common;

use common::{linewatch, scratch};
use linewatch_testkit::corpus;

/// Asserts a bad-input failure: exit 2, one line on stderr naming `mentions`, nothing on stdout.
fn assert_bad_input(args: &[&str], mentions: &str) {
    let out = linewatch(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: exit code; stderr: {stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: expected one line, got:\n{stderr}"
    );
    assert!(stderr.starts_with("linewatch: "), "{args:?}: {stderr}");
    assert!(
        stderr.contains(mentions),
        "{args:?}: `{mentions}` not in: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: wrote to stdout");
}

#[test]
fn bad_options_fail_in_one_line() {
    let dir = scratch("cli-bad-options");
    let capture = dir.join("x.pcap");
    // A valid, empty pcap (header only) so that only the option under test is wrong.
    std::fs::write(&capture, linewatch_testkit::frame::pcap(&[])).unwrap();
    let c = capture.to_str().unwrap();

    assert_bad_input(&["--read", c, "--port", "0"], "port 0");
    assert_bad_input(&["--read", c, "--port", "70000"], "port 70000");
    assert_bad_input(&["--read", c, "--port", "80,http"], "http");
    assert_bad_input(&["--read", c, "--port", "90-80"], "backwards");
    assert_bad_input(&["--read", c, "--window", "0"], "--window");
    assert_bad_input(&["--read", c, "--threshold", "-1"], "--threshold");
    assert_bad_input(
        &["--read", c, "--report-interval", "0"],
        "--report-interval",
    );
    assert_bad_input(&["--read", c, "--workers", "0"], "--workers");
    assert_bad_input(&["--read", c, "--no-such-option"], "--no-such-option");
    assert_bad_input(&[], "--read");
    // Live-only options with --read, and live option values.
    assert_bad_input(&["--read", c, "--duration", "5"], "--duration");
    assert_bad_input(&["--read", c, "--cores", "1"], "--cores");
    assert_bad_input(&["--read", c, "--ring", "4096"], "--ring");
    assert_bad_input(&["--read", c, "--queues", "0"], "--queues");
    assert_bad_input(&["--mirror", "eth0", "--queues", "0"], "--queues");
    assert_bad_input(&["--read", c, "--interface", "eth0"], "--interface");
    assert_bad_input(&["--interface", "eth0", "--mirror", "eth0"], "--mirror");
    assert_bad_input(&["--interface", "eth0", "--workers", "2"], "--workers");
    assert_bad_input(&["--interface", "eth0", "--ring", "3000"], "power of two");
    assert_bad_input(&["--interface", "eth0", "--queues", "0,0"], "twice");
    assert_bad_input(&["--interface", "eth0", "--queues", "3-1"], "backwards");
    assert_bad_input(&["--interface", "eth0", "--idle", "busy"], "idle policy");
    assert_bad_input(&["--interface", "eth0", "--duration", "0"], "--duration");
    assert_bad_input(
        &["--read", c, "--summary", "/nonexistent-dir/s.json"],
        "cannot write summary",
    );
    assert_bad_input(
        &["--read", c, "--alert-log", "/nonexistent-dir/a.log"],
        "alert log",
    );

    // The valid empty capture itself is fine: zero of everything.
    let out = linewatch(&["--read", c]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_files_fail_in_one_line() {
    let dir = scratch("cli-bad-files");
    let missing = dir.join("missing.pcap");
    assert_bad_input(&["--read", missing.to_str().unwrap()], "cannot read");
    assert_bad_input(&["--read", dir.to_str().unwrap()], "directory");

    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    assert_bad_input(&["--read", empty.to_str().unwrap()], "not a pcap");

    let text = dir.join("notes.txt");
    std::fs::write(&text, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
    assert_bad_input(
        &["--read", text.to_str().unwrap()],
        "not a pcap or pcapng capture",
    );

    // Random bytes, including some that start with a pcapng magic number.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in 0..20 {
        let mut bytes: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        if i % 2 == 0 {
            bytes[..4].copy_from_slice(&[0x0a, 0x0d, 0x0d, 0x0a]);
        }
        let f = dir.join(format!("random-{i}.pcap"));
        std::fs::write(&f, &bytes).unwrap();
        let out = linewatch(&["--read", f.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "random file {i}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "random file {i}: {:?} {stderr}",
            out.status
        );
    }

    let link = dir.join("link.pcap");
    // The same header with the link type (its last field) set to LINKTYPE_USER0.
    let mut header = linewatch_testkit::frame::pcap(&[]);
    let link_type = header.len() - 4..;
    header[link_type].copy_from_slice(&147u32.to_le_bytes());
    std::fs::write(&link, &header).unwrap();
    assert_bad_input(&["--read", link.to_str().unwrap()], "link type 147");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn truncated_capture_is_counted_up_to_the_cut() {
    let Some(full) = corpus::file("pcaps/sv__http-protocol-nodup.pcap") else {
        return;
    };
    let bytes = std::fs::read(&full).unwrap();
    let dir = scratch("cli-truncated");
    let (whole, _) = common::summary_of(&full, &[]);
    let whole_requests = whole["requests"].as_u64().unwrap();
    // Cut in the middle of a record: two thirds in, and a few bytes after a record header.
    for cut in [bytes.len() * 2 / 3, bytes.len() - 7] {
        let cut_file = dir.join(format!("cut-{cut}.pcap"));
        std::fs::write(&cut_file, &bytes[..cut]).unwrap();
        let (summary, out) = common::summary_of(&cut_file, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(summary["truncated"], true, "cut at {cut}");
        assert!(stderr.contains("truncated"), "cut at {cut}: {stderr}");
        let requests = summary["requests"].as_u64().unwrap();
        assert!(
            requests > 0 && requests <= whole_requests,
            "cut at {cut}: {requests} requests"
        );
        let packets = summary["packets"].as_u64().unwrap();
        assert!(packets < whole["packets"].as_u64().unwrap(), "cut at {cut}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A pcap (microsecond times, Ethernet) of `n` GETs on one connection, each frame ending in
/// a send stamp written here byte by byte from the format: `LWSTAMP1`, then the send time as a
/// little-endian u64 of CLOCK_MONOTONIC nanoseconds.
fn stamped_capture(n: u32) -> Vec<u8> {
    const GET: &[u8] = b"GET /stamped HTTP/1.1\r\nHost: lab\r\n\r\n";
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&[2, 0, 4, 0]);
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for i in 0..n {
        let total = u16::try_from(20 + 20 + GET.len()).unwrap().to_be_bytes();
        let seq = 1 + i * u32::try_from(GET.len()).unwrap();
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, total[0], total[1], 0, 1, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2, 0xC0, 0x00, 0x00, 0x50]);
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 2, 0x50, 0x18, 0x02, 0x00, 0, 0, 0, 0]);
        f.extend_from_slice(GET);
        f.extend_from_slice(b"LWSTAMP1");
        f.extend_from_slice(&(86_400_000_000_000u64 + u64::from(i)).to_le_bytes());
        let len = u32::try_from(f.len()).unwrap().to_le_bytes();
        pcap.extend_from_slice(&1_790_000_000u32.to_le_bytes());
        pcap.extend_from_slice(&(i * 1000).to_le_bytes());
        pcap.extend_from_slice(&len);
        pcap.extend_from_slice(&len);
        pcap.extend_from_slice(&f);
    }
    pcap
}

#[test]
fn replay_of_stamped_frames_has_no_capture_latency() {
    let dir = scratch("cli-stamped");
    let file = dir.join("stamped.pcap");
    std::fs::write(&file, stamped_capture(3)).unwrap();
    let (summary, out) = common::summary_of(&file, &[]);
    // The stamps are neither payload nor a decoding problem.
    assert_eq!(summary["requests"], 3);
    assert_eq!(summary["malformed"], 0);
    assert_eq!(summary["undecoded"], 0);
    // A capture file's times are not this host's monotonic clock: nothing is recorded, and
    // the table is there, empty, between response and batch service latency.
    let latency = summary["latency"].as_object().expect("a latency object");
    let keys: Vec<&str> = latency.keys().map(String::as_str).collect();
    assert!(keys.contains(&"capture_us"), "{keys:?}");
    for field in ["count", "p50", "p90", "p99", "p999", "max"] {
        assert_eq!(latency["capture_us"][field], 0, "capture_us.{field}");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let response = text
        .find("response latency")
        .expect("response latency table");
    let capture = text
        .find("capture latency (generator send stamp to worker), in us\n  no values recorded\n")
        .unwrap_or_else(|| panic!("no empty capture latency table in:\n{text}"));
    let batch = text
        .find("batch service time")
        .expect("batch service table");
    assert!(
        response < capture && capture < batch,
        "table order:\n{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_explains_every_option_with_its_default() {
    let out = linewatch(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--read",
        "--port",
        "--threshold",
        "--window",
        "--report-interval",
        "--baseline",
        "--margin",
        "--alert-log",
        "--json",
        "--summary",
        "--workers",
        "--interface",
        "--mirror",
        "--queues",
        "--cores",
        "--ring",
        "--zero-copy",
        "--xdp-generic",
        "--idle",
        "--duration",
    ] {
        assert!(help.contains(option), "--help does not mention {option}");
    }
    // The traffic-stealing caveat of --interface, and the per-mode --port defaults.
    assert!(help.contains("TAKEN AWAY from the kernel"), "{help}");
    assert!(help.contains("80,8080 for --interface"), "{help}");
    for default in ["[default: 10]", "[default: 120]", "[default: hybrid]"] {
        assert!(help.contains(default), "--help does not show {default}");
    }
}

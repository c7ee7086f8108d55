//! Capture files read as tcpdump and tshark read them, and nothing lost around them:
//!
//! - records cut at a snap length (a real `tcpdump -s 96` capture on loopback, as root;
//!   `editcap -s 96`, `-s 400` of corpus captures, as pcap and pcapng), a header
//!   with snap length 0, a record with caplen > origlen and a microsecond field past a
//!   second are all read, mapped or through a pipe: the packet count is tshark's;
//! - a `--summary` or `--alert-log` that is the capture being read (by its own path, a symlink
//!   or a hard link) is refused in one line, exit 2, the capture untouched;
//! - a stdout that fails (`/dev/full`) is one line on stderr and exit 1, a closed pipe ends
//!   quietly with exit 0; the count and the `--summary` file are whole either way;
//! - a pcapng of 5,000,000 interface blocks is read in under 64 MiB;
//! - `--flows 16777216` with two workers on a small capture stays under 256 MiB: flow memory is
//!   taken as flows appear.

#![allow(clippy::print_stdout)] // The figures are the test's report: `run.sh test` shows them.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{linewatch, scratch, summary_of};
use linewatch_testkit::frame::{tcp_frame, TcpFlags};
use linewatch_testkit::{corpus, tools};

/// PSH and ACK: a data segment.
const PSH_ACK: TcpFlags = TcpFlags(0x18);

/// Packets as tshark counts them (one line per frame).
fn tshark_packets(capture: &Path) -> u64 {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(capture)
        .output()
        .expect("running tshark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.iter().filter(|&&b| b == b'\n').count() as u64
}

/// `linewatch --read /dev/stdin` fed `capture` through a pipe (the streamed path, not the
/// map): the summary JSON.
fn summary_through_pipe(capture: &Path, dir: &Path) -> serde_json::Value {
    let summary = dir.join("piped-summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_linewatch"))
        .args(["--read", "/dev/stdin", "--summary"])
        .arg(&summary)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running linewatch");
    let bytes = std::fs::read(capture).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&bytes);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
}

#[test]
fn captures_cut_by_editcap_are_read_whole_as_tshark_reads_them() {
    if !tools::need_programs("captures_cut_by_editcap", &["editcap", "tshark"]) {
        return;
    }
    let dir = scratch("capture-files-editcap");
    for name in [
        "pcaps/sv__http-protocol-nodup.pcap",
        "pcaps/zeek__1000-requests-one-dropped-response.pcap",
        "pcaps/chrissanders__http_espn.pcapng",
    ] {
        let Some(original) = corpus::file(name) else {
            tools::skip_or_fail(&format!("the corpus has no {name}"));
            return;
        };
        // Each cut written both ways: classic pcap (whose header then says the snap length, as
        // `tcpdump -s 96` writes it) and pcapng (editcap's default).
        for (snaplen, format) in [
            ("96", "pcap"),
            ("400", "pcap"),
            ("96", "pcapng"),
            ("400", "pcapng"),
        ] {
            let cut = dir.join(format!(
                "cut-{snaplen}-{}.{format}",
                original.file_stem().unwrap().to_str().unwrap()
            ));
            let status = Command::new("editcap")
                .args(["-F", format, "-s", snaplen])
                .arg(&original)
                .arg(&cut)
                .status()
                .expect("running editcap");
            assert!(status.success());
            let what = format!("{name} cut at {snaplen} as {format}");
            let want = tshark_packets(&cut);
            assert!(want > 30, "{what}: tshark reads {want} packets");
            let (summary, out) = summary_of(&cut, &[]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(summary["packets"].as_u64(), Some(want), "{what}: {stderr}");
            assert!(!stderr.contains("truncated"), "{what}: {stderr}");
            assert_eq!(summary["truncated"], false, "{what}");
            let piped = summary_through_pipe(&cut, &dir);
            assert_eq!(piped["packets"].as_u64(), Some(want), "{what}, piped");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Requests the tcpdump test sends, each on its own connection.
const TCPDUMP_REQUESTS: usize = 5;
/// Bytes of each response body: responses span several segments, each cut at 96 bytes.
const TCPDUMP_BODY: usize = 4_000;

#[test]
fn a_real_tcpdump_s_96_capture_is_read_whole_as_tshark_reads_it() {
    let test = "a_real_tcpdump_s_96_capture";
    if !tools::need_root(test, "tcpdump on the loopback interface")
        || !tools::need_programs(test, &["tcpdump", "tshark"])
    {
        return;
    }
    use std::io::{BufRead, BufReader, Read};
    let dir = scratch("capture-files-tcpdump");
    let capture = dir.join("s96.pcap");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut tcpdump = Command::new("tcpdump")
        // Immediate mode: packets are written as they come, not a ring block at a time, so
        // none are left unread when tcpdump is stopped.
        .args(["-i", "lo", "-s", "96", "--immediate-mode", "-U", "-n", "-w"])
        .arg(&capture)
        .args(["tcp", "port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running tcpdump");
    // tcpdump says "listening on lo" once it captures.
    let mut said = String::new();
    let mut stderr = BufReader::new(tcpdump.stderr.take().unwrap());
    while !said.contains("listening on") {
        said.clear();
        assert!(stderr.read_line(&mut said).unwrap() > 0, "tcpdump ended");
    }
    let server = std::thread::spawn(move || {
        for _ in 0..TCPDUMP_REQUESTS {
            let (mut conn, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap() == 1 {
                head.push(byte[0]);
            }
            // A short head (the body runs to the close): it fits in 96 bytes with its
            // headers, the body's frames are cut.
            let mut response = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
            response.resize(response.len() + TCPDUMP_BODY, b'x');
            conn.write_all(&response).unwrap();
        }
    });
    for n in 0..TCPDUMP_REQUESTS {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // One write, one segment: 66 bytes of headers (TCP with timestamps) and a 28-byte
        // head fit in 96.
        let request = format!("GET /{n} HTTP/1.1\r\nHost: l\r\n\r\n");
        conn.write_all(request.as_bytes()).unwrap();
        let mut reply = Vec::new();
        conn.read_to_end(&mut reply).unwrap();
        assert!(reply.len() > TCPDUMP_BODY);
    }
    server.join().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &tcpdump.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    tcpdump.wait().unwrap();

    let bytes = std::fs::read(&capture).unwrap();
    assert_eq!(
        bytes[16..20],
        96u32.to_le_bytes(),
        "the header's snap length"
    );
    let want = tshark_packets(&capture);
    assert!(want > 30, "tshark reads {want} packets");
    let (summary, out) = summary_of(&capture, &["--port", &port.to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(summary["packets"].as_u64(), Some(want), "{stderr}");
    assert_eq!(summary["truncated"], false, "{stderr}");
    // The heads fit in 96 bytes: each request and response is counted, the cut body frames
    // after them are read on.
    assert_eq!(summary["requests"].as_u64(), Some(TCPDUMP_REQUESTS as u64));
    assert_eq!(summary["responses"].as_u64(), Some(TCPDUMP_REQUESTS as u64));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A request from its own client port.
fn request(port: u16) -> Vec<u8> {
    let client: SocketAddr = format!("10.0.0.1:{port}").parse().unwrap();
    let server: SocketAddr = "10.0.0.2:80".parse().unwrap();
    tcp_frame(
        client,
        server,
        PSH_ACK,
        b"GET /odd HTTP/1.1\r\nHost: h\r\n\r\n",
    )
}

/// A classic little-endian microsecond pcap with snap length 0, and five odd records: a whole
/// request, one cut at 60 bytes, one with 10 bytes more captured than on the wire, one whose
/// microsecond field is 1,500,000, and a whole one.
fn odd_pcap() -> Vec<u8> {
    let mut f = linewatch_testkit::frame::pcap(&[]);
    f[16..20].copy_from_slice(&0u32.to_le_bytes()); // snap length 0
    let mut record = |secs: u32, micros: u32, data: &[u8], orig: usize| {
        let caplen = u32::try_from(data.len()).unwrap();
        let orig = u32::try_from(orig).unwrap();
        for w in [secs, micros, caplen, orig] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(data);
    };
    let a = request(40_001);
    record(1_700_000_000, 0, &a, a.len());
    let b = request(40_002);
    record(1_700_000_000, 10, &b[..60], b.len());
    let mut c = request(40_003);
    let c_len = c.len();
    c.extend_from_slice(&[0; 10]);
    record(1_700_000_000, 20, &c, c_len);
    let d = request(40_004);
    record(1_700_000_000, 1_500_000, &d, d.len());
    let e = request(40_005);
    record(1_700_000_002, 0, &e, e.len());
    f
}

#[test]
fn odd_records_are_read_on_mapped_and_piped() {
    let dir = scratch("capture-files-odd");
    let capture = dir.join("odd.pcap");
    std::fs::write(&capture, odd_pcap()).unwrap();
    if tools::need_programs("odd_records_are_read", &["tshark"]) {
        assert_eq!(tshark_packets(&capture), 5);
    }
    let (summary, out) = summary_of(&capture, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "{stderr}");
    let piped = summary_through_pipe(&capture, &dir);
    for s in [&summary, &piped] {
        assert_eq!(s["packets"].as_u64(), Some(5), "{s}");
        assert_eq!(s["truncated"], false);
        // The cut one is a cut frame (its head is item 4's), the other four are counted.
        assert_eq!(s["requests"].as_u64(), Some(4), "{s}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asserts a refusal: exit 2, one line naming `option`, the capture's bytes unchanged.
fn assert_refused(args: &[&str], option: &str, capture: &Path, bytes: &[u8]) {
    let out = linewatch(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(
        stderr.starts_with("linewatch: ")
            && stderr.contains(option)
            && stderr.contains("capture being read"),
        "{args:?}: {stderr}"
    );
    assert_eq!(
        std::fs::read(capture).unwrap(),
        bytes,
        "{args:?}: the capture changed"
    );
}

#[test]
fn an_output_that_is_the_capture_is_refused_and_the_capture_untouched() {
    let dir = scratch("capture-files-same");
    let capture = dir.join("in.pcap");
    let bytes = odd_pcap();
    std::fs::write(&capture, &bytes).unwrap();
    let link = dir.join("link.pcap");
    std::os::unix::fs::symlink(&capture, &link).unwrap();
    let hard = dir.join("hard.pcap");
    std::fs::hard_link(&capture, &hard).unwrap();
    let c = capture.to_str().unwrap();
    let dotted = format!("{}/./in.pcap", dir.display());
    for output in [c, link.to_str().unwrap(), hard.to_str().unwrap(), &dotted] {
        assert_refused(
            &["--read", c, "--summary", output],
            "--summary",
            &capture,
            &bytes,
        );
        assert_refused(
            &["--read", c, "--alert-log", output],
            "--alert-log",
            &capture,
            &bytes,
        );
        // Read through the link, written to the file itself.
        assert_refused(
            &["--read", output, "--summary", c],
            "--summary",
            &capture,
            &bytes,
        );
    }
    // Another file is fine, and is written.
    let other = dir.join("summary.json");
    let out = linewatch(&["--read", c, "--summary", other.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(std::fs::metadata(&other).unwrap().len() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The corpus capture with many requests, for outputs long enough to fail.
fn many_requests() -> Option<std::path::PathBuf> {
    let name = "pcaps/zeek__1000-requests-one-dropped-response.pcap";
    let file = corpus::file(name);
    if file.is_none() {
        tools::skip_or_fail(&format!("the corpus has no {name}"));
    }
    file
}

#[test]
fn a_stdout_that_fails_is_an_error_and_a_closed_pipe_ends_quietly() {
    let Some(capture) = many_requests() else {
        return;
    };
    let dir = scratch("capture-files-stdout");
    let summary = dir.join("summary.json");
    // linewatch with its stdout on `stdout`: its exit code, stderr and summary's request count.
    let run = |json: bool, stdout: Stdio| {
        let _ = std::fs::remove_file(&summary);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_linewatch"));
        cmd.arg("--read")
            .arg(&capture)
            .arg("--summary")
            .arg(&summary);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.stdout(stdout).output().unwrap();
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            s["requests"].as_u64(),
        )
    };
    for json in [true, false] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let (code, stderr, requests) = run(json, full.into());
        assert_eq!(code, Some(1), "--json {json}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("stdout")).collect();
        assert_eq!(errors.len(), 1, "--json {json}: {stderr}");
        assert!(
            errors[0].starts_with("linewatch: cannot write to stdout: "),
            "{stderr}"
        );
        assert_eq!(requests, Some(1000), "--json {json}: the count went on");

        // A reader that has gone: quiet, exit 0, the summary written.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let (code, stderr, requests) = run(json, writer.into());
        assert_eq!(code, Some(0), "--json {json}: {stderr}");
        assert!(!stderr.contains("stdout"), "--json {json}: {stderr}");
        assert_eq!(requests, Some(1000));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Prints the run's peak RSS (the test's figure) and asserts it is under `limit` bytes.
fn assert_peak_rss_under(summary: &serde_json::Value, limit: u64, what: &str) {
    let rss = summary["peak_rss_bytes"]
        .as_u64()
        .expect("peak RSS reported on Linux");
    let mib = |bytes: u64| bytes as f64 / 1_048_576.0;
    println!("peak RSS {what}: {:.1} MiB", mib(rss));
    assert!(
        rss < limit,
        "peak RSS {what}: {:.1} MiB is not under {:.0} MiB",
        mib(rss),
        mib(limit)
    );
}

/// The limit for the interface-block file, as for the 1M-key replay in tests/memory.rs.
const INTERFACES_LIMIT_BYTES: u64 = 64 * 1024 * 1024;
/// Interface blocks in the file.
const INTERFACE_BLOCKS: usize = 5_000_000;

#[test]
fn five_million_pcapng_interface_blocks_fit_in_64_mib() {
    let dir = scratch("capture-files-interfaces");
    let capture = dir.join("interfaces.pcapng");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&capture).unwrap());
        // Section header: type, length 28, byte-order magic, version 1.0, length unknown.
        for w in [0x0A0D_0D0Au32, 28, 0x1A2B_3C4D, 1, u32::MAX, u32::MAX, 28] {
            out.write_all(&w.to_le_bytes()).unwrap();
        }
        // Interface block: Ethernet, snap length 0, one option (a 64-byte comment) padding it
        // to what a writer with a description would emit.
        let comment = [b'x'; 64];
        let len = 20 + 4 + u32::try_from(comment.len()).unwrap() + 4;
        let mut idb = Vec::new();
        for w in [1u32, len, 1, 0] {
            idb.extend_from_slice(&w.to_le_bytes());
        }
        idb.extend_from_slice(&1u16.to_le_bytes()); // opt_comment
        idb.extend_from_slice(&u16::try_from(comment.len()).unwrap().to_le_bytes());
        idb.extend_from_slice(&comment);
        idb.extend_from_slice(&[0, 0, 0, 0]); // opt_endofopt
        idb.extend_from_slice(&len.to_le_bytes());
        for _ in 0..INTERFACE_BLOCKS {
            out.write_all(&idb).unwrap();
        }
        // One packet on interface 0.
        let frame = request(40_000);
        let caplen = u32::try_from(frame.len()).unwrap();
        let padded = frame.len().next_multiple_of(4);
        let len = 32 + u32::try_from(padded).unwrap();
        for w in [6u32, len, 0, 0, 0, caplen, caplen] {
            out.write_all(&w.to_le_bytes()).unwrap();
        }
        out.write_all(&frame).unwrap();
        out.write_all(&vec![0; padded - frame.len()]).unwrap();
        out.write_all(&len.to_le_bytes()).unwrap();
        out.flush().unwrap();
    }
    let (summary, _) = summary_of(&capture, &[]);
    assert_peak_rss_under(
        &summary,
        INTERFACES_LIMIT_BYTES,
        &format!("reading {INTERFACE_BLOCKS} interface blocks"),
    );
    assert_eq!(summary["packets"].as_u64(), Some(1));
    assert_eq!(summary["requests"].as_u64(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The limit for a replay at the largest `--flows`.
const MAX_FLOWS_LIMIT_BYTES: u64 = 256 * 1024 * 1024;

#[test]
fn the_largest_flow_table_costs_nothing_until_flows_appear() {
    let Some(capture) = corpus::file("pcaps/sv__http-protocol-nodup.pcap") else {
        tools::skip_or_fail("the corpus has no sv__http-protocol-nodup.pcap");
        return;
    };
    let (summary, _) = summary_of(&capture, &["--flows", "16777216", "--workers", "2"]);
    assert_peak_rss_under(
        &summary,
        MAX_FLOWS_LIMIT_BYTES,
        "with --flows 16777216 --workers 2",
    );
    assert_eq!(summary["requests"].as_u64(), Some(40));
}

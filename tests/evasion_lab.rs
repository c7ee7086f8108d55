//! The evasion lab (issue 15 item 5): a client that writes its own TCP segments and IP packets
//! sends nginx requests the way an evader would — out of order, one byte at a time, with
//! overlapping retransmissions that carry different bytes, in IPv4 and IPv6 fragments, with
//! bare-LF line ends — and nginx's access log is the answer. linewatch `--mirror` on the
//! server's veth, and `--read` on tcpdump's capture of the same run, must each count exactly
//! the requests nginx logged, per method, section, host and status, a response for each, and
//! nothing else.
//!
//! ```text
//!   client namespace                              server namespace
//!   lwnc0  (10.202.0.2, fd00:202::2: the kernel's) ── veth ── lwns0  10.202.0.1  nginx :8080
//!     packet socket speaking as 10.202.0.3 and                       fd00:202::1  nginx :8080
//!     fd00:202::3 (nobody's: no kernel RST)       permanent neighbours for .3 and ::3
//!                                                 linewatch --mirror lwns0, tcpdump -i lwns0
//! ```
//!
//! Each case is one connection (its own source port) whose requests carry their own Host
//! (`cNN.lab`) and section (`/cNN...`), so a difference names the case: the table printed
//! says, per case, what nginx logged and what each linewatch counted. Every case must be
//! served by nginx (its answer read by the client, its requests in the log), or the lab is
//! not the judge it claims to be and the test fails on that first. The overlap cases do not
//! say which bytes win: nginx's log does (the table shows the target it saw).
//!
//! The raw client is `live::raw_client`; the IPv4 lab (namespaces, nginx) is `live::lab`; the
//! IPv6 server is a second nginx in the same namespace, run on the lab's own configuration
//! with its listen lines and files moved, so it serves and logs the same way. The
//! capture keeps the monitored port and every IP fragment (a `tcp port` filter alone drops
//! every non-first fragment).
//!
//! Needs root, ip, tc, nginx, curl and tcpdump; without them it prints a note and passes,
//! with `CI` set it fails. Run it (as root):
//!
//! ```text
//! cargo test --profile ci --test evasion_lab -- --nocapture
//! ```

#![allow(clippy::print_stdout)] // The table is the test's report.

mod common;
mod live;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use linewatch_testkit::tools::path_of;
use live::access_log::{self, Counts, Entry};
use live::lab::{Lab, COMMAND_TIMEOUT, MONITORED_PORT, SERVER_ADDR};
use live::process::{run, Proc};
use live::raw_client::{self, Conn, Link, Outcome};
use live::{lab_for, print_table, serial};

const TOOLS: &[&str] = &["nginx", "curl", "tcpdump"];

/// The raw client's IPv4 address: in the lab's subnet, owned by no kernel.
const RAW_V4: &str = "10.202.0.3";
/// The IPv6 side of the lab: the server's address, the client kernel's (for the readiness
/// probe only) and the raw client's (owned by no kernel).
const SERVER_V6: &str = "fd00:202::1";
const CLIENT_V6: &str = "fd00:202::2";
const RAW_V6: &str = "fd00:202::3";
const V6_PREFIX: &str = "64";
/// Case `i` speaks from this port plus `i`.
const FIRST_PORT: u16 = 42_000;
/// How long a case waits for the handshake, and for nginx's answer and close.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the IPv6 nginx gets to answer its first probe.
const NGINX_START: Duration = Duration::from_secs(10);
/// Answers 204 on the IPv6 nginx and is not logged.
const READY_PATH: &str = "/ready";
/// Fragment cuts (bytes of the TCP segment, multiples of 8): the first fragment holds the
/// 20-byte TCP header and the method, the second the target, the last the rest.
const FRAGMENT_CUTS: &[usize] = &[24, 48];

/// What linewatch needs to count a case, for the table (the assertion covers every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// In-order segments: the parser alone.
    Parser,
    /// Segments out of order or overlapping while held: TCP reassembly.
    TcpReassembly,
    /// IP fragments: fragment reassembly (live: fragments reaching the flow's worker).
    IpReassembly,
}

impl Needs {
    fn label(self) -> &'static str {
        match self {
            Needs::Parser => "parser",
            Needs::TcpReassembly => "tcp reassembly",
            Needs::IpReassembly => "ip reassembly",
        }
    }
}

/// One thing the client sends.
#[derive(Debug, Clone)]
enum Step {
    /// These bytes in one segment at this stream offset.
    Segment(usize, Vec<u8>),
    /// The whole stream in one segment, sent as IP fragments cut at [`FRAGMENT_CUTS`], last
    /// fragment first when `reversed`.
    Fragments { reversed: bool },
}

/// One connection: what it sends, in which order, and what nginx must serve of it.
#[derive(Debug)]
struct Case {
    /// `cNN`: its Host is `cNN.lab` and its sections start `/cNN`.
    tag: &'static str,
    what: &'static str,
    v6: bool,
    /// The bytes in stream order (for the overlap cases: one of the two versions).
    stream: Vec<u8>,
    steps: Vec<Step>,
    /// Requests nginx serves on this connection.
    requests: u64,
    needs: Needs,
}

impl Case {
    /// An IPv4 case of one request that the parser alone can count; the methods below change
    /// that.
    fn new(tag: &'static str, what: &'static str, stream: &[u8], steps: Vec<Step>) -> Case {
        Case {
            tag,
            what,
            v6: false,
            stream: stream.to_vec(),
            steps,
            requests: 1,
            needs: Needs::Parser,
        }
    }

    fn v6(self) -> Case {
        Case { v6: true, ..self }
    }

    fn requests(self, requests: u64) -> Case {
        Case { requests, ..self }
    }

    fn needs(self, needs: Needs) -> Case {
        Case { needs, ..self }
    }

    fn host(&self) -> String {
        format!("{}.lab", self.tag)
    }
}

/// `METHOD target HTTP/1.1`, `Host: tag.lab`, the extra header lines, an empty line; lines
/// end in `eol`.
fn request(method: &str, target: &str, tag: &str, extra: &[&str], eol: &str) -> Vec<u8> {
    let mut text = format!("{method} {target} HTTP/1.1{eol}Host: {tag}.lab{eol}");
    for line in extra {
        text.push_str(line);
        text.push_str(eol);
    }
    text.push_str(eol);
    text.into_bytes()
}

const CLOSE: &str = "Connection: close";
const CRLF: &str = "\r\n";

/// The whole stream in one segment.
fn one_segment(stream: &[u8]) -> Vec<Step> {
    vec![Step::Segment(0, stream.to_vec())]
}

/// Where the marker byte of an overlap case is: the `a` of its `-a/`.
fn marker_at(stream: &[u8]) -> usize {
    stream
        .windows(3)
        .position(|w| w == b"-a/")
        .expect("an overlap case's target holds -a/")
        + 1
}

/// `stream` with its marker byte turned from `a` into `b`: the other version of the bytes.
fn other_version(stream: &[u8]) -> Vec<u8> {
    let mut other = stream.to_vec();
    other[marker_at(stream)] = b'b';
    other
}

fn cases() -> Vec<Case> {
    use Needs::{IpReassembly, TcpReassembly};
    let mut all = Vec::new();

    let s = request("GET", "/docs/guide/v1/intro.html", "c01", &[CLOSE], CRLF);
    all.push(Case::new(
        "c01",
        "control: one segment (IPv4)",
        &s,
        one_segment(&s),
    ));

    let extra = ["User-Agent: evasion-lab", CLOSE];
    let s = request("GET", "/c02/halves", "c02", &extra, CRLF);
    let mid = s.len() / 2;
    let steps = vec![
        Step::Segment(mid, s[mid..].to_vec()),
        Step::Segment(0, s[..mid].to_vec()),
    ];
    all.push(Case::new("c02", "two halves, second half first", &s, steps).needs(TcpReassembly));

    let first = request("GET", "/c03/first", "c03", &[], CRLF);
    let second = request("HEAD", "/c03/second", "c03", &[CLOSE], CRLF);
    let s = [first.clone(), second.clone()].concat();
    let steps = vec![Step::Segment(first.len(), second), Step::Segment(0, first)];
    let what = "two pipelined requests, second segment first";
    all.push(
        Case::new("c03", what, &s, steps)
            .requests(2)
            .needs(TcpReassembly),
    );

    let extra = ["Content-Length: 5", CLOSE];
    let s = [
        request("POST", "/c04/bytes", "c04", &extra, CRLF),
        b"hello".to_vec(),
    ]
    .concat();
    let steps = (0..s.len())
        .map(|at| Step::Segment(at, vec![s[at]]))
        .collect();
    all.push(Case::new(
        "c04",
        "one-byte segments (POST with a body)",
        &s,
        steps,
    ));

    // A segment, then a retransmission that starts inside it with a different marker byte
    // and goes on with new bytes: Linux keeps the byte it already delivered (`a`).
    let s = request("GET", "/c05-a/overlap", "c05", &[CLOSE], CRLF);
    let (at, other) = (marker_at(&s), other_version(&s));
    let steps = vec![
        Step::Segment(0, s[..at + 3].to_vec()),
        Step::Segment(at - 4, other[at - 4..].to_vec()),
    ];
    let what = "in-order overlap, different bytes (retransmission)";
    all.push(Case::new("c05", what, &s, steps));

    // A hole at 0..4; held: a segment ending in marker `a`, then one starting on the marker
    // with `b` and going on (a partial overlap); then the hole filled. Seen in the lab: Linux
    // keeps both and delivers the earlier one first, so nginx gets `a`.
    let s = request("GET", "/c06-a/overlap", "c06", &[CLOSE], CRLF);
    let (at, other) = (marker_at(&s), other_version(&s));
    let steps = vec![
        Step::Segment(4, s[4..=at].to_vec()),
        Step::Segment(at, other[at..].to_vec()),
        Step::Segment(0, s[..4].to_vec()),
    ];
    let what = "held overlap (partial), different bytes, then the hole";
    all.push(Case::new("c06", what, &s, steps).needs(TcpReassembly));

    // A hole before the marker; held: the marker `a` alone, then a segment from the same
    // offset with `b` and the rest; then the hole filled. Seen in the lab: the later segment
    // covers the held one and replaces it, so nginx gets `b`.
    let s = request("GET", "/c07-a/overlap", "c07", &[CLOSE], CRLF);
    let (at, other) = (marker_at(&s), other_version(&s));
    let steps = vec![
        Step::Segment(at, s[at..=at].to_vec()),
        Step::Segment(at, other[at..].to_vec()),
        Step::Segment(0, s[..at].to_vec()),
    ];
    let what = "held overlap (covering), different bytes, then the hole";
    all.push(Case::new("c07", what, &s, steps).needs(TcpReassembly));

    let fragmented = |tag: &'static str, what, reversed| {
        let s = request("GET", &format!("/{tag}/fragments"), tag, &[CLOSE], CRLF);
        Case::new(tag, what, &s, vec![Step::Fragments { reversed }]).needs(IpReassembly)
    };
    all.push(fragmented("c08", "IPv4 fragments in order", false));
    all.push(fragmented("c09", "IPv4 fragments, last first", true));
    let s = request("GET", "/c10/control", "c10", &[CLOSE], CRLF);
    all.push(Case::new("c10", "control: one segment (IPv6)", &s, one_segment(&s)).v6());
    all.push(fragmented("c11", "IPv6 fragments in order", false).v6());
    all.push(fragmented("c12", "IPv6 fragments, last first", true).v6());

    let s = request("GET", "/c13/lf", "c13", &[CLOSE], "\n");
    all.push(Case::new("c13", "bare LF line ends", &s, one_segment(&s)));

    let s = b"GET /c14/mixed HTTP/1.1\r\nHost: c14.lab\nAccept: */*\r\nConnection: close\n\r\n";
    all.push(Case::new(
        "c14",
        "CRLF and bare LF mixed",
        s,
        one_segment(s),
    ));

    let s = [
        request("GET", "/c15/1", "c15", &[], "\n"),
        request("DELETE", "/c15/2", "c15", &[], "\n"),
        request("GET", "/c15/3", "c15", &[CLOSE], "\n"),
    ]
    .concat();
    let what = "three bare-LF requests pipelined in one segment";
    all.push(Case::new("c15", what, &s, one_segment(&s)).requests(3));
    all
}

/// The IPv6 nginx's configuration: the lab's own (`lab_conf`, written in `lab_dir`), serving
/// the same site the same way, with its listen lines on the IPv6 address and its pid, logs
/// and temp files in `v6_dir`.
///
/// # Panics
/// When the lab's configuration no longer has what is moved (a listen line on the monitored
/// port, the unlogged readiness location).
fn nginx_v6_conf(lab_conf: &str, lab_dir: &Path, v6_dir: &Path) -> String {
    let listen = format!("listen {SERVER_ADDR}:{MONITORED_PORT};");
    let ready = format!("location = {READY_PATH} {{ access_log off;");
    for needed in [&listen, &ready] {
        assert!(
            lab_conf.contains(needed.as_str()),
            "the lab's nginx.conf has no {needed:?}:\n{lab_conf}"
        );
    }
    let (lab_dir, v6_dir) = (lab_dir.display(), v6_dir.display());
    lab_conf
        .replace(&format!("{lab_dir}/"), &format!("{v6_dir}/"))
        .replace(&format!("{v6_dir}/www"), &format!("{lab_dir}/www"))
        .replace(
            &format!("listen {SERVER_ADDR}:"),
            &format!("listen [{SERVER_V6}]:"),
        )
}

/// Gives both veth ends their IPv6 address, then starts the IPv6 nginx in the server
/// namespace (files in `lab.dir/v6`: see [`nginx_v6_conf`]) and waits until it answers. Returns it and its directory.
///
/// # Panics
/// When an address cannot be added or nginx does not answer in time.
fn start_nginx_v6(lab: &Lab) -> (Proc, PathBuf) {
    lab.server()
        .add_addr(&lab.server_veth, &format!("{SERVER_V6}/{V6_PREFIX}"))
        .unwrap_or_else(|e| panic!("{e}"));
    lab.client()
        .add_addr(&lab.client_veth, &format!("{CLIENT_V6}/{V6_PREFIX}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = lab.dir.join("v6");
    for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.join("tmp").join(sub)).expect("mkdir v6/tmp");
    }
    let conf = dir.join("nginx.conf");
    let lab_conf =
        std::fs::read_to_string(lab.dir.join("nginx.conf")).expect("the lab's nginx.conf");
    std::fs::write(&conf, nginx_v6_conf(&lab_conf, &lab.dir, &dir)).expect("writing nginx.conf");
    let mut cmd = lab.server().exec(path_of("nginx"));
    cmd.arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"));
    let mut nginx = Proc::spawn("nginx (IPv6)", cmd);
    let deadline = Instant::now() + NGINX_START;
    let url = format!("http://[{SERVER_V6}]:{MONITORED_PORT}{READY_PATH}");
    loop {
        if let Some(status) = nginx.wait_timeout(Duration::ZERO) {
            panic!(
                "the IPv6 nginx exited ({status}); stderr:\n{}",
                nginx.stderr_text()
            );
        }
        let mut probe = lab.curl_status();
        probe.args(["-g", "--max-time", "1"]).arg(&url);
        if run("curl", probe, COMMAND_TIMEOUT).stdout == "204" {
            return (nginx, dir);
        }
        assert!(
            Instant::now() < deadline,
            "the IPv6 nginx did not answer {url} within {NGINX_START:?}; error.log:\n{}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Makes the server reach the raw client's addresses without asking: permanent neighbour
/// entries to the client veth's MAC (nobody would answer the server's ARP or NS for them).
fn add_neighbours(lab: &Lab, client_mac: [u8; 6]) {
    let mac = client_mac.map(|b| format!("{b:02x}")).join(":");
    for addr in [RAW_V4, RAW_V6] {
        lab.ip_server(&[
            "neigh",
            "add",
            addr,
            "lladdr",
            &mac,
            "dev",
            &lab.server_veth,
            "nud",
            "permanent",
        ]);
    }
}

/// Runs every case on one thread pinned to one CPU (so that the frames reach the server in
/// the order they are sent); returns each case's outcome.
fn run_cases(link: &Link, cases: &[Case]) -> Vec<Result<Outcome, String>> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                raw_client::pin_to_this_cpu().unwrap_or_else(|e| panic!("{e}"));
                cases
                    .iter()
                    .enumerate()
                    .map(|(i, case)| run_case(link, i, case))
                    .collect()
            })
            .join()
            .expect("the client thread")
    })
}

fn run_case(link: &Link, index: usize, case: &Case) -> Result<Outcome, String> {
    let (local, remote): (IpAddr, IpAddr) = if case.v6 {
        (RAW_V6.parse().expect("v6"), SERVER_V6.parse().expect("v6"))
    } else {
        (
            RAW_V4.parse().expect("v4"),
            SERVER_ADDR.parse().expect("v4"),
        )
    };
    let offset = u16::try_from(index).expect("a few cases");
    let local = SocketAddr::new(local, FIRST_PORT + offset);
    let remote = SocketAddr::new(remote, MONITORED_PORT);
    // Initial sequence numbers spread over the space, one per case.
    let iss = u32::from(offset)
        .wrapping_mul(0x1357_9BDF)
        .wrapping_add(0x0246_8ACE);
    let mut conn = Conn::connect(link, local, remote, iss, HANDSHAKE_TIMEOUT)
        .map_err(|e| format!("{}: {e}", case.tag))?;
    for step in &case.steps {
        match step {
            Step::Segment(at, bytes) => conn.send_at(*at, bytes)?,
            Step::Fragments { reversed } => conn.send_fragments(
                0,
                &case.stream,
                u32::from(offset) + 1,
                FRAGMENT_CUTS,
                *reversed,
            )?,
        }
    }
    conn.finish(ANSWER_TIMEOUT)
}

/// Requests per host (`cNN.lab`) in a summary.
fn hosts_of(summary: &serde_json::Value) -> BTreeMap<String, u64> {
    common::map_of(summary, "hosts")
}

/// Prints one line per case: what nginx logged and served, what each linewatch counted.
fn print_cases(
    cases: &[Case],
    outcomes: &[Result<Outcome, String>],
    logged: &[Entry],
    live_hosts: &BTreeMap<String, u64>,
    read_hosts: &BTreeMap<String, u64>,
) {
    println!("\nper case (requests under the case's Host):");
    println!(
        "| case | {:<56} | {:<14} | nginx | --mirror | --read | nginx's answers | nginx logged",
        "what", "needs"
    );
    for (case, outcome) in cases.iter().zip(outcomes) {
        let host = case.host();
        let entries: Vec<&Entry> = logged.iter().filter(|e| e.host_as_sent() == host).collect();
        let count = |m: &BTreeMap<String, u64>| m.get(&host).copied().unwrap_or(0);
        let (live, read) = (count(live_hosts), count(read_hosts));
        let n = entries.len() as u64;
        let answers = match outcome {
            Ok(o) => o.statuses().join(" "),
            Err(e) => format!("error: {e}"),
        };
        let targets: Vec<String> = entries
            .iter()
            .map(|e| format!("{} {} {}", e.method, e.target, e.status))
            .collect();
        let mark = if live == n && read == n {
            ""
        } else {
            "  <-- differs"
        };
        println!(
            "| {} | {:<56} | {:<14} | {n:>5} | {live:>8} | {read:>6} | {answers:<15} | {}{mark}",
            case.tag,
            case.what,
            case.needs.label(),
            targets.join(", ")
        );
    }
}

#[test]
#[allow(clippy::too_many_lines)] // One lab run, then its checks in order.
fn evasions_are_counted_as_nginx_served_them() {
    let _serial = serial();
    let Some(lab) = lab_for("evasions_are_counted_as_nginx_served_them", TOOLS) else {
        return;
    };
    let (_nginx_v6, v6_dir) = start_nginx_v6(&lab);
    let client_mac =
        raw_client::mac_of(lab.client(), &lab.client_veth).unwrap_or_else(|e| panic!("{e}"));
    let server_mac =
        raw_client::mac_of(lab.server(), &lab.server_veth).unwrap_or_else(|e| panic!("{e}"));
    add_neighbours(&lab, client_mac);
    let link =
        Link::open(lab.client(), &lab.client_veth, server_mac).unwrap_or_else(|e| panic!("{e}"));

    let (capture, lw) = live::capture_and_mirror(&lab, "evasion");
    let port = MONITORED_PORT.to_string();
    let cases = cases();
    let outcomes = run_cases(&link, &cases);
    std::thread::sleep(live::SETTLE);
    let live_summary = lw.interrupt();
    let capture_file = capture.file.clone();
    let frames = capture.stop();
    let (read_summary, _) = common::summary_of(&capture_file, &["--port", &port]);

    let mut logged = access_log::read(&lab.access_log());
    logged.extend(access_log::read(&v6_dir.join("access.log")));
    print_cases(
        &cases,
        &outcomes,
        &logged,
        &hosts_of(&live_summary),
        &hosts_of(&read_summary),
    );
    println!("\ntcpdump: {frames} frames on {}", lab.server_veth);

    // The judge first: nginx served every case in full, and nothing else.
    for (case, outcome) in cases.iter().zip(&outcomes) {
        let outcome = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let statuses = outcome.statuses();
        assert!(
            outcome.closed
                && statuses.len() as u64 == case.requests
                && !statuses.iter().any(|s| s == "400"),
            "{} {}: nginx answered {statuses:?} (closed {}, reset {}), not {} served requests:\n{}",
            case.tag,
            case.what,
            outcome.closed,
            outcome.reset,
            case.requests,
            String::from_utf8_lossy(&outcome.answer)
        );
        let n = logged
            .iter()
            .filter(|e| e.host_as_sent() == case.host())
            .count() as u64;
        assert_eq!(
            n, case.requests,
            "{} {}: requests in nginx's log",
            case.tag, case.what
        );
    }
    let served: u64 = cases.iter().map(|c| c.requests).sum();
    assert_eq!(
        logged.len() as u64,
        served,
        "nginx logged requests of no case: {logged:#?}"
    );

    let truth = Counts::of(&logged, MONITORED_PORT);
    let mut differences = Vec::new();
    for (label, summary) in [
        ("linewatch --mirror vs nginx's access logs", &live_summary),
        (
            "linewatch --read <tcpdump> vs nginx's access logs",
            &read_summary,
        ),
    ] {
        let ours = Counts::of_summary(summary);
        let responses = summary["responses"].as_u64().expect("summary `responses`");
        print_table(label, &truth, &ours, responses);
        println!(
            "linewatch: packets {} retransmitted {} malformed {} non_http {} bare_lf {} fragments {}",
            summary["packets"],
            summary["retransmitted"],
            summary["malformed"],
            summary["non_http"],
            summary["bare_lf"],
            summary["fragments"]
        );
        if ours != truth || responses != truth.requests {
            differences.push(label);
        }
    }
    assert!(
        differences.is_empty(),
        "counts differ from nginx's access logs (tables above): {differences:?}"
    );
}

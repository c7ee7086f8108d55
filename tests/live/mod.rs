//! The live test kit: the lab ([`lab`]: namespaces, veth, nginx), the clients ([`traffic`]:
//! curl and wrk), the truth ([`access_log`]), child processes with deadlines and kill-on-drop
//! ([`process`]), and here: the preflight that turns "cannot run" into a skip (or, with `CI`
//! set, a failure: [`linewatch_testkit::tools`]), linewatch as a live child, and the
//! nginx-vs-linewatch comparison.

// A kit shared by several test binaries: each uses part of it.
#![allow(unreachable_pub, clippy::print_stdout, dead_code)]

pub mod access_log;
pub mod lab;
pub mod lossy;
pub mod pipe;
pub mod process;
pub mod raw_client;
pub mod traffic;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use access_log::Counts;
use lab::Lab;
use linewatch_testkit::tools;
use process::{Finished, Proc};

/// The line linewatch writes to stderr once capture is attached and ready.
pub const READY_LINE: &str = "linewatch: capturing on ";
/// How long linewatch gets to attach.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long linewatch gets to write its summary and exit after SIGINT.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// After the last client exits: time for the last frames to cross the rings and the last
/// epoch to be collected before SIGINT.
pub const SETTLE: Duration = Duration::from_secs(1);

/// One live test at a time: they load the same two cores, and the figures they print are only
/// comparable without a neighbour.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the live tests' lock (a test that failed while holding it does not poison the rest).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks root and the programs in `programs` (plus ip and tc), then builds the lab. `None`
/// means skip (outside CI only: see [`linewatch_testkit::tools`]).
///
/// # Panics
/// With `CI` set, when any precondition is missing; always, when nginx fails in a lab whose
/// network came up.
pub fn lab_for(test: &str, programs: &[&str]) -> Option<Lab> {
    let needed: Vec<&str> = ["ip", "tc"].iter().chain(programs).copied().collect();
    if !(tools::need_root(test, "network namespaces, veth, tc, XDP")
        && tools::need_programs(test, &needed))
    {
        return None;
    }
    match Lab::new() {
        Ok(lab) => Some(lab),
        Err(why) => {
            tools::skip_or_fail(&format!("{test} cannot run: network namespaces: {why}"));
            None
        }
    }
}

/// Starts linewatch on the lab's server veth watching `port` (its summary in `dir`), sends
/// `capture` from the client end with tcpreplay at `pps` frames a second, waits `settle`
/// and interrupts linewatch: its summary.
///
/// # Panics
/// When tcpreplay or linewatch fails (with its stderr).
pub fn tcpreplay_to_linewatch(
    lab: &Lab,
    dir: &Path,
    capture: &Path,
    pps: &str,
    port: u16,
    settle: Duration,
) -> serde_json::Value {
    let summary = dir.join("summary.json");
    let port = port.to_string();
    let lw = Linewatch::ready(
        lab,
        &["--interface", &lab.server_veth, "--port", &port],
        &summary,
        READY_TIMEOUT,
    );
    let out = lab
        .client()
        .exec("tcpreplay")
        .args(["--intf1", &lab.client_veth, "--pps", pps])
        .arg(capture)
        .output()
        .expect("running tcpreplay");
    assert!(
        out.status.success(),
        "tcpreplay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::thread::sleep(settle);
    lw.interrupt()
}

/// linewatch running live inside the lab's server namespace.
#[derive(Debug)]
pub struct Linewatch {
    proc: Proc,
    pub summary: PathBuf,
    args: Vec<String>,
}

impl Linewatch {
    /// Starts `linewatch args... --summary <summary>` in the server namespace (not waiting).
    pub fn start(lab: &Lab, args: &[&str], summary: &Path) -> Linewatch {
        let mut cmd = lab.server().exec(env!("CARGO_BIN_EXE_linewatch"));
        cmd.args(args).arg("--summary").arg(summary);
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        Linewatch {
            proc: Proc::spawn(&format!("linewatch {}", args.join(" ")), cmd),
            summary: summary.to_path_buf(),
            args,
        }
    }

    /// [`Linewatch::start`], then waits for [`READY_LINE`] within `timeout`.
    ///
    /// # Panics
    /// When linewatch exits first or the line never comes (with linewatch's stderr).
    pub fn ready(lab: &Lab, args: &[&str], summary: &Path, timeout: Duration) -> Linewatch {
        let mut lw = Linewatch::start(lab, args, summary);
        if let Err(why) = lw.proc.wait_stderr_line(READY_LINE, timeout) {
            panic!("linewatch never became ready: {why}");
        }
        lw
    }

    pub fn pid(&self) -> libc::pid_t {
        self.proc.pid()
    }

    /// Waits for a stderr line starting with `prefix`.
    ///
    /// # Panics
    /// When linewatch exits first or the line does not come within `timeout`.
    pub fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        self.proc
            .wait_stderr_line(prefix, timeout)
            .unwrap_or_else(|why| panic!("linewatch: {why}"))
    }

    /// Everything linewatch wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.proc.stderr_text()
    }

    /// SIGINT; waits for exit 0 and returns the summary JSON and linewatch's output.
    ///
    /// # Panics
    /// On a timeout, a non-zero exit or a missing or invalid summary (with linewatch's stderr).
    pub fn interrupt_with_output(self) -> (serde_json::Value, Finished) {
        let args = self.args.join(" ");
        let summary = self.summary.clone();
        let done: Finished = self.proc.stop(libc::SIGINT, EXIT_TIMEOUT);
        assert!(
            done.status.success(),
            "linewatch {args}: {} after SIGINT; stderr:\n{}",
            done.status,
            done.stderr
        );
        let text = std::fs::read_to_string(&summary).unwrap_or_else(|e| {
            panic!(
                "linewatch {args}: no summary: {e}; stderr:\n{}",
                done.stderr
            )
        });
        let json = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("linewatch {args}: summary is not JSON ({e}):\n{text}"));
        (json, done)
    }

    /// SIGKILL, and reap.
    pub fn kill_9(mut self) {
        self.proc.signal(libc::SIGKILL);
        assert!(
            self.proc.wait_timeout(Duration::from_secs(2)).is_some(),
            "linewatch survived SIGKILL"
        );
    }

    /// SIGINT; waits for exit 0 and returns the summary JSON.
    ///
    /// # Panics
    /// As [`Linewatch::interrupt_with_output`].
    pub fn interrupt(self) -> serde_json::Value {
        self.interrupt_with_output().0
    }
}

/// linewatch `--mirror` on the lab's server veth, counting the monitored port, with
/// `--metrics addr` and `extra` arguments; returns once it is ready and has said where it
/// serves.
///
/// # Panics
/// As [`Linewatch::ready`], and when the serving line is missing.
pub fn mirror_with_metrics(lab: &Lab, addr: &str, extra: &[&str], summary: &Path) -> Linewatch {
    let port = lab::MONITORED_PORT.to_string();
    let mut args = vec![
        "--mirror",
        &lab.server_veth,
        "--port",
        &port,
        "--metrics",
        addr,
    ];
    args.extend_from_slice(extra);
    let lw = Linewatch::ready(lab, &args, summary, READY_TIMEOUT);
    let stderr = lw.stderr_text();
    assert!(
        stderr.contains(&format!("serving OpenMetrics on http://{addr}/metrics")),
        "{stderr}"
    );
    lw
}

/// The body of a curl scrape of `http://addr/metrics` inside `ns`.
///
/// # Panics
/// When curl fails or the endpoint answers other than 2xx.
pub fn scrape_metrics(ns: &linewatch_testkit::lab::Netns, addr: &str) -> String {
    let mut cmd = ns.exec(tools::path_of("curl"));
    cmd.args([
        "-s",
        "--fail",
        "--max-time",
        "5",
        &format!("http://{addr}/metrics"),
    ]);
    let done = process::run("curl", cmd, lab::COMMAND_TIMEOUT);
    assert!(done.status.success(), "scrape failed: {}", done.stderr);
    done.stdout
}

/// Prints one `| kind | key | nginx | linewatch |` row per key either side has.
fn print_rows(kind: &str, nginx: &BTreeMap<String, u64>, ours: &BTreeMap<String, u64>) {
    let keys: BTreeSet<&String> = nginx.keys().chain(ours.keys()).collect();
    for key in keys {
        let (n, o) = (nginx.get(key).copied(), ours.get(key).copied());
        let show = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let mark = if n == o { "" } else { "  <-- differs" };
        println!(
            "| {kind:<7} | {key:<22} | {:>9} | {:>9} |{mark}",
            show(n),
            show(o)
        );
    }
}

/// Prints the table of `truth` against `ours` under `label`.
pub fn print_table(label: &str, truth: &Counts, ours: &Counts, responses: u64) {
    println!("\n{label}");
    println!("| kind    | key                    |     nginx | linewatch |");
    println!("|---------|------------------------|-----------|-----------|");
    println!(
        "| total   | requests               | {:>9} | {:>9} |",
        truth.requests, ours.requests
    );
    println!(
        "| total   | responses              | {:>9} | {:>9} |",
        truth.requests, responses
    );
    print_rows("method", &truth.methods, &ours.methods);
    print_rows("host", &truth.hosts, &ours.hosts);
    print_rows("section", &truth.sections, &ours.sections);
    print_rows("status", &truth.status, &ours.status);
}

/// The live assertion: the summary's requests, methods, hosts, sections and status codes equal
/// nginx's access log for the monitored port; every request got its response; response
/// latency was measured.
///
/// # Panics
/// On any difference (after printing the table).
pub fn assert_matches_access_log(label: &str, lab: &Lab, summary: &serde_json::Value) {
    let entries = access_log::read(&lab.access_log());
    let truth = Counts::of(&entries, lab::MONITORED_PORT);
    let ours = Counts::of_summary(summary);
    let responses = summary["responses"].as_u64().expect("summary `responses`");
    print_table(label, &truth, &ours, responses);
    println!(
        "linewatch: packets {} dropped {} retransmitted {} malformed {} non_http {}",
        summary["packets"],
        summary["dropped"],
        summary["retransmitted"],
        summary["malformed"],
        summary["non_http"]
    );
    println!(
        "linewatch errors: {}; capture: {}",
        summary["errors"], summary["capture"]
    );
    assert!(truth.requests > 0, "{label}: nginx logged no requests");
    assert_eq!(ours.requests, truth.requests, "{label}: requests");
    assert_eq!(ours.methods, truth.methods, "{label}: methods");
    assert_eq!(ours.hosts, truth.hosts, "{label}: hosts");
    assert_eq!(ours.sections, truth.sections, "{label}: sections");
    assert_eq!(ours.status, truth.status, "{label}: status codes");
    assert_eq!(responses, ours.requests, "{label}: responses == requests");
    let latency = &summary["latency"]["response_us"];
    assert!(
        latency["count"].as_u64().is_some_and(|n| n > 0),
        "{label}: no response latency in the summary: {}",
        summary["latency"]
    );
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(
            latency[p].is_u64(),
            "{label}: response latency has no {p}: {latency}"
        );
    }
}

/// Frame lengths in a classic pcap file (as captured, `orig_len`): count, frames above a
/// standard 1514-byte Ethernet frame, and the largest.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameSizes {
    pub frames: u64,
    pub above_1514: u64,
    pub max: u32,
}

/// Reads the record headers of the pcap at `path` (tcpdump's format: microsecond or
/// nanosecond magic, either byte order).
///
/// # Panics
/// When the file is not a pcap.
pub fn frame_sizes(path: &Path) -> FrameSizes {
    /// Global header, then per record ts_sec, ts_frac, incl_len, orig_len.
    const GLOBAL_HEADER: usize = 24;
    const RECORD_HEADER: usize = 16;
    const STANDARD_FRAME: u32 = 1514;
    let data = std::fs::read(path).expect("reading the capture");
    assert!(
        data.len() >= GLOBAL_HEADER,
        "{}: not a pcap",
        path.display()
    );
    let magic: [u8; 4] = data[..4].try_into().expect("4 bytes");
    let little = match magic {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => panic!(
            "{}: not a classic pcap (magic {magic:02x?})",
            path.display()
        ),
    };
    let word = |at: usize| {
        let b: [u8; 4] = data[at..at + 4].try_into().expect("4 bytes");
        if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut sizes = FrameSizes::default();
    let mut at = GLOBAL_HEADER;
    while at + RECORD_HEADER <= data.len() {
        let (incl, orig) = (word(at + 8), word(at + 12));
        sizes.frames += 1;
        sizes.max = sizes.max.max(orig);
        sizes.above_1514 += u64::from(orig > STANDARD_FRAME);
        at += RECORD_HEADER + usize::try_from(incl).expect("u32 fits usize");
    }
    sizes
}

/// tcpdump's closing counters.
#[derive(Debug, Clone, Copy)]
pub struct TcpdumpCounters {
    pub captured: u64,
    /// Every packet that passed the filter, whether written, dropped, or still in the ring at
    /// exit (libpcap on Linux counts drops here too).
    pub received_by_filter: u64,
    pub dropped_by_kernel: u64,
}

/// Parses tcpdump's counters from `text`: its closing lines, or the one line it prints on
/// SIGUSR1 (`tcpdump: 5 packets captured, 7 packets received by filter, 0 packets dropped by
/// kernel`); the last of each when there are several. `None` when a counter is missing.
pub fn tcpdump_counters(text: &str) -> Option<TcpdumpCounters> {
    let find = |what: &str| {
        text.split(['\n', ','])
            .rev()
            .map(|part| part.trim().trim_start_matches("tcpdump: "))
            .filter_map(|part| part.split_once(' '))
            .filter(|(_, rest)| {
                rest.strip_prefix("packets ")
                    .or_else(|| rest.strip_prefix("packet "))
                    .is_some_and(|r| r == what)
            })
            .find_map(|(n, _)| n.parse().ok())
    };
    Some(TcpdumpCounters {
        captured: find("captured")?,
        received_by_filter: find("received by filter")?,
        dropped_by_kernel: find("dropped by kernel")?,
    })
}

#[test]
fn parses_tcpdump_counters() {
    let info =
        "tcpdump: 5 packets captured, 7 packets received by filter, 1 packet dropped by kernel";
    let c = tcpdump_counters(info).expect("counters");
    assert_eq!(
        (c.captured, c.received_by_filter, c.dropped_by_kernel),
        (5, 7, 1)
    );
    let closing = "tcpdump: listening on lwns0\ntcpdump: 0 packets captured, 0 packets received by filter, 0 packets dropped by kernel\n1 packet captured\n1 packet received by filter\n0 packets dropped by kernel\n";
    let c = tcpdump_counters(closing).expect("counters");
    assert_eq!(
        (c.captured, c.received_by_filter, c.dropped_by_kernel),
        (1, 1, 0)
    );
    assert!(tcpdump_counters("tcpdump: listening on lwns0").is_none());
}

/// What tcpdump keeps: the monitored port, and every IP fragment (a `tcp port` filter alone
/// drops every non-first fragment: they carry no ports).
fn capture_filter() -> String {
    format!(
        "tcp port {} or (ip[6:2] & 0x1fff != 0) or (ip6[6] == 44)",
        lab::MONITORED_PORT
    )
}

/// The usual judge's set-up: tcpdump on the server's veth writing `<name>.pcap` in the lab's
/// directory, then `linewatch --mirror <server veth> --port 8080` with its summary in
/// `<name>.json`, ready.
pub fn capture_and_mirror(lab: &Lab, name: &str) -> (Tcpdump, Linewatch) {
    let capture = Tcpdump::start(lab, &lab.server_veth, &lab.dir.join(format!("{name}.pcap")));
    let port = lab::MONITORED_PORT.to_string();
    let lw = Linewatch::ready(
        lab,
        &["--mirror", &lab.server_veth, "--port", &port],
        &lab.dir.join(format!("{name}.json")),
        READY_TIMEOUT,
    );
    (capture, lw)
}

/// tcpdump inside the server namespace, writing the monitored port (and IP fragments) on
/// `iface` to a file.
#[derive(Debug)]
pub struct Tcpdump {
    proc: Proc,
    pub file: PathBuf,
}

/// tcpdump's kernel buffer, in KiB: wrk's 64 KiB bodies come as TSO super-frames in bursts
/// that the 2 MiB default drops.
const TCPDUMP_BUFFER_KIB: &str = "65536";

impl Tcpdump {
    /// Starts tcpdump and waits until it says it is listening.
    ///
    /// # Panics
    /// When tcpdump exits or stays silent for 10 s (with its stderr).
    pub fn start(lab: &Lab, iface: &str, file: &Path) -> Tcpdump {
        // nice -n -10: on two busy cores tcpdump must not fall behind wrk and nginx, or the
        // kernel drops from its ring (seen in CI: 5,150 of 536,613). No -U: a write per packet
        // was most of its cost; the file is complete once it exits (see `stop`).
        let mut cmd = lab.server().exec(tools::path_of("nice"));
        cmd.args(["-n", "-10"]).arg(tools::path_of("tcpdump"));
        // -Z root: Debian's tcpdump otherwise drops to the tcpdump user, who may not write in
        // the scratch directory.
        cmd.args([
            "-i",
            iface,
            "-s",
            "0",
            "-Z",
            "root",
            "-B",
            TCPDUMP_BUFFER_KIB,
            "-w",
        ])
        .arg(file)
        .arg(capture_filter());
        let mut proc = Proc::spawn(&format!("tcpdump -i {iface}"), cmd);
        if let Err(why) = proc.wait_stderr_line("tcpdump: listening on", Duration::from_secs(10)) {
            panic!("{why}");
        }
        Tcpdump {
            proc,
            file: file.to_path_buf(),
        }
    }

    /// Waits until tcpdump has read everything the kernel handed it (asked with SIGUSR1,
    /// until "captured" equals "received by filter"), then SIGINT; checks that the kernel
    /// dropped nothing and nothing was left unread (tcpdump throws away what it has not read
    /// when interrupted, and does not call that a drop). Returns the frames captured.
    ///
    /// # Panics
    /// When tcpdump fails, or lost packets either way.
    pub fn stop(mut self) -> u64 {
        /// tcpdump may need this long to work through a 64 MiB backlog.
        const CATCH_UP: Duration = Duration::from_secs(30);
        let deadline = Instant::now() + CATCH_UP;
        loop {
            self.proc.signal(libc::SIGUSR1);
            let line = self
                .proc
                .wait_stderr(
                    "with tcpdump's counters",
                    |l| tcpdump_counters(l).is_some(),
                    Duration::from_secs(5),
                )
                .unwrap_or_else(|why| panic!("{why}"));
            let c = tcpdump_counters(&line).expect("checked by the wait");
            if c.captured >= c.received_by_filter || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let done = self.proc.stop(libc::SIGINT, Duration::from_secs(10));
        assert!(
            done.status.success(),
            "tcpdump: {}; stderr:\n{}",
            done.status,
            done.stderr
        );
        let counters = tcpdump_counters(&done.stderr)
            .unwrap_or_else(|| panic!("tcpdump printed no counters:\n{}", done.stderr));
        assert_eq!(
            counters.dropped_by_kernel, 0,
            "tcpdump dropped packets:\n{}",
            done.stderr
        );
        assert_eq!(
            counters.captured, counters.received_by_filter,
            "tcpdump left packets unread in its ring:\n{}",
            done.stderr
        );
        counters.captured
    }
}

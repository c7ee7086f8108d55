//! The receivers under test, each a process in the lab's receiving namespace, started before
//! the offered load and stopped (SIGINT) after it:
//!
//! | receiver | what runs | received = | drops = |
//! |---|---|---|---|
//! | `full` | `linewatch --interface` (the product, every stage) | frames its workers took | XDP_STATISTICS |
//! | `rxdrop` | `bench-rig rxdrop`: linewatch's XDP program, sockets and rings, no parsing | frames taken off the rings | XDP_STATISTICS |
//! | `afpacket` | `tcpdump -w /dev/null` (libpcap, TPACKET_V3) | "packets captured" | "dropped by kernel" |
//! | `xdpdrop` | `bench-rig xdp-drop`: an XDP program that counts and drops | frames it counted | — |

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use linewatch_testkit::lab::Netns;

use crate::sys::interrupt;

/// How long a receiver gets to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// How long a receiver gets to exit after SIGINT.
const EXIT_WITHIN: Duration = Duration::from_secs(15);
/// tcpdump's buffer, KiB: the 128 MiB linewatch's UMEM has, so both absorb the same stall.
const TCPDUMP_BUFFER_KIB: &str = "131072";

/// The receivers, in the order the table lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReceiverKind {
    /// linewatch's whole path.
    Full,
    /// AF_XDP receive without parsing.
    Rxdrop,
    /// AF_PACKET capture (tcpdump).
    AfPacket,
    /// The kernel's XDP_DROP.
    XdpDrop,
}

impl ReceiverKind {
    /// Every receiver.
    pub const ALL: [ReceiverKind; 4] = [
        ReceiverKind::Full,
        ReceiverKind::Rxdrop,
        ReceiverKind::AfPacket,
        ReceiverKind::XdpDrop,
    ];

    /// The name in tables, JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReceiverKind::Full => "full",
            ReceiverKind::Rxdrop => "rxdrop",
            ReceiverKind::AfPacket => "afpacket",
            ReceiverKind::XdpDrop => "xdpdrop",
        }
    }

    /// Does its receive path have the veth's NAPI (an XDP program attached)?
    pub fn uses_xdp(self) -> bool {
        self != ReceiverKind::AfPacket
    }
}

impl std::str::FromStr for ReceiverKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ReceiverKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("'{s}' is not a receiver (full, rxdrop, afpacket, xdpdrop)"))
    }
}

/// Where the receiver runs.
#[derive(Debug, Clone)]
pub struct ReceiverSetup {
    /// The receiving namespace.
    pub ns: Netns,
    /// The receiving interface.
    pub interface: String,
    /// Its queues.
    pub queues: u32,
    /// The core of each queue's worker, in queue order.
    pub cores: Vec<usize>,
    /// The linewatch binary.
    pub linewatch: PathBuf,
    /// This binary (for `rxdrop` and `xdp-drop`).
    pub rig: PathBuf,
    /// Scratch directory for the summary and logs.
    pub dir: PathBuf,
    /// Attach XDP in generic mode.
    pub generic: bool,
    /// Ring entries and UMEM frames per queue of the AF_XDP receivers (`None`: linewatch's
    /// default).
    pub ring: Option<u32>,
}

/// What a receiver reported.
#[derive(Debug, Clone, Default)]
pub struct ReceiverReport {
    /// Frames the receiver got.
    pub received: u64,
    /// HTTP requests counted (full path only).
    pub requests: Option<u64>,
    /// Frames the kernel dropped on the way to the receiver (XDP_STATISTICS, tcpdump's
    /// "dropped by kernel").
    pub dropped: u64,
    /// Frames the XDP program saw (XDP receivers).
    pub xdp_seen: Option<u64>,
    /// Capture latency percentiles in µs (full path): p50, p90, p99, p99.9, max, count.
    pub latency_us: Option<[u64; 6]>,
    /// Segments the full path's workers handed to the worker owning their flow (the crossing
    /// fallback on queues that split connections; 0 on one queue).
    pub crossed: Option<u64>,
}

/// A running receiver.
#[derive(Debug)]
pub struct Receiver {
    kind: ReceiverKind,
    child: Child,
    summary: PathBuf,
    stderr_lines: mpsc::Receiver<String>,
    stdout: Option<std::process::ChildStdout>,
    log: Vec<String>,
}

impl Receiver {
    /// Starts `kind` and waits until it captures.
    pub fn start(kind: ReceiverKind, setup: &ReceiverSetup) -> Result<Receiver, String> {
        let summary = setup.dir.join(format!("{}-summary.json", kind.name()));
        let _ = std::fs::remove_file(&summary);
        let queues = (0..setup.queues)
            .map(|q| q.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let cores = setup
            .cores
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        // linewatch gives each worker its own core; with more queues than cores, let it wrap
        // (its default), as rxdrop does with the list.
        let distinct = {
            let mut c = setup.cores.clone();
            c.sort_unstable();
            c.dedup();
            c.len() == setup.cores.len()
        };
        let (mut cmd, ready_marker) = match kind {
            ReceiverKind::Full => {
                let mut c = setup.ns.exec(&setup.linewatch);
                c.args(["--interface", &setup.interface, "--port", "80"])
                    .args(["--queues", &queues]);
                if distinct {
                    c.args(["--cores", &cores]);
                }
                c.args(["--report-interval", "86400", "--threshold", "1e12"])
                    .arg("--summary")
                    .arg(&summary);
                if setup.generic {
                    c.arg("--xdp-generic");
                }
                if let Some(ring) = setup.ring {
                    c.args(["--ring", &ring.to_string()]);
                }
                (c, "linewatch: capturing on ")
            }
            ReceiverKind::Rxdrop => {
                let mut c = setup.ns.exec(&setup.rig);
                c.args(["rxdrop", "--interface", &setup.interface])
                    .args(["--queues", &queues, "--cores", &cores]);
                if setup.generic {
                    c.arg("--generic");
                }
                if let Some(ring) = setup.ring {
                    c.args(["--ring", &ring.to_string()]);
                }
                (c, "rxdrop: ready")
            }
            ReceiverKind::XdpDrop => {
                let mut c = setup.ns.exec(&setup.rig);
                c.args(["xdp-drop", "--interface", &setup.interface]);
                if setup.generic {
                    c.arg("--generic");
                }
                (c, "xdp-drop: ready")
            }
            ReceiverKind::AfPacket => {
                let mut c = setup.ns.exec("taskset");
                c.args(["-c", &cores, "tcpdump", "-i", &setup.interface])
                    .args(["-w", "/dev/null", "-n", "-B", TCPDUMP_BUFFER_KIB]);
                (c, "listening on ")
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the {} receiver: {e}", kind.name()))?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdout = child.stdout.take();
        let mut receiver = Receiver {
            kind,
            child,
            summary,
            stderr_lines: rx,
            stdout,
            log: Vec::new(),
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.stderr_lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.contains(ready_marker);
                    receiver.log.push(line);
                    if ready {
                        return Ok(receiver);
                    }
                }
                Err(_) => {
                    let _ = receiver.child.kill();
                    let _ = receiver.child.wait();
                    while let Ok(line) = receiver.stderr_lines.try_recv() {
                        receiver.log.push(line);
                    }
                    return Err(format!(
                        "the {} receiver did not start: {}",
                        kind.name(),
                        receiver.log.join(" | ")
                    ));
                }
            }
        }
    }

    /// The receiver's process id (for its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the receiver with SIGINT and reads what it counted.
    pub fn stop(mut self) -> Result<ReceiverReport, String> {
        interrupt(&self.child);
        let deadline = Instant::now() + EXIT_WITHIN;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "the {} receiver did not stop within {} s",
                        self.kind.name(),
                        EXIT_WITHIN.as_secs()
                    ));
                }
            }
        };
        let mut stdout = String::new();
        if let Some(mut out) = self.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        // The reader thread ends with the child's stderr.
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match self.stderr_lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => self.log.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let failed = || {
            format!(
                "the {} receiver ended with {status}: {}",
                self.kind.name(),
                self.log
                    .iter()
                    .rev()
                    .take(5)
                    .rev()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        };
        match self.kind {
            ReceiverKind::Full => {
                if !status.success() {
                    return Err(failed());
                }
                read_summary(&self.summary)
            }
            ReceiverKind::Rxdrop | ReceiverKind::XdpDrop => {
                if !status.success() {
                    return Err(failed());
                }
                let v: Value = serde_json::from_str(stdout.trim())
                    .map_err(|e| format!("{}: bad JSON ({e}): {stdout}", self.kind.name()))?;
                let get = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
                Ok(ReceiverReport {
                    received: get("received"),
                    requests: None,
                    dropped: get("dropped"),
                    xdp_seen: Some(get("xdp_seen")),
                    latency_us: None,
                    crossed: None,
                })
            }
            ReceiverKind::AfPacket => {
                let number = |what: &str| {
                    self.log.iter().find_map(|l| {
                        let rest = l.trim().strip_suffix(what)?;
                        rest.trim().parse::<u64>().ok()
                    })
                };
                let captured = number("packets captured").ok_or_else(failed)?;
                let dropped = number("packets dropped by kernel").ok_or_else(failed)?;
                Ok(ReceiverReport {
                    received: captured,
                    requests: None,
                    dropped,
                    xdp_seen: None,
                    latency_us: None,
                    crossed: None,
                })
            }
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads linewatch's `--summary` JSON.
fn read_summary(path: &Path) -> Result<ReceiverReport, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("linewatch wrote no summary ({}): {e}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).map_err(|e| format!("linewatch's summary is not JSON: {e}"))?;
    let capture = v
        .get("capture")
        .ok_or("linewatch's summary has no capture block")?;
    let per_queue = |key: &str| -> u64 {
        capture
            .get("queues")
            .and_then(Value::as_array)
            .map(|qs| {
                qs.iter()
                    .filter_map(|q| q.get(key).and_then(Value::as_u64))
                    .sum()
            })
            .unwrap_or(0)
    };
    let received = per_queue("frames");
    let latency = v
        .get("latency")
        .and_then(|l| l.get("capture_us"))
        .and_then(|c| {
            let g = |k: &str| c.get(k).and_then(Value::as_u64);
            Some([
                g("p50")?,
                g("p90")?,
                g("p99")?,
                g("p999")?,
                g("max")?,
                g("count")?,
            ])
        });
    Ok(ReceiverReport {
        received,
        requests: v.get("requests").and_then(Value::as_u64),
        dropped: v.get("dropped").and_then(Value::as_u64).unwrap_or(0),
        xdp_seen: capture
            .get("xdp")
            .and_then(|x| x.get("seen"))
            .and_then(Value::as_u64),
        latency_us: latency.filter(|l| l[5] > 0),
        crossed: Some(per_queue("crossed_out")),
    })
}

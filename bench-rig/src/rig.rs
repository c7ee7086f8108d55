//! One bench run: the same offered load against every receiver, alternated, repeated.
//!
//! ```text
//! for each rate step:
//!   for each repetition r:
//!     for each receiver (order rotated by r, so drift hits all alike):
//!       interface counters ─► start receiver, wait until it captures ─► pin NAPI threads
//!       ─► CPU clocks ─► generator: D seconds at the rate ─► CPU clocks ─► settle ─► stop
//!       receiver (SIGINT), read its counts ─► interface counters
//! ```
//!
//! Every trial is checked for counting consistency before it is used (see [`Trial::check`]):
//! the generator's sent count must equal the sending interface's counters, and what each
//! receiver reports must add up with what the kernel counted on the receiving side.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::generator::{GeneratorReport, TxPath};
use crate::lab::{Lab, LinkCounters};
use crate::receivers::{Receiver, ReceiverKind, ReceiverReport, ReceiverSetup};
use crate::sys;

/// After the generator stops, how long the receiver gets to take what is still in flight.
const SETTLE: Duration = Duration::from_millis(300);
/// The same for tcpdump: libpcap's TPACKET_V3 ring hands a block to tcpdump when it is full
/// or when its timeout (tcpdump's 1000 ms) runs out, and frames in a block not yet handed over
/// when tcpdump stops are never counted as captured.
const SETTLE_AF_PACKET: Duration = Duration::from_millis(1500);

/// The bench's settings.
#[derive(Debug, Clone)]
pub struct RigConfig {
    /// Queues of the veth pair.
    pub queues: u32,
    /// Bytes per frame.
    pub frame_size: usize,
    /// Flows.
    pub flows: u32,
    /// Offered rates, frames per second; 0 is "as fast as the generator can".
    pub rates: Vec<f64>,
    /// Seconds of load per trial.
    pub seconds: f64,
    /// Repetitions.
    pub reps: u32,
    /// Receivers to measure.
    pub receivers: Vec<ReceiverKind>,
    /// Generator path.
    pub tx: TxPath,
    /// Threaded NAPI on the receiving veth.
    pub threaded_napi: bool,
    /// Receivers attach XDP in generic mode (no veth NAPI then).
    pub generic: bool,
    /// Where to pin the NAPI threads (when threaded).
    pub napi_core: usize,
    /// The generator's core.
    pub gen_core: usize,
    /// The receiver's core.
    pub rx_core: usize,
    /// Ring entries and UMEM frames per queue of the AF_XDP receivers (`None`: linewatch's
    /// default).
    pub ring: Option<u32>,
    /// linewatch binary.
    pub linewatch: PathBuf,
    /// This binary.
    pub rig: PathBuf,
    /// Scratch directory.
    pub dir: PathBuf,
}

/// One receiver under one load, measured once.
#[derive(Debug, Clone)]
pub struct Trial {
    /// Which receiver.
    pub receiver: ReceiverKind,
    /// The rate asked for (0: maximum).
    pub rate: f64,
    /// How the generator sent.
    pub tx: TxPath,
    /// Repetition.
    pub rep: u32,
    /// What the generator sent.
    pub sent: GeneratorReport,
    /// What the receiver counted.
    pub got: ReceiverReport,
    /// Sending interface counters over the trial.
    pub tx_if: LinkCounters,
    /// Receiving interface counters over the trial.
    pub rx_if: LinkCounters,
    /// CPU seconds of the receiver process during the load.
    pub receiver_cpu: f64,
    /// CPU seconds of the receiving veth's NAPI threads during the load.
    pub napi_cpu: f64,
    /// Busy CPU seconds of the whole machine during the load.
    pub machine_cpu: f64,
    /// NAPI threads pinned.
    pub napi_threads: usize,
    /// Why this trial is a second try: how the generator of the first one ended (killed by a
    /// signal, so that try measured nothing).
    pub repeated_after: Option<String>,
}

impl Trial {
    /// Offered frames per second.
    pub fn offered_pps(&self) -> f64 {
        per_second(self.sent.sent, self.sent.seconds)
    }

    /// Received frames per second.
    pub fn received_pps(&self) -> f64 {
        per_second(self.got.received, self.sent.seconds)
    }

    /// Frames sent and not received.
    pub fn lost(&self) -> u64 {
        self.sent.sent.saturating_sub(self.got.received)
    }

    /// Receiver CPU (process + NAPI threads) per million frames received.
    pub fn cpu_per_mpkt(&self) -> f64 {
        per_million(self.receiver_cpu + self.napi_cpu, self.got.received)
    }

    /// Machine CPU (every core, the generator's included) per million frames received.
    pub fn machine_cpu_per_mpkt(&self) -> f64 {
        per_million(self.machine_cpu, self.got.received)
    }

    /// Counting consistency: `Err` with every disagreement.
    ///
    /// - The generator's sent count equals the sending veth's counters. What veth counts as a
    ///   tx drop (its peer's ring had no room) depends on the way in, as measured here: a frame
    ///   from an AF_XDP socket is dropped and counted in tx_dropped, and the socket took it, so
    ///   sent = tx_packets + tx_dropped; an AF_PACKET frame is refused (NETDEV_TX_BUSY),
    ///   `sendmmsg` reports it unsent and the generator sends it again, so sent = tx_packets
    ///   and tx_dropped counts refusals, not losses.
    /// - The receiving veth delivered what the sending one sent (rx_packets = tx_packets).
    /// - XDP receivers: the program saw every frame the veth delivered, and for AF_XDP
    ///   receivers, received plus socket drops equals what the program saw (every frame is
    ///   monitored TCP).
    /// - AF_PACKET: received plus tcpdump's kernel drops does not exceed what was delivered.
    /// - Full path: every frame is one request, so requests equal frames received.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let sent = self.sent.sent;
        let if_sent = match self.tx {
            TxPath::AfXdp => self.tx_if.tx_packets + self.tx_if.tx_dropped,
            TxPath::AfPacket => self.tx_if.tx_packets,
        };
        if sent != if_sent {
            problems.push(format!(
                "generator sent {sent} but the sending veth counted {} tx + {} tx drops",
                self.tx_if.tx_packets, self.tx_if.tx_dropped
            ));
        }
        let delivered = self.rx_if.rx_packets;
        if delivered != self.tx_if.tx_packets {
            problems.push(format!(
                "the receiving veth counted {delivered} frames, the sending one {}",
                self.tx_if.tx_packets
            ));
        }
        if let Some(seen) = self.got.xdp_seen {
            if seen != delivered {
                problems.push(format!(
                    "XDP saw {seen} frames, the veth delivered {delivered}"
                ));
            }
            if matches!(self.receiver, ReceiverKind::Full | ReceiverKind::Rxdrop)
                && self.got.received + self.got.dropped != seen
            {
                problems.push(format!(
                    "received {} + socket drops {} != {seen} redirected",
                    self.got.received, self.got.dropped
                ));
            }
            if self.receiver == ReceiverKind::XdpDrop && self.got.received != seen {
                problems.push(format!("xdp-drop counted {} of {seen}", self.got.received));
            }
        }
        if self.receiver == ReceiverKind::AfPacket
            && self.got.received + self.got.dropped > delivered
        {
            problems.push(format!(
                "tcpdump captured {} + dropped {} > {delivered} delivered",
                self.got.received, self.got.dropped
            ));
        }
        if self.receiver == ReceiverKind::Full && self.got.requests != Some(self.got.received) {
            problems.push(format!(
                "linewatch counted {:?} requests in {} frames (one each)",
                self.got.requests, self.got.received
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{} at rate {}: {}",
                self.receiver.name(),
                rate_label(self.rate),
                problems.join("; ")
            ))
        }
    }

    /// As JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "receiver": self.receiver.name(),
            "rate": self.rate,
            "tx": self.tx.name(),
            "rep": self.rep,
            "sent": self.sent.sent,
            "seconds": self.sent.seconds,
            "offered_pps": self.offered_pps(),
            "received": self.got.received,
            "received_pps": self.received_pps(),
            "requests": self.got.requests,
            "lost": self.lost(),
            "socket_or_kernel_drops": self.got.dropped,
            "xdp_seen": self.got.xdp_seen,
            "crossed": self.got.crossed,
            "tx_if": counters_json(&self.tx_if),
            "rx_if": counters_json(&self.rx_if),
            "receiver_cpu_s": self.receiver_cpu,
            "napi_cpu_s": self.napi_cpu,
            "machine_cpu_s": self.machine_cpu,
            "cpu_s_per_mpkt": self.cpu_per_mpkt(),
            "machine_cpu_s_per_mpkt": self.machine_cpu_per_mpkt(),
            "napi_threads": self.napi_threads,
            "repeated_after": self.repeated_after,
            "capture_latency_us": self.got.latency_us.map(|l| json!({
                "p50": l[0], "p90": l[1], "p99": l[2], "p999": l[3], "max": l[4], "count": l[5]
            })),
        })
    }
}

fn counters_json(c: &LinkCounters) -> Value {
    json!({"rx_packets": c.rx_packets, "rx_dropped": c.rx_dropped, "tx_packets": c.tx_packets, "tx_dropped": c.tx_dropped})
}

fn per_second(n: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    }
}

fn per_million(seconds: f64, n: u64) -> f64 {
    if n > 0 {
        seconds / (n as f64 / 1e6)
    } else {
        0.0
    }
}

/// `max` or the rate as a number.
pub fn rate_label(rate: f64) -> String {
    if rate <= 0.0 {
        "max".to_owned()
    } else {
        format!("{rate:.0}")
    }
}

/// Runs every trial; `progress` gets one line per trial. Stops early (with what it has) when
/// `stop` is set.
pub fn run(
    config: &RigConfig,
    lab: &Lab,
    stop: &std::sync::atomic::AtomicBool,
    progress: &mut dyn FnMut(&Trial),
) -> Result<Vec<Trial>, String> {
    let setup = ReceiverSetup {
        ns: lab.rx_ns.clone(),
        interface: lab.rx_if.clone(),
        queues: lab.queues,
        cores: worker_cores(config.rx_core, lab.queues),
        linewatch: config.linewatch.clone(),
        rig: config.rig.clone(),
        dir: config.dir.clone(),
        generic: config.generic,
        ring: config.ring,
    };
    let mut trials = Vec::new();
    for &rate in &config.rates {
        for rep in 0..config.reps {
            let n = config.receivers.len();
            for i in 0..n {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(trials);
                }
                let kind = config.receivers[(i + rep as usize) % n];
                let (mut trial, repeated_after) = once_more_if_killed(
                    || one_trial(config, lab, &setup, kind, rate, rep),
                    |why| {
                        eprintln!(
                            "bench-rig: {} at {}: the generator ended with {why}; making \
                             this trial once more",
                            kind.name(),
                            rate_label(rate)
                        );
                    },
                )?;
                trial.repeated_after = repeated_after;
                progress(&trial);
                trials.push(trial);
            }
        }
    }
    Ok(trials)
}

/// One core per queue, starting at `first` and going round the allowed cores.
fn worker_cores(first: usize, queues: u32) -> Vec<usize> {
    let allowed = sys::allowed_cores();
    let start = allowed.iter().position(|&c| c == first).unwrap_or(0);
    (0..queues as usize)
        .map(|i| {
            allowed
                .get((start + i) % allowed.len().max(1))
                .copied()
                .unwrap_or(first)
        })
        .collect()
}

/// Makes a trial with `make`; when its generator was killed by a signal (that try measured
/// nothing), says why with `note` and makes it once more. Returns the trial and, for a second
/// try, how the first one's generator ended.
fn once_more_if_killed<T>(
    mut make: impl FnMut() -> Result<T, TrialError>,
    note: impl FnOnce(&str),
) -> Result<(T, Option<String>), String> {
    match make() {
        Ok(trial) => Ok((trial, None)),
        Err(TrialError::GeneratorKilled(why)) => {
            note(&why);
            let trial = make().map_err(TrialError::into_message)?;
            Ok((trial, Some(why)))
        }
        Err(e) => Err(e.into_message()),
    }
}

/// Why a trial failed.
#[derive(Debug, PartialEq)]
enum TrialError {
    /// The generator was killed by a signal (it printed nothing): how it ended.
    GeneratorKilled(String),
    /// Anything else, as the rig says it.
    Other(String),
}

impl TrialError {
    fn into_message(self) -> String {
        match self {
            TrialError::GeneratorKilled(why) => format!("the generator ended with {why}"),
            TrialError::Other(message) => message,
        }
    }
}

impl From<String> for TrialError {
    fn from(message: String) -> Self {
        TrialError::Other(message)
    }
}

fn one_trial(
    config: &RigConfig,
    lab: &Lab,
    setup: &ReceiverSetup,
    kind: ReceiverKind,
    rate: f64,
    rep: u32,
) -> Result<Trial, TrialError> {
    let tx_before = Lab::counters(&lab.tx_ns, &lab.tx_if).map_err(|e| e.to_string())?;
    let rx_before = Lab::counters(&lab.rx_ns, &lab.rx_if).map_err(|e| e.to_string())?;
    let receiver = Receiver::start(kind, setup)?;
    // The veth has NAPI instances only while an XDP program is attached: switch them to
    // threads now (a write before the attach fails with EIO).
    let napi_threads = if config.threaded_napi && kind.uses_xdp() && !config.generic {
        lab.set_threaded_napi(true).map_err(|e| e.to_string())?;
        lab.pin_napi(config.napi_core).map_err(|e| e.to_string())?
    } else {
        0
    };
    let napi = lab.napi_threads();
    let napi_cpu = || {
        napi.iter()
            .filter_map(|&p| sys::cpu_seconds_of(p))
            .sum::<f64>()
    };
    let (cpu0, napi0, machine0) = (
        sys::cpu_seconds_of(receiver.pid()).unwrap_or(0.0),
        napi_cpu(),
        sys::machine_busy_seconds().unwrap_or(0.0),
    );
    let sent = generate(config, lab, rate)?;
    let (cpu1, napi1, machine1) = (
        sys::cpu_seconds_of(receiver.pid()).unwrap_or(0.0),
        napi_cpu(),
        sys::machine_busy_seconds().unwrap_or(0.0),
    );
    std::thread::sleep(if kind == ReceiverKind::AfPacket {
        SETTLE_AF_PACKET
    } else {
        SETTLE
    });
    let got = receiver.stop()?;
    let tx_after = Lab::counters(&lab.tx_ns, &lab.tx_if).map_err(|e| e.to_string())?;
    let rx_after = Lab::counters(&lab.rx_ns, &lab.rx_if).map_err(|e| e.to_string())?;
    Ok(Trial {
        receiver: kind,
        rate,
        tx: config.tx,
        rep,
        sent,
        got,
        tx_if: tx_after.since(&tx_before),
        rx_if: rx_after.since(&rx_before),
        receiver_cpu: (cpu1 - cpu0).max(0.0),
        napi_cpu: (napi1 - napi0).max(0.0),
        machine_cpu: (machine1 - machine0).max(0.0),
        napi_threads,
        repeated_after: None,
    })
}

/// What a generator that ended with `status` (not success) and printed `stderr` did wrong.
fn generator_failure(status: std::process::ExitStatus, stderr: &[u8]) -> TrialError {
    let said = String::from_utf8_lossy(stderr);
    let said = said.trim();
    // A generator killed by a signal prints nothing: its status says how it ended.
    if status.signal().is_some() {
        TrialError::GeneratorKilled(if said.is_empty() {
            status.to_string()
        } else {
            format!("{status} ({said})")
        })
    } else {
        TrialError::Other(format!("the generator ended with {status}: {said}"))
    }
}

/// Runs the generator in the sending namespace and reads its report.
fn generate(config: &RigConfig, lab: &Lab, rate: f64) -> Result<GeneratorReport, TrialError> {
    let out = lab
        .tx_ns
        .exec(&config.rig)
        .args(["generate", "--interface", &lab.tx_if])
        .args(["--queues", &lab.queues.to_string()])
        .args(["--tx", config.tx.name()])
        .args([
            "--rate",
            &rate.to_string(),
            "--seconds",
            &config.seconds.to_string(),
        ])
        .args(["--frame-size", &config.frame_size.to_string()])
        .args(["--flows", &config.flows.to_string()])
        .args(["--core", &config.gen_core.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the generator: {e}"))?;
    if !out.status.success() {
        return Err(generator_failure(out.status, &out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("the generator's report is not JSON ({e})"))?;
    GeneratorReport::from_json(&v)
        .ok_or_else(|| TrialError::Other("the generator's report lacks fields".to_owned()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::{generator_failure, once_more_if_killed, TrialError};

    #[test]
    fn a_generator_killed_by_a_signal_is_told_from_one_that_failed() {
        // wait(2) statuses: signal 11 in the low bits; exit code 2 in the second byte.
        assert_eq!(
            generator_failure(ExitStatus::from_raw(11), b""),
            TrialError::GeneratorKilled("signal: 11 (SIGSEGV)".to_owned())
        );
        assert_eq!(
            generator_failure(ExitStatus::from_raw(2 << 8), b"bench-rig: no such device\n"),
            TrialError::Other(
                "the generator ended with exit status: 2: bench-rig: no such device".to_owned()
            )
        );
    }

    #[test]
    fn only_a_killed_generator_makes_a_trial_once_more_and_only_once() {
        let killed = || TrialError::GeneratorKilled("signal: 9 (SIGKILL)".to_owned());
        let run = |results: Vec<Result<u32, TrialError>>| {
            let mut results = results.into_iter();
            let (mut made, mut noted) = (0, Vec::new());
            let out = once_more_if_killed(
                || {
                    made += 1;
                    results.next().expect("made too often")
                },
                |why| noted.push(why.to_owned()),
            );
            (out, made, noted)
        };
        assert_eq!(run(vec![Ok(1)]), (Ok((1, None)), 1, vec![]));
        let why = "signal: 9 (SIGKILL)".to_owned();
        assert_eq!(
            run(vec![Err(killed()), Ok(2)]),
            (Ok((2, Some(why.clone()))), 2, vec![why.clone()])
        );
        assert_eq!(
            run(vec![Err(killed()), Err(killed())]),
            (
                Err("the generator ended with signal: 9 (SIGKILL)".to_owned()),
                2,
                vec![why]
            )
        );
        assert_eq!(
            run(vec![Err(TrialError::Other("no lab".to_owned()))]),
            (Err("no lab".to_owned()), 1, vec![])
        );
    }
}

//! `--metrics` under a slowloris (issue 17 item 9): linewatch `--mirror` in the lab's server
//! namespace with `--metrics 127.0.0.1:PORT`, and, from a thread inside that namespace, 2,000
//! connections to the endpoint: first held open and idle, then closed and reopened every half
//! second with half of them sending an unfinished request head. Meanwhile curl scrapes: every
//! scrape must be answered 200, with the exposition, in under a second, and linewatch's
//! resident memory (VmRSS) must grow by less than 16 MiB.
//!
//! linewatch is started with a soft open-files limit of 1024 (inherited from this process,
//! which lowers its own for the spawn): it must raise its own to the hard limit, as
//! `/proc/PID/limits` shows, or it could not hold 2,000 connections.
//!
//! A second run starts linewatch under `prlimit --nofile=300:300`: it must say at start that
//! it serves at most 172 connections and how to raise the limit, and still answer every scrape
//! while 2,000 connections come and go (the oldest closed to make room).
//!
//! Needs root, ip, tc, nginx, curl and prlimit; with `CI` set it fails instead of skipping.

#![allow(clippy::print_stdout)]

mod common;
mod live;

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use linewatch_testkit::lab::Netns;
use linewatch_testkit::tools::path_of;
use live::lab::{COMMAND_TIMEOUT, MONITORED_PORT};
use live::process::{run, Proc};
use live::{lab_for, mirror_with_metrics, serial, EXIT_TIMEOUT, READY_LINE, READY_TIMEOUT};

const METRICS_ADDR: &str = "127.0.0.1:9921";
const LOW_LIMIT_ADDR: &str = "127.0.0.1:9923";

/// The attacker's connections open at once.
const CONNECTIONS: usize = 2_000;

/// How often the attacker closes and reopens all of them.
const REOPEN_EVERY: Duration = Duration::from_millis(500);

/// Scrapes in each phase, and the pause between them.
const SCRAPES: usize = 10;
const SCRAPE_PAUSE: Duration = Duration::from_millis(300);

/// The bars.
const SCRAPE_BAR: Duration = Duration::from_secs(1);
const RSS_BAR_KIB: u64 = 16 * 1024;

/// The soft open-files limit linewatch is started with.
const LOW_NOFILE: u64 = 1024;

/// The hard (and soft) open-files limit of the run that cannot raise it far enough, and the
/// connections that leaves it (128 descriptors are kept for the rest of linewatch).
const LOW_HARD_NOFILE: u64 = 300;
const LOW_HARD_CAP: u64 = LOW_HARD_NOFILE - 128;

/// A head that never ends, as a slowloris sends.
const UNFINISHED: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ";

fn nofile() -> libc::rlimit {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    lim
}

fn set_soft_nofile(soft: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: nofile().rlim_max,
    };
    // SAFETY: setrlimit reads a valid struct.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// (soft, hard) "Max open files" of process `pid`.
fn nofile_of(pid: libc::pid_t) -> (String, String) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc/PID/limits");
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let mut words = line.split_whitespace().skip(3);
    let soft = words.next().unwrap_or_default().to_owned();
    let hard = words.next().unwrap_or_default().to_owned();
    (soft, hard)
}

fn vm_rss_kib(pid: libc::pid_t) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

/// One curl scrape of `addr` inside `ns`: (HTTP status, seconds curl took, body).
fn scrape_at(ns: &Netns, addr: &str) -> (String, f64, String) {
    let mut cmd = ns.exec(path_of("curl"));
    cmd.args([
        "-s",
        "--max-time",
        "5",
        "-w",
        "\n%{http_code} %{time_total}",
        &format!("http://{addr}/metrics"),
    ]);
    let done = run("curl", cmd, COMMAND_TIMEOUT);
    let (body, tail) = done.stdout.rsplit_once('\n').unwrap_or(("", &done.stdout));
    let mut tail = tail.split_whitespace();
    let code = tail.next().unwrap_or_default().to_owned();
    let secs = tail.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    (code, secs, body.to_owned())
}

fn scrape(ns: &Netns) -> (String, f64, String) {
    scrape_at(ns, METRICS_ADDR)
}

/// `SCRAPES` scrapes of `addr`: each must be a 200 with the exposition within the bar.
/// Returns the slowest, in seconds.
fn scrapes_answer(ns: &Netns, addr: &str, phase: &str) -> f64 {
    let mut slowest: f64 = 0.0;
    for i in 0..SCRAPES {
        let (code, secs, body) = scrape_at(ns, addr);
        assert_eq!(
            code, "200",
            "{phase}: scrape {i} was not answered ({secs} s)"
        );
        assert!(
            body.contains("linewatch_requests_total") && body.ends_with("# EOF\n"),
            "{phase}: scrape {i}: {body}"
        );
        assert!(
            secs < SCRAPE_BAR.as_secs_f64(),
            "{phase}: scrape {i} took {secs} s"
        );
        slowest = slowest.max(secs);
        std::thread::sleep(SCRAPE_PAUSE);
    }
    slowest
}

/// The attacker: a thread inside `ns` that opens `CONNECTIONS` to the endpoint at `addr`, says
/// once it has, and then, while `reopen` is set, closes and reopens them all every
/// `REOPEN_EVERY`, half of them sending an unfinished head. Ends when `stop` is set; counts
/// the connections made in `opened`.
fn attacker(
    ns: &Netns,
    addr: &str,
    reopen: &AtomicBool,
    stop: &AtomicBool,
    opened: &AtomicUsize,
    ready: &mpsc::Sender<()>,
) {
    let path = format!("/run/netns/{}", ns.name());
    let netns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: moves this thread (only) into the namespace of a valid fd.
    let rc = unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
    let open_all = |slow: bool| -> Vec<TcpStream> {
        (0..CONNECTIONS)
            .map(|i| {
                let mut s =
                    TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"));
                if slow && i % 2 == 0 {
                    // The server may have closed it already (oldest first): not an error.
                    let _ = s.write_all(UNFINISHED);
                }
                opened.fetch_add(1, Ordering::Relaxed);
                s
            })
            .collect()
    };
    let mut held = open_all(false);
    let _ = ready.send(());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(REOPEN_EVERY);
        if reopen.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            drop(std::mem::take(&mut held));
            held = open_all(true);
        }
    }
}

/// Puts this process's soft open-files limit back however the test ends.
struct RestoreSoftNofile(u64);

impl Drop for RestoreSoftNofile {
    fn drop(&mut self) {
        set_soft_nofile(self.0);
    }
}

/// Stops the attacker however the scope ends, so that the scope can close.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[test]
fn scrapes_are_answered_while_thousands_of_idle_connections_are_open() {
    let _serial = serial();
    let Some(lab) = lab_for("metrics_slowloris", &["nginx", "curl"]) else {
        return;
    };
    let hard = nofile().rlim_max;
    assert!(
        hard >= 2 * CONNECTIONS as u64 + 512,
        "the hard open-files limit ({hard}) is too low for this test"
    );
    let _restore = RestoreSoftNofile(nofile().rlim_cur);
    // linewatch starts with a low soft limit (inherited), which it must raise itself.
    set_soft_nofile(LOW_NOFILE);
    let summary = lab.dir.join("slowloris.json");
    let lw = mirror_with_metrics(&lab, METRICS_ADDR, &["--ring", "2048"], &summary);
    // This process needs room for the attacker's connections.
    set_soft_nofile(hard);
    let pid = lw.pid();
    let (soft, lw_hard) = nofile_of(pid);
    println!("linewatch's open-files limit: soft {soft}, hard {lw_hard}");
    assert_eq!(soft, lw_hard, "linewatch did not raise its soft limit");
    assert_eq!(soft, hard.to_string());
    let stderr = lw.stderr_text();
    assert!(!stderr.contains("open-files limit"), "{stderr}");

    // The baseline: a few scrapes first, so that what a scrape allocates is counted in it.
    let ns = lab.server().clone();
    for _ in 0..3 {
        assert_eq!(scrape(&ns).0, "200");
    }
    let rss_before = vm_rss_kib(pid);

    let reopen = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let opened = AtomicUsize::new(0);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (held_slowest, reopened_slowest, rss_peak) = std::thread::scope(|s| {
        let attack = s.spawn(|| attacker(&ns, METRICS_ADDR, &reopen, &stop, &opened, &ready_tx));
        let _stop = StopOnDrop(&stop);
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the attacker opened its connections");
        let mut rss_peak = vm_rss_kib(pid);
        let mut phase = |what: &str| {
            let t = Instant::now();
            let slowest = scrapes_answer(&ns, METRICS_ADDR, what);
            println!(
                "{what}: {SCRAPES} scrapes in {:.1} s, slowest {slowest:.3} s",
                t.elapsed().as_secs_f64()
            );
            rss_peak = rss_peak.max(vm_rss_kib(pid));
            slowest
        };
        let held = phase("2,000 held open");
        reopen.store(true, Ordering::Relaxed);
        let reopened = phase("2,000 reopened every 0.5 s");
        stop.store(true, Ordering::Relaxed);
        attack.join().expect("the attacker");
        (held, reopened, rss_peak)
    });
    let rss_after = vm_rss_kib(pid);
    let made = opened.load(Ordering::Relaxed);
    println!(
        "connections made: {made}; linewatch VmRSS {rss_before} KiB before, peak {rss_peak} \
         KiB, {rss_after} KiB after (grew {} KiB); slowest scrapes {held_slowest:.3} s held, \
         {reopened_slowest:.3} s reopened",
        rss_peak.max(rss_after).saturating_sub(rss_before)
    );
    assert!(made >= 2 * CONNECTIONS, "the reopen loop ran: {made}");
    let grew = rss_peak.max(rss_after).saturating_sub(rss_before);
    assert!(
        grew < RSS_BAR_KIB,
        "linewatch's RSS grew by {grew} KiB (from {rss_before} KiB)"
    );
    // Still serving, and it exits as usual.
    assert_eq!(scrape(&ns).0, "200");
    let summary = lw.interrupt();
    assert!(summary["packets"].is_u64(), "{summary}");
}

#[test]
fn a_hard_limit_too_low_is_said_at_start_and_scrapes_still_pass() {
    let _serial = serial();
    let Some(lab) = lab_for("metrics_slowloris", &["nginx", "curl", "prlimit"]) else {
        return;
    };
    let _restore = RestoreSoftNofile(nofile().rlim_cur);
    set_soft_nofile(nofile().rlim_max);
    // prlimit sets the limits and execs linewatch inside the server namespace.
    let mut cmd = lab.server().exec(path_of("prlimit"));
    cmd.arg(format!("--nofile={LOW_HARD_NOFILE}:{LOW_HARD_NOFILE}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_linewatch"))
        .args(["--mirror", &lab.server_veth, "--ring", "2048"])
        .args(["--port", &MONITORED_PORT.to_string()])
        .args(["--metrics", LOW_LIMIT_ADDR]);
    let mut lw = Proc::spawn("linewatch under prlimit", cmd);
    if let Err(why) = lw.wait_stderr_line(READY_LINE, READY_TIMEOUT) {
        panic!("linewatch never became ready: {why}");
    }
    // The start lines, this note among them, come before the ready line.
    let stderr = lw.stderr_text();
    let note = stderr
        .lines()
        .find(|l| l.starts_with("linewatch: warning: the metrics endpoint"))
        .unwrap_or_else(|| panic!("no note of the low limit:\n{stderr}"));
    assert_eq!(
        note,
        format!(
            "linewatch: warning: the metrics endpoint serves at most {LOW_HARD_CAP} connections \
             at once (open-files limit {LOW_HARD_NOFILE}; 4096 wanted): raise the open-files \
             limit (ulimit -n, or LimitNOFILE= in a systemd unit)"
        )
    );
    // Far more connections than the cap: the oldest make room, and every scrape is answered.
    let ns = lab.server().clone();
    let reopen = AtomicBool::new(true);
    let stop = AtomicBool::new(false);
    let opened = AtomicUsize::new(0);
    let (ready_tx, ready_rx) = mpsc::channel();
    let slowest = std::thread::scope(|s| {
        let attack = s.spawn(|| attacker(&ns, LOW_LIMIT_ADDR, &reopen, &stop, &opened, &ready_tx));
        let _stop = StopOnDrop(&stop);
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the attacker opened its connections");
        let slowest = scrapes_answer(&ns, LOW_LIMIT_ADDR, "open-files limit 300");
        stop.store(true, Ordering::Relaxed);
        attack.join().expect("the attacker");
        slowest
    });
    println!(
        "open-files limit {LOW_HARD_NOFILE}: cap {LOW_HARD_CAP}, {} connections made, slowest \
         scrape {slowest:.3} s",
        opened.load(Ordering::Relaxed)
    );
    let done = lw.stop(libc::SIGINT, EXIT_TIMEOUT);
    assert!(done.status.success(), "{}", done.stderr);
}

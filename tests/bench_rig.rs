//! The bench rig end to end, in its short mode, and a shortened demo: both build a real lab
//! (network namespaces, a veth pair, XDP), so they need root. With `CI` set they fail when
//! they cannot run; otherwise they say why and return.
//!
//! What is checked is counting, never speed: the generator's sent count equals the sending
//! veth's counters, every receiver's counts add up with the kernel's (the rig's own `--strict`
//! check, repeated here from the JSON so a rig that skipped it would still fail), linewatch
//! counts one request per frame, and the lab is gone afterwards.

#![allow(clippy::print_stdout)] // The bench table is the test's report.

use std::path::PathBuf;
use std::process::{Command, Output};

use linewatch_testkit::lab::{namespaces_of, End, Lab};
use linewatch_testkit::tools::{need_programs, need_root};
use serde_json::Value;

/// Whether the test can run here: root and the programs the rig runs.
fn can_run(test: &str) -> bool {
    need_root(test, "network namespaces, veth, XDP")
        && need_programs(test, &["ip", "tcpdump", "taskset"])
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bench-rig-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Runs bench-rig and returns its output and pid (for the lab's namespace names).
fn bench_rig(args: &[&str]) -> (Output, u32) {
    let child = Command::new(env!("CARGO_BIN_EXE_bench-rig"))
        .args(args)
        .arg("--linewatch")
        .arg(env!("CARGO_BIN_EXE_linewatch"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting bench-rig");
    let pid = child.id();
    let out = child.wait_with_output().expect("bench-rig output");
    if !out.status.success() {
        // A process of the rig killed by a signal says nothing itself; the kernel may have.
        let log = Command::new("dmesg").output();
        let log = log.as_ref().map_or(Default::default(), |o| {
            String::from_utf8_lossy(&o.stdout).into_owned()
        });
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        println!("the kernel's last lines (dmesg):");
        for line in tail.iter().rev() {
            println!("  {line}");
        }
    }
    (out, pid)
}

/// One lab at a time: two labs on two cores starve each other's NAPI threads.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A generator run right after another on the same queue finds it still held by the socket
/// the kernel has not released yet (EBUSY for a moment): it waits for it instead of failing.
#[test]
fn generators_run_back_to_back_on_one_queue_all_send() {
    let _serial = serial();
    if !can_run("generators_run_back_to_back_on_one_queue_all_send") {
        return;
    }
    let lab = Lab::new("lwbb", &["t", "r"]).expect("a lab");
    lab.add_veth(End::new("t", "bbt0"), End::new("r", "bbr0"), 1)
        .expect("a veth pair");
    for run in 0..6 {
        let out = lab
            .ns("t")
            .exec(env!("CARGO_BIN_EXE_bench-rig"))
            .args(["generate", "--interface", "bbt0", "--queues", "1"])
            .args(["--tx", "afxdp", "--rate", "50000", "--seconds", "0.1"])
            .args(["--frame-size", "150", "--flows", "64"])
            .output()
            .expect("running the generator");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "run {run}: {}: {stderr}", out.status);
        let report: Value = serde_json::from_slice(&out.stdout).expect("the generator's JSON");
        let sent = report["sent"].as_u64().expect("sent");
        assert!(sent > 1_000, "run {run}: only {sent} frames sent: {report}");
    }
}

#[test]
fn short_bench_counts_agree_with_the_interfaces() {
    let _serial = serial();
    if !can_run("short_bench_counts_agree_with_the_interfaces") {
        return;
    }
    let dir = scratch("short");
    let json = dir.join("bench.json");
    let chart = dir.join("bench.svg");
    let (out, pid) = bench_rig(&[
        "run",
        "--short",
        "--strict",
        "--json",
        json.to_str().expect("utf-8"),
        "--chart",
        chart.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "bench-rig run --short --strict failed: {stderr}"
    );
    assert!(namespaces_of(pid).is_empty(), "the lab was left behind");

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("the JSON"))
        .expect("valid JSON");
    let trials = doc["trials"].as_array().expect("trials");
    // Two rates (100000 and max) times four receivers, one repetition.
    assert_eq!(trials.len(), 8, "{doc}");
    for t in trials {
        let n = |k: &str| t[k].as_u64().unwrap_or_else(|| panic!("{k} in {t}"));
        let receiver = t["receiver"].as_str().expect("receiver");
        let sent = n("sent");
        assert!(sent > 10_000, "{receiver}: only {sent} frames sent");
        let tx = &t["tx_if"];
        assert_eq!(
            sent,
            tx["tx_packets"].as_u64().expect("tx_packets")
                + tx["tx_dropped"].as_u64().expect("tx_dropped"),
            "{receiver}: generator and sending veth disagree: {t}"
        );
        let delivered = sent - tx["tx_dropped"].as_u64().expect("tx_dropped");
        assert_eq!(
            t["rx_if"]["rx_packets"].as_u64(),
            Some(delivered),
            "{receiver}: {t}"
        );
        let received = n("received");
        assert!(received > 0 && received <= delivered, "{receiver}: {t}");
        match receiver {
            "full" => {
                assert_eq!(
                    t["requests"].as_u64(),
                    Some(received),
                    "one request per frame: {t}"
                );
                assert_eq!(t["xdp_seen"].as_u64(), Some(delivered), "{t}");
                assert_eq!(received + n("socket_or_kernel_drops"), delivered, "{t}");
                let latency = &t["capture_latency_us"];
                assert_eq!(
                    latency["count"].as_u64(),
                    Some(received),
                    "every frame's stamp read: {t}"
                );
            }
            "rxdrop" => {
                assert_eq!(t["xdp_seen"].as_u64(), Some(delivered), "{t}");
                assert_eq!(received + n("socket_or_kernel_drops"), delivered, "{t}");
            }
            "xdpdrop" => assert_eq!(received, delivered, "{t}"),
            "afpacket" => assert!(received + n("socket_or_kernel_drops") <= delivered, "{t}"),
            other => panic!("unknown receiver {other}"),
        }
    }
    // Every lost frame is accounted for: dropped by the sending veth (when its NAPI thread
    // does not get the shared core in time, which depends on the machine's load) or by the
    // receiver. At 100000 frames/s the XDP receivers themselves drop nothing.
    for t in trials {
        let n = |k: &str| t[k].as_u64().unwrap_or(0);
        if t["receiver"] != "afpacket" {
            assert_eq!(
                n("lost"),
                t["tx_if"]["tx_dropped"].as_u64().unwrap_or(0) + n("socket_or_kernel_drops"),
                "{t}"
            );
        }
        if t["rate"].as_f64() == Some(100_000.0) && t["receiver"] != "afpacket" {
            assert_eq!(n("socket_or_kernel_drops"), 0, "{t}");
        }
    }
    let svg = std::fs::read_to_string(&chart).expect("the chart");
    assert!(svg.starts_with("<svg"), "not an SVG");
    assert_eq!(svg.matches("<polyline").count(), 4, "one line per receiver");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_fires_and_recovers_an_alert_and_cleans_up() {
    let _serial = serial();
    if !can_run("demo_fires_and_recovers_an_alert_and_cleans_up") {
        return;
    }
    // The demo's story in 8 s: calm, spike, calm on a 2-second window.
    let (out, pid) = bench_rig(&[
        "demo",
        "--phases",
        "2,3,3",
        "--calm",
        "5",
        "--spike",
        "80",
        "--threshold",
        "20",
        "--window",
        "2",
        "--report-interval",
        "3",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}{stderr}");
    println!("{all}");
    assert!(out.status.success(), "demo failed: {stderr}");
    assert!(
        namespaces_of(pid).is_empty(),
        "the demo left its lab behind"
    );
    assert!(
        all.contains("High traffic generated an alert - hits = "),
        "no alert"
    );
    assert!(
        all.contains("High traffic alert recovered - hits = "),
        "no recovery"
    );
    let fired = all.find("generated an alert").expect("fired");
    let recovered = all.find("alert recovered").expect("recovered");
    assert!(fired < recovered, "recovery before the alert");
    assert!(
        all.contains("response latency"),
        "no response-latency histogram"
    );
    assert!(
        all.contains("capture latency"),
        "no capture-latency histogram"
    );
    for section in ["/api", "/pages"] {
        assert!(all.contains(section), "section {section} not reported");
    }
}

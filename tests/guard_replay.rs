//! The connection guard offline: new-connection counting and port-scan detection on captures
//! the test writes itself, replayed with `--read` (packet time drives the scan window, so every
//! case is exact and instant). The seed's cases (packetwatch's e2e suite): a fast scan is
//! flagged at its P-th port, hammering one port is not, a slow scan spaced wider than the
//! window is not, an allow-listed scanner is logged and not flagged; plus IPv6, SYN-ACKs (not
//! new connections) and bad options.

mod common;

use std::net::IpAddr;
use std::path::Path;

use common::{linewatch, scratch, summary_of};
use linewatch_testkit::frame::{pcap, Frame, TcpFlags, TcpRepr};
use serde_json::Value;

const T0: u64 = 1_700_000_000;

/// One SYN (or SYN-ACK) frame: Ethernet + IPv4/IPv6 + a 20-byte TCP header, no payload.
fn syn_frame(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, ack: bool) -> Vec<u8> {
    let tcp = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq: 1000,
        ack: if ack { 2000 } else { 0 },
        flags: if ack {
            TcpFlags::SYN | TcpFlags::ACK
        } else {
            TcpFlags::SYN
        },
        ..TcpRepr::default()
    };
    Frame::tcp(src, dst, tcp).to_vec()
}

/// A classic pcap of `(ns offset from T0, frame)`, sorted.
fn write_pcap(path: &Path, mut frames: Vec<(u64, Vec<u8>)>) {
    frames.sort_by_key(|(t, _)| *t);
    let records: Vec<(u64, &[u8])> = frames
        .iter()
        .map(|(t, f)| (T0 * S + t, f.as_slice()))
        .collect();
    std::fs::write(path, pcap(&records)).expect("writing the capture");
}

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The scenario, with the truth it was built from.
struct Scenario {
    frames: Vec<(u64, Vec<u8>)>,
    syns: u64,
    /// (source, offset of the SYN that reaches the threshold).
    scanners: Vec<(&'static str, u64)>,
}

/// Window 5 s, 3 ports.
fn scenario() -> Scenario {
    let server4 = ip("192.0.2.1");
    let server6 = ip("2001:db8::1");
    let mut frames = Vec::new();
    let mut syns = 0;
    let mut syn = |frames: &mut Vec<(u64, Vec<u8>)>, t: u64, src: &str, dport: u16| {
        let dst = if src.contains(':') { server6 } else { server4 };
        frames.push((t, syn_frame(ip(src), dst, 40_000, dport, false)));
        // The server answers every SYN: SYN-ACKs are not new connections.
        frames.push((t + MS / 10, syn_frame(dst, ip(src), dport, 40_000, true)));
        syns += 1;
    };
    // A fast scan: ports 1..=20, 10 ms apart, from t = 10 s. Flagged at its third port.
    for i in 0..20u64 {
        syn(
            &mut frames,
            10 * S + i * 10 * MS,
            "192.0.2.10",
            1 + u16::try_from(i).unwrap(),
        );
    }
    // Hammering one port: 500 SYNs over 5 s.
    for i in 0..500u64 {
        syn(&mut frames, 2 * S + i * 10 * MS, "192.0.2.20", 80);
    }
    // Two ports only, many times: below the threshold.
    for i in 0..100u64 {
        syn(
            &mut frames,
            3 * S + i * 20 * MS,
            "192.0.2.21",
            80 + u16::try_from(i % 2).unwrap(),
        );
    }
    // A slow scan: a new port every 6 s, wider than the 5 s window.
    for i in 0..6u64 {
        syn(
            &mut frames,
            1 + i * 6 * S,
            "192.0.2.30",
            1000 + u16::try_from(i).unwrap(),
        );
    }
    // Just inside the window: ports at 0, 2.4 and 4.9 s: flagged at the third.
    for (i, t) in [0, 2_400 * MS, 4_900 * MS].into_iter().enumerate() {
        syn(
            &mut frames,
            20 * S + t,
            "192.0.2.40",
            2000 + u16::try_from(i).unwrap(),
        );
    }
    // An allow-listed scanner (--allow 198.51.100.0/24): logged, not flagged.
    for i in 0..10u64 {
        syn(
            &mut frames,
            12 * S + i * MS,
            "198.51.100.7",
            3000 + u16::try_from(i).unwrap(),
        );
    }
    // IPv6.
    for i in 0..4u64 {
        syn(
            &mut frames,
            15 * S + i * MS,
            "2001:db8::66",
            22 + u16::try_from(i).unwrap(),
        );
    }
    Scenario {
        frames,
        syns,
        scanners: vec![
            ("192.0.2.10", 10 * S + 20 * MS),
            ("2001:db8::66", 15 * S + 2 * MS),
            ("192.0.2.40", 20 * S + 4_900 * MS),
        ],
    }
}

#[test]
fn port_scans_are_flagged_exactly_and_only_scans() {
    let dir = scratch("guard-replay");
    let capture = dir.join("guard-scan.pcap");
    let s = scenario();
    write_pcap(&capture, s.frames);
    let args = [
        "--scan-window",
        "5",
        "--scan-ports",
        "3",
        "--allow",
        "198.51.100.0/24",
        "--json",
    ];
    let (summary, out) = summary_of(&capture, &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);

    // Every SYN is a new connection; no SYN-ACK is.
    assert_eq!(summary["connections"]["new"], s.syns, "{summary:#}");
    let events: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each --json line is JSON"))
        .collect();
    let connections: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "connection")
        .collect();
    assert_eq!(connections.len() as u64, s.syns);
    assert!(connections
        .iter()
        .any(|e| e["src"] == "2001:db8::66" && e["dst_port"] == 25));
    assert_eq!(summary["connections"]["sources"]["top"]["192.0.2.20"], 500);
    assert_eq!(summary["connections"]["ports"]["top"]["80"], 550);

    // Exactly the three scanners, flagged at the SYN that reached three ports.
    let alerts: Vec<(String, f64)> = summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["kind"] == "port_scan")
        .map(|a| {
            (
                a["source"].as_str().unwrap().to_owned(),
                a["triggered_at"].as_f64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, f64)> = s
        .scanners
        .iter()
        .map(|(src, t)| ((*src).to_owned(), T0 as f64 + *t as f64 / 1e9))
        .collect();
    assert_eq!(alerts.len(), want.len(), "{alerts:?}");
    for ((got, at), (src, t)) in alerts.iter().zip(&want) {
        assert_eq!(got, src);
        assert!((at - t).abs() < 1e-5, "{src} flagged at {at}, expected {t}");
    }
    assert_eq!(summary["guard"]["scanners_flagged"], 3);
    assert_eq!(summary["guard"]["scans_allowed"], 1);
    // The fast scanner's 17 later SYNs were seen from a flagged source (nothing blocks
    // offline); the IPv6 one's fourth.
    assert_eq!(summary["guard"]["syns_from_flagged"], 18);
    assert_eq!(summary["guard"]["blocked_syns"], 0);
    assert_eq!(summary["guard"]["blocking_on"], Value::Null);

    // The alert texts on the human side, and the allow-listed scan logged.
    assert!(
        stderr.contains(
            "Port scan detected - source = 192.0.2.10, ports = 3 within 5 s, triggered at "
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "Port scan from allow-listed source 198.51.100.7 not flagged - ports = 3 within 5 s"
        ),
        "{stderr}"
    );
    let allowed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "scan_allowed")
        .collect();
    assert_eq!(allowed.len(), 1);
    assert_eq!(allowed[0]["source"], "198.51.100.7");
    let scan_events = events
        .iter()
        .filter(|e| e["type"] == "alert" && e["kind"] == "port_scan")
        .count();
    assert_eq!(scan_events, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_scan_threshold_and_window_are_options() {
    let dir = scratch("guard-options");
    let capture = dir.join("guard-options.pcap");
    write_pcap(&capture, scenario().frames);
    // Ten ports: only the fast scanner (20 ports) qualifies; the allow-listed one would too,
    // but is allowed.
    let (summary, _) = summary_of(
        &capture,
        &[
            "--scan-window",
            "5",
            "--scan-ports",
            "10",
            "--allow",
            "198.51.100.7",
        ],
    );
    assert_eq!(summary["guard"]["scanners_flagged"], 1);
    assert_eq!(summary["guard"]["scans_allowed"], 1);
    // A 13 s window catches the slow scan (a port every 6 s) too.
    let (summary, _) = summary_of(&capture, &["--scan-window", "13"]);
    let sources: Vec<&str> = summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["source"].as_str())
        .collect();
    assert!(sources.contains(&"192.0.2.30"), "{sources:?}");
    assert!(
        sources.contains(&"198.51.100.7"),
        "not allow-listed this time"
    );
    assert!(
        !sources.contains(&"192.0.2.20"),
        "hammering is never a scan"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn guard_options_are_checked() {
    let dir = scratch("guard-bad");
    let capture = dir.join("scan.pcap");
    write_pcap(&capture, scenario().frames);
    let c = capture.to_str().unwrap();
    for (args, want) in [
        (
            vec!["--read", c, "--block-scanners"],
            "--block-scanners applies to live capture",
        ),
        (vec!["--read", c, "--block-for", "10"], "--block-scanners"),
        (vec!["--read", c, "--allow", "10.0.0.0/33"], "prefix length"),
        (
            vec!["--read", c, "--allow", "nonsense"],
            "is not an address",
        ),
        (vec!["--read", c, "--scan-ports", "0"], "scan-ports"),
        (vec!["--read", c, "--scan-window", "0"], "scan-window"),
    ] {
        let out = linewatch(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

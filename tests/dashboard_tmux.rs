//! `--dashboard` tried as a person would: in a real terminal (tmux), typing keys with
//! `send-keys` and reading the screen with `capture-pane`. A scripted replay (a calm, a spike,
//! a calm, written by the bench rig's generator) is paced with `--speed` so that the alert
//! fires while the screen is up. tmux is needed: in CI a missing tmux fails the tests.
//!
//! What a person checks: the chart, the threshold and the alert banner and its history are
//! drawn; `/` with a host narrows the panels to it and Esc clears it; `p` freezes the view;
//! `q` gives the terminal back (main screen, cursor shown, cooked mode: what tmux and `stty`
//! report) and the exit summary is printed; SIGTERM and a panic give it back too; a terminal
//! too small says so and a resize redraws; without a terminal linewatch refuses in one line.
//! Also here: colour in the plain output on a terminal, and none under `NO_COLOR`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;
use common::{linewatch, scratch, summary_of};
use linewatch_bench_rig::capture::{write_capture_file, CaptureSpec, Phase};
use linewatch_testkit::tools::need_programs;

const BIN: &str = env!("CARGO_BIN_EXE_linewatch");

fn have_tmux(test: &str) -> bool {
    need_programs(test, &["tmux"])
}

/// 10 s calm (5 req/s), 10 s spike (60 req/s), 25 s calm: with a 10 s window and a threshold
/// of 20 the alert is raised in the spike's 3rd second (21.5 req/s) and recovers in the calm.
fn spike_capture(dir: &Path) -> PathBuf {
    let path = dir.join("spike.pcap");
    let spec = CaptureSpec {
        phases: [(10, 5), (10, 60), (25, 5)]
            .iter()
            .map(|&(seconds, requests_per_second)| Phase {
                seconds,
                requests_per_second,
            })
            .collect(),
        requests_per_connection: 5,
        ..CaptureSpec::default()
    };
    write_capture_file(&spec, &path).expect("writing the capture");
    path
}

/// Hosts (`h{n}.example`) named on a screen, each once.
fn hosts_on(screen: &str) -> std::collections::BTreeSet<String> {
    let mut hosts = std::collections::BTreeSet::new();
    for (i, _) in screen.match_indices(".example") {
        let before = &screen[..i];
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| !c.is_ascii_alphanumeric())
            .map_or(0, |(at, c)| at + c.len_utf8());
        hosts.insert(screen[start..i].to_owned());
    }
    hosts
}

/// The part of the screen below the chart (the panels), where host names are.
fn panels(screen: &str) -> String {
    screen
        .lines()
        .skip_while(|l| !l.contains("top hosts"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_dashboard_shows_the_spike_and_its_alert_filters_pauses_and_quits_clean() {
    if !have_tmux("the dashboard in tmux") {
        return;
    }
    let dir = scratch("dash-spike");
    let capture = spike_capture(&dir);
    let summary = dir.join("summary.json");
    let tmux = Tmux::start(
        "spike",
        (150, 45),
        &[],
        &[
            BIN,
            "--read",
            capture.to_str().unwrap(),
            "--dashboard",
            "--window",
            "10",
            "--threshold",
            "20",
            "--speed",
            "3",
            "--summary",
            summary.to_str().unwrap(),
        ],
    );
    let limit = Duration::from_secs(30);

    // The spike raises the alert while the screen is up: banner, chart, threshold, history.
    let screen = tmux.wait_for("the alert banner", limit, |s| {
        s.contains(" ALERT  high traffic") && s.contains("High traffic generated an alert")
    });
    tmux.assert_taken();
    assert!(
        screen.contains("requests/s over the alert window (10 s)"),
        "{screen}"
    );
    assert!(screen.contains("threshold 20.00/s"), "{screen}");
    assert!(
        screen
            .chars()
            .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
        "the chart's lines are drawn:\n{screen}"
    );
    assert!(screen.contains("replay spike.pcap (3x speed"), "{screen}");
    for panel in [
        "top sections (with hosts)",
        "top hosts",
        "user agents",
        "status",
        "methods",
        "connections",
        "latency (since start)",
        "most recent requests",
        "alert history",
    ] {
        assert!(screen.contains(panel), "panel {panel}:\n{screen}");
    }
    // The banner is red while the alert is active.
    let coloured = tmux.screen_with_colours(false);
    let banner = coloured
        .lines()
        .find(|l| l.contains("ALERT  high traffic"))
        .expect("the banner line");
    assert!(
        banner.contains("[41m") || banner.contains("[48;5;1m"),
        "a red background: {banner:?}"
    );

    // `/` with a host narrows every keyed panel (and the recent requests) to it.
    assert!(hosts_on(&panels(&screen)).len() > 1, "{screen}");
    tmux.keys(&["/", "h3.example", "Enter"]);
    let screen = tmux.wait_for("the filter", limit, |s| {
        s.contains("filter: h3.example") && hosts_on(&panels(s)).len() == 1
    });
    assert_eq!(
        hosts_on(&panels(&screen)).into_iter().collect::<Vec<_>>(),
        ["h3"],
        "{screen}"
    );
    assert!(screen.contains("top hosts [h3.example]"), "{screen}");
    assert!(
        screen.contains("most recent requests [h3.example]"),
        "{screen}"
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter cleared", limit, |s| {
        !s.contains("filter: h3.example") && hosts_on(&panels(s)).len() > 1
    });

    // `?` shows the keys; Esc closes them.
    tmux.keys(&["?"]);
    tmux.wait_for("the help", limit, |s| s.contains("help (Esc or ? closes)"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help closed", limit, |s| {
        !s.contains("help (Esc or ? closes)")
    });

    // `s` sorts by bytes; `p` freezes the view while counting goes on.
    tmux.keys(&["s"]);
    tmux.wait_for("sort by bytes", limit, |s| s.contains("s sort: bytes"));
    tmux.keys(&["p"]);
    let paused = tmux.wait_for("the pause", limit, |s| s.contains("PAUSED"));
    std::thread::sleep(Duration::from_millis(2500));
    let still = tmux.screen();
    if !still.contains("input ended") {
        assert_eq!(paused, still, "nothing moves while paused");
    }
    tmux.keys(&["p"]);
    tmux.wait_for("the view moving again", limit, |s| {
        !s.contains("PAUSED") && *s != still
    });

    // The input ends: the screen stays until `q`, then the terminal is the shell's again and
    // the summary is printed.
    tmux.wait_for("the end of the input", limit, |s| s.contains("input ended"));
    tmux.keys(&["q"]);
    assert_eq!(tmux.wait_exit(limit), "0");
    tmux.assert_restored();
    let screen = tmux.screen();
    assert!(screen.contains("Alert history (1)"), "{screen}");
    assert!(screen.contains("high_traffic raised"), "{screen}");
    // The dashboard changes nothing that is counted.
    let watched: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("the summary file"))
            .expect("JSON");
    let (plain, _) = summary_of(&capture, &["--window", "10", "--threshold", "20"]);
    for key in [
        "requests",
        "responses",
        "hosts",
        "sections",
        "status",
        "methods",
        "alerts",
    ] {
        assert_eq!(watched[key], plain[key], "{key}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The dashboard on `capture` at its own speed, in a terminal of `size`, with `env`.
fn watch(name: &str, size: (u16, u16), env: &[&str], capture: &Path) -> Tmux {
    let capture = capture.to_str().expect("utf-8 path");
    let args = [BIN, "--read", capture, "--dashboard", "--realtime"];
    Tmux::start(name, size, env, &args)
}

/// linewatch, stopped in the middle of the replay, exits 0, gives the terminal back and says
/// that the summary covers what was read; the screen after it.
fn stopped_early(tmux: &Tmux) -> String {
    assert_eq!(tmux.wait_exit(Duration::from_secs(20)), "0");
    tmux.assert_restored();
    let screen = tmux.screen();
    assert!(
        screen.contains("linewatch: interrupted: the summary covers the packets read until then"),
        "{screen}"
    );
    screen
}

#[test]
fn too_small_says_so_a_resize_redraws_and_sigterm_restores() {
    if !have_tmux("the dashboard in tmux") {
        return;
    }
    let dir = scratch("dash-term");
    let tmux = watch("term", (60, 16), &[], &spike_capture(&dir));
    let limit = Duration::from_secs(20);
    tmux.wait_for("the size message", limit, |s| {
        s.contains("terminal too small: 60x16") && s.contains("80x24")
    });
    tmux.run(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    tmux.wait_for("the dashboard", limit, |s| {
        s.contains("most recent requests")
    });
    tmux.assert_taken();

    let pid = tmux.linewatch_pid();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("running kill");
    assert!(killed.success());
    let screen = stopped_early(&tmux);
    assert!(
        screen.contains("response latency"),
        "the summary:\n{screen}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_quits_like_q_and_the_replay_is_said_to_be_cut_short() {
    if !have_tmux("the dashboard in tmux") {
        return;
    }
    let dir = scratch("dash-ctrl-c");
    let tmux = watch("ctrl-c", (120, 40), &[], &spike_capture(&dir));
    tmux.wait_for("the dashboard", Duration::from_secs(20), |s| {
        s.contains("most recent requests")
    });
    tmux.assert_taken();
    // Raw mode: Ctrl-C is a key, not SIGINT; it quits at once, in the middle of the replay.
    tmux.keys(&["C-c"]);
    stopped_early(&tmux);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_panic_restores_the_terminal_and_its_message_is_seen() {
    if !have_tmux("the dashboard in tmux") {
        return;
    }
    let dir = scratch("dash-panic");
    let env = ["LINEWATCH_DASHBOARD_TEST_PANIC=1"];
    let tmux = watch("panic", (120, 40), &env, &spike_capture(&dir));
    let code = tmux.wait_exit(Duration::from_secs(20));
    tmux.assert_restored();
    let screen = tmux.screen();
    assert!(
        screen.contains("LINEWATCH_DASHBOARD_TEST_PANIC=1: a forced panic"),
        "{screen}"
    );
    assert_ne!(code, "0", "{screen}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_terminal_the_dashboard_refuses_in_one_line() {
    let dir = scratch("dash-notty");
    let capture = spike_capture(&dir);
    let out = linewatch(&["--read", capture.to_str().unwrap(), "--dashboard"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("linewatch: --dashboard needs a terminal, and stdout is not one"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_paced_replay_takes_the_capture_s_time_and_counts_the_same() {
    let dir = scratch("dash-pace");
    let path = dir.join("short.pcap");
    let spec = CaptureSpec {
        phases: vec![Phase {
            seconds: 3,
            requests_per_second: 20,
        }],
        ..CaptureSpec::default()
    };
    let truth = write_capture_file(&spec, &path).expect("writing the capture");
    let (fast, _) = summary_of(&path, &[]);
    let started = Instant::now();
    let (paced, _) = summary_of(&path, &["--speed", "2"]);
    let took = started.elapsed();
    // The packets span a little under 3 s: at double speed, over a second.
    assert!(took >= Duration::from_millis(1000), "{took:?}");
    assert_eq!(paced["requests"].as_u64(), Some(truth.requests));
    assert_eq!(paced["requests"], fast["requests"]);
    assert_eq!(paced["hosts"], fast["hosts"]);
    assert_eq!(paced["status"], fast["status"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn alerts_are_red_and_recoveries_green_on_a_terminal_unless_no_color() {
    if !have_tmux("colour in tmux") {
        return;
    }
    let dir = scratch("dash-colour");
    let capture = spike_capture(&dir);
    let capture = capture.to_str().unwrap();
    let args = [
        BIN,
        "--read",
        capture,
        "--window",
        "10",
        "--threshold",
        "20",
    ];
    let limit = Duration::from_secs(20);

    let tmux = Tmux::start("colour", (150, 45), &[], &args);
    tmux.wait_exit(limit);
    let text = tmux.screen_with_colours(true);
    let line = |start: &str| {
        text.lines()
            .find(|l| l.contains(start))
            .unwrap_or_else(|| panic!("no line with {start:?}:\n{text}"))
            .to_owned()
    };
    let raised = line("High traffic generated an alert");
    let recovered = line("High traffic alert recovered");
    assert!(raised.contains("\x1b[31m"), "red: {raised:?}");
    assert!(recovered.contains("\x1b[32m"), "green: {recovered:?}");
    drop(tmux);

    let tmux = Tmux::start("nocolour", (150, 45), &["NO_COLOR=1"], &args);
    tmux.wait_exit(limit);
    let text = tmux.screen_with_colours(true);
    assert!(text.contains("High traffic generated an alert"), "{text}");
    assert!(
        !text.contains("\x1b[31m") && !text.contains("\x1b[32m"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! A minimal `linewatch --mirror` for the mirror tests (engine/tests/mirror_netns.rs).
//!
//! * `mirror_probe IFACE [QUEUES]`: runs `clean_leftovers`, creates a mirror of IFACE, prints
//!   the capture interface on stdout, then waits for end-of-file on stdin, SIGTERM or SIGINT,
//!   tears the mirror down and prints `teardown ok` (exit 0), or the error on stderr (exit 1).
//! * `mirror_probe --clean`: runs `clean_leftovers` and prints its lines.
//! * `mirror_probe --internal-mirror-watchdog STATE`: the watchdog, dispatched as linewatch's
//!   `main` does it.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use linewatch_engine::live::mirror::{self, Mirror, MirrorSpec};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(mirror::WATCHDOG_ARG) {
        return mirror::watchdog_main(&args[2..]);
    }
    let mut out = io::stdout().lock();
    match args.get(1).map(String::as_str) {
        None => {
            eprintln!("usage: mirror_probe IFACE [QUEUES] | mirror_probe --clean");
            ExitCode::from(2)
        }
        Some("--clean") => {
            for line in mirror::clean_leftovers() {
                let _ = writeln!(out, "{line}");
            }
            ExitCode::SUCCESS
        }
        Some(iface) => {
            let queues = match args.get(2).map(|q| q.parse::<u32>()) {
                None => 1,
                Some(Ok(q)) => q,
                Some(Err(e)) => {
                    eprintln!("bad QUEUES: {e}");
                    return ExitCode::from(2);
                }
            };
            for line in mirror::clean_leftovers() {
                eprintln!("cleaned: {line}");
            }
            let spec = MirrorSpec {
                interface: iface.to_owned(),
                queues,
            };
            let mut m = match Mirror::create(&spec) {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let _ = writeln!(out, "{}", m.capture_interface());
            let _ = out.flush();
            wait_for_stop();
            match m.teardown() {
                Ok(()) => {
                    let _ = writeln!(out, "teardown ok");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Returns on end-of-file on stdin, SIGTERM or SIGINT.
fn wait_for_stop() {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("cannot handle signal {sig}: {e}");
        }
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut stdin = io::stdin().lock();
        while matches!(stdin.read_line(&mut line), Ok(n) if n > 0) {
            line.clear();
        }
        let _ = tx.send(());
    });
    while !stop.load(Ordering::Relaxed) {
        if rx.recv_timeout(Duration::from_millis(20)) != Err(mpsc::RecvTimeoutError::Timeout) {
            break;
        }
    }
}

//! Carries out a [`Plan`]: opens the inputs and outputs (each failure one line, exit 2, before
//! anything runs), installs the signal handlers, starts the metrics endpoint and the status
//! line, then runs the replay or live capture until the input ends, the duration passes or
//! Ctrl-C/SIGTERM arrives. What it hands back is summarised by [`crate::output::summarise`].
//! With `--dashboard` the screen ([`crate::dashboard`]) replaces the status line and reports,
//! and is given back before the summary is printed.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use linewatch_engine::aggregate::{Snapshot, METHOD_NAMES};
use linewatch_engine::live;
use linewatch_engine::offline;
use linewatch_engine::paced::Paced;
use linewatch_engine::pipeline::RunResult;
use linewatch_engine::scan::{AllowList, Cidr};
use linewatch_engine::source::{open_capture, Source};

use crate::capture;
use crate::dashboard::{self, recent::Board, Dashboard, Notices};
use crate::exit::bad_input;
use crate::metrics_server::{self, MetricsServer};
use crate::output::{Human, Printer};
use crate::plan::{Mode, Plan};

/// A run that ended with something to summarise.
pub(crate) struct Finished {
    /// What was counted.
    pub(crate) result: RunResult,
    /// The human-readable stream the summary goes to.
    pub(crate) human: Human,
    /// The `--summary` file, opened before the run.
    pub(crate) summary_file: Option<(PathBuf, File)>,
}

/// What the run reads and writes, opened before it starts.
struct Opened {
    /// The replay's readers: one, or one per worker when each reads a memory-mapped file.
    sources: Vec<Box<dyn Source + Send>>,
    alert_log: Option<File>,
    summary_file: Option<(PathBuf, File)>,
}

/// Runs `plan`; `Err` is the exit code of a run that could not start or failed.
pub(crate) fn run(mut plan: Plan) -> Result<Finished, ExitCode> {
    if plan.outputs.dashboard {
        dashboard::check_terminal().map_err(bad_input)?;
    }
    let mut opened = open(&mut plan).map_err(bad_input)?;
    // The dashboard's recent requests: each worker gets a sink into the board (only then).
    let board = Arc::new(Board::default());
    if plan.outputs.dashboard {
        plan.engine.worker.events = Some(Board::factory(&board));
    }
    // Lines that say what this run does, printed once capture is ready (live: so that an
    // error at start stays the only line) or at once (a replay).
    let mut startup: Vec<String> = plan
        .watch_banner()
        .into_iter()
        .chain(plan.scan_banner())
        .collect();

    let human = Human::new(plan.outputs.json, plan.outputs.dashboard);
    let notices = Notices::default();
    let mut printer = Printer::new(&human, opened.alert_log, plan.outputs.top);
    if plan.outputs.dashboard {
        printer = printer.with_notices(notices.clone());
    }
    let stop = stop_on_signals(plan.duration);
    // A pipe's reader may wait for its writer: Ctrl-C, SIGTERM or --duration end that wait.
    for source in &mut opened.sources {
        source.watch_stop(Arc::clone(&stop));
    }

    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    let metrics_server = match plan.outputs.metrics {
        Some(addr) => {
            let server = serve_metrics(addr, &snapshot).map_err(bad_input)?;
            startup.push(format!(
                "linewatch: serving OpenMetrics on http://{}/metrics",
                server.local_addr()
            ));
            startup.extend(server.limit_note());
            Some(server)
        }
        None => None,
    };
    let done = Arc::new(AtomicBool::new(false));
    let status = human.status_line(&snapshot, &done);
    // Ready to take the terminal: a replay once its start lines are printed; live capture once
    // its first second is published (its start lines come before).
    let ready = Arc::new(AtomicBool::new(false));
    let screen = plan.outputs.dashboard.then(|| {
        Dashboard::start(
            &plan,
            dashboard::Context {
                snapshot: Arc::clone(&snapshot),
                stop: Arc::clone(&stop),
                ready: Arc::clone(&ready),
                board,
                notices,
            },
        )
    });

    let session = capture::Session {
        plan: &plan,
        snapshot: &snapshot,
        stop: &stop,
        startup: &startup,
    };
    let outcome = match &plan.mode {
        Mode::Read(_) => {
            for line in &startup {
                eprintln!("{line}");
            }
            ready.store(true, Ordering::Relaxed);
            Ok(replay(opened.sources, &session, printer, &stop))
        }
        Mode::Interface(iface) => capture::interface(&session, iface, printer),
        Mode::Mirror(iface) => capture::mirror(&session, iface, printer),
    };
    done.store(true, Ordering::Relaxed);
    if let Some(handle) = status {
        let _ = handle.join();
    }
    if let Some(screen) = screen {
        if let Err(e) = screen.finish(outcome.is_ok()) {
            eprintln!("linewatch: {e}");
        }
    }
    if let Some(server) = metrics_server {
        server.stop();
    }
    match outcome {
        Ok(result) => Ok(Finished {
            result,
            human,
            summary_file: opened.summary_file,
        }),
        Err(e) => {
            human.clear();
            eprintln!("linewatch: {e}");
            Err(ExitCode::from(2))
        }
    }
}

/// Opens the capture, the alert log and the summary file, and completes the allow-list with
/// the monitored interface's own addresses; each failure is the run's one error line.
fn open(plan: &mut Plan) -> Result<Opened, String> {
    // Before anything is created or truncated (`File::create` truncates): an output that is
    // the capture would destroy it.
    if let Mode::Read(input) = &plan.mode {
        for (option, output) in [
            ("--summary", &plan.outputs.summary),
            ("--alert-log", &plan.outputs.alert_log),
        ] {
            if let Some(output) = output {
                refuse_if_same_file(option, output, input)?;
            }
        }
    }
    let mut sources = Vec::new();
    if let Mode::Read(path) = &plan.mode {
        sources.push(open_capture(path).map_err(|e| e.to_string())?);
    }
    let alert_log = match &plan.outputs.alert_log {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("cannot open alert log {}: {e}", p.display()))?,
        ),
        None => None,
    };
    // Fail before the run, not after it, if the summary cannot be written.
    let summary_file = match &plan.outputs.summary {
        Some(p) => Some((
            p.clone(),
            File::create(p).map_err(|e| format!("cannot write summary {}: {e}", p.display()))?,
        )),
        None => None,
    };
    // A replay with two or more workers has each of them read the file (no reader thread)
    // when it is memory-mapped. A pipe could not be read twice, and a pcapng reader copies
    // through its own 1 MiB buffer: those keep one reader thread feeding the workers.
    // A paced replay has one reader, which keeps the pace.
    if let Mode::Read(path) = &plan.mode {
        if plan.engine.workers > 1 && sources[0].is_mapped() && plan.pace.is_none() {
            for _ in 1..plan.engine.workers {
                sources.push(open_capture(path).map_err(|e| e.to_string())?);
            }
        }
    }
    // The allow-list: --allow, plus the monitored interface's own addresses when live.
    if let Some(iface) = &plan.allow_self {
        let own = live::interface_addresses(iface).map_err(|e| e.to_string())?;
        plan.self_addresses = own.len();
        let scan = &mut plan.engine.aggregator.scan;
        let mut nets = scan.allow.nets().to_vec();
        nets.extend(own.into_iter().map(Cidr::host));
        scan.allow = AllowList::new(nets);
    }
    Ok(Opened {
        sources,
        alert_log,
        summary_file,
    })
}

/// Refuses an output file that is the input file (the same device and inode, whatever the
/// path: a symlink, a hard link, `./x` for `x`). An output that does not exist yet, or an
/// input that cannot be looked at (the capture's own open reports that), is not refused here.
fn refuse_if_same_file(option: &str, output: &Path, input: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let (Ok(out), Ok(inp)) = (
        std::fs::metadata(output),
        std::fs::metadata(linewatch_engine::source::metadata_path(input)),
    ) else {
        return Ok(());
    };
    if out.dev() == inp.dev() && out.ino() == inp.ino() {
        return Err(format!(
            "{option} {} is the capture being read ({}): writing it would damage the \
             capture; name another file",
            output.display(),
            linewatch_engine::source::name_of(input)
        ));
    }
    Ok(())
}

/// Replays the capture: through a reader thread with one source, each worker reading its own
/// with several.
fn replay(
    mut sources: Vec<Box<dyn Source + Send>>,
    session: &capture::Session<'_>,
    printer: Printer,
    stop: &Arc<AtomicBool>,
) -> RunResult {
    let config = &session.plan.engine;
    let snapshot = Arc::clone(session.snapshot);
    if let Some(speed) = session.plan.pace {
        let paced = Paced::new(sources.remove(0), speed, Arc::clone(stop));
        let mut result = offline::run(Box::new(paced), config, Box::new(printer), snapshot, stop);
        // A stop ends a paced source as if the capture ended: say it was cut short.
        result.interrupted |= stop.load(Ordering::Relaxed);
        return result;
    }
    if sources.len() == 1 {
        let source = sources.remove(0);
        offline::run(source, config, Box::new(printer), snapshot, session.stop)
    } else {
        offline::run_parallel(sources, config, Box::new(printer), snapshot, session.stop)
    }
}

/// Ctrl-C or SIGTERM ends the run; the summary still covers what was counted. A second
/// Ctrl-C or SIGTERM while linewatch winds down exits at once (a mirror's watchdog process
/// still removes the veth and tc set-up; the XDP program detaches with the process).
/// `duration` (seconds) ends the run too.
fn stop_on_signals(duration: Option<u64>) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(e) = registered {
            eprintln!("linewatch: warning: cannot catch signal {signal}: {e}");
        }
    }
    if let Some(secs) = duration {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            stop.store(true, Ordering::Relaxed);
        });
    }
    stop
}

/// Starts the metrics endpoint: each scrape renders the last published view (before the first
/// second closes: zeros, with the start time).
fn serve_metrics(
    addr: std::net::SocketAddr,
    snapshot: &Arc<ArcSwap<Snapshot>>,
) -> Result<MetricsServer, String> {
    let snapshot = Arc::clone(snapshot);
    let started = SystemTime::now();
    let render = Box::new(move || match &snapshot.load().metrics {
        Some(view) => linewatch_report::metrics::render(view),
        None => linewatch_report::metrics::render(&linewatch_report::metrics::MetricsView {
            created: started,
            methods: METHOD_NAMES.iter().map(|m| (*m, 0)).collect(),
            ..Default::default()
        }),
    });
    metrics_server::start(addr, render)
}

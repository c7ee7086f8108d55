//! `--dashboard`: a full-screen view of the run, redrawn once a second from the aggregator's
//! published [`Snapshot`] (and on each key), never from the packet path.
//!
//! Contract: [`Dashboard::start`] runs the screen on its own thread. It takes the terminal once
//! capture is ready (so that the start lines are printed first, on the main screen), draws what
//! the aggregator last published ([`ConsoleView`](linewatch_report::ConsoleView): the
//! aggregator builds it once a second, only with `--dashboard`) and the most recent requests
//! ([`recent`]: a bounded ring per worker, fed by the workers' event sinks, which exist only
//! with `--dashboard`), and handles keys ([`input`], [`app`]). `q` or Ctrl-C set the run's stop
//! flag and give the terminal back at once; so does a stop from a signal. When the input ends
//! on its own (a replay), the screen stays, with the last figures, until `q`.
//! [`Dashboard::finish`] waits for that, then prints the notices the screen held. The terminal
//! is given back on every way out ([`term`]): a quit, a signal, an error, a panic.
//!
//! Testing: `LINEWATCH_DASHBOARD_TEST_PANIC=1` in the environment makes the dashboard thread
//! panic right after its first frame, so a test can check that a panic gives the terminal back.
//!
//! Files: [`app`] (state: filter, sort, pause, focus; the rows of each panel), [`view`]
//! (layout and widgets), [`input`] (keys), [`term`] (the terminal and its restoration),
//! [`recent`] (the recent requests' sink).

mod app;
mod input;
pub(crate) mod recent;
mod term;
mod view;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use linewatch_engine::aggregate::Snapshot;
use ratatui::crossterm::event::{self, Event};

use crate::cli::Ports;
use crate::plan::{Mode, Plan};
use app::{App, Control};
use recent::Board;
pub(crate) use term::check_terminal;
use view::Header;

/// The figures are redrawn this often (the aggregator publishes once a second).
const TICK: Duration = Duration::from_secs(1);

/// Longest wait for a key: bounds how late a stop from a signal is noticed.
const POLL: Duration = Duration::from_millis(100);

/// Notices kept while the screen is up (printed after it is restored).
const MAX_NOTICES: usize = 100;

/// The environment variable that makes the dashboard panic after its first frame (tests).
pub(crate) const TEST_PANIC_ENV: &str = "LINEWATCH_DASHBOARD_TEST_PANIC";

/// Notices (a block that failed, ...) held while the screen is up: the [`crate::output::Printer`]
/// adds them, the screen shows the newest, [`Dashboard::finish`] prints them all.
#[derive(Debug, Clone, Default)]
pub(crate) struct Notices(Arc<Mutex<Vec<String>>>);

impl Notices {
    pub(crate) fn push(&self, text: &str) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() < MAX_NOTICES {
            all.push(text.to_owned());
        }
    }

    fn newest(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last()
            .cloned()
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The run as the dashboard's thread goes on: running, input ended (stay until `q`), or
/// failed (leave at once).
const RUNNING: u8 = 0;
const ENDED: u8 = 1;
const FAILED: u8 = 2;

/// What the dashboard reads.
pub(crate) struct Context {
    pub(crate) snapshot: Arc<ArcSwap<Snapshot>>,
    /// The run's stop flag: set by `q`, read for signals.
    pub(crate) stop: Arc<AtomicBool>,
    /// Capture is ready: the screen may be taken (also once the first second is published).
    pub(crate) ready: Arc<AtomicBool>,
    pub(crate) board: Arc<Board>,
    pub(crate) notices: Notices,
}

/// The dashboard's thread (see the module contract).
pub(crate) struct Dashboard {
    thread: JoinHandle<Result<(), String>>,
    run: Arc<AtomicU8>,
    notices: Notices,
}

impl Dashboard {
    /// Starts the screen's thread for the run `plan` describes.
    pub(crate) fn start(plan: &Plan, context: Context) -> Dashboard {
        let run = Arc::new(AtomicU8::new(RUNNING));
        let notices = context.notices.clone();
        let header = Header {
            source: describe(plan),
            baseline: matches!(
                plan.engine.aggregator.alert.threshold,
                linewatch_engine::alert::Threshold::Baseline { .. }
            ),
            ..Header::default()
        };
        let state = Arc::clone(&run);
        let thread = std::thread::Builder::new()
            .name("linewatch-dashboard".to_owned())
            .spawn(move || {
                let stop = Arc::clone(&context.stop);
                let result = screen(&context, &state, header);
                if result.is_err() {
                    // The screen could not be drawn: end the run rather than count unseen.
                    stop.store(true, Ordering::Relaxed);
                }
                result
            })
            .expect("spawning the dashboard thread");
        Dashboard {
            thread,
            run,
            notices,
        }
    }

    /// The run is over (`ended`: its input ended; else it failed): waits for the screen to be
    /// left (after an end, until `q` or a signal), then prints the notices it held. `Err`: the
    /// screen failed, in one line.
    pub(crate) fn finish(self, ended: bool) -> Result<(), String> {
        self.run
            .store(if ended { ENDED } else { FAILED }, Ordering::Relaxed);
        let result = match self.thread.join() {
            Ok(result) => result,
            Err(_) => Err("the dashboard failed (see the message above)".to_owned()),
        };
        // Whatever happened on that thread, the terminal is given back.
        term::restore();
        for notice in self.notices.take() {
            eprintln!("linewatch: warning: {notice}");
        }
        result
    }
}

/// The screen's loop.
fn screen(context: &Context, run: &AtomicU8, mut header: Header) -> Result<(), String> {
    // Relaxed: flags for "go on", carrying no data.
    while !context.ready.load(Ordering::Relaxed) && context.snapshot.load().second == 0 {
        if context.stop.load(Ordering::Relaxed) || run.load(Ordering::Relaxed) == FAILED {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    let failed = |e: std::io::Error| format!("the dashboard cannot draw: {e}");
    let mut screen = term::Screen::enter()?;
    let mut app = App::default();
    let mut cpu = CpuMeter::default();
    let test_panic = std::env::var_os(TEST_PANIC_ENV).is_some_and(|v| v == "1");
    let mut next_tick = Instant::now();
    let mut dirty = true;
    loop {
        let now = Instant::now();
        if now >= next_tick {
            app.update(context.snapshot.load_full(), context.board.newest_first());
            let cpu_percent = cpu.sample();
            if !app.paused {
                header.cpu_percent = cpu_percent;
                header.notice = context.notices.newest();
            }
            app.finished = run.load(Ordering::Relaxed) == ENDED;
            next_tick = now + TICK;
            dirty = true;
        }
        if dirty {
            screen
                .terminal
                .draw(|frame| view::draw(frame, &app, &header))
                .map_err(failed)?;
            dirty = false;
            assert!(
                !test_panic,
                "{TEST_PANIC_ENV}=1: a forced panic, to test that the terminal is restored"
            );
        }
        if context.stop.load(Ordering::Relaxed) || run.load(Ordering::Relaxed) == FAILED {
            break;
        }
        if run.load(Ordering::Relaxed) == ENDED && !app.finished {
            next_tick = Instant::now();
        }
        let wait = next_tick
            .saturating_duration_since(Instant::now())
            .min(POLL);
        if event::poll(wait).map_err(failed)? {
            match event::read().map_err(failed)? {
                Event::Key(key) => {
                    if let Some(action) = input::action(key, app.editing.is_some()) {
                        if app.apply(action) == Control::Quit {
                            context.stop.store(true, Ordering::Relaxed);
                            break;
                        }
                        dirty = true;
                    }
                }
                Event::Resize(..) => {
                    screen.terminal.autoresize().map_err(failed)?;
                    dirty = true;
                }
                _ => {}
            }
        }
    }
    drop(screen);
    Ok(())
}

/// What is captured and how, for the header.
fn describe(plan: &Plan) -> String {
    let ports = match &plan.ports {
        Ports::Any => "any port".to_owned(),
        Ports::List(list) if list.len() <= 4 => format!(
            "port{} {}",
            if list.len() == 1 { "" } else { "s" },
            list.iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Ports::List(list) => format!("{} ports", list.len()),
    };
    match &plan.mode {
        Mode::Read(path) => {
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let pace = match plan.pace {
                None => "unpaced".to_owned(),
                Some(s) if (s - 1.0).abs() < f64::EPSILON => "real time".to_owned(),
                Some(s) => format!("{s}x speed"),
            };
            format!(
                "replay {name} ({pace}, {} worker{}, {ports})",
                plan.engine.workers,
                if plan.engine.workers == 1 { "" } else { "s" }
            )
        }
        Mode::Interface(iface) => format!(
            "live {iface} (AF_XDP, queues {}, {ports})",
            plan.live.queues.as_ref().map_or_else(
                || "all".to_owned(),
                |q| q.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            )
        ),
        Mode::Mirror(iface) => format!(
            "live copy of {iface} (--mirror, {} queues, {ports})",
            plan.live.mirror_queues
        ),
    }
}

/// The process's CPU use, from `/proc/self/stat` (user + system time).
#[derive(Debug, Default)]
struct CpuMeter {
    last: Option<(Instant, u64)>,
}

/// Clock ticks per second of `/proc/self/stat`'s times (USER_HZ, 100 on every Linux ABI).
const CLOCK_TICKS: f64 = 100.0;

impl CpuMeter {
    /// Percent of one core since the last call (`None` on the first, or without `/proc`).
    fn sample(&mut self) -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces, in parentheses): utime and
        // stime are the 12th and 13th of them.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let ticks: u64 =
            fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
        let now = Instant::now();
        let last = self.last.replace((now, ticks))?;
        let secs = now.duration_since(last.0).as_secs_f64();
        (secs > 0.0).then(|| (ticks.saturating_sub(last.1) as f64 / CLOCK_TICKS) / secs * 100.0)
    }
}

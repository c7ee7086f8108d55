//! Where the run's results go: the human text (stdout, or stderr under `--json`), the `--json`
//! alert events, the alert log, the live status line and the exit summary. Everything here
//! renders with `linewatch-report`; nothing counts.
//!
//! A failed output never stops the count. Every write to stdout (the human text, or under
//! `--json` the events and alert events) is recorded in [`linewatch_report::sink::STDOUT`], and
//! the end of the run reads it: a closed pipe (`| head`) ends stdout quietly (exit 0), any
//! other failure (`> /dev/full`) is one line on stderr and exit 1. The `--summary` file is
//! written either way; its own failure is exit 1 too. Writes to stderr are not checked: there
//! is nowhere left to say they failed.
//!
//! On a terminal, alert lines are red, recoveries green, and the status line's drops and
//! `ALERT` red; never in a pipe or file, nor under `NO_COLOR` (<https://no-color.org>), nor in
//! the alert log or `--json`. With `--dashboard` the screen shows what the status line and
//! reports would: neither is printed, and notices wait for the screen to be restored.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use linewatch_engine::aggregate::{Output, Snapshot};
use linewatch_engine::alert::AlertTransition;
use linewatch_engine::pipeline::RunResult;
use linewatch_engine::source::SourceEnd;
use linewatch_report::colour::{self, Colour};
use linewatch_report::sink::{WriteOutcome, STDOUT};
use linewatch_report::AlertRecord;

use crate::dashboard::Notices;

/// Erases the status line before other text is written over it.
const CLEAR_LINE: &[u8] = b"\r\x1b[2K";

/// The human-readable stream: stdout, or stderr when stdout carries `--json` events.
#[derive(Clone, Copy)]
pub(crate) struct Human {
    json: bool,
    /// A person is watching: the status line is drawn and cleared.
    pub(crate) is_tty: bool,
    /// Alerts, recoveries and drops in colour (a terminal, and no `NO_COLOR`).
    colour: bool,
    /// `--dashboard`: the screen shows the status line's and the reports' figures.
    dashboard: bool,
}

impl Human {
    /// The stream for this run.
    pub(crate) fn new(json: bool, dashboard: bool) -> Human {
        let is_tty = if json {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        // NO_COLOR: set and not empty turns colour off.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Human {
            json,
            is_tty,
            colour: is_tty && !no_color,
            dashboard,
        }
    }

    fn writer(&self) -> Box<dyn Write + Send> {
        if self.json {
            Box::new(std::io::stderr())
        } else {
            Box::new(std::io::stdout())
        }
    }

    /// Writes `text` to the human stream; a failure of stdout is recorded in [`STDOUT`].
    fn write(&self, out: &mut (impl Write + ?Sized), text: &[u8]) {
        if self.json {
            let _ = out.write_all(text).and_then(|()| out.flush());
        } else {
            STDOUT.write(&mut &mut *out, text);
        }
    }

    /// Redraws the status line once a second from the published snapshot, until `done`; only
    /// on a terminal (output into a pipe gets none).
    pub(crate) fn status_line(
        &self,
        snapshot: &Arc<ArcSwap<Snapshot>>,
        done: &Arc<AtomicBool>,
    ) -> Option<JoinHandle<()>> {
        (self.is_tty && !self.dashboard).then(|| {
            let snapshot = Arc::clone(snapshot);
            let done = Arc::clone(done);
            let mut out = self.writer();
            let human = *self;
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_secs(1));
                    let snap = snapshot.load();
                    if snap.second == 0 {
                        continue;
                    }
                    let status = snap.status_line();
                    let line = if human.colour {
                        colour::status(&status, true)
                    } else {
                        linewatch_report::status::render(&status, true)
                    };
                    human.write(&mut out, line.as_bytes());
                }
            })
        })
    }

    /// Clears the status line (on a terminal) before an error is printed.
    pub(crate) fn clear(&self) {
        if self.is_tty {
            let _ = self.writer().write_all(CLEAR_LINE);
        }
    }
}

/// The aggregator's events, printed: alerts, reports, allowed scans, notices.
pub(crate) struct Printer {
    human: Box<dyn Write + Send>,
    stream: Human,
    json: bool,
    alert_log: Option<File>,
    top_n: usize,
    /// `--dashboard`: notices wait here for the screen to be restored.
    notices: Option<Notices>,
}

impl Printer {
    /// Prints to `human`'s stream; `--json` adds alert events on stdout; `alert_log` gets every
    /// alert line.
    pub(crate) fn new(human: &Human, alert_log: Option<File>, top_n: usize) -> Printer {
        Printer {
            human: human.writer(),
            stream: *human,
            json: human.json,
            alert_log,
            top_n,
            notices: None,
        }
    }

    /// `--dashboard`: the human text is not printed (the screen shows it), and notices go to
    /// `notices`.
    pub(crate) fn with_notices(mut self, notices: Notices) -> Printer {
        self.notices = Some(notices);
        self
    }

    fn human(&mut self, text: &str) {
        if self.stream.dashboard {
            return;
        }
        // A failed output must not stop the count: the failure is recorded for the end of
        // the run, and the summary file, if asked for, is still written.
        self.stream.write(&mut self.human, text.as_bytes());
    }

    /// One alert-type line: to the human stream (in `colour` on a terminal), as a `--json`
    /// event, and to the alert log.
    fn alert_line(
        &mut self,
        line: &str,
        colour: Option<Colour>,
        json_event: impl FnOnce(&mut Vec<u8>),
    ) {
        let text = format!("{line}\n");
        match colour {
            Some(c) if self.stream.colour => self.human(&colour::paint(&text, c)),
            _ => self.human(&text),
        }
        if self.json {
            let mut out = Vec::with_capacity(256);
            json_event(&mut out);
            STDOUT.write(&mut std::io::stdout().lock(), &out);
        }
        if let Some(log) = self.alert_log.as_mut() {
            if writeln!(log, "{line}").and_then(|()| log.flush()).is_err() {
                eprintln!("linewatch: warning: cannot append to the alert log");
            }
        }
    }
}

impl Output for Printer {
    fn alert(&mut self, transition: &AlertTransition, _history: &[AlertRecord]) {
        let (record, recovered) = match transition {
            AlertTransition::Raised(a) => (a, false),
            AlertTransition::Recovered(a) => (a, true),
        };
        let line = if recovered {
            linewatch_report::alert::recovered_line(record).unwrap_or_default()
        } else {
            linewatch_report::alert::raised_line(record)
        };
        let colour = if recovered {
            Colour::Green
        } else {
            Colour::Red
        };
        self.alert_line(&line, Some(colour), |out| {
            linewatch_report::json::alert_event(record, recovered, out);
        });
    }

    fn report(&mut self, report: &linewatch_report::Report) {
        let text = linewatch_report::text::report(report, self.top_n);
        self.human(&text);
        if self.json && !report.interval.top_by.is_empty() {
            let mut out = Vec::with_capacity(1024);
            for t in &report.interval.top_by {
                linewatch_report::json::top_by_event(
                    t,
                    report.at,
                    report.interval.seconds,
                    &mut out,
                );
            }
            STDOUT.write(&mut std::io::stdout().lock(), &out);
        }
    }

    fn allowed_scan(&mut self, source: std::net::IpAddr, ports: u32, window_secs: u64, at: u64) {
        let at = linewatch_engine::worker::time_of(at);
        let line = linewatch_report::alert::allowed_scan_line(source, ports, window_secs, at);
        // Logged, not flagged: plain.
        self.alert_line(&line, None, |out| {
            linewatch_report::json::allowed_scan_event(source, ports, window_secs, at, out);
        });
    }

    fn notice(&mut self, text: &str) {
        if let Some(notices) = &self.notices {
            notices.push(text);
            return;
        }
        eprintln!("linewatch: warning: {text}");
    }
}

/// Prints the exit summary and its warnings, and writes the `--summary` file (opened before
/// the run, so that a path that cannot be written fails first). Exit 1 if that write fails.
pub(crate) fn summarise(
    result: &RunResult,
    human: &Human,
    top_n: usize,
    summary_file: Option<(PathBuf, File)>,
) -> ExitCode {
    let summary = linewatch_engine::summary::summary(result);
    let text = linewatch_report::text::summary(&summary, top_n);
    let mut out = human.writer();
    if human.is_tty {
        let _ = out.write_all(CLEAR_LINE);
    }
    human.write(&mut out, text.as_bytes());
    if result.interrupted {
        eprintln!("linewatch: interrupted: the summary covers the packets read until then");
    }
    if let SourceEnd::Truncated(why) = &result.end {
        eprintln!(
            "linewatch: warning: {} is truncated ({why}); counted everything before the cut",
            result.source
        );
    }
    if let Some(c) = &result.capture {
        let dropped = c.dropped();
        if dropped > 0 {
            eprintln!(
                "linewatch: warning: the kernel dropped {dropped} frame{} before linewatch could \
                 read {} (see the capture block of the summary)",
                if dropped == 1 { "" } else { "s" },
                if dropped == 1 { "it" } else { "them" },
            );
        }
    }
    if let Some((path, mut file)) = summary_file {
        let json = linewatch_report::json::summary(&summary);
        if let Err(e) = file.write_all(json.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("linewatch: cannot write summary {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    stdout_outcome()
}

/// The exit code for what became of stdout: a failed write is the run's one line about it
/// and exit 1; a closed pipe ends quietly.
fn stdout_outcome() -> ExitCode {
    match STDOUT.outcome() {
        WriteOutcome::Written | WriteOutcome::Closed => ExitCode::SUCCESS,
        WriteOutcome::Failed(e) => {
            eprintln!(
                "linewatch: cannot write to stdout: {e} (its output is incomplete; the count \
                 and the --summary file are whole)"
            );
            ExitCode::from(1)
        }
    }
}

//! The operator's pipe: `tcpdump -w - | tee FILE | linewatch --read -`, with tcpdump in the
//! server namespace and linewatch outside it reading its standard input. `tee` keeps the very
//! bytes linewatch read, so the same capture can be replayed from the file afterwards.
//!
//! Every child is killed when the guard drops (a failed assertion leaves nothing running), and
//! every wait has a deadline.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use linewatch_testkit::tools;

use super::lab::{Lab, MONITORED_PORT};
use super::{capture_filter, tcpdump_counters, TcpdumpCounters};

/// tcpdump's kernel buffer, in KiB (as [`super::Tcpdump`]'s: wrk's bursts need it).
const BUFFER_KIB: &str = "65536";
/// How long tcpdump gets to say it is listening.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long tcpdump may take to work through its ring's backlog before it is stopped.
const CATCH_UP: Duration = Duration::from_secs(30);
/// How long each of the three gets to exit once its input has ended (or SIGINT, tcpdump).
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);

/// A child's stderr, collected whole and line by line as it comes.
struct Stderr {
    text: Arc<Mutex<String>>,
    lines: Receiver<String>,
}

impl Stderr {
    fn drain(child: &mut Child) -> Stderr {
        let stream = child.stderr.take().expect("piped stderr");
        let text = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let into = Arc::clone(&text);
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let mut all = into.lock().unwrap_or_else(|e| e.into_inner());
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
        });
        Stderr { text, lines }
    }

    fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The next line for which `wanted` holds, within `timeout`.
    fn wait(&self, wanted: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// Sends `signal` (a name `kill` knows: `USR1`, `INT`) to `child` unless it has exited.
fn signal(child: &mut Child, signal: &str) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status();
}

/// Waits up to `timeout` for `child` to exit.
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `tcpdump -i IFACE -w - | tee FILE | linewatch --read - --port 8080 --summary S ARGS…`.
pub struct PipedCapture {
    tcpdump: Child,
    tcpdump_err: Stderr,
    tee: Child,
    linewatch: Child,
    linewatch_err: Stderr,
    /// What tee wrote: the bytes linewatch read.
    pub file: PathBuf,
    summary: PathBuf,
}

/// What the pipe left once it ended.
pub struct PipeResult {
    /// Frames tcpdump wrote (none dropped, none left unread: checked).
    pub frames: u64,
    /// linewatch's `--summary`.
    pub summary: serde_json::Value,
    /// linewatch's stderr.
    pub stderr: String,
}

impl PipedCapture {
    /// Starts the three, tcpdump listening on `iface` in the server namespace before this
    /// returns.
    ///
    /// # Panics
    /// When one cannot start, or tcpdump does not say it is listening.
    pub fn start(lab: &Lab, iface: &str, file: &Path, summary: &Path, args: &[&str]) -> Self {
        // As `super::Tcpdump`: nice -10 so it keeps up on two busy cores, -Z root for the
        // scratch directory. No -U: at exit tcpdump flushes what it holds, and the pipe ends.
        let mut cmd = lab.server().exec(tools::path_of("nice"));
        cmd.args(["-n", "-10"]).arg(tools::path_of("tcpdump"));
        cmd.args([
            "-i", iface, "-s", "0", "-Z", "root", "-B", BUFFER_KIB, "-w", "-",
        ])
        .arg(capture_filter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut tcpdump = cmd.spawn().expect("starting tcpdump");
        let tcpdump_err = Stderr::drain(&mut tcpdump);
        let into_tee = tcpdump.stdout.take().expect("piped stdout");
        let tee = Command::new(tools::path_of("tee"))
            .arg(file)
            .stdin(Stdio::from(into_tee))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut guard = PartialPipe(vec![tcpdump]);
        let mut tee = tee.expect("starting tee");
        let into_linewatch = tee.stdout.take().expect("piped stdout");
        guard.0.push(tee);
        let port = MONITORED_PORT.to_string();
        let mut linewatch = Command::new(env!("CARGO_BIN_EXE_linewatch"))
            .args(["--read", "-", "--port", &port, "--summary"])
            .arg(summary)
            .args(args)
            .stdin(Stdio::from(into_linewatch))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting linewatch");
        let linewatch_err = Stderr::drain(&mut linewatch);
        let mut children = std::mem::take(&mut guard.0).into_iter();
        let (tcpdump, tee) = (children.next().unwrap(), children.next().unwrap());
        let pipe = PipedCapture {
            tcpdump,
            tcpdump_err,
            tee,
            linewatch,
            linewatch_err,
            file: file.to_path_buf(),
            summary: summary.to_path_buf(),
        };
        if pipe
            .tcpdump_err
            .wait(|l| l.contains("listening on"), LISTEN_TIMEOUT)
            .is_none()
        {
            panic!(
                "tcpdump never said it was listening:\n{}",
                pipe.tcpdump_err.text()
            );
        }
        pipe
    }

    /// Lets tcpdump read everything the kernel handed it, stops it (SIGINT: it flushes and
    /// closes the pipe), and waits for tee and linewatch to end on their own at the end of
    /// their input.
    ///
    /// # Panics
    /// When tcpdump lost packets either way, or any of the three fails or hangs.
    pub fn stop(mut self) -> PipeResult {
        let deadline = Instant::now() + CATCH_UP;
        loop {
            signal(&mut self.tcpdump, "USR1");
            let line = self
                .tcpdump_err
                .wait(|l| tcpdump_counters(l).is_some(), Duration::from_secs(5))
                .unwrap_or_else(|| {
                    panic!("tcpdump gave no counters:\n{}", self.tcpdump_err.text())
                });
            let c = tcpdump_counters(&line).expect("checked by the wait");
            if c.captured >= c.received_by_filter || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        signal(&mut self.tcpdump, "INT");
        let tcpdump = wait_timeout(&mut self.tcpdump, EXIT_TIMEOUT);
        // Give the drain thread the closing lines.
        std::thread::sleep(Duration::from_millis(200));
        let tcpdump_text = self.tcpdump_err.text();
        assert!(
            tcpdump.is_some_and(|s| s.success()),
            "tcpdump: {tcpdump:?}; stderr:\n{tcpdump_text}"
        );
        let tee = wait_timeout(&mut self.tee, EXIT_TIMEOUT);
        assert!(tee.is_some_and(|s| s.success()), "tee: {tee:?}");
        let linewatch = wait_timeout(&mut self.linewatch, EXIT_TIMEOUT);
        std::thread::sleep(Duration::from_millis(200));
        let stderr = self.linewatch_err.text();
        assert!(
            linewatch.is_some_and(|s| s.success()),
            "linewatch --read - did not end by itself at the end of the pipe: {linewatch:?}; \
             stderr:\n{stderr}"
        );
        let counters: TcpdumpCounters = tcpdump_counters(&tcpdump_text)
            .unwrap_or_else(|| panic!("tcpdump printed no counters:\n{tcpdump_text}"));
        assert_eq!(
            counters.dropped_by_kernel, 0,
            "tcpdump dropped packets (the pipe did not keep up?):\n{tcpdump_text}"
        );
        assert_eq!(
            counters.captured, counters.received_by_filter,
            "tcpdump left packets unread in its ring:\n{tcpdump_text}"
        );
        let text = std::fs::read_to_string(&self.summary)
            .unwrap_or_else(|e| panic!("no summary from linewatch --read - ({e}):\n{stderr}"));
        PipeResult {
            frames: counters.captured,
            summary: serde_json::from_str(&text).expect("the summary is JSON"),
            stderr,
        }
    }
}

impl Drop for PipedCapture {
    fn drop(&mut self) {
        for child in [&mut self.tcpdump, &mut self.tee, &mut self.linewatch] {
            if !matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The children started so far, killed if starting the next one panics.
struct PartialPipe(Vec<Child>);

impl Drop for PartialPipe {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

//! Child processes for the live tests: every one is killed when its guard drops (a failed
//! assertion never leaves nginx, tcpdump or linewatch running), every wait has a deadline, and
//! stdout/stderr are drained by threads so a chatty child never blocks on a full pipe.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a child gets to exit after SIGKILL before the guard gives up on it.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// A running child with its output collected as it comes.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// Each stderr line as it arrives; disconnected when the child closes stderr.
    stderr_lines: Receiver<String>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// What a finished child left: its exit status and everything it wrote.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn drain(
    stream: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
    lines: Option<mpsc::Sender<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    into.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_str(&text);
                    if let Some(tx) = &lines {
                        let _ = tx.send(text.trim_end_matches(['\n', '\r']).to_string());
                    }
                }
            }
        }
    })
}

impl Proc {
    /// Starts `cmd` with stdin closed and stdout/stderr piped. `name` is what errors call it.
    ///
    /// # Panics
    /// When the program cannot be started.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot start {cmd:?}: {e}"));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, stderr_lines) = mpsc::channel();
        let readers = vec![
            drain(
                child.stdout.take().expect("piped stdout"),
                Arc::clone(&stdout),
                None,
            ),
            drain(
                child.stderr.take().expect("piped stderr"),
                Arc::clone(&stderr),
                Some(tx),
            ),
        ];
        Proc {
            name: name.to_string(),
            child,
            stdout,
            stderr,
            stderr_lines,
            readers,
            status: None,
        }
    }

    /// The child's process id (for `ip netns exec`, the program's own: it execs, no fork).
    pub fn pid(&self) -> libc::pid_t {
        libc::pid_t::try_from(self.child.id()).expect("pids fit pid_t")
    }

    /// Everything the child wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits for a stderr line that starts with `prefix` and returns it.
    ///
    /// # Errors
    /// When the child closes stderr (exits) first, or `timeout` passes: the message says
    /// which, with the child's exit status and stderr.
    pub fn wait_stderr_line(&mut self, prefix: &str, timeout: Duration) -> Result<String, String> {
        self.wait_stderr(
            &format!("starting with {prefix:?}"),
            |l| l.starts_with(prefix),
            timeout,
        )
    }

    /// Waits for a stderr line for which `wanted` holds (`what` names it in errors).
    ///
    /// # Errors
    /// As [`Proc::wait_stderr_line`].
    pub fn wait_stderr(
        &mut self,
        what: &str,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr_lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "{}: no stderr line {what} within {timeout:?}; stderr so far:\n{}",
                        self.name,
                        self.stderr_text()
                    ))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_timeout(Duration::from_secs(2));
                    return Err(format!(
                        "{}: exited ({}) before writing a line {what}; stderr:\n{}",
                        self.name,
                        status.map_or_else(|| "still running".into(), |s| s.to_string()),
                        self.stderr_text()
                    ));
                }
            }
        }
    }

    /// Sends `signal` (libc::SIGINT, ...) to the child, unless it has already been reaped.
    pub fn signal(&mut self, signal: libc::c_int) {
        if self.try_status().is_some() {
            return;
        }
        // SAFETY: kill(2) with a pid we spawned and have not reaped (checked just above), so
        // the pid cannot have been reused by another process; no memory is involved.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert!(
            rc == 0 || self.try_status().is_some(),
            "{}: kill({}, {signal}): {}",
            self.name,
            self.pid(),
            std::io::Error::last_os_error()
        );
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits up to `timeout` for the child to exit by itself, then collects its output.
    ///
    /// # Panics
    /// When it is still running at the deadline (it is killed first; the message holds its
    /// stderr).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let Some(status) = self.wait_timeout(timeout) else {
            self.kill();
            panic!(
                "{}: still running after {timeout:?} (killed); stderr:\n{}",
                self.name,
                self.stderr_text()
            );
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            stdout: self
                .stdout
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            stderr: self.stderr_text(),
        }
    }

    /// Sends `signal`, then [`Proc::finish`]es within `timeout`.
    pub fn stop(mut self, signal: libc::c_int, timeout: Duration) -> Finished {
        self.signal(signal);
        self.finish(timeout)
    }

    /// SIGKILL and reap (no-op when already reaped).
    pub fn kill(&mut self) {
        if self.try_status().is_none() {
            let _ = self.child.kill();
            self.status = self.wait_timeout(KILL_GRACE);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` to completion within `timeout` and returns what it left.
///
/// # Panics
/// When it cannot start or outlives the timeout.
pub fn run(name: &str, cmd: Command, timeout: Duration) -> Finished {
    Proc::spawn(name, cmd).finish(timeout)
}

/// Like [`run`], and the command must exit 0.
///
/// # Panics
/// As [`run`], and on a non-zero exit (with its stderr).
pub fn run_ok(name: &str, cmd: Command, timeout: Duration) -> Finished {
    let done = run(name, cmd, timeout);
    assert!(
        done.status.success(),
        "{name}: {}; stderr:\n{}",
        done.status,
        done.stderr
    );
    done
}

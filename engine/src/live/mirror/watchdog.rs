//! The watchdog: a process that undoes a run's mirror when the run dies without doing it,
//! SIGKILL included.
//!
//! # Contract
//!
//! - It is the same executable, re-run as `<exe> --internal-mirror-watchdog <state file>`
//!   ([`WATCHDOG_ARG`]); the program's `main` must hand the arguments after it to
//!   [`watchdog_main`] before anything else.
//! - It lives in a session of its own (a Ctrl-C to the terminal does not reach it), ignores
//!   SIGINT and SIGHUP, and blocks reading its stdin: a pipe whose only write end the run holds
//!   (close-on-exec, so no other child inherits it).
//! - When the run dies, however it dies, the pipe reports end-of-file and the watchdog undoes
//!   what the state file lists, deletes the file and exits; SIGTERM does the same at once.
//! - A run that tears down itself deletes the state file first and then closes the pipe
//!   ([`Watchdog::stop`]): the watchdog finds nothing left and exits 0.
//! - It guards `--interface`'s RSS change the same way: given an RSS state file
//!   (`/run/linewatch/rss-<pid>.state`, started by `live::rss`), it hands it to
//!   [`rss::restore_state_file`] instead of undoing a mirror.
//!
//! ```text
//!  run ──spawn──► watchdog (setsid, SIGINT/SIGHUP ignored)
//!   │ holds the pipe's write end         │ poll(stdin, signalfd(SIGTERM))
//!   ▼ dies / closes it ─────── EOF ─────►│ lock, read the state file, undo, delete it
//! ```

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::command::Tools;
use super::error::MirrorError;
use super::state::{is_state_file, Lock, State};
use super::teardown::undo;
use crate::live::rss;

/// First argument that makes the linewatch executable run as a mirror watchdog: its `main`
/// calls [`watchdog_main`] with the arguments after it.
pub const WATCHDOG_ARG: &str = "--internal-mirror-watchdog";

/// How long a tear-down waits for its watchdog to exit after closing the pipe.
const WATCHDOG_EXIT_WAIT: Duration = Duration::from_secs(2);

/// How often a tear-down looks whether the watchdog has exited.
const WATCHDOG_EXIT_POLL: Duration = Duration::from_millis(5);

/// Exit code of a watchdog started without a state file's path.
const USAGE_EXIT: u8 = 2;

/// A running watchdog and the write end of its stdin pipe.
#[derive(Debug)]
pub(super) struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts this executable as the watchdog of the state file at `state_path`.
    pub(super) fn spawn(state_path: &Path) -> Result<Watchdog, MirrorError> {
        let exe = std::env::current_exe().map_err(|e| {
            MirrorError::new(format!(
                "cannot find linewatch's own executable to start the mirror watchdog: {e}"
            ))
        })?;
        let mut cmd = Command::new(&exe);
        cmd.arg(WATCHDOG_ARG)
            .arg(state_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/");
        // SAFETY: the closure runs in the forked child before exec and only calls
        // `detach_from_terminal`, which makes async-signal-safe system calls and touches no
        // shared memory.
        unsafe {
            cmd.pre_exec(|| {
                // Before exec, so a Ctrl-C meant for linewatch never reaches the watchdog,
                // even in its first instant.
                detach_from_terminal();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            MirrorError::new(format!(
                "cannot start the mirror watchdog ({} {WATCHDOG_ARG}): {e}",
                exe.display()
            ))
        })?;
        let pipe = child.stdin.take();
        if let Some(p) = &pipe {
            set_cloexec(p.as_raw_fd());
        }
        Ok(Watchdog { child, pipe })
    }

    /// The watchdog's process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Closes the pipe (the watchdog then finds nothing left and exits) and reaps the
    /// watchdog, killing it if it does not exit in time.
    pub(super) fn stop(mut self) {
        drop(self.pipe.take());
        let deadline = Instant::now() + WATCHDOG_EXIT_WAIT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(WATCHDOG_EXIT_POLL),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Entry point of the watchdog process: `args` are the arguments after [`WATCHDOG_ARG`] (the
/// state file's path). Waits for the run to close the pipe on stdin (or die) or for SIGTERM,
/// then undoes what the state file still lists. Exit code 0 when nothing is left behind.
pub fn watchdog_main(args: &[String]) -> ExitCode {
    let Some(path) = args.first().map(PathBuf::from) else {
        return ExitCode::from(USAGE_EXIT);
    };
    let rss = rss::is_state_file(&path);
    if !is_state_file(&path) && !rss {
        return ExitCode::from(USAGE_EXIT);
    }
    detach_from_terminal();
    // SAFETY: a plain system call with constant arguments; no memory is shared with it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    wait_for_eof_or_sigterm();
    if rss {
        // `--interface`'s changed RSS setting: the file and its lock are rss.rs's.
        return if rss::restore_state_file(&path) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let lock = Lock::acquire().ok();
    let Ok(text) = fs::read_to_string(&path) else {
        return ExitCode::SUCCESS; // the run removed everything itself
    };
    let Some(state) = State::parse(&text) else {
        return ExitCode::FAILURE;
    };
    let Ok(tools) = Tools::find() else {
        return ExitCode::FAILURE;
    };
    let ok = undo(&tools, &state).is_ok();
    if ok {
        let _ = fs::remove_file(&path);
    }
    drop(lock);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Leaves the terminal's session and process group and ignores the signals a terminal sends
/// (Ctrl-C's SIGINT, SIGHUP when it closes). Only async-signal-safe calls, so it may run
/// between fork and exec.
fn detach_from_terminal() {
    // SAFETY: plain system calls with constant arguments; no memory is shared with them.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
}

/// Marks `fd` close-on-exec (std already opens pipes so; this keeps it true by construction).
fn set_cloexec(fd: i32) {
    // SAFETY: fcntl on a descriptor the caller owns; F_GETFD/F_SETFD touch no memory.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
        }
    }
}

/// Blocks until stdin reports end-of-file (or an error) or SIGTERM arrives. SIGTERM is
/// blocked and read from a signalfd, so it cannot slip in between a check and a blocking read.
fn wait_for_eof_or_sigterm() {
    // SAFETY: sigset_t is plain data that sigemptyset initialises; the calls get valid pointers
    // to it and no other memory.
    let sigfd = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == 0 {
            libc::signalfd(-1, &set, libc::SFD_CLOEXEC)
        } else {
            -1
        }
    };
    let mut fds = [
        libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: sigfd, // poll ignores a negative descriptor
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // Whatever the run writes is read and dropped: only the end of the pipe matters.
    let mut buf = [0u8; 256];
    loop {
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds[1].revents != 0 {
            return; // SIGTERM
        }
        let ev = fds[0].revents;
        if ev & libc::POLLNVAL != 0 {
            return;
        }
        if ev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            // SAFETY: reads at most buf.len() bytes into `buf`, which outlives the call.
            let r = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
            if r == 0 {
                return;
            }
            if r < 0 {
                let kind = io::Error::last_os_error().kind();
                if kind != io::ErrorKind::Interrupted && kind != io::ErrorKind::WouldBlock {
                    return;
                }
            }
        }
    }
}

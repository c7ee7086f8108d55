//! What a run changed, kept where a crash cannot lose it: the state file under
//! `/run/linewatch` (written before each change), the guard process that restores it after
//! kill -9, and the next run's sweep of leftovers.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::super::mirror::{STATE_DIR, WATCHDOG_ARG};
use super::super::statefile;
use super::super::sys::errno_text;
use super::config::*;
use super::ethtool::*;
use super::uapi::*;

/// How long a stop waits for the guard to exit after closing its pipe.
pub(super) const GUARD_EXIT_WAIT: Duration = Duration::from_secs(2);
/// How often it looks.
pub(super) const GUARD_EXIT_POLL: Duration = Duration::from_millis(5);

/// Fields between the state (field 3 of `/proc/<pid>/stat`) and the start time (field 22).
pub(super) const STAT_FIELDS_TO_START_TIME: usize = 18;

/// What one run changed (the previous values), as its state file records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Saved {
    pub(super) pid: u32,
    pub(super) start_time: u64,
    pub(super) guard_pid: u32,
    pub(super) guard_start_time: u64,
    /// `readlink /proc/self/ns/net` of the run.
    pub(super) netns: String,
    pub(super) interface: String,
    /// The input transformation before this run set it.
    pub(super) input_xfrm: Option<u8>,
    /// The key before this run set it.
    pub(super) key: Option<Vec<u8>>,
    /// The fields of each flow type (index in [`FLOWS`]) before this run set them.
    pub(super) fields: Vec<(usize, u64)>,
}

impl Saved {
    pub(super) fn render(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|&(i, f)| format!("{}:{f:#x}", FLOWS[i].1))
            .collect();
        format!(
            "# linewatch --interface: the RSS setting this run changed, as it was before \
             (restored on exit, by its guard, or by the next run)\nversion=1\npid={}\n\
             start_time={}\nguard_pid={}\nguard_start_time={}\nnetns={}\ninterface={}\n\
             input_xfrm={}\nkey={}\nfields={}\n",
            self.pid,
            self.start_time,
            self.guard_pid,
            self.guard_start_time,
            self.netns,
            self.interface,
            self.input_xfrm.map_or("-".to_owned(), |x| x.to_string()),
            self.key.as_deref().map_or("-".to_owned(), hex),
            fields.join(" ")
        )
    }

    pub(super) fn parse(text: &str) -> Option<Saved> {
        let get = |key: &str| statefile::field(text, key);
        if get("version")? != "1" {
            return None;
        }
        let mut fields = Vec::new();
        for f in get("fields")?.split_whitespace() {
            let (flow, value) = f.split_once(':')?;
            let i = FLOWS.iter().position(|&(_, name)| name == flow)?;
            fields.push((i, u64::from_str_radix(value.strip_prefix("0x")?, 16).ok()?));
        }
        let interface = get("interface")?.to_owned();
        let name_ok = !interface.is_empty()
            && interface.len() < libc::IFNAMSIZ
            && !interface.contains(['/', ' ']);
        let saved = Saved {
            pid: get("pid")?.parse().ok()?,
            start_time: get("start_time")?.parse().ok()?,
            guard_pid: get("guard_pid")?.parse().ok()?,
            guard_start_time: get("guard_start_time")?.parse().ok()?,
            netns: get("netns")?.to_owned(),
            interface,
            input_xfrm: match get("input_xfrm")? {
                "-" => None,
                x => Some(x.parse().ok()?),
            },
            key: match get("key")? {
                "-" => None,
                k => Some(unhex(k)?),
            },
            fields,
        };
        name_ok.then_some(saved)
    }

    /// Puts back what the file lists: the transformation or key first (a symmetric
    /// transformation holds the fields to pairs), then the fields. An interface that is gone
    /// took the setting with it. Returns what was restored, or the errors.
    pub(super) fn restore(&self, nic: &dyn Nic) -> Result<String, String> {
        let iface = self.interface.as_str();
        let mut done = Vec::new();
        let mut errors = Vec::new();
        let mut step = |what: String, r: Result<(), i32>| match r {
            Ok(()) => done.push(what),
            Err(libc::ENODEV) => {}
            Err(e) => errors.push(format!("{what}: {}", errno_text(e))),
        };
        if let Some(key) = &self.key {
            step(
                format!("key {}…", hex(&key[..key.len().min(4)])),
                nic.set_rxfh(iface, 0, key),
            );
        }
        if let Some(x) = self.input_xfrm {
            step(
                format!("xfrm {}", xfrm_name(x)),
                nic.set_rxfh(iface, x, &[]),
            );
        }
        for &(i, f) in self.fields.iter().rev() {
            let (flow, name) = FLOWS[i];
            step(
                format!("{name} fields {f:#x}"),
                nic.set_fields(iface, flow, f),
            );
        }
        if errors.is_empty() {
            Ok(done.join(", "))
        } else {
            Err(errors.join("; "))
        }
    }
}

pub(super) fn state_path(pid: u32) -> PathBuf {
    Path::new(STATE_DIR).join(format!("rss-{pid}.state"))
}

/// True for `/run/linewatch/rss-<digits>.state`: the state files this module writes, which
/// the mirror watchdog hands to [`restore_state_file`].
pub fn is_state_file(path: &Path) -> bool {
    statefile::is_pid_file(path, STATE_DIR, "rss-")
}

/// The exclusive lock the mirror's steps take too; creates the state directory (root's).
pub(super) fn lock() -> io::Result<fs::File> {
    statefile::ensure_dir(STATE_DIR)?;
    statefile::lock(STATE_DIR)
}

/// Start time of process `pid` (field 22 of /proc/pid/stat), None when it is gone or a zombie.
pub(super) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    if matches!(fields.next()?, "Z" | "X") {
        return None;
    }
    fields.nth(STAT_FIELDS_TO_START_TIME)?.parse().ok()
}

pub(super) fn own_netns() -> String {
    fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Entry point of the guard (the mirror watchdog given an RSS state file, once its run has
/// gone or closed the pipe): restores what the file lists and deletes it. True when nothing is
/// left to restore.
pub fn restore_state_file(path: &Path) -> bool {
    let _lock = lock().ok();
    let Ok(text) = fs::read_to_string(path) else {
        return true; // the run restored everything itself
    };
    let Some(saved) = Saved::parse(&text) else {
        return false;
    };
    let ok = saved.restore(&Ethtool).is_ok();
    if ok {
        let _ = fs::remove_file(path);
    }
    ok
}

/// Restores what runs that are gone left in this network namespace (their guard killed too),
/// under the lock; one line per file.
pub(super) fn restore_leftovers(netns: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(dir) = fs::read_dir(STATE_DIR) else {
        return lines;
    };
    for path in dir.flatten().map(|e| e.path()).filter(|p| is_state_file(p)) {
        let Some(saved) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| Saved::parse(&t))
        else {
            if fs::remove_file(&path).is_ok() {
                lines.push(format!(
                    "removed unreadable RSS state file {}",
                    path.display()
                ));
            }
            continue;
        };
        if start_time(saved.pid) == Some(saved.start_time) || saved.netns != netns {
            continue; // still running, or another namespace's interface
        }
        match saved.restore(&Ethtool) {
            Ok(what) => {
                let _ = fs::remove_file(&path);
                lines.push(format!(
                    "RSS on {}: restored what linewatch pid {} changed before it was killed ({})",
                    saved.interface,
                    saved.pid,
                    if what.is_empty() {
                        "nothing was left"
                    } else {
                        &what
                    }
                ));
            }
            Err(e) => lines.push(format!(
                "RSS on {}: could not restore what linewatch pid {} changed: {e} (set it back \
                 with ethtool -X/-N, then delete {})",
                saved.interface,
                saved.pid,
                path.display()
            )),
        }
    }
    lines
}

// ---- the guard process ----

/// The mirror watchdog run as this setup's guard, and the write end of its stdin pipe.
#[derive(Debug)]
pub(super) struct Guard {
    pub(super) child: Child,
    pub(super) pipe: Option<ChildStdin>,
}

impl Guard {
    /// Starts this executable as the guard of `path`, in a process group of its own so that a
    /// Ctrl-C to the terminal never reaches it, not even before the watchdog ignores SIGINT
    /// and SIGHUP itself (it stays in the session: a group leader cannot setsid, and needs not).
    pub(super) fn spawn(path: &Path) -> io::Result<Guard> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg(WATCHDOG_ARG)
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/")
            .process_group(0)
            .spawn()?;
        // std opens the pipe close-on-exec: no other child inherits the write end.
        let pipe = child.stdin.take();
        Ok(Guard { child, pipe })
    }

    /// Closes the pipe (the guard finds the state file gone and exits) and reaps it.
    pub(super) fn stop(mut self) {
        drop(self.pipe.take());
        let deadline = Instant::now() + GUARD_EXIT_WAIT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(GUARD_EXIT_POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

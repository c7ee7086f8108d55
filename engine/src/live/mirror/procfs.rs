//! What `/proc` says about processes and network namespaces: whether a run (or its watchdog)
//! is still alive, which namespace this process is in, whether a namespace still exists, and
//! whether this process may change the network.
//!
//! A pid alone does not name a process, since pids are reused: a process is its pid *and* its
//! start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot), which a process that
//! later gets the same pid does not share. A zombie counts as gone: it has exited, only its
//! parent has not reaped it yet.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::live::sys;

/// Fields between the state (field 3 of `/proc/<pid>/stat`) and the start time (field 22).
const FIELDS_FROM_STATE_TO_START_TIME: usize = 18;

/// The fields of `/proc/<pid>/stat` after the command name, state first. The name is cut at
/// the *last* `)`, since the name itself may hold spaces and parentheses.
fn stat_after_name(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(stat[stat.rfind(')')? + 1..].to_owned())
}

/// True for the states of a process that has exited: zombie and dead.
fn has_exited(state: &str) -> bool {
    matches!(state, "Z" | "X")
}

/// Start time of process `pid`, None when it does not exist or has exited.
pub(super) fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = stat_after_name(pid)?;
    let mut fields = stat.split_whitespace();
    if has_exited(fields.next()?) {
        return None;
    }
    fields.nth(FIELDS_FROM_STATE_TO_START_TIME)?.parse().ok()
}

/// True when the process `pid` that started at `start_time` is still running.
pub(super) fn is_alive(pid: u32, start_time: u64) -> bool {
    pid != 0 && proc_start_time(pid) == Some(start_time)
}

/// True when `pid` is a process that has exited but is not reaped yet.
pub(super) fn is_zombie(pid: u32) -> bool {
    stat_after_name(pid).is_some_and(|s| s.split_whitespace().next().is_some_and(has_exited))
}

/// This process's network namespace, e.g. `net:[4026531840]`.
pub(super) fn own_netns() -> String {
    fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// True when a process or a /run/netns mount still holds the namespace `id`.
pub(super) fn netns_exists(id: &str) -> bool {
    if let Ok(procs) = fs::read_dir("/proc") {
        for entry in procs.flatten() {
            let name = entry.file_name();
            let is_pid = name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if is_pid
                && fs::read_link(entry.path().join("ns/net"))
                    .is_ok_and(|l| l.as_os_str() == std::ffi::OsStr::new(id))
            {
                return true;
            }
        }
    }
    let inode = id
        .strip_prefix("net:[")
        .and_then(|s| s.strip_suffix(']'))
        .and_then(|s| s.parse::<u64>().ok());
    if let (Some(inode), Ok(mounts)) = (inode, fs::read_dir("/run/netns")) {
        for entry in mounts.flatten() {
            if fs::metadata(entry.path()).is_ok_and(|m| m.ino() == inode) {
                return true;
            }
        }
    }
    false
}

/// True when this process has CAP_NET_ADMIN in its effective set (or when that cannot be
/// read: then the commands themselves will say).
pub(super) fn has_net_admin() -> bool {
    sys::has_cap(sys::CAP_NET_ADMIN) != Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id();
        let start = proc_start_time(pid);
        assert!(start.is_some());
        assert!(is_alive(pid, start.unwrap_or(0)));
        assert!(!is_alive(pid, start.unwrap_or(0) + 1));
        assert!(!is_alive(0, 0));
        assert!(!is_zombie(pid));
        assert!(netns_exists(&own_netns()));
    }
}

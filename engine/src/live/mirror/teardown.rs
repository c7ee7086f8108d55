//! Removing what a run set up: [`undo`] for one state file, [`clean_leftovers`] for every run
//! that died without removing its own.
//!
//! # Contract
//!
//! - [`undo`] is the one tear-down. A run's own tear-down, its watchdog and the next run's
//!   [`clean_leftovers`] all call it, under the state lock, so it is idempotent: what is
//!   already gone is fine, and running it twice (say the watchdog after the run) removes
//!   nothing twice.
//! - It removes only what is linewatch's: a filter only when every action at its preference
//!   mirrors into this run's veth (or into a device that no longer exists) and every BPF filter
//!   there is the steering program loaded for this run's veth, the clsact qdisc
//!   only when a linewatch run created it and no filter at all is left on it.
//! - [`clean_leftovers`] undoes a state file only when its run is gone (pid *and* start time),
//!   and only in the network namespace the run was in; a file whose namespace is gone is just
//!   deleted, since the devices went with the namespace.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use super::command::{Failure, Tools};
use super::error::{one_line, MirrorError};
use super::procfs::{is_alive, is_zombie, netns_exists, own_netns};
use super::state::{lw_name_pid, read_states, Lock, State, STATE_DIR};
use super::steer::object_path;
use super::tc::{clsact_kind, filters_are_ours, link_names, Direction, QdiscKind};

/// How long [`clean_leftovers`] waits for watchdogs of dead runs that are still cleaning up.
const DYING_WATCHDOG_WAIT: Duration = Duration::from_secs(3);

/// How often [`clean_leftovers`] looks again whether those watchdogs are done.
const DYING_WATCHDOG_POLL: Duration = Duration::from_millis(20);

/// Undoes `state` (idempotent) and returns what it removed; errors are joined into one.
pub(super) fn undo(tools: &Tools, state: &State) -> Result<Vec<String>, MirrorError> {
    let (iface, mirror) = (state.interface.as_str(), state.mirror.as_str());
    let mut done = Vec::new();
    let mut errors = Vec::new();
    let iface_exists = match tools.ip(&["link", "show", "dev", iface]) {
        Ok(_) => true,
        Err(f) if f.no_device() => false, // its qdisc and filters went with it
        Err(f) => {
            errors.push(f.describe());
            true
        }
    };
    if iface_exists {
        for &(dir, pref) in &state.filters {
            let pref_s = pref.to_string();
            let at = |verb| ["filter", verb, "dev", iface, dir.keyword(), "pref", &pref_s];
            match tools.tc(&at("show")) {
                Ok(out) if filters_are_ours(&out, mirror) => match tools.tc(&at("del")) {
                    Ok(_) => done.push(format!(
                        "removed the tc {} filter (pref {pref}) mirroring {iface} into {mirror}",
                        dir.keyword()
                    )),
                    Err(f) if f.gone() => {}
                    Err(f) => errors.push(f.describe()),
                },
                Ok(_) => {} // nothing there, or someone else's: leave it
                Err(f) if f.gone() => {}
                Err(f) => errors.push(f.describe()),
            }
        }
    }
    // Left behind only by a run killed while adding its filters.
    match fs::remove_file(object_path(mirror)) {
        Ok(()) => done.push(format!("removed {}", object_path(mirror).display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!(
            "cannot remove {}: {e}",
            object_path(mirror).display()
        )),
    }
    match tools.ip(&["link", "del", "dev", mirror]) {
        Ok(_) => done.push(format!("removed the veth pair {mirror}/{}", state.capture)),
        Err(f) if f.no_device() => match tools.ip(&["link", "del", "dev", &state.capture]) {
            Ok(_) => done.push(format!("removed the veth {}", state.capture)),
            Err(f) if f.no_device() => {}
            Err(f) => errors.push(f.describe()),
        },
        Err(f) => errors.push(f.describe()),
    }
    if iface_exists && state.clsact.is_linewatch() {
        match clsact_is_empty(tools, iface) {
            Ok(true) => match tools.tc(&["qdisc", "del", "dev", iface, "clsact"]) {
                Ok(_) => done.push(format!("removed the clsact qdisc from {iface}")),
                Err(f) if f.gone() => {}
                Err(f) => errors.push(f.describe()),
            },
            Ok(false) => {} // absent, or other filters still use it
            Err(f) => errors.push(f.describe()),
        }
    }
    if errors.is_empty() {
        Ok(done)
    } else {
        Err(MirrorError::new(format!(
            "could not remove all of linewatch's mirror of {iface}: {} (retry as root, or \
             remove them with ip link del / tc filter del)",
            errors.join("; ")
        )))
    }
}

/// True when IFACE has a clsact qdisc with no filter left in either direction.
fn clsact_is_empty(tools: &Tools, iface: &str) -> Result<bool, Failure> {
    let qdiscs = tools.tc(&["qdisc", "show", "dev", iface])?;
    if clsact_kind(&qdiscs) != Some(QdiscKind::Clsact) {
        return Ok(false);
    }
    for dir in Direction::BOTH {
        if !tools
            .tc(&["filter", "show", "dev", iface, dir.keyword()])?
            .trim()
            .is_empty()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes what killed runs left behind (see the module doc): returns one human-readable line
/// per thing removed (or that could not be removed). Also deletes `lwm<pid>`/`lwc<pid>` veths
/// whose process is gone, state file or not.
pub fn clean_leftovers() -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(tools) = Tools::find() else {
        return lines; // without ip/tc there is nothing linewatch could have set up
    };
    let netns = own_netns();
    let have_dir = Path::new(STATE_DIR).is_dir();
    if have_dir {
        wait_for_dying_watchdogs();
    }
    let _lock = if have_dir { Lock::acquire().ok() } else { None };
    for (path, state) in read_states() {
        let name = path.display();
        match state {
            None => {
                if fs::remove_file(&path).is_ok() {
                    lines.push(format!("removed unreadable mirror state file {name}"));
                }
            }
            Some(s) if is_alive(s.pid, s.start_time) => {}
            Some(s) if s.netns != netns => {
                if !netns_exists(&s.netns) && fs::remove_file(&path).is_ok() {
                    lines.push(format!(
                        "removed {name}: the network namespace of linewatch pid {} is gone, \
                         and its devices with it",
                        s.pid
                    ));
                }
            }
            Some(s) => match undo(&tools, &s) {
                Ok(done) => {
                    let _ = fs::remove_file(&path);
                    let what = if done.is_empty() {
                        "nothing was left".to_owned()
                    } else {
                        done.join(", ")
                    };
                    lines.push(format!(
                        "cleaned up after linewatch pid {} (mirror of {}): {what}",
                        s.pid, s.interface
                    ));
                }
                Err(e) => lines.push(format!(
                    "could not clean up after linewatch pid {} (mirror of {}): {e}",
                    s.pid, s.interface
                )),
            },
        }
    }
    if let Ok(out) = tools.ip(&["-o", "link", "show", "type", "veth"]) {
        for name in link_names(&out) {
            let Some(pid) = lw_name_pid(&name) else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
                continue;
            }
            match tools.ip(&["link", "del", "dev", &name]) {
                Ok(_) => lines.push(format!(
                    "removed leftover veth {name} (linewatch pid {pid} is gone)"
                )),
                Err(f) if f.no_device() => {} // its peer's deletion took it along
                Err(f) => lines.push(one_line(&format!(
                    "could not remove leftover veth {name}: {}",
                    f.detail
                ))),
            }
        }
    }
    lines
}

/// Waits (a few seconds at most) while a dead run's watchdog is still alive, i.e. cleaning up,
/// so that the cleaner does not report as a leftover what the watchdog is about to remove.
fn wait_for_dying_watchdogs() {
    let deadline = Instant::now() + DYING_WATCHDOG_WAIT;
    while Instant::now() < deadline {
        let busy = read_states().into_iter().filter_map(|(_, s)| s).any(|s| {
            !is_alive(s.pid, s.start_time) && is_alive(s.watchdog_pid, s.watchdog_start_time)
        });
        if !busy {
            return;
        }
        thread::sleep(DYING_WATCHDOG_POLL);
    }
}

//! The state files that let a killed run be undone, the lock that orders every step, and the
//! names of linewatch's veths.
//!
//! # Contract
//!
//! - One file per running mirror, `/run/linewatch/mirror-<pid>.state` ([`state_path`]), in a
//!   directory of mode 0700 ([`ensure_state_dir`]). A run writes it *before* each step it
//!   describes, whole or not at all ([`write_state`]: a temporary file, then a rename), so a
//!   reader always finds a complete file that lists at least what has been done.
//! - The format is `key=value` lines after a comment, version 1 ([`State::render`]). It is read
//!   by other processes, possibly of another linewatch build (the watchdog, the next run's
//!   leftover cleaning), so it does not change: the watchdog's fields keep their version-1 keys
//!   `guard_pid` and `guard_start_time`.
//! - A damaged file never names devices that are not linewatch's: [`State::parse`] accepts
//!   only `lwm<pid>`/`lwc<pid>` veths ([`lw_name_pid`]) and a valid interface name.
//! - Every set-up and every undo runs under [`Lock`], an exclusive `flock` on
//!   `/run/linewatch/lock`, so runs, watchdogs and cleaners never interleave their steps.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::error::MirrorError;
use super::tc::Direction;
use crate::live::statefile;

/// Directory of the state files (one per running mirror) and of the lock file.
pub const STATE_DIR: &str = "/run/linewatch";

/// Name prefix of the veth end that receives the mirrored copies.
const MIRROR_PREFIX: &str = "lwm";

/// Name prefix of the veth end that AF_XDP captures on.
const CAPTURE_PREFIX: &str = "lwc";

/// Longest interface name the kernel takes (`IFNAMSIZ` minus the terminating NUL).
const MAX_IFNAME_LEN: usize = 15;

/// Whose clsact qdisc the filters hang on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clsact {
    /// Not looked at yet: leave whatever is there.
    Undecided,
    /// This run added it.
    Created,
    /// It was there, added by another linewatch run that has not removed it.
    Linewatch,
    /// It was there, someone else's.
    Foreign,
}

impl Clsact {
    const ALL: [Clsact; 4] = [
        Clsact::Undecided,
        Clsact::Created,
        Clsact::Linewatch,
        Clsact::Foreign,
    ];

    fn keyword(self) -> &'static str {
        match self {
            Clsact::Undecided => "undecided",
            Clsact::Created => "created",
            Clsact::Linewatch => "linewatch",
            Clsact::Foreign => "foreign",
        }
    }

    fn from_keyword(word: &str) -> Option<Clsact> {
        Clsact::ALL.into_iter().find(|c| c.keyword() == word)
    }

    /// True when the qdisc is linewatch's, so it goes once no filter is left on it.
    pub(super) fn is_linewatch(self) -> bool {
        matches!(self, Clsact::Created | Clsact::Linewatch)
    }
}

/// What one run set up, as written to its state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct State {
    pub(super) pid: u32,
    /// The process's start time (field 22 of /proc/pid/stat): tells a reused pid apart.
    pub(super) start_time: u64,
    pub(super) watchdog_pid: u32,
    pub(super) watchdog_start_time: u64,
    /// `readlink /proc/self/ns/net` of the run.
    pub(super) netns: String,
    pub(super) interface: String,
    /// The veth end that receives the copies (`lwm<pid>`).
    pub(super) mirror: String,
    /// The veth end that AF_XDP captures on (`lwc<pid>`).
    pub(super) capture: String,
    pub(super) clsact: Clsact,
    pub(super) filters: Vec<(Direction, u32)>,
}

impl State {
    /// The state of run `pid` mirroring `interface`, before any step: no watchdog yet, the
    /// qdisc not looked at, no filter.
    pub(super) fn new(pid: u32, start_time: u64, netns: String, interface: &str) -> State {
        State {
            pid,
            start_time,
            watchdog_pid: 0,
            watchdog_start_time: 0,
            netns,
            interface: interface.to_owned(),
            mirror: format!("{MIRROR_PREFIX}{pid}"),
            capture: format!("{CAPTURE_PREFIX}{pid}"),
            clsact: Clsact::Undecided,
            filters: Vec::new(),
        }
    }

    /// The state file's text (format version 1).
    pub(super) fn render(&self) -> String {
        let filters: Vec<String> = self
            .filters
            .iter()
            .map(|(d, p)| format!("{}:{p}", d.keyword()))
            .collect();
        format!(
            "# linewatch --mirror: what this run set up (removed on exit, by its guard, or by \
             the next run)\nversion=1\npid={}\nstart_time={}\nguard_pid={}\n\
             guard_start_time={}\nnetns={}\ninterface={}\nmirror_veth={}\ncapture_veth={}\n\
             clsact={}\nfilters={}\n",
            self.pid,
            self.start_time,
            self.watchdog_pid,
            self.watchdog_start_time,
            self.netns,
            self.interface,
            self.mirror,
            self.capture,
            self.clsact.keyword(),
            filters.join(" ")
        )
    }

    /// Reads a state file's text; None when it is damaged or of another version.
    pub(super) fn parse(text: &str) -> Option<State> {
        let get = |key: &str| statefile::field(text, key);
        if get("version")? != "1" {
            return None;
        }
        let mut filters = Vec::new();
        for f in get("filters")?.split_whitespace() {
            let (dir, pref) = f.split_once(':')?;
            filters.push((Direction::from_keyword(dir)?, pref.parse().ok()?));
        }
        let state = State {
            pid: get("pid")?.parse().ok()?,
            start_time: get("start_time")?.parse().ok()?,
            watchdog_pid: get("guard_pid")?.parse().ok()?,
            watchdog_start_time: get("guard_start_time")?.parse().ok()?,
            netns: get("netns")?.to_owned(),
            interface: get("interface")?.to_owned(),
            mirror: get("mirror_veth")?.to_owned(),
            capture: get("capture_veth")?.to_owned(),
            clsact: Clsact::from_keyword(get("clsact")?)?,
            filters,
        };
        // Never let a damaged file name devices that are not linewatch's own veths.
        let names_ok = lw_name_pid(&state.mirror).is_some()
            && lw_name_pid(&state.capture).is_some()
            && check_interface_name(&state.interface).is_ok();
        names_ok.then_some(state)
    }
}

/// The state file of run `pid`.
pub(super) fn state_path(pid: u32) -> PathBuf {
    Path::new(STATE_DIR).join(format!("mirror-{pid}.state"))
}

/// True for `/run/linewatch/mirror-<digits>.state`.
pub(super) fn is_state_file(path: &Path) -> bool {
    statefile::is_pid_file(path, STATE_DIR, "mirror-")
}

/// Writes the state file whole or not at all (temporary file, then rename).
pub(super) fn write_state(path: &Path, state: &State) -> io::Result<()> {
    statefile::write_whole(path, &state.render())
}

/// Every state file in [`STATE_DIR`], parsed (None: unreadable or damaged).
pub(super) fn read_states() -> Vec<(PathBuf, Option<State>)> {
    let Ok(dir) = fs::read_dir(STATE_DIR) else {
        return Vec::new();
    };
    dir.flatten()
        .map(|e| e.path())
        .filter(|p| is_state_file(p))
        .map(|p| {
            let state = fs::read_to_string(&p).ok().and_then(|t| State::parse(&t));
            (p, state)
        })
        .collect()
}

/// Creates [`STATE_DIR`] if needed, and makes it root's alone even if it was there.
pub(super) fn ensure_state_dir() -> Result<(), MirrorError> {
    statefile::ensure_dir(STATE_DIR).map_err(|e| {
        MirrorError::new(format!(
            "cannot create {STATE_DIR} for linewatch's mirror state: {e} (needs root)"
        ))
    })
}

/// True when another linewatch run in this network namespace, on the same interface, has the
/// clsact qdisc as its own (so the qdisc is linewatch's, shared, and goes when it empties).
pub(super) fn created_by_other_run(me: &State) -> bool {
    read_states().into_iter().filter_map(|(_, s)| s).any(|s| {
        s.pid != me.pid
            && s.netns == me.netns
            && s.interface == me.interface
            && s.clsact.is_linewatch()
    })
}

/// The exclusive lock on `/run/linewatch/lock`, held while setting up or undoing a mirror.
#[derive(Debug)]
pub(super) struct Lock {
    /// Closing it releases the lock.
    _file: fs::File,
}

impl Lock {
    /// Waits for the lock (creating the lock file if needed).
    pub(super) fn acquire() -> Result<Lock, MirrorError> {
        statefile::lock(STATE_DIR)
            .map(|file| Lock { _file: file })
            .map_err(|e| {
                MirrorError::new(format!("cannot lock {STATE_DIR}/lock: {e} (needs root)"))
            })
    }
}

/// The pid in a linewatch veth name (`lwm<pid>` or `lwc<pid>`).
pub(super) fn lw_name_pid(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(MIRROR_PREFIX)
        .or_else(|| name.strip_prefix(CAPTURE_PREFIX))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Refuses what the kernel would not take as an interface name (and what could not be passed
/// to `ip` or written to a state file safely).
pub(super) fn check_interface_name(name: &str) -> Result<(), MirrorError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err(MirrorError::new(format!(
            "{name:?} is not an interface name: pick one that `ip link` lists"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            pid: 4242,
            start_time: 123456,
            watchdog_pid: 4243,
            watchdog_start_time: 123457,
            netns: "net:[4026531840]".into(),
            interface: "eth0".into(),
            mirror: "lwm4242".into(),
            capture: "lwc4242".into(),
            clsact: Clsact::Created,
            filters: vec![(Direction::Ingress, 49001), (Direction::Egress, 49002)],
        }
    }

    #[test]
    fn state_round_trips() {
        let s = sample();
        assert_eq!(State::parse(&s.render()), Some(s.clone()));
        let none = State {
            filters: Vec::new(),
            clsact: Clsact::Undecided,
            ..s
        };
        assert_eq!(State::parse(&none.render()), Some(none));
        let fresh = State::new(4242, 123456, "net:[4026531840]".into(), "eth0");
        assert_eq!(
            (fresh.mirror.as_str(), fresh.capture.as_str()),
            ("lwm4242", "lwc4242")
        );
        assert_eq!(State::parse(&fresh.render()), Some(fresh));
    }

    /// The version-1 format, byte for byte: files of other linewatch builds must keep parsing.
    #[test]
    fn state_format_is_version_1() {
        assert_eq!(
            sample().render(),
            "# linewatch --mirror: what this run set up (removed on exit, by its guard, or by \
             the next run)\nversion=1\npid=4242\nstart_time=123456\nguard_pid=4243\n\
             guard_start_time=123457\nnetns=net:[4026531840]\ninterface=eth0\n\
             mirror_veth=lwm4242\ncapture_veth=lwc4242\nclsact=created\n\
             filters=ingress:49001 egress:49002\n"
        );
    }

    #[test]
    fn damaged_state_is_rejected() {
        let text = sample().render();
        assert_eq!(State::parse(&text.replace("lwm4242", "eth1")), None);
        assert_eq!(State::parse(&text.replace("version=1", "version=2")), None);
        assert_eq!(
            State::parse(&text.replace("ingress:49001", "sideways:1")),
            None
        );
        assert_eq!(State::parse(""), None);
    }

    #[test]
    fn linewatch_names() {
        assert_eq!(lw_name_pid("lwm123"), Some(123));
        assert_eq!(lw_name_pid("lwc4194304"), Some(4_194_304));
        assert_eq!(lw_name_pid("lwm"), None);
        assert_eq!(lw_name_pid("lwmx1"), None);
        assert_eq!(lw_name_pid("eth0"), None);
        assert!(format!("{MIRROR_PREFIX}{}", u32::MAX).len() <= MAX_IFNAME_LEN);
    }

    #[test]
    fn interface_names() {
        assert!(check_interface_name("a/b").is_err());
        assert!(check_interface_name("0123456789abcdef").is_err());
        assert!(check_interface_name("eth0").is_ok());
    }

    #[test]
    fn state_file_paths() {
        assert!(is_state_file(Path::new("/run/linewatch/mirror-12.state")));
        assert!(!is_state_file(Path::new("/run/linewatch/mirror-.state")));
        assert!(!is_state_file(Path::new("/tmp/mirror-12.state")));
        assert!(!is_state_file(Path::new("/run/linewatch/mirror-12.tmp")));
        assert_eq!(
            state_path(7),
            PathBuf::from("/run/linewatch/mirror-7.state")
        );
    }
}

//! Network labs: throw-away network namespaces joined by veth pairs, for the root-only tests
//! and the bench rig, removed on every path.
//!
//! ```text
//!  Lab::new("lwx", &["c", "s"])                 (each namespace gets `lo` up)
//!    lwx-c-<pid>-<seq>                                 lwx-s-<pid>-<seq>
//!    cl0 10.9.0.1/24  <──── veth, N queues ────>  sv0 10.9.0.2/24
//!  lab.add_veth(End::new("c", "cl0").addr("10.9.0.1/24"),
//!               End::new("s", "sv0").addr("10.9.0.2/24"), N)
//!  lab.ns("s").exec("nginx") / .ip(&[..]) / .tc(&[..])
//!  drop(lab)                                    (both namespaces and the veth are gone)
//! ```
//!
//! The contract:
//!
//! - **Names.** A namespace is named `<tag>-<role>-<pid>-<seq>`: the pid keeps the labs of two
//!   processes apart, the per-process sequence number the labs of one process (its parallel
//!   test threads). The tag starts with `lw`; tag and role are lowercase letters and digits.
//!   Interfaces are created inside their namespaces and never exist in the host's, so their
//!   names only need to be unique within a namespace (and fit Linux's 15 bytes: checked).
//! - **Veth pairs.** [`Lab::add_veth`] joins two namespaces of the lab (or one to itself) with
//!   a veth pair of N tx and N rx queues (`numtxqueues`/`numrxqueues`), gives each end its
//!   address if it has one, and sets both ends up. IPv6 addresses skip duplicate address
//!   detection, so they are usable at once.
//! - **Commands inside.** [`Netns::exec`] runs a program in a namespace through
//!   `ip netns exec` (which execs it: the child's pid is the program's own); [`Netns::ip`] and
//!   [`Netns::tc`] run `ip -n` and `tc -n` and return their stdout or a one-line
//!   [`LabError`] naming the command.
//! - **Cleanup.** Dropping a [`Lab`] — at the end of its scope, on an early return, while a
//!   panic unwinds — deletes its namespaces, and with them every interface in them (its veth
//!   pairs and whatever was added later: SPAN veths, linewatch's mirror, qdiscs, XDP
//!   programs). A step of [`Lab::new`] that fails deletes what the earlier steps made. A
//!   process still running inside keeps its namespace alive (nameless) until it exits, so stop
//!   the processes first: a guard declared after the lab drops before it.
//! - **Leftovers.** A lab whose owner died without unwinding (SIGKILL, `panic = "abort"`) is
//!   removed by the next [`Lab::new`] on the machine: every lab-named namespace whose pid no
//!   longer runs, and, at a process's first lab, those that carry its own pid (left by an
//!   earlier process that had the same pid).
//!
//! Everything goes through `ip` and `tc` (iproute2, found by [`crate::tools::path_of`]).
//! Making a lab needs root: callers check with [`crate::tools::need_root`] first.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

use crate::tools::path_of;

/// Linux interface names hold 15 bytes (`IFNAMSIZ` is 16 with the NUL).
const IFNAME_MAX: usize = 15;
/// Every lab tag starts with this, so that leftovers are told from other namespaces.
const TAG_START: &str = "lw";

/// The next lab's sequence number in this process.
static NEXT_SEQ: AtomicU32 = AtomicU32::new(0);
/// Removes the leftovers carrying this process's pid once, before its first lab.
static OWN_PID_LEFTOVERS: Once = Once::new();

/// A failure to make or use a lab: one line, with the command that failed and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError(pub String);

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LabError {}

/// Runs `cmd` (stdin closed) and returns its stdout; a failure to start or a non-zero exit
/// becomes one line naming the command, with its stderr.
///
/// # Errors
/// When the command cannot start or exits with a failure.
pub fn run(cmd: &mut Command) -> Result<String, LabError> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| LabError(format!("cannot run {shown}: {e}")))?;
    if !out.status.success() {
        return Err(LabError(format!(
            "{shown} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace, by name. It does not own the namespace: the [`Lab`] that made it
/// deletes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns(String);

impl Netns {
    /// The namespace called `name` (one a lab made in another process, for example).
    pub fn named(name: impl Into<String>) -> Netns {
        Netns(name.into())
    }

    /// Its name, as `ip netns list` shows it.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// A command that runs `program` inside this namespace (`ip netns exec NAME program`; ip
    /// execs it, so the child's pid is the program's own). Add arguments with `.args`.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(path_of("ip"));
        cmd.args(["netns", "exec", &self.0]).arg(program);
        cmd
    }

    /// Runs `ip -n NAME args...` and returns its stdout.
    ///
    /// # Errors
    /// When ip fails (the message names the command and has its stderr).
    pub fn ip(&self, args: &[&str]) -> Result<String, LabError> {
        run(Command::new(path_of("ip")).args(["-n", &self.0]).args(args))
    }

    /// Runs `tc -n NAME args...` and returns its stdout.
    ///
    /// # Errors
    /// When tc fails (the message names the command and has its stderr).
    pub fn tc(&self, args: &[&str]) -> Result<String, LabError> {
        run(Command::new(path_of("tc")).args(["-n", &self.0]).args(args))
    }

    /// Adds address `cidr` (`10.9.0.1/24`, `fd00::1/64`) to interface `dev`; an IPv6 address
    /// without duplicate address detection, so that it is usable at once.
    ///
    /// # Errors
    /// When ip refuses it.
    pub fn add_addr(&self, dev: &str, cidr: &str) -> Result<(), LabError> {
        let mut args = vec!["addr", "add", cidr, "dev", dev];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Whether `ip netns list` names this namespace.
    pub fn exists(&self) -> bool {
        list_namespaces().is_ok_and(|names| names.contains(&self.0))
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One end of a veth pair: the lab role of its namespace, its interface name, and optionally
/// an address.
#[derive(Debug, Clone, Copy)]
pub struct End<'a> {
    role: &'a str,
    name: &'a str,
    addr: Option<&'a str>,
}

impl<'a> End<'a> {
    /// Interface `name` in the lab's namespace `role`, without an address.
    pub fn new(role: &'a str, name: &'a str) -> End<'a> {
        End {
            role,
            name,
            addr: None,
        }
    }

    /// The same end with address `cidr` (IPv4 or IPv6, with its prefix length).
    pub fn addr(self, cidr: &'a str) -> End<'a> {
        End {
            addr: Some(cidr),
            ..self
        }
    }
}

/// Network namespaces (one per role) and the veth pairs between them; dropping it deletes
/// them all. See the module doc for the contract.
#[derive(Debug)]
pub struct Lab {
    tag: String,
    seq: u32,
    /// (role, namespace), in creation order; emptied by [`Lab::teardown`].
    namespaces: Vec<(String, Netns)>,
}

impl Lab {
    /// Removes leftover labs (see the module doc), then makes one namespace per role, named
    /// `<tag>-<role>-<pid>-<seq>`, each with `lo` up.
    ///
    /// # Errors
    /// When `tag` or a role is not a valid name (nothing is touched then), or a namespace
    /// cannot be made (what was made is deleted again).
    pub fn new(tag: &str, roles: &[&str]) -> Result<Lab, LabError> {
        check_tag(tag)?;
        for (i, role) in roles.iter().enumerate() {
            if !is_word(role) {
                return Err(LabError(format!(
                    "lab role {role:?}: use lowercase letters and digits"
                )));
            }
            if roles[..i].contains(role) {
                return Err(LabError(format!("lab role {role:?} given twice")));
            }
        }
        remove_leftovers();
        let mut lab = Lab {
            tag: tag.to_owned(),
            seq: NEXT_SEQ.fetch_add(1, Ordering::Relaxed),
            namespaces: Vec::with_capacity(roles.len()),
        };
        let pid = std::process::id();
        for role in roles {
            let ns = Netns(namespace_name(tag, role, pid, lab.seq));
            run(Command::new(path_of("ip")).args(["netns", "add", ns.name()]))?;
            // From here on, dropping `lab` (also through the `?` below) deletes it.
            lab.namespaces.push(((*role).to_owned(), ns.clone()));
            ns.ip(&["link", "set", "lo", "up"])?;
        }
        Ok(lab)
    }

    /// The namespace of `role`.
    ///
    /// # Panics
    /// When the lab has no such role: a mistake in the caller, not a condition to handle.
    pub fn ns(&self, role: &str) -> &Netns {
        match self.namespaces.iter().find(|(r, _)| r == role) {
            Some((_, ns)) => ns,
            None => panic!(
                "lab {}-*-{} has no role {role:?} (it has {:?})",
                self.tag,
                self.seq,
                self.namespaces.iter().map(|(r, _)| r).collect::<Vec<_>>()
            ),
        }
    }

    /// Every namespace of the lab, in the order of the roles.
    pub fn namespaces(&self) -> impl Iterator<Item = &Netns> {
        self.namespaces.iter().map(|(_, ns)| ns)
    }

    /// This lab's sequence number in its process (part of its namespace names).
    pub fn seq(&self) -> u32 {
        self.seq
    }

    /// Joins `a` and `b` with a veth pair of `queues` tx and rx queues each (at least 1),
    /// adds their addresses and sets both ends up.
    ///
    /// # Errors
    /// When an interface name is not valid, or ip fails (what was made stays until the lab
    /// drops).
    ///
    /// # Panics
    /// When an end names a role the lab does not have.
    pub fn add_veth(&self, a: End<'_>, b: End<'_>, queues: u32) -> Result<(), LabError> {
        check_ifname(a.name)?;
        check_ifname(b.name)?;
        let q = queues.max(1).to_string();
        #[rustfmt::skip]
        self.ns(a.role).ip(&[
            "link", "add", a.name, "numtxqueues", &q, "numrxqueues", &q,
            "type", "veth", "peer", "name", b.name, "numtxqueues", &q, "numrxqueues", &q,
            "netns", self.ns(b.role).name(),
        ])?;
        for end in [a, b] {
            let ns = self.ns(end.role);
            if let Some(cidr) = end.addr {
                ns.add_addr(end.name, cidr)?;
            }
            ns.ip(&["link", "set", end.name, "up"])?;
        }
        Ok(())
    }

    /// Deletes the namespaces now (and with them everything in them). Dropping the lab does
    /// the same; calling it twice is harmless. A namespace that cannot be deleted is reported
    /// on stderr with the command that removes it by hand.
    pub fn teardown(&mut self) {
        for (_, ns) in self.namespaces.drain(..).rev() {
            if let Err(e) = delete(ns.name()) {
                eprintln!("lab: {e} (remove it by hand: ip netns del {ns})");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The names `ip netns list` shows.
///
/// # Errors
/// When `ip netns list` fails.
pub fn list_namespaces() -> Result<Vec<String>, LabError> {
    let text = run(Command::new(path_of("ip")).args(["netns", "list"]))?;
    // A line is `NAME` or `NAME (id: N)`.
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// The lab namespaces whose names carry `pid`: what that process's labs left (nothing, once
/// they dropped).
pub fn namespaces_of(pid: u32) -> Vec<String> {
    list_namespaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|name| owner_of(name) == Some(pid))
        .collect()
}

/// `<tag>-<role>-<pid>-<seq>`.
fn namespace_name(tag: &str, role: &str, pid: u32, seq: u32) -> String {
    format!("{tag}-{role}-{pid}-{seq}")
}

/// The pid in a lab namespace's name; `None` for a name that is not a lab's.
fn owner_of(name: &str) -> Option<u32> {
    let mut parts = name.rsplitn(3, '-');
    let (seq, pid, tag_role) = (parts.next()?, parts.next()?, parts.next()?);
    let (tag, role) = tag_role.split_once('-')?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let lab_named = tag.starts_with(TAG_START) && is_word(tag) && is_word(role) && numeric(seq);
    lab_named.then(|| pid.parse().ok()).flatten()
}

/// Lowercase ASCII letters and digits, at least one.
fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn check_tag(tag: &str) -> Result<(), LabError> {
    if tag.starts_with(TAG_START) && is_word(tag) {
        Ok(())
    } else {
        Err(LabError(format!(
            "lab tag {tag:?}: start it with {TAG_START:?}, then lowercase letters and digits"
        )))
    }
}

/// What the kernel takes as an interface name: 1 to 15 bytes, no `/`, `:` or whitespace.
fn check_ifname(name: &str) -> Result<(), LabError> {
    let bad_byte = name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace());
    if name.is_empty() || name.len() > IFNAME_MAX || bad_byte {
        return Err(LabError(format!(
            "interface name {name:?}: 1 to {IFNAME_MAX} bytes, without '/', ':' or spaces"
        )));
    }
    Ok(())
}

fn delete(name: &str) -> Result<(), LabError> {
    run(Command::new(path_of("ip")).args(["netns", "del", name])).map(drop)
}

/// Deletes the lab namespaces of processes that no longer run, and (once per process) those
/// that carry this process's pid.
fn remove_leftovers() {
    let own = std::process::id();
    // `call_once` also makes a second thread's first lab wait until this sweep is over, so the
    // sweep never meets a namespace this process has just made.
    OWN_PID_LEFTOVERS.call_once(|| remove_where(|pid| pid == own));
    remove_where(|pid| pid != own && !Path::new(&format!("/proc/{pid}")).exists());
}

fn remove_where(stale: impl Fn(u32) -> bool) {
    let Ok(names) = list_namespaces() else {
        return;
    };
    for name in names {
        if owner_of(&name).is_some_and(&stale) {
            // Another process may be removing it at the same time: either of us is enough.
            let _ = delete(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{need_programs, need_root};

    /// Root and the programs the lab tests run; otherwise the rule (skip, or fail in CI).
    fn can_run(test: &str) -> bool {
        need_root(test, "network namespaces, veth") && need_programs(test, &["ip", "ping"])
    }

    fn existing(names: &[String]) -> Vec<String> {
        let listed = list_namespaces().expect("ip netns list");
        names
            .iter()
            .filter(|n| listed.contains(n))
            .cloned()
            .collect()
    }

    fn names_of(lab: &Lab) -> Vec<String> {
        lab.namespaces().map(|ns| ns.name().to_owned()).collect()
    }

    #[test]
    fn names_carry_tag_role_pid_and_sequence_and_parse_back() {
        assert_eq!(namespace_name("lwg", "s", 1234, 7), "lwg-s-1234-7");
        assert_eq!(owner_of("lwg-s-1234-7"), Some(1234));
        assert_eq!(owner_of("lwn-c-99-0"), Some(99));
        for foreign in [
            "lwg-s-1234",     // no sequence number
            "ab-s-1234-7",    // not a lab tag
            "lwg-S-1234-7",   // uppercase role
            "lwg-s-12x-7",    // pid not a number
            "lwg-s-1234-7a",  // sequence not a number
            "lwg--1234-7",    // empty role
            "lwg-s-t-1234-7", // role with a dash
            "lwb-t-1234",     // the bench rig's names before this module
            "",
        ] {
            assert_eq!(owner_of(foreign), None, "{foreign:?}");
        }
    }

    #[test]
    fn bad_tags_roles_and_interface_names_are_refused_before_anything_is_made() {
        for (tag, roles) in [
            ("lab", &["s"][..]),
            ("lw-x", &["s"]),
            ("lwx", &["a-b"]),
            ("lwx", &["S"]),
            ("lwx", &["s", "s"]),
        ] {
            let err = Lab::new(tag, roles).expect_err("refused");
            assert!(err.0.starts_with("lab "), "{err}");
        }
        assert!(check_ifname("0123456789abcde").is_ok());
        for name in ["", "0123456789abcdef", "a/b", "a:b", "a b"] {
            assert!(check_ifname(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn a_lab_is_there_until_it_drops() {
        if !can_run("a_lab_is_there_until_it_drops") {
            return;
        }
        let lab = Lab::new("lwtest", &["a", "b"]).expect("lab");
        let other = Lab::new("lwtest", &["a", "b"]).expect("a second lab");
        let names = names_of(&lab);
        assert_eq!(existing(&names), names, "both namespaces exist");
        assert!(
            names_of(&other).iter().all(|n| !names.contains(n)),
            "two labs of one process share a name: {names:?}"
        );
        let ours = namespaces_of(std::process::id());
        for name in names.iter().chain(&names_of(&other)) {
            assert!(ours.contains(name), "{name} not among {ours:?}");
        }

        lab.add_veth(
            End::new("a", "lwta0").addr("10.250.0.1/24"),
            End::new("b", "lwtb0").addr("fd00:250::2/64"),
            4,
        )
        .expect("veth");
        lab.ns("a").add_addr("lwta0", "fd00:250::1/64").expect("v6");
        lab.ns("b").add_addr("lwtb0", "10.250.0.2/24").expect("v4");
        let link = lab
            .ns("a")
            .ip(&["-d", "link", "show", "lwta0"])
            .expect("link");
        assert!(link.contains("numtxqueues 4 numrxqueues 4"), "{link}");
        assert!(link.contains("state UP") || link.contains(",UP"), "{link}");
        for to in ["10.250.0.2", "fd00:250::2"] {
            let ping = lab
                .ns("a")
                .exec(path_of("ping"))
                .args(["-c", "1", "-W", "2", to])
                .output()
                .expect("ping");
            assert!(ping.status.success(), "ping {to} across the veth: {ping:?}");
        }
        drop(lab);
        assert_eq!(existing(&names), Vec::<String>::new(), "deleted on drop");
        assert_eq!(existing(&names_of(&other)).len(), 2, "the other lab stays");
    }

    #[test]
    fn a_panic_or_an_early_return_leaves_no_lab() {
        if !can_run("a_panic_or_an_early_return_leaves_no_lab") {
            return;
        }
        let seen = std::sync::Mutex::new(Vec::new());
        let unwound = std::panic::catch_unwind(|| {
            let lab = Lab::new("lwtest", &["p"]).expect("lab");
            seen.lock().expect("lock").extend(names_of(&lab));
            panic!("a test fails with its lab up");
        });
        assert!(unwound.is_err());
        let names = seen.into_inner().expect("lock");
        assert_eq!(names.len(), 1);
        assert_eq!(existing(&names), Vec::<String>::new(), "left after a panic");

        let mut names = Vec::new();
        let mut set_up = || -> Result<(), LabError> {
            let lab = Lab::new("lwtest", &["e", "f"])?;
            names.extend(names_of(&lab));
            // 300 is no octet: ip refuses, and `?` returns with the lab still up.
            lab.add_veth(
                End::new("e", "e0").addr("10.250.1.300/24"),
                End::new("f", "f0"),
                1,
            )?;
            Ok(())
        };
        let err = set_up().expect_err("a bad address");
        assert!(err.0.contains("10.250.1.300/24"), "{err}");
        assert_eq!(names.len(), 2);
        assert_eq!(existing(&names), Vec::<String>::new(), "left after `?`");
    }

    #[test]
    fn leftovers_of_dead_processes_are_removed_and_live_ones_kept() {
        if !can_run("leftovers_of_dead_processes_are_removed_and_live_ones_kept") {
            return;
        }
        let mut gone = Command::new("true").spawn().expect("run true");
        let dead = gone.id();
        gone.wait().expect("reap true");
        let orphan = namespace_name("lwtest", "x", dead, 0);
        // pid 1 always runs: its lab is not a leftover.
        let living = namespace_name("lwtest", "y", 1, std::process::id());
        for name in [&orphan, &living] {
            // Another test's lab sweeps leftovers too: it may delete the orphan (its owner is
            // dead) while `ip` is still making it ("Bind ... failed: No such file"). Try again.
            let mut tries = 0;
            loop {
                match run(Command::new(path_of("ip")).args(["netns", "add", name])) {
                    Ok(_) => break,
                    Err(_) if name == &orphan && tries < 5 => tries += 1,
                    Err(e) => panic!("netns add: {e:?}"),
                }
            }
        }
        let lab = Lab::new("lwtest", &["z"]);
        let left = existing(&[orphan.clone(), living.clone()]);
        let _ = delete(&living);
        drop(lab.expect("lab"));
        assert_eq!(
            left,
            [living],
            "{orphan} (pid {dead} is dead) must go, pid 1's stays"
        );
    }
}

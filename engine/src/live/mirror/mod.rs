//! `linewatch --mirror IFACE`: capture a copy of IFACE's traffic without touching IFACE.
//!
//! # What is created
//!
//! [`Mirror::create`] sets up, with the `ip` and `tc` commands of iproute2:
//!
//! * a veth pair `lwm<pid>` (the *mirror* end, where copies are sent) and `lwc<pid>` (the
//!   *capture* end, [`Mirror::capture_interface`], where AF_XDP runs). Both are up, have no
//!   addresses, ARP off (the capture end would otherwise answer mirrored ARP requests for this
//!   host's addresses), IPv6 disabled (no router solicitations of their own), `Q` rx and tx
//!   queues each ([`MirrorSpec::queues`]) and an MTU of [`CAPTURE_MTU`]: veth accepts a native XDP program only while the peer's MTU fits one page
//!   minus XDP headroom and `skb_shared_info` (about 3.5k with 4 KiB pages).
//! * a `clsact` qdisc on IFACE, unless one is already there (then it is shared and left in
//!   place; a plain `ingress` qdisc is refused, since clsact cannot be added beside it);
//! * one `u32 match u32 0 0` filter per direction with the action
//!   `mirred egress mirror dev lwm<pid>` (matchall and flower may be missing from the kernel;
//!   u32 is always there). Each filter sits at its own preference, the first free pair from
//!   49001/49002 up, so that it never shares a priority with someone else's filter: u32 lists
//!   every table of a qdisc with the same priority together, whichever direction it hangs on.
//!
//! Mirroring copies each packet as the kernel holds it: a TSO interface's egress and a GRO
//! interface's ingress carry GSO super-packets far above any MTU. While an XDP program is
//! attached to the capture end, veth takes software GSO away from the mirror end, so the kernel
//! segments those copies back to their MSS before they cross the pair (measured on kernel 6.18:
//! 20 MB over a TSO veth, 319 GSO packets on the interface, 13948 frames at the XDP program,
//! nothing lost; without XDP the capture end receives the 319 super-packets whole). What is
//! lost are single packets bigger than [`CAPTURE_MTU`], which veth drops (counted as
//! `tx_dropped` on the mirror end): jumbo frames, and above all loopback traffic, whose MTU is
//! 64 KiB (measured: 329 of the 372 packets of a 20 MB transfer over lo; only segments of up to
//! ~3 KB, such as small requests and responses, handshakes and ACKs, reach the capture).
//!
//! The capture end has no address and ARP off, so it answers nothing, but the kernel still
//! sees every mirrored packet that the XDP program passes on: broadcast UDP (DHCP, for one)
//! would reach this host's sockets a second time. The program on the capture end should drop
//! what it does not redirect.
//!
//! # Loopback
//!
//! Every packet on `lo` crosses lo's egress and then its ingress, so mirroring both would count
//! everything twice. On `lo` only **egress** is mirrored: egress runs once per packet in the
//! sender's own context, before the packet waits in the loopback backlog, so the copy exists
//! even when the backlog overflows and the packet itself is lost, which is the better order for
//! a monitor (ingress would only see what survived).
//!
//! # Tear-down, kill -9 and leftovers
//!
//! Each run records what it set up in a state file, `/run/linewatch/mirror-<pid>.state`
//! (directory mode 0700), written *before* each step it describes, so that a run killed at any
//! point can be undone. Undoing is idempotent: what is already gone is fine. Filters are removed
//! only when every action at their preference mirrors into this run's veth (or into a device
//! that no longer exists); the clsact qdisc is removed only when this run (or an earlier
//! linewatch run it shared it with) created it and no filter at all is left on it, so other
//! users' filters and qdiscs always stay.
//!
//! A SIGKILLed process cannot clean up, so `create` also starts a **guard**: the same
//! executable re-run as `<exe> --internal-mirror-guard <state file>` ([`GUARD_ARG`]; the
//! program's `main` must hand those arguments to [`guard_main`]). The guard is in a session of
//! its own (a Ctrl-C to the terminal does not reach it), ignores SIGINT and SIGHUP, and blocks
//! reading its stdin, a pipe whose only write end the parent holds (close-on-exec, so no other
//! child inherits it). When the parent dies, however it dies, the pipe reports end-of-file and
//! the guard undoes the state file and exits; SIGTERM does the same at once. A normal
//! [`Mirror::teardown`] (or drop) removes everything itself, deletes the state file and then
//! closes the pipe, so the guard finds nothing left and exits.
//!
//! If the guard was killed too, [`clean_leftovers`] (run by linewatch at the start of every
//! `--mirror` run) undoes every state file whose process is gone (process id *and* start time,
//! so a reused pid does not look alive), after giving a guard that is still cleaning up a few
//! seconds, and deletes `lwm<pid>`/`lwc<pid>` veths whose pid is not alive even without a state
//! file. A state file from another network namespace is left to runs in that namespace, unless
//! the namespace is gone (its devices went with it; only the file is removed). All of this runs
//! under an exclusive lock on `/run/linewatch/lock`, so runs, guards and cleaners never
//! interleave their steps.

use std::fmt;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// First argument that makes the linewatch executable run as a mirror guard: its `main` calls
/// [`guard_main`] with the arguments after it.
pub const GUARD_ARG: &str = "--internal-mirror-guard";

/// Directory of the state files (one per running mirror) and of the lock file.
pub const STATE_DIR: &str = "/run/linewatch";

/// MTU of both veth ends: above Ethernet's 1500, below the largest MTU veth allows with a
/// native XDP program on 4 KiB pages (a page minus 256 bytes of XDP headroom, the
/// `skb_shared_info` and the Ethernet header: 3506 with the default `MAX_SKB_FRAGS`, 3058 with
/// the largest).
pub const CAPTURE_MTU: u32 = 3000;

/// Name prefix of the veth end that receives the mirrored copies.
const MIRROR_PREFIX: &str = "lwm";
/// Name prefix of the veth end that AF_XDP captures on.
const CAPTURE_PREFIX: &str = "lwc";
/// First tc filter preference linewatch tries (ingress; egress uses the next number).
const FIRST_PREF: u32 = 49001;
/// How many ingress/egress preference pairs linewatch tries before giving up.
const PREF_PAIRS: u32 = 200;
/// Largest number of queues accepted for the veth pair.
const MAX_QUEUES: u32 = 1024;
/// How long [`clean_leftovers`] waits for guards of dead runs that are still cleaning up.
const DYING_GUARD_WAIT: Duration = Duration::from_secs(3);
/// How long a tear-down waits for its guard to exit after closing the pipe.
const GUARD_EXIT_WAIT: Duration = Duration::from_secs(2);

/// What to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    /// The interface whose traffic is copied (left untouched otherwise).
    pub interface: String,
    /// Number of rx and tx queues of each veth end (at least 1): one AF_XDP socket per queue.
    pub queues: u32,
}

/// A failure to set up or tear down a mirror: one line with the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorError(String);

impl MirrorError {
    fn new(message: impl AsRef<str>) -> MirrorError {
        MirrorError(one_line(message.as_ref()))
    }
}

impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MirrorError {}

/// A running mirror: owns the veth pair, the tc filters (and the clsact qdisc if it added it),
/// the state file and the guard process. Dropping it tears everything down.
#[derive(Debug)]
pub struct Mirror {
    state: State,
    path: PathBuf,
    tools: Tools,
    guard: Option<Guard>,
    torn_down: bool,
}

impl Mirror {
    /// Sets up the veth pair and the tc mirroring of `spec.interface` (see the module doc).
    /// Needs root or CAP_NET_ADMIN, the `ip` and `tc` commands, and an executable whose `main`
    /// dispatches [`GUARD_ARG`] to [`guard_main`]. On failure, whatever was already set up is
    /// removed again.
    pub fn create(spec: &MirrorSpec) -> Result<Mirror, MirrorError> {
        let iface = spec.interface.as_str();
        check_interface_name(iface)?;
        if lw_name_pid(iface).is_some() {
            return Err(MirrorError::new(format!(
                "{iface} is a veth that linewatch --mirror created for itself: \
                 mirror the interface that carries the traffic instead (e.g. eth0)"
            )));
        }
        if spec.queues == 0 || spec.queues > MAX_QUEUES {
            return Err(MirrorError::new(format!(
                "mirror queues must be between 1 and {MAX_QUEUES}, not {}",
                spec.queues
            )));
        }
        let tools = Tools::find()?;
        if !has_net_admin() {
            return Err(MirrorError::new(
                "linewatch --mirror needs root or CAP_NET_ADMIN: run it with sudo",
            ));
        }
        if let Err(failure) = tools.ip(&["link", "show", "dev", iface]) {
            return Err(if failure.no_device() {
                MirrorError::new(format!(
                    "interface {iface} not found: pick one that `ip link` lists"
                ))
            } else {
                failure.error(&format!("cannot look up interface {iface}"))
            });
        }
        ensure_state_dir()?;
        let lock = Lock::acquire()?;
        let pid = std::process::id();
        let mut mirror = Mirror {
            state: State {
                pid,
                start_time: proc_start_time(pid).unwrap_or(0),
                guard_pid: 0,
                guard_start_time: 0,
                netns: own_netns(),
                interface: iface.to_owned(),
                mirror: format!("{MIRROR_PREFIX}{pid}"),
                capture: format!("{CAPTURE_PREFIX}{pid}"),
                clsact: Clsact::Undecided,
                filters: Vec::new(),
            },
            path: state_path(pid),
            tools,
            guard: None,
            torn_down: false,
        };
        match mirror.set_up(spec.queues) {
            Ok(()) => Ok(mirror),
            Err(e) => {
                // Best effort: the error that stopped the set-up is the one to report.
                let _ = mirror.tear_down(Some(lock));
                Err(e)
            }
        }
    }

    /// The veth end to run AF_XDP on (`lwc<pid>`).
    pub fn capture_interface(&self) -> &str {
        &self.state.capture
    }

    /// The mirrored interface.
    pub fn interface(&self) -> &str {
        &self.state.interface
    }

    /// Removes everything this mirror set up and stops its guard. Reports what could not be
    /// removed (the guard then retries, and the next run's [`clean_leftovers`] after it). A
    /// second call does nothing.
    pub fn teardown(&mut self) -> Result<(), MirrorError> {
        self.tear_down(None)
    }

    /// Each step writes the state file first, so the guard always knows at least as much as
    /// has been done.
    fn set_up(&mut self, queues: u32) -> Result<(), MirrorError> {
        self.save()?;
        let guard = Guard::spawn(&self.path)?;
        self.state.guard_pid = guard.child.id();
        self.state.guard_start_time = proc_start_time(guard.child.id()).unwrap_or(0);
        self.guard = Some(guard);
        self.save()?;

        let (iface, mirror, capture) = (
            self.state.interface.clone(),
            self.state.mirror.clone(),
            self.state.capture.clone(),
        );
        // A veth with our name can only be left over from an earlier process with our pid.
        if let Err(f) = self.tools.ip(&["link", "del", "dev", &mirror]) {
            if !f.no_device() {
                return Err(f.error(&format!("cannot remove the stale veth {mirror}")));
            }
        }
        let (q, mtu) = (queues.to_string(), CAPTURE_MTU.to_string());
        #[rustfmt::skip]
        let add = [
            "link", "add", &mirror, "mtu", &mtu, "numtxqueues", &q, "numrxqueues", &q,
            "type", "veth", "peer", "name", &capture, "mtu", &mtu, "numtxqueues", &q,
            "numrxqueues", &q,
        ];
        self.tools.ip(&add).map_err(|f| {
            if f.detail.contains("Unknown device type") {
                MirrorError::new(format!(
                    "cannot create the veth pair {mirror}/{capture}: the kernel has no veth \
                     driver (modprobe veth): {}",
                    f.detail
                ))
            } else {
                f.error(&format!("cannot create the veth pair {mirror}/{capture}"))
            }
        })?;
        for dev in [&mirror, &capture] {
            // Absent when IPv6 is off in the kernel: then there is nothing to silence.
            let _ = fs::write(format!("/proc/sys/net/ipv6/conf/{dev}/disable_ipv6"), "1");
        }
        for dev in [&capture, &mirror] {
            self.tools
                .ip(&["link", "set", "dev", dev, "arp", "off", "up"])
                .map_err(|f| f.error(&format!("cannot bring {dev} up")))?;
        }

        let qdiscs = self
            .tools
            .tc(&["qdisc", "show", "dev", &iface])
            .map_err(|f| f.error(&format!("cannot list the qdiscs of {iface}")))?;
        match clsact_kind(&qdiscs) {
            Some(QdiscKind::Clsact) => {
                self.state.clsact = if created_by_other_run(&self.state) {
                    Clsact::Linewatch
                } else {
                    Clsact::Foreign
                };
                self.save()?;
            }
            Some(QdiscKind::Ingress) => {
                return Err(MirrorError::new(format!(
                    "{iface} has an `ingress` qdisc, and clsact cannot be added beside it: \
                     remove it (tc qdisc del dev {iface} ingress) if nothing needs it, or \
                     replace it with clsact"
                )));
            }
            None => {
                self.state.clsact = Clsact::Created;
                self.save()?;
                self.tools
                    .tc(&["qdisc", "add", "dev", &iface, "clsact"])
                    .map_err(|f| f.error(&format!("cannot add a clsact qdisc to {iface}")))?;
            }
        }

        let mut used = Vec::new();
        for dir in [Direction::Ingress, Direction::Egress] {
            let out = self
                .tools
                .tc(&["filter", "show", "dev", &iface, dir.keyword()])
                .map_err(|f| f.error(&format!("cannot list the tc filters of {iface}")))?;
            used.extend(filter_prefs(&out));
        }
        let (ingress, egress) = free_pref_pair(&used).ok_or_else(|| {
            MirrorError::new(format!(
                "no free tc filter preference pair between {FIRST_PREF} and {} on {iface}: \
                 remove unused filters (tc filter show dev {iface} ingress/egress)",
                FIRST_PREF + 2 * PREF_PAIRS - 1
            ))
        })?;
        // lo: egress only (see the module doc).
        self.state.filters = if iface == "lo" {
            vec![(Direction::Egress, egress)]
        } else {
            vec![(Direction::Ingress, ingress), (Direction::Egress, egress)]
        };
        self.save()?;
        for (dir, pref) in self.state.filters.clone() {
            let pref = pref.to_string();
            #[rustfmt::skip]
            let add = [
                "filter", "add", "dev", &iface, dir.keyword(), "pref", &pref, "protocol", "all",
                "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev",
                &mirror,
            ];
            self.tools.tc(&add).map_err(|f| {
                f.error(&format!(
                    "cannot add the tc {} filter mirroring {iface} into {mirror}",
                    dir.keyword()
                ))
            })?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), MirrorError> {
        write_state(&self.path, &self.state).map_err(|e| {
            MirrorError::new(format!(
                "cannot write the mirror state file {}: {e} (needs root)",
                self.path.display()
            ))
        })
    }

    /// The tear-down behind [`Mirror::teardown`]; `lock` is passed when the caller holds it.
    fn tear_down(&mut self, lock: Option<Lock>) -> Result<(), MirrorError> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        // Without the lock (say the directory vanished) tearing down is still better than not.
        let lock = lock.or_else(|| Lock::acquire().ok());
        let result = undo(&self.tools, &self.state);
        if result.is_ok() {
            let _ = fs::remove_file(&self.path);
        }
        drop(lock);
        if let Some(guard) = self.guard.take() {
            guard.stop();
        }
        result.map(drop)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; the guard and clean_leftovers retry.
        let _ = self.tear_down(None);
    }
}

/// Entry point of the guard process: `args` are the arguments after [`GUARD_ARG`] (the state
/// file's path). Waits for the parent to close the pipe on stdin (or die) or for SIGTERM, then
/// undoes what the state file still lists. Exit code 0 when nothing is left behind.
pub fn guard_main(args: &[String]) -> ExitCode {
    let Some(path) = args.first().map(PathBuf::from) else {
        return ExitCode::from(2);
    };
    if !is_state_file(&path) {
        return ExitCode::from(2);
    }
    // SAFETY: plain system calls with constant arguments; no memory is shared with them.
    unsafe {
        libc::setsid();
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    wait_for_eof_or_sigterm();
    let lock = Lock::acquire().ok();
    let Ok(text) = fs::read_to_string(&path) else {
        return ExitCode::SUCCESS; // the parent removed everything itself
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

/// Removes what killed runs left behind (see the module doc): returns one human-readable line
/// per thing removed (or that could not be removed).
pub fn clean_leftovers() -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(tools) = Tools::find() else {
        return lines; // without ip/tc there is nothing linewatch could have set up
    };
    let netns = own_netns();
    let have_dir = Path::new(STATE_DIR).is_dir();
    if have_dir {
        wait_for_dying_guards();
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

/// Undoes `state` (idempotent) and returns what it removed; errors are joined into one.
fn undo(tools: &Tools, state: &State) -> Result<Vec<String>, MirrorError> {
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
            let show = [
                "filter",
                "show",
                "dev",
                iface,
                dir.keyword(),
                "pref",
                &pref_s,
            ];
            match tools.tc(&show) {
                Ok(out) if filters_are_ours(&out, mirror) => {
                    let del = [
                        "filter",
                        "del",
                        "dev",
                        iface,
                        dir.keyword(),
                        "pref",
                        &pref_s,
                    ];
                    match tools.tc(&del) {
                        Ok(_) => done.push(format!(
                            "removed the tc {} filter (pref {pref}) mirroring {iface} into \
                             {mirror}",
                            dir.keyword()
                        )),
                        Err(f) if f.gone() => {}
                        Err(f) => errors.push(f.describe()),
                    }
                }
                Ok(_) => {} // nothing there, or someone else's: leave it
                Err(f) if f.gone() => {}
                Err(f) => errors.push(f.describe()),
            }
        }
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
    if iface_exists && matches!(state.clsact, Clsact::Created | Clsact::Linewatch) {
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
    for dir in [Direction::Ingress, Direction::Egress] {
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

/// True when `show` (the filters at one preference) has actions and each of them mirrors into
/// `mirror`, or into a device that no longer exists (tc prints `*` for it).
fn filters_are_ours(show: &str, mirror: &str) -> bool {
    let ours = format!("mirred (Egress Mirror to device {mirror})");
    let orphan = "mirred (Egress Mirror to device *)";
    let mut actions = 0;
    for line in show.lines().filter(|l| l.contains("action order")) {
        if !line.contains(&ours) && !line.contains(orphan) {
            return false;
        }
        actions += 1;
    }
    actions > 0
}

/// The preferences (`pref N`) in a `tc filter show` listing.
fn filter_prefs(show: &str) -> Vec<u32> {
    let mut prefs = Vec::new();
    for line in show.lines().filter(|l| l.starts_with("filter")) {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "pref" {
                if let Some(p) = words.next().and_then(|p| p.parse().ok()) {
                    prefs.push(p);
                }
            }
        }
    }
    prefs
}

/// The first (ingress, egress) preference pair of which neither number is used.
fn free_pref_pair(used: &[u32]) -> Option<(u32, u32)> {
    (0..PREF_PAIRS)
        .map(|k| (FIRST_PREF + 2 * k, FIRST_PREF + 2 * k + 1))
        .find(|(i, e)| !used.contains(i) && !used.contains(e))
}

/// The kind of qdisc at `ffff:` in a `tc qdisc show` listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QdiscKind {
    Clsact,
    Ingress,
}

fn clsact_kind(show: &str) -> Option<QdiscKind> {
    show.lines().find_map(|l| {
        if l.starts_with("qdisc clsact ffff:") {
            Some(QdiscKind::Clsact)
        } else if l.starts_with("qdisc ingress ffff:") {
            Some(QdiscKind::Ingress)
        } else {
            None
        }
    })
}

/// True when another linewatch run in this network namespace, on the same interface, has the
/// clsact qdisc as its own (so the qdisc is linewatch's, shared, and goes when it empties).
fn created_by_other_run(me: &State) -> bool {
    read_states().into_iter().filter_map(|(_, s)| s).any(|s| {
        s.pid != me.pid
            && s.netns == me.netns
            && s.interface == me.interface
            && matches!(s.clsact, Clsact::Created | Clsact::Linewatch)
    })
}

/// Device names in `ip -o link show` output (`7: lwm12@lwc12: <...` → `lwm12`).
fn link_names(show: &str) -> Vec<String> {
    show.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_owned())
        .collect()
}

/// The pid in a linewatch veth name (`lwm<pid>` or `lwc<pid>`).
fn lw_name_pid(name: &str) -> Option<u32> {
    let digits = name
        .strip_prefix(MIRROR_PREFIX)
        .or_else(|| name.strip_prefix(CAPTURE_PREFIX))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn check_interface_name(name: &str) -> Result<(), MirrorError> {
    let valid = !name.is_empty()
        && name.len() <= 15
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

/// Which tc hook a filter hangs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn keyword(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    fn from_keyword(word: &str) -> Option<Direction> {
        match word {
            "ingress" => Some(Direction::Ingress),
            "egress" => Some(Direction::Egress),
            _ => None,
        }
    }
}

/// Whose clsact qdisc the filters hang on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clsact {
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
    fn keyword(self) -> &'static str {
        match self {
            Clsact::Undecided => "undecided",
            Clsact::Created => "created",
            Clsact::Linewatch => "linewatch",
            Clsact::Foreign => "foreign",
        }
    }

    fn from_keyword(word: &str) -> Option<Clsact> {
        [
            Clsact::Undecided,
            Clsact::Created,
            Clsact::Linewatch,
            Clsact::Foreign,
        ]
        .into_iter()
        .find(|c| c.keyword() == word)
    }
}

/// What one run set up, as written to its state file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    pid: u32,
    /// The process's start time (field 22 of /proc/pid/stat): tells a reused pid apart.
    start_time: u64,
    guard_pid: u32,
    guard_start_time: u64,
    /// `readlink /proc/self/ns/net` of the run.
    netns: String,
    interface: String,
    mirror: String,
    capture: String,
    clsact: Clsact,
    filters: Vec<(Direction, u32)>,
}

impl State {
    fn render(&self) -> String {
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
            self.guard_pid,
            self.guard_start_time,
            self.netns,
            self.interface,
            self.mirror,
            self.capture,
            self.clsact.keyword(),
            filters.join(" ")
        )
    }

    fn parse(text: &str) -> Option<State> {
        let get = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        };
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
            guard_pid: get("guard_pid")?.parse().ok()?,
            guard_start_time: get("guard_start_time")?.parse().ok()?,
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

fn state_path(pid: u32) -> PathBuf {
    Path::new(STATE_DIR).join(format!("mirror-{pid}.state"))
}

/// True for `/run/linewatch/mirror-<digits>.state`.
fn is_state_file(path: &Path) -> bool {
    path.parent() == Some(Path::new(STATE_DIR))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("mirror-")?.strip_suffix(".state"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes the state file whole or not at all (temporary file, then rename).
fn write_state(path: &Path, state: &State) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| io::Write::write_all(&mut f, state.render().as_bytes()))?;
    fs::rename(&tmp, path)
}

/// Every state file in [`STATE_DIR`], parsed (None: unreadable or damaged).
fn read_states() -> Vec<(PathBuf, Option<State>)> {
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

fn ensure_state_dir() -> Result<(), MirrorError> {
    let fail = |e: io::Error| {
        MirrorError::new(format!(
            "cannot create {STATE_DIR} for linewatch's mirror state: {e} (needs root)"
        ))
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(STATE_DIR)
        .map_err(fail)?;
    fs::set_permissions(STATE_DIR, fs::Permissions::from_mode(0o700)).map_err(fail)
}

/// Waits (a few seconds at most) while a dead run's guard is still alive, i.e. cleaning up.
fn wait_for_dying_guards() {
    let deadline = Instant::now() + DYING_GUARD_WAIT;
    while Instant::now() < deadline {
        let busy = read_states()
            .into_iter()
            .filter_map(|(_, s)| s)
            .any(|s| !is_alive(s.pid, s.start_time) && is_alive(s.guard_pid, s.guard_start_time));
        if !busy {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The exclusive lock on `/run/linewatch/lock`, held while setting up or undoing a mirror.
#[derive(Debug)]
struct Lock {
    /// Closing it releases the lock.
    _file: fs::File,
}

impl Lock {
    fn acquire() -> Result<Lock, MirrorError> {
        let path = Path::new(STATE_DIR).join("lock");
        let fail = |e: io::Error| {
            MirrorError::new(format!("cannot lock {}: {e} (needs root)", path.display()))
        };
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(fail)?;
        loop {
            // SAFETY: flock on a descriptor that `file` owns and keeps open; no memory involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                return Ok(Lock { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(fail(e));
            }
        }
    }
}

/// The guard child and the write end of its stdin pipe.
#[derive(Debug)]
struct Guard {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Guard {
    fn spawn(state_path: &Path) -> Result<Guard, MirrorError> {
        let exe = std::env::current_exe().map_err(|e| {
            MirrorError::new(format!(
                "cannot find linewatch's own executable to start the mirror guard: {e}"
            ))
        })?;
        let mut cmd = Command::new(&exe);
        cmd.arg(GUARD_ARG)
            .arg(state_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir("/");
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (setsid, signal); it touches no shared memory.
        unsafe {
            cmd.pre_exec(|| {
                // Out of the terminal's session and process group before exec, so a Ctrl-C
                // meant for linewatch never reaches the guard, even in its first instant.
                libc::setsid();
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            MirrorError::new(format!(
                "cannot start the mirror guard ({} {GUARD_ARG}): {e}",
                exe.display()
            ))
        })?;
        let pipe = child.stdin.take();
        if let Some(p) = &pipe {
            set_cloexec(p.as_raw_fd());
        }
        Ok(Guard { child, pipe })
    }

    /// Closes the pipe (the guard then finds nothing left and exits) and reaps the guard,
    /// killing it if it does not exit in time.
    fn stop(mut self) {
        drop(self.pipe.take());
        let deadline = Instant::now() + GUARD_EXIT_WAIT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => thread::sleep(Duration::from_millis(5)),
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// Start time of process `pid` (field 22 of /proc/pid/stat), None when it does not exist or
/// is a zombie (it has exited).
fn proc_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next()?, "Z" | "X") {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

fn is_alive(pid: u32, start_time: u64) -> bool {
    pid != 0 && proc_start_time(pid) == Some(start_time)
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st == "Z" || st == "X")
        })
        .unwrap_or(false)
}

/// This process's network namespace, e.g. `net:[4026531840]`.
fn own_netns() -> String {
    fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// True when a process or a /run/netns mount still holds the namespace `id`.
fn netns_exists(id: &str) -> bool {
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
fn has_net_admin() -> bool {
    super::sys::has_cap(super::sys::CAP_NET_ADMIN) != Some(false)
}

/// Collapses whitespace (newlines included) and caps the length, for one-line messages.
fn one_line(text: &str) -> String {
    const MAX: usize = 600;
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX {
        let mut cut = MAX;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

/// Absolute paths of iproute2's `ip` and `tc`.
#[derive(Debug, Clone)]
struct Tools {
    ip: PathBuf,
    tc: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, MirrorError> {
        Ok(Tools {
            ip: find_tool("ip")?,
            tc: find_tool("tc")?,
        })
    }

    fn ip(&self, args: &[&str]) -> Result<String, Failure> {
        run(&self.ip, "ip", args)
    }

    fn tc(&self, args: &[&str]) -> Result<String, Failure> {
        run(&self.tc, "tc", args)
    }
}

/// Looks `name` up in PATH, then in the sbin directories a non-root PATH may lack.
fn find_tool(name: &str) -> Result<PathBuf, MirrorError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let fixed = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(fixed)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .ok_or_else(|| {
            MirrorError::new(format!(
                "the `{name}` command is missing (looked in PATH, /usr/sbin and /sbin): \
                 install iproute2 (apt-get install iproute2)"
            ))
        })
}

/// A command that failed: what was run, and its stderr (or exit status) on one line.
#[derive(Debug)]
struct Failure {
    command: String,
    detail: String,
}

impl Failure {
    fn no_device(&self) -> bool {
        ["Cannot find device", "does not exist", "No such device"]
            .iter()
            .any(|s| self.detail.contains(s))
    }

    /// The thing to delete is already gone.
    fn gone(&self) -> bool {
        self.no_device()
            || [
                "not found",
                "Cannot find specified filter chain",
                "Invalid handle",
                "doesn't exist",
                "No such file or directory",
            ]
            .iter()
            .any(|s| self.detail.contains(s))
    }

    fn describe(&self) -> String {
        format!("`{}` failed: {}", self.command, self.detail)
    }

    fn error(&self, context: &str) -> MirrorError {
        let perm = ["Operation not permitted", "Permission denied"]
            .iter()
            .any(|s| self.detail.contains(s));
        let fix = if perm {
            " (linewatch --mirror needs root or CAP_NET_ADMIN: run it with sudo)"
        } else {
            ""
        };
        MirrorError::new(format!("{context}: {}{fix}", self.describe()))
    }
}

fn run(program: &Path, name: &str, args: &[&str]) -> Result<String, Failure> {
    let command = format!("{name} {}", args.join(" "));
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            let stderr = one_line(&String::from_utf8_lossy(&out.stderr));
            let detail = if stderr.is_empty() {
                format!("exited with {}", out.status)
            } else {
                stderr
            };
            Err(Failure { command, detail })
        }
        Err(e) => Err(Failure {
            command,
            detail: format!("could not run {}: {e}", program.display()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            pid: 4242,
            start_time: 123456,
            guard_pid: 4243,
            guard_start_time: 123457,
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
        assert!(format!("{MIRROR_PREFIX}{}", u32::MAX).len() <= 15);
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

    #[test]
    fn prefs_and_pairs() {
        let show = "filter protocol all pref 49001 u32 chain 0 \n\
                    filter protocol all pref 49001 u32 chain 0 fh 800: ht divisor 1 \n  \
                    match 00000000/00000000 at 0\n\
                    filter protocol ip pref 100 u32 chain 0 \n";
        assert_eq!(filter_prefs(show), vec![49001, 49001, 100]);
        assert_eq!(free_pref_pair(&[]), Some((49001, 49002)));
        assert_eq!(free_pref_pair(&[49002]), Some((49003, 49004)));
        let all: Vec<u32> = (FIRST_PREF..FIRST_PREF + 2 * PREF_PAIRS)
            .step_by(2)
            .collect();
        assert_eq!(free_pref_pair(&all), None);
    }

    #[test]
    fn ownership_of_filters() {
        let ours = "filter protocol all u32 chain 0 fh 800::800 order 2048\n  \
                    match 00000000/00000000 at 0\n\
                    \taction order 1: mirred (Egress Mirror to device lwm9) pipe\n";
        assert!(filters_are_ours(ours, "lwm9"));
        assert!(!filters_are_ours(ours, "lwm91"));
        assert!(filters_are_ours(&ours.replace("lwm9)", "*)"), "lwm1"));
        let mixed = format!("{ours}\taction order 1: mirred (Egress Mirror to device eth9) pipe\n");
        assert!(!filters_are_ours(&mixed, "lwm9"));
        assert!(!filters_are_ours("", "lwm9"));
        assert!(!filters_are_ours(
            "filter protocol ip u32 fh 800::800 *flowid 1:1",
            "lwm9"
        ));
    }

    #[test]
    fn qdisc_kinds() {
        assert_eq!(
            clsact_kind("qdisc noqueue 0: root refcnt 2 \nqdisc clsact ffff: parent ffff:fff1 \n"),
            Some(QdiscKind::Clsact)
        );
        assert_eq!(
            clsact_kind("qdisc ingress ffff: parent ffff:fff1 ----------------"),
            Some(QdiscKind::Ingress)
        );
        assert_eq!(clsact_kind("qdisc pfifo_fast 0: root refcnt 2"), None);
    }

    #[test]
    fn link_name_parsing() {
        let show = "2: b0@a0: <BROADCAST> mtu 1500\\    link/ether 82:76\n\
                    3: lwm12@if4: <BROADCAST> mtu 3000\n4: lo: <LOOPBACK> mtu 65536\n";
        assert_eq!(link_names(show), vec!["b0", "lwm12", "lo"]);
    }

    #[test]
    fn errors_are_one_line() {
        let e = MirrorError::new("a\nb\r\n  c");
        assert_eq!(e.to_string(), "a b c");
        assert!(one_line(&"x ".repeat(1000)).len() < 700);
        let f = Failure {
            command: "tc qdisc add dev eth0 clsact".into(),
            detail: "RTNETLINK answers: Operation not permitted".into(),
        };
        assert!(f
            .error("cannot add")
            .to_string()
            .contains("needs root or CAP_NET_ADMIN"));
        assert!(check_interface_name("a/b").is_err());
        assert!(check_interface_name("0123456789abcdef").is_err());
        assert!(check_interface_name("eth0").is_ok());
    }

    #[test]
    fn mirror_veth_is_refused() {
        let spec = MirrorSpec {
            interface: "lwm77".into(),
            queues: 1,
        };
        let err = Mirror::create(&spec).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("linewatch --mirror created")));
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id();
        let start = proc_start_time(pid);
        assert!(start.is_some());
        assert!(is_alive(pid, start.unwrap_or(0)));
        assert!(!is_alive(pid, start.unwrap_or(0) + 1));
        assert!(!is_alive(0, 0));
        assert!(netns_exists(&own_netns()));
    }
}

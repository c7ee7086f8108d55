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
//!   queues each ([`MirrorSpec::queues`]) and an MTU of [`CAPTURE_MTU`]: veth accepts a native
//!   XDP program only while the peer's MTU fits one page minus XDP headroom and
//!   `skb_shared_info` (about 3.5k with 4 KiB pages).
//! * a `clsact` qdisc on IFACE, unless one is already there (then it is shared and left in
//!   place; a plain `ingress` qdisc is refused, since clsact cannot be added beside it);
//! * one filter per direction: the **steering program** (`engine/bpf/mirror_steer.bpf.c`, a
//!   cls_bpf direct-action program that tc loads from `/run/linewatch/lwm<pid>-steer.o`,
//!   written configured for this veth by `steer.rs` and removed once the filters are in). It
//!   sends each packet's clone into `lwm<pid>` with `bpf_clone_redirect`, on tx queue
//!   *symmetric hash of the address pair % Q*; veth hands a frame to the peer's rx queue of the
//!   same number, so both directions of a TCP connection (and its IP fragments, which carry no
//!   ports) reach one AF_XDP socket, one worker, and every response can be paired with its
//!   request on any number of queues. Where the program
//!   cannot be loaded (tc without BPF support, a kernel without cls_bpf), the filters are a
//!   `u32 match u32 0 0` with the action `mirred egress mirror dev lwm<pid>` (matchall and
//!   flower may be missing from the kernel; u32 is always there), which the kernel spreads
//!   over the queues by a hash that is not symmetric ([`Mirror::steering`] says which).
//!   Each filter sits at its own preference, the first free pair from 49001/49002 up, so that
//!   it never shares a priority with someone else's filter: u32 lists every table of a qdisc
//!   with the same priority together, whichever direction it hangs on.
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
//! A SIGKILLed process cannot clean up, so `create` also starts a **watchdog**: the same
//! executable re-run as `<exe> --internal-mirror-watchdog <state file>` ([`WATCHDOG_ARG`]; the
//! program's `main` must hand those arguments to [`watchdog_main`]). The watchdog is in a
//! session of its own (a Ctrl-C to the terminal does not reach it), ignores SIGINT and SIGHUP,
//! and blocks reading its stdin, a pipe whose only write end the parent holds (close-on-exec,
//! so no other child inherits it). When the parent dies, however it dies, the pipe reports
//! end-of-file and the watchdog undoes the state file and exits; SIGTERM does the same at once.
//! A normal [`Mirror::teardown`] (or drop) removes everything itself, deletes the state file
//! and then closes the pipe, so the watchdog finds nothing left and exits.
//!
//! If the watchdog was killed too, [`clean_leftovers`] (run by linewatch at the start of every
//! `--mirror` run) undoes every state file whose process is gone (process id *and* start time,
//! so a reused pid does not look alive), after giving a watchdog that is still cleaning up a
//! few seconds, and deletes `lwm<pid>`/`lwc<pid>` veths whose pid is not alive even without a
//! state file. A state file from another network namespace is left to runs in that namespace,
//! unless the namespace is gone (its devices went with it; only the file is removed). All of
//! this runs under an exclusive lock on `/run/linewatch/lock`, so runs, watchdogs and cleaners
//! never interleave their steps.
//!
//! # Layout
//!
//! This file holds the public API and the set-up ([`Mirror`]); every other job has a file of
//! its own. None of them uses this file and no two use each other: what several share (the
//! state, the tc vocabulary, the error) lives in the file of its own job.
//!
//! - `watchdog.rs`: the cleanup process ([`watchdog_main`]), which undoes through `teardown.rs`;
//! - `teardown.rs`: undoing one state file (run, watchdog and cleaner alike), and
//!   [`clean_leftovers`];
//! - `state.rs`: the state files, the lock, the names of linewatch's veths;
//! - `tc.rs`: the tc vocabulary and reading what `tc` and `ip` print;
//! - `steer.rs`: the steering program, configured for one mirror veth and written for tc;
//! - `command.rs`: running `ip` and `tc`, and what their failures mean;
//! - `procfs.rs`: processes and network namespaces, as /proc shows them;
//! - `error.rs`: [`MirrorError`].

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

mod command;
mod error;
mod procfs;
mod state;
mod steer;
mod tc;
mod teardown;
#[allow(unsafe_code)] // fork/exec, signals, setsid
mod watchdog;

pub use error::MirrorError;
pub use state::STATE_DIR;
pub use teardown::clean_leftovers;
pub use watchdog::{watchdog_main, WATCHDOG_ARG};

use command::Tools;
use procfs::{has_net_admin, own_netns, proc_start_time};
use state::{
    check_interface_name, created_by_other_run, ensure_state_dir, lw_name_pid, state_path,
    write_state, Clsact, Lock, State,
};
use steer::STEER_SECTION;
use tc::{clsact_kind, filter_prefs, free_pref_pair, Direction, QdiscKind, FIRST_PREF, PREF_PAIRS};
use teardown::undo;
use watchdog::Watchdog;

/// MTU of both veth ends: above Ethernet's 1500, below the largest MTU veth allows with a
/// native XDP program on 4 KiB pages (a page minus 256 bytes of XDP headroom, the
/// `skb_shared_info` and the Ethernet header: 3506 with the default `MAX_SKB_FRAGS`, 3058 with
/// the largest).
pub const CAPTURE_MTU: u32 = 3000;

/// Largest number of queues accepted for the veth pair.
const MAX_QUEUES: u32 = 1024;

/// What to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    /// The interface whose traffic is copied (left untouched otherwise).
    pub interface: String,
    /// Number of rx and tx queues of each veth end (at least 1): one AF_XDP socket per queue.
    pub queues: u32,
}

/// How a mirror keeps a flow's two directions together on the capture end's queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Steering {
    /// The steering program: both directions of a connection on one queue of `queues`.
    Steered {
        /// Queues of the capture end the flows are spread over.
        queues: u32,
    },
    /// u32 + mirred, because the program could not be loaded (`reason`): with more than one
    /// queue a flow's two directions may reach different queues.
    Mirred {
        /// Why the steering program is not in use, one line.
        reason: String,
    },
}

impl fmt::Display for Steering {
    /// The words for the start line: which filters, and what they do with flows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Steering::Steered { queues: 1 } => f.write_str("tc clsact + BPF clone"),
            Steering::Steered { queues } => write!(
                f,
                "tc clsact + BPF steering: both directions of each connection on one of \
                 {queues} queues"
            ),
            Steering::Mirred { reason } => write!(
                f,
                "tc clsact + u32 + mirred, without flow steering ({reason}): a connection's \
                 two directions may reach different queues"
            ),
        }
    }
}

/// A running mirror: owns the veth pair, the tc filters (and the clsact qdisc if it added it),
/// the state file and the watchdog process. Dropping it tears everything down.
#[derive(Debug)]
pub struct Mirror {
    state: State,
    steering: Steering,
    path: PathBuf,
    tools: Tools,
    watchdog: Option<Watchdog>,
    torn_down: bool,
}

impl Mirror {
    /// Sets up the veth pair and the tc mirroring of `spec.interface` (see the module doc).
    /// Needs root or CAP_NET_ADMIN, the `ip` and `tc` commands, and an executable whose `main`
    /// dispatches [`WATCHDOG_ARG`] to [`watchdog_main`]. On failure, whatever was already set
    /// up is removed again.
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
            state: State::new(pid, proc_start_time(pid).unwrap_or(0), own_netns(), iface),
            path: state_path(pid),
            steering: Steering::Steered {
                queues: spec.queues,
            },
            tools,
            watchdog: None,
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

    /// Copies the kernel dropped on their way into the mirror veth (the sending end's
    /// `tx_dropped`: its rings to the capture end were full), since the pair was made.
    pub fn dropped(&self) -> u64 {
        let path = format!("/sys/class/net/{}/statistics/tx_dropped", self.state.mirror);
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    }

    /// How flows are kept together on the capture end's queues.
    pub fn steering(&self) -> &Steering {
        &self.steering
    }

    /// Removes everything this mirror set up and stops its watchdog. Reports what could not be
    /// removed (the watchdog then retries, and the next run's [`clean_leftovers`] after it). A
    /// second call does nothing.
    pub fn teardown(&mut self) -> Result<(), MirrorError> {
        self.tear_down(None)
    }

    /// Each step writes the state file first, so the watchdog always knows at least as much
    /// as has been done.
    fn set_up(&mut self, queues: u32) -> Result<(), MirrorError> {
        self.save()?;
        let watchdog = Watchdog::spawn(&self.path)?;
        self.state.watchdog_pid = watchdog.pid();
        self.state.watchdog_start_time = proc_start_time(watchdog.pid()).unwrap_or(0);
        self.watchdog = Some(watchdog);
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
        for dir in Direction::BOTH {
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
        let object = steer::prepare(&self.tools, &mirror, queues);
        let result = self.add_filters(&iface, &mirror, object.as_deref().map_err(Clone::clone));
        if let Ok(path) = &object {
            // The kernel holds the program now; a kill before this line leaves the file to undo.
            let _ = fs::remove_file(path);
        }
        result
    }

    /// Adds the filters the state lists: the steering program loaded from `object`, or, when
    /// there is none or the first filter cannot load it, u32 + mirred for all of them.
    fn add_filters(
        &mut self,
        iface: &str,
        mirror: &str,
        object: Result<&Path, String>,
    ) -> Result<(), MirrorError> {
        let mut object = match object {
            Ok(path) => Some(path.display().to_string()),
            Err(reason) => {
                self.steering = Steering::Mirred { reason };
                None
            }
        };
        for (i, (dir, pref)) in self.state.filters.clone().into_iter().enumerate() {
            let pref = pref.to_string();
            let at = ["filter", "add", "dev", iface, dir.keyword(), "pref", &pref];
            if let Some(path) = &object {
                #[rustfmt::skip]
                let bpf = [
                    "protocol", "all", "handle", "1", "bpf", "direct-action", "object-file", path,
                    "section", STEER_SECTION,
                ];
                match self.tools.tc(&[&at[..], &bpf[..]].concat()) {
                    Ok(_) => continue,
                    // The first filter tells whether this tc and kernel can load it at all.
                    Err(f) if i == 0 && !f.not_permitted() => {
                        self.steering = Steering::Mirred {
                            reason: format!("the steering program did not load: {}", f.detail),
                        };
                        object = None;
                    }
                    Err(f) => {
                        return Err(f.error(&format!(
                            "cannot add the tc {} filter steering {iface} into {mirror}",
                            dir.keyword()
                        )))
                    }
                }
            }
            #[rustfmt::skip]
            let mirred = [
                "protocol", "all", "u32", "match", "u32", "0", "0", "action", "mirred", "egress",
                "mirror", "dev", mirror,
            ];
            self.tools
                .tc(&[&at[..], &mirred[..]].concat())
                .map_err(|f| {
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
        if let Some(watchdog) = self.watchdog.take() {
            watchdog.stop();
        }
        result.map(drop)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; the watchdog and clean_leftovers retry.
        let _ = self.tear_down(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_veth_is_refused() {
        let spec = MirrorSpec {
            interface: "lwm77".into(),
            queues: 1,
        };
        let err = Mirror::create(&spec).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("linewatch --mirror created")));
    }
}

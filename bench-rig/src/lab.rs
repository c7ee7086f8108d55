//! The lab: two network namespaces joined by one veth pair with N queues.
//!
//! ```text
//!   lwb-t-<pid>                                 lwb-r-<pid>
//!   lwbt<id>  (generator: AF_XDP TX or   ──veth, N queues──►  lwbr<id>  (receiver under test:
//!              AF_PACKET, one per queue)                        linewatch, rxdrop, tcpdump,
//!                                                               XDP_DROP)
//! ```
//!
//! The frames carry no address of the lab (their destination MAC is nobody's), so without an
//! XDP program the receiving kernel drops them right after the packet taps, as a switch's
//! mirror port delivers foreign traffic; nothing is answered and nothing is routed.
//!
//! Both ends are created inside their namespaces: no name ever exists in the host's namespace.
//! Dropping the [`Lab`] deletes both namespaces, which destroys the veth pair and every XDP
//! program on it. A lab whose owner was killed (SIGKILL) is removed by the next [`Lab::new`]:
//! the owner's pid is in the namespace names.

use std::fs;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// Prefix of the lab's namespace names; the owner's pid follows.
const NS_PREFIX: &str = "lwb-";

/// A failure to build or read the lab: one line, with the command that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabError(pub String);

impl std::fmt::Display for LabError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LabError {}

/// Runs `cmd`, returning its stdout; a failure becomes one line naming the command.
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

/// Packet counters of one interface, as `ip -s link` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames dropped on receive.
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Frames dropped on send.
    pub tx_dropped: u64,
}

impl LinkCounters {
    /// `self - before`, counter by counter.
    pub fn since(&self, before: &LinkCounters) -> LinkCounters {
        LinkCounters {
            rx_packets: self.rx_packets.saturating_sub(before.rx_packets),
            rx_dropped: self.rx_dropped.saturating_sub(before.rx_dropped),
            tx_packets: self.tx_packets.saturating_sub(before.tx_packets),
            tx_dropped: self.tx_dropped.saturating_sub(before.tx_dropped),
        }
    }
}

/// The lab. See the module doc.
#[derive(Debug)]
pub struct Lab {
    /// The generator's namespace.
    pub tx_ns: String,
    /// The receiver's namespace.
    pub rx_ns: String,
    /// The generator's end of the veth pair.
    pub tx_if: String,
    /// The receiver's end.
    pub rx_if: String,
    /// Queues of each end.
    pub queues: u32,
    torn_down: bool,
}

impl Lab {
    /// Removes labs of dead owners, then makes the namespaces and the veth pair (`queues` rx
    /// and tx queues each, MTU 1500) and brings both ends up.
    pub fn new(queues: u32) -> Result<Lab, LabError> {
        remove_orphans();
        let pid = std::process::id();
        // Interface names hold 15 bytes, and the kernel's NAPI threads are named
        // `napi/<ifname>-<id>` cut to 15: five digits keep the name whole up to the dash.
        let id = pid % 100_000;
        let mut lab = Lab {
            tx_ns: format!("{NS_PREFIX}t-{pid}"),
            rx_ns: format!("{NS_PREFIX}r-{pid}"),
            tx_if: format!("lwbt{id}"),
            rx_if: format!("lwbr{id}"),
            queues: queues.max(1),
            torn_down: false,
        };
        lab.build().inspect_err(|_| lab.teardown())?;
        Ok(lab)
    }

    fn build(&self) -> Result<(), LabError> {
        for ns in [&self.tx_ns, &self.rx_ns] {
            run(Command::new("ip").args(["netns", "add", ns]))?;
            // No IPv6 on the lab's links: router solicitations and MLD reports would add
            // frames the generator did not send to the counters the rig checks.
            run(Lab::exec_in(ns, "sysctl").args([
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]))?;
        }
        let q = self.queues.to_string();
        run(Command::new("ip").args([
            "-n",
            &self.tx_ns,
            "link",
            "add",
            &self.tx_if,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            &self.rx_if,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            &self.rx_ns,
        ]))?;
        for (ns, ifname) in [(&self.tx_ns, &self.tx_if), (&self.rx_ns, &self.rx_if)] {
            run(Command::new("ip").args(["-n", ns, "link", "set", ifname, "up"]))?;
        }
        Ok(())
    }

    /// A command that runs `program` inside namespace `ns` (through `ip netns exec`, which
    /// execs it: the child's pid is the program's own).
    pub fn exec_in(ns: &str, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]);
        cmd
    }

    /// The interface counters of `ifname` in `ns`.
    pub fn counters(ns: &str, ifname: &str) -> Result<LinkCounters, LabError> {
        let text =
            run(Command::new("ip").args(["-n", ns, "-s", "-j", "link", "show", "dev", ifname]))?;
        parse_link_counters(&text)
            .ok_or_else(|| LabError(format!("cannot read the counters of {ifname}: {text}")))
    }

    /// Turns threaded NAPI on or off on the receiving end. With it on, the veth's receive work
    /// (the XDP program, the copy into the AF_XDP UMEM) runs in a kernel thread that
    /// [`Lab::pin_napi`] can place, instead of in the sender's softirq.
    pub fn set_threaded_napi(&self, on: bool) -> Result<(), LabError> {
        let value = if on { "1" } else { "0" };
        run(Lab::exec_in(&self.rx_ns, "sh").args([
            "-c",
            &format!("echo {value} > /sys/class/net/{}/threaded", self.rx_if),
        ]))
        .map(|_| ())
    }

    /// The kernel threads of the receiving end's NAPI instances (they exist while the veth
    /// has NAPI: an XDP program attached, or GRO on).
    pub fn napi_threads(&self) -> Vec<u32> {
        let prefix = format!("napi/{}-", self.rx_if);
        let mut pids = Vec::new();
        let Ok(dir) = fs::read_dir("/proc") else {
            return pids;
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim_end().starts_with(&prefix) {
                pids.push(pid);
            }
        }
        pids.sort_unstable();
        pids
    }

    /// Pins every NAPI thread of the receiving end to `core`; returns how many were pinned.
    /// The threads appear a moment after the receiver attaches its XDP program, so this waits
    /// up to a second for them.
    pub fn pin_napi(&self, core: usize) -> Result<usize, LabError> {
        let mut threads = self.napi_threads();
        for _ in 0..20 {
            if !threads.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
            threads = self.napi_threads();
        }
        for &pid in &threads {
            crate::sys::set_affinity(pid, core).map_err(|e| {
                LabError(format!("cannot pin NAPI thread {pid} to core {core}: {e}"))
            })?;
        }
        Ok(threads.len())
    }

    /// Deletes both namespaces (and with them the veth pair and its XDP programs). Also done
    /// on drop; calling it twice is harmless.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        for ns in [&self.tx_ns, &self.rx_ns] {
            let _ = run(Command::new("ip").args(["netns", "delete", ns]));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// Deletes `lwb-*-<pid>` namespaces whose pid is no longer running.
fn remove_orphans() {
    let Ok(list) = run(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.get(2..).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(Command::new("ip").args(["netns", "delete", name]));
        }
    }
}

/// Reads the counters out of `ip -s -j link show` output.
fn parse_link_counters(text: &str) -> Option<LinkCounters> {
    let v: Value = serde_json::from_str(text).ok()?;
    let stats = v.get(0)?.get("stats64")?;
    let get = |dir: &str, key: &str| stats.get(dir)?.get(key)?.as_u64();
    Some(LinkCounters {
        rx_packets: get("rx", "packets")?,
        rx_dropped: get("rx", "dropped").unwrap_or(0),
        tx_packets: get("tx", "packets")?,
        tx_dropped: get("tx", "dropped").unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ip_json_counters() {
        let text = r#"[{"ifindex":2,"ifname":"lwbr1","stats64":{"rx":{"bytes":1500,"packets":10,"errors":0,"dropped":2,"over_errors":0,"multicast":0},"tx":{"bytes":300,"packets":3,"errors":0,"dropped":1,"carrier_errors":0,"collisions":0}}}]"#;
        assert_eq!(
            parse_link_counters(text),
            Some(LinkCounters {
                rx_packets: 10,
                rx_dropped: 2,
                tx_packets: 3,
                tx_dropped: 1
            })
        );
        assert_eq!(parse_link_counters("[]"), None);
        assert_eq!(parse_link_counters("not json"), None);
    }

    #[test]
    fn counters_since() {
        let a = LinkCounters {
            rx_packets: 5,
            rx_dropped: 1,
            tx_packets: 7,
            tx_dropped: 0,
        };
        let b = LinkCounters {
            rx_packets: 15,
            rx_dropped: 1,
            tx_packets: 9,
            tx_dropped: 3,
        };
        assert_eq!(
            b.since(&a),
            LinkCounters {
                rx_packets: 10,
                rx_dropped: 0,
                tx_packets: 2,
                tx_dropped: 3
            }
        );
    }
}

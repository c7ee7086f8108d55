//! The bench rig's lab: two network namespaces joined by one veth pair with N queues, built
//! on [`linewatch_testkit::lab`] (which names, makes and removes them), plus what only the
//! rig needs: no IPv6, interface counters, threaded NAPI and its kernel threads.
//!
//! ```text
//!   lwb-t-<pid>-<seq>                            lwb-r-<pid>-<seq>
//!   lwbt<id>  (generator: AF_XDP TX or   ──veth, N queues──►  lwbr<id>  (receiver under test:
//!              AF_PACKET, one per queue)                        linewatch, rxdrop, tcpdump,
//!                                                               XDP_DROP)
//! ```
//!
//! The frames carry no address of the lab (their destination MAC is nobody's), so without an
//! XDP program the receiving kernel drops them right after the packet taps, as a switch's
//! mirror port delivers foreign traffic; nothing is answered and nothing is routed.
//!
//! Dropping the [`Lab`] (or [`Lab::teardown`]) deletes both namespaces, which destroys the
//! veth pair and every XDP program on it. A lab whose owner was killed (SIGKILL) is removed by
//! the next lab made on the machine: the owner's pid is in the namespace names.

use std::fs;
use std::time::Duration;

pub use linewatch_testkit::lab::LabError;
use linewatch_testkit::lab::{self as testkit_lab, run, End, Netns};
use serde_json::Value;

/// The tag of the rig's namespace names.
const TAG: &str = "lwb";
/// The roles of the two namespaces.
const TX: &str = "t";
const RX: &str = "r";

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
    net: testkit_lab::Lab,
    /// The generator's namespace.
    pub tx_ns: Netns,
    /// The receiver's namespace.
    pub rx_ns: Netns,
    /// The generator's end of the veth pair.
    pub tx_if: String,
    /// The receiver's end.
    pub rx_if: String,
    /// Queues of each end.
    pub queues: u32,
}

impl Lab {
    /// Makes the namespaces (without IPv6) and the veth pair (`queues` rx and tx queues each,
    /// MTU 1500) and brings both ends up.
    ///
    /// # Errors
    /// When a namespace or the veth pair cannot be made (what was made is removed again).
    pub fn new(queues: u32) -> Result<Lab, LabError> {
        let net = testkit_lab::Lab::new(TAG, &[TX, RX])?;
        // Interface names hold 15 bytes, and the kernel's NAPI threads are named
        // `napi/<ifname>-<id>` cut to 15: five digits keep the name whole up to the dash. The
        // pid (not the lab's sequence number) keeps them apart from another rig's, since the
        // threads are the whole machine's.
        let id = std::process::id() % 100_000;
        let (tx_if, rx_if) = (format!("lwbt{id}"), format!("lwbr{id}"));
        for ns in net.namespaces() {
            // No IPv6 on the lab's links: router solicitations and MLD reports would add
            // frames the generator did not send to the counters the rig checks. Before the
            // veth exists, so `default` covers it.
            run(ns.exec("sysctl").args([
                "-q",
                "-w",
                "net.ipv6.conf.all.disable_ipv6=1",
                "net.ipv6.conf.default.disable_ipv6=1",
            ]))?;
        }
        let queues = queues.max(1);
        net.add_veth(End::new(TX, &tx_if), End::new(RX, &rx_if), queues)?;
        Ok(Lab {
            tx_ns: net.ns(TX).clone(),
            rx_ns: net.ns(RX).clone(),
            net,
            tx_if,
            rx_if,
            queues,
        })
    }

    /// The interface counters of `ifname` in `ns`.
    ///
    /// # Errors
    /// When ip fails or its output has no counters.
    pub fn counters(ns: &Netns, ifname: &str) -> Result<LinkCounters, LabError> {
        let text = ns.ip(&["-s", "-j", "link", "show", "dev", ifname])?;
        parse_link_counters(&text)
            .ok_or_else(|| LabError(format!("cannot read the counters of {ifname}: {text}")))
    }

    /// Turns threaded NAPI on or off on the receiving end. With it on, the veth's receive work
    /// (the XDP program, the copy into the AF_XDP UMEM) runs in a kernel thread that
    /// [`Lab::pin_napi`] can place, instead of in the sender's softirq.
    ///
    /// # Errors
    /// When the write fails (before an XDP program is attached the veth has no NAPI: EIO).
    pub fn set_threaded_napi(&self, on: bool) -> Result<(), LabError> {
        let value = if on { "1" } else { "0" };
        run(self.rx_ns.exec("sh").args([
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
    ///
    /// # Errors
    /// When a thread cannot be pinned.
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
        self.net.teardown();
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

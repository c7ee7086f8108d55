//! Who holds an XDP program, for the error when an interface already has one: a program
//! attached through netlink goes with `ip link set dev IFACE xdp… off`, but one attached
//! through a bpf_link (linewatch's way) cannot be replaced that way ("Can't replace active BPF
//! XDP link"): only the process holding the link can let it go, so the error names it, found
//! by its bpf_link file descriptors in `/proc/*/fdinfo`.

use std::fs;

/// The program id and interface index of an XDP bpf_link, from its `/proc/<pid>/fdinfo/<fd>`
/// text (`link_type:\txdp`, `prog_id:\tN`, `ifindex:\tN`).
fn xdp_link_of(fdinfo: &str) -> Option<(u32, u32)> {
    let get = |key: &str| {
        fdinfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(str::trim)
    };
    if get("link_type")? != "xdp" {
        return None;
    }
    Some((get("prog_id")?.parse().ok()?, get("ifindex")?.parse().ok()?))
}

/// The processes holding a bpf_link that attaches XDP program `prog_id` to `ifindex`: (pid,
/// command name).
fn xdp_link_holders(prog_id: u32, ifindex: u32) -> Vec<(u32, String)> {
    let mut holders = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return holders;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:bpf_link")
                && fs::read_to_string(p.path().join("fdinfo").join(fd.file_name()))
                    .ok()
                    .and_then(|t| xdp_link_of(&t))
                    == Some((prog_id, ifindex))
        });
        if holds {
            let comm = fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            holders.push((pid, comm.trim().to_owned()));
        }
    }
    holders
}

/// What removes XDP program `prog_id` found on `ifname` (index `ifindex`; `keyword` is the
/// `ip link` mode keyword, e.g. `xdpdrv`), in one sentence: `ip link set … off` where it was
/// attached by netlink; where a bpf_link holds it (linewatch's way), that command fails
/// ("Can't replace active BPF XDP link"), and only the process holding the link can let go, so
/// this names it (its pid, found in `/proc/*/fdinfo`).
pub(super) fn xdp_owner_fix(ifname: &str, ifindex: u32, prog_id: u32, keyword: &str) -> String {
    let holders = xdp_link_holders(prog_id, ifindex);
    if holders.is_empty() {
        return format!(
            "remove it with: ip link set dev {ifname} {keyword} off (if that says it cannot \
             replace an active BPF XDP link, stop the process that holds the link: bpftool \
             link show)"
        );
    }
    let named: Vec<String> = holders
        .iter()
        .map(|(pid, comm)| format!("{comm} pid {pid}"))
        .collect();
    let pids: Vec<String> = holders.iter().map(|(pid, _)| pid.to_string()).collect();
    format!(
        "it is attached through a bpf_link that {} holds: stop it (kill {}) and the program \
         detaches",
        named.join(", "),
        pids.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An XDP bpf_link's fdinfo as Linux 6.18 prints it.
    #[test]
    fn xdp_link_fdinfo() {
        let fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1059\nlink_type:\txdp\n\
                      link_id:\t7\nprog_tag:\t3b185187f1855c4c\nprog_id:\t42\nifindex:\t5\n";
        assert_eq!(xdp_link_of(fdinfo), Some((42, 5)));
        assert_eq!(xdp_link_of(&fdinfo.replace("xdp\n", "tcx\n")), None);
        assert_eq!(xdp_link_of("pos:\t0\n"), None);
        // No process holds program id 0 on interface 0: the netlink advice, with the way out.
        let fix = xdp_owner_fix("eth9", 0, 0, "xdpdrv");
        assert!(fix.starts_with("remove it with: ip link set dev eth9 xdpdrv off"));
    }
}

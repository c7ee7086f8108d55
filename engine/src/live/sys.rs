//! Small system facts live capture needs, each with a one-line error a user can act on:
//! privileges, the interface and its queues, the memlock limit, errno text; and the ones the
//! bench rig shares with it (public): the monotonic clock, CPU affinity, the interface index.

use std::ffi::CString;
use std::io;

use super::error::LiveError;

/// Text of a positive errno value, without Rust's " (os error N)" suffix.
pub(crate) fn errno_text(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// libbpf and the afxdp crate return negative errno values; `std::io::Error` prints those as
/// "Unknown error -N". This turns either sign into the positive errno.
pub(crate) fn errno_of(ret: i32) -> i32 {
    ret.checked_abs().unwrap_or(0)
}

/// The errno of a failed call to one of libbpf 0.3's thin syscall wrappers
/// (`bpf_map_update_elem`, `bpf_link_create`, `bpf_prog_test_run*`, …): they return the
/// syscall's -1 and leave the cause in `errno`, so [`errno_of`] alone would read every failure
/// as EPERM. Other negative values are libbpf's own -errno. Call it right after the failed call.
pub(crate) fn bpf_errno(ret: i32) -> i32 {
    if ret == -1 {
        io::Error::last_os_error()
            .raw_os_error()
            .filter(|&e| e > 0)
            .unwrap_or(libc::EPERM)
    } else {
        errno_of(ret)
    }
}

/// The errno inside an `io::Error` made from a libbpf return value (either sign).
pub(crate) fn errno_of_io(e: &io::Error) -> i32 {
    e.raw_os_error().map(errno_of).unwrap_or(0)
}

/// Capabilities live capture needs (bit numbers from <linux/capability.h>).
pub(crate) const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_IPC_LOCK: u32 = 14;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// The one-line fix for a privilege failure.
pub(crate) const PRIVILEGE_FIX: &str = "run as root, or grant the binary the capabilities: \
     setcap cap_net_admin,cap_net_raw,cap_bpf,cap_ipc_lock+ep $(which linewatch)";

/// This process's effective capabilities (`CapEff` of /proc/self/status), if readable.
pub(crate) fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Whether the effective set holds `cap`; `None` when it cannot be read.
pub(crate) fn has_cap(cap: u32) -> Option<bool> {
    effective_caps().map(|caps| caps & (1u64 << cap) != 0)
}

/// Checks that this process may load XDP programs and open AF_XDP sockets.
pub(crate) fn check_privileges() -> Result<(), LiveError> {
    let Some(caps) = effective_caps() else {
        // Cannot tell: let the kernel decide (its EPERM is mapped to the same advice).
        return Ok(());
    };
    let has = |cap: u32| caps & (1u64 << cap) != 0;
    let mut missing = Vec::new();
    if !has(CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !has(CAP_NET_RAW) {
        missing.push("CAP_NET_RAW");
    }
    if !has(CAP_BPF) && !has(CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(LiveError(format!(
            "live capture needs {} (not held by this process): {PRIVILEGE_FIX}",
            missing.join(", ")
        )))
    }
}

/// Whether the process holds CAP_IPC_LOCK (locked memory beyond the memlock limit).
pub(crate) fn has_ipc_lock() -> bool {
    has_cap(CAP_IPC_LOCK) == Some(true)
}

/// The interface's index, or an error naming it.
///
/// # Errors
/// When no interface of that name exists in this network namespace.
pub fn ifindex(name: &str) -> Result<u32, LiveError> {
    let not_found = || {
        LiveError(format!(
            "interface '{}' not found (list them with: ip link)",
            name.escape_debug()
        ))
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(not_found());
    }
    let c = CString::new(name).map_err(|_| not_found())?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        Err(not_found())
    } else {
        Ok(index)
    }
}

/// The interface's receive queues: `ethtool -l`'s combined channels (or rx channels when it
/// has no combined ones); the count of `/sys/class/net/IFACE/queues/rx-*` when the driver does
/// not answer ETHTOOL_GCHANNELS.
pub(crate) fn rx_queues(name: &str) -> u32 {
    if let Some(n) = ethtool_channels(name) {
        return n;
    }
    let dir = format!("/sys/class/net/{name}/queues");
    let counted = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count()
        })
        .unwrap_or(1);
    u32::try_from(counted).unwrap_or(1).max(1)
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

const ETHTOOL_GCHANNELS: u32 = 0x3c;
const SIOCETHTOOL: libc::c_ulong = 0x8946;

fn ethtool_channels(name: &str) -> Option<u32> {
    let mut channels = EthtoolChannels {
        cmd: ETHTOOL_GCHANNELS,
        ..EthtoolChannels::default()
    };
    siocethtool(name, &mut channels).ok()?;
    let n = if channels.combined_count > 0 {
        channels.combined_count
    } else {
        channels.rx_count
    };
    (n > 0).then_some(n)
}

/// Makes the `SIOCETHTOOL` ioctl on interface `name` with `data` as the command buffer (an
/// `ethtool_*` struct, or its bytes, whose first field is the command). `data` must be as
/// large as its command reads and writes: the kernel trusts the sizes written in it. Returns
/// the positive errno on failure (ENODEV for a name the kernel cannot take).
pub(crate) fn siocethtool<T: ?Sized>(name: &str, data: &mut T) -> Result<(), i32> {
    // SAFETY: an all-zero ifreq is valid; the name is copied in below within its bounds.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= ifr.ifr_name.len() {
        return Err(libc::ENODEV);
    }
    for (dst, src) in ifr.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (data as *mut T).cast();
    // SAFETY: plain socket creation; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    // SAFETY: SIOCETHTOOL reads `ifr` and reads and writes `data` through `ifru_data`; `data`
    // is borrowed for the call and sized for its command by the caller (see above).
    let ret = unsafe { libc::ioctl(fd, SIOCETHTOOL, &raw mut ifr) };
    let errno = io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO);
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno)
    }
}

/// The interface's MTU, from sysfs.
pub(crate) fn mtu(name: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{name}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Lifts the memlock limit as far as this process may (the UMEM is locked memory). Returns the
/// soft limit in bytes afterwards (`u64::MAX` for unlimited).
pub(crate) fn raise_memlock() -> u64 {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } == 0 {
        return u64::MAX;
    }
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a valid rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut current) } == 0 {
        // Raise the soft limit to the hard one, which needs no privilege.
        let raised = libc::rlimit {
            rlim_cur: current.rlim_max,
            rlim_max: current.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) } == 0 {
            return current.rlim_max;
        }
        return current.rlim_cur;
    }
    0
}

/// The AF_XDP sockets open in this process (fds), from /proc/self/fd.
pub fn xdp_socket_fds() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut fds = Vec::new();
    for e in entries.filter_map(Result::ok) {
        let Some(fd) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let mut domain: libc::c_int = 0;
        let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
        // SAFETY: getsockopt writes at most `len` bytes into `domain`; a non-socket fd
        // just fails with ENOTSOCK.
        let ret = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_DOMAIN,
                (&raw mut domain).cast(),
                &mut len,
            )
        };
        if ret == 0 && domain == libc::AF_XDP {
            fds.push(fd);
        }
    }
    fds
}

/// Pins the calling thread to `core`. Returns the OS error text on failure.
pub(crate) fn pin_to_core(core: usize) -> Result<(), String> {
    if core >= CPU_SET_CORES {
        return Err(format!("core {core} is out of range"));
    }
    set_affinity(0, core).map_err(|e| errno_text(e.raw_os_error().unwrap_or(0)))
}

/// Cores a `cpu_set_t` holds (glibc's `CPU_SETSIZE`).
const CPU_SET_CORES: usize = 1024;

/// Restricts thread or process `pid` (0: the calling thread) to `core`.
///
/// # Errors
/// When `core` is out of range, or the kernel refuses (no such pid, core not allowed).
pub fn set_affinity(pid: u32, core: usize) -> io::Result<()> {
    if core >= CPU_SET_CORES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "core out of range",
        ));
    }
    // SAFETY: a zeroed cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `core` is below CPU_SETSIZE, checked above.
    unsafe { libc::CPU_SET(core, &mut set) };
    let pid = libc::pid_t::try_from(pid).unwrap_or(0);
    // SAFETY: sched_setaffinity reads a valid, sized cpu_set_t.
    let ret = unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(&set), &set) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The cores this process may run on.
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let ret =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ret != 0 {
        return vec![0];
    }
    // SAFETY: CPU_ISSET reads within the set for i < CPU_SETSIZE.
    (0..CPU_SET_CORES)
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect()
}

/// Nanoseconds in a second.
pub const NS_PER_SEC: u64 = 1_000_000_000;

/// CLOCK_MONOTONIC in nanoseconds: what `Instant` reads on Linux, and the clock of the bench
/// rig's send stamps.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `clock` in nanoseconds, 0 if it cannot be read.
fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into a valid timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0) * NS_PER_SEC + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// The IPv4 and IPv6 addresses configured on interface `name` (`getifaddrs`), for the
/// connection guard's allow-list. An interface without addresses gives an empty list; an
/// interface that does not exist gives an error.
pub fn interface_addresses(name: &str) -> Result<Vec<std::net::IpAddr>, LiveError> {
    ifindex(name)?;
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        let e = io::Error::last_os_error();
        return Err(LiveError(format!(
            "cannot list the addresses of {name}: {e}"
        )));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated interface name owned by the list.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type and size.
        let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: an AF_INET sockaddr is a sockaddr_in.
            let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
            out.push(std::net::IpAddr::from(
                u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
            ));
        } else if family == libc::AF_INET6 {
            // SAFETY: an AF_INET6 sockaddr is a sockaddr_in6.
            let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
            out.push(std::net::IpAddr::from(sin6.sin6_addr.s6_addr));
        }
    }
    // SAFETY: the head getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(head) };
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(b >= a && a > 0);
    }

    #[test]
    fn affinity_to_an_allowed_core_and_not_beyond_the_set() {
        let cores = allowed_cores();
        assert!(!cores.is_empty());
        // A thread of its own, so the test harness's thread keeps its affinity.
        let core = cores[cores.len() - 1];
        std::thread::spawn(move || {
            set_affinity(0, core).expect("an allowed core");
            assert_eq!(allowed_cores(), [core]);
        })
        .join()
        .expect("pinned thread");
        let err = set_affinity(0, CPU_SET_CORES).expect_err("out of range");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(
            pin_to_core(CPU_SET_CORES),
            Err(format!("core {CPU_SET_CORES} is out of range"))
        );
    }
}

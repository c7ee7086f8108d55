//! The XDP side of the connection guard (`--block-scanners`): the blocklist that the XDP
//! programs consult.
//!
//! A source address in the blocklist has its new connections refused: the program drops its
//! pure SYNs (SYN set, ACK clear) and nothing else, so the source's established connections,
//! RSTs, ACKs, UDP and ICMP go on. The capture program (`linewatch_xdp`) checks it first when
//! [`CaptureOptions::block`] is set; the block program (`linewatch_block`, [`XdpRole::Block`])
//! always checks it and passes everything else. Each blocked SYN counts in the entry's value
//! (per source) and in the `blocked` counter (in total).
//!
//! A [`Blocklist`] is a handle of its own on the program's maps (duplicated file descriptors):
//! valid after the [`XdpProgram`] it came from is dropped (the maps then live on until the
//! handle is dropped too, but no program reads them any more), and movable to the thread that
//! decides who is blocked.
//!
//! [`CaptureOptions::block`]: super::xdp::CaptureOptions::block
//! [`XdpRole::Block`]: super::xdp::XdpRole::Block
//! [`XdpProgram`]: super::xdp::XdpProgram

use std::ffi::c_int;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libbpf_sys as bpf;

use super::error::LiveError;
use super::maps::{percpu_sum, BLOCKED_SLOT};
use super::sys::{bpf_errno, errno_text};

/// Sources each blocklist map holds (`max_entries` of `block_v4` and of `block_v6`).
pub const BLOCKLIST_CAPACITY: usize = 65536;

/// The blocklist of a loaded XDP program: add and remove source addresses, read what was
/// dropped.
///
/// A blocked source's pure SYNs (SYN set, ACK clear) are dropped, nothing else: its established
/// connections, RSTs, ACKs, UDP and ICMP go on. The capture program checks the list only when
/// loaded with [`CaptureOptions::block`]; the block program ([`XdpRole::Block`]) always does.
/// The handle holds duplicates of the maps' descriptors: it stays valid after the
/// [`XdpProgram`] it came from is dropped (no program reads the maps then), and can be moved
/// to another thread.
///
/// [`CaptureOptions::block`]: super::xdp::CaptureOptions::block
/// [`XdpRole::Block`]: super::xdp::XdpRole::Block
/// [`XdpProgram`]: super::xdp::XdpProgram
#[derive(Debug)]
pub struct Blocklist {
    v4: OwnedFd,
    v6: OwnedFd,
    counters: OwnedFd,
    cpus: usize,
}

/// An address as the blocklist keys it: the map it belongs in and its bytes as on the wire.
enum Key {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Key {
    /// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are IPv4 on the wire: keyed as IPv4.
    fn of(addr: IpAddr) -> Key {
        match addr.to_canonical() {
            IpAddr::V4(a) => Key::V4(a.octets()),
            IpAddr::V6(a) => Key::V6(a.octets()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Key::V4(b) => b,
            Key::V6(b) => b,
        }
    }
}

/// A duplicate of `fd` (close-on-exec) that this process owns.
fn dup(fd: c_int, what: &str) -> Result<OwnedFd, LiveError> {
    // SAFETY: F_DUPFD_CLOEXEC only reads `fd`; a failure is reported as -1.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(LiveError(format!(
            "cannot duplicate the XDP program's {what} map for the blocklist: {}",
            errno_text(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
        )));
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

impl Blocklist {
    /// Takes duplicates of the maps' descriptors (`v4`, `v6`, `counters`: block_v4, block_v6
    /// and counters_map; `cpus` possible CPUs for the per-CPU counters).
    pub(crate) fn new(
        v4: c_int,
        v6: c_int,
        counters: c_int,
        cpus: usize,
    ) -> Result<Blocklist, LiveError> {
        Ok(Blocklist {
            v4: dup(v4, "block_v4")?,
            v6: dup(v6, "block_v6")?,
            counters: dup(counters, "counters")?,
            cpus: cpus.max(1),
        })
    }

    fn map_of(&self, key: &Key) -> c_int {
        match key {
            Key::V4(_) => self.v4.as_raw_fd(),
            Key::V6(_) => self.v6.as_raw_fd(),
        }
    }

    /// Blocks `addr`: from now on its pure SYNs are dropped. Blocking an address that is
    /// already blocked changes nothing (its count stays). Fails when the blocklist of its
    /// family already holds [`BLOCKLIST_CAPACITY`] sources.
    pub fn insert(&self, addr: IpAddr) -> Result<(), LiveError> {
        let key = Key::of(addr);
        let zero: u64 = 0;
        // SAFETY: the key has the map's key size (4 or 16 bytes, by the map chosen for it) and
        // the value its value size (8 bytes); the kernel only reads them.
        let ret = unsafe {
            bpf::bpf_map_update_elem(
                self.map_of(&key),
                key.bytes().as_ptr().cast(),
                (&raw const zero).cast(),
                u64::from(bpf::BPF_NOEXIST),
            )
        };
        if ret == 0 {
            return Ok(());
        }
        match bpf_errno(ret) {
            libc::EEXIST => Ok(()),
            libc::E2BIG => Err(LiveError(format!(
                "cannot block {addr}: the blocklist is full ({BLOCKLIST_CAPACITY} sources)"
            ))),
            errno => Err(LiveError(format!(
                "cannot add {addr} to the XDP blocklist: {}",
                errno_text(errno)
            ))),
        }
    }

    /// Unblocks `addr`; false when it was not blocked.
    pub fn remove(&self, addr: IpAddr) -> Result<bool, LiveError> {
        let key = Key::of(addr);
        // SAFETY: the key has the map's key size; the kernel only reads it.
        let ret =
            unsafe { bpf::bpf_map_delete_elem(self.map_of(&key), key.bytes().as_ptr().cast()) };
        if ret == 0 {
            return Ok(true);
        }
        match bpf_errno(ret) {
            libc::ENOENT => Ok(false),
            errno => Err(LiveError(format!(
                "cannot remove {addr} from the XDP blocklist: {}",
                errno_text(errno)
            ))),
        }
    }

    /// SYNs dropped for a blocked source so far, in total (the program's `blocked` counter,
    /// summed over CPUs; removing an address does not lower it).
    pub fn dropped(&self) -> u64 {
        percpu_sum(self.counters.as_raw_fd(), BLOCKED_SLOT, self.cpus).unwrap_or(0)
    }

    /// SYNs dropped from `addr` since it was blocked; `None` when it is not blocked.
    pub fn dropped_from(&self, addr: IpAddr) -> Option<u64> {
        let key = Key::of(addr);
        let mut value: u64 = 0;
        // SAFETY: the key has the map's key size; the kernel writes the 8-byte value.
        let ret = unsafe {
            bpf::bpf_map_lookup_elem(
                self.map_of(&key),
                key.bytes().as_ptr().cast(),
                (&raw mut value).cast(),
            )
        };
        (ret == 0).then_some(value)
    }
}

//! A lossy client path for the lab: [`Dropper::attach`] compiles `bpf/drop_data.bpf.c` with
//! clang, attaches it with tc (clsact, egress, direct-action) to the client's veth, where it
//! silently drops a given share of the TCP segments that carry data, and
//! [`Dropper::counters`] reads how many data segments it saw and dropped from its map (looked up
//! by its unique name through the bpf syscall: no bpffs pin, no bpftool).
//!
//! [`arrivals_to`] reads a capture's client-to-server segments by sequence number, to prove
//! without linewatch that the loss made holes.
//!
//! [`small_segments`] sets an MTU on both ends of the lab's veth pair and caps GSO at one
//! segment, so every segment on the wire is one MSS and a long request spans several (with GSO
//! a whole request is one super-frame, and dropping it leaves no hole to reassemble).
//!
//! The program, its map and the clsact go away with the client namespace when the lab drops.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use linewatch_testkit::tools::path_of;
use pcap_file::pcap::PcapReader;

use super::lab::Lab;
use super::process::run_ok;

/// The program's source, next to this module.
const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/live/bpf/drop_data.bpf.c"
);
/// The ELF section tc loads.
const SECTION: &str = "tc";
/// How long clang may take.
const CLANG_TIMEOUT: Duration = Duration::from_secs(60);
/// The map's keys (see the program).
const SEEN: u32 = 0;
const DROPPED: u32 = 1;
/// The kernel keeps 15 characters of an object's name.
const MAP_NAME_MAX: usize = 15;

/// Makes each dropper's map name unique within this process (the pid makes it unique across).
static DROPPERS: AtomicU32 = AtomicU32::new(0);

/// What the dropper counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropCounts {
    /// Data-carrying IPv4 TCP segments that reached the hook (retransmissions included).
    pub data_segments: u64,
    pub dropped: u64,
}

/// The attached program, known by its map's name.
#[derive(Debug)]
pub struct Dropper {
    map_name: String,
    pub per_mille: u32,
    pub object: PathBuf,
}

impl Dropper {
    /// Compiles the program for `per_mille` (0..=1000) into the lab's directory and attaches it
    /// to the egress of the client's veth.
    ///
    /// # Panics
    /// When clang or tc fail (with their output).
    pub fn attach(lab: &Lab, per_mille: u32) -> Dropper {
        assert!(per_mille <= 1000, "a drop rate is at most 1000 per mille");
        let map_name = format!(
            "lwd{}_{}",
            std::process::id(),
            DROPPERS.fetch_add(1, Ordering::Relaxed)
        );
        assert!(
            map_name.len() <= MAP_NAME_MAX,
            "map name {map_name} too long"
        );
        let object = lab.dir.join("drop_data.bpf.o");
        compile(&object, per_mille, &map_name);
        let dev = lab.client_veth.as_str();
        let client = lab.client();
        let tc = |args: &[&str]| client.tc(args).unwrap_or_else(|e| panic!("{e}"));
        tc(&["qdisc", "add", "dev", dev, "clsact"]);
        let obj = object.to_str().expect("utf-8 path");
        tc(&[
            "filter",
            "add",
            "dev",
            dev,
            "egress",
            "bpf",
            "direct-action",
            "obj",
            obj,
            "sec",
            SECTION,
        ]);
        let shown = tc(&["filter", "show", "dev", dev, "egress"]);
        assert!(
            shown.contains("direct-action") && shown.contains("drop_data"),
            "the dropper is not attached to {dev}'s egress:\n{shown}"
        );
        Dropper {
            map_name,
            per_mille,
            object,
        }
    }

    /// Reads the program's counters.
    ///
    /// # Panics
    /// When the map cannot be found or read (the program is gone, or the bpf syscall failed).
    pub fn counters(&self) -> DropCounts {
        let fd = bpf::map_by_name(&self.map_name)
            .unwrap_or_else(|e| panic!("the dropper's map {}: {e}", self.map_name));
        let read = |key| {
            bpf::lookup_u64(&fd, key)
                .unwrap_or_else(|e| panic!("reading {}[{key}]: {e}", self.map_name))
        };
        DropCounts {
            data_segments: read(SEEN),
            dropped: read(DROPPED),
        }
    }
}

/// `clang -O2 -g -target bpf -c SOURCE -o object` with the two parameters.
fn compile(object: &Path, per_mille: u32, map_name: &str) {
    let mut cmd = std::process::Command::new(path_of("clang"));
    cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-DDROP_PER_MILLE={per_mille}"))
        .arg(format!("-DCOUNTERS_NAME={map_name}"))
        .args(["-c", SOURCE, "-o"])
        .arg(object);
    run_ok("clang -target bpf", cmd, CLANG_TIMEOUT);
}

/// Sets `mtu` on both ends of the lab's veth pair and GSO to one segment per packet.
///
/// # Panics
/// When ip fails.
pub fn small_segments(lab: &Lab, mtu: u32) {
    let mtu = mtu.to_string();
    for (ns, dev) in [
        (lab.server(), &lab.server_veth),
        (lab.client(), &lab.client_veth),
    ] {
        ns.ip(&["link", "set", "dev", dev, "mtu", &mtu, "gso_max_segs", "1"])
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// What the client-to-server half of a capture shows of the loss: data segments that arrived
/// beyond the next byte expected (a hole before them), and data segments that were wholly or
/// partly old (retransmissions, filling a hole or repeating bytes already seen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Arrivals {
    pub data_segments: u64,
    pub after_hole: u64,
    pub old_data: u64,
}

/// Reads the classic pcap at `path` (Ethernet) with the pcap-file crate and follows every
/// IPv4 TCP flow to `port` by sequence number, independently of linewatch: the proof that the
/// dropper made holes the server's TCP had to fill.
///
/// # Panics
/// When the file is not a readable pcap.
pub fn arrivals_to(path: &Path, port: u16) -> Arrivals {
    const ETH_HLEN: usize = 14;
    const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
    const IPPROTO_TCP: u8 = 6;
    const TCP_SYN: u8 = 0x02;
    let bytes = std::fs::read(path).expect("reading the capture");
    let mut reader = PcapReader::new(&bytes[..])
        .unwrap_or_else(|e| panic!("{}: not a pcap: {e}", path.display()));
    let be16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().expect("4"));
    // Per flow (client address and port): the next sequence number expected.
    let mut next: HashMap<([u8; 4], u16), u32> = HashMap::new();
    let mut seen = Arrivals::default();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let frame = &packet.data[..];
        if frame.len() < ETH_HLEN + 20 || frame[12..14] != ETHERTYPE_IPV4 {
            continue;
        }
        let ip = &frame[ETH_HLEN..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip[9] != IPPROTO_TCP || ip.len() < ihl + 20 {
            continue;
        }
        let tcp = &ip[ihl..];
        if be16(tcp, 2) != port {
            continue;
        }
        let headers = ihl + usize::from(tcp[12] >> 4) * 4;
        let payload = usize::from(be16(ip, 2)).saturating_sub(headers);
        let seq = be32(tcp, 4);
        let flow = (ip[12..16].try_into().expect("4 bytes"), be16(tcp, 0));
        if tcp[13] & TCP_SYN != 0 {
            next.insert(flow, seq.wrapping_add(1));
            continue;
        }
        if payload == 0 {
            continue;
        }
        seen.data_segments += 1;
        let end = seq.wrapping_add(u32::try_from(payload).expect("a segment fits u32"));
        let Some(expected) = next.get_mut(&flow) else {
            continue; // The flow's SYN came before the capture.
        };
        // Sequence space wraps: compare by signed distance.
        let ahead = |a: u32, b: u32| (a.wrapping_sub(b) as i32) > 0;
        if ahead(seq, *expected) {
            seen.after_hole += 1;
        } else if seq != *expected {
            seen.old_data += 1;
        }
        if ahead(end, *expected) {
            *expected = end;
        }
    }
    seen
}

/// The few bpf(2) commands the dropper's counters need. The attribute blocks are laid out as in
/// include/uapi/linux/bpf.h (`union bpf_attr`, `struct bpf_map_info`); the kernel accepts a
/// block shorter than its own and zero beyond what the command reads.
mod bpf {
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};

    const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
    const BPF_MAP_GET_NEXT_ID: libc::c_long = 12;
    const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    /// `struct bpf_map_info`: `name[16]` at offset 24, the whole struct well under 128 bytes.
    const MAP_INFO_LEN: usize = 128;
    const MAP_INFO_NAME: usize = 24;
    const OBJ_NAME_LEN: usize = 16;

    /// An attribute block, 8-byte aligned as the kernel's union is.
    #[repr(C, align(8))]
    struct Attr([u8; 32]);

    impl Attr {
        fn new() -> Attr {
            Attr([0; 32])
        }
        fn u32_at(mut self, at: usize, v: u32) -> Attr {
            self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn u64_at(mut self, at: usize, v: u64) -> Attr {
            self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn get_u32(&self, at: usize) -> u32 {
            u32::from_ne_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
        }
    }

    /// bpf(cmd, attr): the non-negative result, or errno's text.
    fn call(cmd: libc::c_long, attr: &mut Attr) -> Result<libc::c_long, String> {
        let size = libc::c_uint::try_from(std::mem::size_of::<Attr>()).expect("small");
        // SAFETY: `attr` is a live, aligned, writable block of `size` bytes laid out for `cmd`;
        // the pointers inside it (if any) point at live buffers of the sizes stated there.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, std::ptr::from_mut(attr), size) };
        if rc < 0 {
            Err(std::io::Error::last_os_error().to_string())
        } else {
            Ok(rc)
        }
    }

    fn as_ptr<T>(p: *const T) -> u64 {
        p as usize as u64
    }

    /// An fd for the map named `name` (the first of that name, by id).
    pub(super) fn map_by_name(name: &str) -> Result<OwnedFd, String> {
        let mut id = 0u32;
        loop {
            let mut attr = Attr::new().u32_at(0, id);
            call(BPF_MAP_GET_NEXT_ID, &mut attr)
                .map_err(|e| format!("no map of that name (after id {id}: {e})"))?;
            id = attr.get_u32(4);
            let mut attr = Attr::new().u32_at(0, id);
            let Ok(raw) = call(BPF_MAP_GET_FD_BY_ID, &mut attr) else {
                continue; // Freed since the listing: not ours, ours lives while attached.
            };
            let raw = RawFd::try_from(raw).expect("an fd fits");
            // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let mut info = [0u8; MAP_INFO_LEN];
            let mut attr = Attr::new()
                .u32_at(0, u32::try_from(raw).expect("fd"))
                .u32_at(4, u32::try_from(MAP_INFO_LEN).expect("small"))
                .u64_at(8, as_ptr(info.as_mut_ptr()));
            call(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
            let field = &info[MAP_INFO_NAME..MAP_INFO_NAME + OBJ_NAME_LEN];
            let len = field.iter().position(|&b| b == 0).unwrap_or(OBJ_NAME_LEN);
            if &field[..len] == name.as_bytes() {
                return Ok(fd);
            }
        }
    }

    /// The u64 value at `key` in the array map `fd`.
    pub(super) fn lookup_u64(fd: &OwnedFd, key: u32) -> Result<u64, String> {
        use std::os::fd::AsRawFd;
        let mut value = 0u64;
        let mut attr = Attr::new()
            .u32_at(0, u32::try_from(fd.as_raw_fd()).expect("fd"))
            .u64_at(8, as_ptr(&raw const key))
            .u64_at(16, as_ptr(&raw mut value));
        call(BPF_MAP_LOOKUP_ELEM, &mut attr)?;
        Ok(value)
    }
}

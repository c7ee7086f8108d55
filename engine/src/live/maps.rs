//! Reads of the XDP programs' per-CPU maps, shared by the loader ([`super::xdp`]) and the
//! blocklist ([`super::guard`]), and the slots of `counters_map` as the C program numbers them
//! (`enum counter` in `engine/bpf/linewatch.bpf.c`); and the loader's one write of the watched
//! networks (`--dst`) into the `dst_v4` and `dst_v6` tries ([`write_dst`]).
//!
//! A per-CPU array keeps one value per possible CPU for each slot; the kernel hands all of them
//! back in one lookup, and a reader sums them. The sum is a snapshot: each CPU's value may move
//! on while the others are read, which is fine for counters that only grow.

use std::ffi::c_int;
use std::net::IpAddr;

use libbpf_sys as bpf;

use crate::scan::Cidr;

/// Slot of `counters_map`: frames the program ran on.
pub(crate) const SEEN_SLOT: u32 = 0;

/// Slot of `counters_map`: monitored TCP segments handed to an AF_XDP socket.
pub(crate) const REDIRECTED_SLOT: u32 = 1;

/// Slot of `counters_map`: frames not monitored (passed to the kernel, or dropped on a mirror
/// veth).
pub(crate) const OTHER_SLOT: u32 = 2;

/// Slot of `counters_map`: monitored segments on a queue without a socket.
pub(crate) const NO_SOCKET_SLOT: u32 = 3;

/// Slot of `counters_map`: SYNs dropped for a blocked source.
pub(crate) const BLOCKED_SLOT: u32 = 4;

/// Slot of `counters_map`: fragments of TCP datagrams taken (also counted as redirected or
/// no_socket).
pub(crate) const FRAGMENTS_SLOT: u32 = 5;

/// Slot of `counters_map`: later fragments taken before their datagram's first fragment.
pub(crate) const FRAGMENTS_AHEAD_SLOT: u32 = 6;

/// Slot of `counters_map`: first fragments of unmonitored ports taken because fragments of
/// their datagram were taken ahead of them.
pub(crate) const FRAGMENTS_UNWANTED_SLOT: u32 = 7;

/// One slot of a per-CPU array map, summed over the `cpus` possible CPUs; `None` when the
/// lookup fails.
pub(crate) fn percpu_sum(fd: c_int, key: u32, cpus: usize) -> Option<u64> {
    let mut values = vec![0u64; cpus.max(1)];
    // SAFETY: a per-CPU array lookup writes one u64 per possible CPU into `values`, which has
    // room for `cpus` (libbpf_num_possible_cpus) of them.
    let ret = unsafe {
        bpf::bpf_map_lookup_elem(fd, (&raw const key).cast(), values.as_mut_ptr().cast())
    };
    (ret == 0).then(|| values.iter().sum())
}

/// Networks `dst_v4` holds at most (`max_entries` in the C program); `dst_v6` holds twice as
/// many, each IPv4 network again as its IPv4-mapped IPv6 prefix.
pub const DST_CAPACITY: usize = 1024;

/// Bits of an IPv4-mapped IPv6 address before its IPv4 part (`::ffff:0:0/96`).
const MAPPED_PREFIX_BITS: u8 = 96;

/// The trie keys of `net` as the C `struct dst_v4_key` / `dst_v6_key` lay them out: a u32
/// prefix length in native byte order, then the address bytes as on the wire. The first key
/// is for `dst_v4` when `net` is IPv4 (then the second, its IPv4-mapped prefix, for `dst_v6`),
/// for `dst_v6` when it is IPv6.
pub(crate) fn dst_keys(net: &Cidr) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = |prefix: u8, bytes: &[u8]| {
        let mut k = u32::from(prefix).to_ne_bytes().to_vec();
        k.extend_from_slice(bytes);
        k
    };
    match net.addr {
        IpAddr::V4(a) => (
            key(net.prefix, &a.octets()),
            Some(key(
                MAPPED_PREFIX_BITS + net.prefix,
                &a.to_ipv6_mapped().octets(),
            )),
        ),
        IpAddr::V6(a) => (key(net.prefix, &a.octets()), None),
    }
}

/// Writes `nets` into the tries `v4` and `v6` (file descriptors of `dst_v4` and `dst_v6`).
/// `Err` holds the errno of the failed update.
pub(crate) fn write_dst(v4: c_int, v6: c_int, nets: &[Cidr]) -> Result<(), i32> {
    let value: u8 = 1;
    let put = |fd: c_int, key: &[u8]| {
        // SAFETY: `key` has the map's key size (4 + 4 or 4 + 16 bytes: `dst_keys`) and the
        // value its one byte; the kernel copies both.
        let ret = unsafe {
            bpf::bpf_map_update_elem(fd, key.as_ptr().cast(), (&raw const value).cast(), 0)
        };
        if ret == 0 {
            Ok(())
        } else {
            Err(super::sys::bpf_errno(ret))
        }
    };
    for net in nets {
        match dst_keys(net) {
            (own, Some(mapped)) => {
                put(v4, &own)?;
                put(v6, &mapped)?;
            }
            (own, None) => put(v6, &own)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_keys_are_prefix_length_then_wire_bytes() {
        let v4: Cidr = "10.1.0.0/16".parse().expect("network");
        let (own, mapped) = dst_keys(&v4);
        let mut want = 16u32.to_ne_bytes().to_vec();
        want.extend_from_slice(&[10, 1, 0, 0]);
        assert_eq!(own, want);
        let mut want = 112u32.to_ne_bytes().to_vec();
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 0, 0]);
        assert_eq!(mapped, Some(want));

        let v6: Cidr = "2001:db8::1".parse().expect("address");
        let (own, mapped) = dst_keys(&v6);
        assert_eq!(own.len(), 4 + 16);
        assert_eq!(own[..4], 128u32.to_ne_bytes());
        assert_eq!(own[4..6], [0x20, 0x01]);
        assert_eq!(own[19], 1);
        assert_eq!(mapped, None);
    }
}

//! Reads of the XDP programs' per-CPU maps, shared by the loader ([`super::xdp`]) and the
//! blocklist ([`super::guard`]), and the slots of `counters_map` as the C program numbers them
//! (`enum counter` in `engine/bpf/linewatch.bpf.c`).
//!
//! A per-CPU array keeps one value per possible CPU for each slot; the kernel hands all of them
//! back in one lookup, and a reader sums them. The sum is a snapshot: each CPU's value may move
//! on while the others are read, which is fine for counters that only grow.

use std::ffi::c_int;

use libbpf_sys as bpf;

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

//! Which worker owns a flow: a hash of the flow's two ends that does not care which end sent
//! the segment, so both directions of a connection name the same worker.
//!
//! Contract: [`segment_owner`] is a pure function of a segment's VLAN, addresses and ports,
//! symmetric in the two ends, fixed across runs (seeded with [`SHARD_SEED`]), and below
//! `workers`. The parallel replay shards frames with it ([`crate::offline`]); live workers on
//! queues that do not keep a flow's directions together hand segments to the worker it names
//! ([`crate::cross`]).

use linewatch_parser::wire::TcpSegment;

use crate::flow::SHARD_SEED;

/// The worker (of `workers`) that owns `seg`'s flow. Every worker asks this of every segment
/// in a parallel replay, so it hashes the two ends apart and adds them (addition does not care
/// which end is the source) instead of ordering and hashing a whole [`crate::flow::FlowKey`].
#[inline]
pub fn segment_owner(seg: &TcpSegment<'_>, workers: usize) -> usize {
    let ends =
        end_hash(fold(seg.src), seg.src_port).wrapping_add(end_hash(fold(seg.dst), seg.dst_port));
    pick(ends, seg.vlan_ids[0], workers)
}

/// [`segment_owner`] of an untagged IPv4 segment, from its addresses and ports as read off the
/// wire: what the parallel replay asks of the frames it does not decode.
#[inline]
pub fn ipv4_owner(src: u32, src_port: u16, dst: u32, dst_port: u16, workers: usize) -> usize {
    let ends = end_hash(u64::from(src), src_port).wrapping_add(end_hash(u64::from(dst), dst_port));
    pick(ends, 0, workers)
}

/// The worker for the sum of a flow's end hashes and its outer VLAN id.
#[inline]
fn pick(ends: u64, vlan: u16, workers: usize) -> usize {
    let h = fmix64(ends ^ u64::from(vlan) << 48);
    // The remainder is below `workers`, so it fits a usize.
    usize::try_from(h % workers.max(1) as u64).unwrap_or(0)
}

/// An address as one word: an IPv4 address as is, an IPv6 one with its halves mixed.
#[inline]
fn fold(addr: std::net::IpAddr) -> u64 {
    match addr {
        std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => {
            let o = v6.octets();
            let half = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
            half(&o[8..]) ^ fmix64(half(&o[..8]))
        }
    }
}

/// One end of a flow (its address folded by [`fold`]), hashed.
#[inline]
fn end_hash(folded: u64, port: u16) -> u64 {
    fmix64(folded ^ u64::from(port) << 32 ^ SHARD_SEED)
}

/// MurmurHash3's 64-bit finaliser: every input bit moves every output bit.
#[inline]
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

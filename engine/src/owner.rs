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
        end_word(fold(seg.src), seg.src_port).wrapping_add(end_word(fold(seg.dst), seg.dst_port));
    pick(ends, seg.vlan_ids[0], workers)
}

/// [`segment_owner`] of an untagged IPv4 segment, from its addresses and ports as read off the
/// wire: what the parallel replay asks of the frames it does not decode.
#[inline]
pub fn ipv4_owner(src: u32, src_port: u16, dst: u32, dst_port: u16, workers: usize) -> usize {
    let ends = end_word(u64::from(src), src_port).wrapping_add(end_word(u64::from(dst), dst_port));
    pick(ends, 0, workers)
}

/// The worker for the sum of a flow's end words and its outer VLAN id: one more multiply
/// (Fibonacci hashing: every input bit moves the product's top bits, the ones used), then the
/// hash scaled to `workers` by a multiply (its high word is below `workers`), not divided.
#[inline]
fn pick(ends: u64, vlan: u16, workers: usize) -> usize {
    let h = (ends ^ u64::from(vlan) << 48).wrapping_mul(PICK_MULTIPLIER);
    let scaled = u128::from(h) * workers.max(1) as u128;
    // The high word is below `workers`, so it fits a usize.
    usize::try_from(scaled >> 64).unwrap_or(0)
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

/// One end of a flow (its address folded by [`fold`], its port above it) as a word to add to
/// the other end's: a multiply spreads it, and the rotation keeps two ends' sum from being
/// the multiple of their plain sum (else ends whose plain sums match, as 10.0.0.1 with
/// 10.0.0.4 and 10.0.0.2 with 10.0.0.3 on the same ports, would always meet). The full mix
/// is left to [`pick`], once per segment instead of once per end.
#[inline]
fn end_word(folded: u64, port: u16) -> u64 {
    let x = (folded ^ u64::from(port) << 32 ^ SHARD_SEED).wrapping_mul(END_MULTIPLIER);
    x ^ x >> 32
}

/// A second odd constant with its bits spread (MurmurHash3's first finaliser multiplier).
const PICK_MULTIPLIER: u64 = 0xff51_afd7_ed55_8ccd;

/// An odd constant with its bits spread (the golden ratio's fraction, as Fibonacci hashing
/// takes it).
const END_MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// MurmurHash3's 64-bit finaliser: every input bit moves every output bit.
#[inline]
fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    use linewatch_parser::wire::{decode_frame, LinkType};
    use linewatch_testkit::frame::{tcp_frame, TcpFlags};

    use super::*;

    /// The owner of a bare ACK from `a` to `b`, and of its answer from `b` to `a`.
    fn owners(a: SocketAddr, b: SocketAddr, workers: usize) -> (usize, usize) {
        let of = |from, to| {
            let frame = tcp_frame(from, to, TcpFlags::ACK, b"");
            segment_owner(&decode_frame(LinkType::Ethernet, &frame).unwrap(), workers)
        };
        (of(a, b), of(b, a))
    }

    #[test]
    fn flows_whose_plain_sums_match_still_spread() {
        // 10.0.0.i with 10.0.1.(255 - i), same ports: every pair's addresses add up alike;
        // and two fixed addresses on ports 40000 + i and 40255 - i.
        let families: [fn(u8) -> (SocketAddr, SocketAddr); 2] = [
            |i| {
                let a = SocketAddr::from(([10, 0, 0, i], 40000));
                (a, SocketAddr::from(([10, 0, 1, 255 - i], 80)))
            },
            |i| {
                let a = SocketAddr::from(([10, 0, 0, 1], 40000 + u16::from(i)));
                (a, SocketAddr::from(([10, 0, 0, 2], 40255 - u16::from(i))))
            },
        ];
        for (family, workers) in families.iter().flat_map(|f| [2, 3, 4].map(|w| (f, w))) {
            let mut per_worker = vec![0usize; workers];
            for i in 0..=255u8 {
                let (a, b) = family(i);
                let (there, back) = owners(a, b, workers);
                assert_eq!(there, back, "{a} with {b}, {workers} workers");
                per_worker[there] += 1;
            }
            let fair = 256 / workers;
            assert!(
                per_worker.iter().all(|&n| n > fair / 2 && n < fair * 3 / 2),
                "{per_worker:?}"
            );
        }
    }

    #[test]
    fn ipv6_flows_are_symmetric_and_spread() {
        let mut per_worker = [0usize; 2];
        for i in 0..400u16 {
            let a = SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i)),
                40000,
            );
            let b = SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 2, 1)),
                443,
            );
            let (there, back) = owners(a, b, 2);
            assert_eq!(there, back);
            per_worker[there] += 1;
        }
        assert!(
            per_worker.iter().all(|&n| (120..280).contains(&n)),
            "{per_worker:?}"
        );
    }

    #[test]
    fn the_ipv4_owner_is_the_segment_owner() {
        for i in 0..500u32 {
            let (src, dst) = (0x0a00_0000 | i, 0xc000_0250 ^ i << 8);
            let (sport, dport) = (u16::try_from(30000 + i).unwrap(), 80);
            let frame = tcp_frame(
                (Ipv4Addr::from(src), sport).into(),
                (Ipv4Addr::from(dst), dport).into(),
                TcpFlags::ACK,
                b"",
            );
            let seg = decode_frame(LinkType::Ethernet, &frame).unwrap();
            for workers in 1..=4 {
                assert_eq!(
                    ipv4_owner(src, sport, dst, dport, workers),
                    segment_owner(&seg, workers)
                );
                assert!(segment_owner(&seg, workers) < workers);
            }
        }
    }
}

//! What a worker monitors: TCP ports (a bitmap of 65,536 ports, or every port) and, with
//! `--dst`, the server addresses ([`DstFilter`]) whose segments count.
//!
//! The worker tests one flag per segment when everything is monitored (`--port any`, no
//! `--dst`): the address test joins the port test inside [`PortFilter::monitors`] rather than
//! standing beside it, because a second test on the frame path changed what the compiler kept
//! in registers and cost every frame ~7 instructions (callgrind, perf/README.md).

use linewatch_parser::wire::TcpSegment;

use super::dst::DstFilter;

/// Which TCP ports carry HTTP: a set, or any port (recognised by the start line); and which
/// addresses are watched.
#[derive(Debug, Clone)]
pub struct PortFilter {
    /// Every port and every address: nothing else is read.
    any: bool,
    bits: Box<[u64; 1024]>,
    dst: DstFilter,
}

impl PortFilter {
    /// Every TCP port.
    pub fn any() -> PortFilter {
        PortFilter {
            any: true,
            bits: Box::new([0; 1024]),
            dst: DstFilter::any(),
        }
    }

    /// Only these ports.
    pub fn ports(ports: &[u16]) -> PortFilter {
        let mut bits = Box::new([0u64; 1024]);
        for &p in ports {
            bits[usize::from(p) / 64] |= 1 << (p % 64);
        }
        PortFilter {
            any: false,
            bits,
            dst: DstFilter::any(),
        }
    }

    /// These ports, between these addresses only ([`DstFilter::any`]: every address).
    pub(super) fn watching(mut self, dst: &DstFilter) -> PortFilter {
        if dst.is_any() {
            return self;
        }
        if self.any {
            self.bits.fill(u64::MAX);
            self.any = false;
        }
        self.dst = dst.clone();
        self
    }

    /// A segment between these ports is monitored (whatever its addresses).
    #[inline]
    pub fn matches(&self, a: u16, b: u16) -> bool {
        self.any || self.has(a) || self.has(b)
    }

    /// The worker's test: `seg` is between monitored ports and has a watched address at
    /// one end.
    #[inline(always)]
    pub(super) fn monitors(&self, seg: &TcpSegment<'_>) -> bool {
        self.any
            || ((self.has(seg.src_port) || self.has(seg.dst_port))
                && self.dst.matches(seg.src, seg.dst))
    }

    /// `seg` has a watched address at one end (whatever its ports).
    #[inline]
    pub(super) fn watches(&self, seg: &TcpSegment<'_>) -> bool {
        self.dst.matches(seg.src, seg.dst)
    }

    #[inline]
    fn has(&self, p: u16) -> bool {
        self.bits[usize::from(p) / 64] & (1 << (p % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use linewatch_parser::wire::{decode_frame, LinkType};
    use linewatch_testkit::frame::{Frame, TcpRepr};

    use super::*;
    use crate::scan::Cidr;

    /// Whether `filter` monitors a segment from `src:sport` to `dst:dport`.
    fn monitors(filter: &PortFilter, src: &str, sport: u16, dst: &str, dport: u16) -> bool {
        let (src, dst): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let frame = Frame::tcp(
            src,
            dst,
            TcpRepr {
                src_port: sport,
                dst_port: dport,
                ..TcpRepr::default()
            },
        )
        .to_vec();
        let seg = decode_frame(LinkType::Ethernet, &frame).expect("a TCP segment");
        filter.monitors(&seg)
    }

    fn dst(nets: &[&str]) -> DstFilter {
        let nets: Vec<Cidr> = nets.iter().map(|n| n.parse().unwrap()).collect();
        DstFilter::nets(&nets)
    }

    #[test]
    fn without_dst_the_ports_alone_decide() {
        let any = PortFilter::any().watching(&DstFilter::any());
        assert!(monitors(&any, "10.0.0.1", 40000, "192.0.2.9", 22));
        let web = PortFilter::ports(&[80]).watching(&DstFilter::any());
        assert!(monitors(&web, "10.0.0.1", 40000, "192.0.2.9", 80));
        assert!(monitors(&web, "192.0.2.9", 80, "10.0.0.1", 40000));
        assert!(!monitors(&web, "10.0.0.1", 40000, "192.0.2.9", 22));
    }

    #[test]
    fn with_dst_a_segment_needs_a_watched_address_and_a_monitored_port() {
        let watched = dst(&["192.0.2.0/24", "2001:db8::/32"]);
        let any = PortFilter::any().watching(&watched);
        assert!(monitors(&any, "10.0.0.1", 40000, "192.0.2.9", 22));
        assert!(monitors(&any, "192.0.2.9", 22, "10.0.0.1", 40000));
        assert!(!monitors(&any, "10.0.0.1", 40000, "198.51.100.1", 22));
        assert!(monitors(&any, "2001:db8::1", 40000, "2001:db9::1", 80));
        assert!(!monitors(&any, "2001:db9::1", 40000, "2001:dba::1", 80));
        // The port set still applies, and the plain port test ignores addresses.
        let web = PortFilter::ports(&[80]).watching(&watched);
        assert!(monitors(&web, "10.0.0.1", 40000, "192.0.2.9", 80));
        assert!(!monitors(&web, "10.0.0.1", 40000, "192.0.2.9", 22));
        assert!(!monitors(&web, "10.0.0.1", 40000, "198.51.100.1", 80));
        assert!(web.matches(40000, 80) && any.matches(1, 2));
    }

    /// The worker tests the filter only when a common frame finds no flow (`common_path`):
    /// every segment of a flow in the table must get the answer its first one got. The answer
    /// may depend only on what a flow key holds, in either order: both ends, an IPv4 end and
    /// its IPv4-mapped form alike.
    #[test]
    fn the_answer_is_the_same_for_both_directions_and_mapped_ends() {
        let filters = [
            PortFilter::any().watching(&DstFilter::any()),
            PortFilter::ports(&[80]).watching(&DstFilter::any()),
            PortFilter::any().watching(&dst(&["192.0.2.0/24"])),
            PortFilter::ports(&[80, 8080]).watching(&dst(&["192.0.2.9/32", "2001:db8::/32"])),
        ];
        let ends = [
            ("10.0.0.1", 40000),
            ("192.0.2.9", 80),
            ("::ffff:192.0.2.9", 80),
            ("192.0.2.10", 8080),
            ("198.51.100.1", 22),
            ("2001:db8::1", 80),
        ];
        let mapped = |a: &str| match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().to_string(),
            v6 => v6.to_string(),
        };
        let mut seen = [false; 2];
        for filter in &filters {
            for &(a, ap) in &ends {
                for &(b, bp) in &ends {
                    // A segment's ends are of one family.
                    if a.contains(':') != b.contains(':') {
                        continue;
                    }
                    let answer = monitors(filter, a, ap, b, bp);
                    seen[usize::from(answer)] = true;
                    assert_eq!(monitors(filter, b, bp, a, ap), answer, "{a}:{ap} {b}:{bp}");
                    let (ma, mb) = (mapped(a), mapped(b));
                    assert_eq!(monitors(filter, &ma, ap, &mb, bp), answer, "{ma} {mb}");
                }
            }
        }
        assert_eq!(seen, [true, true], "both answers were tested");
    }
}

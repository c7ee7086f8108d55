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

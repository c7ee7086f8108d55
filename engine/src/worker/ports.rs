//! Which TCP ports a worker monitors: a bitmap of 65,536 ports, or every port.

/// Which TCP ports carry HTTP: a set, or any port (recognised by the start line).
#[derive(Debug, Clone)]
pub struct PortFilter {
    any: bool,
    bits: Box<[u64; 1024]>,
}

impl PortFilter {
    /// Every TCP port.
    pub fn any() -> PortFilter {
        PortFilter {
            any: true,
            bits: Box::new([0; 1024]),
        }
    }

    /// Only these ports.
    pub fn ports(ports: &[u16]) -> PortFilter {
        let mut bits = Box::new([0u64; 1024]);
        for &p in ports {
            bits[usize::from(p) / 64] |= 1 << (p % 64);
        }
        PortFilter { any: false, bits }
    }

    /// A segment between these ports is monitored.
    #[inline]
    pub fn matches(&self, a: u16, b: u16) -> bool {
        self.any || self.has(a) || self.has(b)
    }

    #[inline]
    fn has(&self, p: u16) -> bool {
        self.bits[usize::from(p) / 64] & (1 << (p % 64)) != 0
    }
}

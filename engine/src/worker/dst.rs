//! Which server addresses a worker watches (`--dst`): segments to or from a set of networks,
//! or every address.
//!
//! Contract: [`DstFilter::matches`] is true for a segment whose source or destination address
//! is in one of the networks (so both directions of a connection to a watched server match),
//! and always true for [`DstFilter::any`]. Addresses are compared as [`Cidr::contains`] does:
//! an IPv4-mapped IPv6 address counts as the IPv4 address (the XDP program puts each IPv4
//! network in its IPv6 table as `::ffff:a.b.c.d/(96 + prefix)` too, so it agrees). A filter
//! over every address costs the caller one test of a flag.

use std::net::IpAddr;

use crate::scan::Cidr;

/// The networks whose traffic is watched, or every address.
#[derive(Debug, Clone)]
pub struct DstFilter {
    any: bool,
    nets: Box<[Cidr]>,
}

impl Default for DstFilter {
    fn default() -> Self {
        DstFilter::any()
    }
}

impl DstFilter {
    /// Every address.
    pub fn any() -> DstFilter {
        DstFilter {
            any: true,
            nets: Box::default(),
        }
    }

    /// Only traffic to or from these networks; an empty list means every address.
    pub fn nets(nets: &[Cidr]) -> DstFilter {
        let mut list = nets.to_vec();
        list.sort_by_key(|c| (c.addr, c.prefix));
        list.dedup();
        DstFilter {
            any: list.is_empty(),
            nets: list.into_boxed_slice(),
        }
    }

    /// Every address is watched (no `--dst`).
    pub fn is_any(&self) -> bool {
        self.any
    }

    /// The watched networks, sorted, each once (empty for [`DstFilter::any`]).
    pub fn networks(&self) -> &[Cidr] {
        &self.nets
    }

    /// A segment between `a` and `b` is watched.
    #[inline(always)]
    pub fn matches(&self, a: IpAddr, b: IpAddr) -> bool {
        self.any || self.listed(a, b)
    }

    /// Out of line: only a worker with `--dst` comes here, and the inlined test stays one
    /// flag.
    #[inline(never)]
    fn listed(&self, a: IpAddr, b: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(a) || n.contains(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(nets: &[&str]) -> DstFilter {
        let nets: Vec<Cidr> = nets.iter().map(|n| n.parse().expect("a network")).collect();
        DstFilter::nets(&nets)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn any_matches_everything_and_an_empty_list_is_any() {
        for f in [DstFilter::any(), DstFilter::default(), filter(&[])] {
            assert!(f.is_any());
            assert!(f.networks().is_empty());
            assert!(f.matches(ip("192.0.2.1"), ip("2001:db8::1")));
        }
    }

    #[test]
    fn either_end_in_a_network_matches() {
        let f = filter(&["10.1.0.0/16", "192.0.2.7", "2001:db8::/32"]);
        assert!(!f.is_any());
        // Client to server and server to client.
        assert!(f.matches(ip("198.51.100.9"), ip("10.1.200.3")));
        assert!(f.matches(ip("10.1.200.3"), ip("198.51.100.9")));
        // A bare address is a /32: its neighbour is not watched.
        assert!(f.matches(ip("192.0.2.7"), ip("198.51.100.9")));
        assert!(!f.matches(ip("192.0.2.8"), ip("198.51.100.9")));
        assert!(!f.matches(ip("10.2.0.1"), ip("10.0.0.1")));
        // IPv6, and a family that has no network listed.
        assert!(f.matches(ip("2001:db8:ffff::1"), ip("2001:db9::1")));
        assert!(!f.matches(ip("2001:db9::1"), ip("2001:dbf::1")));
        let v6_only = filter(&["2001:db8::/32"]);
        assert!(!v6_only.matches(ip("10.1.0.1"), ip("10.1.0.2")));
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_ipv4() {
        let f = filter(&["10.1.0.0/16"]);
        assert!(f.matches(ip("::ffff:10.1.2.3"), ip("2001:db8::1")));
        let mapped = filter(&["::ffff:10.1.2.3"]);
        assert_eq!(mapped.networks()[0].to_string(), "10.1.2.3/32");
        assert!(mapped.matches(ip("10.1.2.3"), ip("10.9.9.9")));
    }

    #[test]
    fn networks_are_sorted_and_listed_once() {
        let f = filter(&["2001:db8::/32", "10.0.0.0/8", "10.0.0.1/8"]);
        let shown: Vec<String> = f.networks().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "2001:db8::/32"]);
    }
}

//! The network layer: IPv4 or IPv6.

use std::net::IpAddr;

use super::checksum;
use super::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use super::ipv4::Ipv4Repr;
use super::ipv6::Ipv6Repr;

/// The network layer of a [`Frame`](super::Frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr<'a> {
    /// IPv4.
    V4(Ipv4Repr<'a>),
    /// IPv6.
    V6(Ipv6Repr<'a>),
}

impl IpRepr<'_> {
    /// [`Ipv4Repr::new`] or [`Ipv6Repr::new`], by the addresses' family.
    ///
    /// # Panics
    /// When `src` and `dst` are of different families.
    #[must_use]
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => IpRepr::V4(Ipv4Repr::new(s, d)),
            (IpAddr::V6(s), IpAddr::V6(d)) => IpRepr::V6(Ipv6Repr::new(s, d)),
            _ => panic!("an IP header from {src} to {dst}: mixed address families"),
        }
    }

    /// The source address.
    #[must_use]
    pub fn src(&self) -> IpAddr {
        match self {
            IpRepr::V4(ip) => IpAddr::V4(ip.src),
            IpRepr::V6(ip) => IpAddr::V6(ip.src),
        }
    }

    /// The destination address.
    #[must_use]
    pub fn dst(&self) -> IpAddr {
        match self {
            IpRepr::V4(ip) => IpAddr::V4(ip.dst),
            IpRepr::V6(ip) => IpAddr::V6(ip.dst),
        }
    }

    /// The EtherType in front of it.
    #[must_use]
    pub const fn ethertype(&self) -> u16 {
        match self {
            IpRepr::V4(_) => ETHERTYPE_IPV4,
            IpRepr::V6(_) => ETHERTYPE_IPV6,
        }
    }

    /// Header bytes, options or extension headers included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        match self {
            IpRepr::V4(ip) => ip.header_len(),
            IpRepr::V6(ip) => ip.header_len(),
        }
    }

    /// See [`Ipv4Repr::emit`] and [`Ipv6Repr::emit`].
    pub fn emit(&self, protocol: u8, payload_len: usize, buf: &mut [u8]) {
        match self {
            IpRepr::V4(ip) => ip.emit(protocol, payload_len, buf),
            IpRepr::V6(ip) => ip.emit(protocol, payload_len, buf),
        }
    }

    /// The pseudo-header sum of `upper_len` bytes of `protocol` in this packet.
    #[must_use]
    pub fn pseudo_header(&self, protocol: u8, upper_len: usize) -> u32 {
        checksum::pseudo_header(self.src(), self.dst(), protocol, upper_len)
    }
}

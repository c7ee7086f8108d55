//! IPv4 headers, with options and fragment fields.

use std::net::Ipv4Addr;

use super::checksum;
use super::ip_common::{DEFAULT_TTL, FRAGMENT_OFFSET_MAX};

/// IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Most IPv4 option bytes (IHL 15).
pub const IPV4_MAX_OPTIONS_LEN: usize = 40;
/// Where the IPv4 header checksum is, from the start of the IPv4 header.
pub const IPV4_CHECKSUM_AT: usize = 10;

const IPV4_DONT_FRAGMENT: u16 = 0x4000;
const IPV4_MORE_FRAGMENTS: u16 = 0x2000;

/// An IPv4 header. Length, IHL, protocol and checksum are computed when it is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Identification.
    pub ident: u16,
    /// Time to live.
    pub ttl: u8,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub fragment_offset: u16,
    /// Option bytes, written as given: a multiple of 4, at most [`IPV4_MAX_OPTIONS_LEN`]
    /// (`1` is NOP, so `&[1; 12]` is three words of padding).
    pub options: &'a [u8],
}

impl Ipv4Repr<'_> {
    /// A header from `src` to `dst`: ident 0, TTL 64, DF, no options.
    #[must_use]
    pub const fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Ipv4Repr {
            src,
            dst,
            ident: 0,
            ttl: DEFAULT_TTL,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            options: &[],
        }
    }

    /// Header bytes, options included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        IPV4_HEADER_LEN + self.options.len()
    }

    /// Writes the header of a packet carrying `payload_len` bytes of `protocol` into `buf`,
    /// exactly [`header_len`](Self::header_len) bytes, checksum included.
    ///
    /// # Panics
    /// When the options are not whole words or too long, the fragment offset needs more
    /// than 13 bits, or the packet is longer than 65535 bytes.
    pub fn emit(&self, protocol: u8, payload_len: usize, buf: &mut [u8]) {
        let header_len = self.header_len();
        assert_eq!(buf.len(), header_len, "IPv4 header buffer");
        assert!(
            self.options.len() % 4 == 0 && self.options.len() <= IPV4_MAX_OPTIONS_LEN,
            "IPv4 options are whole 4-byte words, {IPV4_MAX_OPTIONS_LEN} bytes at most: {}",
            self.options.len()
        );
        assert!(
            self.fragment_offset <= FRAGMENT_OFFSET_MAX,
            "fragment offset {} needs more than 13 bits",
            self.fragment_offset
        );
        let total = u16::try_from(header_len + payload_len).expect("an IPv4 packet of 64 KiB");
        let ihl = u8::try_from(header_len / 4).expect("15 words at most");
        let mut flags_offset = self.fragment_offset;
        if self.dont_fragment {
            flags_offset |= IPV4_DONT_FRAGMENT;
        }
        if self.more_fragments {
            flags_offset |= IPV4_MORE_FRAGMENTS;
        }
        buf[0] = 0x40 | ihl;
        buf[1] = 0; // DSCP, ECN
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf[4..6].copy_from_slice(&self.ident.to_be_bytes());
        buf[6..8].copy_from_slice(&flags_offset.to_be_bytes());
        buf[8] = self.ttl;
        buf[9] = protocol;
        buf[10..12].fill(0);
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        buf[IPV4_HEADER_LEN..].copy_from_slice(self.options);
        let sum = checksum::finish(checksum::sum(buf, 0));
        buf[IPV4_CHECKSUM_AT..IPV4_CHECKSUM_AT + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::ip_common::IP_PROTOCOL_UDP;
    use crate::frame::test_util::{hex, sums_to_ones};

    #[test]
    fn ipv4_header_matches_a_published_one() {
        // The example header of Wikipedia's "Internet checksum" and "IPv4" articles: UDP,
        // 192.168.0.1 → 192.168.0.199, total length 0x73, DF, TTL 64, checksum b861.
        let want = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
        let ip = Ipv4Repr {
            ident: 0,
            ..Ipv4Repr::new(
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(192, 168, 0, 199),
            )
        };
        let mut buf = [0; IPV4_HEADER_LEN];
        ip.emit(IP_PROTOCOL_UDP, 0x73 - IPV4_HEADER_LEN, &mut buf);
        assert_eq!(buf[..], want[..]);
        assert!(sums_to_ones(&buf, &[]));
    }
}

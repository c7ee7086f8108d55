//! IPv6 headers with their extension headers.

use std::net::Ipv6Addr;

use super::ip_common::{DEFAULT_TTL, FRAGMENT_OFFSET_MAX};

/// IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Each IPv6 extension header emitted here.
pub const IPV6_EXTENSION_LEN: usize = 8;

const IPV6_VERSION: u8 = 0x60;

/// An IPv6 extension header, emitted as 8 bytes (Hdr Ext Len 0) whose Next Header points at
/// what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Extension {
    /// Hop-by-Hop Options (type 0), six bytes of PadN.
    HopByHop,
    /// Routing (type 43): routing type 0, segments left 0, so any receiver skips it.
    Routing,
    /// Fragment (type 44).
    Fragment {
        /// Offset in 8-byte units (13 bits).
        offset: u16,
        /// The M flag: more fragments follow.
        more: bool,
        /// Identification.
        ident: u32,
    },
    /// Destination Options (type 60), six bytes of PadN.
    DestinationOptions,
}

impl Ipv6Extension {
    /// Its Next Header value, as the header before it names it.
    #[must_use]
    pub const fn header_type(self) -> u8 {
        match self {
            Ipv6Extension::HopByHop => 0,
            Ipv6Extension::Routing => 43,
            Ipv6Extension::Fragment { .. } => 44,
            Ipv6Extension::DestinationOptions => 60,
        }
    }

    fn emit(self, next_header: u8, buf: &mut [u8]) {
        /// PadN (type 1) over the four bytes after its type and length.
        const PAD_N: [u8; 6] = [1, 4, 0, 0, 0, 0];
        buf[0] = next_header;
        buf[1] = 0; // length in 8-byte units beyond the first 8
        match self {
            Ipv6Extension::HopByHop | Ipv6Extension::DestinationOptions => {
                buf[2..8].copy_from_slice(&PAD_N);
            }
            Ipv6Extension::Routing => buf[2..8].fill(0),
            Ipv6Extension::Fragment {
                offset,
                more,
                ident,
            } => {
                assert!(
                    offset <= FRAGMENT_OFFSET_MAX,
                    "fragment offset {offset} needs more than 13 bits"
                );
                let offset_flags = offset << 3 | u16::from(more);
                buf[2..4].copy_from_slice(&offset_flags.to_be_bytes());
                buf[4..8].copy_from_slice(&ident.to_be_bytes());
            }
        }
    }
}

/// An IPv6 header and its extension headers. Payload length and the Next Header chain are
/// computed when it is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address (also the pseudo-header's: no routing header here has segments
    /// left).
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Extension headers, in order, between the fixed header and the transport.
    pub extensions: &'a [Ipv6Extension],
}

impl Ipv6Repr<'_> {
    /// A header from `src` to `dst`: hop limit 64, no extension headers.
    #[must_use]
    pub const fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Ipv6Repr {
            src,
            dst,
            hop_limit: DEFAULT_TTL,
            extensions: &[],
        }
    }

    /// Header bytes, extension headers included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        IPV6_HEADER_LEN + IPV6_EXTENSION_LEN * self.extensions.len()
    }

    /// Writes the fixed header and the extension headers of a packet whose transport is
    /// `payload_len` bytes of `protocol` into `buf`, exactly [`header_len`](Self::header_len)
    /// bytes.
    ///
    /// # Panics
    /// When the payload (extension headers included) is longer than 65535 bytes.
    pub fn emit(&self, protocol: u8, payload_len: usize, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.header_len(), "IPv6 header buffer");
        let extensions_len = self.header_len() - IPV6_HEADER_LEN;
        let payload =
            u16::try_from(extensions_len + payload_len).expect("an IPv6 payload of 64 KiB");
        let first = self
            .extensions
            .first()
            .map_or(protocol, |e| e.header_type());
        buf[..4].copy_from_slice(&[IPV6_VERSION, 0, 0, 0]);
        buf[4..6].copy_from_slice(&payload.to_be_bytes());
        buf[6] = first;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src.octets());
        buf[24..40].copy_from_slice(&self.dst.octets());
        let chunks = buf[IPV6_HEADER_LEN..].chunks_exact_mut(IPV6_EXTENSION_LEN);
        for (i, (extension, out)) in self.extensions.iter().zip(chunks).enumerate() {
            let next = self
                .extensions
                .get(i + 1)
                .map_or(protocol, |e| e.header_type());
            extension.emit(next, out);
        }
    }
}

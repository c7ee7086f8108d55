//! IPv6 headers and the walk over their extension headers.
//!
//! After `check_len` succeeds no accessor panics. As for IPv4, the buffer may end before the
//! declared payload length ([`Ipv6Packet::is_truncated`]) and bytes past it are cut off (they
//! are the [`Ipv6Packet::trailer`]).
//!
//! [`Ipv6Packet::upper_layer`] walks Hop-by-Hop, Routing, Fragment, Destination Options and
//! Authentication headers (at most [`Ipv6Packet::MAX_EXTENSION_HEADERS`], so a chain crafted
//! to loop costs a bounded amount of work) and stops at the first other protocol.

use core::net::Ipv6Addr;

use super::{be16, ip_protocol, WireError};

mod field {
    use core::ops::Range;

    pub(super) const PAYLOAD_LEN: usize = 4;
    pub(super) const NEXT_HEADER: usize = 6;
    pub(super) const SOURCE: Range<usize> = 8..24;
    pub(super) const DESTINATION: Range<usize> = 24..40;
    pub(super) const PAYLOAD: usize = 40;
}

mod ext_field {
    pub(super) const NEXT_HEADER: usize = 0;
    pub(super) const LEN: usize = 1;
    pub(super) const FRAG_OFFSET: usize = 2;
    /// Every extension header is at least 8 bytes long.
    pub(super) const MIN_LEN: usize = 8;
}

/// The payload after the extension headers: the upper-layer protocol and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Payload<'a> {
    /// The upper-layer protocol number (6 for TCP).
    pub protocol: u8,
    /// Whether a Fragment header was crossed (this is the first fragment of a datagram).
    pub fragmented: bool,
    /// The upper-layer bytes.
    pub data: &'a [u8],
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// The fixed header's length.
    pub const HEADER_LEN: usize = field::PAYLOAD;
    /// The longest extension-header chain walked. Real traffic carries one or two; the cap
    /// bounds the work a hostile chain can cause.
    pub const MAX_EXTENSION_HEADERS: usize = 8;
    /// The fragment-offset bits of a Fragment header's offset field (in units of 8 bytes).
    const FRAG_OFFSET_MASK: u16 = 0xFFF8;

    /// Wraps `buffer` without checking it; call [`Self::check_len`] before any accessor.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv6Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the 40-byte fixed header. The version is not checked here:
    /// see [`Self::version`].
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The version nibble (6 for a real IPv6 header).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// The payload length the header declares (extension headers included).
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The first Next Header value.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }

    /// The source address.
    pub fn source(&self) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        Ipv6Addr::from(octets)
    }

    /// The destination address.
    pub fn destination(&self) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        Ipv6Addr::from(octets)
    }

    /// Whether the buffer ends before the declared payload length.
    pub fn is_truncated(&self) -> bool {
        self.buffer.as_ref().len() < Self::HEADER_LEN + usize::from(self.payload_len())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv6Packet<&'a T> {
    /// The bytes after the fixed header, up to the declared payload length or the end of the
    /// buffer if it is shorter.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        let end = (Self::HEADER_LEN + usize::from(self.payload_len())).min(data.len());
        &data[Self::HEADER_LEN..end]
    }

    /// The bytes after the declared end (fixed header plus payload length): Ethernet padding,
    /// a send stamp. Empty (at the end of the buffer) when the buffer ends at or before it.
    pub fn trailer(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[(Self::HEADER_LEN + usize::from(self.payload_len())).min(data.len())..]
    }

    /// Walks the extension headers to the upper-layer protocol.
    ///
    /// Errors: [`WireError::Fragment`] for a non-first fragment (no upper-layer header in it),
    /// [`WireError::Encrypted`] at an ESP header, [`WireError::TooManyExtensionHeaders`] past
    /// the cap, [`WireError::Truncated`] when an extension header runs past the buffer.
    pub fn upper_layer(&self) -> Result<Ipv6Payload<'a>, WireError> {
        let mut data = self.payload();
        let mut next = self.next_header();
        let mut fragmented = false;
        for _ in 0..=Self::MAX_EXTENSION_HEADERS {
            let len = match next {
                ip_protocol::HOP_BY_HOP
                | ip_protocol::ROUTING
                | ip_protocol::DESTINATION_OPTIONS => {
                    // Hdr Ext Len counts 8-octet units beyond the first.
                    let len_byte = *data.get(ext_field::LEN).ok_or(WireError::Truncated)?;
                    (usize::from(len_byte) + 1) * 8
                }
                ip_protocol::AH => {
                    // AH counts 4-octet units, minus 2 (RFC 4302 §2.2).
                    let len_byte = *data.get(ext_field::LEN).ok_or(WireError::Truncated)?;
                    (usize::from(len_byte) + 2) * 4
                }
                ip_protocol::FRAGMENT => {
                    if data.len() < ext_field::MIN_LEN {
                        return Err(WireError::Truncated);
                    }
                    if be16(data, ext_field::FRAG_OFFSET) & Self::FRAG_OFFSET_MASK != 0 {
                        return Err(WireError::Fragment);
                    }
                    fragmented = true;
                    ext_field::MIN_LEN
                }
                ip_protocol::ESP => return Err(WireError::Encrypted),
                protocol => {
                    return Ok(Ipv6Payload {
                        protocol,
                        fragmented,
                        data,
                    })
                }
            };
            if data.len() < len {
                return Err(WireError::Truncated);
            }
            next = data[ext_field::NEXT_HEADER];
            data = &data[len..];
        }
        Err(WireError::TooManyExtensionHeaders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// A fixed header for ::1 → ::2 with the given next header and payload length.
    fn header(next: u8, payload_len: u16) -> Vec<u8> {
        let mut h = std::vec![0x60, 0, 0, 0];
        h.extend_from_slice(&payload_len.to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        h.extend_from_slice(&Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2).octets());
        h
    }

    #[test]
    fn plain_tcp() {
        let mut p = header(ip_protocol::TCP, 4);
        p.extend_from_slice(b"tcp!");
        p.extend_from_slice(b"pad");
        let v = Ipv6Packet::new_checked(&p[..]).unwrap();
        assert_eq!(v.version(), 6);
        assert_eq!(v.source(), Ipv6Addr::LOCALHOST);
        assert_eq!(v.destination(), Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 2));
        assert!(!v.is_truncated());
        assert_eq!(v.trailer(), b"pad");
        let up = v.upper_layer().unwrap();
        assert_eq!(
            (up.protocol, up.fragmented, up.data),
            (6, false, &b"tcp!"[..])
        );
        let cut = Ipv6Packet::new_checked(&p[..42]).unwrap();
        assert!(cut.is_truncated() && cut.trailer().is_empty());
    }

    #[test]
    fn walks_hop_by_hop_destination_and_ah() {
        let mut p = header(ip_protocol::HOP_BY_HOP, 8 + 16 + 12 + 4);
        p.extend_from_slice(&[ip_protocol::DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]);
        p.extend_from_slice(&[ip_protocol::AH, 1]);
        p.extend_from_slice(&[0; 14]);
        p.extend_from_slice(&[ip_protocol::TCP, 1]); // AH: (1 + 2) × 4 = 12 bytes
        p.extend_from_slice(&[0; 10]);
        p.extend_from_slice(b"tcp!");
        let up = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!((up.protocol, up.data), (6, &b"tcp!"[..]));
    }

    #[test]
    fn fragments() {
        let mut first = header(ip_protocol::FRAGMENT, 12);
        first.extend_from_slice(&[ip_protocol::TCP, 0, 0x00, 0x01, 0, 0, 0, 7]); // offset 0, M
        first.extend_from_slice(b"tcp!");
        let up = Ipv6Packet::new_checked(&first[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert!(up.fragmented);
        assert_eq!(up.data, b"tcp!");

        let mut later = header(ip_protocol::FRAGMENT, 12);
        later.extend_from_slice(&[ip_protocol::TCP, 0, 0x05, 0xC8, 0, 0, 0, 7]); // offset 185
        later.extend_from_slice(b"more");
        let err = Ipv6Packet::new_checked(&later[..]).unwrap().upper_layer();
        assert_eq!(err.unwrap_err(), WireError::Fragment);
    }

    #[test]
    fn errors() {
        let p = header(ip_protocol::TCP, 0);
        assert_eq!(
            Ipv6Packet::new_checked(&p[..39]).unwrap_err(),
            WireError::Truncated
        );

        let mut esp = header(ip_protocol::ESP, 8);
        esp.extend_from_slice(&[0; 8]);
        let v = Ipv6Packet::new_checked(&esp[..]).unwrap();
        assert_eq!(v.upper_layer().unwrap_err(), WireError::Encrypted);

        // A Routing header that claims 16 bytes when 8 are present.
        let mut short = header(ip_protocol::ROUTING, 8);
        short.extend_from_slice(&[ip_protocol::TCP, 1, 0, 0, 0, 0, 0, 0]);
        let v = Ipv6Packet::new_checked(&short[..]).unwrap();
        assert_eq!(v.upper_layer().unwrap_err(), WireError::Truncated);

        // An extension header cut inside its first two bytes.
        let mut cut = header(ip_protocol::HOP_BY_HOP, 1);
        cut.push(ip_protocol::TCP);
        let v = Ipv6Packet::new_checked(&cut[..]).unwrap();
        assert_eq!(v.upper_layer().unwrap_err(), WireError::Truncated);

        // A chain longer than the cap.
        let n = Ipv6Packet::<&[u8]>::MAX_EXTENSION_HEADERS + 1;
        let mut chain = header(
            ip_protocol::DESTINATION_OPTIONS,
            u16::try_from(8 * n).unwrap(),
        );
        for _ in 0..n {
            chain.extend_from_slice(&[ip_protocol::DESTINATION_OPTIONS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let v = Ipv6Packet::new_checked(&chain[..]).unwrap();
        assert_eq!(
            v.upper_layer().unwrap_err(),
            WireError::TooManyExtensionHeaders
        );
    }

    #[test]
    fn no_next_header_is_an_upper_layer_of_its_own() {
        let p = header(ip_protocol::NO_NEXT_HEADER, 0);
        let up = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(up.protocol, ip_protocol::NO_NEXT_HEADER);
        assert!(up.data.is_empty());
    }
}

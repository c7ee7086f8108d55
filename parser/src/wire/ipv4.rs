//! IPv4 headers, options included.
//!
//! After `check_len` succeeds no accessor panics. `check_len` proves the buffer holds the
//! whole header (IHL × 4 bytes, options included) and that the declared total length covers
//! it; the buffer may end before the declared total length (a capture's snap length), which
//! [`Ipv4Packet::is_truncated`] reports, and may run past it (Ethernet padding), which
//! [`Ipv4Packet::payload`] cuts off.

use core::net::Ipv4Addr;

use super::{be16, WireError};

mod field {
    use core::ops::Range;

    pub(super) const VER_IHL: usize = 0;
    pub(super) const TOTAL_LEN: usize = 2;
    pub(super) const FLAGS_FRAG_OFFSET: usize = 6;
    pub(super) const PROTOCOL: usize = 9;
    pub(super) const SOURCE: Range<usize> = 12..16;
    pub(super) const DESTINATION: Range<usize> = 16..20;
}

/// A view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// The length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;
    /// IHL counts 32-bit words.
    const IHL_UNIT: usize = 4;
    /// "More fragments" flag in the flags/fragment-offset field.
    const MORE_FRAGMENTS: u16 = 0x2000;
    /// The 13-bit fragment offset, in units of 8 bytes.
    const FRAG_OFFSET_MASK: u16 = 0x1FFF;

    /// Wraps `buffer` without checking it; call [`Self::check_len`] before any accessor.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the buffer holds the whole header, that IHL is at least 5 and that the
    /// total length is at least the header length. The version is not checked here: see
    /// [`Self::version`].
    pub fn check_len(&self) -> Result<(), WireError> {
        let data = self.buffer.as_ref();
        if data.len() < Self::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < Self::MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if data.len() < header_len {
            return Err(WireError::Truncated);
        }
        if usize::from(self.total_len()) < header_len {
            return Err(WireError::BadTotalLength);
        }
        Ok(())
    }

    /// The version nibble (4 for a real IPv4 header).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0F) * Self::IHL_UNIT
    }

    /// The total length the header declares (header plus payload).
    pub fn total_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TOTAL_LEN)
    }

    /// The upper-layer protocol number.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Whether more fragments of this datagram follow.
    pub fn more_fragments(&self) -> bool {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG_OFFSET) & Self::MORE_FRAGMENTS != 0
    }

    /// The fragment offset in bytes.
    pub fn fragment_offset(&self) -> u32 {
        u32::from(be16(self.buffer.as_ref(), field::FLAGS_FRAG_OFFSET) & Self::FRAG_OFFSET_MASK) * 8
    }

    /// Whether this packet is one fragment of a larger datagram (first or later).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments() || self.fragment_offset() != 0
    }

    /// The source address.
    pub fn source(&self) -> Ipv4Addr {
        let s = &self.buffer.as_ref()[field::SOURCE];
        Ipv4Addr::new(s[0], s[1], s[2], s[3])
    }

    /// The destination address.
    pub fn destination(&self) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[field::DESTINATION];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// Whether the buffer ends before the declared total length.
    pub fn is_truncated(&self) -> bool {
        self.buffer.as_ref().len() < usize::from(self.total_len())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Ipv4Packet<&'a T> {
    /// The payload: from the end of the header to the declared total length, or to the end of
    /// the buffer if it is shorter.
    pub fn payload(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        let end = usize::from(self.total_len()).min(data.len());
        &data[self.header_len()..end]
    }

    /// The bytes after the declared total length (Ethernet padding, a send stamp): empty when
    /// the buffer ends at or before it (then an empty slice at the end of the buffer).
    pub fn trailer(&self) -> &'a [u8] {
        let data = self.buffer.as_ref();
        &data[usize::from(self.total_len()).min(data.len())..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPv4, IHL 6 (one 4-byte option: NOP NOP NOP EOL), total length 28, DF, TCP,
    /// 10.0.0.1 → 10.0.0.2, 4 payload bytes, then 2 bytes of Ethernet padding.
    static PACKET: [u8; 30] = [
        0x46, 0x00, 0x00, 0x1C, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // ..checksum
        10, 0, 0, 1, 10, 0, 0, 2, // addresses
        0x01, 0x01, 0x01, 0x00, // options
        b'd', b'a', b't', b'a', // payload
        0xEE, 0xEE, // padding, not payload
    ];

    #[test]
    fn fields_with_options_and_padding() {
        let p = Ipv4Packet::new_checked(&PACKET[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 24);
        assert_eq!(p.total_len(), 28);
        assert_eq!(p.protocol(), 6);
        assert_eq!(p.source(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.destination(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(!p.is_fragment());
        assert!(!p.is_truncated());
        assert_eq!(p.payload(), b"data");
        assert_eq!(p.trailer(), [0xEE, 0xEE]);
    }

    #[test]
    fn snap_length_cut_is_reported_not_rejected() {
        let p = Ipv4Packet::new_checked(&PACKET[..26]).unwrap();
        assert!(p.is_truncated());
        assert_eq!(p.payload(), b"da");
        assert!(p.trailer().is_empty());
        let exact = Ipv4Packet::new_checked(&PACKET[..28]).unwrap();
        assert!(!exact.is_truncated() && exact.trailer().is_empty());
    }

    #[test]
    fn fragments() {
        let mut first = PACKET;
        first[6] = 0x20; // MF, offset 0
        let p = Ipv4Packet::new_checked(&first[..]).unwrap();
        assert!(p.more_fragments() && p.is_fragment());
        assert_eq!(p.fragment_offset(), 0);

        let mut later = PACKET;
        later[6] = 0x00;
        later[7] = 0xB9; // offset 185 × 8
        let p = Ipv4Packet::new_checked(&later[..]).unwrap();
        assert!(!p.more_fragments() && p.is_fragment());
        assert_eq!(p.fragment_offset(), 1480);
    }

    #[test]
    fn errors() {
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..19]).unwrap_err(),
            WireError::Truncated
        );
        // IHL 6 needs 24 bytes of header.
        assert_eq!(
            Ipv4Packet::new_checked(&PACKET[..22]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = PACKET;
        bad[0] = 0x44; // IHL 4 < 5
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
        let mut bad = PACKET;
        bad[3] = 20; // total length below the 24-byte header
        assert_eq!(
            Ipv4Packet::new_checked(&bad[..]).unwrap_err(),
            WireError::BadTotalLength
        );
    }
}

//! Ethernet II frames and 802.1Q / 802.1ad (QinQ) VLAN tags.
//!
//! After `check_len` succeeds no accessor panics. The frame check sequence is not part of
//! captured frames (AF_XDP and pcap hand over frames without it) and is not looked for.

use super::{be16, WireError};

/// EtherType values this crate dispatches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtherType;

impl EtherType {
    /// Internet Protocol version 4.
    pub const IPV4: u16 = 0x0800;
    /// Address Resolution Protocol (not read, counted as not-IP).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// Internet Protocol version 6.
    pub const IPV6: u16 = 0x86DD;
    /// IEEE 802.1ad service VLAN tag (the outer tag of QinQ).
    pub const QINQ: u16 = 0x88A8;
    /// The pre-standard QinQ outer tag some switches still send.
    pub const QINQ_LEGACY: u16 = 0x9100;

    /// Whether `ethertype` announces a VLAN tag (of any of the three kinds).
    #[inline]
    pub const fn is_vlan(ethertype: u16) -> bool {
        matches!(ethertype, Self::VLAN | Self::QINQ | Self::QINQ_LEGACY)
    }
}

mod field {
    use core::ops::Range;

    pub(super) const DESTINATION: Range<usize> = 0..6;
    pub(super) const SOURCE: Range<usize> = 6..12;
    pub(super) const ETHERTYPE: usize = 12;
    pub(super) const PAYLOAD: usize = 14;
}

/// A view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// The length of an Ethernet II header.
    pub const HEADER_LEN: usize = field::PAYLOAD;

    /// Wraps `buffer` without checking it; call [`Self::check_len`] before any accessor.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole Ethernet header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the buffer holds the 14-byte header.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < Self::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The destination MAC address.
    pub fn destination(&self) -> [u8; 6] {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        mac
    }

    /// The source MAC address.
    pub fn source(&self) -> [u8; 6] {
        let mut mac = [0; 6];
        mac.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        mac
    }

    /// The EtherType (or TPID, when a VLAN tag follows).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

mod tag_field {
    pub(super) const TCI: usize = 0;
    pub(super) const ETHERTYPE: usize = 2;
    pub(super) const PAYLOAD: usize = 4;
}

/// A view of one VLAN tag: the 4 bytes that follow a VLAN TPID (the TPID itself is the
/// EtherType field before it).
#[derive(Debug, Clone)]
pub struct VlanTag<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VlanTag<T> {
    /// Bytes of a tag after its TPID: TCI and the inner EtherType.
    pub const LEN: usize = tag_field::PAYLOAD;
    /// The VLAN identifier's bits in the TCI.
    const VID_MASK: u16 = 0x0FFF;
    /// Shift of the 3-bit priority code point in the TCI.
    const PCP_SHIFT: u16 = 13;

    /// Wraps `buffer` without checking it; call [`Self::check_len`] before any accessor.
    pub const fn new_unchecked(buffer: T) -> Self {
        VlanTag { buffer }
    }

    /// Wraps `buffer` after checking that it holds a whole tag.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let tag = Self::new_unchecked(buffer);
        tag.check_len()?;
        Ok(tag)
    }

    /// Checks that the buffer holds the 4-byte tag.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < Self::LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        be16(self.buffer.as_ref(), tag_field::TCI) & Self::VID_MASK
    }

    /// The 3-bit priority code point.
    pub fn pcp(&self) -> u8 {
        (be16(self.buffer.as_ref(), tag_field::TCI) >> Self::PCP_SHIFT) as u8
    }

    /// The EtherType of what the tag encloses (another TPID for QinQ).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), tag_field::ETHERTYPE)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EthernetFrame<&'a T> {
    /// Everything after the 14-byte header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> VlanTag<&'a T> {
    /// Everything after the tag.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[tag_field::PAYLOAD..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static FRAME: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // destination
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // source
        0x81, 0x00, // TPID 802.1Q
        0xA0, 0x64, // PCP 5, VID 100
        0x08, 0x00, // inner EtherType IPv4
    ];

    #[test]
    fn ethernet_fields() {
        let frame = EthernetFrame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(frame.destination(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(frame.source(), [2, 0, 0, 0, 0, 2]);
        assert_eq!(frame.ethertype(), EtherType::VLAN);
        assert!(EtherType::is_vlan(frame.ethertype()));
        assert_eq!(frame.payload(), &FRAME[14..]);
    }

    #[test]
    fn vlan_tag_fields() {
        let tag = VlanTag::new_checked(&FRAME[14..]).unwrap();
        assert_eq!(tag.vid(), 100);
        assert_eq!(tag.pcp(), 5);
        assert_eq!(tag.ethertype(), EtherType::IPV4);
        assert!(tag.payload().is_empty());
    }

    #[test]
    fn short_buffers_are_truncated() {
        for len in 0..EthernetFrame::<&[u8]>::HEADER_LEN {
            assert_eq!(
                EthernetFrame::new_checked(&FRAME[..len]).unwrap_err(),
                WireError::Truncated
            );
        }
        for len in 0..VlanTag::<&[u8]>::LEN {
            assert_eq!(
                VlanTag::new_checked(&FRAME[14..14 + len]).unwrap_err(),
                WireError::Truncated
            );
        }
    }
}

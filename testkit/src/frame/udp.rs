//! UDP datagrams.

use super::checksum;
use super::ip::IpRepr;
use super::ip_common::IP_PROTOCOL_UDP;

/// UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// Where the checksum is, from the start of the UDP header.
pub const UDP_CHECKSUM_AT: usize = 6;

/// A UDP datagram. Length and checksum are computed when it is emitted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload.
    pub payload: &'a [u8],
}

impl UdpRepr<'_> {
    /// Header and payload bytes.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        UDP_HEADER_LEN + self.payload.len()
    }

    /// Writes the datagram into `buf`, exactly [`buffer_len`](Self::buffer_len) bytes, with the
    /// checksum over `ip`'s pseudo-header.
    ///
    /// # Panics
    /// When the datagram is longer than 65535 bytes.
    pub fn emit(&self, ip: &IpRepr<'_>, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.buffer_len(), "UDP datagram buffer");
        let len = u16::try_from(buf.len()).expect("a UDP datagram of 64 KiB");
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[4..6].copy_from_slice(&len.to_be_bytes());
        buf[6..8].fill(0);
        buf[UDP_HEADER_LEN..].copy_from_slice(self.payload);
        let sum = match checksum::finish(checksum::sum(
            buf,
            ip.pseudo_header(IP_PROTOCOL_UDP, buf.len()),
        )) {
            // RFC 768: a computed 0 is sent as all ones; 0 means "no checksum".
            0 => 0xFFFF,
            sum => sum,
        };
        buf[UDP_CHECKSUM_AT..UDP_CHECKSUM_AT + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

//! TCP headers (options skipped by the data offset).
//!
//! After `check_len` succeeds no accessor panics: it proves the buffer holds the data offset's
//! whole header, options included.

use super::{be16, be32, WireError};

mod field {
    pub(super) const SRC_PORT: usize = 0;
    pub(super) const DST_PORT: usize = 2;
    pub(super) const SEQ: usize = 4;
    pub(super) const ACK: usize = 8;
    pub(super) const DATA_OFFSET: usize = 12;
    pub(super) const FLAGS: usize = 13;
    pub(super) const WINDOW: usize = 14;
}

/// The eight TCP flag bits of byte 13.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronise sequence numbers (connection start).
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push function.
    pub const PSH: u8 = 0x08;
    /// The acknowledgement field is significant.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is significant.
    pub const URG: u8 = 0x20;

    /// Whether every bit of `mask` is set.
    #[inline]
    pub const fn has(self, mask: u8) -> bool {
        self.0 & mask == mask
    }

    /// A new connection attempt: SYN without ACK.
    #[inline]
    pub const fn is_connection_attempt(self) -> bool {
        self.0 & (Self::SYN | Self::ACK) == Self::SYN
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct TcpHeader<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpHeader<T> {
    /// The length of a header without options.
    pub const MIN_HEADER_LEN: usize = 20;
    /// The data offset counts 32-bit words.
    const DATA_OFFSET_UNIT: usize = 4;

    /// Wraps `buffer` without checking it; call [`Self::check_len`] before any accessor.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpHeader { buffer }
    }

    /// Wraps `buffer` after [`Self::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let header = Self::new_unchecked(buffer);
        header.check_len()?;
        Ok(header)
    }

    /// Checks that the buffer holds the whole header, options included, and that the data
    /// offset is at least 5.
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
        Ok(())
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The sequence number.
    pub fn seq(&self) -> u32 {
        be32(self.buffer.as_ref(), field::SEQ)
    }

    /// The acknowledgement number.
    pub fn ack(&self) -> u32 {
        be32(self.buffer.as_ref(), field::ACK)
    }

    /// The header length in bytes, options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * Self::DATA_OFFSET_UNIT
    }

    /// The flag bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The receive window (unscaled).
    pub fn window(&self) -> u16 {
        be16(self.buffer.as_ref(), field::WINDOW)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpHeader<&'a T> {
    /// The bytes after the header.
    pub fn payload(&self) -> &'a [u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 49152 → 80, seq 1, ack 2, data offset 6 (MSS option), PSH|ACK, window 512, then "GET".
    static SEGMENT: [u8; 27] = [
        0xC0, 0x00, 0x00, 0x50, // ports
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // seq, ack
        0x60, 0x18, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, // offset, flags, window, csum, urg
        0x02, 0x04, 0x05, 0xB4, // MSS 1460
        b'G', b'E', b'T',
    ];

    #[test]
    fn fields_and_options_skipped() {
        let t = TcpHeader::new_checked(&SEGMENT[..]).unwrap();
        assert_eq!((t.src_port(), t.dst_port()), (49152, 80));
        assert_eq!((t.seq(), t.ack()), (1, 2));
        assert_eq!(t.header_len(), 24);
        assert_eq!(t.window(), 512);
        assert!(t.flags().has(TcpFlags::PSH | TcpFlags::ACK));
        assert!(!t.flags().is_connection_attempt());
        assert_eq!(t.payload(), b"GET");
    }

    #[test]
    fn syn_is_a_connection_attempt() {
        assert!(TcpFlags(TcpFlags::SYN).is_connection_attempt());
        assert!(!TcpFlags(TcpFlags::SYN | TcpFlags::ACK).is_connection_attempt());
    }

    #[test]
    fn errors() {
        assert_eq!(
            TcpHeader::new_checked(&SEGMENT[..19]).unwrap_err(),
            WireError::Truncated
        );
        // Data offset 6 needs 24 bytes.
        assert_eq!(
            TcpHeader::new_checked(&SEGMENT[..23]).unwrap_err(),
            WireError::Truncated
        );
        let mut bad = SEGMENT;
        bad[12] = 0x40; // data offset 4
        assert_eq!(
            TcpHeader::new_checked(&bad[..]).unwrap_err(),
            WireError::BadHeaderLength
        );
    }
}

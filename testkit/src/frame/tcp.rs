//! TCP segments: flags, options, payload.

use std::ops::{BitOr, BitOrAssign};

use super::checksum;
use super::ip::IpRepr;
use super::ip_common::IP_PROTOCOL_TCP;

/// TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;
/// Where the sequence number is, from the start of the TCP header.
pub const TCP_SEQ_AT: usize = 4;
/// Where the acknowledgement number is, from the start of the TCP header.
pub const TCP_ACK_AT: usize = 8;
/// Where the checksum is, from the start of the TCP header.
pub const TCP_CHECKSUM_AT: usize = 16;

/// Default TCP window: the largest without window scaling.
pub const DEFAULT_WINDOW: u16 = 65_535;

/// TCP control flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No flags.
    pub const NONE: TcpFlags = TcpFlags(0);
    /// FIN.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// SYN.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// RST.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// PSH.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// ACK.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// URG.
    pub const URG: TcpFlags = TcpFlags(0x20);

    /// Whether every flag of `other` is set.
    #[must_use]
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    #[must_use]
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }
}

impl BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, other: TcpFlags) {
        self.0 |= other.0;
    }
}

/// TCP options, laid out as Linux lays out a SYN's: MSS; SACK permitted and timestamps
/// (NOP-padded when only one of them is there); NOP and window scale. Every part is whole
/// 4-byte words, so no trailing padding is needed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// SACK permitted (kind 4).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): value and echo reply.
    pub timestamps: Option<(u32, u32)>,
    /// Window scale shift (kind 3).
    pub window_scale: Option<u8>,
}

const TCP_OPTION_NOP: u8 = 1;
const TCP_OPTION_MSS: u8 = 2;
const TCP_OPTION_WINDOW_SCALE: u8 = 3;
const TCP_OPTION_SACK_PERMITTED: u8 = 4;
const TCP_OPTION_TIMESTAMPS: u8 = 8;

impl TcpOptions {
    /// Option bytes, a multiple of 4.
    #[must_use]
    pub const fn len(&self) -> usize {
        let mss = if self.mss.is_some() { 4 } else { 0 };
        let sack_timestamps = match (self.sack_permitted, self.timestamps.is_some()) {
            (_, true) => 12,
            (true, false) => 4,
            (false, false) => 0,
        };
        let window_scale = if self.window_scale.is_some() { 4 } else { 0 };
        mss + sack_timestamps + window_scale
    }

    /// No options.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn emit(&self, buf: &mut [u8]) {
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let [high, low] = mss.to_be_bytes();
            put(&[TCP_OPTION_MSS, 4, high, low]);
        }
        match (self.sack_permitted, self.timestamps) {
            (sack, Some((value, echo))) => {
                if sack {
                    put(&[TCP_OPTION_SACK_PERMITTED, 2]);
                } else {
                    put(&[TCP_OPTION_NOP, TCP_OPTION_NOP]);
                }
                put(&[TCP_OPTION_TIMESTAMPS, 10]);
                put(&value.to_be_bytes());
                put(&echo.to_be_bytes());
            }
            (true, None) => put(&[TCP_OPTION_NOP, TCP_OPTION_NOP, TCP_OPTION_SACK_PERMITTED, 2]),
            (false, None) => {}
        }
        if let Some(shift) = self.window_scale {
            put(&[TCP_OPTION_NOP, TCP_OPTION_WINDOW_SCALE, 3, shift]);
        }
    }
}

/// A TCP segment: header fields, options and payload. Data offset and checksum are computed
/// when it is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number, written whether or not ACK is set.
    pub ack: u32,
    /// Control flags.
    pub flags: TcpFlags,
    /// Receive window.
    pub window: u16,
    /// Options.
    pub options: TcpOptions,
    /// Payload.
    pub payload: &'a [u8],
}

impl Default for TcpRepr<'_> {
    /// Ports, numbers and flags 0, window 65535, no options, no payload.
    fn default() -> Self {
        TcpRepr {
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            flags: TcpFlags::NONE,
            window: DEFAULT_WINDOW,
            options: TcpOptions::default(),
            payload: &[],
        }
    }
}

impl TcpRepr<'_> {
    /// Header bytes, options included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        TCP_HEADER_LEN + self.options.len()
    }

    /// Header and payload bytes.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Writes the segment into `buf`, exactly [`buffer_len`](Self::buffer_len) bytes, with the
    /// checksum over `ip`'s pseudo-header.
    pub fn emit(&self, ip: &IpRepr<'_>, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.buffer_len(), "TCP segment buffer");
        let header_len = self.header_len();
        let words = u8::try_from(header_len / 4).expect("15 words at most");
        buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        buf[TCP_SEQ_AT..TCP_SEQ_AT + 4].copy_from_slice(&self.seq.to_be_bytes());
        buf[TCP_ACK_AT..TCP_ACK_AT + 4].copy_from_slice(&self.ack.to_be_bytes());
        buf[12] = words << 4;
        buf[13] = self.flags.0;
        buf[14..16].copy_from_slice(&self.window.to_be_bytes());
        buf[16..20].fill(0); // checksum (below), urgent pointer
        self.options.emit(&mut buf[TCP_HEADER_LEN..header_len]);
        buf[header_len..].copy_from_slice(self.payload);
        let sum = checksum::finish(checksum::sum(
            buf,
            ip.pseudo_header(IP_PROTOCOL_TCP, buf.len()),
        ));
        buf[TCP_CHECKSUM_AT..TCP_CHECKSUM_AT + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_combine_and_test() {
        let syn_ack = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(syn_ack, TcpFlags(0x12));
        assert!(syn_ack.contains(TcpFlags::SYN));
        assert!(!syn_ack.contains(TcpFlags::SYN | TcpFlags::FIN));
        assert!(syn_ack.intersects(TcpFlags::SYN | TcpFlags::FIN));
        assert!(!syn_ack.intersects(TcpFlags::RST | TcpFlags::PSH | TcpFlags::URG));
        let mut flags = TcpFlags::NONE;
        flags |= TcpFlags::FIN;
        assert_eq!(flags, TcpFlags::FIN);
    }

    #[test]
    fn options_without_every_part_stay_whole_words() {
        let emitted = |options: TcpOptions| {
            let mut buf = vec![0; options.len()];
            options.emit(&mut buf);
            buf
        };
        assert!(TcpOptions::default().is_empty());
        assert_eq!(
            emitted(TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            }),
            [2, 4, 0x05, 0xb4]
        );
        assert_eq!(
            emitted(TcpOptions {
                sack_permitted: true,
                ..TcpOptions::default()
            }),
            [1, 1, 4, 2]
        );
        assert_eq!(
            emitted(TcpOptions {
                timestamps: Some((1, 2)),
                ..TcpOptions::default()
            }),
            [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]
        );
    }
}

//! The send stamp a traffic generator puts in a frame's trailer, for capture latency.
//!
//! # Contract
//!
//! A stamped frame ends in [`SEND_STAMP_LEN`] bytes that lie entirely after the end of its IP
//! packet (the end the IPv4 total length or the IPv6 payload length declares): in the frame's
//! trailer, where Ethernet padding goes. They are therefore never TCP payload and never covered
//! by a checksum, and a receiver that does not look for them sees a padded frame.
//!
//! ```text
//! ┌─ link header ─┬─ IP packet (declared length) ─┬─ padding (any) ─┬─ "LWSTAMP1" ─┬─ u64 LE ─┐
//!                                                 └──────────── trailer ──────────────────────┘
//!                                                                  └── last 16 bytes: stamp ──┘
//! ```
//!
//! - bytes 0..8: [`SEND_STAMP_MAGIC`], `*b"LWSTAMP1"`;
//! - bytes 8..16: the send time, CLOCK_MONOTONIC nanoseconds, little-endian `u64`.
//!
//! [`write_send_stamp`] writes one; [`read_send_stamp`] reads the last 16 bytes of a trailer;
//! [`TcpSegment::send_stamp`](super::TcpSegment::send_stamp) is the same on a decoded frame.
//! Normal traffic carries at most a few bytes of padding (the 60-byte Ethernet minimum), so
//! for it the reader costs one length compare.
//!
//! What a stamp needs to arrive:
//! - the same CLOCK_MONOTONIC at both ends: sender and receiver on one host (network
//!   namespaces share it; a time namespace does not);
//! - a frame of at least 60 bytes without the FCS: a NIC pads a shorter frame *after* the
//!   stamp, which hides it;
//! - an L2 path (veth, bridge, switch, port mirror): a router or the receiving host's IP stack
//!   trims the trailer, and a capture that keeps the FCS puts 4 bytes after the stamp.
//!
//! Anything on the wire can write a stamp, so capture latency is a lab measurement, not a
//! figure to trust on production traffic.

use core::ops::Range;

/// Length of a send stamp: magic and time.
pub const SEND_STAMP_LEN: usize = 16;

/// The first 8 bytes of a send stamp ("linewatch stamp", format 1).
pub const SEND_STAMP_MAGIC: [u8; 8] = *b"LWSTAMP1";

mod field {
    use core::ops::Range;

    pub(super) const MAGIC: Range<usize> = 0..8;
    pub(super) const MONO_NS: Range<usize> = 8..16;
}

/// Where the stamp sits in a trailer of `len` bytes: its last [`SEND_STAMP_LEN`] bytes.
#[inline]
const fn stamp_range(len: usize) -> Range<usize> {
    len - SEND_STAMP_LEN..len
}

/// Writes a send stamp for `mono_ns` (CLOCK_MONOTONIC nanoseconds) into `tail`, which must be
/// the last [`SEND_STAMP_LEN`] bytes of the frame, after the end of its IP packet: the IP
/// header's length fields do not count them. The stamp is [`SEND_STAMP_MAGIC`] then `mono_ns`
/// as a little-endian `u64`. The frame must be at least 60 bytes long (without FCS), or the
/// sending NIC pads it after the stamp.
///
/// # Panics
///
/// If `tail` is not exactly [`SEND_STAMP_LEN`] bytes long.
pub fn write_send_stamp(tail: &mut [u8], mono_ns: u64) {
    assert_eq!(
        tail.len(),
        SEND_STAMP_LEN,
        "a send stamp is written into exactly the last {SEND_STAMP_LEN} bytes of a frame"
    );
    tail[field::MAGIC].copy_from_slice(&SEND_STAMP_MAGIC);
    tail[field::MONO_NS].copy_from_slice(&mono_ns.to_le_bytes());
}

/// The send time (CLOCK_MONOTONIC nanoseconds) in the last [`SEND_STAMP_LEN`] bytes of
/// `trailer` (the bytes of a frame after its IP packet), or `None` when the trailer is shorter
/// or those bytes do not start with [`SEND_STAMP_MAGIC`]. Never panics.
#[inline]
pub fn read_send_stamp(trailer: &[u8]) -> Option<u64> {
    // The common case, an unstamped frame with at most a few bytes of padding, ends here.
    if trailer.len() < SEND_STAMP_LEN {
        return None;
    }
    let stamp = &trailer[stamp_range(trailer.len())];
    if stamp[field::MAGIC] != SEND_STAMP_MAGIC {
        return None;
    }
    let mut time = [0; 8];
    time.copy_from_slice(&stamp[field::MONO_NS]);
    Some(u64::from_le_bytes(time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{decode_frame, LinkType};
    use std::vec::Vec;

    /// The stamp of every vector below: 0x0102_0304_0506_0708 ns.
    const MONO_NS: u64 = 0x0102_0304_0506_0708;
    const STAMP: [u8; SEND_STAMP_LEN] = [
        b'L', b'W', b'S', b'T', b'A', b'M', b'P', b'1', // magic
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // MONO_NS, little-endian
    ];
    /// 02:00:00:00:00:02 ← 02:00:00:00:00:01, IPv4.
    const ETH_IPV4: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    /// The same addresses, IPv6.
    const ETH_IPV6: [u8; 14] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x86, 0xDD];
    /// The same addresses, an 802.1Q tag (VID 100), IPv4.
    const ETH_VLAN_IPV4: [u8; 18] = [
        2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00,
    ];
    /// IPv4, total length 44 (20 + 20 + 4), TCP, 192.0.2.1 → 192.0.2.2.
    const IPV4: [u8; 20] = [
        0x45, 0x00, 0x00, 0x2C, 0x00, 0x01, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, // ..checksum
        192, 0, 2, 1, 192, 0, 2, 2,
    ];
    /// IPv6, payload length 24 (20 + 4), TCP, ::1 → ::2.
    const IPV6: [u8; 40] = [
        0x60, 0, 0, 0, 0x00, 0x18, 0x06, 64, // version, length, next header, hop limit
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // ::1
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // ::2
    ];
    /// TCP 49152 → 80, seq 1, ack 2, data offset 5, PSH ACK.
    const TCP: [u8; 20] = [
        0xC0, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18, 0x02, 0x00, 0, 0, 0, 0,
    ];
    const PAYLOAD: &[u8] = b"GET ";

    fn frame(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn writer_and_reader_agree() {
        let mut tail = [0xEE; SEND_STAMP_LEN];
        write_send_stamp(&mut tail, MONO_NS);
        assert_eq!(tail, STAMP);
        assert_eq!(read_send_stamp(&tail), Some(MONO_NS));
        // Only the last 16 bytes count: padding before the stamp is allowed...
        assert_eq!(
            read_send_stamp(&[&[0; 5][..], &STAMP].concat()),
            Some(MONO_NS)
        );
        // ...bytes after it are not.
        assert_eq!(read_send_stamp(&[&STAMP[..], &[0; 4]].concat()), None);
        assert_eq!(read_send_stamp(&STAMP[1..]), None);
        assert_eq!(read_send_stamp(&[]), None);
    }

    #[test]
    #[should_panic(expected = "exactly the last 16 bytes")]
    fn writer_refuses_a_longer_tail() {
        write_send_stamp(&mut [0; SEND_STAMP_LEN + 1], 1);
    }

    #[test]
    fn stamped_ipv4_frame() {
        let f = frame(&[&ETH_IPV4, &IPV4, &TCP, PAYLOAD, &STAMP]);
        let s = decode_frame(LinkType::Ethernet, &f).unwrap();
        assert_eq!(s.payload, PAYLOAD, "the stamp is not payload");
        assert_eq!(s.trailer, STAMP);
        assert_eq!(s.send_stamp(), Some(MONO_NS));
        assert!(!s.truncated);
    }

    #[test]
    fn stamped_ipv6_frame() {
        let f = frame(&[&ETH_IPV6, &IPV6, &TCP, PAYLOAD, &STAMP]);
        let s = decode_frame(LinkType::Ethernet, &f).unwrap();
        assert_eq!(s.payload, PAYLOAD);
        assert_eq!(s.trailer, STAMP);
        assert_eq!(s.send_stamp(), Some(MONO_NS));
    }

    #[test]
    fn stamped_vlan_frame_after_padding() {
        let f = frame(&[&ETH_VLAN_IPV4, &IPV4, &TCP, PAYLOAD, &[0; 3], &STAMP]);
        let s = decode_frame(LinkType::Ethernet, &f).unwrap();
        assert_eq!(s.vlan_ids, [100, 0]);
        assert_eq!(s.payload, PAYLOAD);
        assert_eq!(s.trailer.len(), 3 + SEND_STAMP_LEN);
        assert_eq!(s.send_stamp(), Some(MONO_NS));
    }

    #[test]
    fn padding_alone_is_no_stamp() {
        // Six bytes of padding, as a 54-byte bare ACK gets to reach the 60-byte minimum.
        let f = frame(&[&ETH_IPV4, &IPV4, &TCP, PAYLOAD, &[0; 6]]);
        let s = decode_frame(LinkType::Ethernet, &f).unwrap();
        assert_eq!(s.payload, PAYLOAD);
        assert_eq!(s.trailer, [0; 6]);
        assert_eq!(s.send_stamp(), None);

        let bare = frame(&[&ETH_IPV4, &IPV4, &TCP, PAYLOAD]);
        let s = decode_frame(LinkType::Ethernet, &bare).unwrap();
        assert!(s.trailer.is_empty());
        assert_eq!(s.send_stamp(), None);
    }

    #[test]
    fn stamp_sized_trailer_with_another_magic_is_no_stamp() {
        for at in 0..SEND_STAMP_MAGIC.len() {
            let mut wrong = STAMP;
            wrong[at] ^= 0x20;
            let f = frame(&[&ETH_IPV4, &IPV4, &TCP, PAYLOAD, &wrong]);
            let s = decode_frame(LinkType::Ethernet, &f).unwrap();
            assert_eq!(s.trailer.len(), SEND_STAMP_LEN);
            assert_eq!(s.send_stamp(), None, "magic byte {at} changed");
        }
    }

    #[test]
    fn truncated_capture_has_no_trailer() {
        let f = frame(&[&ETH_IPV4, &IPV4, &TCP, PAYLOAD, &STAMP]);
        let ip_end = ETH_IPV4.len() + IPV4.len() + TCP.len() + PAYLOAD.len();
        // Cut inside the IP packet: no trailer at all, and the cut is reported.
        let s = decode_frame(LinkType::Ethernet, &f[..ip_end - 2]).unwrap();
        assert!(s.truncated);
        assert!(s.trailer.is_empty());
        assert_eq!(s.send_stamp(), None);
        // Cut inside the stamp: the trailer is what was captured, too short for a stamp.
        let s = decode_frame(LinkType::Ethernet, &f[..ip_end + 10]).unwrap();
        assert!(!s.truncated);
        assert_eq!(s.trailer, &STAMP[..10]);
        assert_eq!(s.send_stamp(), None);
    }
}

//! Zero-copy views of the headers between a captured frame and its TCP payload.
//!
//! # Contract
//!
//! Each header type is a view `Foo<T: AsRef<[u8]>>` over a buffer, after smoltcp's `wire`
//! module. `Foo::new_unchecked` wraps any buffer; `Foo::check_len` verifies that the buffer
//! holds the whole header the view describes (including variable parts such as IPv4 options or
//! the TCP data offset); `Foo::new_checked` is the two together. **After `check_len` succeeds,
//! no accessor of that view panics.** Field offsets are named ranges in a private `field`
//! module in each file.
//!
//! A buffer may be shorter than the length an IP header declares: captures cut at a snap
//! length do that. The views then give the bytes that are present and report the cut
//! (`is_truncated`), so the caller can count what it saw and know it did not see everything.
//! A buffer longer than the declared length (Ethernet padding on short frames) is cut to the
//! declared length, so padding is never mistaken for payload; what lies past it is the
//! frame's trailer, where a traffic generator may put a send stamp (`stamp.rs`:
//! [`write_send_stamp`], [`read_send_stamp`]) for capture-latency measurement.
//!
//! # Data flow
//!
//! [`decode_frame`] walks link layer → VLAN tags → IPv4/IPv6 (+ extension headers) → TCP and
//! returns a [`TcpSegment`]: the addresses, ports, sequence numbers, flags, payload and trailer
//! the engine needs, or the [`WireError`] that says why the frame is not a TCP segment it can
//! read.

mod ethernet;
mod ipv4;
mod ipv6;
mod link;
mod stamp;
mod tcp;

pub use ethernet::{EtherType, EthernetFrame, VlanTag};
pub use ipv4::Ipv4Packet;
pub use ipv6::{Ipv6Packet, Ipv6Payload};
pub use link::{
    common as common_frame, decode_frame, ethernet_ipv4_tcp, ip_packet, LinkType, TcpSegment,
    MAX_VLAN_TAGS,
};
pub use stamp::{read_send_stamp, write_send_stamp, SEND_STAMP_LEN, SEND_STAMP_MAGIC};
pub use tcp::{TcpFlags, TcpHeader};

use crate::counter_enum::counter_enum;

/// IP protocol numbers this crate looks at (IANA "Assigned Internet Protocol Numbers").
pub mod ip_protocol {
    /// IPv6 Hop-by-Hop Options extension header.
    pub const HOP_BY_HOP: u8 = 0;
    /// Transmission Control Protocol.
    pub const TCP: u8 = 6;
    /// User Datagram Protocol.
    pub const UDP: u8 = 17;
    /// IPv6 Routing extension header.
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment extension header.
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload: everything after it is encrypted.
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// IPv6 "No Next Header".
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 Destination Options extension header.
    pub const DESTINATION_OPTIONS: u8 = 60;
}

counter_enum! {
    /// Why a frame did not yield a TCP segment. Each variant indexes a counter; some are not
    /// faults at all (ARP is [`WireError::NotIp`], UDP is [`WireError::NotTcp`]) but traffic
    /// this monitor does not read.
    pub enum WireError {
        /// The buffer ends inside a header that must be whole (Ethernet, VLAN tag, IP, TCP).
        Truncated => "truncated",
        /// The link layer carries something other than IPv4 or IPv6 (ARP, LLDP, ...).
        NotIp => "not_ip",
        /// More stacked VLAN tags than [`MAX_VLAN_TAGS`].
        TooManyVlanTags => "too_many_vlan_tags",
        /// The IP version nibble does not match the link layer's protocol field.
        BadIpVersion => "bad_ip_version",
        /// A header-length field is below its minimum (IPv4 IHL < 5, TCP data offset < 5).
        BadHeaderLength => "bad_header_length",
        /// The IPv4 total length is smaller than its own header.
        BadTotalLength => "bad_total_length",
        /// The IP payload is not TCP (UDP, ICMP, ...).
        NotTcp => "not_tcp",
        /// A non-first IP fragment: it carries no TCP header.
        Fragment => "fragment",
        /// More IPv6 extension headers than the walk allows.
        TooManyExtensionHeaders => "too_many_extension_headers",
        /// IPsec ESP: the rest of the packet is encrypted.
        Encrypted => "encrypted",
    }
}

/// Reads a big-endian `u16` at `at`. Callers pass offsets that `check_len` has proven in range.
#[inline]
fn be16(data: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([data[at], data[at + 1]])
}

/// Reads a big-endian `u32` at `at`. Callers pass offsets that `check_len` has proven in range.
#[inline]
fn be32(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

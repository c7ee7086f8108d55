//! What IPv4 and IPv6 share, and the numbers the layers above them are named by: the
//! protocol numbers, the default TTL (hop limit), the limit of a fragment offset.

/// IP protocol number of ICMP.
pub const IP_PROTOCOL_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IP_PROTOCOL_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IP_PROTOCOL_UDP: u8 = 17;

/// Default TTL and hop limit: Linux's.
pub const DEFAULT_TTL: u8 = 64;

/// Fragment offsets are 13 bits, in IPv4 and in IPv6's fragment header.
pub(super) const FRAGMENT_OFFSET_MAX: u16 = 0x1FFF;

//! One TCP segment of a connection as a whole Ethernet frame, through testkit's frame builder.
//!
//! Every frame of a capture shares its link and network layers ([`FrameLayout`]): Ethernet II
//! with at most one 802.1Q tag, then IPv4 (DF, TTL 64, the side's running IP ID) or IPv6 (hop
//! limit 64). TCP has window 64240 and, on SYNs only, an MSS option for a 1500-byte MTU.
//! Frames shorter than the Ethernet minimum are zero-padded to it, as a NIC sends them.

use std::net::{Ipv4Addr, Ipv6Addr};

use linewatch_testkit::frame::{
    EthernetRepr, Frame, IpRepr, Ipv4Repr, Ipv6Repr, Tags, TcpFlags, TcpOptions, TcpRepr,
    Transport, ETHERNET_MIN_FRAME,
};

use super::addressing::{
    client_v4, client_v6, CLIENT_MAC, SERVER_MAC, SERVER_PORT, SERVER_V4, SERVER_V6,
};

const HOP_LIMIT: u8 = 64;
/// MSS of a 1500-byte MTU: minus 40 bytes of IPv4 + TCP, or 60 of IPv6 + TCP.
const MSS_V4: u16 = 1460;
const MSS_V6: u16 = 1440;
const TCP_WINDOW: u16 = 64_240;

/// Which way a segment goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    ToServer,
    ToClient,
}

impl Direction {
    /// `(source, destination)` of a segment this way, from the client's and the server's.
    fn order<T>(self, client: T, server: T) -> (T, T) {
        match self {
            Direction::ToServer => (client, server),
            Direction::ToClient => (server, client),
        }
    }
}

/// One TCP segment to frame.
#[derive(Debug)]
pub(super) struct Segment<'a> {
    /// The client host's index (see [`client_v4`]).
    pub(super) client: u32,
    pub(super) client_port: u16,
    pub(super) direction: Direction,
    pub(super) seq: u32,
    pub(super) ack: u32,
    pub(super) flags: TcpFlags,
    pub(super) ip_id: u16,
    pub(super) payload: &'a [u8],
}

/// The link and network layers every frame of a capture shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct FrameLayout {
    pub(super) ipv6: bool,
    /// The VLAN ID of the one 802.1Q tag, if any.
    pub(super) vlan: Option<u16>,
}

impl FrameLayout {
    /// `segment` as a frame.
    fn frame<'a>(self, segment: &Segment<'a>) -> Frame<'a> {
        let direction = segment.direction;
        let (src_mac, dst_mac) = direction.order(CLIENT_MAC, SERVER_MAC);
        let (src_port, dst_port) = direction.order(segment.client_port, SERVER_PORT);
        let (ip, mss) = if self.ipv6 {
            let (src, dst) = direction.order(client_v6(segment.client), SERVER_V6);
            let ip = Ipv6Repr {
                hop_limit: HOP_LIMIT,
                ..Ipv6Repr::new(Ipv6Addr::from(src), Ipv6Addr::from(dst))
            };
            (IpRepr::V6(ip), MSS_V6)
        } else {
            let (src, dst) = direction.order(client_v4(segment.client), SERVER_V4);
            let ip = Ipv4Repr {
                ident: segment.ip_id,
                ttl: HOP_LIMIT,
                dont_fragment: true,
                ..Ipv4Repr::new(Ipv4Addr::from(src), Ipv4Addr::from(dst))
            };
            (IpRepr::V4(ip), MSS_V4)
        };
        let tcp = TcpRepr {
            src_port,
            dst_port,
            seq: segment.seq,
            ack: segment.ack,
            flags: segment.flags,
            window: TCP_WINDOW,
            options: TcpOptions {
                mss: segment.flags.contains(TcpFlags::SYN).then_some(mss),
                ..TcpOptions::default()
            },
            payload: segment.payload,
        };
        Frame {
            ethernet: EthernetRepr {
                dst: dst_mac,
                src: src_mac,
                tags: self.vlan.map_or(Tags::None, Tags::Dot1Q),
            },
            ip,
            transport: Transport::Tcp(tcp),
            trailer: &[],
            min_len: ETHERNET_MIN_FRAME,
        }
    }

    /// Writes `segment` as a whole Ethernet frame into `frame` (replacing what it held).
    pub(super) fn build(self, segment: &Segment<'_>, frame: &mut Vec<u8>) {
        self.frame(segment).emit_into(frame);
    }
}

#[cfg(test)]
mod tests {
    use linewatch_testkit::frame::checksum::{finish, sum};
    use linewatch_testkit::frame::{
        ETHERNET_HEADER_LEN, IPV4_HEADER_LEN, IPV6_HEADER_LEN, IP_PROTOCOL_TCP, VLAN_TAG_LEN,
    };

    use super::*;

    #[test]
    fn frames_carry_valid_checksums_and_padding() {
        for layout in [
            FrameLayout {
                ipv6: false,
                vlan: None,
            },
            FrameLayout {
                ipv6: true,
                vlan: Some(42),
            },
        ] {
            let mut frame = Vec::new();
            let segment = Segment {
                client: 3,
                client_port: 4242,
                direction: Direction::ToServer,
                seq: 1,
                ack: 0,
                flags: TcpFlags::SYN,
                ip_id: 9,
                payload: &[],
            };
            layout.build(&segment, &mut frame);
            assert!(frame.len() >= ETHERNET_MIN_FRAME);
            let tags = if layout.vlan.is_some() {
                VLAN_TAG_LEN
            } else {
                0
            };
            let ip = &frame[ETHERNET_HEADER_LEN + tags..];
            // SYN: a 20-byte header and the 4-byte MSS option, over the addresses as written.
            let length_and_protocol = 24 + u32::from(IP_PROTOCOL_TCP);
            let pseudo = |addresses: &[u8]| sum(addresses, 0) + length_and_protocol;
            if layout.ipv6 {
                let tcp = &ip[IPV6_HEADER_LEN..IPV6_HEADER_LEN + 24];
                assert_eq!(finish(sum(tcp, pseudo(&ip[8..40]))), 0);
                assert_eq!(&ip[8..24], &client_v6(3));
            } else {
                assert_eq!(finish(sum(&ip[..IPV4_HEADER_LEN], 0)), 0);
                let tcp = &ip[IPV4_HEADER_LEN..IPV4_HEADER_LEN + 24];
                assert_eq!(finish(sum(tcp, pseudo(&ip[12..20]))), 0);
                assert_eq!(&ip[12..16], &[10, 0, 0, 4]);
            }
        }
    }
}

//! Link layers and the walk from a captured frame to its TCP segment.

use core::net::IpAddr;

use super::{
    ip_protocol, read_send_stamp, EtherType, EthernetFrame, Ipv4Packet, Ipv6Packet, TcpFlags,
    TcpHeader, VlanTag, WireError,
};

/// How many stacked VLAN tags [`decode_frame`] reads: two covers 802.1Q and QinQ.
pub const MAX_VLAN_TAGS: usize = 2;

/// The link layer a frame starts with. AF_XDP always hands over Ethernet; capture files name
/// theirs in the header (see [`LinkType::from_pcap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// Ethernet II, possibly with VLAN tags.
    Ethernet,
    /// No link header: the frame is an IPv4 or IPv6 packet, told apart by its version nibble.
    RawIp,
    /// Raw IPv4 only.
    Ipv4,
    /// Raw IPv6 only.
    Ipv6,
    /// Linux "cooked" capture v1 (`tcpdump -i any`), 16-byte header.
    LinuxSll,
    /// Linux "cooked" capture v2, 20-byte header.
    LinuxSll2,
    /// BSD loopback: a 4-byte address family in the capturing host's byte order.
    Null,
    /// OpenBSD loopback: a 4-byte address family in network byte order.
    Loop,
}

impl LinkType {
    /// The link type for a pcap/pcapng `LINKTYPE_*` (or `DLT_*`) value, `None` if linewatch
    /// cannot read it.
    pub const fn from_pcap(linktype: u32) -> Option<LinkType> {
        Some(match linktype {
            0 => LinkType::Null,
            1 => LinkType::Ethernet,
            // 101 is LINKTYPE_RAW; 12 and 14 are the DLT_RAW values of BSDs that some files use.
            12 | 14 | 101 => LinkType::RawIp,
            108 => LinkType::Loop,
            113 => LinkType::LinuxSll,
            228 => LinkType::Ipv4,
            229 => LinkType::Ipv6,
            276 => LinkType::LinuxSll2,
            _ => return None,
        })
    }
}

/// Cooked-capture header lengths and where their protocol field sits.
mod cooked {
    pub(super) const SLL_HEADER_LEN: usize = 16;
    pub(super) const SLL_PROTOCOL: usize = 14;
    pub(super) const SLL2_HEADER_LEN: usize = 20;
    pub(super) const SLL2_PROTOCOL: usize = 0;
    pub(super) const NULL_HEADER_LEN: usize = 4;
    /// AF_INET is 2 everywhere.
    pub(super) const AF_INET: u32 = 2;
    /// AF_INET6 differs by OS: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
    pub(super) const AF_INET6: [u32; 4] = [10, 24, 28, 30];
}

/// What a frame's TCP segment says, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// VLAN identifiers, outermost first; 0 where there is no tag (VID 0 means "no VLAN").
    pub vlan_ids: [u16; MAX_VLAN_TAGS],
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first payload byte (of the SYN, for a SYN).
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flag bits.
    pub flags: TcpFlags,
    /// The TCP payload present in the frame.
    pub payload: &'a [u8],
    /// The bytes of the frame after the IP packet's declared end: Ethernet padding, a send
    /// stamp (see [`TcpSegment::send_stamp`]). Empty when there are none or the capture cut
    /// the packet; never part of `payload`.
    pub trailer: &'a [u8],
    /// The capture cut the packet before its declared end: `payload` is not all of it.
    pub truncated: bool,
    /// The packet is the first fragment of a larger IP datagram: `payload` is not all of it.
    pub fragmented: bool,
}

impl TcpSegment<'_> {
    /// The generator's send time (CLOCK_MONOTONIC ns) when the trailer ends in a send stamp
    /// (see [`write_send_stamp`](super::write_send_stamp)); `None` otherwise. For a frame with
    /// no more than a few bytes of padding this is one length compare.
    #[inline]
    pub fn send_stamp(&self) -> Option<u64> {
        read_send_stamp(self.trailer)
    }
}

/// The network-layer protocol a link header announces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Network {
    Ipv4,
    Ipv6,
    /// No announcement: the version nibble decides.
    Either,
}

/// Walks `frame` from its link layer to the TCP payload.
///
/// Errors say why the frame yields no TCP segment; see [`WireError`]. Never panics.
///
/// The common frame (untagged Ethernet, IPv4 without options or fragmentation, TCP) is read
/// by [`ethernet_ipv4_tcp`] in one pass of fixed offsets; any other frame, and any that fails
/// one of its tests, takes the general walk, which gives the same segment for a frame both
/// read.
#[inline]
pub fn decode_frame(link: LinkType, frame: &[u8]) -> Result<TcpSegment<'_>, WireError> {
    if link == LinkType::Ethernet {
        if let Some(seg) = ethernet_ipv4_tcp(frame) {
            return Ok(seg);
        }
    }
    decode_walk(link, frame)
}

/// The general walk of [`decode_frame`]: out of line, so the common frame's path stays short.
#[inline(never)]
fn decode_walk(link: LinkType, frame: &[u8]) -> Result<TcpSegment<'_>, WireError> {
    let (network, vlan_ids, packet) = link_layer(link, frame)?;
    decode_ip(network, packet, vlan_ids)
}

/// Fixed offsets of the common frame: Ethernet II without a tag, IPv4 without options, TCP.
/// Offsets are from the frame's start. Public so that code reading the same frame without a
/// decode (the parallel replay's owner test) reads it at the same places.
pub mod common {
    /// Where the EtherType is.
    pub const ETHERTYPE: usize = 12;
    /// Where the IP header starts.
    pub const IP: usize = 14;
    /// Version 4, header length 5 words (no options).
    pub const VER_IHL: u8 = 0x45;
    /// The IPv4 header's length without options.
    pub const IP_HEADER_LEN: usize = 20;
    /// Where the TCP header starts.
    pub const TCP: usize = IP + IP_HEADER_LEN;
    /// The TCP header's length without options.
    pub const TCP_MIN_LEN: usize = 20;
    /// The shortest frame read here: both headers whole.
    pub const MIN_FRAME: usize = TCP + TCP_MIN_LEN;
    /// IPv4 field offsets from the frame's start.
    pub const TOTAL_LEN: usize = IP + 2;
    pub const FLAGS_FRAG_OFFSET: usize = IP + 6;
    pub const PROTOCOL: usize = IP + 9;
    pub const SOURCE: usize = IP + 12;
    pub const DESTINATION: usize = IP + 16;
    /// The MF bit and the fragment offset: either set makes the packet a fragment.
    pub const FRAGMENT_BITS: u16 = 0x3FFF;
    /// TCP field offsets from the frame's start.
    pub const SRC_PORT: usize = TCP;
    pub const DST_PORT: usize = TCP + 2;
    pub const SEQ: usize = TCP + 4;
    pub const ACK: usize = TCP + 8;
    pub const DATA_OFFSET: usize = TCP + 12;
    pub const FLAGS: usize = TCP + 13;
    /// The data offset counts 32-bit words.
    pub const DATA_OFFSET_UNIT: usize = 4;
}

/// The common frame's segment, or `None` for a frame the general walk must read (another
/// link or network layer, a VLAN tag, IP options, a fragment, another protocol, any header
/// the general walk would refuse). What it returns is what the general walk returns (and so
/// [`decode_frame`] for an Ethernet frame).
///
/// Public for the engine's frame path: there the segment stays a value, where the `Result`
/// [`decode_frame`] returns, merged with the general walk's, is built in memory (~18 stores a
/// frame, callgrind).
#[inline(always)]
pub fn ethernet_ipv4_tcp(frame: &[u8]) -> Option<TcpSegment<'_>> {
    use common::*;
    let head: &[u8; MIN_FRAME] = frame.first_chunk()?;
    let be16 = |at: usize| u16::from_be_bytes([head[at], head[at + 1]]);
    let be32 = |at: usize| u32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    if be16(ETHERTYPE) != EtherType::IPV4
        || head[IP] != VER_IHL
        || head[PROTOCOL] != ip_protocol::TCP
        || be16(FLAGS_FRAG_OFFSET) & FRAGMENT_BITS != 0
    {
        return None;
    }
    // As `Ipv4Packet`: the packet ends at its declared length or the frame's end, whichever
    // comes first; what follows the declared end is the trailer.
    let declared = usize::from(be16(TOTAL_LEN));
    let present = frame.len() - IP;
    let end = IP + declared.min(present);
    let tcp_len = usize::from(head[DATA_OFFSET] >> 4) * DATA_OFFSET_UNIT;
    if tcp_len < TCP_MIN_LEN || end < TCP + tcp_len {
        return None;
    }
    Some(TcpSegment {
        vlan_ids: [0; MAX_VLAN_TAGS],
        src: IpAddr::V4(be32(SOURCE).into()),
        dst: IpAddr::V4(be32(DESTINATION).into()),
        src_port: be16(SRC_PORT),
        dst_port: be16(DST_PORT),
        seq: be32(SEQ),
        ack: be32(ACK),
        flags: TcpFlags(head[FLAGS]),
        payload: frame.get(TCP + tcp_len..end)?,
        trailer: frame.get(end..)?,
        truncated: present < declared,
        fragmented: false,
    })
}

/// The IP packet a frame carries (header first, to the end of the frame) and its VLAN ids,
/// outermost first: the link-layer half of [`decode_frame`], for callers that read the IP
/// layer themselves (the engine's fragment reassembly).
pub fn ip_packet(link: LinkType, frame: &[u8]) -> Result<([u16; MAX_VLAN_TAGS], &[u8]), WireError> {
    link_layer(link, frame).map(|(_, vlan_ids, packet)| (vlan_ids, packet))
}

/// The link-layer walk: the network protocol announced, the VLAN ids, the packet.
#[inline(always)]
fn link_layer(
    link: LinkType,
    frame: &[u8],
) -> Result<(Network, [u16; MAX_VLAN_TAGS], &[u8]), WireError> {
    let mut vlan_ids = [0; MAX_VLAN_TAGS];
    let (network, packet) = match link {
        LinkType::Ethernet => {
            let eth = EthernetFrame::new_checked(frame)?;
            let mut ethertype = eth.ethertype();
            let mut rest = eth.payload();
            let mut tags = 0;
            while EtherType::is_vlan(ethertype) {
                if tags == MAX_VLAN_TAGS {
                    return Err(WireError::TooManyVlanTags);
                }
                let tag = VlanTag::new_checked(rest)?;
                vlan_ids[tags] = tag.vid();
                ethertype = tag.ethertype();
                rest = &rest[VlanTag::<&[u8]>::LEN..];
                tags += 1;
            }
            (network_of_ethertype(ethertype)?, rest)
        }
        LinkType::RawIp => (Network::Either, frame),
        LinkType::Ipv4 => (Network::Ipv4, frame),
        LinkType::Ipv6 => (Network::Ipv6, frame),
        LinkType::LinuxSll => cooked_frame(frame, cooked::SLL_HEADER_LEN, cooked::SLL_PROTOCOL)?,
        LinkType::LinuxSll2 => cooked_frame(frame, cooked::SLL2_HEADER_LEN, cooked::SLL2_PROTOCOL)?,
        LinkType::Null | LinkType::Loop => {
            let header = frame
                .get(..cooked::NULL_HEADER_LEN)
                .ok_or(WireError::Truncated)?;
            let bytes = [header[0], header[1], header[2], header[3]];
            // Null is in the capturing host's byte order, unknown to us: try both.
            let family = match link {
                LinkType::Loop => u32::from_be_bytes(bytes),
                _ if u32::from_le_bytes(bytes) < 0x1_0000 => u32::from_le_bytes(bytes),
                _ => u32::from_be_bytes(bytes),
            };
            let network = match family {
                cooked::AF_INET => Network::Ipv4,
                f if cooked::AF_INET6.contains(&f) => Network::Ipv6,
                _ => return Err(WireError::NotIp),
            };
            (network, &frame[cooked::NULL_HEADER_LEN..])
        }
    };
    Ok((network, vlan_ids, packet))
}

fn network_of_ethertype(ethertype: u16) -> Result<Network, WireError> {
    match ethertype {
        EtherType::IPV4 => Ok(Network::Ipv4),
        EtherType::IPV6 => Ok(Network::Ipv6),
        _ => Err(WireError::NotIp),
    }
}

fn cooked_frame(
    frame: &[u8],
    header_len: usize,
    protocol_at: usize,
) -> Result<(Network, &[u8]), WireError> {
    let packet = frame.get(header_len..).ok_or(WireError::Truncated)?;
    let protocol = u16::from_be_bytes([frame[protocol_at], frame[protocol_at + 1]]);
    Ok((network_of_ethertype(protocol)?, packet))
}

fn decode_ip(
    network: Network,
    packet: &[u8],
    vlan_ids: [u16; MAX_VLAN_TAGS],
) -> Result<TcpSegment<'_>, WireError> {
    let version = packet.first().ok_or(WireError::Truncated)? >> 4;
    let (src, dst, transport, trailer, truncated, fragmented) = match (network, version) {
        (Network::Ipv4 | Network::Either, 4) => {
            let ip = Ipv4Packet::new_checked(packet)?;
            if ip.fragment_offset() != 0 {
                return Err(WireError::Fragment);
            }
            if ip.protocol() != ip_protocol::TCP {
                return Err(WireError::NotTcp);
            }
            let (src, dst) = (IpAddr::V4(ip.source()), IpAddr::V4(ip.destination()));
            (
                src,
                dst,
                ip.payload(),
                ip.trailer(),
                ip.is_truncated(),
                ip.more_fragments(),
            )
        }
        (Network::Ipv6 | Network::Either, 6) => {
            let ip = Ipv6Packet::new_checked(packet)?;
            let upper = ip.upper_layer()?;
            if upper.protocol != ip_protocol::TCP {
                return Err(WireError::NotTcp);
            }
            let (src, dst) = (IpAddr::V6(ip.source()), IpAddr::V6(ip.destination()));
            (
                src,
                dst,
                upper.data,
                ip.trailer(),
                ip.is_truncated(),
                upper.fragmented,
            )
        }
        _ => return Err(WireError::BadIpVersion),
    };
    let tcp = TcpHeader::new_checked(transport)?;
    Ok(TcpSegment {
        vlan_ids,
        src,
        dst,
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq(),
        ack: tcp.ack(),
        flags: tcp.flags(),
        payload: tcp.payload(),
        trailer,
        truncated,
        fragmented,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{write_send_stamp, SEND_STAMP_LEN};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use std::vec::Vec;

    const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

    fn tcp(payload: &[u8]) -> Vec<u8> {
        let mut t = std::vec![0xC0, 0x00, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 2, 0x50, 0x18];
        t.extend_from_slice(&[0x02, 0x00, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        t
    }

    fn ipv4(protocol: u8, transport: &[u8]) -> Vec<u8> {
        let total = u16::try_from(20 + transport.len()).unwrap().to_be_bytes();
        let mut p = std::vec![0x45, 0, total[0], total[1], 0, 0, 0x40, 0, 64, protocol, 0, 0];
        p.extend_from_slice(&[192, 0, 2, 1, 192, 0, 2, 2]);
        p.extend_from_slice(transport);
        p
    }

    fn ipv6(transport: &[u8]) -> Vec<u8> {
        let len = u16::try_from(transport.len()).unwrap().to_be_bytes();
        let mut p = std::vec![0x60, 0, 0, 0, len[0], len[1], ip_protocol::TCP, 64];
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        p.extend_from_slice(transport);
        p
    }

    fn ethernet(tpids: &[u16], ethertype: u16, packet: &[u8]) -> Vec<u8> {
        let mut f = std::vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        for (i, tpid) in tpids.iter().enumerate() {
            f.extend_from_slice(&tpid.to_be_bytes());
            f.extend_from_slice(&(10 + u16::try_from(i).unwrap()).to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(packet);
        f
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let frame = ethernet(&[], EtherType::IPV4, &ipv4(6, &tcp(PAYLOAD)));
        let s = decode_frame(LinkType::Ethernet, &frame).unwrap();
        assert_eq!(s.src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(s.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!((s.src_port, s.dst_port, s.seq, s.ack), (49152, 80, 1, 2));
        assert_eq!(s.payload, PAYLOAD);
        assert_eq!(s.vlan_ids, [0, 0]);
        assert!(!s.truncated && !s.fragmented);
    }

    #[test]
    fn the_common_frame_reads_as_the_general_walk_does() {
        // Every header byte of a common frame set to values that pass or fail each of the
        // fast path's tests, and every cut of it: both reads agree, segment or error.
        let mut base = ethernet(&[], EtherType::IPV4, &ipv4(6, &tcp(PAYLOAD)));
        base.extend_from_slice(&[0xEE; 6]); // padding: a trailer
        let values = [
            0x00, 0x01, 0x05, 0x06, 0x08, 0x20, 0x40, 0x45, 0x46, 0x50, 0x60, 0xFF,
        ];
        let mut frames = Vec::new();
        for at in 0..54 {
            for v in values {
                let mut f = base.clone();
                f[at] = v;
                frames.push(f);
            }
        }
        for len in 0..=base.len() {
            frames.push(base[..len].to_vec());
        }
        for total in [0u16, 19, 20, 39, 40, 41, 58, 60, 64, 2000] {
            let mut f = base.clone();
            f[16..18].copy_from_slice(&total.to_be_bytes());
            frames.push(f);
        }
        let mut fast = 0;
        for f in &frames {
            let walked = decode_walk(LinkType::Ethernet, f);
            assert_eq!(decode_frame(LinkType::Ethernet, f), walked, "{f:02x?}");
            fast += usize::from(super::ethernet_ipv4_tcp(f).is_some());
        }
        // The fast path did read most of them.
        assert!(fast > frames.len() / 2, "{fast} of {}", frames.len());
    }

    #[test]
    fn vlan_and_qinq() {
        let frame = ethernet(&[EtherType::VLAN], EtherType::IPV4, &ipv4(6, &tcp(PAYLOAD)));
        let s = decode_frame(LinkType::Ethernet, &frame).unwrap();
        assert_eq!((s.vlan_ids, s.payload), ([10, 0], PAYLOAD));

        let tags = [EtherType::QINQ, EtherType::VLAN];
        let frame = ethernet(&tags, EtherType::IPV6, &ipv6(&tcp(PAYLOAD)));
        let s = decode_frame(LinkType::Ethernet, &frame).unwrap();
        assert_eq!((s.vlan_ids, s.payload), ([10, 11], PAYLOAD));

        let tags = [EtherType::QINQ, EtherType::QINQ_LEGACY, EtherType::VLAN];
        let frame = ethernet(&tags, EtherType::IPV4, &ipv4(6, &tcp(PAYLOAD)));
        assert_eq!(
            decode_frame(LinkType::Ethernet, &frame).unwrap_err(),
            WireError::TooManyVlanTags
        );
    }

    #[test]
    fn ip_packet_is_the_link_layer_walk() {
        let packet = ipv6(&tcp(PAYLOAD));
        let tags = [EtherType::QINQ, EtherType::VLAN];
        let frame = ethernet(&tags, EtherType::IPV6, &packet);
        assert_eq!(
            ip_packet(LinkType::Ethernet, &frame).unwrap(),
            ([10, 11], &packet[..])
        );
        assert_eq!(
            ip_packet(LinkType::RawIp, &packet).unwrap(),
            ([0, 0], &packet[..])
        );
        let arp = ethernet(&[], 0x0806, &[0; 28]);
        assert_eq!(
            ip_packet(LinkType::Ethernet, &arp).unwrap_err(),
            WireError::NotIp
        );
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut frame = ethernet(&[], EtherType::IPV4, &ipv4(6, &tcp(b"")));
        frame.extend_from_slice(&[0; 6]); // padded to the 60-byte minimum
        let s = decode_frame(LinkType::Ethernet, &frame).unwrap();
        assert!(s.payload.is_empty());
        assert_eq!(s.trailer, [0; 6]);
    }

    #[test]
    fn snap_length_cut() {
        let frame = ethernet(&[], EtherType::IPV4, &ipv4(6, &tcp(PAYLOAD)));
        let s = decode_frame(LinkType::Ethernet, &frame[..frame.len() - 4]).unwrap();
        assert!(s.truncated);
        assert_eq!(s.payload, &PAYLOAD[..PAYLOAD.len() - 4]);
        assert!(s.trailer.is_empty());
    }

    #[test]
    fn other_link_types() {
        let v4 = ipv4(6, &tcp(PAYLOAD));
        let v6 = ipv6(&tcp(PAYLOAD));
        for (link, frame) in [
            (LinkType::RawIp, v4.clone()),
            (LinkType::RawIp, v6.clone()),
            (LinkType::Ipv4, v4.clone()),
            (LinkType::Ipv6, v6.clone()),
            (LinkType::Null, [&2u32.to_le_bytes()[..], &v4].concat()),
            (LinkType::Null, [&30u32.to_be_bytes()[..], &v6].concat()),
            (LinkType::Loop, [&24u32.to_be_bytes()[..], &v6].concat()),
            (
                LinkType::LinuxSll,
                [&[0u8; 14][..], &[0x86, 0xDD], &v6].concat(),
            ),
            (
                LinkType::LinuxSll2,
                [&[0x08, 0x00][..], &[0; 18], &v4].concat(),
            ),
        ] {
            let s = decode_frame(link, &frame).unwrap_or_else(|e| panic!("{link:?}: {e}"));
            assert_eq!(s.payload, PAYLOAD, "{link:?}");
            assert!(s.trailer.is_empty(), "{link:?}");
            // Every link type hands over what follows the IP packet, a send stamp included.
            let mut stamped = frame.clone();
            stamped.extend_from_slice(&[0; SEND_STAMP_LEN]);
            let at = stamped.len() - SEND_STAMP_LEN;
            write_send_stamp(&mut stamped[at..], 42);
            let s = decode_frame(link, &stamped).unwrap_or_else(|e| panic!("{link:?}: {e}"));
            assert_eq!(s.payload, PAYLOAD, "{link:?}");
            assert_eq!(s.trailer.len(), SEND_STAMP_LEN, "{link:?}");
            assert_eq!(s.send_stamp(), Some(42), "{link:?}");
        }
        assert_eq!(LinkType::from_pcap(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_pcap(12), Some(LinkType::RawIp));
        assert_eq!(LinkType::from_pcap(105), None);
    }

    #[test]
    fn errors() {
        let arp = ethernet(&[], EtherType::ARP, &[0; 28]);
        assert_eq!(
            decode_frame(LinkType::Ethernet, &arp).unwrap_err(),
            WireError::NotIp
        );
        let udp = ethernet(&[], EtherType::IPV4, &ipv4(ip_protocol::UDP, &[0; 8]));
        assert_eq!(
            decode_frame(LinkType::Ethernet, &udp).unwrap_err(),
            WireError::NotTcp
        );
        let v6_in_v4 = ethernet(&[], EtherType::IPV4, &ipv6(&tcp(PAYLOAD)));
        assert_eq!(
            decode_frame(LinkType::Ethernet, &v6_in_v4).unwrap_err(),
            WireError::BadIpVersion
        );
        assert_eq!(
            decode_frame(LinkType::Ipv4, &ipv6(&tcp(PAYLOAD))).unwrap_err(),
            WireError::BadIpVersion
        );
        let mut later_fragment = ipv4(6, &tcp(PAYLOAD));
        later_fragment[7] = 0x10;
        assert_eq!(
            decode_frame(LinkType::RawIp, &later_fragment).unwrap_err(),
            WireError::Fragment
        );
        let mut first_fragment = ipv4(6, &tcp(PAYLOAD));
        first_fragment[6] = 0x20;
        assert!(
            decode_frame(LinkType::RawIp, &first_fragment)
                .unwrap()
                .fragmented
        );
        // The IP header promises a TCP header the buffer does not hold.
        let cut = ipv4(6, &tcp(b""));
        assert_eq!(
            decode_frame(LinkType::RawIp, &cut[..30]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            decode_frame(LinkType::RawIp, &[]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            decode_frame(LinkType::LinuxSll, &[0; 15]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            decode_frame(LinkType::Null, &[2, 0]).unwrap_err(),
            WireError::Truncated
        );
        let unknown_family = [&99u32.to_le_bytes()[..], &ipv4(6, &tcp(PAYLOAD))].concat();
        assert_eq!(
            decode_frame(LinkType::Null, &unknown_family).unwrap_err(),
            WireError::NotIp
        );
    }
}

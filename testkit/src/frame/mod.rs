//! Hand-made Ethernet frames: Ethernet II (untagged, 802.1Q or QinQ), IPv4 (options,
//! fragment fields) or IPv6 (extension headers), then TCP (flags, options), UDP or raw bytes,
//! with every length and checksum computed.
//!
//! # Contract
//!
//! - A frame is one plain `Repr` struct per layer, in smoltcp's `Repr::emit` style: each knows
//!   its header length and writes itself into a buffer; [`Frame`] stacks them and owns the
//!   layout. Nothing is parsed and nothing is validated beyond what emitting needs.
//! - **Derived fields are computed, never given:** the EtherType (from the IP version), the
//!   IPv4 total length and IHL, the IPv6 payload length, the IP protocol or Next Header chain
//!   (from the extensions and the transport), the TCP data offset, the UDP length, and the
//!   IPv4 header, TCP and UDP checksums (RFC 1071 sums over the RFC 793 / RFC 768 pseudo-header,
//!   RFC 8200 §8.1 for IPv6; a UDP checksum that comes out 0 is sent as `0xFFFF`).
//! - **Given fields are written as given**, even where a real stack would not send them (a
//!   later fragment with a TCP header behind it, a raw transport with any protocol number):
//!   tests need odd frames as much as honest ones. A frame is cut by slicing what
//!   [`Frame::to_vec`] returns.
//! - **Same reprs, same bytes**: emitting allocates nothing beyond the output and reads no
//!   clock or randomness, so the bench rig's captures are reproducible from their seed.
//! - Fields the reprs do not name are zero: IPv4 TOS, IPv6 traffic class and flow label, the
//!   TCP urgent pointer.
//!
//! # Layout
//!
//! ```text
//! dst src [tags] type | IPv4/IPv6 header [options | extensions] | TCP/UDP header | payload
//!     | trailer | zero padding up to min_len
//! ```
//!
//! The trailer and the padding lie after the IP packet's declared end: in no length and no
//! checksum, where Ethernet padding and the bench rig's send stamp go.
//!
//! # Example
//!
//! ```
//! use linewatch_testkit::frame::{Frame, TcpFlags, TcpRepr};
//!
//! let syn = Frame::tcp(
//!     [10, 0, 0, 1].into(),
//!     [10, 0, 0, 2].into(),
//!     TcpRepr { src_port: 40000, dst_port: 80, flags: TcpFlags::SYN, ..TcpRepr::default() },
//! )
//! .to_vec();
//! assert_eq!(syn.len(), 14 + 20 + 20);
//! ```

// One file per layer, as in smoltcp's `wire`, importing only downward (no two files import
// each other): `checksum`, `ethernet`, `ip_common` and `pcap` import no other file; `ipv4` and
// `ipv6` import the shared `checksum` and `ip_common`; `ip` chooses between `ipv4` and `ipv6`;
// `tcp` and `udp` take an `IpRepr` for their pseudo-header; `transport` chooses between them;
// this file stacks them all into a `Frame`, and no other imports it. Every public item is
// re-exported here, so its path is `frame::X` whichever file holds it.

pub mod checksum;
mod ethernet;
mod ip;
mod ip_common;
mod ipv4;
mod ipv6;
mod pcap;
mod tcp;
#[cfg(test)]
mod test_util;
mod transport;
mod udp;

use std::net::{IpAddr, SocketAddr};

pub use ethernet::{
    EthernetRepr, Tags, CLIENT_MAC, ETHERNET_HEADER_LEN, ETHERNET_MIN_FRAME, ETHERTYPE_ARP,
    ETHERTYPE_IPV4, ETHERTYPE_IPV6, SERVER_MAC, TPID_8021AD, TPID_8021Q, VLAN_TAG_LEN,
};
pub use ip::IpRepr;
pub use ip_common::{DEFAULT_TTL, IP_PROTOCOL_ICMP, IP_PROTOCOL_TCP, IP_PROTOCOL_UDP};
pub use ipv4::{Ipv4Repr, IPV4_CHECKSUM_AT, IPV4_HEADER_LEN, IPV4_MAX_OPTIONS_LEN};
pub use ipv6::{Ipv6Extension, Ipv6Repr, IPV6_EXTENSION_LEN, IPV6_HEADER_LEN};
pub use pcap::pcap;
pub use tcp::{
    TcpFlags, TcpOptions, TcpRepr, DEFAULT_WINDOW, TCP_ACK_AT, TCP_CHECKSUM_AT, TCP_HEADER_LEN,
    TCP_SEQ_AT,
};
pub use transport::Transport;
pub use udp::{UdpRepr, UDP_CHECKSUM_AT, UDP_HEADER_LEN};

/// A whole Ethernet frame: the layers, then what follows the IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// MACs and tags.
    pub ethernet: EthernetRepr,
    /// IPv4 or IPv6.
    pub ip: IpRepr<'a>,
    /// TCP, UDP or raw bytes.
    pub transport: Transport<'a>,
    /// Bytes after the IP packet's end, in no length and no checksum.
    pub trailer: &'a [u8],
    /// The frame is zero-padded up to this length ([`ETHERNET_MIN_FRAME`] pads as a NIC
    /// does; 0 leaves it as long as its parts).
    pub min_len: usize,
}

impl<'a> Frame<'a> {
    /// `tcp` from `src` to `dst` behind a default Ethernet header ([`EthernetRepr::default`])
    /// and IP header ([`IpRepr::new`]), no trailer, no padding.
    ///
    /// # Panics
    /// When `src` and `dst` are of different families.
    #[must_use]
    pub fn tcp(src: IpAddr, dst: IpAddr, tcp: TcpRepr<'a>) -> Self {
        Frame::new(IpRepr::new(src, dst), Transport::Tcp(tcp))
    }

    /// `udp` from `src` to `dst`, as [`Frame::tcp`] does it.
    ///
    /// # Panics
    /// When `src` and `dst` are of different families.
    #[must_use]
    pub fn udp(src: IpAddr, dst: IpAddr, udp: UdpRepr<'a>) -> Self {
        Frame::new(IpRepr::new(src, dst), Transport::Udp(udp))
    }

    /// `transport` in `ip` behind a default Ethernet header, no trailer, no padding.
    #[must_use]
    pub const fn new(ip: IpRepr<'a>, transport: Transport<'a>) -> Self {
        Frame {
            ethernet: EthernetRepr {
                dst: SERVER_MAC,
                src: CLIENT_MAC,
                tags: Tags::None,
            },
            ip,
            transport,
            trailer: &[],
            min_len: 0,
        }
    }

    /// Where the IP header starts.
    #[must_use]
    pub const fn ip_offset(&self) -> usize {
        self.ethernet.header_len()
    }

    /// Where the transport header starts.
    #[must_use]
    pub const fn transport_offset(&self) -> usize {
        self.ip_offset() + self.ip.header_len()
    }

    /// Where the IP packet ends (and the trailer starts).
    #[must_use]
    pub const fn packet_end(&self) -> usize {
        self.transport_offset() + self.transport.buffer_len()
    }

    /// The whole frame's length: layers, trailer, padding.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        let parts = self.packet_end() + self.trailer.len();
        if parts < self.min_len {
            self.min_len
        } else {
            parts
        }
    }

    /// Writes the frame into `buf`, exactly [`buffer_len`](Self::buffer_len) bytes.
    ///
    /// # Panics
    /// When `buf` has another length, or a layer cannot be emitted (see each `emit`).
    pub fn emit(&self, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.buffer_len(), "frame buffer");
        let ip_at = self.ip_offset();
        let transport_at = self.transport_offset();
        let end = self.packet_end();
        let trailer_end = end + self.trailer.len();
        self.ethernet.emit(self.ip.ethertype(), &mut buf[..ip_at]);
        self.ip.emit(
            self.transport.protocol(),
            self.transport.buffer_len(),
            &mut buf[ip_at..transport_at],
        );
        self.transport.emit(&self.ip, &mut buf[transport_at..end]);
        buf[end..trailer_end].copy_from_slice(self.trailer);
        buf[trailer_end..].fill(0);
    }

    /// Replaces `out`'s contents with the frame (a buffer reused across frames).
    pub fn emit_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.resize(self.buffer_len(), 0);
        self.emit(out);
    }

    /// The frame in a new buffer.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.emit_into(&mut out);
        out
    }

    /// The frame's IP packet as IP fragments, one frame each, in order: the transport bytes
    /// (header and payload, checksum over the whole) cut at `cuts`, byte offsets that are
    /// multiples of 8, increasing. IPv4: MF and the offset set, DF clear, identification the
    /// low 16 bits of `ident`. IPv6: a Fragment header (identification `ident`) after the
    /// frame's own extension headers. Same Ethernet header; no trailer, no padding.
    ///
    /// # Panics
    /// When a cut is not a multiple of 8, out of order or past the end.
    #[must_use]
    pub fn fragments(&self, ident: u32, cuts: &[usize]) -> Vec<Vec<u8>> {
        const FRAGMENT_UNIT: usize = 8;
        let [_, _, hi, lo] = ident.to_be_bytes();
        let ident_v4 = u16::from_be_bytes([hi, lo]);
        let whole = self.to_vec();
        let bytes = &whole[self.transport_offset()..self.packet_end()];
        let mut bounds = vec![0];
        bounds.extend_from_slice(cuts);
        bounds.push(bytes.len());
        bounds
            .windows(2)
            .map(|w| {
                let (from, to) = (w[0], w[1]);
                assert!(
                    from % FRAGMENT_UNIT == 0 && from < to,
                    "fragment cuts {cuts:?}"
                );
                let more = to < bytes.len();
                let offset = u16::try_from(from / FRAGMENT_UNIT).expect("a 13-bit offset");
                let transport = Transport::Raw {
                    protocol: self.transport.protocol(),
                    bytes: &bytes[from..to],
                };
                let with = |ip| {
                    Frame {
                        ethernet: self.ethernet,
                        ip,
                        transport,
                        trailer: &[],
                        min_len: 0,
                    }
                    .to_vec()
                };
                match self.ip {
                    IpRepr::V4(ip) => with(IpRepr::V4(Ipv4Repr {
                        ident: ident_v4,
                        dont_fragment: false,
                        more_fragments: more,
                        fragment_offset: offset,
                        ..ip
                    })),
                    IpRepr::V6(ip) => {
                        let mut extensions = ip.extensions.to_vec();
                        extensions.push(Ipv6Extension::Fragment {
                            offset,
                            more,
                            ident,
                        });
                        with(IpRepr::V6(Ipv6Repr {
                            extensions: &extensions,
                            ..ip
                        }))
                    }
                }
            })
            .collect()
    }
}

/// A TCP segment with `payload` from `src` to `dst` in an Ethernet frame: [`Frame::tcp`] with
/// sequence and acknowledgement numbers 0 and window 65535.
///
/// # Panics
/// When `src` and `dst` are of different families.
#[must_use]
pub fn tcp_frame(src: SocketAddr, dst: SocketAddr, flags: TcpFlags, payload: &[u8]) -> Vec<u8> {
    Frame::tcp(
        src.ip(),
        dst.ip(),
        TcpRepr {
            src_port: src.port(),
            dst_port: dst.port(),
            flags,
            payload,
            ..TcpRepr::default()
        },
    )
    .to_vec()
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::test_util::{hex, sums_to_ones};
    use super::*;

    /// Checked with tshark (`ip.check_checksum`, `tcp.check_checksum`: both "Good").
    const TCP_V4: &str = "020000000002 020000000001 0800
        4500 0043 1c46 4000 4006 9c56 c0a80001 c0a800c7
        c000 0050 01020304 0a0b0c0d 5018 01f6 147f 0000
        474554202f20485454502f312e310d0a486f73743a20610d0a0d0a";

    #[test]
    fn a_tcp_segment_in_ipv4_is_byte_for_byte_a_known_frame() {
        let payload = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let src = Ipv4Addr::new(192, 168, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 0, 199);
        let frame = Frame {
            ip: IpRepr::V4(Ipv4Repr {
                ident: 0x1c46,
                ..Ipv4Repr::new(src, dst)
            }),
            ..Frame::tcp(
                src.into(),
                dst.into(),
                TcpRepr {
                    src_port: 49152,
                    dst_port: 80,
                    seq: 0x0102_0304,
                    ack: 0x0a0b_0c0d,
                    flags: TcpFlags::PSH | TcpFlags::ACK,
                    window: 502,
                    payload,
                    ..TcpRepr::default()
                },
            )
        };
        let bytes = frame.to_vec();
        assert_eq!(bytes, hex(TCP_V4));
        assert_eq!(frame.buffer_len(), bytes.len());
        assert_eq!(
            frame.transport_offset(),
            ETHERNET_HEADER_LEN + IPV4_HEADER_LEN
        );
        // Independently of the vector: the header and the segment (over its pseudo-header).
        let ip = &bytes[ETHERNET_HEADER_LEN..frame.transport_offset()];
        assert!(sums_to_ones(ip, &[]), "IPv4 header checksum");
        let tcp = &bytes[frame.transport_offset()..];
        let tcp_len = u8::try_from(tcp.len()).unwrap();
        let pseudo = [&ip[12..20], &[0, IP_PROTOCOL_TCP, 0, tcp_len]].concat();
        assert!(sums_to_ones(tcp, &pseudo), "TCP checksum");
    }

    /// Checked with tshark: QinQ, hop-by-hop, routing and destination options headers, a SYN
    /// with MSS, SACK permitted, timestamps and window scale; TCP checksum "Good".
    const SYN_V6_QINQ: &str = "020000000002 020000000001 88a8 0064 8100 0065 86dd
        6000 0000 0040 00 40 20010db8000000000000000000000001 20010db8000000000000000000000002
        2b 00 0104 00000000  3c 00 0000 00000000  06 00 0104 00000000
        9c40 1f90 000003e8 00000000 a002 faf0 ed8f 0000
        020405a0 0402 080a 11223344 00000000 01030307";

    #[test]
    fn a_syn_in_ipv6_with_extensions_and_options_is_byte_for_byte_a_known_frame() {
        let extensions = [
            Ipv6Extension::HopByHop,
            Ipv6Extension::Routing,
            Ipv6Extension::DestinationOptions,
        ];
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let frame = Frame {
            ethernet: EthernetRepr {
                tags: Tags::QinQ {
                    outer: 100,
                    inner: 101,
                },
                ..EthernetRepr::default()
            },
            ip: IpRepr::V6(Ipv6Repr {
                extensions: &extensions,
                ..Ipv6Repr::new(src, dst)
            }),
            ..Frame::tcp(
                src.into(),
                dst.into(),
                TcpRepr {
                    src_port: 40000,
                    dst_port: 8080,
                    seq: 1000,
                    flags: TcpFlags::SYN,
                    window: 64240,
                    options: TcpOptions {
                        mss: Some(1440),
                        sack_permitted: true,
                        timestamps: Some((0x1122_3344, 0)),
                        window_scale: Some(7),
                    },
                    ..TcpRepr::default()
                },
            )
        };
        let bytes = frame.to_vec();
        assert_eq!(bytes, hex(SYN_V6_QINQ));
        let tcp = &bytes[frame.transport_offset()..];
        assert_eq!(tcp.len(), 40);
        let ip = &bytes[frame.ip_offset()..];
        let pseudo = [&ip[8..40], &[0, 0, 0, 40, 0, 0, 0, IP_PROTOCOL_TCP]].concat();
        assert!(sums_to_ones(tcp, &pseudo), "TCP checksum");
    }

    #[test]
    fn udp_with_a_tag_is_padded_to_the_ethernet_minimum_outside_the_packet() {
        // Checked with tshark: IPv4 and UDP checksums "Good", 29 bytes of padding.
        let want = hex("020000000002 020000000001 8100 002a 0800
             4500 001f 0000 4000 4011 26cc 0a000001 0a000002
             0035 9c40 000b 8afd 616263
             0000000000000000000000");
        let frame = Frame {
            ethernet: EthernetRepr {
                tags: Tags::Dot1Q(42),
                ..EthernetRepr::default()
            },
            min_len: ETHERNET_MIN_FRAME,
            ..Frame::udp(
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                UdpRepr {
                    src_port: 53,
                    dst_port: 40000,
                    payload: b"abc",
                },
            )
        };
        assert_eq!(frame.to_vec(), want);
        assert_eq!(frame.packet_end(), 18 + 31);
    }

    #[test]
    fn udp_in_ipv6_and_a_computed_zero_checksum() {
        // Checked with tshark: UDP checksum "Good".
        let want = hex("020000000002 020000000001 86dd
             6000 0000 000d 11 40 fd000000000000000000000000000001 fd000000000000000000000000000002
             0001 0002 000d c1fa 68656c6c6f");
        let (src, dst) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let udp = |payload| {
            Frame::udp(
                src,
                dst,
                UdpRepr {
                    src_port: 1,
                    dst_port: 2,
                    payload,
                },
            )
            .to_vec()
        };
        assert_eq!(udp(b"hello"), want);
        // A payload word equal to the checksum without it makes the sum all ones: the
        // checksum computes to 0, which UDP sends as 0xFFFF.
        let at = 14 + IPV6_HEADER_LEN + UDP_CHECKSUM_AT;
        let without = udp(&[0, 0]);
        let word = [without[at], without[at + 1]];
        let with = udp(&word);
        assert_eq!(with[at..at + 2], [0xFF, 0xFF]);
    }

    #[test]
    fn fragment_fields_and_ipv4_options_are_written_as_given() {
        let options = [1; 12];
        let frame = Frame {
            ip: IpRepr::V4(Ipv4Repr {
                ident: 7,
                dont_fragment: false,
                more_fragments: true,
                fragment_offset: 0x10,
                options: &options,
                ..Ipv4Repr::new([10, 0, 0, 1].into(), [10, 0, 0, 2].into())
            }),
            ..Frame::new(
                IpRepr::new([10, 0, 0, 1].into(), [10, 0, 0, 2].into()),
                Transport::Raw {
                    protocol: IP_PROTOCOL_ICMP,
                    bytes: &[8, 0, 0, 0],
                },
            )
        };
        let bytes = frame.to_vec();
        let ip = &bytes[ETHERNET_HEADER_LEN..];
        assert_eq!(ip[0], 0x48, "IHL 8 words");
        assert_eq!(ip[2..4], [0, 32 + 4], "total length");
        assert_eq!(ip[6..8], [0x20, 0x10], "MF, offset 16");
        assert_eq!(ip[9], IP_PROTOCOL_ICMP);
        assert_eq!(ip[20..32], options);
        assert!(sums_to_ones(&ip[..32], &[]));
        assert_eq!(ip[32..], [8, 0, 0, 0]);

        let extensions = [
            Ipv6Extension::DestinationOptions,
            Ipv6Extension::Fragment {
                offset: 3,
                more: true,
                ident: 0x0102_0304,
            },
        ];
        let v6 = Frame::new(
            IpRepr::V6(Ipv6Repr {
                extensions: &extensions,
                ..Ipv6Repr::new(Ipv6Addr::LOCALHOST, Ipv6Addr::LOCALHOST)
            }),
            Transport::Raw {
                protocol: IP_PROTOCOL_UDP,
                bytes: &[],
            },
        )
        .to_vec();
        let ip = &v6[ETHERNET_HEADER_LEN..];
        assert_eq!(ip[4..7], [0, 16, 60], "payload length, first header");
        assert_eq!(
            ip[40..48],
            [44, 0, 1, 4, 0, 0, 0, 0],
            "next: fragment; PadN"
        );
        assert_eq!(
            ip[48..56],
            [IP_PROTOCOL_UDP, 0, 0, 3 << 3 | 1, 1, 2, 3, 4],
            "next: UDP; offset 3, M, ident"
        );
    }

    #[test]
    fn the_trailer_follows_the_packet_outside_lengths_and_checksums() {
        let tcp = TcpRepr {
            src_port: 1,
            dst_port: 2,
            flags: TcpFlags::ACK,
            payload: b"x",
            ..TcpRepr::default()
        };
        let (src, dst) = ([192, 0, 2, 1].into(), [192, 0, 2, 2].into());
        let plain = Frame::tcp(src, dst, tcp).to_vec();
        let stamped = Frame {
            trailer: b"STAMP",
            min_len: 100,
            ..Frame::tcp(src, dst, tcp)
        }
        .to_vec();
        assert_eq!(stamped.len(), 100);
        assert_eq!(stamped[..plain.len()], plain[..]);
        assert_eq!(&stamped[plain.len()..plain.len() + 5], b"STAMP");
        assert!(stamped[plain.len() + 5..].iter().all(|&b| b == 0));
        // min_len below the parts' length changes nothing.
        let long = Frame {
            min_len: 10,
            ..Frame::tcp(src, dst, tcp)
        };
        assert_eq!(long.to_vec(), plain);
    }

    #[test]
    fn the_convenience_constructor_and_raw_ethernet() {
        let frame = tcp_frame(
            "[2001:db8::1]:40000".parse().unwrap(),
            "[2001:db8::2]:80".parse().unwrap(),
            TcpFlags::SYN,
            b"",
        );
        assert_eq!(frame.len(), 14 + 40 + 20);
        assert_eq!(frame[12..14], ETHERTYPE_IPV6.to_be_bytes());
        assert_eq!(frame[54..58], [0x9c, 0x40, 0, 80]);
        assert_eq!(frame[54 + 13], TcpFlags::SYN.0);

        let arp = EthernetRepr::default().frame(ETHERTYPE_ARP, &[0; 28]);
        assert_eq!(arp.len(), 42);
        assert_eq!(arp[..14], hex("020000000002 020000000001 0806")[..]);
    }

    #[test]
    fn fragments_carry_the_transport_bytes_at_their_offsets() {
        let tcp = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            payload: b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
            ..TcpRepr::default()
        };
        for (src, dst) in [
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()),
            (
                "2001:db8::1".parse().unwrap(),
                "2001:db8::2".parse().unwrap(),
            ),
        ] {
            let frame = Frame::tcp(src, dst, tcp);
            let whole = frame.to_vec();
            let bytes = &whole[frame.transport_offset()..frame.packet_end()];
            let pieces = frame.fragments(0x0102_0304, &[16, 32]);
            assert_eq!(pieces.len(), 3);
            let ip_at = frame.ip_offset();
            let mut joined = Vec::new();
            for (i, p) in pieces.iter().enumerate() {
                let (offset_field, header_len) = if src.is_ipv4() {
                    assert_eq!(p[ip_at + 4..ip_at + 6], [3, 4]); // low 16 bits of the ident
                    (u16::from_be_bytes([p[ip_at + 6], p[ip_at + 7]]), 20)
                } else {
                    assert_eq!(p[ip_at + 6], 44); // Next Header: Fragment
                    assert_eq!(p[ip_at + 44..ip_at + 48], [1, 2, 3, 4]);
                    let field = u16::from_be_bytes([p[ip_at + 42], p[ip_at + 43]]);
                    // IPv6 keeps the offset in the top 13 bits and M in the lowest.
                    ((field >> 3) | (field & 1) << 13, 48)
                };
                assert_eq!(usize::from(offset_field & 0x1FFF), [0, 2, 4][i]);
                assert_eq!(offset_field & 0x2000 != 0, i < 2, "more fragments");
                joined.extend_from_slice(&p[ip_at + header_len..]);
            }
            assert_eq!(joined, bytes);
        }
    }
}

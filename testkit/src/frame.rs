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

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::{BitOr, BitOrAssign};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// EtherType of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// TPID of an 802.1Q tag (and of the inner tag of QinQ).
pub const TPID_8021Q: u16 = 0x8100;
/// TPID of the outer (service) tag of 802.1ad QinQ.
pub const TPID_8021AD: u16 = 0x88A8;
/// IP protocol number of ICMP.
pub const IP_PROTOCOL_ICMP: u8 = 1;
/// IP protocol number of TCP.
pub const IP_PROTOCOL_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IP_PROTOCOL_UDP: u8 = 17;

/// Destination and source MAC plus EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// One 802.1Q tag: TPID and TCI.
pub const VLAN_TAG_LEN: usize = 4;
/// The shortest Ethernet frame without its FCS: shorter ones are padded on the wire.
pub const ETHERNET_MIN_FRAME: usize = 60;
/// IPv4 header without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// Most IPv4 option bytes (IHL 15).
pub const IPV4_MAX_OPTIONS_LEN: usize = 40;
/// IPv6 fixed header.
pub const IPV6_HEADER_LEN: usize = 40;
/// Each IPv6 extension header emitted here.
pub const IPV6_EXTENSION_LEN: usize = 8;
/// TCP header without options.
pub const TCP_HEADER_LEN: usize = 20;
/// UDP header.
pub const UDP_HEADER_LEN: usize = 8;

/// Where the IPv4 header checksum is, from the start of the IPv4 header.
pub const IPV4_CHECKSUM_AT: usize = 10;
/// Where the sequence number is, from the start of the TCP header.
pub const TCP_SEQ_AT: usize = 4;
/// Where the acknowledgement number is, from the start of the TCP header.
pub const TCP_ACK_AT: usize = 8;
/// Where the checksum is, from the start of the TCP header.
pub const TCP_CHECKSUM_AT: usize = 16;
/// Where the checksum is, from the start of the UDP header.
pub const UDP_CHECKSUM_AT: usize = 6;

/// Default TTL and hop limit: Linux's.
pub const DEFAULT_TTL: u8 = 64;
/// Default TCP window: the largest without window scaling.
pub const DEFAULT_WINDOW: u16 = 65_535;
/// The default client side's MAC (locally administered, nobody's).
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The default server side's MAC (locally administered, nobody's).
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

const IPV4_DONT_FRAGMENT: u16 = 0x4000;
const IPV4_MORE_FRAGMENTS: u16 = 0x2000;
/// Fragment offsets are 13 bits, in IPv4 and in IPv6's fragment header.
const FRAGMENT_OFFSET_MAX: u16 = 0x1FFF;
const IPV6_VERSION: u8 = 0x60;

/// The Internet checksum (RFC 1071), in pieces that can be summed separately and combined:
/// a sum over one part of a packet plus a sum over another is the sum over both.
pub mod checksum {
    use std::net::IpAddr;

    /// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte padded
    /// with zero) added to `initial`, with the carries folded back: at most `0xFFFF`, so sums
    /// of a few parts can be added without overflow and folded once.
    #[must_use]
    pub fn sum(data: &[u8], initial: u32) -> u32 {
        let mut chunks = data.chunks_exact(2);
        // u64: no carry is lost on any slice a frame can hold.
        let mut total = u64::from(initial);
        for pair in chunks.by_ref() {
            total += u64::from(u16::from_be_bytes([pair[0], pair[1]]));
        }
        if let [last] = chunks.remainder() {
            total += u64::from(*last) << 8;
        }
        while total > 0xFFFF {
            total = (total & 0xFFFF) + (total >> 16);
        }
        // The loop leaves at most 0xFFFF.
        u32::try_from(total).unwrap_or(u32::MAX)
    }

    /// `sum` with every carry folded back into 16 bits.
    #[must_use]
    pub fn fold(mut sum: u32) -> u16 {
        while sum > 0xFFFF {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        let [.., high, low] = sum.to_be_bytes();
        u16::from_be_bytes([high, low])
    }

    /// The checksum field for a packet whose sum (checksum field zero) is `sum`: the
    /// complement of the folded sum. A packet whose field holds it sums to `0xFFFF`.
    #[must_use]
    pub fn finish(sum: u32) -> u16 {
        !fold(sum)
    }

    /// The sum of the TCP/UDP pseudo-header: both addresses, the protocol and the upper-layer
    /// length (RFC 793 for IPv4, RFC 8200 §8.1 for IPv6; the same words either way).
    ///
    /// # Panics
    /// When `src` and `dst` are of different families.
    #[must_use]
    pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, upper_len: usize) -> u32 {
        let addresses = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => sum(&d.octets(), sum(&s.octets(), 0)),
            (IpAddr::V6(s), IpAddr::V6(d)) => sum(&d.octets(), sum(&s.octets(), 0)),
            _ => panic!("pseudo-header of mixed address families: {src} and {dst}"),
        };
        let len = u32::try_from(upper_len).expect("an upper-layer length fits 32 bits");
        addresses + (len >> 16) + (len & 0xFFFF) + u32::from(protocol)
    }
}

/// The 802.1Q tags between the source MAC and the EtherType. Each value is the whole TCI:
/// priority 0, DEI 0, VLAN ID = the value, as long as it is below 4096.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Tags {
    /// Untagged.
    #[default]
    None,
    /// One 802.1Q tag (TPID `0x8100`).
    Dot1Q(u16),
    /// 802.1ad QinQ: an outer service tag (TPID `0x88A8`), then an inner 802.1Q tag.
    QinQ {
        /// The service tag's TCI.
        outer: u16,
        /// The customer tag's TCI.
        inner: u16,
    },
}

impl Tags {
    /// Bytes the tags take.
    #[must_use]
    pub const fn len(self) -> usize {
        match self {
            Tags::None => 0,
            Tags::Dot1Q(_) => VLAN_TAG_LEN,
            Tags::QinQ { .. } => 2 * VLAN_TAG_LEN,
        }
    }

    /// Untagged.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        matches!(self, Tags::None)
    }
}

/// An Ethernet II header: MACs and tags. The EtherType is the caller's (see [`Frame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Destination MAC.
    pub dst: [u8; 6],
    /// Source MAC.
    pub src: [u8; 6],
    /// VLAN tags.
    pub tags: Tags,
}

impl Default for EthernetRepr {
    /// Client to server ([`CLIENT_MAC`] to [`SERVER_MAC`]), untagged.
    fn default() -> Self {
        EthernetRepr {
            dst: SERVER_MAC,
            src: CLIENT_MAC,
            tags: Tags::None,
        }
    }
}

impl EthernetRepr {
    /// Header bytes, tags included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        ETHERNET_HEADER_LEN + self.tags.len()
    }

    /// Writes the header with `ethertype` into `buf`, which is exactly
    /// [`header_len`](Self::header_len) bytes.
    pub fn emit(&self, ethertype: u16, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.header_len(), "Ethernet header buffer");
        buf[..6].copy_from_slice(&self.dst);
        buf[6..12].copy_from_slice(&self.src);
        let mut at = 12;
        let mut tag = |tpid: u16, tci: u16, at: &mut usize| {
            buf[*at..*at + 2].copy_from_slice(&tpid.to_be_bytes());
            buf[*at + 2..*at + 4].copy_from_slice(&tci.to_be_bytes());
            *at += VLAN_TAG_LEN;
        };
        match self.tags {
            Tags::None => {}
            Tags::Dot1Q(tci) => tag(TPID_8021Q, tci, &mut at),
            Tags::QinQ { outer, inner } => {
                tag(TPID_8021AD, outer, &mut at);
                tag(TPID_8021Q, inner, &mut at);
            }
        }
        buf[at..at + 2].copy_from_slice(&ethertype.to_be_bytes());
    }

    /// A whole frame of this header, `ethertype` and `payload` as given (ARP, a bare header).
    #[must_use]
    pub fn frame(&self, ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0; self.header_len() + payload.len()];
        let (header, rest) = out.split_at_mut(self.header_len());
        self.emit(ethertype, header);
        rest.copy_from_slice(payload);
        out
    }
}

/// An IPv4 header. Length, IHL, protocol and checksum are computed when it is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr<'a> {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Identification.
    pub ident: u16,
    /// Time to live.
    pub ttl: u8,
    /// The DF flag.
    pub dont_fragment: bool,
    /// The MF flag.
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub fragment_offset: u16,
    /// Option bytes, written as given: a multiple of 4, at most [`IPV4_MAX_OPTIONS_LEN`]
    /// (`1` is NOP, so `&[1; 12]` is three words of padding).
    pub options: &'a [u8],
}

impl Ipv4Repr<'_> {
    /// A header from `src` to `dst`: ident 0, TTL 64, DF, no options.
    #[must_use]
    pub const fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Ipv4Repr {
            src,
            dst,
            ident: 0,
            ttl: DEFAULT_TTL,
            dont_fragment: true,
            more_fragments: false,
            fragment_offset: 0,
            options: &[],
        }
    }

    /// Header bytes, options included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        IPV4_HEADER_LEN + self.options.len()
    }

    /// Writes the header of a packet carrying `payload_len` bytes of `protocol` into `buf`,
    /// exactly [`header_len`](Self::header_len) bytes, checksum included.
    ///
    /// # Panics
    /// When the options are not whole words or too long, the fragment offset needs more
    /// than 13 bits, or the packet is longer than 65535 bytes.
    pub fn emit(&self, protocol: u8, payload_len: usize, buf: &mut [u8]) {
        let header_len = self.header_len();
        assert_eq!(buf.len(), header_len, "IPv4 header buffer");
        assert!(
            self.options.len() % 4 == 0 && self.options.len() <= IPV4_MAX_OPTIONS_LEN,
            "IPv4 options are whole 4-byte words, {IPV4_MAX_OPTIONS_LEN} bytes at most: {}",
            self.options.len()
        );
        assert!(
            self.fragment_offset <= FRAGMENT_OFFSET_MAX,
            "fragment offset {} needs more than 13 bits",
            self.fragment_offset
        );
        let total = u16::try_from(header_len + payload_len).expect("an IPv4 packet of 64 KiB");
        let ihl = u8::try_from(header_len / 4).expect("15 words at most");
        let mut flags_offset = self.fragment_offset;
        if self.dont_fragment {
            flags_offset |= IPV4_DONT_FRAGMENT;
        }
        if self.more_fragments {
            flags_offset |= IPV4_MORE_FRAGMENTS;
        }
        buf[0] = 0x40 | ihl;
        buf[1] = 0; // DSCP, ECN
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf[4..6].copy_from_slice(&self.ident.to_be_bytes());
        buf[6..8].copy_from_slice(&flags_offset.to_be_bytes());
        buf[8] = self.ttl;
        buf[9] = protocol;
        buf[10..12].fill(0);
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        buf[IPV4_HEADER_LEN..].copy_from_slice(self.options);
        let sum = checksum::finish(checksum::sum(buf, 0));
        buf[IPV4_CHECKSUM_AT..IPV4_CHECKSUM_AT + 2].copy_from_slice(&sum.to_be_bytes());
    }
}

/// An IPv6 extension header, emitted as 8 bytes (Hdr Ext Len 0) whose Next Header points at
/// what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv6Extension {
    /// Hop-by-Hop Options (type 0), six bytes of PadN.
    HopByHop,
    /// Routing (type 43): routing type 0, segments left 0, so any receiver skips it.
    Routing,
    /// Fragment (type 44).
    Fragment {
        /// Offset in 8-byte units (13 bits).
        offset: u16,
        /// The M flag: more fragments follow.
        more: bool,
        /// Identification.
        ident: u32,
    },
    /// Destination Options (type 60), six bytes of PadN.
    DestinationOptions,
}

impl Ipv6Extension {
    /// Its Next Header value, as the header before it names it.
    #[must_use]
    pub const fn header_type(self) -> u8 {
        match self {
            Ipv6Extension::HopByHop => 0,
            Ipv6Extension::Routing => 43,
            Ipv6Extension::Fragment { .. } => 44,
            Ipv6Extension::DestinationOptions => 60,
        }
    }

    fn emit(self, next_header: u8, buf: &mut [u8]) {
        /// PadN (type 1) over the four bytes after its type and length.
        const PAD_N: [u8; 6] = [1, 4, 0, 0, 0, 0];
        buf[0] = next_header;
        buf[1] = 0; // length in 8-byte units beyond the first 8
        match self {
            Ipv6Extension::HopByHop | Ipv6Extension::DestinationOptions => {
                buf[2..8].copy_from_slice(&PAD_N);
            }
            Ipv6Extension::Routing => buf[2..8].fill(0),
            Ipv6Extension::Fragment {
                offset,
                more,
                ident,
            } => {
                assert!(
                    offset <= FRAGMENT_OFFSET_MAX,
                    "fragment offset {offset} needs more than 13 bits"
                );
                let offset_flags = offset << 3 | u16::from(more);
                buf[2..4].copy_from_slice(&offset_flags.to_be_bytes());
                buf[4..8].copy_from_slice(&ident.to_be_bytes());
            }
        }
    }
}

/// An IPv6 header and its extension headers. Payload length and the Next Header chain are
/// computed when it is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr<'a> {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address (also the pseudo-header's: no routing header here has segments
    /// left).
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Extension headers, in order, between the fixed header and the transport.
    pub extensions: &'a [Ipv6Extension],
}

impl Ipv6Repr<'_> {
    /// A header from `src` to `dst`: hop limit 64, no extension headers.
    #[must_use]
    pub const fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Ipv6Repr {
            src,
            dst,
            hop_limit: DEFAULT_TTL,
            extensions: &[],
        }
    }

    /// Header bytes, extension headers included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        IPV6_HEADER_LEN + IPV6_EXTENSION_LEN * self.extensions.len()
    }

    /// Writes the fixed header and the extension headers of a packet whose transport is
    /// `payload_len` bytes of `protocol` into `buf`, exactly [`header_len`](Self::header_len)
    /// bytes.
    ///
    /// # Panics
    /// When the payload (extension headers included) is longer than 65535 bytes.
    pub fn emit(&self, protocol: u8, payload_len: usize, buf: &mut [u8]) {
        assert_eq!(buf.len(), self.header_len(), "IPv6 header buffer");
        let extensions_len = self.header_len() - IPV6_HEADER_LEN;
        let payload =
            u16::try_from(extensions_len + payload_len).expect("an IPv6 payload of 64 KiB");
        let first = self
            .extensions
            .first()
            .map_or(protocol, |e| e.header_type());
        buf[..4].copy_from_slice(&[IPV6_VERSION, 0, 0, 0]);
        buf[4..6].copy_from_slice(&payload.to_be_bytes());
        buf[6] = first;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src.octets());
        buf[24..40].copy_from_slice(&self.dst.octets());
        let chunks = buf[IPV6_HEADER_LEN..].chunks_exact_mut(IPV6_EXTENSION_LEN);
        for (i, (extension, out)) in self.extensions.iter().zip(chunks).enumerate() {
            let next = self
                .extensions
                .get(i + 1)
                .map_or(protocol, |e| e.header_type());
            extension.emit(next, out);
        }
    }
}

/// The network layer of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRepr<'a> {
    /// IPv4.
    V4(Ipv4Repr<'a>),
    /// IPv6.
    V6(Ipv6Repr<'a>),
}

impl IpRepr<'_> {
    /// [`Ipv4Repr::new`] or [`Ipv6Repr::new`], by the addresses' family.
    ///
    /// # Panics
    /// When `src` and `dst` are of different families.
    #[must_use]
    pub fn new(src: IpAddr, dst: IpAddr) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => IpRepr::V4(Ipv4Repr::new(s, d)),
            (IpAddr::V6(s), IpAddr::V6(d)) => IpRepr::V6(Ipv6Repr::new(s, d)),
            _ => panic!("an IP header from {src} to {dst}: mixed address families"),
        }
    }

    /// The source address.
    #[must_use]
    pub fn src(&self) -> IpAddr {
        match self {
            IpRepr::V4(ip) => IpAddr::V4(ip.src),
            IpRepr::V6(ip) => IpAddr::V6(ip.src),
        }
    }

    /// The destination address.
    #[must_use]
    pub fn dst(&self) -> IpAddr {
        match self {
            IpRepr::V4(ip) => IpAddr::V4(ip.dst),
            IpRepr::V6(ip) => IpAddr::V6(ip.dst),
        }
    }

    /// The EtherType in front of it.
    #[must_use]
    pub const fn ethertype(&self) -> u16 {
        match self {
            IpRepr::V4(_) => ETHERTYPE_IPV4,
            IpRepr::V6(_) => ETHERTYPE_IPV6,
        }
    }

    /// Header bytes, options or extension headers included.
    #[must_use]
    pub const fn header_len(&self) -> usize {
        match self {
            IpRepr::V4(ip) => ip.header_len(),
            IpRepr::V6(ip) => ip.header_len(),
        }
    }

    /// See [`Ipv4Repr::emit`] and [`Ipv6Repr::emit`].
    pub fn emit(&self, protocol: u8, payload_len: usize, buf: &mut [u8]) {
        match self {
            IpRepr::V4(ip) => ip.emit(protocol, payload_len, buf),
            IpRepr::V6(ip) => ip.emit(protocol, payload_len, buf),
        }
    }

    /// The pseudo-header sum of `upper_len` bytes of `protocol` in this packet.
    #[must_use]
    pub fn pseudo_header(&self, protocol: u8, upper_len: usize) -> u32 {
        checksum::pseudo_header(self.src(), self.dst(), protocol, upper_len)
    }
}

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

/// The transport layer of a [`Frame`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(TcpRepr<'a>),
    /// A UDP datagram.
    Udp(UdpRepr<'a>),
    /// Any protocol, bytes as given (ICMP, a fragment's middle, a cut header).
    Raw {
        /// The IP protocol number.
        protocol: u8,
        /// What follows the IP header.
        bytes: &'a [u8],
    },
}

impl Transport<'_> {
    /// Its IP protocol number.
    #[must_use]
    pub const fn protocol(&self) -> u8 {
        match self {
            Transport::Tcp(_) => IP_PROTOCOL_TCP,
            Transport::Udp(_) => IP_PROTOCOL_UDP,
            Transport::Raw { protocol, .. } => *protocol,
        }
    }

    /// Its bytes, headers and payload.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        match self {
            Transport::Tcp(tcp) => tcp.buffer_len(),
            Transport::Udp(udp) => udp.buffer_len(),
            Transport::Raw { bytes, .. } => bytes.len(),
        }
    }

    /// Writes it into `buf`, exactly [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit(&self, ip: &IpRepr<'_>, buf: &mut [u8]) {
        match self {
            Transport::Tcp(tcp) => tcp.emit(ip, buf),
            Transport::Udp(udp) => udp.emit(ip, buf),
            Transport::Raw { bytes, .. } => buf.copy_from_slice(bytes),
        }
    }
}

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

/// A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET, little-endian, snap length
/// 65535) of `frames`, each `(ns since the Unix epoch, bytes)`, in the order given.
///
/// # Panics
/// When a time is past classic pcap's 32-bit seconds or a frame is longer than 4 GiB.
#[must_use]
pub fn pcap(frames: &[(u64, &[u8])]) -> Vec<u8> {
    const MAGIC_MICROSECONDS: u32 = 0xA1B2_C3D4;
    const VERSION: (u16, u16) = (2, 4);
    const SNAPLEN: u32 = 65_535;
    const LINKTYPE_ETHERNET: u32 = 1;
    const NS_PER_SEC: u64 = 1_000_000_000;
    const NS_PER_US: u64 = 1_000;
    let mut out = Vec::with_capacity(24 + frames.iter().map(|(_, f)| 16 + f.len()).sum::<usize>());
    out.extend_from_slice(&MAGIC_MICROSECONDS.to_le_bytes());
    out.extend_from_slice(&VERSION.0.to_le_bytes());
    out.extend_from_slice(&VERSION.1.to_le_bytes());
    out.extend_from_slice(&[0; 8]); // time zone, timestamp accuracy
    out.extend_from_slice(&SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (ns, frame) in frames {
        let secs = u32::try_from(ns / NS_PER_SEC).expect("a time within classic pcap's range");
        let micros = u32::try_from(ns % NS_PER_SEC / NS_PER_US).expect("below a million");
        let len = u32::try_from(frame.len()).expect("a frame below 4 GiB");
        for word in [secs, micros, len, len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(frame);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes from hex, with spaces between fields for reading.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks_exact(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// An Internet checksum check written separately from [`checksum`]: the 16-bit words of a
    /// header or segment with its checksum in place add up to `0xFFFF`.
    fn sums_to_ones(data: &[u8], pseudo: &[u8]) -> bool {
        let words = |d: &[u8]| -> u64 {
            d.chunks(2)
                .map(|c| u64::from(c[0]) << 8 | u64::from(c.get(1).copied().unwrap_or(0)))
                .sum()
        };
        let mut total = words(data) + words(pseudo);
        while total >> 16 != 0 {
            total = (total & 0xFFFF) + (total >> 16);
        }
        total == 0xFFFF
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded); checksum = !ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum::fold(checksum::sum(&data, 0)), 0xddf2);
        assert_eq!(checksum::finish(checksum::sum(&data, 0)), !0xddf2);
        // An odd byte counts as the high half of a word.
        assert_eq!(checksum::sum(&[0x12], 0), 0x1200);
        // Parts sum separately: any split gives the same folded sum.
        for split in 0..=data.len() / 2 {
            let (a, b) = data.split_at(split * 2);
            assert_eq!(
                checksum::fold(checksum::sum(b, checksum::sum(a, 0))),
                0xddf2
            );
        }
        // Carries are never lost, however long the data.
        let ones = vec![0xFF; 200_000];
        assert_eq!(checksum::fold(checksum::sum(&ones, 0)), 0xFFFF);
    }

    #[test]
    fn ipv4_header_matches_a_published_one() {
        // The example header of Wikipedia's "Internet checksum" and "IPv4" articles: UDP,
        // 192.168.0.1 → 192.168.0.199, total length 0x73, DF, TTL 64, checksum b861.
        let want = hex("4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7");
        let ip = Ipv4Repr {
            ident: 0,
            ..Ipv4Repr::new(
                Ipv4Addr::new(192, 168, 0, 1),
                Ipv4Addr::new(192, 168, 0, 199),
            )
        };
        let mut buf = [0; IPV4_HEADER_LEN];
        ip.emit(IP_PROTOCOL_UDP, 0x73 - IPV4_HEADER_LEN, &mut buf);
        assert_eq!(buf[..], want[..]);
        assert!(sums_to_ones(&buf, &[]));
    }

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

    #[test]
    fn a_pcap_of_frames_has_the_classic_header_and_records() {
        let file = pcap(&[(1_700_000_000_123_456_789, &[0xAB; 3])]);
        let want = hex("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000
             00f15365 40e20100 03000000 03000000 ababab");
        assert_eq!(file, want);
    }
}

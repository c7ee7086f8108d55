//! Ethernet II headers, untagged, 802.1Q-tagged or 802.1ad QinQ-tagged.

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

/// Destination and source MAC plus EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;
/// One 802.1Q tag: TPID and TCI.
pub const VLAN_TAG_LEN: usize = 4;
/// The shortest Ethernet frame without its FCS: shorter ones are padded on the wire.
pub const ETHERNET_MIN_FRAME: usize = 60;

/// The default client side's MAC (locally administered, nobody's).
pub const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
/// The default server side's MAC (locally administered, nobody's).
pub const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];

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

/// An Ethernet II header: MACs and tags. The EtherType is the caller's (see
/// [`Frame`](super::Frame)).
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

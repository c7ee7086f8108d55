//! The ethtool constants linewatch uses, from include/uapi/linux/ethtool.h (the layouts are
//! in `ethtool`'s doc).

/// `ETHTOOL_GRSSH`: get the RSS hash function, input transformation, table and key.
pub(super) const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETHTOOL_SRSSH`: set them.
pub(super) const ETHTOOL_SRSSH: u32 = 0x47;
/// `ETHTOOL_GRXFH`: get the fields hashed for one flow type.
pub(super) const ETHTOOL_GRXFH: u32 = 0x29;
/// `ETHTOOL_SRXFH`: set them.
pub(super) const ETHTOOL_SRXFH: u32 = 0x2a;

/// Bytes of `struct ethtool_rxfh` before `rss_config[]`.
pub(super) const RXFH_LEN: usize = 24;
/// Offsets in `struct ethtool_rxfh`.
pub(super) const RXFH_INDIR_SIZE: usize = 8;
pub(super) const RXFH_KEY_SIZE: usize = 12;
pub(super) const RXFH_HFUNC: usize = 16;
pub(super) const RXFH_INPUT_XFRM: usize = 17;
/// Bytes of `struct ethtool_rxnfc` (x86-64 and arm64: its flow spec holds a u64).
pub(super) const RXNFC_LEN: usize = 192;
/// Offsets in `struct ethtool_rxnfc`.
pub(super) const RXNFC_FLOW_TYPE: usize = 4;
pub(super) const RXNFC_DATA: usize = 8;

/// `ETH_RXFH_INDIR_NO_CHANGE`: leave the indirection table as it is.
pub(super) const INDIR_NO_CHANGE: u32 = 0xffff_ffff;
/// `ETH_RSS_HASH_TOP`: the Toeplitz hash function (include/linux/ethtool.h).
pub(super) const HASH_TOP: u8 = 1;
/// `ETH_RSS_HASH_XOR`, `ETH_RSS_HASH_CRC32`: named in the start line.
pub(super) const HASH_XOR: u8 = 2;
pub(super) const HASH_CRC32: u8 = 4;
/// `RXH_XFRM_SYM_XOR` (6.8+) and `RXH_XFRM_SYM_OR_XOR` (6.15+).
pub(super) const XFRM_SYM_XOR: u8 = 1;
pub(super) const XFRM_SYM_OR_XOR: u8 = 2;
/// Flow types of `ETHTOOL_GRXFH`: TCP over IPv4 and over IPv6.
pub(super) const TCP_V4_FLOW: u32 = 0x01;
pub(super) const TCP_V6_FLOW: u32 = 0x05;
/// The flow-hash fields (`RXH_*`): addresses and ports.
pub(super) const RXH_IP_SRC: u64 = 1 << 4;
pub(super) const RXH_IP_DST: u64 = 1 << 5;
pub(super) const RXH_L4_B_0_1: u64 = 1 << 6;
pub(super) const RXH_L4_B_2_3: u64 = 1 << 7;
/// `sdfn`: both addresses and both ports, the fields a symmetric transformation pairs.
pub(super) const RXH_SDFN: u64 = RXH_IP_SRC | RXH_IP_DST | RXH_L4_B_0_1 | RXH_L4_B_2_3;

/// The TCP flow types whose fields are read, and their names in the state file.
pub(super) const FLOWS: [(u32, &str); 2] = [(TCP_V4_FLOW, "tcp4"), (TCP_V6_FLOW, "tcp6")];

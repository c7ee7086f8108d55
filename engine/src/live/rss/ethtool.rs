//! The `SIOCETHTOOL` side of RSS: the ioctl buffers, encoded by hand and unit-tested, and
//! the NIC behind a trait so the change-and-restore sequence is tested on a fake.
//!
//! # The ioctl layout (include/uapi/linux/ethtool.h)
//!
//! ```text
//!  struct ethtool_rxfh (24 bytes, then rss_config[]):
//!   0 cmd u32 | 4 rss_context u32 | 8 indir_size u32 | 12 key_size u32 |
//!  16 hfunc u8 | 17 input_xfrm u8 (rsvd8[0] before 6.8) | 18 rsvd8[2] | 20 rsvd32 u32 |
//!  24 indirection table: indir_size × u32, then the key: key_size bytes
//!  struct ethtool_rxnfc (192 bytes): 0 cmd u32 | 4 flow_type u32 | 8 data u64 | 16 fs ... |
//!  184 rss_context u32; ETHTOOL_GRXFH/SRXFH use cmd, flow_type and data (the RXH_* bits)
//! ```
//!
//! `ETHTOOL_GRSSH` with both sizes 0 returns the sizes; with `indir_size` 0 and the key size,
//! the key alone. `ETHTOOL_SRSSH` with `indir_size` = `ETH_RXFH_INDIR_NO_CHANGE`, `hfunc` 0
//! (no change) and `key_size` 0 changes only `input_xfrm`; with the key size, the key. Kernels
//! before 6.8 refuse a non-zero `rsvd8[0]`, so a key is written with `input_xfrm` 0 (the key is
//! only changed where the transformation is none).

use super::super::sys::siocethtool;
use super::config::RssConfig;
use super::uapi::*;

pub(super) fn put_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

pub(super) fn get_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_ne_bytes(b)
}

/// A `struct ethtool_rxfh` with room for `indir_size` table entries and `key` (its bytes, or
/// zeros for a read of `key_len` bytes).
pub(super) fn rxfh(
    cmd: u32,
    indir_size: u32,
    hfunc: u8,
    input_xfrm: u8,
    key: &[u8],
    key_len: usize,
) -> Vec<u8> {
    let table = if indir_size == INDIR_NO_CHANGE {
        0
    } else {
        indir_size as usize * 4
    };
    let mut buf = vec![0u8; RXFH_LEN + table + key_len];
    put_u32(&mut buf, 0, cmd);
    put_u32(&mut buf, RXFH_INDIR_SIZE, indir_size);
    put_u32(&mut buf, RXFH_KEY_SIZE, u32::try_from(key_len).unwrap_or(0));
    buf[RXFH_HFUNC] = hfunc;
    buf[RXFH_INPUT_XFRM] = input_xfrm;
    buf[RXFH_LEN + table..][..key.len()].copy_from_slice(key);
    buf
}

/// A `struct ethtool_rxnfc` for `ETHTOOL_GRXFH`/`SRXFH`.
pub(super) fn rxnfc(cmd: u32, flow_type: u32, data: u64) -> [u8; RXNFC_LEN] {
    let mut buf = [0u8; RXNFC_LEN];
    put_u32(&mut buf, 0, cmd);
    put_u32(&mut buf, RXNFC_FLOW_TYPE, flow_type);
    buf[RXNFC_DATA..RXNFC_DATA + 8].copy_from_slice(&data.to_ne_bytes());
    buf
}

pub(super) fn rxnfc_data(buf: &[u8; RXNFC_LEN]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[RXNFC_DATA..RXNFC_DATA + 8]);
    u64::from_ne_bytes(b)
}

/// Reads the RSS state of `iface`; the errno of `ETHTOOL_GRSSH` when the driver has none.
pub(super) fn read_config(iface: &str) -> Result<RssConfig, i32> {
    let mut sizes = rxfh(ETHTOOL_GRSSH, 0, 0, 0, &[], 0);
    siocethtool(iface, sizes.as_mut_slice())?;
    let key_len = get_u32(&sizes, RXFH_KEY_SIZE) as usize;
    let mut config = RssConfig {
        hfunc: sizes[RXFH_HFUNC],
        input_xfrm: sizes[RXFH_INPUT_XFRM],
        key: Vec::new(),
        fields: [None; FLOWS.len()],
    };
    if key_len > 0 {
        let mut with_key = rxfh(ETHTOOL_GRSSH, 0, 0, 0, &[], key_len);
        siocethtool(iface, with_key.as_mut_slice())?;
        config.key = with_key[RXFH_LEN..RXFH_LEN + key_len].to_vec();
    }
    for (slot, (flow, _)) in config.fields.iter_mut().zip(FLOWS) {
        let mut buf = rxnfc(ETHTOOL_GRXFH, flow, 0);
        *slot = siocethtool(iface, &mut buf).ok().map(|()| rxnfc_data(&buf));
    }
    Ok(config)
}

/// `ETHTOOL_SRSSH` of the input transformation, or (with `key` not empty) of the key.
pub(super) fn set_rxfh(iface: &str, input_xfrm: u8, key: &[u8]) -> Result<(), i32> {
    let mut buf = rxfh(
        ETHTOOL_SRSSH,
        INDIR_NO_CHANGE,
        0,
        input_xfrm,
        key,
        key.len(),
    );
    siocethtool(iface, buf.as_mut_slice())
}

/// `ETHTOOL_SRXFH` of the fields of `flow`.
pub(super) fn set_fields(iface: &str, flow: u32, fields: u64) -> Result<(), i32> {
    let mut buf = rxnfc(ETHTOOL_SRXFH, flow, fields);
    siocethtool(iface, &mut buf)
}

/// The three things done to a NIC: the ioctls ([`Ethtool`]), or a driver the unit tests play.
pub(super) trait Nic {
    fn read(&self, iface: &str) -> Result<RssConfig, i32>;
    fn set_rxfh(&self, iface: &str, input_xfrm: u8, key: &[u8]) -> Result<(), i32>;
    fn set_fields(&self, iface: &str, flow: u32, fields: u64) -> Result<(), i32>;
}

/// The NIC through `SIOCETHTOOL`.
pub(super) struct Ethtool;

impl Nic for Ethtool {
    fn read(&self, iface: &str) -> Result<RssConfig, i32> {
        read_config(iface)
    }
    fn set_rxfh(&self, iface: &str, input_xfrm: u8, key: &[u8]) -> Result<(), i32> {
        set_rxfh(iface, input_xfrm, key)
    }
    fn set_fields(&self, iface: &str, flow: u32, fields: u64) -> Result<(), i32> {
        set_fields(iface, flow, fields)
    }
}

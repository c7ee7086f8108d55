//! What a NIC reports of its RSS, and whether it keeps a TCP connection's two directions on
//! one queue (see the parent module's contract).

use super::uapi::*;

/// Woo & Park's symmetric Toeplitz key: these two bytes, repeated to the NIC's key size.
pub(super) const WOO_PARK: [u8; 2] = [0x6d, 0x5a];

/// A NIC's RSS state, as `ETHTOOL_GRSSH` and `ETHTOOL_GRXFH` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RssConfig {
    /// `ETH_RSS_HASH_*` of the active function (0: the driver does not say).
    pub(super) hfunc: u8,
    /// `RXH_XFRM_*` (always 0 before Linux 6.8, where the byte was reserved).
    pub(super) input_xfrm: u8,
    pub(super) key: Vec<u8>,
    /// The `RXH_*` fields of each TCP flow type, None where the driver does not report them.
    pub(super) fields: [Option<u64>; FLOWS.len()],
}

/// True when the fields hash sources and destinations alike: each of the address and port
/// pairs whole or absent, and nothing else (the kernel's rule for a symmetric transformation).
pub(super) fn fields_paired(fields: u64) -> bool {
    fields & !RXH_SDFN == 0
        && (fields & RXH_IP_SRC == 0) == (fields & RXH_IP_DST == 0)
        && (fields & RXH_L4_B_0_1 == 0) == (fields & RXH_L4_B_2_3 == 0)
}

/// True for a Toeplitz key whose bits repeat every 16: then a key window is the same 16 and 32
/// bits on, and swapping ports (16 bits apart) or addresses (32 or 128) keeps the hash.
pub(super) fn key_symmetric(key: &[u8]) -> bool {
    key.len() >= WOO_PARK.len() && key.iter().skip(2).zip(key).all(|(a, b)| a == b)
}

/// The Woo & Park key of `len` bytes.
pub(super) fn woo_park_key(len: usize) -> Vec<u8> {
    WOO_PARK.iter().copied().cycle().take(len).collect()
}

pub(super) fn xfrm_name(xfrm: u8) -> String {
    match xfrm {
        0 => "none".to_owned(),
        XFRM_SYM_XOR => "symmetric-xor".to_owned(),
        XFRM_SYM_OR_XOR => "symmetric-or-xor".to_owned(),
        other => format!("{other:#x}"),
    }
}

pub(super) fn hfunc_name(hfunc: u8) -> String {
    match hfunc {
        0 => "unknown".to_owned(),
        HASH_TOP => "Toeplitz".to_owned(),
        HASH_XOR => "xor".to_owned(),
        HASH_CRC32 => "crc32".to_owned(),
        other => format!("{other:#x}"),
    }
}

impl RssConfig {
    /// Fields that are not paired: (index in [`FLOWS`], their value).
    pub(super) fn unpaired_fields(&self) -> Vec<(usize, u64)> {
        self.fields
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.filter(|&f| !fields_paired(f)).map(|f| (i, f)))
            .collect()
    }

    /// How the hash is symmetric, or None.
    pub(super) fn symmetric(&self) -> Option<String> {
        if !self.unpaired_fields().is_empty() {
            return None;
        }
        if self.input_xfrm & (XFRM_SYM_XOR | XFRM_SYM_OR_XOR) != 0 {
            return Some(format!("xfrm {}", xfrm_name(self.input_xfrm)));
        }
        (self.hfunc == HASH_TOP && key_symmetric(&self.key)).then(|| {
            format!(
                "Toeplitz key {}… repeats every 16 bits",
                hex(&self.key[..self.key.len().min(4)])
            )
        })
    }

    /// What makes it not symmetric, for the line.
    pub(super) fn asymmetry(&self) -> String {
        let mut why = Vec::new();
        for (i, f) in self.unpaired_fields() {
            why.push(format!("{} hashes fields {f:#x}, not in pairs", FLOWS[i].1));
        }
        why.push(format!("xfrm {}", xfrm_name(self.input_xfrm)));
        if self.hfunc == HASH_TOP {
            why.push("Toeplitz key not symmetric".to_owned());
        } else {
            why.push(format!("hash function {}", hfunc_name(self.hfunc)));
        }
        why.join(", ")
    }
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

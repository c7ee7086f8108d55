//! Classic pcap files of frames.

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
    use crate::frame::test_util::hex;

    #[test]
    fn a_pcap_of_frames_has_the_classic_header_and_records() {
        let file = pcap(&[(1_700_000_000_123_456_789, &[0xAB; 3])]);
        let want = hex("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000
             00f15365 40e20100 03000000 03000000 ababab");
        assert_eq!(file, want);
    }
}

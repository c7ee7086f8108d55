//! The Internet checksum (RFC 1071), in pieces that can be summed separately and combined:
//! a sum over one part of a packet plus a sum over another is the sum over both.

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

#[cfg(test)]
mod tests {
    use crate::frame::checksum;

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
}

//! Helpers of the tests of more than one layer.

/// Bytes from hex, with spaces between fields for reading.
pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks_exact(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// An Internet checksum check written separately from [`checksum`](super::checksum): the
/// 16-bit words of a header or segment with its checksum in place add up to `0xFFFF`.
pub(super) fn sums_to_ones(data: &[u8], pseudo: &[u8]) -> bool {
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

//! The two searches every head needs, tuned for the short runs HTTP heads are made of.
//!
//! - [`find_byte`] finds line ends. The top-level `memchr::memchr` picks its CPU-specific
//!   routine through an indirect call each time; on x86_64 SSE2 is always present, so its
//!   searcher is called directly instead. (A SWAR pass over the whole header block that handed
//!   out every LF from a bit mask was tried: it took 1.5x the instructions, measured with
//!   callgrind, because SSE2 reads 16 bytes where SWAR reads 8.)
//! - [`target_end`] finds where a request target stops and validates it in the same pass:
//!   eight bytes at a time (SWAR), it looks for the first byte that may not stand in a target
//!   (≤ 0x20, which covers SP, CR and LF, or 0x7F).

/// Byte-wise constants for SWAR arithmetic on a `u64`.
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
/// The lowest byte value allowed in a target: everything below is a control byte or SP.
const FIRST_VISIBLE: u64 = 0x21;
/// DEL, the one control byte above the visible range.
const DEL: u64 = 0x7F;

/// The position of the first `needle` in `haystack`.
#[inline]
pub(super) fn find_byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // `new` is `Some` whenever SSE2 is enabled at compile time, as this cfg says.
        if let Some(searcher) = memchr::arch::x86_64::sse2::memchr::One::new(needle) {
            return searcher.find(haystack);
        }
    }
    memchr::memchr(needle, haystack)
}

/// The position of the first byte of `bytes` that may not stand in a request target, or
/// `bytes.len()` if every byte may.
#[inline]
pub(super) fn target_end(bytes: &[u8]) -> usize {
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        // "Has a byte below n" and "has a zero byte" (Hacker's Delight §6-1): exact for the
        // lowest matching byte, which is all that is read here. `!word & HIGHS` keeps bytes
        // ≥ 0x80 (allowed) from matching.
        let below = word.wrapping_sub(ONES * FIRST_VISIBLE) & !word & HIGHS;
        let del = word ^ (ONES * DEL);
        let is_del = del.wrapping_sub(ONES) & !del & HIGHS;
        let hits = below | is_del;
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = chunks.remainder();
    at + tail
        .iter()
        .position(|&b| b <= b' ' || b == 0x7F)
        .unwrap_or(tail.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_target_end(bytes: &[u8]) -> usize {
        bytes
            .iter()
            .position(|&b| b <= b' ' || b == 0x7F)
            .unwrap_or(bytes.len())
    }

    #[test]
    fn target_end_matches_the_naive_scan_for_every_byte_at_every_position() {
        for len in 0..24 {
            for pos in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = std::vec![b'a'; len];
                    bytes[pos] = byte;
                    // Bytes that borrow in SWAR arithmetic, placed before the byte under test.
                    if pos > 0 {
                        bytes[pos - 1] = 0x80;
                    }
                    assert_eq!(target_end(&bytes), naive_target_end(&bytes), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn find_byte_matches_memchr() {
        let text =
            b"Host: a\r\nUser-Agent: b\r\n\r\n and some more text after it to pass 16 bytes\n";
        for start in 0..text.len() {
            assert_eq!(
                find_byte(b'\n', &text[start..]),
                memchr::memchr(b'\n', &text[start..])
            );
        }
        assert_eq!(find_byte(b'\n', b""), None);
    }
}

//! The two searches every head needs, tuned for the short runs HTTP heads are made of.
//!
//! - [`LineFeeds`] finds line ends: every LF of a header block, handed out from one bit mask
//!   per 64 bytes. On x86_64 a mask is SSE2 compares and `pmovmskb` (through `safe_arch`, so
//!   that this crate stays free of `unsafe`); elsewhere a byte loop builds it. (A SWAR pass that
//!   handed out every LF from a 64-bit mask was tried in an earlier version: it took 1.5x the
//!   instructions of a `memchr` call per line, measured with callgrind, because SWAR reads 8
//!   bytes where SSE2 reads 16.)
//! - [`target_end`] finds where a request target stops and validates it in the same pass: it
//!   looks for the first byte that may not stand in a target (≤ 0x20, which covers SP, CR and
//!   LF, or 0x7F), 16 bytes at a time with SSE2 on x86_64, else 8 at a time (SWAR).

/// Byte-wise constants for SWAR arithmetic on a `u64`.
#[cfg(any(test, not(target_arch = "x86_64")))]
const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
#[cfg(any(test, not(target_arch = "x86_64")))]
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
/// The lowest byte value allowed in a target: everything below is a control byte or SP.
#[cfg(any(test, not(target_arch = "x86_64")))]
const FIRST_VISIBLE: u64 = 0x21;
/// DEL, the one control byte above the visible range.
#[cfg(any(test, not(target_arch = "x86_64")))]
const DEL: u64 = 0x7F;

/// The bytes one SSE2 compare covers.
const LANES: usize = 16;
/// The bytes one mask covers: four compares, a bit each.
const WINDOW: usize = 64;

/// The LFs of a buffer from a start position on, in order, handed out from one bit mask per
/// 64-byte window (four SSE2 compares): a header block's lines are 10 to 40 bytes, so one
/// window holds the ends of several. Measured with callgrind, engine_loop, instructions per
/// frame: a `memchr` call per line 1,033.8; 16-byte windows 1,017.5; 64-byte windows 984.4
/// (with other steps between; 32-byte windows whose tail was read 16 bytes at a time were worse
/// than 16-byte ones).
#[derive(Debug, Clone)]
pub(super) struct LineFeeds<'a> {
    buf: &'a [u8],
    /// Where the current window starts.
    base: usize,
    /// The LFs of the window not yet handed out, bit `i` for `buf[base + i]`.
    mask: u64,
}

impl<'a> LineFeeds<'a> {
    /// The LFs of `buf[at..]` (none if `at` is past the end).
    #[inline]
    pub(super) fn new(buf: &'a [u8], at: usize) -> Self {
        LineFeeds {
            buf,
            base: at,
            mask: window_mask(buf, at),
        }
    }

    /// The index of the next LF.
    #[inline]
    pub(super) fn next_lf(&mut self) -> Option<usize> {
        loop {
            if self.mask != 0 {
                let lf = self.base + self.mask.trailing_zeros() as usize;
                // Clears the lowest set bit.
                self.mask &= self.mask - 1;
                return Some(lf);
            }
            self.base += WINDOW;
            if self.base >= self.buf.len() {
                return None;
            }
            self.mask = following_window_mask(self.buf, self.base);
        }
    }
}

/// The LFs of `buf[at..at + WINDOW]` (of what there is of it) as a mask, bit `i` for
/// `buf[at + i]`. `at` is at most `buf.len()`.
///
/// One path for a whole window and for one that `buf` cuts short: the window read is the one
/// at `at` or, nearer the end, the last whole window of `buf`, with the bits before `at`
/// shifted out (a head usually ends its buffer, and its header block is often shorter than a
/// window: as a separate out-of-line path this was a call on most heads).
#[inline]
fn window_mask(buf: &[u8], at: usize) -> u64 {
    match buf.len().checked_sub(WINDOW) {
        Some(last) if at < buf.len() => {
            let from = at.min(last);
            // `from <= at < from + WINDOW`: the shift is below 64.
            whole_window_mask(&buf[from..from + WINDOW]) >> (at - from)
        }
        _ => short_buffer_mask(buf, at),
    }
}

/// [`window_mask`] for the windows after the first (`at < buf.len()`): in a long head most are
/// whole, read without the select and the shift (callgrind, parse_loop: 3 instructions a
/// window, 32 on `browser_get`); the one that `buf` cuts short goes out of line.
#[inline]
fn following_window_mask(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at + WINDOW) {
        Some(window) => whole_window_mask(window),
        None => last_window_mask(buf, at),
    }
}

/// [`window_mask`], out of line.
#[inline(never)]
fn last_window_mask(buf: &[u8], at: usize) -> u64 {
    window_mask(buf, at)
}

/// The LFs of a whole window, `WINDOW` bytes.
#[inline]
fn whole_window_mask(window: &[u8]) -> u64 {
    window
        .chunks_exact(LANES)
        .enumerate()
        .fold(0, |mask, (i, lanes)| {
            mask | u64::from(lf_mask(lanes)) << (i * LANES)
        })
}

/// [`window_mask`] for a buffer shorter than a window, or a start at its end. Out of line, so
/// that the constants of its byte loop stay out of the caller's registers.
#[inline(never)]
fn short_buffer_mask(buf: &[u8], at: usize) -> u64 {
    if at >= buf.len() {
        return 0;
    }
    (0..WINDOW / LANES).fold(0, |mask, i| {
        mask | u64::from(lanes_mask(buf, at + i * LANES)) << (i * LANES)
    })
}

/// The LFs of `buf[at..at + LANES]` (of what there is of it), for a buffer shorter than a
/// window: 16 bytes read at `at`, or the last 16 of `buf` with the bits before `at` shifted out,
/// or for a buffer shorter than 16 bytes a byte at a time.
fn lanes_mask(buf: &[u8], at: usize) -> u32 {
    if let Some(lanes) = buf.get(at..at + LANES) {
        return lf_mask(lanes);
    }
    if at >= buf.len() {
        return 0;
    }
    match buf.len().checked_sub(LANES) {
        // `from < at < from + LANES`: the shift is below 16.
        Some(from) => lf_mask(&buf[from..]) >> (at - from),
        None => short_lf_mask(&buf[at..]),
    }
}

/// The LFs of a whole 16-byte window: one SSE2 compare and a move of its sign bits.
#[cfg(target_arch = "x86_64")]
#[inline]
fn lf_mask(window: &[u8]) -> u32 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    let Ok(window) = <&[u8; LANES]>::try_from(window) else {
        return short_lf_mask(window);
    };
    let lfs = cmp_eq_mask_i8_m128i(
        load_unaligned_m128i(window),
        set_splat_i8_m128i(b'\n' as i8),
    );
    // The mask has 16 bits: the sign bits of the 16 lanes.
    move_mask_i8_m128i(lfs) as u32
}

/// The LFs of a whole 16-byte window, portably.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn lf_mask(window: &[u8]) -> u32 {
    short_lf_mask(window)
}

/// The LFs of up to 16 bytes, a byte at a time: the end of a buffer shorter than 16 bytes.
fn short_lf_mask(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(LANES)
        .enumerate()
        .fold(0, |mask, (i, &b)| mask | u32::from(b == b'\n') << i)
}

/// The position of the first byte of `bytes` that may not stand in a request target, or
/// `bytes.len()` if every byte may.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn target_end(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(lanes) = bytes.get(at..at + LANES) {
        let stops = target_stop_mask(lanes);
        if stops != 0 {
            return at + stops.trailing_zeros() as usize;
        }
        at += LANES;
    }
    target_end_in_tail(bytes, at)
}

/// [`target_end`], and the length of the section of an origin-form target (see
/// `target::section`) when its first 16 bytes tell it: the first `/`, `?` or `#` after the
/// leading `/`, or the target's end, whichever comes first in those bytes; 0 when they do not
/// tell (another form, a longer first segment, or fewer than 16 bytes in `bytes`). The same
/// load as the target's first stop search: found in a byte loop afterwards, the section cost
/// about 40 instructions a request (callgrind, engine_loop).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(super) fn target_end_and_section(bytes: &[u8]) -> (usize, usize) {
    let Some(lanes) = bytes.get(..LANES) else {
        return (target_end(bytes), 0);
    };
    let stops = target_stop_mask(lanes);
    // Bit 0 is the leading `/` itself.
    let cuts = (section_stop_mask(lanes) & !1) | stops;
    let section = match bytes[0] {
        b'/' if cuts != 0 => cuts.trailing_zeros() as usize,
        _ => 0,
    };
    if stops != 0 {
        return (stops.trailing_zeros() as usize, section);
    }
    (LANES + target_end(&bytes[LANES..]), section)
}

/// [`target_end_and_section`] without SSE2: the section is left to `target::section`.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn target_end_and_section(bytes: &[u8]) -> (usize, usize) {
    (target_end(bytes), 0)
}

/// The bytes of 16 that end a section's first segment, bit `i` for byte `i`: `/`, `?`, `#`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn section_stop_mask(lanes: &[u8]) -> u32 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let Ok(lanes) = <&[u8; LANES]>::try_from(lanes) else {
        return 0;
    };
    let bytes = load_unaligned_m128i(lanes);
    let slash = cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(b'/' as i8));
    let query = cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(b'?' as i8));
    let fragment = cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(b'#' as i8));
    // The mask has 16 bits: the sign bits of the 16 lanes.
    move_mask_i8_m128i(bitor_m128i(slash, bitor_m128i(query, fragment))) as u32
}

/// [`target_end`] from `at`, where fewer than 16 bytes are left: the last 16 bytes of `bytes`
/// with the bits before `at` shifted out, or a byte at a time in a shorter buffer.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
fn target_end_in_tail(bytes: &[u8], at: usize) -> usize {
    let stops = match bytes.len().checked_sub(LANES) {
        // `from < at` (else the caller's loop would have read the window at `at`), and
        // `at - from < 16`.
        Some(from) if at < bytes.len() => target_stop_mask(&bytes[from..]) >> (at - from),
        _ => return at + target_end_bytewise(bytes.get(at..).unwrap_or_default()),
    };
    if stops != 0 {
        at + stops.trailing_zeros() as usize
    } else {
        bytes.len()
    }
}

/// The bytes of 16 that may not stand in a target, bit `i` for byte `i`: those equal to their
/// unsigned minimum with SP (≤ 0x20), and DEL.
#[cfg(target_arch = "x86_64")]
#[inline]
fn target_stop_mask(lanes: &[u8]) -> u32 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    /// The highest byte that may not stand in a target below DEL: SP.
    const LAST_STOP: i8 = 0x20;
    /// DEL, as a lane.
    const DEL_LANE: i8 = 0x7F;
    let Ok(lanes) = <&[u8; LANES]>::try_from(lanes) else {
        return 0;
    };
    let bytes = load_unaligned_m128i(lanes);
    let below = cmp_eq_mask_i8_m128i(min_u8_m128i(bytes, set_splat_i8_m128i(LAST_STOP)), bytes);
    let del = cmp_eq_mask_i8_m128i(bytes, set_splat_i8_m128i(DEL_LANE));
    // The mask has 16 bits: the sign bits of the 16 lanes.
    move_mask_i8_m128i(bitor_m128i(below, del)) as u32
}

/// The position of the first byte of `bytes` that may not stand in a request target, or
/// `bytes.len()` if every byte may.
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub(super) fn target_end(bytes: &[u8]) -> usize {
    target_end_swar(bytes)
}

/// [`target_end`] eight bytes at a time (SWAR), for targets without SSE2 (and tested on all).
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline]
fn target_end_swar(bytes: &[u8]) -> usize {
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
    at + target_end_bytewise(tail)
}

/// [`target_end`] a byte at a time.
fn target_end_bytewise(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| b <= b' ' || b == 0x7F)
        .unwrap_or(bytes.len())
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
        for len in 0..40 {
            for pos in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = std::vec![b'a'; len];
                    bytes[pos] = byte;
                    // Bytes that borrow in SWAR arithmetic, placed before the byte under test.
                    if pos > 0 {
                        bytes[pos - 1] = 0x80;
                    }
                    assert_eq!(target_end(&bytes), naive_target_end(&bytes), "{bytes:?}");
                    assert_eq!(
                        target_end_swar(&bytes),
                        naive_target_end(&bytes),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn section_lengths_match_the_section_of_the_target() {
        let targets: [&[u8]; 12] = [
            b"/",
            b"/s123",
            b"/s123/page4?id=5",
            b"/index.html?x=1",
            b"/a#f",
            b"//x",
            b"/?q",
            b"/a-very-long-first-segment-of-a-path/b",
            b"/exactly15bytes",
            b"/exactly16bytes!",
            b"*",
            b"http://h/a/b",
        ];
        for target in targets {
            for after in [
                &b" HTTP/1.1\r\n"[..],
                b" ",
                b"",
                b"\r\n\r\n0123456789abcdef",
            ] {
                let bytes = [target, after].concat();
                let (end, section) = target_end_and_section(&bytes);
                assert_eq!(end, naive_target_end(&bytes), "{bytes:?}");
                if section != 0 {
                    assert_eq!(
                        &bytes[..section],
                        crate::http::target::section(&bytes[..end]),
                        "{bytes:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn line_feeds_are_every_lf_in_order() {
        let text: &[u8] =
            b"Host: a\r\nUser-Agent: b\r\n\n\n\r\n and some more text after it to pass 16\nbytes\n\
            and then more than two windows: Accept: */*\r\nAccept-Language: en\r\nX: \n\n\r\n\
            \r\nThe end of the text, no LF after it";
        // Every start in every prefix: windows whole, cut short, and shorter than the buffer
        // is long; buffers shorter than one window.
        for len in 0..=text.len() {
            let buf = &text[..len];
            for at in 0..=len + 1 {
                let want: std::vec::Vec<usize> = (at..len).filter(|&i| buf[i] == b'\n').collect();
                let mut lfs = LineFeeds::new(buf, at);
                let got: std::vec::Vec<usize> = core::iter::from_fn(|| lfs.next_lf()).collect();
                assert_eq!(got, want, "len {len} at {at}");
            }
        }
    }

    #[test]
    fn lf_masks_see_only_lf() {
        for at in 0..LANES {
            for byte in 0..=255u8 {
                let mut window = [b'a'; LANES];
                window[at] = byte;
                let want = if byte == b'\n' { 1 << at } else { 0 };
                assert_eq!(lf_mask(&window), want, "{window:?}");
                assert_eq!(short_lf_mask(&window), want, "{window:?}");
            }
        }
    }
}

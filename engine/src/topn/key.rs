//! Keys as the index sees them: a 64-bit hash read a word at a time, and equality against a
//! stored key, both with an optional ASCII lower-casing folded into each word (hosts), so a
//! lower-cased copy is never built to look a key up.
//!
//! Contract: [`hash`] is a fixed function of the bytes (fixed seeds: tables built apart hash
//! alike, so merges reuse stored tags and runs are reproducible); `hash_lower(k) ==
//! hash(lowercase(k))` and `eq_lower(stored, k) == (stored == lowercase(k))` for every `k`,
//! with only ASCII `A`-`Z` folded. A pair key (`section NUL host`, see
//! [`HeavyHitters::record_pair`](super::HeavyHitters::record_pair)) hashes as [`pair_hash`] of
//! its two parts' hashes, so a request never builds the pair to count it.
//!
//! Why not a general-purpose hasher: most keys are short (sections, hosts, agents of a few
//! dozen bytes), and a keyed streaming hasher spends more on its set-up and finish than on the
//! bytes. Here a key of up to 16 bytes is two loads and one folded multiply (the mixing step of
//! foldhash and wyhash); longer keys fold 16 bytes per multiply. Attackers choosing colliding
//! keys only lengthen probes in tables whose size is bounded anyway.

/// Seeds of the folded multiplies (digits of pi; any odd, dense constants do).
const SEEDS: [u64; 6] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
    0x082e_fa98_ec4e_6c89,
    0x4528_21e6_38d0_1377,
    0xbe54_66cf_34e9_0c6c,
];

/// Every byte 0x01.
const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// Every byte 0x80.
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// The high and low halves of the 128-bit product, xored: every input bit reaches many output
/// bits (foldhash's and wyhash's mixing step).
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    let [low, high] =
        [p, p >> 64].map(|half| u64::try_from(half & u128::from(u64::MAX)).unwrap_or(0));
    low ^ high
}

/// The word itself: keys hashed and compared as sent.
#[inline(always)]
pub(super) fn as_sent(word: u64) -> u64 {
    word
}

/// The word with every ASCII capital (0x41..=0x5A) lower-cased, other bytes unchanged
/// (Hacker's Delight §6-1 range test per byte, without carries between bytes).
#[inline(always)]
pub(super) fn lower_word(word: u64) -> u64 {
    let low7 = word & !HIGHS;
    // High bit of each byte: its low 7 bits are >= 'A', resp. > 'Z'. No carry leaves a byte:
    // 0x7F + 0x3F and 0x7F + 0x25 are below 0x100.
    let at_least_a = low7.wrapping_add(ONES * (0x80 - u64::from(b'A'))) & HIGHS;
    let above_z = low7.wrapping_add(ONES * (0x80 - u64::from(b'Z') - 1)) & HIGHS;
    // ASCII bytes only (high bit clear in the word itself).
    let capital = at_least_a & !above_z & !word;
    // 0x80 >> 2 is 0x20, the case bit.
    word | (capital >> 2)
}

#[inline(always)]
fn word8(bytes: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*bytes)
}

#[inline(always)]
fn word2(bytes: &[u8; 2]) -> u64 {
    u64::from(u16::from_le_bytes(*bytes))
}

#[inline(always)]
fn word4(bytes: &[u8; 4]) -> u64 {
    u64::from(u32::from_le_bytes(*bytes))
}

/// Two words that together hold every byte of a key of at most 16 bytes (the first and the
/// last 8, 4 or 2 bytes, overlapping when the key is shorter than two of them; a 1-byte key
/// and zero): a fixed function of the bytes, which is all a hash or a comparison of
/// equal-length keys needs. Every load is at the start or at an offset back from the end,
/// which the load's address takes: nothing is computed from the length ahead of it.
#[inline(always)]
fn short_words(key: &[u8]) -> (u64, u64) {
    if let (Some(head), Some(tail)) = (key.first_chunk::<8>(), key.last_chunk::<8>()) {
        (word8(head), word8(tail))
    } else if let (Some(head), Some(tail)) = (key.first_chunk::<4>(), key.last_chunk::<4>()) {
        (word4(head), word4(tail))
    } else if let (Some(head), Some(tail)) = (key.first_chunk::<2>(), key.last_chunk::<2>()) {
        (word2(head), word2(tail))
    } else {
        (key.first().map_or(0, |&b| u64::from(b)), 0)
    }
}

/// A key's hash, with what hashing saw on the way.
#[derive(Debug, Clone, Copy)]
pub(super) struct Hashed {
    /// The hash.
    pub(super) hash: u64,
    /// The word map changed a byte (a lower-cased key held a capital).
    pub(super) changed: bool,
    /// For a key of at most 16 bytes, its [`short_words`] after the map: the whole key, to
    /// compare ([`eq_short`]) and store ([`store_short`]) without a byte loop.
    pub(super) words: [u64; 2],
}

/// The hash of `key` with `map` applied to each word ([`as_sent`] or [`lower_word`]).
#[inline(always)]
fn hash_with(key: &[u8], map: impl Fn(u64) -> u64) -> Hashed {
    let len = key.len() as u64;
    let mut changed = 0;
    let mut mapped = |w: u64| {
        let m = map(w);
        changed |= m ^ w;
        m
    };
    let (a, b, acc) = match key.last_chunk::<16>() {
        Some(tail) if key.len() > 16 => {
            // The body (all but the last 16 bytes) folded in order, 16 bytes at a time; a
            // body whose length is not a multiple of 16 ends with the 16-byte window that
            // ends where it does (the first 16 bytes when it is shorter), so every byte is
            // read and mapped: a capital seen nowhere would leave a host un-lowered. The last
            // 16 bytes end the hash below.
            let body = key.len() - 16;
            let mut acc = SEEDS[0];
            let mut window = |chunk: &[u8]| {
                let (x, y) = chunk.split_at(8);
                let x = x.first_chunk::<8>().map_or(0, word8);
                let y = y.first_chunk::<8>().map_or(0, word8);
                acc = fold(mapped(x) ^ acc, mapped(y) ^ SEEDS[1]);
            };
            for chunk in key[..body].chunks_exact(16) {
                window(chunk);
            }
            if body % 16 != 0 {
                let end = body.max(16);
                window(&key[end - 16..end]);
            }
            let (x, y) = tail.split_at(8);
            let x = x.first_chunk::<8>().map_or(0, word8);
            let y = y.first_chunk::<8>().map_or(0, word8);
            (mapped(x), mapped(y), acc)
        }
        _ => {
            let (a, b) = short_words(key);
            (mapped(a), mapped(b), SEEDS[0])
        }
    };
    Hashed {
        hash: fold(a ^ acc ^ SEEDS[2], b ^ len ^ SEEDS[3]),
        changed: changed != 0,
        words: [a, b],
    }
}

/// The hash of `key`.
#[inline(always)]
pub(super) fn hash(key: &[u8]) -> u64 {
    hash_with(key, as_sent).hash
}

/// `key` hashed as sent.
#[inline(always)]
pub(super) fn hashed(key: &[u8]) -> Hashed {
    hash_with(key, as_sent)
}

/// `key` hashed ASCII-lower-cased; `changed` says whether it holds a capital (if not, it is
/// its own lower-cased form).
#[inline(always)]
pub(super) fn hashed_lower(key: &[u8]) -> Hashed {
    hash_with(key, lower_word)
}

/// Longest key [`eq_short`] and [`store_short`] take.
pub(super) const SHORT: usize = 16;

/// `stored` (of the same length, at most [`SHORT`] bytes) has the words `words`.
#[inline(always)]
pub(super) fn eq_short(stored: &[u8], words: [u64; 2]) -> bool {
    let (a, b) = short_words(stored);
    (a ^ words[0]) | (b ^ words[1]) == 0
}

/// Writes the key of `dst.len()` bytes (at most [`SHORT`]) whose [`short_words`] are `words`:
/// the overlapping stores write each byte with the value its load read.
#[inline(always)]
pub(super) fn store_short(dst: &mut [u8], words: [u64; 2]) {
    let [a, b] = words;
    let len = dst.len();
    if len >= 8 {
        dst[..8].copy_from_slice(&a.to_le_bytes());
        dst[len - 8..].copy_from_slice(&b.to_le_bytes());
    } else if len >= 4 {
        dst[..4].copy_from_slice(&a.to_le_bytes()[..4]);
        dst[len - 4..].copy_from_slice(&b.to_le_bytes()[..4]);
    } else if len >= 2 {
        dst[..2].copy_from_slice(&a.to_le_bytes()[..2]);
        dst[len - 2..].copy_from_slice(&b.to_le_bytes()[..2]);
    } else if let Some(first) = dst.first_mut() {
        *first = a.to_le_bytes()[0];
    }
}

/// The hash of the pair key `section NUL host` from its parts' hashes; a pair cut before its
/// NUL (a section of [`KEY_CAP`](super::KEY_CAP) bytes or more) has no host part.
#[inline(always)]
pub(super) fn pair_hash(section: u64, host: Option<u64>) -> u64 {
    fold(section ^ SEEDS[4], host.unwrap_or(SEEDS[0]) ^ SEEDS[5])
}

/// The hash of a stored pair key: split at its first NUL.
pub(super) fn pair_hash_of(key: &[u8]) -> u64 {
    match key.iter().position(|&b| b == 0) {
        Some(nul) => pair_hash(hash(&key[..nul]), Some(hash(&key[nul + 1..]))),
        None => pair_hash(hash(key), None),
    }
}

/// The key's tag: the high half of its hash (the low half of a folded multiply is the weaker
/// one).
#[inline(always)]
pub(super) fn tag(hash: u64) -> u32 {
    (hash >> 32) as u32
}

/// The word has a zero byte ("has a zero byte", Hacker's Delight §6-1).
#[inline(always)]
fn zero_in(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// `key` holds a zero byte, given its [`Hashed::words`] (hashed as sent or lower-cased: the
/// word maps turn no byte into zero and no zero into another byte). A key of 4 to 16 bytes
/// is tested on those words without loading it again.
#[inline(always)]
pub(super) fn has_nul_hashed(key: &[u8], hashed: &Hashed) -> bool {
    let [a, b] = hashed.words;
    match key.len() {
        // Zero-extended 4-byte words: only their low four bytes count.
        4..=7 => zero_in(a | !0 << 32) || zero_in(b | !0 << 32),
        8..=SHORT => zero_in(a) || zero_in(b),
        _ => has_nul(key),
    }
}

/// `key` holds a zero byte.
#[inline(always)]
pub(super) fn has_nul(key: &[u8]) -> bool {
    // Over the same words the hash reads.
    match key.len() {
        0 => false,
        1..=3 => key.contains(&0),
        4..=7 => {
            let (a, b) = short_words(key);
            // Zero-extended 4-byte words: only their low four bytes count.
            zero_in(a | !0 << 32) || zero_in(b | !0 << 32)
        }
        _ => key
            .chunks_exact(8)
            .chain(key.last_chunk::<8>().map(|w| &w[..]))
            .any(|w| w.first_chunk::<8>().is_some_and(|w| zero_in(word8(w)))),
    }
}

/// `stored == map(key)` word by word, for keys of the same length (the caller checks it).
#[inline(always)]
pub(super) fn eq_with(stored: &[u8], key: &[u8], map: impl Fn(u64) -> u64) -> bool {
    if key.len() <= 16 {
        let (a, b) = short_words(key);
        let (s, t) = short_words(stored);
        return (map(a) ^ s) | (map(b) ^ t) == 0;
    }
    let word = |w: &[u8]| w.first_chunk::<8>().map_or(0, word8);
    key.chunks_exact(8)
        .zip(stored.chunks_exact(8))
        .all(|(k, s)| map(word(k)) == word(s))
        && match (key.last_chunk::<8>(), stored.last_chunk::<8>()) {
            (Some(k), Some(s)) => map(word8(k)) == word8(s),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(key: &[u8]) -> Vec<u8> {
        key.to_ascii_lowercase()
    }

    /// Bytes at the edges of the ranges the words are tested for (zero, capitals, letters,
    /// high bit), and some ordinary ones.
    const BYTES: [u8; 19] = [
        0x00, 0x01, 0x40, 0x41, 0x5A, 0x5B, 0x60, 0x61, 0x7A, 0x7B, 0x7F, 0x80, 0xC1, 0xDA, 0xFF,
        b'/', b'.', b'Z', b'a',
    ];

    /// Keys of every length up to 40 with each of [`BYTES`] at every position.
    fn keys() -> impl Iterator<Item = Vec<u8>> {
        (0..40usize).flat_map(|len| {
            (0..len.max(1)).flat_map(move |pos| {
                BYTES.iter().map(move |&byte| {
                    let mut k: Vec<u8> = (0..len).map(|i| b"aZ.9-Qz@["[i % 9]).collect();
                    if pos < len {
                        k[pos] = byte;
                    }
                    k
                })
            })
        })
    }

    #[test]
    fn lower_word_matches_ascii_lowercase_for_every_byte() {
        for byte in 0..=255u8 {
            for pos in 0..8 {
                let mut bytes = [b'M', 0x80, b'z', b'@', b'[', 0xC1, b'A', b'Z'];
                bytes[pos] = byte;
                let want = u64::from_le_bytes(bytes.map(|b| b.to_ascii_lowercase()));
                assert_eq!(lower_word(u64::from_le_bytes(bytes)), want, "{bytes:?}");
            }
        }
    }

    #[test]
    fn lowered_hash_and_equality_agree_with_a_lowered_copy() {
        for k in keys() {
            let l = lower(&k);
            let h = hashed_lower(&k);
            assert_eq!((h.hash, h.changed), (hash(&l), k != l), "{k:?}");
            if k.len() <= SHORT {
                assert!(eq_short(&l, h.words), "{k:?}");
                let mut stored = vec![0xEE; k.len()];
                store_short(&mut stored, h.words);
                assert_eq!(stored, l, "{k:?}");
                assert!(eq_short(&k, hashed(&k).words), "{k:?}");
            }
            assert!(eq_with(&l, &k, lower_word), "{k:?}");
            assert!(eq_with(&k, &k, as_sent), "{k:?}");
            assert_eq!(eq_with(&k, &l, as_sent), k == l, "{k:?}");
            assert_eq!(has_nul(&k), k.contains(&0), "{k:?}");
            assert_eq!(has_nul_hashed(&k, &hashed(&k)), k.contains(&0), "{k:?}");
            assert_eq!(has_nul_hashed(&k, &h), k.contains(&0), "{k:?}");
        }
    }

    #[test]
    fn equality_sees_every_byte() {
        for k in keys() {
            for pos in 0..k.len() {
                let mut other = k.clone();
                other[pos] ^= 0x01;
                assert!(!eq_with(&other, &k, as_sent), "{k:?} at {pos}");
                if k.len() <= SHORT {
                    assert!(!eq_short(&other, hashed(&k).words), "{k:?} at {pos}");
                }
                // The case bit differs only for letters, where lower-casing makes them equal.
                let mut other = lower(&k);
                other[pos] ^= 0x40;
                assert!(!eq_with(&other, &k, lower_word), "{k:?} at {pos}");
            }
        }
    }

    #[test]
    fn hashes_differ_across_lengths_and_bytes() {
        use std::collections::HashSet;
        // Distinct keys of one table's worth: no two share a 32-bit tag, as expected of a
        // well-mixed hash at this size (birthday bound ~ 0.1%).
        let keys: Vec<Vec<u8>> = (0..3000u32)
            .map(|i| format!("/s{i}").into_bytes())
            .chain((0..40).map(|n| vec![0u8; n]))
            .chain((0..40).map(|n| vec![b'a'; n]))
            .collect();
        let tags: HashSet<u32> = keys.iter().map(|k| tag(hash(k))).collect();
        assert!(
            tags.len() >= keys.len() - 1,
            "{} of {}",
            tags.len(),
            keys.len()
        );
    }

    #[test]
    fn pair_hash_of_a_stored_pair_is_the_hash_of_its_parts() {
        let pair = b"/api\0example.com";
        assert_eq!(
            pair_hash_of(pair),
            pair_hash(hash(b"/api"), Some(hashed_lower(b"Example.COM").hash))
        );
        assert_eq!(pair_hash_of(b"/long"), pair_hash(hash(b"/long"), None));
        assert_ne!(pair_hash_of(b"/a\0"), pair_hash_of(b"/a"));
    }
}

//! Escaping of bytes that came off the wire, for a terminal and for JSON.
//!
//! Contract:
//!
//! - [`terminal`] never lets a byte below 0x20, DEL (0x7f), a C1 control (U+0080..U+009F), a
//!   bidirectional control or another invisible format character through: an ANSI escape in a
//!   Host header cannot move the cursor, recolour the screen or reorder the line. Printable ASCII
//!   passes, `\` becomes `\\`, and every other byte becomes `\xNN` (lowercase hex), one per byte,
//!   so the rendering is unambiguous: `\x` only ever starts an escape.
//! - [`json_string`] always appends one valid, quoted JSON string. Valid UTF-8 reads back
//!   exactly; each byte of invalid UTF-8 reads back as the four characters `\xNN`, so two keys
//!   that differ only in invalid bytes stay distinct (a lossy U+FFFD would merge them). Control
//!   characters, DEL, C1, bidi controls, U+2028/U+2029 and the other format characters are
//!   written as `\uXXXX`, so a JSON line printed to a terminal is as safe as [`terminal`]'s
//!   output. Because valid input must read back exactly, the invalid byte 0xff and the valid
//!   four-character text `\xff` read back the same; that is the one collision.
//! - [`json_key`] is the string [`json_string`]'s output reads back as, for serde map keys.
//!
//! None of these functions panics, whatever the input.

use std::ops::ControlFlow;

/// Lowercase hex digits, for `\xNN` and `\uXXXX`.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// What the cut marker adds to a cut rendering: `...` (ASCII, so it renders in any locale).
pub(crate) const CUT_MARKER: &str = "...";

/// Whether a non-ASCII character must not reach a terminal or a JSON reader raw.
///
/// C1 controls act like ESC sequences on some terminals (U+009B is CSI on its own); bidi
/// controls and U+2028/U+2029 reorder or break what is shown around them; the other entries are
/// Unicode's invisible format characters (general category Cf: soft hyphen, zero-width
/// spaces and joiners, word joiner, BOM, interlinear annotation, tag characters), which can make
/// two different keys look the same or hide text.
pub(crate) fn is_dangerous(c: char) -> bool {
    matches!(
        u32::from(c),
        0x80..=0x9f
            | 0xad
            | 0x600..=0x605
            | 0x61c
            | 0x6dd
            | 0x70f
            | 0x890..=0x891
            | 0x8e2
            | 0x180e
            | 0x200b..=0x200f
            | 0x2028..=0x202e
            | 0x2060..=0x2064
            | 0x2066..=0x206f
            | 0xfeff
            | 0xfff9..=0xfffb
            | 0x110bd
            | 0x110cd
            | 0x13430..=0x1343f
            | 0x1bca0..=0x1bca3
            | 0x1d173..=0x1d17a
            | 0xe0001
            | 0xe0020..=0xe007f
    )
}

/// Terminal columns a passed-through character takes, near enough for aligning columns:
/// combining marks take none, East Asian wide characters and most emoji take two.
pub(crate) fn char_width(c: char) -> usize {
    match u32::from(c) {
        0x300..=0x36f
        | 0x1ab0..=0x1aff
        | 0x1dc0..=0x1dff
        | 0x20d0..=0x20ff
        | 0xfe00..=0xfe0f
        | 0xfe20..=0xfe2f => 0,
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6
        | 0x1f300..=0x1f64f
        | 0x1f900..=0x1f9ff
        | 0x20000..=0x3fffd => 2,
        _ => 1,
    }
}

/// One unit of the terminal rendering; a cut never splits one.
#[derive(Clone, Copy)]
enum Piece {
    /// A character that passes as it is.
    Char(char),
    /// A backslash, shown as `\\`.
    Backslash,
    /// A byte shown as `\xNN`.
    Byte(u8),
}

impl Piece {
    fn width(self) -> usize {
        match self {
            Piece::Char(c) => char_width(c),
            Piece::Backslash => 2,
            Piece::Byte(_) => 4,
        }
    }

    fn push(self, out: &mut String) {
        match self {
            Piece::Char(c) => out.push(c),
            Piece::Backslash => out.push_str("\\\\"),
            Piece::Byte(b) => {
                out.push_str("\\x");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

/// Feeds the terminal rendering of `bytes` to `f`, piece by piece, until `f` breaks.
fn for_each_piece(bytes: &[u8], mut f: impl FnMut(Piece) -> ControlFlow<()>) -> ControlFlow<()> {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => f(Piece::Backslash)?,
                ' '..='~' => f(Piece::Char(c))?,
                // ASCII controls, DEL and the dangerous characters: every byte of their
                // encoding is shown, so the reader sees exactly what was sent.
                c if c.is_ascii() || is_dangerous(c) => {
                    let mut buf = [0u8; 4];
                    for &b in c.encode_utf8(&mut buf).as_bytes() {
                        f(Piece::Byte(b))?;
                    }
                }
                c => f(Piece::Char(c))?,
            }
        }
        for &b in chunk.invalid() {
            f(Piece::Byte(b))?;
        }
    }
    ControlFlow::Continue(())
}

/// Appends the terminal-safe rendering of `bytes` to `out` (see the module contract).
pub fn terminal(bytes: &[u8], out: &mut String) {
    out.reserve(bytes.len());
    let _ = for_each_piece(bytes, |p| {
        p.push(out);
        ControlFlow::Continue(())
    });
}

/// The terminal-safe rendering of `bytes` (see the module contract).
pub fn terminal_string(bytes: &[u8]) -> String {
    let mut out = String::new();
    terminal(bytes, &mut out);
    out
}

/// Columns [`terminal`]'s rendering of `bytes` takes.
pub(crate) fn terminal_width(bytes: &[u8]) -> usize {
    let mut width = 0usize;
    let _ = for_each_piece(bytes, |p| {
        width = width.saturating_add(p.width());
        ControlFlow::Continue(())
    });
    width
}

/// Appends [`terminal`]'s rendering of `bytes`, cut to at most `max_width` columns: when it does
/// not fit, whole pieces are kept (an escape is never split) and [`CUT_MARKER`] ends it.
/// Returns the columns appended and whether it was cut.
pub(crate) fn terminal_cut(bytes: &[u8], max_width: usize, out: &mut String) -> (usize, bool) {
    let full = terminal_width(bytes);
    if full <= max_width {
        terminal(bytes, out);
        return (full, false);
    }
    let budget = max_width.saturating_sub(CUT_MARKER.len());
    let mut used = 0usize;
    let _ = for_each_piece(bytes, |p| {
        let w = p.width();
        if used + w > budget {
            return ControlFlow::Break(());
        }
        used += w;
        p.push(out);
        ControlFlow::Continue(())
    });
    // Only when there is room for it: a column narrower than the marker gets what fits.
    if used + CUT_MARKER.len() <= max_width {
        out.push_str(CUT_MARKER);
        used += CUT_MARKER.len();
    }
    (used, true)
}

/// Bytes that go into a JSON string as they are: printable ASCII except `"` and `\`.
static JSON_PLAIN: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0x20;
    while i < 0x7f {
        table[i] = i != b'"' as usize && i != b'\\' as usize;
        i += 1;
    }
    table
};

/// Appends `\uXXXX` for a 16-bit code unit.
fn push_u_escape(unit: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\u");
    for shift in [12u32, 8, 4, 0] {
        // The mask keeps the index below 16.
        out.push(HEX[((unit >> shift) & 0xf) as usize]);
    }
}

/// Appends the JSON escape of a character that must not appear raw: `\uXXXX`, or a surrogate
/// pair above the Basic Multilingual Plane (JSON has no longer escape).
fn push_char_escape(c: char, out: &mut Vec<u8>) {
    let v = u32::from(c);
    if v < 0x1_0000 {
        push_u_escape(v, out);
    } else {
        let v = v - 0x1_0000;
        push_u_escape(0xd800 + (v >> 10), out);
        push_u_escape(0xdc00 + (v & 0x3ff), out);
    }
}

/// Appends the JSON escape of an ASCII byte that is not [`JSON_PLAIN`].
fn push_ascii_escape(b: u8, out: &mut Vec<u8>) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        // Other controls and DEL (JSON allows DEL raw; a terminal does not want it).
        _ => push_u_escape(u32::from(b), out),
    }
}

/// Appends the body of a JSON string for valid UTF-8: runs of plain bytes and harmless
/// non-ASCII characters are copied in one go; only what needs an escape breaks a run.
fn json_valid(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    let mut run_start = 0;
    let mut i = 0;
    while i < b.len() {
        let byte = b[i];
        if JSON_PLAIN[usize::from(byte)] {
            i += 1;
            continue;
        }
        if byte < 0x80 {
            out.extend_from_slice(&b[run_start..i]);
            push_ascii_escape(byte, out);
            i += 1;
            run_start = i;
            continue;
        }
        // `i` is a character boundary: it only ever moves by whole characters.
        let Some(c) = s.get(i..).and_then(|rest| rest.chars().next()) else {
            break;
        };
        if is_dangerous(c) {
            out.extend_from_slice(&b[run_start..i]);
            push_char_escape(c, out);
            i += c.len_utf8();
            run_start = i;
        } else {
            i += c.len_utf8();
        }
    }
    out.extend_from_slice(b.get(run_start..).unwrap_or_default());
}

/// Appends `bytes` as one quoted JSON string (see the module contract). Made for the `--json`
/// per-request path: the common all-ASCII value is validated word-at-a-time by `from_utf8` and
/// copied in runs.
pub fn json_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                json_valid(s, out);
                break;
            }
            Err(e) => {
                let (valid, tail) = rest.split_at(e.valid_up_to());
                // `valid` is valid UTF-8 by from_utf8's own report; checking again costs one
                // pass over it and keeps this crate free of unsafe code.
                if let Ok(s) = std::str::from_utf8(valid) {
                    json_valid(s, out);
                }
                // `None` means the input ends inside a sequence: the rest is the bad part.
                let bad = e.error_len().unwrap_or(tail.len()).min(tail.len());
                let (bad, after) = tail.split_at(bad);
                for &b in bad {
                    // `\\xNN` in JSON reads back as the four characters `\xNN`.
                    out.extend_from_slice(b"\\\\x");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
                if bad.is_empty() {
                    // Cannot happen (an error always names at least one byte); never loop.
                    break;
                }
                rest = after;
            }
        }
    }
    out.push(b'"');
}

/// The string [`json_string`]'s output reads back as, unquoted: valid UTF-8 as it is, each
/// invalid byte as the four characters `\xNN`. For keys of serde maps, which do their own JSON
/// escaping.
pub fn json_key(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push_str("\\x");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// Rewrites a JSON document that serde wrote so that DEL and the [`is_dangerous`] characters
/// appear as `\uXXXX`: serde writes them raw, and the document may be printed to a terminal.
/// Outside strings a JSON document is ASCII, so every such character is inside a string, where
/// the escape means the same character.
pub(crate) fn harden_json_document(doc: &str) -> String {
    if !doc.chars().any(|c| c == '\u{7f}' || is_dangerous(c)) {
        return doc.to_owned();
    }
    let mut out = Vec::with_capacity(doc.len() + 16);
    let mut buf = [0u8; 4];
    for c in doc.chars() {
        if c == '\u{7f}' || is_dangerous(c) {
            push_char_escape(c, &mut out);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    // Only ASCII escapes replaced whole characters, so the bytes are still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64*), so the property loops need no crate and
    /// fail the same way every run.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Rng(seed | 1)
        }

        pub(crate) fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Characters worth mixing into random input: the dangerous ones and their neighbours.
    const INTERESTING: &[char] = &[
        '\u{1b}',
        '\u{7f}',
        '\u{80}',
        '\u{9b}',
        '\u{9f}',
        '\u{a0}',
        '\u{ad}',
        'é',
        '\u{200e}',
        '\u{200f}',
        '\u{2028}',
        '\u{2029}',
        '\u{202a}',
        '\u{202e}',
        '\u{2066}',
        '\u{2069}',
        '\u{feff}',
        '\u{e0041}',
        '中',
        '😀',
        '\u{10ffff}',
        '\\',
        '"',
        '\n',
        'x',
    ];

    pub(crate) fn random_bytes(rng: &mut Rng) -> Vec<u8> {
        let len = rng.below(40);
        let mut v = Vec::new();
        let mut buf = [0u8; 4];
        for _ in 0..len {
            match rng.below(4) {
                0 => v.push(u8::try_from(rng.below(256)).unwrap_or(0)),
                1 => v.push(u8::try_from(0x20 + rng.below(0x5f)).unwrap_or(b'a')),
                2 => {
                    let c = INTERESTING
                        [usize::try_from(rng.below(INTERESTING.len() as u64)).unwrap_or(0)];
                    v.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => {
                    let c = char::from_u32(u32::try_from(rng.below(0x11_0000)).unwrap_or(0))
                        .unwrap_or('?');
                    v.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        v
    }

    /// The terminal contract, checked on an output: no C0, DEL, C1 or dangerous character.
    pub(crate) fn assert_terminal_safe(s: &str) {
        for c in s.chars() {
            assert!(
                !(c < ' ' || c == '\u{7f}' || is_dangerous(c)),
                "unsafe char {:?} in {:?}",
                c,
                s
            );
        }
    }

    fn json(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        json_string(bytes, &mut out);
        out
    }

    #[test]
    fn terminal_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"/pages/create", "/pages/create"),
            (b"a\\b", "a\\\\b"),
            (b"\x1b[31mred", "\\x1b[31mred"),
            (b"tab\there", "tab\\x09here"),
            (b"del\x7f", "del\\x7f"),
            (b"caf\xc3\xa9", "caf\u{e9}"),
            (b"\xc2\x9b2J", "\\xc2\\x9b2J"),
            (b"\xe2\x80\xaeevil", "\\xe2\\x80\\xaeevil"),
            (b"\xe2\x80\x8f", "\\xe2\\x80\\x8f"),
            (b"\xff\xfe", "\\xff\\xfe"),
            (b"\xe4\xb8", "\\xe4\\xb8"),
            (b"\xe4\xb8\xad", "\u{4e2d}"),
            (b"\xf3\xa0\x81\x81", "\\xf3\\xa0\\x81\\x81"),
            (b"\xed\xa0\x80", "\\xed\\xa0\\x80"),
            (b"\xc0\xaf", "\\xc0\\xaf"),
        ];
        for (input, want) in cases {
            assert_eq!(terminal_string(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn terminal_every_byte_alone_and_in_context() {
        for b in 0u8..=255 {
            let alone = terminal_string(&[b]);
            assert_terminal_safe(&alone);
            let expect_plain = (0x20..0x7f).contains(&b) && b != b'\\';
            if expect_plain {
                assert_eq!(alone.as_bytes(), [b]);
            } else if b == b'\\' {
                assert_eq!(alone, "\\\\");
            } else {
                assert_eq!(alone, format!("\\x{b:02x}"));
            }
            // As a continuation byte after a lead byte, and as a lead before continuations.
            for ctx in [
                vec![0xc3, b],
                vec![b, 0x80],
                vec![b, 0x80, 0x80],
                vec![b, 0x80, 0x80, 0x80],
                vec![0xe2, 0x80, b],
                vec![0xf0, 0x9f, 0x98, b],
                vec![b'a', b, b'z'],
            ] {
                let s = terminal_string(&ctx);
                assert_terminal_safe(&s);
                if let Ok(valid) = std::str::from_utf8(&ctx) {
                    if !valid
                        .chars()
                        .any(|c| c < ' ' || c == '\u{7f}' || c == '\\' || is_dangerous(c))
                    {
                        assert_eq!(s, valid);
                    }
                }
            }
        }
    }

    #[test]
    fn terminal_is_injective_on_random_pairs() {
        let mut rng = Rng::new(7);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..20_000 {
            let b = random_bytes(&mut rng);
            let s = terminal_string(&b);
            if let Some(prev) = seen.insert(s.clone(), b.clone()) {
                assert_eq!(prev, b, "two inputs render as {s:?}");
            }
        }
    }

    #[test]
    fn terminal_property_random() {
        let mut rng = Rng::new(0x5eed);
        for _ in 0..50_000 {
            let b = random_bytes(&mut rng);
            let s = terminal_string(&b);
            assert_terminal_safe(&s);
            assert_eq!(terminal_width(&b), s.chars().map(char_width).sum::<usize>());
        }
    }

    #[test]
    fn terminal_cut_keeps_escapes_whole() {
        let mut out = String::new();
        assert_eq!(terminal_cut(b"short", 10, &mut out), (5, false));
        assert_eq!(out, "short");
        out.clear();
        // 4 + 4 + 4 columns of escapes, cut to 10: one escape (4) + "..." (3) fits in 10.
        let (w, cut) = terminal_cut(b"\x1b\x1b\x1b", 10, &mut out);
        assert!(cut);
        assert_eq!(out, "\\x1b...");
        assert_eq!(w, 7);
        out.clear();
        let (w, cut) = terminal_cut("中中中中".as_bytes(), 7, &mut out);
        assert!(cut);
        assert_eq!((out.as_str(), w), ("中中...", 7));
        out.clear();
        // Narrower than the marker: nothing but what fits.
        let (w, cut) = terminal_cut(b"abcdef", 2, &mut out);
        assert!(cut && w <= 2);
    }

    #[test]
    fn json_vectors() {
        let cases: &[(&[u8], &str)] = &[
            (b"", r#""""#),
            (b"plain", r#""plain""#),
            (b"q\"b\\", r#""q\"b\\""#),
            (
                b"\n\r\t\x08\x0c\x00\x1b\x7f",
                r#""\n\r\t\b\f\u0000\u001b\u007f""#,
            ),
            (b"\xff", r#""\\xff""#),
            (b"a\xe4\xb8z", r#""a\\xe4\\xb8z""#),
            ("é中😀".as_bytes(), "\"é中😀\""),
            (
                "\u{2028}\u{202e}\u{9b}".as_bytes(),
                r#""\u2028\u202e\u009b""#,
            ),
            ("\u{e0041}".as_bytes(), r#""\udb40\udc41""#),
        ];
        for (input, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&json(input)),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn json_every_byte_alone_and_in_context() {
        for b in 0u8..=255 {
            for ctx in [
                vec![b],
                vec![b'a', b, b'z'],
                vec![0xc3, b],
                vec![b, 0x80, 0x80],
                vec![0xe2, 0x80, b],
                vec![0xf0, 0x9f, 0x98, b],
            ] {
                let out = json(&ctx);
                let back: String = serde_json::from_slice(&out).unwrap_or_else(|e| {
                    panic!("{ctx:?} -> {:?}: {e}", String::from_utf8_lossy(&out))
                });
                assert_eq!(back, json_key(&ctx));
                if let Ok(valid) = std::str::from_utf8(&ctx) {
                    assert_eq!(back, valid);
                }
                assert!(out.iter().all(|&c| c >= 0x20 && c != 0x7f));
            }
        }
    }

    #[test]
    fn json_property_random() {
        let mut rng = Rng::new(42);
        for _ in 0..50_000 {
            let b = random_bytes(&mut rng);
            let out = json(&b);
            let text = std::str::from_utf8(&out).expect("json_string output is UTF-8");
            assert_terminal_safe(text);
            let back: String =
                serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{b:?} -> {text:?}: {e}"));
            assert_eq!(back, json_key(&b));
            if let Ok(valid) = std::str::from_utf8(&b) {
                assert_eq!(back, valid, "valid UTF-8 must round-trip exactly");
            }
        }
    }

    #[test]
    fn json_invalid_bytes_stay_distinct() {
        assert_ne!(json_key(b"\xff"), json_key(b"\xfe"));
        assert_ne!(json_key(b"\xff"), json_key(b"\xef\xbf\xbd"));
        assert_eq!(json_key(b"ok\xc3"), "ok\\xc3");
    }

    #[test]
    fn harden_escapes_only_dangerous_characters() {
        let doc = serde_json::json!({ "k\u{202e}": "v\u{7f}\u{9b}é" }).to_string();
        let hard = harden_json_document(&doc);
        assert_terminal_safe(&hard);
        assert!(hard.contains("é"));
        let a: serde_json::Value = serde_json::from_str(&doc).expect("serde output");
        let b: serde_json::Value = serde_json::from_str(&hard).expect("hardened output");
        assert_eq!(a, b);
    }
}

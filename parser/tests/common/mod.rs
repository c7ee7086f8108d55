//! Access to `../shared/corpus`, shared by the integration tests.
//!
//! The corpus is real material no one here wrote; it is referenced in place, never copied into
//! the repository. Without it, a test under CI (env `CI` set) must fail, not skip: a green run
//! that checked nothing is worse than a red one.

#![allow(dead_code, unreachable_pub, clippy::print_stdout)]

use std::path::PathBuf;

/// `../shared/corpus` seen from the workspace root.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpus"))
}

/// The corpus file at `relative`, or `None` (with a note) when the corpus is absent outside CI.
///
/// # Panics
/// When the file is missing and `CI` is set.
pub fn corpus_file(relative: &str) -> Option<PathBuf> {
    let path = corpus_dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "corpus file {} is missing: CI must run with ../shared beside the repository",
        path.display()
    );
    println!(
        "note: {} not found; skipping what needs it (set CI to make this fail)",
        path.display()
    );
    None
}

/// Decodes standard base64 (RFC 4648 §4, with padding), as the corpus' `input_b64` uses.
///
/// # Panics
/// On a byte outside the alphabet: the corpus is trusted test data.
pub fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET
            .iter()
            .position(|&a| a == byte)
            .unwrap_or_else(|| panic!("not base64: {byte:#x}"));
        acc = acc << 6 | u32::try_from(value).expect("index < 64");
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits).to_le_bytes()[0]);
        }
    }
    out
}

/// One llhttp case from `parser/llhttp_*.jsonl`.
#[derive(Debug)]
pub struct LlhttpCase {
    /// `path:line` in llhttp's test suite.
    pub id: String,
    /// llhttp's test name.
    pub name: String,
    /// Whether llhttp ran it with its default (strict) settings.
    pub strict: bool,
    /// The exact input bytes.
    pub input: Vec<u8>,
    /// The whole expectation object.
    pub expect: serde_json::Value,
    /// The first message's fields as llhttp reported them (null when none).
    pub first: serde_json::Value,
}

/// The cases of `parser/{file}`, or `None` when the corpus is absent outside CI.
pub fn llhttp_cases(file: &str) -> Option<Vec<LlhttpCase>> {
    let path = corpus_file(&format!("parser/{file}"))?;
    let text = std::fs::read_to_string(&path).expect("corpus file is readable");
    let cases = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
            LlhttpCase {
                id: v["id"].as_str().expect("id").to_owned(),
                name: v["name"].as_str().expect("name").to_owned(),
                strict: v["strict_default"].as_bool().expect("strict_default"),
                input: base64_decode(v["input_b64"].as_str().expect("input_b64")),
                expect: v["expect"].clone(),
                first: v["first"].clone(),
            }
        })
        .collect();
    Some(cases)
}

//! Helpers shared by the `linewatch` binary's integration tests: running the binary, scratch
//! files, summary maps, the SPEC §3 section oracle. (The corpus is found by
//! [`linewatch_testkit::corpus`].)

#![allow(dead_code, unreachable_pub)]

pub mod heads;
pub mod same;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory unique to this test process and `name`, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("linewatch-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    dir
}

/// Runs the `linewatch` binary built for these tests.
pub fn linewatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_linewatch"))
        .args(args)
        .output()
        .expect("running target/.../linewatch")
}

/// Runs `linewatch --read capture --summary S` plus `extra` and returns the summary JSON.
///
/// # Panics
/// When linewatch fails or writes no valid JSON.
pub fn summary_of(capture: &Path, extra: &[&str]) -> (serde_json::Value, Output) {
    // One directory per call: tests run in parallel threads of one process and may read
    // captures of the same file name.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = scratch(&format!(
        "summary-{call}-{}",
        capture
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("capture")
    ));
    let summary = dir.join("summary.json");
    let mut args = vec![
        "--read",
        capture.to_str().expect("utf-8 path"),
        "--summary",
        summary.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let out = linewatch(&args);
    assert!(
        out.status.success(),
        "linewatch {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&summary).expect("reading the summary");
    let json = serde_json::from_str(&text).expect("the summary is JSON");
    let _ = std::fs::remove_dir_all(&dir);
    (json, out)
}

/// A summary map (`methods`, `hosts`, ...) as sorted (key, count) pairs.
pub fn map_of(summary: &serde_json::Value, key: &str) -> std::collections::BTreeMap<String, u64> {
    summary[key]
        .as_object()
        .unwrap_or_else(|| panic!("summary has no object `{key}`"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().expect("counts are integers")))
        .collect()
}

/// A summary's `--top-by` table for `by` (`client`, `header:referer`) as key to (count,
/// bytes), with what the table counted in all. Asserts that every key is listed (`other` is 0)
/// and that no count is an estimate.
pub fn top_by_table(
    summary: &serde_json::Value,
    by: &str,
) -> (std::collections::BTreeMap<String, (u64, u64)>, u64) {
    let tables = summary["top_by"].as_array().expect("top_by array");
    let t = tables
        .iter()
        .find(|t| t["by"] == by)
        .unwrap_or_else(|| panic!("no table {by} in {tables:?}"));
    assert_eq!(t["other"], 0, "{by}: every key listed");
    let mut out = std::collections::BTreeMap::new();
    for e in t["top"].as_array().expect("top") {
        assert_eq!(e["approximate"], false, "{by}: {e}");
        let key = e["key"].as_str().expect("key").to_owned();
        let count = e["count"].as_u64().expect("count");
        let bytes = e["bytes"].as_u64().expect("bytes");
        assert!(out.insert(key, (count, bytes)).is_none(), "{by}: key twice");
    }
    (out, t["total"].as_u64().expect("total"))
}

/// tshark's oracle of a corpus capture (`oracle/CAPTURE.tsv`): its text and the index of each
/// column by name.
pub struct OracleTsv {
    pub text: String,
    header: Vec<String>,
}

impl OracleTsv {
    /// The oracle of `capture`; `None` when the corpus is not there.
    pub fn read(capture: &str) -> Option<OracleTsv> {
        let path = linewatch_testkit::corpus::file(&format!("oracle/{capture}.tsv"))?;
        let text = std::fs::read_to_string(&path).expect("reading the oracle");
        let header = text
            .lines()
            .next()
            .expect("oracle header")
            .split('\t')
            .map(str::to_owned)
            .collect();
        Some(OracleTsv { text, header })
    }

    /// The index of column `name`.
    pub fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("oracle column {name}"))
    }

    /// The rows after the header, split on tabs.
    pub fn rows(&self) -> impl Iterator<Item = Vec<&str>> {
        self.text.lines().skip(1).map(|l| l.split('\t').collect())
    }
}

/// The captures named in the corpus manifest (none when the corpus is not there).
pub fn corpus_captures() -> Vec<String> {
    let Some(manifest) = linewatch_testkit::corpus::file("pcaps/MANIFEST.tsv") else {
        return Vec::new();
    };
    std::fs::read_to_string(manifest)
        .expect("reading the manifest")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .filter(|f| !f.is_empty())
        .collect()
}

/// SPEC §3 sections, from the target text: path up to (not including) its second `/`, query
/// and fragment stripped; absolute-form uses its path; `*` and authority-form stand alone.
/// Written independently of the parser: the oracle side of the corpus and live nginx tests.
pub fn section(uri: &str) -> String {
    let path = if uri.starts_with('/') {
        uri
    } else if uri == "*" {
        return "*".into();
    } else if let Some(after_scheme) = uri.split_once("://").map(|(_, rest)| rest) {
        match after_scheme.find(['/', '?', '#']) {
            Some(at) if after_scheme[at..].starts_with('/') => &after_scheme[at..],
            _ => "/",
        }
    } else {
        return uri.into();
    };
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    match path[1..].find('/') {
        Some(at) => path[..at + 1].to_string(),
        None if path.is_empty() => "/".into(),
        None => path.to_string(),
    }
}

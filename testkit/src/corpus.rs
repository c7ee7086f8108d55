//! Where the corpus of real captures is, and what a test does when it is not there.
//!
//! The corpus is real material no one here wrote (captures from other projects, llhttp's test
//! cases, tshark's oracle tables); it is referenced in place at `../shared/corpus` beside the
//! workspace, never copied into the repository. [`file()`] applies the rule of
//! [`crate::tools::skip_or_fail`]: a missing corpus file fails the test when `CI` is set, and
//! is a note and a skip of what needs it otherwise.

use std::path::{Path, PathBuf};

/// The corpus directory: `../shared/corpus` seen from the workspace root (this crate's parent).
pub fn dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits inside the workspace");
    let beside = workspace.parent().expect("the workspace is not /");
    beside.join("shared").join("corpus")
}

/// The corpus file or directory at `relative`, or `None` (after a note) when it is missing
/// outside CI.
///
/// # Panics
/// When it is missing and `CI` is set.
pub fn file(relative: &str) -> Option<PathBuf> {
    let path = dir().join(relative);
    if path.exists() {
        return Some(path);
    }
    crate::tools::skip_or_fail(&format!(
        "corpus file {} is missing (the tests read ../shared/corpus beside the repository)",
        path.display()
    ));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_none_outside_ci_and_a_failure_in_it() {
        let outcome = std::panic::catch_unwind(|| file("no/such/file.pcap"));
        match outcome {
            Ok(found) => assert!(!crate::tools::in_ci() && found.is_none()),
            Err(_) => assert!(crate::tools::in_ci()),
        }
    }

    #[test]
    fn a_present_file_is_found() {
        // The corpus itself may be missing here; the rule then decides (and this test with it).
        if let Some(pcaps) = file("pcaps") {
            assert!(pcaps.is_dir(), "{}", pcaps.display());
        }
    }
}

//! The error every mirror step returns: one line, with the cause and the fix.
//!
//! Messages often quote what `ip` and `tc` wrote to stderr, which can run over several lines
//! and, for a listing, over many; [`one_line`] folds and caps them so that linewatch reports
//! each failure on one line of the terminal.

use std::fmt;

/// Longest message kept, in bytes: beyond it a quoted listing would only flood the terminal.
const MAX_LINE: usize = 600;

/// A failure to set up or tear down a mirror: one line with the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorError(String);

impl MirrorError {
    pub(super) fn new(message: impl AsRef<str>) -> MirrorError {
        MirrorError(one_line(message.as_ref()))
    }
}

impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MirrorError {}

/// Collapses whitespace (newlines included) and caps the length at [`MAX_LINE`] bytes, for
/// one-line messages.
pub(super) fn one_line(text: &str) -> String {
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push_str("...");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_line() {
        let e = MirrorError::new("a\nb\r\n  c");
        assert_eq!(e.to_string(), "a b c");
        assert!(one_line(&"x ".repeat(1000)).len() < 700);
    }
}

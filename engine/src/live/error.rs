//! The one error type of live capture, in a module of its own so that every live module (and
//! the system helpers they share) can name it without importing their parent.

use std::fmt;

/// Why live capture cannot start: one line with the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveError(pub String);

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LiveError {}

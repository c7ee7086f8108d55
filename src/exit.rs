//! How the command fails: one line on stderr, then an exit code.
//!
//! Exit codes: 0 when the input was read or live capture ran (a truncated capture included: it
//! is reported, not fatal), 2 for bad input (options, unreadable or non-capture files) and for
//! live capture that cannot start (privileges, interface, queues, memlock, another XDP
//! program), 1 when an output cannot be written or a second Ctrl-C/SIGTERM cut the wind-down
//! short.

use std::process::ExitCode;

/// Prints one line and exits with 2: the shape of every bad-input error.
pub(crate) fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("linewatch: {message}");
    ExitCode::from(2)
}

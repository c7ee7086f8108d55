//! The live status line.
//!
//! Contract: [`render`] gives one line: time, packets/s, requests/s, drops, the alert window's
//! rate against the threshold (or `learning baseline`), `ALERT` or `ok`, and the top section,
//! escaped and cut so the line stays within 119 columns for typical values. On a
//! TTY the line starts with carriage return + "erase line" and has no newline, so printing it
//! again rewrites it in place; otherwise it is a plain line ending in `\n`, fit for a log.

use std::fmt::Write as _;

use linewatch_model::StatusLine;

use crate::escape;
use crate::time::format_time;
use crate::units::{short_count, short_rate};

/// Columns the line aims to stay within: one less than 120, so a 120-column terminal never
/// wraps it (a wrapped line cannot be rewritten in place with `\r`).
pub(crate) const STATUS_WIDTH: usize = 119;

/// The top section gets at most this many columns, so the numbers stay the point of the line.
const MAX_SECTION_WIDTH: usize = 40;

/// ... and at least this many, even when big numbers took the room.
const MIN_SECTION_WIDTH: usize = 12;

/// Moves to column 0 and erases the line: the TTY line is redrawn over the previous one.
const REWRITE_PREFIX: &str = "\r\x1b[2K";

/// The status line for `s` (see the module contract).
pub fn render(s: &StatusLine, tty: bool) -> String {
    let mut line = String::with_capacity(STATUS_WIDTH + REWRITE_PREFIX.len() + 8);
    if tty {
        line.push_str(REWRITE_PREFIX);
    }
    let body_start = line.len();
    let _ = write!(
        line,
        "{}  {} pps  {} req/s  {} drops  window {}/s",
        format_time(s.now),
        short_count(s.pps),
        short_count(s.rps),
        short_count(s.drops),
        short_rate(s.window_rate),
    );
    match s.threshold {
        Some(t) => {
            // Raised above the threshold, recovered at or below it (SPEC section 4).
            let cmp = if s.window_rate > t { ">" } else { "<=" };
            let _ = write!(line, " {cmp} {}", short_rate(t));
        }
        None => line.push_str(" (learning baseline)"),
    }
    line.push_str(if s.alert_active { "  ALERT" } else { "  ok" });
    if let Some(section) = &s.top_section {
        line.push_str("  top ");
        // Everything so far is ASCII, so its byte length is its width in columns.
        let used = line.len() - body_start;
        let room = STATUS_WIDTH
            .saturating_sub(used)
            .clamp(MIN_SECTION_WIDTH, MAX_SECTION_WIDTH);
        escape::terminal_cut(section, room, &mut line);
    }
    if !tty {
        line.push('\n');
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn line() -> StatusLine {
        StatusLine {
            now: UNIX_EPOCH + Duration::from_secs(1_614_053_178),
            pps: 1_234_567,
            rps: 45_678,
            drops: 12,
            window_rate: 15.25,
            threshold: Some(10.0),
            alert_active: true,
            top_section: Some(b"/pages".to_vec()),
        }
    }

    /// Width in columns of the visible part of a rendered line.
    fn visible_width(s: &str) -> usize {
        s.trim_start_matches(REWRITE_PREFIX)
            .trim_end_matches('\n')
            .chars()
            .map(escape::char_width)
            .sum()
    }

    #[test]
    fn plain_and_tty_forms() {
        let plain = render(&line(), false);
        assert_eq!(
            plain,
            "2021-02-23T04:06:18Z  1.23M pps  45.7k req/s  12 drops  window 15.2/s > 10.0  ALERT  top /pages\n"
        );
        let tty = render(&line(), true);
        assert!(tty.starts_with("\r\x1b[2K"));
        assert!(!tty.ends_with('\n'));
        assert_eq!(&tty[REWRITE_PREFIX.len()..], plain.trim_end());
    }

    #[test]
    fn learning_ok_and_no_section() {
        let mut s = line();
        s.threshold = None;
        s.alert_active = false;
        s.top_section = None;
        let out = render(&s, false);
        assert!(
            out.contains("window 15.2/s (learning baseline)  ok\n"),
            "{out}"
        );
        s.threshold = Some(20.0);
        assert!(render(&s, false).contains("15.2/s <= 20.0  ok"));
    }

    #[test]
    fn hostile_long_section_is_escaped_and_cut() {
        let mut s = line();
        let mut section = b"/\x1b[2J\x1b]0;pwned\x07".to_vec();
        section.extend(std::iter::repeat_n(b'a', 500));
        s.top_section = Some(section);
        s.drops = u64::MAX;
        s.window_rate = 1e12;
        s.threshold = Some(1e12);
        for tty in [false, true] {
            let out = render(&s, tty);
            let body = out.trim_start_matches(REWRITE_PREFIX);
            assert!(!body.bytes().any(|b| b == 0x1b || b == 0x07), "{out:?}");
            assert!(body.contains("top /\\x1b[2J"), "{out:?}");
            assert!(body.trim_end().ends_with("..."), "{out:?}");
            assert!(
                visible_width(&out) <= STATUS_WIDTH + MIN_SECTION_WIDTH,
                "{out:?}"
            );
        }
        // Typical values: inside the width.
        let mut s = line();
        s.top_section = Some(vec![b'x'; 300]);
        assert!(visible_width(&render(&s, true)) <= STATUS_WIDTH);
    }
}

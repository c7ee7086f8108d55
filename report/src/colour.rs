//! Colour for the human text on a terminal: alerts red, recoveries green, the status line's
//! drops and `ALERT`. Whether to colour at all (a terminal, no `NO_COLOR`) is the caller's
//! decision; these functions only wrap text that is already escaped (wire bytes never carry
//! their own escape sequences this far: see [`crate::escape`]).

use linewatch_model::StatusLine;

use crate::units::short_count;

/// A colour of the human text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    /// Alerts, drops.
    Red,
    /// Recoveries.
    Green,
}

/// Ends a coloured span.
const RESET: &str = "\x1b[0m";

impl Colour {
    fn start(self) -> &'static str {
        match self {
            Colour::Red => "\x1b[1;31m",
            Colour::Green => "\x1b[32m",
        }
    }
}

/// `text` in `colour`. A trailing newline stays outside the colour, so the next line starts
/// plain.
pub fn paint(text: &str, colour: Colour) -> String {
    let (body, newline) = match text.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (text, ""),
    };
    format!("{}{body}{RESET}{newline}", colour.start())
}

/// The status line as [`crate::status::render`] draws it, with its drops in red when there
/// are any and `ALERT` in red.
pub fn status(s: &StatusLine, tty: bool) -> String {
    let mut line = crate::status::render(s, tty);
    if s.drops > 0 {
        let drops = format!("  {} drops", short_count(s.drops));
        if let Some(at) = line.find(&drops) {
            let painted = format!("  {}", paint(&drops[2..], Colour::Red));
            line.replace_range(at..at + drops.len(), &painted);
        }
    }
    if s.alert_active {
        const ALERT: &str = "  ALERT";
        if let Some(at) = line.find(ALERT) {
            let painted = format!("  {}", paint(&ALERT[2..], Colour::Red));
            line.replace_range(at..at + ALERT.len(), &painted);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn line(drops: u64, alert: bool) -> StatusLine {
        StatusLine {
            now: UNIX_EPOCH,
            pps: 10,
            rps: 5,
            drops,
            window_rate: 3.0,
            threshold: Some(2.0),
            alert_active: alert,
            top_section: Some(b"/drops".to_vec()),
        }
    }

    #[test]
    fn alerts_and_drops_are_red_recoveries_green() {
        assert_eq!(paint("alert\n", Colour::Red), "\x1b[1;31malert\x1b[0m\n");
        assert_eq!(paint("back", Colour::Green), "\x1b[32mback\x1b[0m");
        let s = status(&line(12, true), false);
        assert!(s.contains("  \x1b[1;31m12 drops\x1b[0m  window"), "{s:?}");
        assert!(s.contains("  \x1b[1;31mALERT\x1b[0m  top /drops"), "{s:?}");
        // No drops, no alert: the plain line, unchanged.
        let calm = line(0, false);
        assert_eq!(status(&calm, true), crate::status::render(&calm, true));
    }
}

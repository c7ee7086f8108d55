//! Keys to actions. While a filter is being typed (after `/`) printable keys are text;
//! otherwise: `q` or Ctrl-C quit, `p` pause, Tab / Shift-Tab / ← → move between panels,
//! ↑ ↓ scroll the focused one, `s` cycle the sort, `/` filter, Esc clear, `?` help.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Quit,
    Pause,
    Sort,
    Help,
    Next,
    Previous,
    Up,
    Down,
    StartFilter,
    /// A character of the filter being typed.
    Type(char),
    /// Backspace in the filter being typed.
    Erase,
    /// Enter: the typed filter applies.
    Submit,
    /// Esc: cancels typing, closes help, or clears the filter.
    Escape,
}

/// The action for `key`; `typing`: a filter is being typed.
pub(crate) fn action(key: KeyEvent, typing: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c' | 'C')) {
        return Some(Action::Quit);
    }
    let common = match key.code {
        KeyCode::Esc => Some(Action::Escape),
        KeyCode::Enter if typing => Some(Action::Submit),
        KeyCode::Backspace if typing => Some(Action::Erase),
        KeyCode::Tab => Some(Action::Next),
        KeyCode::BackTab => Some(Action::Previous),
        _ => None,
    };
    if common.is_some() || typing {
        return common.or(match key.code {
            KeyCode::Char(c) if !ctrl => Some(Action::Type(c)),
            _ => None,
        });
    }
    match key.code {
        KeyCode::Char('q' | 'Q') => Some(Action::Quit),
        KeyCode::Char('p' | 'P' | ' ') => Some(Action::Pause),
        KeyCode::Char('s' | 'S') => Some(Action::Sort),
        KeyCode::Char('?' | 'h') => Some(Action::Help),
        KeyCode::Char('/') => Some(Action::StartFilter),
        KeyCode::Right | KeyCode::Char('l') => Some(Action::Next),
        KeyCode::Left => Some(Action::Previous),
        KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
        KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_mean_commands_unless_a_filter_is_typed() {
        assert_eq!(action(key(KeyCode::Char('q')), false), Some(Action::Quit));
        assert_eq!(
            action(key(KeyCode::Char('q')), true),
            Some(Action::Type('q'))
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_c, false), Some(Action::Quit));
        assert_eq!(action(ctrl_c, true), Some(Action::Quit));
        assert_eq!(action(key(KeyCode::Char('p')), false), Some(Action::Pause));
        assert_eq!(action(key(KeyCode::Char('s')), false), Some(Action::Sort));
        assert_eq!(
            action(key(KeyCode::Char('/')), false),
            Some(Action::StartFilter)
        );
        assert_eq!(action(key(KeyCode::Char('?')), false), Some(Action::Help));
        assert_eq!(action(key(KeyCode::Tab), false), Some(Action::Next));
        assert_eq!(action(key(KeyCode::Left), false), Some(Action::Previous));
        assert_eq!(action(key(KeyCode::Down), false), Some(Action::Down));
        assert_eq!(action(key(KeyCode::Enter), true), Some(Action::Submit));
        assert_eq!(action(key(KeyCode::Backspace), true), Some(Action::Erase));
        assert_eq!(action(key(KeyCode::Esc), false), Some(Action::Escape));
        assert_eq!(action(key(KeyCode::Char('x')), false), None);
    }
}

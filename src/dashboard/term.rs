//! The terminal while the dashboard owns it: raw mode, the alternate screen, the cursor hidden;
//! and its restoration on every way out.
//!
//! Contract: [`Screen::enter`] takes the terminal; dropping the [`Screen`] gives it back (raw
//! mode off, the main screen back, the cursor shown). [`restore`] does the same from anywhere
//! and at most once per [`Screen::enter`] (an atomic flag says whether there is anything to
//! restore), so that the panic hook ([`install_panic_hook`], installed before the terminal is
//! taken), an error path and the normal exit can all call it. After a panic the hook restores
//! first, then prints the panic message on the restored screen (the release build then
//! aborts: its `panic = "abort"`).

use std::io::{IsTerminal, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};
use ratatui::Terminal;

/// The terminal is in the dashboard's state and must be restored.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The dashboard's terminal; dropping it restores the terminal.
pub(crate) struct Screen {
    pub(crate) terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    /// Takes the terminal (see the module contract). On error it is left as it was.
    pub(crate) fn enter() -> Result<Screen, String> {
        install_panic_hook();
        let failed = |e: std::io::Error| {
            restore();
            format!("cannot start the dashboard: {e}")
        };
        TAKEN.store(true, Ordering::SeqCst);
        terminal::enable_raw_mode().map_err(failed)?;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )
        .map_err(failed)?;
        let terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(failed)?;
        Ok(Screen { terminal })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Gives the terminal back if the dashboard has it (see the module contract). Errors are
/// ignored: there is nothing better to do on the way out.
pub(crate) fn restore() {
    if TAKEN.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        let _ = execute!(out, terminal::LeaveAlternateScreen, cursor::Show);
        let _ = terminal::disable_raw_mode();
        let _ = out.flush();
    }
}

/// Restores the terminal before any panic message is printed (once per process).
fn install_panic_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}

/// Whether the dashboard can run here: stdout must be a terminal.
pub(crate) fn check_terminal() -> Result<(), String> {
    if std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err(
            "--dashboard needs a terminal, and stdout is not one: run it in a terminal, or \
             leave out --dashboard for the plain status line and reports"
                .to_owned(),
        )
    }
}

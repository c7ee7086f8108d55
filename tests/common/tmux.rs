//! A terminal a test can type into and read: a tmux server of its own (`send-keys`,
//! `capture-pane`, the pane's modes as tmux reports them), for the dashboard's tests.

use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of its own (its own socket), killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached session of `width` x `height` running `command` under a shell that, when it
    /// ends, prints `exit=CODE` and the terminal's modes (`stty`: `icanon` and `echo`, or
    /// `-icanon`, `-echo` if it was left raw) and stays (tmux says nothing reliable about a
    /// dead pane's cursor); `env` is set for it.
    pub fn start(name: &str, size: (u16, u16), env: &[&str], command: &[&str]) -> Tmux {
        let quoted: Vec<String> = command.iter().map(|a| format!("'{a}'")).collect();
        let script = format!(
            "{}; echo \"exit=$?\"; stty -a | tr ' ;' '\\n\\n' | grep -x -e '-*icanon' -e '-*echo'; \
             sleep 600",
            quoted.join(" ")
        );
        let tmux = Tmux {
            socket: format!("linewatch-test-{}-{name}", std::process::id()),
        };
        let (w, h) = (size.0.to_string(), size.1.to_string());
        let mut args = vec![
            "start-server",
            ";",
            "set-option",
            "-g",
            "history-limit",
            "5000",
            ";",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w,
            "-y",
            &h,
        ];
        for e in env {
            args.extend(["-e", e]);
        }
        args.extend(["sh", "-c", &script]);
        tmux.run(&args);
        tmux
    }

    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "t"])
    }

    /// The screen with its colours (`-e`: SGR escape sequences).
    pub fn screen_with_colours(&self, history: bool) -> String {
        if history {
            self.run(&["capture-pane", "-p", "-e", "-t", "t", "-S", "-2000"])
        } else {
            self.run(&["capture-pane", "-p", "-e", "-t", "t"])
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.run(&args);
    }

    /// A pane variable (`#{alternate_on}`, ...).
    pub fn var(&self, name: &str) -> String {
        self.run(&["display-message", "-p", "-t", "t", &format!("#{{{name}}}")])
            .trim()
            .to_owned()
    }

    /// Waits until the screen satisfies `test`; panics with the screen after `limit`.
    pub fn wait_for(&self, what: &str, limit: Duration, test: impl Fn(&str) -> bool) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if test(&screen) {
                return screen;
            }
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits for linewatch to end; its exit code.
    pub fn wait_exit(&self, limit: Duration) -> String {
        let screen = self.wait_for("linewatch to end", limit, |s| {
            s.lines().any(|l| l.starts_with("exit="))
        });
        let line = screen
            .lines()
            .find(|l| l.starts_with("exit="))
            .unwrap_or("");
        line["exit=".len()..].to_owned()
    }

    /// The terminal as linewatch must leave it (call after [`Tmux::wait_exit`]): the main
    /// screen, the cursor shown, cooked mode.
    pub fn assert_restored(&self) {
        assert_eq!(self.var("alternate_on"), "0", "left the alternate screen");
        assert_eq!(self.var("cursor_flag"), "1", "the cursor is shown");
        let screen = self.wait_for("the terminal's modes", Duration::from_secs(5), |s| {
            s.lines().any(|l| l.trim_start_matches('-') == "echo")
        });
        let modes: Vec<&str> = screen
            .lines()
            .filter(|l| matches!(l.trim_start_matches('-'), "icanon" | "echo"))
            .collect();
        assert_eq!(modes, ["icanon", "echo"], "cooked mode again:\n{screen}");
    }

    /// linewatch's process id (the child of the pane's shell).
    pub fn linewatch_pid(&self) -> String {
        let shell = self.var("pane_pid");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("reading the shell's children");
        children
            .split_whitespace()
            .next()
            .expect("the shell runs linewatch")
            .to_owned()
    }

    /// The terminal as the dashboard holds it.
    pub fn assert_taken(&self) {
        assert_eq!(self.var("alternate_on"), "1", "on the alternate screen");
        assert_eq!(self.var("cursor_flag"), "0", "the cursor is hidden");
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

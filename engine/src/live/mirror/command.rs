//! Running iproute2's `ip` and `tc`, and telling their failures apart.
//!
//! Both commands are looked up once, by absolute path ([`Tools::find`]), in PATH and then in
//! the sbin directories a non-root PATH may lack. A command is run with stdin closed and its
//! output captured; success is its stdout, failure a [`Failure`] that quotes the command and
//! its stderr on one line. The tear-down is idempotent because a failure can say that the
//! thing to delete is already gone ([`Failure::gone`]).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{one_line, MirrorError};

/// Where the tools are looked for after PATH: the sbin directories come first because that is
/// where iproute2 installs them, and sudo's or cron's PATH may not list them.
const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Any execute bit in a file mode.
const EXECUTABLE: u32 = 0o111;

/// Absolute paths of iproute2's `ip` and `tc`.
#[derive(Debug, Clone)]
pub(super) struct Tools {
    ip: PathBuf,
    tc: PathBuf,
}

impl Tools {
    /// Finds both commands, or says which is missing and how to install it.
    pub(super) fn find() -> Result<Tools, MirrorError> {
        Ok(Tools {
            ip: find_tool("ip")?,
            tc: find_tool("tc")?,
        })
    }

    /// Runs `ip ARGS`: its stdout, or why it failed.
    pub(super) fn ip(&self, args: &[&str]) -> Result<String, Failure> {
        run(&self.ip, "ip", args)
    }

    /// Runs `tc ARGS`: its stdout, or why it failed.
    pub(super) fn tc(&self, args: &[&str]) -> Result<String, Failure> {
        run(&self.tc, "tc", args)
    }
}

/// Looks `name` up in PATH, then in [`TOOL_DIRS`].
fn find_tool(name: &str) -> Result<PathBuf, MirrorError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let fixed = TOOL_DIRS.map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(fixed)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & EXECUTABLE != 0)
        })
        .ok_or_else(|| {
            MirrorError::new(format!(
                "the `{name}` command is missing (looked in PATH, /usr/sbin and /sbin): \
                 install iproute2 (apt-get install iproute2)"
            ))
        })
}

/// A command that failed: what was run, and its stderr (or exit status) on one line.
#[derive(Debug)]
pub(super) struct Failure {
    command: String,
    /// What the command said (its stderr, folded to one line), or how it ended.
    pub(super) detail: String,
}

impl Failure {
    /// The device named does not exist.
    pub(super) fn no_device(&self) -> bool {
        ["Cannot find device", "does not exist", "No such device"]
            .iter()
            .any(|s| self.detail.contains(s))
    }

    /// The thing to delete is already gone.
    pub(super) fn gone(&self) -> bool {
        self.no_device()
            || [
                "not found",
                "Cannot find specified filter chain",
                "Invalid handle",
                "doesn't exist",
                "No such file or directory",
            ]
            .iter()
            .any(|s| self.detail.contains(s))
    }

    /// The command was refused for lack of privileges.
    pub(super) fn not_permitted(&self) -> bool {
        ["Operation not permitted", "Permission denied"]
            .iter()
            .any(|s| self.detail.contains(s))
    }

    /// The command and what it said, for joining several failures into one message.
    pub(super) fn describe(&self) -> String {
        format!("`{}` failed: {}", self.command, self.detail)
    }

    /// The failure as the error of the step `context`, with the fix when it is a matter of
    /// privileges.
    pub(super) fn error(&self, context: &str) -> MirrorError {
        let fix = if self.not_permitted() {
            " (linewatch --mirror needs root or CAP_NET_ADMIN: run it with sudo)"
        } else {
            ""
        };
        MirrorError::new(format!("{context}: {}{fix}", self.describe()))
    }
}

/// Runs `program` (shown as `name`) with `args` and no stdin.
fn run(program: &Path, name: &str, args: &[&str]) -> Result<String, Failure> {
    let command = format!("{name} {}", args.join(" "));
    match Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            let stderr = one_line(&String::from_utf8_lossy(&out.stderr));
            let detail = if stderr.is_empty() {
                format!("exited with {}", out.status)
            } else {
                stderr
            };
            Err(Failure { command, detail })
        }
        Err(e) => Err(Failure {
            command,
            detail: format!("could not run {}: {e}", program.display()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_failures_name_the_fix() {
        let f = Failure {
            command: "tc qdisc add dev eth0 clsact".into(),
            detail: "RTNETLINK answers: Operation not permitted".into(),
        };
        assert!(f
            .error("cannot add")
            .to_string()
            .contains("needs root or CAP_NET_ADMIN"));
    }

    #[test]
    fn failures_tell_what_is_gone() {
        let f = |detail: &str| Failure {
            command: "ip link del dev lwm9".into(),
            detail: detail.into(),
        };
        assert!(f("Cannot find device \"lwm9\"").no_device());
        assert!(f("Cannot find device \"lwm9\"").gone());
        assert!(f("Error: Cannot find specified filter chain.").gone());
        assert!(!f("Error: Cannot find specified filter chain.").no_device());
        assert!(!f("RTNETLINK answers: Operation not permitted").gone());
        assert_eq!(
            f("x").describe(),
            "`ip link del dev lwm9` failed: x".to_owned()
        );
    }
}

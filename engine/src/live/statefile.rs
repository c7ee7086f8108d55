//! What the state files of linewatch's undoable changes share (`--mirror`'s set-up in
//! `mirror::state`, `--interface`'s RSS change in `rss`): the files live in one root-only
//! directory, one per run (`<kind>-<pid>.state`), are written whole or not at all, hold
//! `key=value` lines, and every change or undo runs under one exclusive lock.

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of the directory, and of the state and lock files in it: root's alone.
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// Name of the lock file in the directory.
const LOCK_FILE: &str = "lock";

/// The value of `key` in a state file's `key=value` lines.
pub(crate) fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// True for `<dir>/<prefix><digits>.state`.
pub(crate) fn is_pid_file(path: &Path, dir: &str, prefix: &str) -> bool {
    path.parent() == Some(Path::new(dir))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix(prefix)?.strip_suffix(".state"))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes `text` to `path` whole or not at all (a temporary file, then a rename).
pub(crate) fn write_whole(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .and_then(|mut f| io::Write::write_all(&mut f, text.as_bytes()))?;
    fs::rename(&tmp, path)
}

/// Creates `dir` if needed, and makes it root's alone even if it was there.
pub(crate) fn ensure_dir(dir: &str) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE))
}

/// Waits for the exclusive lock on `<dir>/lock` (creating the file if needed); closing the
/// returned file releases it. A second lock taken by the same process waits too: take it once.
pub(crate) fn lock(dir: &str) -> io::Result<fs::File> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(Path::new(dir).join(LOCK_FILE))?;
    loop {
        // SAFETY: flock on a descriptor that `file` owns and keeps open; no memory involved.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(file);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_names() {
        let text = "# note\nversion=1\npid=12\nkey=\n";
        assert_eq!(field(text, "pid"), Some("12"));
        assert_eq!(field(text, "key"), Some(""));
        assert_eq!(field(text, "pi"), None);
        assert!(is_pid_file(Path::new("/d/x-12.state"), "/d", "x-"));
        assert!(!is_pid_file(Path::new("/d/x-.state"), "/d", "x-"));
        assert!(!is_pid_file(Path::new("/d/y-12.state"), "/d", "x-"));
        assert!(!is_pid_file(Path::new("/e/x-12.state"), "/d", "x-"));
    }
}

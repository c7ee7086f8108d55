//! What a test needs from the machine (root, system programs) and the one rule for a test that
//! cannot have it: **with `CI` set it fails; otherwise it says why and skips**.
//!
//! A green CI run that checked nothing is worse than a red one, so CI never skips; on a
//! developer's machine a missing `nginx` should not turn the whole suite red. Every check here
//! ends in [`skip_or_fail`], so the rule and its wording exist once:
//!
//! ```no_run
//! use linewatch_testkit::tools;
//!
//! fn a_live_test() {
//!     if !(tools::need_root("a_live_test", "network namespaces, veth")
//!         && tools::need_programs("a_live_test", &["ip", "nginx"]))
//!     {
//!         return; // skipped (outside CI only: under CI the checks above panicked)
//!     }
//!     // ... run nginx through tools::path_of("nginx") ...
//! }
//! ```
//!
//! Programs are looked up in `PATH`, then in the sbin directories a non-login `PATH` may lack
//! (`ip`, `tc` and `nginx` live there); [`path_of`] gives the full path to run.

use std::path::PathBuf;

/// Searched after `PATH`.
const SBIN: [&str; 4] = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin"];

/// The Debian package of each program a test may need (the rest are packaged under their own
/// name), for the "install it" half of a skip note.
const PACKAGES: [(&str, &str); 5] = [
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("ping", "iputils-ping"),
    ("setpriv", "util-linux"),
    ("taskset", "util-linux"),
];

/// Whether `CI` is set to something other than empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Whether this process's effective user id is 0 (`/proc/self/status`; false if unreadable).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            // Real, effective, saved, filesystem.
            .and_then(|ids| ids.split_whitespace().nth(1))
            == Some("0")
    })
}

/// Where program `name` is: the first file of that name in `PATH`, then in the sbin
/// directories.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The full path of program `name` to run, or `name` itself when it is not found (the spawn
/// then says so).
pub fn path_of(name: &str) -> String {
    find(name).map_or_else(|| name.to_owned(), |p| p.display().to_string())
}

/// The rule, for a precondition that is missing: with `CI` set, panics with `what`; otherwise
/// prints a note with `what` and returns, and the caller skips what needed it.
///
/// # Panics
/// When `CI` is set (see [`in_ci`]).
pub fn skip_or_fail(what: &str) {
    assert!(!in_ci(), "{what} (CI is set, so this is a failure)");
    eprintln!("note: {what}; skipped (set CI to make this a failure)");
}

/// Whether `test` may go on as root; when not root, applies [`skip_or_fail`] with `why` (what
/// needs root, e.g. "network namespaces, veth, XDP").
///
/// # Panics
/// When not root and `CI` is set.
pub fn need_root(test: &str, why: &str) -> bool {
    let root = is_root();
    if !root {
        skip_or_fail(&format!("{test} cannot run: needs root ({why})"));
    }
    root
}

/// Whether every program in `programs` is installed; when some are not, applies
/// [`skip_or_fail`] naming them and their Debian packages.
///
/// # Panics
/// When a program is missing and `CI` is set.
pub fn need_programs(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| find(p).is_none())
        .collect();
    if !missing.is_empty() {
        skip_or_fail(&format!(
            "{test} cannot run: missing programs {} (Debian: apt-get install {})",
            missing.join(", "),
            packages_of(&missing).join(" ")
        ));
    }
    missing.is_empty()
}

/// The Debian packages that hold `programs`, each once, in order.
fn packages_of<'a>(programs: &[&'a str]) -> Vec<&'a str> {
    let mut packages: Vec<&'a str> = Vec::new();
    for &program in programs {
        let package = PACKAGES
            .iter()
            .find(|(p, _)| *p == program)
            .map_or(program, |&(_, package)| package);
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages
}

/// A Python interpreter that can import `module` (`python3` on PATH, then Debian's), or
/// `None`: the tests that check linewatch's output with a Python parser share it.
pub fn python_with(module: &str) -> Option<&'static str> {
    ["python3", "/usr/bin/python3"].into_iter().find(|py| {
        std::process::Command::new(py)
            .args(["-c", &format!("import {module}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_map_to_their_debian_packages_once() {
        assert_eq!(
            packages_of(&["ip", "tc", "ping", "nginx", "setpriv", "taskset"]),
            ["iproute2", "iputils-ping", "nginx", "util-linux"]
        );
        assert_eq!(packages_of(&["tshark"]), ["tshark"]);
    }

    #[test]
    fn finds_a_program_and_not_a_made_up_one() {
        // `sh` is on every machine that can run these tests.
        let sh = find("sh").expect("sh");
        assert!(sh.is_absolute() && sh.ends_with("sh"), "{}", sh.display());
        assert_eq!(path_of("sh"), sh.display().to_string());
        assert_eq!(find("no-such-program-linewatch"), None);
        assert_eq!(
            path_of("no-such-program-linewatch"),
            "no-such-program-linewatch"
        );
    }

    #[test]
    fn root_matches_the_effective_uid() {
        let uid = std::process::Command::new("id")
            .arg("-u")
            .output()
            .expect("id -u");
        let uid = String::from_utf8_lossy(&uid.stdout);
        assert_eq!(is_root(), uid.trim() == "0", "id -u says {uid}");
    }

    #[test]
    fn a_missing_program_is_reported_by_the_rule() {
        let outcome = std::panic::catch_unwind(|| need_programs("t", &["sh", "no-such-program"]));
        // Under CI the rule panics; elsewhere it answers false. Either way, never true.
        match outcome {
            Ok(can) => assert!(!in_ci() && !can),
            Err(_) => assert!(in_ci()),
        }
        assert!(need_programs("t", &["sh"]));
    }
}

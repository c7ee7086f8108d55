//! What the engine's root-only tests share: whether CI is set (then a test that cannot run
//! fails instead of skipping), whether this process is root, and whether a command is there.

/// `CI` is set to something other than empty, `0` or `false`.
pub(crate) fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// The real user id is 0.
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

/// `name` is a file in `PATH` or in the sbin directories a non-login `PATH` may lack.
#[allow(dead_code)] // Only the netns tests look for commands.
pub(crate) fn has_tool(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(std::path::PathBuf::from))
        .any(|d| d.join(name).is_file())
}

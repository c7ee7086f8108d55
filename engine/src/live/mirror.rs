//! Placeholder until the mirror module lands (being written on branch wt-mirror).
#![allow(missing_docs, unreachable_pub, missing_debug_implementations)]
use std::fmt;
pub struct MirrorSpec {
    pub interface: String,
    pub queues: u32,
}
pub struct Mirror;
#[derive(Debug)]
pub struct MirrorError(pub String);
impl fmt::Display for MirrorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for MirrorError {}
impl Mirror {
    pub fn create(_spec: &MirrorSpec) -> Result<Mirror, MirrorError> {
        Err(MirrorError("--mirror is not built yet".into()))
    }
    pub fn capture_interface(&self) -> &str {
        ""
    }
    pub fn interface(&self) -> &str {
        ""
    }
    pub fn teardown(&mut self) -> Result<(), MirrorError> {
        Ok(())
    }
}
pub fn clean_leftovers() -> Vec<String> {
    Vec::new()
}
pub const GUARD_ARG: &str = "--internal-mirror-guard";
pub fn guard_main(_args: &[String]) -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}

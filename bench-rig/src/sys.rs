//! The rig's dealings with the system: CPU time of processes and of the whole machine from
//! `/proc`, signals (its own stop flag, interrupting the processes it started), whether it runs
//! as root, and where the linewatch binary is. The clock of the send stamps, CPU affinity and
//! the interface index are the engine's ([`linewatch_engine::live::sys`]), re-exported here so
//! the rig has one place to look.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

pub use linewatch_engine::live::sys::{
    allowed_cores, ifindex, monotonic_ns, set_affinity, NS_PER_SEC,
};

/// Sets a flag on SIGINT and SIGTERM.
pub fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    stop
}

/// Sends SIGINT to `child` (a process this rig started), as Ctrl-C would: linewatch and
/// tcpdump then print their summaries and exit.
pub fn interrupt(child: &Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a pid of our own child and a valid signal number.
        unsafe { libc::kill(pid, libc::SIGINT) };
    }
}

/// This process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The linewatch binary beside this one.
pub fn linewatch_beside() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("linewatch")))
        .unwrap_or_else(|| PathBuf::from("linewatch"))
}

/// Clock ticks per second of `/proc` CPU times.
fn ticks_per_second() -> f64 {
    // SAFETY: plain query.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) process or thread `pid` has used, from `/proc/<pid>/stat`.
pub fn cpu_seconds_of(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after its closing parenthesis are
    // plain: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// Busy CPU seconds of the whole machine so far (every core: all but idle and iowait), from
/// `/proc/stat`.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: f64 = v
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| x)
        .sum();
    Some(busy / ticks_per_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable_and_grows() {
        let pid = std::process::id();
        let before = cpu_seconds_of(pid).expect("own /proc/pid/stat");
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed().as_millis() < 120 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = cpu_seconds_of(pid).expect("own /proc/pid/stat");
        assert!(after > before, "{before} -> {after}");
        assert!(machine_busy_seconds().is_some());
        assert!(!allowed_cores().is_empty());
    }
}

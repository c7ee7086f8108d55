//! `--interface` and the NIC's RSS, live on what this machine has: veth, which has no RSS.
//!
//! - On a 4-queue veth, linewatch says in its start line that RSS is not supported by the
//!   driver and that responses may reach another worker, captures anyway, and exits cleanly
//!   on SIGINT (and the same with `--rss keep`).
//! - The next start restores what a killed run left in its RSS state file (its guard killed
//!   too) and deletes the file.
//! - The guard (the mirror watchdog given an RSS state file) restores when its run goes: an
//!   interface that is gone counts as restored (its setting went with it), a driver that
//!   refuses keeps the file for the next start.
//! - With linewatch attached, a second linewatch on the same interface fails with an error that
//!   names the first one's pid as the holder of the XDP bpf_link (`ip link set ... off` cannot
//!   remove a program a bpf_link holds).
//!
//! Setting RSS on a real NIC (xfrm symmetric-xor, the Woo & Park key) cannot be tested here:
//! no NIC with RSS exists on this machine. Needs root and ip; with `CI` set they fail instead
//! of skipping.

#![allow(clippy::print_stdout)]

mod common;
mod live;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use linewatch_testkit::lab::{End, Lab};
use linewatch_testkit::tools;
use live::process::Proc;
use live::{serial, EXIT_TIMEOUT, READY_LINE, READY_TIMEOUT};

const NS: &str = "cap";
const PEER: &str = "peer";
const VETH: &str = "lwrss0";
const QUEUES: u32 = 4;
const STATE_DIR: &str = "/run/linewatch";
/// How long a guard gets to restore and exit after its pipe closes.
const GUARD_TIMEOUT: Duration = Duration::from_secs(5);

/// The line a driver without RSS gives.
fn unsupported_line(iface: &str) -> String {
    format!(
        "linewatch: RSS on {iface}: not supported by the driver (Operation not supported): \
         a connection's directions may reach different queues: each worker hands segments to \
         the worker that owns their connection (the crossing fallback)"
    )
}

/// A pid that was a process and is gone (reaped).
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("true");
    let pid = child.id();
    child.wait().expect("reaped");
    pid
}

/// An RSS state file of run `pid` (gone) in namespace `netns`, as `live::rss` writes them.
fn write_state(pid: u32, netns: &str, iface: &str, fields: &str) -> PathBuf {
    std::fs::create_dir_all(STATE_DIR).expect("state dir");
    let path = Path::new(STATE_DIR).join(format!("rss-{pid}.state"));
    let text = format!(
        "# linewatch --interface: test\nversion=1\npid={pid}\nstart_time=1\nguard_pid=0\n\
         guard_start_time=0\nnetns={netns}\ninterface={iface}\ninput_xfrm=-\nkey=-\n\
         fields={fields}\n"
    );
    std::fs::write(&path, text).expect("state file");
    path
}

#[test]
fn interface_on_veth_says_rss_is_unsupported_restores_leftovers_and_exits_cleanly() {
    let test = "rss_live";
    if !(tools::need_root(test, "network namespaces, veth, XDP")
        && tools::need_programs(test, &["ip"]))
    {
        return;
    }
    let _serial = serial();
    let lab = Lab::new("lwr", &[NS, PEER]).expect("namespaces");
    lab.add_veth(
        End::new(NS, VETH).addr("10.213.0.1/24"),
        End::new(PEER, "lwrss1").addr("10.213.0.2/24"),
        QUEUES,
    )
    .expect("a 4-queue veth");
    let netns = {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                lab.ns(NS).name(),
                "readlink",
                "/proc/self/ns/net",
            ])
            .output()
            .expect("readlink");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // A killed run (and its guard) left a state file: nothing was changed yet.
    let gone = dead_pid();
    let leftover = write_state(gone, &netns, VETH, "");

    let scratch = common::scratch("rss-live");
    let summary = scratch.join("summary.json");
    let mut cmd = lab.ns(NS).exec(env!("CARGO_BIN_EXE_linewatch"));
    cmd.args(["--interface", VETH, "--summary"]).arg(&summary);
    let mut lw = Proc::spawn("linewatch --interface", cmd);
    lw.wait_stderr_line(READY_LINE, READY_TIMEOUT)
        .unwrap_or_else(|why| panic!("linewatch never became ready: {why}"));
    let stderr = lw.stderr_text();
    println!("{stderr}");
    assert!(stderr.contains(&unsupported_line(VETH)), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "linewatch: RSS on {VETH}: restored what linewatch pid {gone} changed before it was \
             killed (nothing was left)"
        )),
        "{stderr}"
    );
    assert!(!leftover.exists(), "the leftover state file is still there");

    // A second linewatch on the same interface: the program is held by the first one's
    // bpf_link, which `ip link set ... off` cannot remove; the error names its pid.
    let second = Command::new("ip")
        .args(["netns", "exec", lab.ns(NS).name()])
        .arg(env!("CARGO_BIN_EXE_linewatch"))
        .args(["--interface", VETH, "--duration", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("a second linewatch");
    let error = String::from_utf8_lossy(&second.stderr);
    println!("{error}");
    assert!(!second.status.success(), "{error}");
    assert!(
        error.contains(&format!("kill {}", lw.pid())) && !error.contains("ip link set"),
        "{error}"
    );

    let done = lw.stop(libc::SIGINT, EXIT_TIMEOUT);
    assert!(done.status.success(), "{}: {}", done.status, done.stderr);
    // Nothing keeps a connection on one queue of this veth: the summary says the fallback
    // pairs them.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("the summary"))
            .expect("the summary is JSON");
    let pairing = json["capture"]["pairing"].as_str().unwrap_or_default();
    assert!(pairing.starts_with("crossing"), "pairing {pairing:?}");

    // --rss keep: the same finding, nothing to keep or change.
    let out = Command::new("ip")
        .args(["netns", "exec", lab.ns(NS).name()])
        .arg(env!("CARGO_BIN_EXE_linewatch"))
        .args(["--interface", VETH, "--rss", "keep", "--duration", "1"])
        .stdin(Stdio::null())
        .output()
        .expect("linewatch --rss keep");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&unsupported_line(VETH)), "{stderr}");
}

/// Starts the guard of `path` and closes its pipe, as a dying run does; its exit status.
fn guard_after_its_run_goes(path: &Path) -> std::process::ExitStatus {
    let mut guard = Command::new(env!("CARGO_BIN_EXE_linewatch"))
        .arg(linewatch_engine::live::mirror::WATCHDOG_ARG)
        .arg(path)
        .stdin(Stdio::piped())
        .spawn()
        .expect("the guard");
    drop(guard.stdin.take());
    let deadline = Instant::now() + GUARD_TIMEOUT;
    loop {
        if let Some(status) = guard.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = guard.kill();
            panic!("the guard did not exit within {GUARD_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn guard_restores_when_its_run_goes() {
    if !tools::need_root("rss_live", "/run/linewatch") {
        return;
    }
    let _serial = serial();
    // An interface that is gone took its setting with it: restored, file deleted.
    let path = write_state(dead_pid(), "net:[1]", "lwrssgone0", "tcp4:0x30");
    assert!(guard_after_its_run_goes(&path).success());
    assert!(!path.exists());
    // A driver that refuses (lo has no flow hash): the file stays for the next start.
    let path = write_state(dead_pid(), "net:[1]", "lo", "tcp4:0x30");
    let status = guard_after_its_run_goes(&path);
    let kept = path.exists();
    let _ = std::fs::remove_file(&path);
    assert!(!status.success());
    assert!(kept, "the guard deleted a state file it could not restore");
}

//! `--mirror` set-up and tear-down against the real kernel, inside throw-away network
//! namespaces (a [`linewatch_testkit::lab::Lab`]: `lwmt-c-<pid>-<n>` and `lwmt-s-…`, joined by
//! a veth with addresses from 10.201.0.0/24).
//!
//! The mirror runs in `examples/mirror_probe.rs` (built on demand by these tests), which
//! dispatches the guard argument like linewatch's `main`, so kill -9 can be tested on a real
//! process. Needs root: with `CI` set the tests fail without it; otherwise they print a note
//! and pass.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use linewatch_testkit::lab::{run, End, Lab, LabError, Netns};
use linewatch_testkit::tools::{need_programs, need_root};

const SERVER_IF: &str = "sv0";
const CLIENT_IF: &str = "cl0";
const SERVER_IP: &str = "10.201.0.2";
const CLIENT_IP: &str = "10.201.0.1";

/// True when the test can run; panics under CI when it cannot.
fn can_run(test: &str) -> bool {
    need_root(test, "network namespaces, veth, tc")
        && need_programs(test, &["ip", "tc", "ping", "python3", "tcpdump", "setpriv"])
}

/// The probe example, built (or found up to date) once per test binary.
fn probe_path() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        let exe = std::env::current_exe().expect("path of the test executable");
        // target/<profile>/deps/mirror_netns-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable in target/<profile>/deps");
        let target_dir = profile_dir.parent().expect("target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(p) => p,
            None => panic!("cannot tell the cargo profile from {}", exe.display()),
        };
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "linewatch-engine", "--example"])
            .args(["mirror_probe", "--profile", profile, "--target-dir"])
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo to build the mirror_probe example");
        assert!(status.success(), "building examples/mirror_probe failed");
        let probe = profile_dir.join("examples").join("mirror_probe");
        assert!(probe.is_file(), "{} was not built", probe.display());
        probe
    })
}

/// The stdout of a command that must succeed.
fn must(done: Result<String, LabError>) -> String {
    done.unwrap_or_else(|e| panic!("{e}"))
}

/// Two network namespaces joined by a veth (client cl0 10.201.0.1 – server sv0 10.201.0.2),
/// and the processes a test started in them. Dropping it kills those processes, then the lab
/// deletes both namespaces (and with them every device in them).
struct MirrorLab {
    client: Netns,
    server: Netns,
    children: Vec<Child>,
    /// Deletes both namespaces when it drops, after [`MirrorLab`]'s own drop has stopped the
    /// children.
    _net: Lab,
}

impl MirrorLab {
    fn new() -> MirrorLab {
        let lab = Lab::new("lwmt", &["c", "s"]).expect("the lab's namespaces");
        lab.add_veth(
            End::new("c", CLIENT_IF).addr(&format!("{CLIENT_IP}/24")),
            End::new("s", SERVER_IF).addr(&format!("{SERVER_IP}/24")),
            1,
        )
        .expect("the veth pair");
        MirrorLab {
            client: lab.ns("c").clone(),
            server: lab.ns("s").clone(),
            children: Vec::new(),
            _net: lab,
        }
    }

    /// `ip netns exec NS args…`
    fn exec(&self, ns: &Netns, args: &[&str]) -> Command {
        let mut cmd = ns.exec(args[0]);
        cmd.args(&args[1..]);
        cmd
    }

    fn run(&self, ns: &Netns, args: &[&str]) -> String {
        must(run(&mut self.exec(ns, args)))
    }

    fn counter(&self, ns: &Netns, dev: &str, name: &str) -> u64 {
        let path = format!("/sys/class/net/{dev}/statistics/{name}");
        self.run(ns, &["cat", &path])
            .trim()
            .parse()
            .expect("counter value")
    }

    fn links(&self, ns: &Netns) -> String {
        must(ns.ip(&["-o", "link", "show"]))
    }

    fn tc(&self, ns: &Netns, args: &[&str]) -> String {
        must(ns.tc(args))
    }

    /// Pings the server from the client; panics unless every reply arrives.
    fn ping(&self, count: u32) {
        let out = self.run(
            &self.client,
            &[
                "ping",
                "-c",
                &count.to_string(),
                "-i",
                "0.05",
                "-W",
                "2",
                SERVER_IP,
            ],
        );
        assert!(
            out.contains(&format!("{count} received")),
            "the original traffic does not flow while mirrored: {out}"
        );
    }

    fn start_probe(&mut self, ns: &Netns, iface: &str) -> Probe {
        Probe::start(self.exec(ns, &[probe_path().to_str().expect("utf-8 path"), iface]))
    }

    /// The server-side mirror set-up must be entirely gone (nothing of linewatch's on sv0).
    fn assert_server_clean(&self, why: &str) {
        let s = &self.server;
        let links = self.links(s);
        assert!(
            !links.contains(": lwm") && !links.contains(": lwc"),
            "{why}: veths left: {links}"
        );
        let qdiscs = self.tc(s, &["qdisc", "show", "dev", SERVER_IF]);
        assert!(!qdiscs.contains("clsact"), "{why}: qdisc left: {qdiscs}");
        for dir in ["ingress", "egress"] {
            let f = self.tc(s, &["filter", "show", "dev", SERVER_IF, dir]);
            assert!(f.trim().is_empty(), "{why}: {dir} filters left: {f}");
        }
    }

    /// Polls `cond` for up to `limit`.
    fn wait_until(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if cond() {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for MirrorLab {
    fn drop(&mut self) {
        // Before the namespaces go: a process inside would keep its namespace alive.
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `mirror_probe IFACE`: its stdout lines arrive on a channel.
struct Probe {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    capture: String,
}

impl Probe {
    fn start(mut cmd: Command) -> Probe {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mirror_probe");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("probe stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut probe = Probe {
            child,
            stdin,
            lines,
            capture: String::new(),
        };
        match probe.lines.recv_timeout(Duration::from_secs(20)) {
            Ok(capture) => probe.capture = capture,
            Err(_) => {
                let _ = probe.child.kill();
                let _ = probe.child.wait();
                panic!("mirror_probe did not come up: {}", probe.stderr());
            }
        }
        assert!(
            probe.capture.starts_with("lwc"),
            "unexpected capture interface {:?}",
            probe.capture
        );
        probe
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&mut self) -> String {
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        err.trim().to_owned()
    }

    /// Closes stdin (the probe tears down) and returns the probe's remaining output.
    fn stop(mut self) -> String {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait for mirror_probe");
        let out: Vec<String> = self.lines.iter().collect();
        let err = self.stderr();
        assert!(
            status.success(),
            "mirror_probe tear-down failed: {status}: {err}"
        );
        out.join("\n")
    }

    fn kill9(&mut self) {
        self.child.kill().expect("kill -9 mirror_probe");
        let _ = self.child.wait();
    }

    /// The probe's state file, as key → value.
    fn state(&self) -> HashMap<String, String> {
        let path = format!("/run/linewatch/mirror-{}.state", self.pid());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn guard_pid(&self) -> u32 {
        self.state()["guard_pid"].parse().expect("guard pid")
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state_file(pid: u32) -> PathBuf {
    PathBuf::from(format!("/run/linewatch/mirror-{pid}.state"))
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

/// Counts lines of `text` that contain every one of `parts`.
fn count(text: &str, parts: &[&str]) -> usize {
    text.lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .count()
}

/// tcpdump on the capture end, stopped with SIGINT to read what it saw.
struct Tcpdump {
    child: Child,
}

impl Tcpdump {
    fn start(lab: &MirrorLab, ns: &Netns, dev: &str, filter: &str) -> Tcpdump {
        let child = lab
            .exec(ns, &["tcpdump", "-i", dev, "-nn", "-l", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        // From here on, Drop kills and reaps it whatever happens.
        let mut dump = Tcpdump { child };
        let stderr = dump.child.stderr.take().expect("tcpdump stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let end = Instant::now() + Duration::from_secs(10);
        let mut said = Vec::new();
        while let Ok(line) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            if line.contains("listening on") {
                return dump;
            }
            said.push(line);
        }
        panic!("tcpdump did not start on {dev}: {said:?}");
    }

    fn finish(mut self) -> String {
        thread::sleep(Duration::from_millis(300));
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        out
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (a) Both directions of the server's veth arrive on the capture end, the original traffic
/// still flows, and tear-down leaves nothing.
#[test]
fn mirrors_both_directions_and_tears_down() {
    if !can_run("mirrors_both_directions_and_tears_down") {
        return;
    }
    let mut lab = MirrorLab::new();
    let server = lab.server.clone();
    let probe = lab.start_probe(&server, SERVER_IF);
    let capture = probe.capture.clone();
    let guard = probe.guard_pid();
    assert!(alive(guard), "the guard is not running");
    let mode = std::fs::metadata("/run/linewatch").expect("state dir");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o700
    );
    let links = lab.links(&server);
    assert!(links.contains(&format!("{capture}@")), "{links}");
    assert!(links.contains("mtu 3000"), "{links}");

    let web_root = std::env::temp_dir();
    let web = lab
        .exec(&server, &["python3", "-m", "http.server", "8080"])
        .args(["--bind", SERVER_IP, "--directory"])
        .arg(&web_root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start python3 -m http.server");
    lab.children.push(web);

    let rx_before = lab.counter(&server, &capture, "rx_packets");
    let dump = Tcpdump::start(&lab, &server, &capture, "icmp or tcp port 8080");
    lab.ping(20);
    // Retries until the server listens (up to 5 s), then prints the status code.
    let fetch = "import urllib.request as r, time\n\
                 for i in range(100):\n\
                 \x20   try:\n\
                 \x20       print(r.urlopen('http://10.201.0.2:8080/', timeout=2).status); break\n\
                 \x20   except OSError: time.sleep(0.05)\n";
    let status = lab.run(&lab.client, &["python3", "-c", fetch]);
    assert_eq!(status.trim(), "200", "HTTP through the mirrored interface");
    let seen = dump.finish();
    let rx_after = lab.counter(&server, &capture, "rx_packets");

    assert_eq!(
        count(&seen, &["ICMP echo request"]),
        20,
        "ingress not mirrored:\n{seen}"
    );
    assert_eq!(
        count(&seen, &["ICMP echo reply"]),
        20,
        "egress not mirrored:\n{seen}"
    );
    let to_server = count(&seen, &[&format!("> {SERVER_IP}.8080:")]);
    let from_server = count(&seen, &[&format!("{SERVER_IP}.8080 > {CLIENT_IP}.")]);
    assert!(to_server >= 4, "client→server TCP not mirrored:\n{seen}");
    assert!(from_server >= 3, "server→client TCP not mirrored:\n{seen}");
    assert!(
        rx_after - rx_before >= 40 + (to_server + from_server) as u64,
        "capture rx_packets grew by {} only",
        rx_after - rx_before
    );
    let sent = lab.counter(&server, &capture, "tx_packets");
    assert_eq!(sent, 0, "the capture end transmitted {sent} packets");
    eprintln!(
        "mirror: {} packets on {capture}: 20+20 ICMP, {to_server}+{from_server} TCP",
        rx_after - rx_before
    );

    let pid = probe.pid();
    let out = probe.stop();
    assert!(out.contains("teardown ok"), "{out}");
    lab.assert_server_clean("after teardown");
    assert!(!state_file(pid).exists(), "state file left");
    assert!(
        lab.wait_until(Duration::from_secs(2), || !alive(guard)),
        "the guard did not exit"
    );
    lab.ping(3);
}

/// (b) kill -9: the guard removes everything within 2 s; a new probe works at once, also when
/// started while the previous guard may still be cleaning up.
#[test]
fn kill_9_leaves_nothing() {
    if !can_run("kill_9_leaves_nothing") {
        return;
    }
    let mut lab = MirrorLab::new();
    let server = lab.server.clone();
    let mut first = lab.start_probe(&server, SERVER_IF);
    let pid = first.pid();
    let killed_at = Instant::now();
    first.kill9();
    let clean = lab.wait_until(Duration::from_secs(2), || {
        let links = lab.links(&server);
        !links.contains(": lw")
            && !lab
                .tc(&server, &["qdisc", "show", "dev", SERVER_IF])
                .contains("clsact")
            && !state_file(pid).exists()
    });
    assert!(clean, "2 s after kill -9 the mirror is still there");
    eprintln!("kill -9: guard cleaned up in {:?}", killed_at.elapsed());
    lab.assert_server_clean("after the guard");

    // At once: a new probe, then kill it and start the next without waiting.
    let mut second = lab.start_probe(&server, SERVER_IF);
    let rx = lab.counter(&server, &second.capture, "rx_packets");
    lab.ping(5);
    assert!(lab.counter(&server, &second.capture, "rx_packets") >= rx + 10);
    let (second_pid, second_capture) = (second.pid(), second.capture.clone());
    second.kill9();
    let third = lab.start_probe(&server, SERVER_IF);
    let rx = lab.counter(&server, &third.capture, "rx_packets");
    lab.ping(5);
    assert!(
        lab.counter(&server, &third.capture, "rx_packets") >= rx + 10,
        "the probe started right after a kill -9 does not capture"
    );
    let gone = lab.wait_until(Duration::from_secs(2), || {
        !lab.links(&server).contains(&format!("{second_capture}@"))
            && !state_file(second_pid).exists()
    });
    assert!(gone, "the killed probe's veth is still there");
    let out = third.stop();
    assert!(out.contains("teardown ok"), "{out}");
    lab.assert_server_clean("after the last teardown");
}

/// (c) A clsact qdisc with foreign filters (one of them at linewatch's first preference) is
/// shared, and left exactly as it was.
#[test]
fn foreign_qdisc_and_filters_stay() {
    if !can_run("foreign_qdisc_and_filters_stay") {
        return;
    }
    let mut lab = MirrorLab::new();
    let server = lab.server.clone();
    let s = &server;
    lab.tc(s, &["qdisc", "add", "dev", SERVER_IF, "clsact"]);
    for (dir, pref) in [("ingress", "100"), ("egress", "49001")] {
        #[rustfmt::skip]
        lab.tc(s, &[
            "filter", "add", "dev", SERVER_IF, dir, "pref", pref, "protocol", "ip", "u32",
            "match", "ip", "dst", "10.201.0.9/32", "flowid", "1:1",
        ]);
    }
    let foreign = |lab: &MirrorLab| {
        let i = lab.tc(
            s,
            &["filter", "show", "dev", SERVER_IF, "ingress", "pref", "100"],
        );
        let e = lab.tc(
            s,
            &[
                "filter", "show", "dev", SERVER_IF, "egress", "pref", "49001",
            ],
        );
        i.contains("0ac90009/ffffffff") && e.contains("0ac90009/ffffffff")
    };
    assert!(foreign(&lab));

    let probe = lab.start_probe(s, SERVER_IF);
    let mirror = probe.capture.replace("lwc", "lwm");
    let egress = lab.tc(s, &["filter", "show", "dev", SERVER_IF, "egress"]);
    assert!(
        egress.contains(&format!(" {mirror}-steer.o:[tc] direct-action")),
        "not the steering filter: {egress}"
    );
    let rx = lab.counter(s, &probe.capture, "rx_packets");
    lab.ping(5);
    assert!(lab.counter(s, &probe.capture, "rx_packets") >= rx + 10);
    let out = probe.stop();
    assert!(out.contains("teardown ok"), "{out}");

    let qdiscs = lab.tc(s, &["qdisc", "show", "dev", SERVER_IF]);
    assert!(
        qdiscs.contains("clsact"),
        "foreign clsact removed: {qdiscs}"
    );
    assert!(foreign(&lab), "a foreign filter was removed");
    for dir in ["ingress", "egress"] {
        let f = lab.tc(s, &["filter", "show", "dev", SERVER_IF, dir]);
        assert!(
            !f.contains("mirred") && !f.contains("-steer.o"),
            "our {dir} filter is left: {f}"
        );
    }
    assert!(!lab.links(s).contains(": lw"));
}

/// (d) lo: one direction only, so a ping's request and reply are captured once each.
#[test]
fn loopback_mirrors_one_direction() {
    if !can_run("loopback_mirrors_one_direction") {
        return;
    }
    let mut lab = MirrorLab::new();
    let server = lab.server.clone();
    let s = &server;
    let probe = lab.start_probe(s, "lo");
    let rx = lab.counter(s, &probe.capture, "rx_packets");
    let pings = 10;
    let out = lab.run(s, &["ping", "-c", "10", "-i", "0.05", "127.0.0.1"]);
    assert!(out.contains("10 received"), "{out}");
    thread::sleep(Duration::from_millis(200));
    let got = lab.counter(s, &probe.capture, "rx_packets") - rx;
    assert_eq!(
        got,
        pings * 2,
        "capture on lo saw {got} packets for {pings} pings"
    );
    let out = probe.stop();
    assert!(out.contains("teardown ok"), "{out}");
    assert!(!lab
        .tc(s, &["qdisc", "show", "dev", "lo"])
        .contains("clsact"));
    assert!(!lab.links(s).contains(": lw"));
}

/// (e) clean_leftovers undoes a run whose probe and guard were both killed, and removes a
/// linewatch-named veth of a dead pid that has no state file.
#[test]
fn clean_leftovers_removes_dead_runs() {
    if !can_run("clean_leftovers_removes_dead_runs") {
        return;
    }
    let mut lab = MirrorLab::new();
    let server = lab.server.clone();
    let s = &server;
    let mut probe = lab.start_probe(s, SERVER_IF);
    let pid = probe.pid();
    must(run(
        Command::new("kill").args(["-9", &probe.guard_pid().to_string()])
    ));
    probe.kill9();
    thread::sleep(Duration::from_millis(200));
    assert!(state_file(pid).exists(), "no leftover state file to clean");
    assert!(lab.links(s).contains(&format!("lwm{pid}@")));

    // A pid that just exited, for a veth without a state file.
    let mut gone = Command::new("true").spawn().expect("run true");
    let dead = gone.id();
    let _ = gone.wait();
    let (mirror, capture) = (format!("lwm{dead}"), format!("lwc{dead}"));
    must(s.ip(&[
        "link", "add", &mirror, "type", "veth", "peer", "name", &capture,
    ]));

    let out = lab.run(s, &[probe_path().to_str().expect("utf-8 path"), "--clean"]);
    eprintln!("clean_leftovers:\n{out}");
    assert_eq!(
        count(&out, &[&format!("after linewatch pid {pid} ")]),
        1,
        "{out}"
    );
    assert_eq!(
        count(&out, &["leftover veth", &dead.to_string()]),
        1,
        "{out}"
    );
    lab.assert_server_clean("after clean_leftovers");
    assert!(!state_file(pid).exists());
    let again = lab.run(s, &[probe_path().to_str().expect("utf-8 path"), "--clean"]);
    assert!(
        !again.contains(&pid.to_string()) && !again.contains(&dead.to_string()),
        "second clean_leftovers: {again}"
    );
}

/// Errors are one line with the cause and the fix, and leave nothing behind.
#[test]
fn errors_are_one_line_with_the_fix() {
    if !can_run("errors_are_one_line_with_the_fix") {
        return;
    }
    let lab = MirrorLab::new();
    let s = &lab.server;
    let probe = probe_path().to_str().expect("utf-8 path");
    let cases: [(&[&str], &str); 3] = [
        (&["nope0"], "interface nope0 not found"),
        (&["lwm123"], "created for itself"),
        (
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ],
            "needs root or CAP_NET_ADMIN",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = lab.exec(s, args);
        if args[0] == "setpriv" {
            cmd.args([probe, SERVER_IF]);
        } else {
            cmd = lab.exec(s, &[probe, args[0]]);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run probe");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("");
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(last.contains(want), "{args:?}: {err}");
        assert!(!last.contains("panicked"), "{err}");
    }
    lab.assert_server_clean("after failed starts");
}

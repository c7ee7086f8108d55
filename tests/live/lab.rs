//! The lab: a server and a client network namespace joined by one veth pair, nginx in the
//! server namespace with its own configuration, logs and temp files in a scratch directory.
//!
//! ```text
//!   lwn-c-<pid>-<n>                          lwn-s-<pid>-<n>
//!   lwnc<n> 10.202.0.2/24  <--- veth --->  lwns<n> 10.202.0.1/24   nginx :8080 :8081
//!                                            (SPAN: tc mirror -> lwts<n> ~~ lwtd<n>)
//! ```
//!
//! Both ends are created inside their namespaces, so no name ever exists in the host's
//! namespace and two test processes cannot collide. Dropping the [`Lab`] stops nginx and
//! deletes both namespaces, which destroys every interface in them (the veth pairs, a SPAN pair,
//! whatever linewatch --mirror left behind) and their qdiscs.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::process::{run, run_ok, Proc};
use super::tool;

pub const SERVER_ADDR: &str = "10.202.0.1";
pub const CLIENT_ADDR: &str = "10.202.0.2";
/// The port linewatch is told to monitor.
pub const MONITORED_PORT: u16 = 8080;
/// A second nginx port: traffic linewatch must leave alone.
pub const UNMONITORED_PORT: u16 = 8081;
/// Size of the large static file: 64 KiB spans dozens of MSS-sized segments (or a few TSO
/// super-frames on veth).
pub const BIG_FILE_BYTES: usize = 64 * 1024;
/// Answers 204 and is not logged: the readiness probe must not appear in the access log.
const READY_PATH: &str = "/ready";
/// How long nginx gets to answer its first probe.
const NGINX_START: Duration = Duration::from_secs(10);
/// Limit for the small `ip`/`tc`/`curl` commands.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Makes lab numbers unique within this test process (the pid makes them unique across).
static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// The nginx access-log format: tab-separated, so the request line (which holds spaces) is the
/// last field. `$http_host` is the Host header as sent (`-` when absent). `$request` rather than `$request_method`: nginx leaves the latter `-` for a
/// request it rejects while parsing (`OPTIONS *` gets a 400), but linewatch still sees the
/// method on the wire.
pub const LOG_FORMAT: &str = "$server_port\\t$status\\t$request_time\\t$http_host\\t$request";

#[derive(Debug)]
pub struct Lab {
    pub id: usize,
    pub server_ns: String,
    pub client_ns: String,
    pub server_veth: String,
    pub client_veth: String,
    /// Scratch directory: nginx.conf, logs, www/, and whatever a test writes there.
    pub dir: PathBuf,
    nginx: Option<Proc>,
}

impl Lab {
    /// Namespaces, veth, addresses and nginx; returns once nginx answers on both ports.
    ///
    /// # Errors
    /// When the namespaces or the veth pair cannot be made (the caller decides whether that is
    /// a skip or a failure).
    ///
    /// # Panics
    /// When nginx does not start or answer: that is the lab's own fault, never a skip.
    pub fn new() -> Result<Lab, String> {
        let id = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let mut lab = Lab {
            id,
            server_ns: format!("lwn-s-{pid}-{id}"),
            client_ns: format!("lwn-c-{pid}-{id}"),
            server_veth: format!("lwns{id}"),
            client_veth: format!("lwnc{id}"),
            dir: crate::common::scratch(&format!("lab-{id}")),
            nginx: None,
        };
        lab.network()?;
        lab.start_nginx();
        Ok(lab)
    }

    fn network(&self) -> Result<(), String> {
        let (s, c) = (self.server_ns.as_str(), self.client_ns.as_str());
        let (sv, cv) = (self.server_veth.as_str(), self.client_veth.as_str());
        let (server_cidr, client_cidr) = (format!("{SERVER_ADDR}/24"), format!("{CLIENT_ADDR}/24"));
        let steps: [&[&str]; 9] = [
            &["netns", "add", s],
            &["netns", "add", c],
            &[
                "link", "add", sv, "netns", s, "type", "veth", "peer", "name", cv, "netns", c,
            ],
            &["-n", s, "addr", "add", &server_cidr, "dev", sv],
            &["-n", c, "addr", "add", &client_cidr, "dev", cv],
            &["-n", s, "link", "set", "lo", "up"],
            &["-n", c, "link", "set", "lo", "up"],
            &["-n", s, "link", "set", sv, "up"],
            &["-n", c, "link", "set", cv, "up"],
        ];
        for args in steps {
            let mut cmd = Command::new(tool("ip"));
            cmd.args(args);
            let done = run("ip", cmd, COMMAND_TIMEOUT);
            if !done.status.success() {
                return Err(format!("ip {}: {}", args.join(" "), done.stderr.trim()));
            }
        }
        Ok(())
    }

    /// A command that runs `program` inside the server namespace.
    pub fn in_server(&self, program: &str) -> Command {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &self.server_ns, program]);
        cmd
    }

    /// A command that runs `program` inside the client namespace.
    pub fn in_client(&self, program: &str) -> Command {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &self.client_ns, program]);
        cmd
    }

    /// Runs `ip -n <server> args...`, which must succeed.
    pub fn ip_server(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["-n", &self.server_ns]).args(args);
        run_ok("ip", cmd, COMMAND_TIMEOUT).stdout
    }

    /// Runs `tc -n <server> args...`, which must succeed.
    pub fn tc_server(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(tool("tc"));
        cmd.args(["-n", &self.server_ns]).args(args);
        run_ok("tc", cmd, COMMAND_TIMEOUT).stdout
    }

    pub fn access_log(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// `http://10.202.0.1:PORT/PATH`.
    pub fn url(port: u16, path: &str) -> String {
        format!("http://{SERVER_ADDR}:{port}{path}")
    }

    /// The "SPAN port": mirrors the server veth's ingress and egress into a second veth pair
    /// (tc clsact + u32 match-all + mirred egress mirror, what SPEC §2 prescribes for
    /// `--mirror`) and returns the name of the pair's far end, where the copies arrive.
    pub fn span_port(&self) -> String {
        let (tap_in, tap_out) = (format!("lwts{}", self.id), format!("lwtd{}", self.id));
        self.ip_server(&[
            "link", "add", &tap_in, "type", "veth", "peer", "name", &tap_out,
        ]);
        self.ip_server(&["link", "set", &tap_in, "up"]);
        self.ip_server(&["link", "set", &tap_out, "up"]);
        self.tc_server(&["qdisc", "add", "dev", &self.server_veth, "clsact"]);
        for direction in ["ingress", "egress"] {
            self.tc_server(&[
                "filter",
                "add",
                "dev",
                &self.server_veth,
                direction,
                "protocol",
                "all",
                "prio",
                "1",
                "u32",
                "match",
                "u32",
                "0",
                "0",
                "action",
                "mirred",
                "egress",
                "mirror",
                "dev",
                &tap_in,
            ]);
        }
        tap_out
    }

    fn write_site(&self) {
        let www = self.dir.join("www");
        let write = |rel: &str, body: &[u8]| {
            let path = www.join(rel);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir www");
            std::fs::write(path, body).expect("writing the site");
        };
        // Not all zeros: a body that compresses or looks like headers would prove less.
        let big: Vec<u8> = (0..BIG_FILE_BYTES)
            .map(|i| b"0123456789abcdefghijklmnopqrstuvwxyz\n"[i % 37])
            .collect();
        write("big/64k.bin", &big);
        write("docs/guide/v1/intro.html", b"<p>intro</p>\n");
        write("static/app.css", b"body { margin: 0 }\n");
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(self.dir.join("tmp").join(sub)).expect("mkdir tmp");
        }
    }

    fn nginx_conf(&self) -> String {
        let d = self.dir.display();
        format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format lw "{LOG_FORMAT}";
    access_log {d}/access.log lw;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type application/octet-stream;
    keepalive_requests 1000000;
    # A 404 is the answer under test, not an error worth a line in error.log per request.
    log_not_found off;
    server {{
        listen {SERVER_ADDR}:{MONITORED_PORT};
        listen {SERVER_ADDR}:{UNMONITORED_PORT};
        root {d}/www;
        location = {READY_PATH} {{ access_log off; return 204; }}
        location = / {{ return 200 "hello from the lab\n"; }}
        location /api/ {{ return 200 '{{"ok":true}}\n'; }}
        location /search {{ return 200 "results\n"; }}
        location = /old {{ return 301 /new; }}
        location = /empty {{ return 204; }}
    }}
}}
"#
        )
    }

    fn start_nginx(&mut self) {
        self.write_site();
        let conf = self.dir.join("nginx.conf");
        std::fs::write(&conf, self.nginx_conf()).expect("writing nginx.conf");
        let mut cmd = self.in_server(&tool("nginx"));
        cmd.arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(self.dir.join("error.log"));
        let mut nginx = Proc::spawn("nginx", cmd);
        let deadline = Instant::now() + NGINX_START;
        for port in [MONITORED_PORT, UNMONITORED_PORT] {
            loop {
                if let Some(status) = nginx.wait_timeout(Duration::ZERO) {
                    panic!(
                        "nginx exited ({status}) at start; stderr:\n{}\nerror.log:\n{}",
                        nginx.stderr_text(),
                        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
                    );
                }
                if self.probe(port) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "nginx did not answer on port {port} within {NGINX_START:?}; error.log:\n{}",
                    std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.nginx = Some(nginx);
    }

    /// One unlogged request from the client namespace: true when nginx answered 204.
    fn probe(&self, port: u16) -> bool {
        let mut cmd = self.in_client(&tool("curl"));
        cmd.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "1",
        ])
        .arg(Lab::url(port, READY_PATH));
        run("curl", cmd, COMMAND_TIMEOUT).stdout == "204"
    }

    /// Interface lines (`ip -d link show`) in the server namespace.
    pub fn server_links(&self) -> String {
        self.ip_server(&["-d", "link", "show"])
    }

    /// Whether `ip netns list` still names one of this lab's namespaces.
    pub fn namespaces_exist(server_ns: &str, client_ns: &str) -> bool {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "list"]);
        let list = run_ok("ip", cmd, COMMAND_TIMEOUT).stdout;
        list.lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|name| name == server_ns || name == client_ns)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut nginx) = self.nginx.take() {
            nginx.signal(libc::SIGTERM);
            if nginx.wait_timeout(Duration::from_secs(2)).is_none() {
                nginx.kill();
            }
        }
        for ns in [&self.server_ns, &self.client_ns] {
            // Not `run`: a drop must not panic. A namespace that was never made gives an
            // error: nothing to clean.
            let _ = Command::new(tool("ip"))
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if std::env::var_os("LINEWATCH_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab files kept in {}", self.dir.display());
        }
    }
}

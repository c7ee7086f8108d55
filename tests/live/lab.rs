//! The live tests' lab: a server and a client network namespace joined by one veth pair (a
//! [`linewatch_testkit::lab::Lab`]), nginx in the server namespace with its own
//! configuration, logs and temp files in a scratch directory.
//!
//! ```text
//!   lwn-c-<pid>-<n>                          lwn-s-<pid>-<n>
//!   lwnc0 10.202.0.2/24  <--- veth --->  lwns0 10.202.0.1/24   nginx :8080 :8081
//!                                          (SPAN: tc mirror -> lwts0 ~~ lwtd0)
//! ```
//!
//! Dropping the [`Lab`] stops nginx, then the testkit lab deletes both namespaces, which
//! destroys every interface in them (the veth pairs, a SPAN pair, whatever linewatch --mirror
//! left behind) and their qdiscs.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use linewatch_testkit::lab::{self as testkit_lab, End, Netns};
use linewatch_testkit::tools::path_of;

use super::process::{run, Proc};

/// The lab's roles: the server's namespace and the client's.
const SERVER: &str = "s";
const CLIENT: &str = "c";
/// The veth pair's ends. They live inside the lab's namespaces, so every lab can use the same
/// names.
const SERVER_VETH: &str = "lwns0";
const CLIENT_VETH: &str = "lwnc0";
/// The SPAN port's veth pair, inside the server namespace.
const SPAN_IN: &str = "lwts0";
const SPAN_OUT: &str = "lwtd0";

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

/// The nginx access-log format: tab-separated, so the request line (which holds spaces) is the
/// last field. `$http_host` is the Host header as sent (`-` when absent). `$request` rather than `$request_method`: nginx leaves the latter `-` for a
/// request it rejects while parsing (`OPTIONS *` gets a 400), but linewatch still sees the
/// method on the wire.
pub const LOG_FORMAT: &str = "$server_port\\t$status\\t$request_time\\t$http_host\\t$request";

/// A second log of the same requests, for `--top-by header:...`: the port and the Referer and
/// X-Forwarded-For headers as sent (`-` when absent).
pub const HEADERS_LOG_FORMAT: &str = "$server_port\\t$http_referer\\t$http_x_forwarded_for";

#[derive(Debug)]
pub struct Lab {
    pub server_veth: String,
    pub client_veth: String,
    /// Scratch directory: nginx.conf, logs, www/, and whatever a test writes there.
    pub dir: PathBuf,
    nginx: Option<Proc>,
    /// Deletes the namespaces when it drops, after [`Lab`]'s own drop has stopped nginx.
    net: testkit_lab::Lab,
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
        let net = testkit_lab::Lab::new("lwn", &[SERVER, CLIENT]).map_err(|e| e.to_string())?;
        net.add_veth(
            End::new(SERVER, SERVER_VETH).addr(&format!("{SERVER_ADDR}/24")),
            End::new(CLIENT, CLIENT_VETH).addr(&format!("{CLIENT_ADDR}/24")),
            1,
        )
        .map_err(|e| e.to_string())?;
        let mut lab = Lab {
            server_veth: SERVER_VETH.to_owned(),
            client_veth: CLIENT_VETH.to_owned(),
            dir: crate::common::scratch(&format!("lab-{}", net.seq())),
            nginx: None,
            net,
        };
        lab.start_nginx();
        Ok(lab)
    }

    /// The server's namespace (nginx, linewatch).
    pub fn server(&self) -> &Netns {
        self.net.ns(SERVER)
    }

    /// The client's namespace (curl, wrk, nmap, ping).
    pub fn client(&self) -> &Netns {
        self.net.ns(CLIENT)
    }

    /// Runs `ip -n <server> args...`, which must succeed.
    pub fn ip_server(&self, args: &[&str]) -> String {
        self.server().ip(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `tc -n <server> args...`, which must succeed.
    pub fn tc_server(&self, args: &[&str]) -> String {
        self.server().tc(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn access_log(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// The log in [`HEADERS_LOG_FORMAT`].
    pub fn headers_log(&self) -> PathBuf {
        self.dir.join("headers.log")
    }

    /// `http://10.202.0.1:PORT/PATH`.
    pub fn url(port: u16, path: &str) -> String {
        format!("http://{SERVER_ADDR}:{port}{path}")
    }

    /// The "SPAN port": mirrors the server veth's ingress and egress into a second veth pair
    /// (tc clsact + u32 match-all + mirred egress mirror, what SPEC §2 prescribes for
    /// `--mirror`) and returns the name of the pair's far end, where the copies arrive.
    pub fn span_port(&self) -> String {
        self.span_port_queues(1)
    }

    /// [`Lab::span_port`] on a veth pair of `queues` queues each way: the kernel picks a
    /// copy's queue by its own hash, which does not keep a connection's directions together.
    pub fn span_port_queues(&self, queues: u32) -> String {
        self.net
            .add_veth(
                End::new(SERVER, SPAN_IN),
                End::new(SERVER, SPAN_OUT),
                queues,
            )
            .unwrap_or_else(|e| panic!("the SPAN pair: {e}"));
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
                SPAN_IN,
            ]);
        }
        SPAN_OUT.to_owned()
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
    log_format lwh "{HEADERS_LOG_FORMAT}";
    access_log {d}/headers.log lwh;
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
        let mut cmd = self.server().exec(path_of("nginx"));
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
        let mut cmd = self.curl_status();
        cmd.args(["--max-time", "1"])
            .arg(Lab::url(port, READY_PATH));
        run("curl", cmd, COMMAND_TIMEOUT).stdout == "204"
    }

    /// curl in the client namespace, quiet, printing only the response's status code; the
    /// caller adds its options and the URL.
    pub fn curl_status(&self) -> Command {
        let mut cmd = self.client().exec(path_of("curl"));
        cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        cmd
    }

    /// Interface lines (`ip -d link show`) in the server namespace.
    pub fn server_links(&self) -> String {
        self.ip_server(&["-d", "link", "show"])
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
        if std::env::var_os("LINEWATCH_KEEP_LAB").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("lab files kept in {}", self.dir.display());
        }
    }
}

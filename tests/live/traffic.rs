//! Client traffic from the client namespace: a fixed set of odd curl requests whose every
//! request line and status is known in advance, and wrk load whose report is parsed and checked
//! (no socket errors; non-2xx only where a 404 was asked for).

use std::time::Duration;

use linewatch_testkit::tools::path_of;

use super::lab::{Lab, MONITORED_PORT, UNMONITORED_PORT};
use super::process::run;

/// One request as nginx should log it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Expected {
    pub port: u16,
    pub method: &'static str,
    /// The request target exactly as sent (nginx logs it in `$request`).
    pub target: String,
    /// The Host header as sent, `-` for none.
    pub host: String,
    pub status: u16,
}

/// One curl invocation: its arguments (URLs included) and the requests it makes, in order.
#[derive(Debug)]
pub struct CurlCase {
    pub what: &'static str,
    pub args: Vec<String>,
    pub expect: Vec<Expected>,
}

/// Bodies above curl's threshold make it send `Expect: 100-continue`, and nginx's
/// `100 Continue` is a second status line on the wire that the access log never shows:
/// this size is above the old 1 KiB threshold, so the case turns `Expect` off explicitly.
const UPLOAD_BYTES: usize = 10 * 1024;

fn expect(port: u16, method: &'static str, target: &str, status: u16) -> Expected {
    Expected {
        port,
        method,
        target: target.to_string(),
        host: format!("{}:{port}", super::lab::SERVER_ADDR),
        status,
    }
}

/// The curl set. `upload` is a file of [`UPLOAD_BYTES`] for the large POST.
pub fn curl_cases(upload: &str) -> Vec<CurlCase> {
    let m = MONITORED_PORT;
    let url = |path: &str| Lab::url(m, path);
    let null = || "-o".to_string();
    let dev_null = || "/dev/null".to_string();
    let simple = |what, extra: &[&str], method, path: &str, status| CurlCase {
        what,
        args: extra
            .iter()
            .map(|s| (*s).to_string())
            .chain([null(), dev_null(), url(path)])
            .collect(),
        expect: vec![expect(m, method, path, status)],
    };
    let absolute = format!("http://{}:{m}/api/abs/x", super::lab::SERVER_ADDR);
    vec![
        simple("GET /", &[], "GET", "/", 200),
        simple("HEAD", &["-I"], "HEAD", "/api/items", 200),
        simple(
            "POST form",
            &["-d", "name=lab&n=1"],
            "POST",
            "/api/items",
            200,
        ),
        CurlCase {
            what: "POST 10 KiB body",
            args: vec![
                "--data-binary".into(),
                format!("@{upload}"),
                "-H".into(),
                "Expect:".into(),
                null(),
                dev_null(),
                url("/api/upload"),
            ],
            expect: vec![expect(m, "POST", "/api/upload", 200)],
        },
        simple(
            "POST chunked",
            &["-H", "Transfer-Encoding: chunked", "-d", "a chunked body"],
            "POST",
            "/api/stream",
            200,
        ),
        simple(
            "PUT",
            &["-X", "PUT", "-d", "{\"n\":42}"],
            "PUT",
            "/api/items/42",
            200,
        ),
        simple(
            "PATCH",
            &["-X", "PATCH", "-d", "n=43"],
            "PATCH",
            "/api/items/42",
            200,
        ),
        simple("DELETE", &["-X", "DELETE"], "DELETE", "/api/items/42", 200),
        simple("OPTIONS", &["-X", "OPTIONS"], "OPTIONS", "/api/items", 200),
        CurlCase {
            // nginx answers `OPTIONS *` with 400; the request line is still a request.
            what: "OPTIONS *",
            args: vec![
                "-X".into(),
                "OPTIONS".into(),
                "--request-target".into(),
                "*".into(),
                null(),
                dev_null(),
                url("/"),
            ],
            // nginx rejects it before reading the headers, so it logs no Host (`-`).
            expect: vec![Expected {
                host: "-".into(),
                ..expect(m, "OPTIONS", "*", 400)
            }],
        },
        simple(
            "query string",
            &[],
            "GET",
            "/search?q=linewatch&page=2",
            200,
        ),
        simple("deep path", &[], "GET", "/docs/guide/v1/intro.html", 200),
        simple("404", &[], "GET", "/nope/missing.html", 404),
        simple("301", &[], "GET", "/old", 301),
        simple("204", &[], "GET", "/empty", 204),
        CurlCase {
            what: "HTTP/1.0 without Host",
            args: vec![
                "--http1.0".into(),
                "-H".into(),
                "Host:".into(),
                null(),
                dev_null(),
                url("/"),
            ],
            expect: vec![Expected {
                host: "-".into(),
                ..expect(m, "GET", "/", 200)
            }],
        },
        CurlCase {
            what: "absolute-form target",
            args: vec![
                "--request-target".into(),
                absolute.clone(),
                null(),
                dev_null(),
                url("/"),
            ],
            expect: vec![expect(m, "GET", &absolute, 200)],
        },
        simple("64 KiB body", &[], "GET", "/big/64k.bin", 200),
        CurlCase {
            what: "three on one keep-alive connection",
            args: vec![
                null(),
                dev_null(),
                url("/static/app.css"),
                null(),
                dev_null(),
                url("/docs/guide/v1/intro.html"),
                null(),
                dev_null(),
                url("/nope/keepalive"),
            ],
            expect: vec![
                expect(m, "GET", "/static/app.css", 200),
                expect(m, "GET", "/docs/guide/v1/intro.html", 200),
                expect(m, "GET", "/nope/keepalive", 404),
            ],
        },
        CurlCase {
            what: "unmonitored port",
            args: vec![null(), dev_null(), Lab::url(UNMONITORED_PORT, "/api/items")],
            expect: vec![expect(UNMONITORED_PORT, "GET", "/api/items", 200)],
        },
    ]
}

/// Runs every curl case from the client namespace and checks each status code; returns the
/// requests made, in order.
///
/// # Panics
/// When curl fails or a status differs from the expected one.
pub fn run_curl_set(lab: &Lab) -> Vec<Expected> {
    let upload = lab.dir.join("upload.bin");
    std::fs::write(&upload, vec![b'u'; UPLOAD_BYTES]).expect("writing the upload body");
    let mut sent = Vec::new();
    for case in curl_cases(upload.to_str().expect("utf-8 path")) {
        let mut cmd = lab.client().exec(path_of("curl"));
        cmd.args(["-sS", "--max-time", "10", "-w", "%{http_code}\\n"])
            .args(&case.args);
        let done = run("curl", cmd, Duration::from_secs(15));
        assert!(
            done.status.success(),
            "curl {}: {}; stderr:\n{}",
            case.what,
            done.status,
            done.stderr
        );
        let got: Vec<u16> = done
            .stdout
            .lines()
            .map(|l| l.trim().parse().expect("curl's %{http_code}"))
            .collect();
        let want: Vec<u16> = case.expect.iter().map(|e| e.status).collect();
        assert_eq!(got, want, "curl {}: status codes", case.what);
        sent.extend(case.expect);
    }
    sent
}

/// What one wrk run reported.
#[derive(Debug, Clone)]
pub struct WrkRun {
    pub label: &'static str,
    pub connections: u32,
    pub requests: u64,
    pub req_per_s: f64,
    pub non_2xx_3xx: u64,
    /// Sum of connect, read, write and timeout errors (wrk prints the line only when one is
    /// non-zero).
    pub socket_errors: u64,
    pub output: String,
}

/// Parses wrk's report.
///
/// # Panics
/// When the report lacks the request count or the rate.
pub fn parse_wrk(label: &'static str, connections: u32, output: &str) -> WrkRun {
    let mut requests = None;
    let mut req_per_s = None;
    let mut non_2xx_3xx = 0;
    let mut socket_errors = 0;
    for line in output.lines().map(str::trim) {
        if line.contains(" requests in ") {
            requests = line.split_whitespace().next().and_then(|n| n.parse().ok());
        } else if let Some(rate) = line.strip_prefix("Requests/sec:") {
            req_per_s = rate.trim().parse().ok();
        } else if let Some(n) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx_3xx = n.trim().parse().expect("wrk's non-2xx count");
        } else if let Some(errors) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = errors
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1))
                .map(|n| n.parse::<u64>().expect("wrk's socket error count"))
                .sum();
        }
    }
    WrkRun {
        label,
        connections,
        requests: requests.unwrap_or_else(|| panic!("wrk {label}: no request count in:\n{output}")),
        req_per_s: req_per_s
            .unwrap_or_else(|| panic!("wrk {label}: no Requests/sec in:\n{output}")),
        non_2xx_3xx,
        socket_errors,
        output: output.to_string(),
    }
}

/// wrk's Lua hook: cycles over small 200 paths, and every 32nd request takes the 64 KiB file.
const MIX_SCRIPT: &str = r#"
local small = { "/", "/api/items", "/docs/guide/v1/intro.html", "/search?q=wrk&page=3",
                "/static/app.css", "/api/items/7" }
local n = 0
request = function()
  n = n + 1
  if n % 32 == 0 then
    return wrk.format(nil, "/big/64k.bin")
  end
  return wrk.format(nil, small[(n % #small) + 1])
end
"#;

/// The path of the all-404 wrk run.
pub const WRK_404_PATH: &str = "/nope/wrk";

/// `wrk -t1 -c<connections> -d<secs>s extra...` from the client namespace, which must exit 0;
/// its report, parsed.
pub fn wrk(lab: &Lab, label: &'static str, connections: u32, secs: u32, extra: &[&str]) -> WrkRun {
    let mut cmd = lab.client().exec(path_of("wrk"));
    cmd.args([
        "-t1".to_string(),
        format!("-c{connections}"),
        format!("-d{secs}s"),
    ])
    .args(extra);
    let done = run("wrk", cmd, Duration::from_secs(u64::from(secs) + 15));
    assert!(
        done.status.success(),
        "wrk {label}: {}; stderr:\n{}",
        done.status,
        done.stderr
    );
    parse_wrk(label, connections, &done.stdout)
}

/// `wrk -tT -cC -dSs URL` from the client namespace at the lowest priority, which must exit 0
/// with no socket error. On a real network the client is another machine; here, with several
/// workers on two cores, a client taking its full share overran the capture veth's rings
/// (copies the kernel drops before capture), which is a test of this machine, not of the
/// monitor.
pub fn wrk_low_priority(lab: &Lab, threads: u32, connections: u32, secs: u32, url: &str) -> WrkRun {
    let mut cmd = lab.client().exec("nice");
    cmd.args(["-n", "19"]).arg(path_of("wrk"));
    cmd.args([
        format!("-t{threads}"),
        format!("-c{connections}"),
        format!("-d{secs}s"),
        url.to_owned(),
    ]);
    let done = run("wrk", cmd, Duration::from_secs(u64::from(secs) + 15));
    assert!(
        done.status.success(),
        "wrk: {}\n{}",
        done.status,
        done.stderr
    );
    let wrk = parse_wrk("low priority", connections, &done.stdout);
    assert_eq!(wrk.socket_errors, 0, "wrk socket errors:\n{}", wrk.output);
    wrk
}

/// The load: a mixed run (all 200s, a 64 KiB body now and then) and an all-404 run, both
/// against the monitored port; each printed and checked.
///
/// # Panics
/// On any socket error, a non-2xx answer in the mixed run, or a 2xx in the 404 run.
pub fn run_load(lab: &Lab, secs: u32) -> Vec<WrkRun> {
    let script = lab.dir.join("mix.lua");
    std::fs::write(&script, MIX_SCRIPT).expect("writing the wrk script");
    let mix = wrk(
        lab,
        "mix",
        8,
        secs,
        &[
            "-s",
            script.to_str().expect("utf-8 path"),
            &Lab::url(MONITORED_PORT, "/"),
        ],
    );
    let missing = wrk(
        lab,
        "404",
        4,
        secs.div_ceil(2),
        &[&Lab::url(MONITORED_PORT, WRK_404_PATH)],
    );
    for run in [&mix, &missing] {
        println!(
            "wrk {:>4}: -c{} {:>8} requests {:>10.0} req/s  non-2xx/3xx {}  socket errors {}",
            run.label,
            run.connections,
            run.requests,
            run.req_per_s,
            run.non_2xx_3xx,
            run.socket_errors
        );
        assert_eq!(
            run.socket_errors, 0,
            "wrk {}: socket errors:\n{}",
            run.label, run.output
        );
        assert!(
            run.requests > 0,
            "wrk {}: no requests:\n{}",
            run.label,
            run.output
        );
    }
    assert_eq!(
        mix.non_2xx_3xx, 0,
        "wrk mix: non-2xx answers:\n{}",
        mix.output
    );
    assert_eq!(
        missing.non_2xx_3xx, missing.requests,
        "wrk 404: some answers were not 404:\n{}",
        missing.output
    );
    vec![mix, missing]
}

//! The command line: every option, its help text and its value parser. Parsing only checks
//! each value on its own; what the options mean together is [`crate::plan`]'s job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use linewatch_engine::live::rss::RssPolicy;
use linewatch_engine::live::run::IdlePolicy;
use linewatch_engine::scan::{Cidr, MAX_SCAN_PORTS};
use linewatch_engine::worker::FLOW_CAPACITY;
use linewatch_report::TopByKey;

use crate::metrics_server;

mod config;

/// Parses the process's arguments, with the settings file's below them (see [`config`]).
/// `Err` carries the exit code when there is nothing to run: `--help`, `--version` and
/// `--print-config` (printed, success) or a bad command line or settings file (one line,
/// exit 2).
pub(crate) fn parse() -> Result<Cli, ExitCode> {
    match config::parse_from(std::env::args_os().collect())? {
        config::Parsed::Run(cli) => Ok(*cli),
        config::Parsed::Print(text) => Err(config::write_stdout(&text)),
    }
}

/// clap's message is several lines (usage, tips); keep the first, with the list that follows
/// it when it ends in a colon ("required arguments were not provided:" and the arguments,
/// indented below).
fn first_line(rendered: &str) -> String {
    let mut lines = rendered.lines().skip_while(|l| l.trim().is_empty());
    let mut first = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    if first.ends_with(':') {
        let items: Vec<&str> = lines
            .take_while(|l| !l.trim().is_empty())
            .map(str::trim)
            .collect();
        first = format!("{} {}", first, items.join(", "));
    }
    first
}

/// Line-rate HTTP traffic monitor: counts HTTP/1.x requests and responses by section, host,
/// method, status and user agent; alerts when the request rate stays high.
#[derive(Debug, Parser)]
#[command(name = "linewatch", version, about, long_about = None)]
pub(crate) struct Cli {
    /// Replay a capture (pcap or pcapng): a file, a FIFO, or `-` for standard input, as in
    /// `tcpdump -U -w - | linewatch --read -`. Packet timestamps drive every clock, so a
    /// replay gives the same answer every time.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["interface", "mirror"])]
    pub(crate) read: Option<PathBuf>,

    /// Capture live on IFACE with AF_XDP (a mirror/SPAN port, a tap, a veth). TCP segments to
    /// or from the monitored ports (and, with --dst, the watched addresses) are TAKEN AWAY from
    /// the kernel: the host itself no longer receives them on IFACE. Everything else passes. On
    /// a serving host use --mirror.
    #[arg(long, value_name = "IFACE", conflicts_with = "mirror")]
    pub(crate) interface: Option<String>,

    /// Capture a copy of IFACE's traffic: IFACE keeps working untouched. linewatch mirrors its
    /// ingress and egress with tc into a veth pair it creates, captures there, and removes
    /// everything on exit (a killed run's leftovers are removed by a watchdog process and at the
    /// next start).
    #[arg(long, value_name = "IFACE")]
    pub(crate) mirror: Option<String>,

    /// TCP ports that carry HTTP: a list such as 80,8080,8000-8010, or `any` (every TCP port;
    /// HTTP is recognised by its start line). Default: `any` for --read and --mirror; 80,8080
    /// for --interface, so that attaching to a host's NIC never takes its SSH or other traffic.
    #[arg(long, value_name = "LIST|any", value_parser = parse_ports)]
    pub(crate) port: Option<Ports>,

    /// Count only traffic to and from these server addresses: addresses or networks
    /// (10.0.0.0/8, 2001:db8::/32; a bare address is a /32 or /128), comma-separated or
    /// repeated. A segment is counted when its source or destination is in one. Live, the XDP
    /// program applies it: on --interface other traffic stays with the kernel, on --mirror it is
    /// dropped from the copy. Default: every address.
    #[arg(long, value_name = "CIDR", value_delimiter = ',')]
    pub(crate) dst: Vec<Cidr>,

    /// Live: the rx queues to capture, e.g. 0,1 or 0-3 (default: all of the interface's
    /// combined channels, as `ethtool -l` shows them).
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    pub(crate) queues: Option<NumberList>,

    /// Live: the core of each queue's worker, in queue order (default: each on its own core,
    /// leaving the first core to the kernel when there are two or more).
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    pub(crate) cores: Option<NumberList>,

    /// Live: entries of each queue's fill and rx rings, and frames of its UMEM (a power of two
    /// from 2048 to 262144). The UMEM takes RING × 2 KiB of locked memory per queue (× 4 KiB
    /// when the MTU is above 1770). The rings absorb the time a worker does not run. Default:
    /// 128 MiB of UMEM per queue (65536, or 32768 with 4 KiB frames).
    #[arg(long, value_name = "RING", value_parser = parse_ring)]
    pub(crate) ring: Option<u32>,

    /// Live: require zero-copy AF_XDP sockets (fails where the driver cannot; veth cannot).
    #[arg(long)]
    pub(crate) zero_copy: bool,

    /// Live: attach XDP in generic (SKB) mode instead of trying the driver's native mode first.
    #[arg(long)]
    pub(crate) xdp_generic: bool,

    /// Live: what a worker does on an empty ring: `hybrid` sleeps 50 us while traffic flows
    /// and blocks in poll() after 10 ms of quiet; `poll` always blocks; `spin` never waits
    /// (uses a whole core).
    #[arg(long, value_name = "POLICY", default_value = "hybrid")]
    pub(crate) idle: IdlePolicy,

    /// --interface: `symmetric` makes the NIC's RSS hash put both directions of a TCP
    /// connection on one queue where it does not already (ethtool's xfrm symmetric-xor, else a
    /// symmetric Toeplitz key), so one worker pairs each response with its request; the
    /// previous setting is restored on exit, even after kill -9 (by a guard process) or at the
    /// next start. `keep` leaves RSS alone (when it is managed elsewhere). Default: symmetric.
    #[arg(long, value_name = "symmetric|keep")]
    pub(crate) rss: Option<RssPolicy>,

    /// Live: stop after SECS seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) duration: Option<u64>,

    /// Alert when the average requests per second over the window goes above this.
    #[arg(long, value_name = "REQ_PER_S", default_value_t = 10.0, value_parser = parse_rate, allow_negative_numbers = true)]
    pub(crate) threshold: f64,

    /// Length of the sliding alert window, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub(crate) window: u32,

    /// Seconds between periodic reports.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(crate) report_interval: u64,

    /// Learn the normal request rate for SECS seconds first, then alert above that baseline
    /// plus --margin (instead of --threshold). Learning restarts while the baseline is zero.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub(crate) baseline: Option<u32>,

    /// With --baseline: alert this many percent above the learned rate.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = parse_rate, allow_negative_numbers = true)]
    pub(crate) margin: f64,

    /// Append every alert and recovery line to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) alert_log: Option<PathBuf>,

    /// Write one JSON object per request, response and alert to stdout (the report and summary
    /// text go to stderr instead).
    #[arg(long)]
    pub(crate) json: bool,

    /// Write the final summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<PathBuf>,

    /// Worker threads for --read (default: one per CPU; with two or more on a pcap file, each
    /// reads the file and counts its share of the flows, otherwise a reader thread feeds them); the
    /// number of queues (and workers) of the mirror veth for --mirror (default: one per CPU, at
    /// most 8; each connection stays on one queue). --interface runs one worker per queue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) workers: Option<u16>,

    /// Keys shown per table in reports and the exit summary.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub(crate) top: u16,

    /// Also count requests in a table keyed by KEY (repeatable, or comma-separated): `client`
    /// (source address), `server` (destination address), `port` (server port), `header:NAME`
    /// (a request header's value, as header:referer or header:x-forwarded-for; `-` when
    /// absent), or `response-header:NAME` (responses, by a response header's value). Each is a
    /// top-N table of requests (responses) and their bytes, head plus declared body, in the
    /// reports, the exit summary, --summary, --json and --metrics.
    #[arg(long, value_name = "KEY", value_delimiter = ',', value_parser = parse_top_by)]
    pub(crate) top_by: Vec<TopByKey>,

    /// Limit the since-start counts of the reports and the exit summary (requests, every table)
    /// to the last DURATION of packet time (`24h`, `90m`, `3600s`), so a monitor that runs for
    /// weeks shows recent history. Kept in 24 buckets of DURATION/24, so what is shown covers
    /// between 23/24 of DURATION and all of it; it says from when. Packet counters, latencies
    /// and --metrics stay since start. Default: everything since start.
    #[arg(long, value_name = "DURATION", value_parser = parse_retention)]
    pub(crate) retention: Option<u64>,

    /// Flows tracked per worker at most; the least recently seen is evicted (and counted) when
    /// full. The table starts small and grows as flows appear, so a large N costs memory only
    /// when that many flows are live.
    #[arg(long, value_name = "N", default_value_t = FLOW_CAPACITY, value_parser = parse_flows)]
    pub(crate) flows: usize,

    /// Port-scan detection: a source that opens new connections (TCP SYN without ACK) to at
    /// least this many distinct ports within --scan-window is flagged as a port scanner.
    /// --mirror and --read see new connections to every port; --interface only to the
    /// monitored ones (a SYN to another port is the host's and is left to it).
    #[arg(long, value_name = "P", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SCAN_PORTS)), help_heading = "Connection guard")]
    pub(crate) scan_ports: u32,

    /// Port-scan detection: the window, in seconds, the --scan-ports distinct ports must fall
    /// within.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400), help_heading = "Connection guard")]
    pub(crate) scan_window: u64,

    /// Never flag these sources as port scanners: addresses or networks (10.0.0.0/8,
    /// 2001:db8::/32), comma-separated or repeated. Adds to the monitored interface's own
    /// addresses (see --no-allow-self).
    #[arg(
        long,
        value_name = "CIDR",
        value_delimiter = ',',
        help_heading = "Connection guard"
    )]
    pub(crate) allow: Vec<Cidr>,

    /// Do not allow-list the monitored interface's own addresses (live capture allow-lists
    /// them by default, so the host's traffic to itself is never taken for a scan).
    #[arg(long, help_heading = "Connection guard")]
    pub(crate) no_allow_self: bool,

    /// Live: drop new connections (TCP SYNs) from flagged port scanners in XDP, on the
    /// monitored interface (with --mirror: on the mirrored interface itself). Only SYNs are
    /// dropped: their established connections, and all other traffic, pass.
    #[arg(long, help_heading = "Connection guard")]
    pub(crate) block_scanners: bool,

    /// With --block-scanners: lift a block after SECS seconds (default: blocked until
    /// linewatch exits). The source is then watched afresh.
    #[arg(long, value_name = "SECS", requires = "block_scanners", value_parser = clap::value_parser!(u64).range(1..=31_536_000), help_heading = "Connection guard")]
    pub(crate) block_for: Option<u64>,

    /// Serve OpenMetrics for Prometheus at ADDR (`9920`, `:9920`, `0.0.0.0:9920`,
    /// `[::]:9920`); without a host it binds 127.0.0.1. Path: /metrics. Default: off.
    #[arg(long, value_name = "ADDR", value_parser = metrics_server::parse_addr)]
    pub(crate) metrics: Option<std::net::SocketAddr>,

    /// Read settings from this TOML file: each key is a long option (`port = "80,8080"`,
    /// `workers = 4`, `block-scanners = true`, `allow = ["10.0.0.0/8"]`); options given on the
    /// command line win. Without it, the first of $XDG_CONFIG_HOME/linewatch/config.toml
    /// (~/.config/linewatch/config.toml) and /etc/linewatch/config.toml is read, and said so.
    #[arg(long, value_name = "FILE", help_heading = "Settings file")]
    pub(crate) config: Option<PathBuf>,

    /// Read no settings file from the usual places (LINEWATCH_NO_CONFIG=1 does the same).
    #[arg(long, conflicts_with = "config", help_heading = "Settings file")]
    pub(crate) no_config: bool,

    /// Print the effective settings (defaults, the settings file, the command line) as a
    /// settings file that --config reads back, and exit.
    #[arg(long, help_heading = "Settings file")]
    pub(crate) print_config: bool,

    /// A full-screen live view instead of the status line and reports: the request rate over
    /// the alert window against the threshold, the alert and its history, top sections, hosts,
    /// user agents, status codes, methods, connections, latency, the most recent requests.
    /// Keys: q quit, p pause, Tab panels, s sort, / filter, ? help. Needs a terminal.
    // Declared to clap, not only refused by the plan: a settings file's `dashboard` then
    // yields to `--json` on the command line (the file's precedence rule).
    #[arg(long, conflicts_with = "json")]
    pub(crate) dashboard: bool,

    /// --read: replay at the capture's own speed (packet time paced by the wall clock), so
    /// that it can be watched.
    #[arg(long, conflicts_with = "speed")]
    pub(crate) realtime: bool,

    /// The settings file whose keys took part in this command line (not an option).
    #[arg(skip)]
    pub(crate) settings_from: Option<PathBuf>,

    /// --read: replay at FACTOR times the capture's own speed (e.g. 10; 0.5 is half speed).
    #[arg(long, value_name = "FACTOR")]
    pub(crate) speed: Option<f64>,
}

/// The parsed `--port` value.
#[derive(Debug, Clone)]
pub(crate) enum Ports {
    Any,
    List(Vec<u16>),
}

fn parse_ports(s: &str) -> Result<Ports, String> {
    if s.eq_ignore_ascii_case("any") {
        return Ok(Ports::Any);
    }
    let port = |p: &str| -> Result<u32, String> {
        let n: u64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{p}` is not a port number (1-65535, or `any`)"))?;
        match u16::try_from(n) {
            Ok(n) if n >= 1 => Ok(u32::from(n)),
            _ => Err(format!("port {n} is out of range (1-65535)")),
        }
    };
    let ports = ranges(s, "port ", port)?;
    // Every value passed `port`, so each fits a u16.
    Ok(Ports::List(
        ports
            .into_iter()
            .filter_map(|p| u16::try_from(p).ok())
            .collect(),
    ))
}

/// A comma-separated list of numbers and `lo-hi` ranges, each checked by `number`.
fn ranges(
    s: &str,
    what: &str,
    number: impl Fn(&str) -> Result<u32, String>,
) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (number(lo)?, number(hi)?);
                if lo > hi {
                    return Err(format!("{what}range {lo}-{hi} is backwards"));
                }
                out.extend(lo..=hi);
            }
            None => out.push(number(part)?),
        }
    }
    Ok(out)
}

/// A parsed `--queues` or `--cores` value (a newtype: clap treats a bare `Vec` as many values).
#[derive(Debug, Clone)]
pub(crate) struct NumberList(pub(crate) Vec<u32>);

fn parse_list(s: &str) -> Result<NumberList, String> {
    let number = |p: &str| -> Result<u32, String> {
        p.trim()
            .parse::<u32>()
            .ok()
            .filter(|&n| n < 4096)
            .ok_or_else(|| format!("`{p}` is not a number from 0 to 4095"))
    };
    let out = ranges(s, "", number)?;
    let mut seen = std::collections::HashSet::new();
    if let Some(d) = out.iter().find(|n| !seen.insert(**n)) {
        return Err(format!("{d} is listed twice"));
    }
    Ok(NumberList(out))
}

fn parse_ring(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && (2048..=262_144).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a power of two from 2048 to 262144")),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a non-negative number")),
    }
}

fn parse_flows(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=(1 << 24)).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a flow count from 1 to 16777216")),
    }
}

/// Whether `b` may appear in a header field name (RFC 9110 §5.1: a token).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_top_by(s: &str) -> Result<TopByKey, String> {
    const KEYS: &str = "client, server, port, header:NAME or response-header:NAME";
    let s = s.trim();
    let header = |name: &str| -> Result<String, String> {
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(format!(
                "`{name}` is not a header name (letters, digits and !#$%&'*+-.^_`|~), as in \
                 header:referer"
            ));
        }
        Ok(name.to_ascii_lowercase())
    };
    match s.split_once(':') {
        None if s.eq_ignore_ascii_case("client") => Ok(TopByKey::Client),
        None if s.eq_ignore_ascii_case("server") => Ok(TopByKey::Server),
        None if s.eq_ignore_ascii_case("port") => Ok(TopByKey::Port),
        Some((kind, name)) if kind.eq_ignore_ascii_case("header") => {
            header(name).map(TopByKey::Header)
        }
        Some((kind, name)) if kind.eq_ignore_ascii_case("response-header") => {
            header(name).map(TopByKey::ResponseHeader)
        }
        _ => Err(format!("`{s}` is not a table key: use {KEYS}")),
    }
}

/// Longest `--retention`: a leap year.
const MAX_RETENTION_SECS: u64 = 366 * 24 * 3600;

/// A `--retention` value in whole seconds: a humantime duration (`24h`, `1h 30m`) or a number
/// of seconds.
fn parse_retention(s: &str) -> Result<u64, String> {
    let secs = match s.trim().parse::<u64>() {
        Ok(n) => n,
        Err(_) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("`{s}` is not a duration ({e}); e.g. 24h, 90m, 3600s"))?
            .as_secs(),
    };
    if (1..=MAX_RETENTION_SECS).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("`{s}` is out of range: from 1s to 366d"))
    }
}

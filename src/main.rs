//! The `linewatch` command: parses the command line, wires a source to the engine and prints
//! what the engine reports. All counting happens in `linewatch-engine`; all formatting in
//! `linewatch-report`.
//!
//! Exit codes: 0 when the input was read or live capture ran (a truncated capture included: it
//! is reported, not fatal), 2 for bad input (options, unreadable or non-capture files) and for
//! live capture that cannot start (privileges, interface, queues, memlock, another XDP
//! program), 1 when an output cannot be written or a second Ctrl-C/SIGTERM cut the wind-down
//! short.

mod metrics_server;

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use clap::Parser;
use linewatch_engine::aggregate::{AggregatorConfig, Output, Snapshot, METHOD_NAMES};
use linewatch_engine::alert::{AlertConfig, AlertTransition, Threshold};
use linewatch_engine::guard::{AllowList, Cidr, ScanConfig, MAX_SCAN_PORTS};
use linewatch_engine::live::run::IdlePolicy;
use linewatch_engine::live::xdp::{CaptureOptions, RedirectPorts};
use linewatch_engine::live::{self, mirror};
use linewatch_engine::offline::{self, EngineConfig};
use linewatch_engine::source::{open_capture, SourceEnd};
use linewatch_engine::worker::{PortFilter, WorkerConfig, FLOW_CAPACITY};
use linewatch_report::sink::JsonLines;
use linewatch_report::{AlertRecord, SinkFactory};

/// mimalloc: allocation is off the per-packet path, but the aggregator and report building
/// allocate every second, and mimalloc keeps that cheap and the heap compact.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Line-rate HTTP traffic monitor: counts HTTP/1.x requests and responses by section, host,
/// method, status and user agent; alerts when the request rate stays high.
#[derive(Debug, Parser)]
#[command(name = "linewatch", version, about, long_about = None)]
struct Cli {
    /// Replay a capture file (pcap or pcapng). Packet timestamps drive every clock, so a
    /// replay gives the same answer every time.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["interface", "mirror"])]
    read: Option<PathBuf>,

    /// Capture live on IFACE with AF_XDP (a mirror/SPAN port, a tap, a veth). TCP segments to
    /// or from the monitored ports are TAKEN AWAY from the kernel: the host itself no longer
    /// receives them on IFACE. Everything else passes. On a serving host use --mirror.
    #[arg(long, value_name = "IFACE", conflicts_with = "mirror")]
    interface: Option<String>,

    /// Capture a copy of IFACE's traffic: IFACE keeps working untouched. linewatch mirrors its
    /// ingress and egress with tc into a veth pair it creates, captures there, and removes
    /// everything on exit (a killed run's leftovers are removed by a guard process and at the
    /// next start).
    #[arg(long, value_name = "IFACE")]
    mirror: Option<String>,

    /// TCP ports that carry HTTP: a list such as 80,8080,8000-8010, or `any` (every TCP port;
    /// HTTP is recognised by its start line). Default: `any` for --read and --mirror; 80,8080
    /// for --interface, so that attaching to a host's NIC never takes its SSH or other traffic.
    #[arg(long, value_name = "LIST|any", value_parser = parse_ports)]
    port: Option<Ports>,

    /// Live: the rx queues to capture, e.g. 0,1 or 0-3 (default: all of the interface's
    /// combined channels, as `ethtool -l` shows them).
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    queues: Option<NumberList>,

    /// Live: the core of each queue's worker, in queue order (default: each on its own core,
    /// leaving the first core to the kernel when there are two or more).
    #[arg(long, value_name = "LIST", value_parser = parse_list)]
    cores: Option<NumberList>,

    /// Live: entries of each queue's fill and rx rings, and frames of its UMEM (a power of two
    /// from 2048 to 262144). The UMEM takes RING × 2 KiB of locked memory per queue (× 4 KiB
    /// when the MTU is above 1770). The rings absorb the time a worker does not run. Default:
    /// 128 MiB of UMEM per queue (65536, or 32768 with 4 KiB frames).
    #[arg(long, value_name = "RING", value_parser = parse_ring)]
    ring: Option<u32>,

    /// Live: require zero-copy AF_XDP sockets (fails where the driver cannot; veth cannot).
    #[arg(long)]
    zero_copy: bool,

    /// Live: attach XDP in generic (SKB) mode instead of trying the driver's native mode first.
    #[arg(long)]
    xdp_generic: bool,

    /// Live: what a worker does on an empty ring: `hybrid` sleeps 50 us while traffic flows
    /// and blocks in poll() after 10 ms of quiet; `poll` always blocks; `spin` never waits
    /// (uses a whole core).
    #[arg(long, value_name = "POLICY", default_value = "hybrid")]
    idle: IdlePolicy,

    /// Live: stop after SECS seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    duration: Option<u64>,

    /// Alert when the average requests per second over the window goes above this.
    #[arg(long, value_name = "REQ_PER_S", default_value_t = 10.0, value_parser = parse_rate, allow_negative_numbers = true)]
    threshold: f64,

    /// Length of the sliding alert window, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    window: u32,

    /// Seconds between periodic reports.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    report_interval: u64,

    /// Learn the normal request rate for SECS seconds first, then alert above that baseline
    /// plus --margin (instead of --threshold). Learning restarts while the baseline is zero.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=86_400))]
    baseline: Option<u32>,

    /// With --baseline: alert this many percent above the learned rate.
    #[arg(long, value_name = "PCT", default_value_t = 10.0, value_parser = parse_rate, allow_negative_numbers = true)]
    margin: f64,

    /// Append every alert and recovery line to this file.
    #[arg(long, value_name = "FILE")]
    alert_log: Option<PathBuf>,

    /// Write one JSON object per request, response and alert to stdout (the report and summary
    /// text go to stderr instead).
    #[arg(long)]
    json: bool,

    /// Write the final summary as JSON to this file.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,

    /// Worker threads for --read (default: one per CPU; with two or more on a pcap file, each
    /// reads the file and counts its share of the flows, otherwise a reader thread feeds them); the
    /// number of queues (and workers) of the mirror veth for --mirror (default 1: a veth does
    /// not keep a flow's two directions on one queue). --interface runs one worker per queue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: Option<u16>,

    /// Keys shown per table in reports and the exit summary.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    top: u16,

    /// Flows tracked per worker; the least recently seen is evicted (and counted) when full.
    #[arg(long, value_name = "N", default_value_t = FLOW_CAPACITY, value_parser = parse_flows)]
    flows: usize,

    /// Port-scan detection: a source that opens new connections (TCP SYN without ACK) to at
    /// least this many distinct ports within --scan-window is flagged as a port scanner.
    /// --mirror and --read see new connections to every port; --interface only to the
    /// monitored ones (a SYN to another port is the host's and is left to it).
    #[arg(long, value_name = "P", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SCAN_PORTS)), help_heading = "Connection guard")]
    scan_ports: u32,

    /// Port-scan detection: the window, in seconds, the --scan-ports distinct ports must fall
    /// within.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400), help_heading = "Connection guard")]
    scan_window: u64,

    /// Never flag these sources as port scanners: addresses or networks (10.0.0.0/8,
    /// 2001:db8::/32), comma-separated or repeated. Adds to the monitored interface's own
    /// addresses (see --no-allow-self).
    #[arg(
        long,
        value_name = "CIDR",
        value_delimiter = ',',
        help_heading = "Connection guard"
    )]
    allow: Vec<Cidr>,

    /// Do not allow-list the monitored interface's own addresses (live capture allow-lists
    /// them by default, so the host's traffic to itself is never taken for a scan).
    #[arg(long, help_heading = "Connection guard")]
    no_allow_self: bool,

    /// Live: drop new connections (TCP SYNs) from flagged port scanners in XDP, on the
    /// monitored interface (with --mirror: on the mirrored interface itself). Only SYNs are
    /// dropped: their established connections, and all other traffic, pass.
    #[arg(long, help_heading = "Connection guard")]
    block_scanners: bool,

    /// With --block-scanners: lift a block after SECS seconds (default: blocked until
    /// linewatch exits). The source is then watched afresh.
    #[arg(long, value_name = "SECS", requires = "block_scanners", value_parser = clap::value_parser!(u64).range(1..=31_536_000), help_heading = "Connection guard")]
    block_for: Option<u64>,

    /// Serve OpenMetrics for Prometheus at ADDR (`9920`, `:9920`, `0.0.0.0:9920`,
    /// `[::]:9920`); without a host it binds 127.0.0.1. Path: /metrics. Default: off.
    #[arg(long, value_name = "ADDR", value_parser = metrics_server::parse_addr)]
    metrics: Option<std::net::SocketAddr>,
}

/// The parsed `--port` value.
#[derive(Debug, Clone)]
enum Ports {
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
struct NumberList(Vec<u32>);

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

/// Where human-readable output goes, and the alert log.
struct Printer {
    human: Box<dyn Write + Send>,
    json: bool,
    alert_log: Option<File>,
    top_n: usize,
}

impl Printer {
    fn human(&mut self, text: &str) {
        // A closed terminal or pipe must not stop the count: output errors are ignored here
        // and the summary file, if asked for, is still written.
        let _ = self.human.write_all(text.as_bytes());
        let _ = self.human.flush();
    }
}

impl Output for Printer {
    fn alert(&mut self, transition: &AlertTransition, _history: &[AlertRecord]) {
        let (record, recovered) = match transition {
            AlertTransition::Raised(a) => (a, false),
            AlertTransition::Recovered(a) => (a, true),
        };
        let line = if recovered {
            linewatch_report::alert::recovered_line(record).unwrap_or_default()
        } else {
            linewatch_report::alert::raised_line(record)
        };
        self.human(&format!("{line}\n"));
        if self.json {
            let mut out = Vec::with_capacity(256);
            linewatch_report::json::alert_event(record, recovered, &mut out);
            let _ = std::io::stdout().lock().write_all(&out);
        }
        if let Some(log) = self.alert_log.as_mut() {
            if writeln!(log, "{line}").and_then(|()| log.flush()).is_err() {
                eprintln!("linewatch: warning: cannot append to the alert log");
            }
        }
    }

    fn report(&mut self, report: &linewatch_report::Report) {
        let text = linewatch_report::text::report(report, self.top_n);
        self.human(&text);
    }

    fn allowed_scan(&mut self, source: std::net::IpAddr, ports: u32, window_secs: u64, at: u64) {
        let at = linewatch_engine::worker::time_of(at);
        let line = linewatch_report::alert::allowed_scan_line(source, ports, window_secs, at);
        self.human(&format!("{line}\n"));
        if self.json {
            let mut out = Vec::with_capacity(256);
            linewatch_report::json::allowed_scan_event(source, ports, window_secs, at, &mut out);
            let _ = std::io::stdout().lock().write_all(&out);
        }
        if let Some(log) = self.alert_log.as_mut() {
            if writeln!(log, "{line}").and_then(|()| log.flush()).is_err() {
                eprintln!("linewatch: warning: cannot append to the alert log");
            }
        }
    }

    fn notice(&mut self, text: &str) {
        eprintln!("linewatch: warning: {text}");
    }
}

/// Prints one line and exits with 2: the shape of every bad-input error.
fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("linewatch: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // The mirror's guard process (see `linewatch_engine::live::mirror`) is this binary too.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(mirror::GUARD_ARG) {
        return mirror::guard_main(&args[2..]);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's message is several lines (usage, tips); keep the first, with the list
            // that follows it when it ends in a colon ("required arguments were not
            // provided:" and the arguments, indented below).
            let rendered = e.render().to_string();
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
            return bad_input(format!("{first} (see linewatch --help)"));
        }
    };
    run(cli)
}

/// Where packets come from.
enum Mode {
    Read(PathBuf),
    Interface(String),
    Mirror(String),
}

fn run(cli: Cli) -> ExitCode {
    let mode =
        match (&cli.read, &cli.interface, &cli.mirror) {
            (Some(path), None, None) => Mode::Read(path.clone()),
            (None, Some(iface), None) => Mode::Interface(iface.clone()),
            (None, None, Some(iface)) => Mode::Mirror(iface.clone()),
            _ => return bad_input(
                "nothing to monitor: give one of --read FILE, --interface IFACE or --mirror IFACE",
            ),
        };
    let live = !matches!(mode, Mode::Read(_));
    if !live {
        for (given, name) in [
            (cli.duration.is_some(), "--duration"),
            (cli.cores.is_some(), "--cores"),
            (cli.zero_copy, "--zero-copy"),
            (cli.ring.is_some(), "--ring"),
            (cli.queues.is_some(), "--queues"),
            (cli.xdp_generic, "--xdp-generic"),
            (cli.block_scanners, "--block-scanners"),
        ] {
            if given {
                return bad_input(format!(
                    "{name} applies to live capture (--interface, --mirror), not --read"
                ));
            }
        }
    }
    if matches!(mode, Mode::Mirror(_)) && cli.queues.is_some() {
        return bad_input(
            "--queues applies to --interface; --mirror captures every queue of its own veth \
             (their number is --workers)",
        );
    }
    if matches!(mode, Mode::Interface(_)) && cli.workers.is_some() {
        return bad_input(
            "--workers does not apply to --interface: it runs one worker per queue (see --queues)",
        );
    }
    let source = match &mode {
        Mode::Read(path) => match open_capture(path) {
            Ok(s) => Some(s),
            Err(e) => return bad_input(e),
        },
        _ => None,
    };
    let alert_log = match &cli.alert_log {
        Some(p) => match OpenOptions::new().create(true).append(true).open(p) {
            Ok(f) => Some(f),
            Err(e) => return bad_input(format!("cannot open alert log {}: {e}", p.display())),
        },
        None => None,
    };
    // Fail before the run, not after it, if the summary cannot be written.
    let summary_file = match &cli.summary {
        Some(p) => match File::create(p) {
            Ok(f) => Some((p.clone(), f)),
            Err(e) => return bad_input(format!("cannot write summary {}: {e}", p.display())),
        },
        None => None,
    };

    // A replay with two or more workers has each of them read the file (no reader thread):
    // by default one per core.
    let workers = cli.workers.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(std::num::NonZeroUsize::get)
            .unwrap_or(1)
    });
    // One reader per worker when there are several and the file is memory-mapped; the first is
    // `source`. A pipe could not be read twice, and a pcapng reader holds an 8 MB buffer: those
    // keep one reader thread feeding the workers.
    let parallel = workers > 1 && source.as_ref().is_some_and(|s| s.is_mapped());
    let mut more_readers = Vec::new();
    if let (Mode::Read(path), true) = (&mode, parallel) {
        for _ in 1..workers {
            match open_capture(path) {
                Ok(s) => more_readers.push(s),
                Err(e) => return bad_input(e),
            }
        }
    }
    let threshold = match cli.baseline {
        Some(learn_secs) => Threshold::Baseline {
            learn_secs,
            margin_pct: cli.margin,
        },
        None => Threshold::Fixed(cli.threshold),
    };
    let ports = cli.port.clone().unwrap_or(match mode {
        Mode::Interface(_) => Ports::List(DEFAULT_INTERFACE_PORTS.to_vec()),
        _ => Ports::Any,
    });
    // The allow-list: --allow, plus the monitored interface's own addresses when live.
    let mut allow = cli.allow.clone();
    let own_interface = match &mode {
        Mode::Interface(i) | Mode::Mirror(i) if !cli.no_allow_self => Some(i.clone()),
        _ => None,
    };
    if let Some(iface) = &own_interface {
        match live::interface_addresses(iface) {
            Ok(addrs) => allow.extend(addrs.into_iter().map(Cidr::host)),
            Err(e) => return bad_input(e),
        }
    }
    let scan = ScanConfig {
        ports: cli.scan_ports,
        window_secs: cli.scan_window,
        allow: AllowList::new(allow),
        block_for_secs: cli.block_for,
    };
    let config = EngineConfig {
        workers,
        worker: WorkerConfig {
            ports: match &ports {
                Ports::Any => PortFilter::any(),
                Ports::List(list) => PortFilter::ports(list),
            },
            // One JSON-lines sink per worker, each writing its batches to stdout.
            events: cli
                .json
                .then(|| SinkFactory::new(|| Box::new(JsonLines::stdout()))),
            flow_capacity: cli.flows,
        },
        aggregator: AggregatorConfig {
            alert: AlertConfig {
                window_secs: cli.window,
                threshold,
            },
            report_interval_secs: cli.report_interval,
            top_n: usize::from(cli.top),
            scan,
            metrics: cli.metrics.is_some(),
        },
    };
    // Lines that say what this run does, printed once capture is ready (live: so that an
    // error at start stays the only line) or at once (a replay).
    let mut startup: Vec<String> = Vec::new();
    if live {
        startup.extend(guard_banner(
            &cli,
            &config.aggregator.scan,
            &mode,
            own_interface.is_some(),
        ));
    }

    let human_is_tty;
    let human: Box<dyn Write + Send> = if cli.json {
        human_is_tty = std::io::stderr().is_terminal();
        Box::new(std::io::stderr())
    } else {
        human_is_tty = std::io::stdout().is_terminal();
        Box::new(std::io::stdout())
    };
    let printer = Printer {
        human,
        json: cli.json,
        alert_log,
        top_n: usize::from(cli.top),
    };

    // Ctrl-C or SIGTERM ends the run; the summary still covers what was counted. A second
    // Ctrl-C or SIGTERM while linewatch winds down exits at once (a mirror's guard process
    // still removes the veth and tc set-up; the XDP program detaches with the process).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let registered =
            signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop))
                .and_then(|_| signal_hook::flag::register(signal, Arc::clone(&stop)));
        if let Err(e) = registered {
            eprintln!("linewatch: warning: cannot catch signal {signal}: {e}");
        }
    }
    if let Some(secs) = cli.duration {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(secs));
            stop.store(true, Ordering::Relaxed);
        });
    }

    let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::default()));
    // The metrics endpoint renders the last published view on each scrape (before the first
    // second closes: zeros, with the start time).
    let metrics_server = match cli.metrics {
        Some(addr) => {
            let snapshot = Arc::clone(&snapshot);
            let started = std::time::SystemTime::now();
            let render = Box::new(move || match &snapshot.load().metrics {
                Some(view) => linewatch_report::metrics::render(view),
                None => {
                    linewatch_report::metrics::render(&linewatch_report::metrics::MetricsView {
                        created: started,
                        methods: METHOD_NAMES.iter().map(|m| (*m, 0)).collect(),
                        ..Default::default()
                    })
                }
            });
            match metrics_server::start(addr, render) {
                Ok(server) => {
                    startup.push(format!(
                        "linewatch: serving OpenMetrics on http://{}/metrics",
                        server.local_addr()
                    ));
                    Some(server)
                }
                Err(e) => return bad_input(e),
            }
        }
        None => None,
    };
    let done = Arc::new(AtomicBool::new(false));
    // The status line is for a person watching: on a terminal, rewritten in place once a
    // second from the published snapshot. Output into a pipe gets none.
    let status = human_is_tty.then(|| {
        let snapshot = Arc::clone(&snapshot);
        let done = Arc::clone(&done);
        let to_stderr = cli.json;
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let snap = snapshot.load();
                if snap.second == 0 {
                    continue;
                }
                let line = linewatch_report::status::render(&snap.status_line(), true);
                if to_stderr {
                    let _ = std::io::stderr().write_all(line.as_bytes());
                } else {
                    let _ = std::io::stdout().write_all(line.as_bytes());
                    let _ = std::io::stdout().flush();
                }
            }
        })
    });

    if !live {
        for line in &startup {
            eprintln!("{line}");
        }
    }
    let outcome = match (mode, source) {
        (Mode::Read(_), Some(source)) if !parallel => Ok(offline::run(
            source,
            &config,
            Box::new(printer),
            Arc::clone(&snapshot),
            &stop,
        )),
        (Mode::Read(_), Some(source)) => {
            let mut sources = vec![source];
            sources.append(&mut more_readers);
            Ok(offline::run_parallel(
                sources,
                &config,
                Box::new(printer),
                Arc::clone(&snapshot),
                &stop,
            ))
        }
        (Mode::Interface(iface), _) => {
            let live = live_config(
                &cli,
                &config,
                &ports,
                iface.clone(),
                iface.clone(),
                false,
                &iface,
            );
            live::run::run(
                &live,
                Box::new(printer),
                Arc::clone(&snapshot),
                &stop,
                |ready| {
                    for line in &startup {
                        eprintln!("{line}");
                    }
                    announce(ready);
                },
            )
            .map_err(|e| e.to_string())
        }
        (Mode::Mirror(iface), _) => {
            // One queue unless asked: the veth spreads a flow's two directions over its queues
            // by a hash that is not symmetric (see `announce`).
            let queues = cli.workers.map_or(1, usize::from);
            run_mirror(
                &cli, &config, &ports, &iface, queues, printer, &snapshot, &stop, &startup,
            )
        }
        (Mode::Read(_), None) => Err("internal: a replay without a source".to_owned()),
    };
    done.store(true, Ordering::Relaxed);
    if let Some(handle) = status {
        let _ = handle.join();
    }
    if let Some(server) = metrics_server {
        server.stop();
    }
    let result = match outcome {
        Ok(result) => result,
        Err(e) => {
            if human_is_tty {
                let _ = std::io::stdout().write_all(b"\r\x1b[2K");
            }
            eprintln!("linewatch: {e}");
            return ExitCode::from(2);
        }
    };

    let summary = linewatch_engine::summary::summary(&result);
    let text = linewatch_report::text::summary(&summary, usize::from(cli.top));
    let mut human: Box<dyn Write> = if cli.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    if human_is_tty {
        let _ = human.write_all(b"\r\x1b[2K");
    }
    let _ = human.write_all(text.as_bytes());
    let _ = human.flush();
    if result.interrupted {
        eprintln!("linewatch: interrupted: the summary covers the packets read until then");
    }
    if let SourceEnd::Truncated(why) = &result.end {
        eprintln!(
            "linewatch: warning: {} is truncated ({why}); counted everything before the cut",
            result.source
        );
    }
    if let Some(c) = &result.capture {
        let dropped = c.dropped();
        if dropped > 0 {
            eprintln!(
                "linewatch: warning: the kernel dropped {dropped} frame{} before linewatch could \
                 read {} (see the capture block of the summary)",
                if dropped == 1 { "" } else { "s" },
                if dropped == 1 { "it" } else { "them" },
            );
        }
    }
    if let Some((path, mut file)) = summary_file {
        let json = linewatch_report::json::summary(&summary);
        if let Err(e) = file.write_all(json.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("linewatch: cannot write summary {}: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    ExitCode::SUCCESS
}

/// Says what the connection guard does in this run, like the seed's welcome lines.
fn guard_banner(cli: &Cli, scan: &ScanConfig, mode: &Mode, allow_self: bool) -> Option<String> {
    let (Mode::Interface(iface) | Mode::Mirror(iface)) = mode else {
        return None;
    };
    let action = if cli.block_scanners {
        match cli.block_for {
            Some(s) => format!("flagged and its new connections dropped on {iface} for {s} s"),
            None => format!("flagged and its new connections dropped on {iface} until exit"),
        }
    } else {
        "flagged (not blocked: see --block-scanners)".to_owned()
    };
    let allow: Vec<String> = scan.allow.nets().iter().map(ToString::to_string).collect();
    Some(format!(
        "linewatch: connection guard: a source opening connections to {} ports within {} s is {action}; \
         allow-list: {}{}",
        scan.ports,
        scan.window_secs,
        if allow.is_empty() { "empty".to_owned() } else { allow.join(", ") },
        if allow_self {
            format!(" ({iface}'s own addresses included)")
        } else {
            String::new()
        },
    ))
}

/// Ports --interface monitors when --port is not given: never SSH or anything but web ports.
const DEFAULT_INTERFACE_PORTS: [u16; 2] = [80, 8080];

fn live_config(
    cli: &Cli,
    config: &EngineConfig,
    ports: &Ports,
    interface: String,
    label: String,
    own_mirror: bool,
    nic: &str,
) -> live::run::LiveConfig {
    live::run::LiveConfig {
        interface,
        label,
        queues: if own_mirror {
            None
        } else {
            cli.queues.as_ref().map(|q| q.0.clone())
        },
        cores: cli
            .cores
            .as_ref()
            .map(|c| c.0.iter().map(|&n| n as usize).collect()),
        ports: match ports {
            Ports::Any => RedirectPorts::Any,
            Ports::List(list) => RedirectPorts::List(list.clone()),
        },
        capture: CaptureOptions {
            drop_others: own_mirror,
            // On linewatch's own mirror veth every frame is a copy: the workers see every new
            // connection, to any port. On --interface a SYN to an unmonitored port belongs to
            // the host and is left to it.
            all_syns: own_mirror,
            block: cli.block_scanners && !own_mirror,
        },
        block: cli.block_scanners.then(|| {
            if own_mirror {
                live::run::BlockOn::Guard(nic.to_owned())
            } else {
                live::run::BlockOn::Capture
            }
        }),
        ring: cli.ring,
        zero_copy: cli.zero_copy,
        generic: cli.xdp_generic,
        idle: cli.idle,
        worker: config.worker.clone(),
        aggregator: config.aggregator.clone(),
    }
}

/// Prints the line that says capture is live (tests and scripts wait for it).
fn announce(ready: &live::run::Ready) {
    if let Some(notice) = &ready.notice {
        eprintln!("linewatch: notice: {notice}");
    }
    if ready.queues.len() > 1 {
        // Each queue has its own worker, and the NIC (or veth) picks a frame's queue. Unless it
        // hashes flows symmetrically, a request and its response arrive on different queues:
        // both are counted, but the response cannot be paired with its request.
        eprintln!(
            "linewatch: notice: {} queues: where the interface does not hash a flow's two \
             directions to the same queue, responses are counted but not paired with their \
             requests (no latency; see unmatched_responses in the summary)",
            ready.queues.len()
        );
    }
    let queues: Vec<String> = ready
        .queues
        .iter()
        .map(|(q, core)| match core {
            Some(c) => format!("{q} (core {c})"),
            None => q.to_string(),
        })
        .collect();
    eprintln!(
        "linewatch: capturing on {}: queue{} {}, XDP {} mode, {} sockets, {} MiB UMEM per queue",
        ready.interface,
        if queues.len() == 1 { "" } else { "s" },
        queues.join(", "),
        ready.mode,
        if ready.zero_copy {
            "zero-copy"
        } else {
            "copy-mode"
        },
        ready.umem_bytes >> 20,
    );
}

#[allow(clippy::too_many_arguments)]
fn run_mirror(
    cli: &Cli,
    config: &EngineConfig,
    ports: &Ports,
    iface: &str,
    queues: usize,
    printer: Printer,
    snapshot: &Arc<ArcSwap<Snapshot>>,
    stop: &AtomicBool,
    startup: &[String],
) -> Result<offline::RunResult, String> {
    for line in mirror::clean_leftovers() {
        eprintln!("linewatch: removed a killed run's leftover: {line}");
    }
    let spec = mirror::MirrorSpec {
        interface: iface.to_owned(),
        queues: u32::try_from(queues).unwrap_or(1),
    };
    let mut m = mirror::Mirror::create(&spec).map_err(|e| e.to_string())?;
    let live = live_config(
        cli,
        config,
        ports,
        m.capture_interface().to_owned(),
        format!("{iface} (mirrored)"),
        true,
        iface,
    );
    let result = live::run::run(
        &live,
        Box::new(printer),
        Arc::clone(snapshot),
        stop,
        |ready| {
            eprintln!(
            "linewatch: mirroring {iface} into {} (tc clsact + u32 + mirred); {iface} is untouched",
            ready.interface
        );
            for line in startup {
                eprintln!("{line}");
            }
            announce(ready);
        },
    );
    let teardown = m.teardown();
    let result = result.map_err(|e| e.to_string())?;
    if let Err(e) = teardown {
        eprintln!("linewatch: warning: {e}");
    }
    Ok(result)
}

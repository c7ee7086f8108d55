//! `gen-capture`: writes a deterministic HTTP capture (see `linewatch_bench_rig::capture`) and,
//! optionally, the counts a perfect monitor must find on it.
//!
//! ```text
//! gen-capture --bench --out bench-1m.pcap --truth bench-1m.json
//! gen-capture --out spike.pcap --phases 60x20,20x100,60x20 --keepalive 1
//! ```
//!
//! Prints one line (file, packets, requests, bytes, seconds taken). Errors are one line on
//! stderr and exit status 2.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use linewatch_bench_rig::capture::{
    write_capture_file, CaptureSpec, CaptureTruth, HeavyKey, Phase,
};
use serde_json::json;

/// How many sections and hosts the truth file lists.
const TRUTH_TOP: usize = 20;

/// Writes a deterministic HTTP capture (pcap, Ethernet, TCP port 80) with known counts.
#[derive(Debug, Parser)]
#[command(name = "gen-capture", version)]
struct Cli {
    /// The pcap file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start from the replay benchmark's capture: 1,000,000 requests, 100 s at 10,000/s,
    /// 100 requests per connection, 2,000 sections, 500 hosts, 200 agents, 3 heavy keys.
    /// Other options override parts of it.
    #[arg(long)]
    bench: bool,
    /// Total requests, sent at --rate per second (a last, shorter second takes the remainder).
    #[arg(long, value_name = "N", conflicts_with = "phases")]
    requests: Option<u64>,
    /// Requests per second for --requests (default: the base capture's first rate).
    #[arg(long, value_name = "R", conflicts_with = "phases")]
    rate: Option<u32>,
    /// Requests per keep-alive connection.
    #[arg(long, value_name = "K")]
    keepalive: Option<u32>,
    /// No responses: requests only.
    #[arg(long)]
    no_responses: bool,
    /// No SYN/SYN-ACK/ACK handshake and no FIN exchange.
    #[arg(long)]
    no_handshake: bool,
    /// Size of the `/s{n}` section pool.
    #[arg(long, value_name = "N")]
    distinct_sections: Option<u32>,
    /// Size of the `h{n}.example` host pool.
    #[arg(long, value_name = "N")]
    distinct_hosts: Option<u32>,
    /// Size of the `agent/{n}` user-agent pool.
    #[arg(long, value_name = "N")]
    distinct_agents: Option<u32>,
    /// A heavy (section, host) pair and its requests per thousand; repeatable. Replaces the
    /// base capture's heavy keys.
    #[arg(long, value_name = "SECTION@HOST:PERMILLE", value_parser = parse_heavy)]
    heavy: Vec<HeavyKey>,
    /// IPv6 instead of IPv4.
    #[arg(long)]
    ipv6: bool,
    /// Tag every frame with this 802.1Q VLAN ID.
    #[arg(long, value_name = "ID")]
    vlan: Option<u16>,
    /// Seed for every choice (same seed, same bytes).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Unix time of the first second.
    #[arg(long, value_name = "UNIX")]
    start: Option<u64>,
    /// Rate phases, SECONDSxRATE separated by commas, e.g. "60x20,20x100,60x20".
    #[arg(long, value_name = "PHASES", value_parser = parse_phases)]
    phases: Option<Phases>,
    /// Also write the capture's truth (counts, top sections and hosts) as JSON.
    #[arg(long, value_name = "FILE.json")]
    truth: Option<PathBuf>,
}

/// The parsed `--phases` list (a newtype, so clap takes it as one value).
#[derive(Debug, Clone)]
struct Phases(Vec<Phase>);

fn parse_phases(text: &str) -> Result<Phases, String> {
    text.split(',')
        .map(|part| {
            let (seconds, rate) = part
                .trim()
                .split_once(['x', 'X'])
                .ok_or_else(|| format!("phase {part:?} is not SECONDSxRATE (e.g. 60x20)"))?;
            let number = |s: &str| {
                s.trim()
                    .parse::<u32>()
                    .map_err(|e| format!("phase {part:?}: {s:?} is not a number ({e})"))
            };
            Ok(Phase {
                seconds: number(seconds)?,
                requests_per_second: number(rate)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Phases)
}

fn parse_heavy(text: &str) -> Result<HeavyKey, String> {
    let shape = || format!("{text:?} is not SECTION@HOST:PERMILLE (e.g. /api@api.example:100)");
    let (key, per_mille) = text.rsplit_once(':').ok_or_else(shape)?;
    let (section, host) = key.split_once('@').ok_or_else(shape)?;
    let per_mille = per_mille
        .parse::<u32>()
        .map_err(|e| format!("{text:?}: per mille {per_mille:?} is not a number ({e})"))?;
    Ok(HeavyKey {
        section: section.to_owned(),
        host: host.to_owned(),
        per_mille,
    })
}

impl Cli {
    /// The spec the options describe: the base capture with each given option applied.
    fn spec(&self) -> CaptureSpec {
        let mut spec = if self.bench {
            CaptureSpec::bench_default()
        } else {
            CaptureSpec::default()
        };
        if let Some(Phases(phases)) = &self.phases {
            spec.phases.clone_from(phases);
        } else if self.requests.is_some() || self.rate.is_some() {
            let base_rate = spec.phases.first().map_or(0, |p| p.requests_per_second);
            let requests = self.requests.unwrap_or_else(|| spec.total_requests());
            spec.phases = CaptureSpec::phases_for(requests, self.rate.unwrap_or(base_rate));
        }
        if let Some(k) = self.keepalive {
            spec.requests_per_connection = k;
        }
        spec.responses &= !self.no_responses;
        spec.handshake &= !self.no_handshake;
        if let Some(n) = self.distinct_sections {
            spec.keys.distinct_sections = n;
        }
        if let Some(n) = self.distinct_hosts {
            spec.keys.distinct_hosts = n;
        }
        if let Some(n) = self.distinct_agents {
            spec.keys.distinct_user_agents = n;
        }
        if !self.heavy.is_empty() {
            spec.keys.heavy.clone_from(&self.heavy);
        }
        spec.ipv6 |= self.ipv6;
        if self.vlan.is_some() {
            spec.vlan = self.vlan;
        }
        if let Some(seed) = self.seed {
            spec.seed = seed;
        }
        if let Some(start) = self.start {
            spec.start_unix_secs = start;
        }
        spec
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One line: clap's message (before its usage paragraph), lines joined, without
            // its "error: " prefix.
            let rendered = e.render().to_string();
            let message = rendered.split("\n\n").next().unwrap_or_default();
            let message = message.strip_prefix("error: ").unwrap_or(message);
            let message: Vec<&str> = message.lines().map(str::trim).collect();
            eprintln!("gen-capture: {} (see --help)", message.join(" "));
            return ExitCode::from(2);
        }
        Err(e) => e.exit(), // --help, --version
    };
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("gen-capture: {message}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let spec = cli.spec();
    spec.validate().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let truth = write_capture_file(&spec, &cli.out)
        .map_err(|e| format!("writing {}: {e}", cli.out.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&cli.out)
        .map_err(|e| format!("reading back {}: {e}", cli.out.display()))?
        .len();
    if let Some(path) = &cli.truth {
        write_truth(path, &cli.out, bytes, &spec, &truth)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let mut stdout = io::stdout().lock();
    writeln!(
        stdout,
        "{}: {} packets, {} requests, {} bytes, {seconds:.2} s",
        cli.out.display(),
        truth.packets,
        truth.requests,
        bytes
    )
    .map_err(|e| format!("writing to stdout: {e}"))
}

fn write_truth(
    path: &Path,
    capture: &Path,
    bytes: u64,
    spec: &CaptureSpec,
    truth: &CaptureTruth,
) -> io::Result<()> {
    let pairs = |top: Vec<(&str, u64)>| -> Vec<serde_json::Value> {
        top.into_iter().map(|(key, n)| json!([key, n])).collect()
    };
    let status: serde_json::Map<String, serde_json::Value> = truth
        .status
        .iter()
        .map(|(code, n)| (code.to_string(), json!(n)))
        .collect();
    let summary = json!({
        "capture": capture.display().to_string(),
        "bytes": bytes,
        "seed": spec.seed,
        "start_unix_secs": spec.start_unix_secs,
        "requests": truth.requests,
        "responses": truth.responses,
        "packets": truth.packets,
        "connections": truth.connections,
        "requests_per_second_len": truth.requests_per_second.len(),
        "methods": truth.methods,
        "status": status,
        "distinct_sections": truth.sections.len(),
        "distinct_hosts": truth.hosts.len(),
        "distinct_user_agents": truth.user_agents.len(),
        "top_sections": pairs(truth.top_sections(TRUTH_TOP)),
        "top_hosts": pairs(truth.top_hosts(TRUTH_TOP)),
    });
    let mut text = serde_json::to_string_pretty(&summary).map_err(io::Error::other)?;
    text.push('\n');
    std::fs::write(path, text)
}

//! The `bench-rig` command: `run` (the bench), `demo`, and the internal parts each run inside a
//! lab namespace (`generate`, `rxdrop`, `xdp-drop`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::frames::{FrameSpec, Pools};
use crate::generator::{self, GeneratorConfig, Phase, TxPath};
use crate::lab::Lab;
use crate::receivers::ReceiverKind;
use crate::rig::{self, RigConfig};
use crate::sys::{self, linewatch_beside, stop_flag};
use crate::{demo, output};

/// linewatch's bench rig: packets per second through linewatch, rxdrop, AF_PACKET and
/// XDP_DROP on a veth lab, and the demo. Needs root (network namespaces, XDP).
#[derive(Debug, Parser)]
#[command(name = "bench-rig", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The bench: the same offered load against each receiver, alternated and repeated; prints
    /// a table and writes JSON and an SVG chart.
    Run(RunArgs),
    /// The demo: a lab, linewatch on it, and calm / spike / calm traffic with responses, about a
    /// minute long (Ctrl-C ends it early; everything is removed either way).
    Demo(demo::DemoArgs),
    /// Internal: the traffic generator (run inside the sending namespace).
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Internal: the rxdrop receiver (run inside the receiving namespace).
    #[command(hide = true)]
    Rxdrop(RxdropArgs),
    /// Internal: the XDP_DROP receiver (run inside the receiving namespace).
    #[command(hide = true)]
    XdpDrop(XdpDropArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Queues of the lab's veth pair.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// Bytes per frame, send stamp included (at most 1514).
    #[arg(long, default_value_t = 150)]
    frame_size: usize,
    /// Distinct flows.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    flows: u32,
    /// Offered rates in frames per second, comma-separated; `max` sends as fast as one core
    /// can (e.g. 200000,400000,max).
    #[arg(long, default_value = "max", value_parser = parse_rates)]
    rates: Rates,
    /// Seconds of load per trial.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Repetitions of every (rate, receiver) trial.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: u32,
    /// Receivers, comma-separated.
    #[arg(
        long,
        default_value = "full,rxdrop,afpacket,xdpdrop",
        value_delimiter = ','
    )]
    receivers: Vec<ReceiverKind>,
    /// How the generator sends: afxdp (exact queue steering) or afpacket.
    #[arg(long, default_value = "afxdp")]
    tx: TxPath,
    /// Threaded NAPI on the receiving veth (`on`/`off`).
    #[arg(long, default_value = "on", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    napi_threaded: bool,
    /// XDP mode of the receivers' programs: native (on veth: the peer's frames go through a
    /// ring and NAPI) or generic (in the receiving kernel's skb path).
    #[arg(long, default_value = "native", value_parser = parse_xdp_mode, action = clap::ArgAction::Set)]
    xdp_mode: bool,
    /// Core for the NAPI threads (default: the generator's core, away from the receiver's).
    #[arg(long)]
    napi_core: Option<usize>,
    /// Core of the generator (default: the first allowed core).
    #[arg(long)]
    gen_core: Option<usize>,
    /// Core of the receiver's worker (default: the second allowed core, or the first).
    #[arg(long)]
    rx_core: Option<usize>,
    /// Fill/rx ring entries and UMEM frames per queue for the AF_XDP receivers (`full` and
    /// `rxdrop` alike; a power of two from 2048 to 262144). Default: linewatch's (65536 of
    /// 2 KiB). Fewer frames stay in the CPU's cache and are faster at high rates; more absorb
    /// longer stalls of the worker.
    #[arg(long, value_parser = parse_ring)]
    ring: Option<u32>,
    /// The linewatch binary (default: beside this one).
    #[arg(long)]
    linewatch: Option<PathBuf>,
    /// Where to write the results as JSON.
    #[arg(long, default_value = "bench-rig.json")]
    json: PathBuf,
    /// Where to draw the chart (SVG).
    #[arg(long, default_value = "bench-rig.svg")]
    chart: PathBuf,
    /// Short mode for CI: 1 repetition of 2 s at 100000 frames/s and at max.
    #[arg(long)]
    short: bool,
    /// Exit non-zero when a trial's counts do not add up (the default only reports it).
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct GenerateArgs {
    #[arg(long)]
    interface: String,
    #[arg(long, default_value_t = 1)]
    queues: u32,
    #[arg(long, default_value = "afxdp")]
    tx: TxPath,
    /// Frames per second (0: maximum).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    #[arg(long, default_value_t = 150)]
    frame_size: usize,
    #[arg(long, default_value_t = 1024)]
    flows: u32,
    #[arg(long)]
    core: Option<usize>,
    /// Phases `RATExSECONDS,...` instead of --rate/--seconds (the demo's script).
    #[arg(long)]
    script: Option<String>,
    /// Send a response per request, after this mean delay in ms (0: requests only).
    #[arg(long, default_value_t = 0.0)]
    responses_ms: f64,
}

#[derive(Debug, clap::Args)]
struct RxdropArgs {
    #[arg(long)]
    interface: String,
    #[arg(long)]
    generic: bool,
    #[arg(long, value_delimiter = ',')]
    queues: Vec<u32>,
    #[arg(long, value_delimiter = ',')]
    cores: Vec<usize>,
    #[arg(long, value_parser = parse_ring)]
    ring: Option<u32>,
}

#[derive(Debug, clap::Args)]
struct XdpDropArgs {
    #[arg(long)]
    interface: String,
    #[arg(long)]
    generic: bool,
}

/// Rates in frames per second (0 = max).
#[derive(Debug, Clone)]
struct Rates(Vec<f64>);

fn parse_rates(s: &str) -> Result<Rates, String> {
    s.split(',')
        .map(|r| {
            let r = r.trim();
            if r.eq_ignore_ascii_case("max") {
                return Ok(0.0);
            }
            match r.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
                _ => Err(format!("`{r}` is not a rate (frames per second, or max)")),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Rates)
}

/// `RATExSECONDS,...`, e.g. `5x15,60x15,5x25`.
fn parse_script(s: &str) -> Result<Vec<Phase>, String> {
    s.split(',')
        .map(|p| {
            let (rate, secs) = p
                .split_once('x')
                .ok_or_else(|| format!("`{p}`: a phase is RATExSECONDS"))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .map_err(|_| format!("`{rate}` is not a rate"))?;
            let seconds: f64 = secs
                .trim()
                .parse()
                .map_err(|_| format!("`{secs}` is not a duration"))?;
            if !(rate.is_finite() && rate >= 0.0 && seconds.is_finite() && seconds >= 0.0) {
                return Err(format!("`{p}`: rate and seconds must be zero or more"));
            }
            Ok(Phase { rate, seconds })
        })
        .collect()
}

/// A ring size as linewatch's `--ring` takes it.
fn parse_ring(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n.is_power_of_two() && (2048..=262_144).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a power of two from 2048 to 262144")),
    }
}

/// `generic` → true.
fn parse_xdp_mode(s: &str) -> Result<bool, String> {
    match s {
        "native" => Ok(false),
        "generic" => Ok(true),
        _ => Err(format!("`{s}`: native or generic")),
    }
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("`{s}`: on or off")),
    }
}

/// Entry point of the `bench-rig` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !sys::is_root() {
        eprintln!(
            "bench-rig: needs root (it creates network namespaces and a veth pair and attaches \
             XDP programs): run it with sudo"
        );
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Run(args) => run_bench(args),
        Command::Demo(args) => demo::run(&args),
        Command::Generate(args) => generate(&args),
        Command::Rxdrop(args) => rxdrop(&args),
        Command::XdpDrop(args) => xdp_drop(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench-rig: {e}");
            ExitCode::from(2)
        }
    }
}

fn generate(args: &GenerateArgs) -> Result<ExitCode, String> {
    if let Some(core) = args.core {
        sys::set_affinity(0, core)
            .map_err(|e| format!("cannot pin the generator to core {core}: {e}"))?;
    }
    let stop = stop_flag();
    let phases = match &args.script {
        Some(script) => parse_script(script)?,
        None => vec![Phase {
            rate: args.rate,
            seconds: args.seconds,
        }],
    };
    let responses = args.responses_ms > 0.0;
    let mut frames = FrameSpec {
        frame_size: args.frame_size,
        flows: args.flows,
        seed: 1,
        pools: if responses { Pools::Demo } else { Pools::Bench },
    };
    if frames.frame_size == 0 {
        frames.frame_size = crate::frames::smallest_frame(&frames);
    }
    let config = GeneratorConfig {
        interface: args.interface.clone(),
        queues: args.queues,
        tx: args.tx,
        frames,
        phases,
        responses,
        response_delay_ms: args.responses_ms,
    };
    let report = generator::run(&config, &stop)?;
    output::print_line(&report.to_json(args.tx).to_string());
    Ok(ExitCode::SUCCESS)
}

fn rxdrop(args: &RxdropArgs) -> Result<ExitCode, String> {
    use linewatch_engine::live::rxdrop::{self, RxdropConfig};
    let stop = stop_flag();
    let config = RxdropConfig {
        interface: args.interface.clone(),
        queues: args.queues.clone(),
        cores: args.cores.clone(),
        ring: args.ring,
        idle: Default::default(),
        generic: args.generic,
    };
    let figures =
        rxdrop::run(&config, &stop, || eprintln!("rxdrop: ready")).map_err(|e| e.to_string())?;
    let received: u64 = figures.queues.iter().map(|q| q.frames).sum();
    let dropped: u64 = figures.queues.iter().map(|q| q.stats.dropped()).sum();
    output::print_line(
        &json!({
            "received": received,
            "dropped": dropped,
            "xdp_seen": figures.xdp.seen,
            "xdp_redirected": figures.xdp.redirected,
            "cpu_s": figures.queues.iter().map(|q| q.cpu_ns).sum::<u64>() as f64 / 1e9,
        })
        .to_string(),
    );
    Ok(ExitCode::SUCCESS)
}

fn xdp_drop(args: &XdpDropArgs) -> Result<ExitCode, String> {
    use linewatch_engine::live::xdp::{CaptureOptions, RedirectPorts, XdpProgram, XdpRole};
    let stop = stop_flag();
    let ifindex = sys::ifindex(&args.interface)
        .map_err(|_| format!("interface {} not found", args.interface))?;
    let (program, _) = XdpProgram::attach_role(
        XdpRole::DropAll,
        &args.interface,
        ifindex,
        &RedirectPorts::Any,
        CaptureOptions::default(),
        args.generic,
    )
    .map_err(|e| e.to_string())?;
    eprintln!("xdp-drop: ready ({} mode)", program.mode());
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let c = program.counters();
    output::print_line(&json!({"received": c.seen, "dropped": 0, "xdp_seen": c.seen}).to_string());
    Ok(ExitCode::SUCCESS)
}

fn run_bench(args: RunArgs) -> Result<ExitCode, String> {
    let cores = sys::allowed_cores();
    let first = cores.first().copied().unwrap_or(0);
    let second = cores.get(1).copied().unwrap_or(first);
    let gen_core = args.gen_core.unwrap_or(first);
    let (rates, seconds, reps) = if args.short {
        (vec![100_000.0, 0.0], 2.0, 1)
    } else {
        (args.rates.0.clone(), args.seconds, args.reps)
    };
    let dir = std::env::temp_dir().join(format!("bench-rig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let config = RigConfig {
        queues: args.queues,
        frame_size: args.frame_size,
        flows: args.flows,
        rates,
        seconds,
        reps,
        receivers: args.receivers.clone(),
        tx: args.tx,
        threaded_napi: args.napi_threaded,
        generic: args.xdp_mode,
        napi_core: args.napi_core.unwrap_or(gen_core),
        gen_core,
        rx_core: args.rx_core.unwrap_or(second),
        ring: args.ring,
        linewatch: args.linewatch.clone().unwrap_or_else(linewatch_beside),
        rig: std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?,
        dir: dir.clone(),
    };
    if !config.linewatch.is_file() {
        return Err(format!(
            "linewatch binary not found at {} (build it: cargo build --release, or pass --linewatch)",
            config.linewatch.display()
        ));
    }
    crate::frames::flows(&FrameSpec {
        frame_size: config.frame_size,
        flows: config.flows,
        seed: 1,
        pools: Pools::Bench,
    })?;
    let stop = stop_flag();
    let mut lab = Lab::new(config.queues).map_err(|e| e.to_string())?;
    output::print_line(&output::header(&config));
    let result = rig::run(&config, &lab, &stop, &mut |t| {
        output::print_line(&output::progress(t))
    });
    lab.teardown();
    let _ = std::fs::remove_dir_all(&dir);
    let trials = result?;
    let summary = output::summarise(&config, &trials);
    output::print_line(&output::table(&summary));
    let doc = output::to_json(&config, &trials, &summary);
    std::fs::write(
        &args.json,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| format!("cannot write {}: {e}", args.json.display()))?;
    std::fs::write(&args.chart, output::svg(&summary))
        .map_err(|e| format!("cannot write {}: {e}", args.chart.display()))?;
    output::print_line(&format!(
        "wrote {} and {}",
        args.json.display(),
        args.chart.display()
    ));
    let problems: Vec<String> = trials.iter().filter_map(|t| t.check().err()).collect();
    for p in &problems {
        eprintln!("bench-rig: counts disagree: {p}");
    }
    if stop.load(Ordering::Relaxed) {
        return Ok(ExitCode::from(130));
    }
    Ok(if args.strict && !problems.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

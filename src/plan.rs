//! What a command line asks for, checked as a whole: the mode, the engine's settings, the
//! outputs. [`Plan::from_cli`] is pure (no files, no sockets, no system calls): every "these
//! options do not go together" error is decided here, before anything is opened, and the unit
//! tests below pin each one. Opening files and sockets is [`crate::run`]'s job.

use std::net::SocketAddr;
use std::path::PathBuf;

use linewatch_engine::aggregate::AggregatorConfig;
use linewatch_engine::alert::{AlertConfig, Threshold};
use linewatch_engine::live::rss::RssPolicy;
use linewatch_engine::live::run::IdlePolicy;
use linewatch_engine::live::xdp::DST_CAPACITY;
use linewatch_engine::offline::EngineConfig;
use linewatch_engine::paced::SPEED_RANGE;
use linewatch_engine::scan::{AllowList, ScanConfig};
use linewatch_engine::worker::{DstFilter, PortFilter, WorkerConfig};
use linewatch_report::sink::JsonLines;
use linewatch_report::SinkFactory;

use crate::cli::{Cli, Ports};

/// Ports --interface monitors when --port is not given: never SSH or anything but web ports.
const DEFAULT_INTERFACE_PORTS: [u16; 2] = [80, 8080];

/// Most queues (and workers) `--mirror` takes by default: the copies are made by the kernel on
/// the CPUs that carry the mirrored interface's traffic, and each queue costs its own UMEM, so
/// past this a larger machine gains little for the memory. `--workers` sets any number.
const MAX_DEFAULT_MIRROR_QUEUES: usize = 8;

/// `--top-by` tables at most: each costs every worker a heavy-hitter table per second of
/// slack (`epoch::SPARES_PER_WORKER` + 1, ~200 KiB each) and the aggregator two more.
const MAX_TOP_BY: usize = 8;

/// Where packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `--read FILE`.
    Read(PathBuf),
    /// `--interface IFACE`.
    Interface(String),
    /// `--mirror IFACE`.
    Mirror(String),
}

impl Mode {
    /// Capture from the wire (`--interface` or `--mirror`).
    pub(crate) fn is_live(&self) -> bool {
        !matches!(self, Mode::Read(_))
    }
}

/// Settings that only live capture reads.
#[derive(Debug, Clone)]
pub(crate) struct LiveOptions {
    /// `--queues`: the rx queues of `--interface` (default: all).
    pub(crate) queues: Option<Vec<u32>>,
    /// `--cores`: each queue worker's core, in queue order.
    pub(crate) cores: Option<Vec<usize>>,
    /// `--ring`.
    pub(crate) ring: Option<u32>,
    /// `--zero-copy`.
    pub(crate) zero_copy: bool,
    /// `--xdp-generic`.
    pub(crate) generic: bool,
    /// `--idle`.
    pub(crate) idle: IdlePolicy,
    /// `--rss`: what `--interface` does to its NIC's RSS.
    pub(crate) rss: RssPolicy,
    /// `--block-scanners`.
    pub(crate) block_scanners: bool,
    /// `--block-for`.
    pub(crate) block_for: Option<u64>,
    /// Queues (and workers) of the mirror veth: `--workers`, by default one per CPU linewatch
    /// may use, at most [`MAX_DEFAULT_MIRROR_QUEUES`]. The mirror's tc program steers both
    /// directions of each connection to one queue, so every response is paired on any number.
    pub(crate) mirror_queues: usize,
}

/// Where results go.
#[derive(Debug, Clone)]
pub(crate) struct Outputs {
    /// `--json`: events on stdout, the human text on stderr.
    pub(crate) json: bool,
    /// `--alert-log FILE`.
    pub(crate) alert_log: Option<PathBuf>,
    /// `--summary FILE`.
    pub(crate) summary: Option<PathBuf>,
    /// `--top`: keys per table.
    pub(crate) top: usize,
    /// `--metrics ADDR`.
    pub(crate) metrics: Option<SocketAddr>,
    /// `--dashboard`: the full-screen view instead of the status line and reports.
    pub(crate) dashboard: bool,
}

/// A run, as the command line asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Where packets come from.
    pub(crate) mode: Mode,
    /// `--port`, or the mode's default.
    pub(crate) ports: Ports,
    /// The engine's settings. Its allow-list holds `--allow` only: the monitored interface's
    /// own addresses (see `allow_self`) need a look-up, done when the run starts.
    pub(crate) engine: EngineConfig,
    /// The interface whose own addresses join the allow-list (live, unless `--no-allow-self`).
    pub(crate) allow_self: Option<String>,
    /// How many of its addresses joined, once the run has looked them up.
    pub(crate) self_addresses: usize,
    /// Live capture settings.
    pub(crate) live: LiveOptions,
    /// Outputs.
    pub(crate) outputs: Outputs,
    /// `--duration SECS`: stop after that long (live only).
    pub(crate) duration: Option<u64>,
    /// `--realtime` (1) or `--speed FACTOR`: a replay paced at this many times the capture's
    /// own speed; `None`: as fast as it reads.
    pub(crate) pace: Option<f64>,
}

impl Plan {
    /// Checks the options together and settles every default. `cpus` is the number of CPUs
    /// this process may use: a replay runs one worker per CPU unless `--workers` says.
    pub(crate) fn from_cli(cli: &Cli, cpus: usize) -> Result<Plan, String> {
        let mode = match (&cli.read, &cli.interface, &cli.mirror) {
            (Some(path), None, None) => Mode::Read(path.clone()),
            (None, Some(iface), None) => Mode::Interface(iface.clone()),
            (None, None, Some(iface)) => Mode::Mirror(iface.clone()),
            _ => {
                return Err(
                    "nothing to monitor: give one of --read FILE, --interface IFACE or \
                            --mirror IFACE"
                        .to_owned(),
                )
            }
        };
        if !mode.is_live() {
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
                    return Err(format!(
                        "{name} applies to live capture (--interface, --mirror), not --read"
                    ));
                }
            }
        }
        let pace = pace(cli, &mode)?;
        if cli.dashboard && cli.json {
            return Err(
                "--dashboard and --json both take stdout: write the events elsewhere without \
                 --dashboard, or watch without --json"
                    .to_owned(),
            );
        }
        if matches!(mode, Mode::Mirror(_)) && cli.queues.is_some() {
            return Err(
                "--queues applies to --interface; --mirror captures every queue of its \
                        own veth (their number is --workers)"
                    .to_owned(),
            );
        }
        if !matches!(mode, Mode::Interface(_)) && cli.rss.is_some() {
            return Err(
                "--rss applies to --interface: --read has no NIC, and --mirror captures on its \
                 own veth and leaves the NIC's RSS alone"
                    .to_owned(),
            );
        }
        if matches!(mode, Mode::Interface(_)) && cli.workers.is_some() {
            return Err(
                "--workers does not apply to --interface: it runs one worker per queue (see \
                 --queues)"
                    .to_owned(),
            );
        }

        if cli.top_by.len() > MAX_TOP_BY {
            return Err(format!(
                "--top-by is given {} keys; at most {MAX_TOP_BY} tables are kept (each costs \
                 every worker a table per second)",
                cli.top_by.len()
            ));
        }
        if let Some((_, twice)) = cli
            .top_by
            .iter()
            .enumerate()
            .find(|(i, k)| cli.top_by[..*i].contains(k))
        {
            return Err(format!(
                "--top-by {twice} is given twice: give each key once"
            ));
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
        if cli.dst.len() > DST_CAPACITY {
            return Err(format!(
                "--dst lists {} networks; at most {DST_CAPACITY} are watched: merge them into \
                 wider prefixes",
                cli.dst.len()
            ));
        }
        let allow_self = match &mode {
            Mode::Interface(i) | Mode::Mirror(i) if !cli.no_allow_self => Some(i.clone()),
            _ => None,
        };
        let engine = EngineConfig {
            workers: cli.workers.map_or(cpus.max(1), usize::from),
            worker: WorkerConfig {
                ports: match &ports {
                    Ports::Any => PortFilter::any(),
                    Ports::List(list) => PortFilter::ports(list),
                },
                dst: DstFilter::nets(&cli.dst),
                events: cli
                    .json
                    .then(|| SinkFactory::new(|| Box::new(JsonLines::stdout()))),
                flow_capacity: cli.flows,
                top_by: cli.top_by.clone(),
            },
            aggregator: AggregatorConfig {
                alert: AlertConfig {
                    window_secs: cli.window,
                    threshold,
                },
                report_interval_secs: cli.report_interval,
                top_n: usize::from(cli.top),
                scan: ScanConfig {
                    ports: cli.scan_ports,
                    window_secs: cli.scan_window,
                    allow: AllowList::new(cli.allow.clone()),
                    block_for_secs: cli.block_for,
                },
                metrics: cli.metrics.is_some(),
                dashboard: cli.dashboard,
                top_by: cli.top_by.clone(),
                retention_secs: cli.retention,
            },
        };
        Ok(Plan {
            live: LiveOptions {
                queues: cli.queues.as_ref().map(|q| q.0.clone()),
                cores: cli
                    .cores
                    .as_ref()
                    .map(|c| c.0.iter().map(|&n| n as usize).collect()),
                ring: cli.ring,
                zero_copy: cli.zero_copy,
                generic: cli.xdp_generic,
                idle: cli.idle,
                rss: cli.rss.unwrap_or_default(),
                block_scanners: cli.block_scanners,
                block_for: cli.block_for,
                mirror_queues: cli
                    .workers
                    .map_or(cpus.clamp(1, MAX_DEFAULT_MIRROR_QUEUES), usize::from),
            },
            outputs: Outputs {
                json: cli.json,
                alert_log: cli.alert_log.clone(),
                summary: cli.summary.clone(),
                top: usize::from(cli.top),
                metrics: cli.metrics,
                dashboard: cli.dashboard,
            },
            duration: cli.duration,
            pace,
            mode,
            ports,
            engine,
            allow_self,
            self_addresses: 0,
        })
    }

    /// The line that says which servers' traffic is counted (`--dst`), with what happens to
    /// the rest; `None` when every address is watched.
    pub(crate) fn watch_banner(&self) -> Option<String> {
        let dst = &self.engine.worker.dst;
        if dst.is_any() {
            return None;
        }
        let nets: Vec<String> = dst.networks().iter().map(ToString::to_string).collect();
        let rest = match &self.mode {
            Mode::Read(_) => "other segments are counted only as unmonitored".to_owned(),
            Mode::Interface(iface) => {
                format!("other traffic is left to {iface}'s kernel (XDP passes it)")
            }
            Mode::Mirror(_) => "other traffic is dropped from the mirror copy in XDP".to_owned(),
        };
        Some(format!(
            "linewatch: watching traffic to and from {}; {rest}",
            nets.join(", ")
        ))
    }

    /// The line that says what the connection guard does in a live run, like the seed's
    /// welcome lines (`None` for a replay). Reads the final allow-list: call it after the
    /// interface's own addresses joined it.
    pub(crate) fn scan_banner(&self) -> Option<String> {
        let (Mode::Interface(iface) | Mode::Mirror(iface)) = &self.mode else {
            return None;
        };
        let scan = &self.engine.aggregator.scan;
        let action = if self.live.block_scanners {
            match self.live.block_for {
                Some(s) => format!("flagged and its new connections dropped on {iface} for {s} s"),
                None => format!("flagged and its new connections dropped on {iface} until exit"),
            }
        } else {
            "flagged (not blocked: see --block-scanners)".to_owned()
        };
        let allow: Vec<String> = scan.allow.nets().iter().map(ToString::to_string).collect();
        Some(format!(
            "linewatch: connection guard: a source opening connections to {} ports within {} s \
             is {action}; allow-list: {}{}",
            scan.ports,
            scan.window_secs,
            if allow.is_empty() {
                "empty".to_owned()
            } else {
                allow.join(", ")
            },
            match (&self.allow_self, self.self_addresses) {
                (None, _) => String::new(),
                (Some(_), 0) => format!(" ({iface} has no address of its own)"),
                (Some(_), _) => format!(" ({iface}'s own addresses included)"),
            },
        ))
    }
}

/// The pace of a replay: `--realtime` is 1, `--speed` its factor; only with `--read`.
fn pace(cli: &Cli, mode: &Mode) -> Result<Option<f64>, String> {
    let pace = match (cli.realtime, cli.speed) {
        (true, Some(_)) => {
            return Err("--realtime is --speed 1: give one of them".to_owned());
        }
        (true, None) => Some(1.0),
        (false, Some(speed)) => {
            if !SPEED_RANGE.contains(&speed) {
                return Err(format!(
                    "--speed {speed} is out of range: give a factor from {} to {} (1 is the \
                     capture's own speed)",
                    SPEED_RANGE.start(),
                    SPEED_RANGE.end()
                ));
            }
            Some(speed)
        }
        (false, None) => None,
    };
    if pace.is_some() && mode.is_live() {
        return Err(
            "--realtime and --speed pace a replay (--read); live capture runs at the wire's speed"
                .to_owned(),
        );
    }
    Ok(pace)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        Cli::try_parse_from(std::iter::once("linewatch").chain(args.iter().copied()))
            .map_err(|e| e.to_string())
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        Plan::from_cli(&parse(args)?, 4)
    }

    #[test]
    fn one_source_is_required() {
        let e = plan(&[]).unwrap_err();
        assert!(e.starts_with("nothing to monitor"), "{e}");
    }

    #[test]
    fn live_options_are_refused_for_a_replay() {
        for (args, name) in [
            (&["--duration", "5"][..], "--duration"),
            (&["--cores", "1"], "--cores"),
            (&["--zero-copy"], "--zero-copy"),
            (&["--ring", "4096"], "--ring"),
            (&["--queues", "0"], "--queues"),
            (&["--xdp-generic"], "--xdp-generic"),
            (&["--block-scanners"], "--block-scanners"),
        ] {
            let mut all = vec!["--read", "x.pcap"];
            all.extend_from_slice(args);
            assert_eq!(
                plan(&all).unwrap_err(),
                format!("{name} applies to live capture (--interface, --mirror), not --read")
            );
            // The same option is fine live.
            all[0] = "--mirror";
            if name != "--queues" {
                assert!(plan(&all).is_ok(), "{all:?}");
            }
        }
    }

    #[test]
    fn queues_and_workers_belong_to_their_modes() {
        let e = plan(&["--mirror", "eth0", "--queues", "0"]).unwrap_err();
        assert!(e.starts_with("--queues applies to --interface"), "{e}");
        let e = plan(&["--interface", "eth0", "--workers", "2"]).unwrap_err();
        assert!(
            e.starts_with("--workers does not apply to --interface"),
            "{e}"
        );
        let p = plan(&["--interface", "eth0", "--queues", "0-2"]).unwrap();
        assert_eq!(p.live.queues, Some(vec![0, 1, 2]));
        let p = plan(&["--mirror", "eth0", "--workers", "3"]).unwrap();
        assert_eq!(p.live.mirror_queues, 3);
    }

    #[test]
    fn rss_belongs_to_interface() {
        for mode in [["--mirror", "eth0"], ["--read", "x.pcap"]] {
            let e = plan(&[mode[0], mode[1], "--rss", "keep"]).unwrap_err();
            assert!(e.starts_with("--rss applies to --interface"), "{e}");
        }
        let p = plan(&["--interface", "eth0"]).unwrap();
        assert_eq!(p.live.rss, RssPolicy::Symmetric);
        let p = plan(&["--interface", "eth0", "--rss", "keep"]).unwrap();
        assert_eq!(p.live.rss, RssPolicy::Keep);
    }

    #[test]
    fn defaults_follow_the_mode() {
        let read = plan(&["--read", "x.pcap"]).unwrap();
        assert_eq!(read.mode, Mode::Read("x.pcap".into()));
        assert!(matches!(read.ports, Ports::Any));
        assert_eq!(read.engine.workers, 4, "one replay worker per CPU");
        assert!(
            read.engine.worker.events.is_none(),
            "no --json, no event sink"
        );
        assert_eq!(read.allow_self, None);
        assert_eq!(read.scan_banner(), None);

        let iface = plan(&["--interface", "eth0"]).unwrap();
        assert!(matches!(&iface.ports, Ports::List(l) if l == &[80, 8080]));
        assert_eq!(iface.allow_self.as_deref(), Some("eth0"));

        let mirror = plan(&["--mirror", "eth0", "--no-allow-self"]).unwrap();
        assert!(matches!(mirror.ports, Ports::Any));
        assert_eq!(mirror.allow_self, None);
        assert_eq!(mirror.live.mirror_queues, 4, "one mirror queue per CPU");

        let ports = plan(&["--interface", "eth0", "--port", "8000-8002"]).unwrap();
        assert!(matches!(&ports.ports, Ports::List(l) if l == &[8000, 8001, 8002]));
        assert!(ports.engine.worker.ports.matches(8001, 1));
        assert!(!ports.engine.worker.ports.matches(80, 1));
    }

    #[test]
    fn mirror_queues_follow_the_cpus_up_to_a_cap() {
        let mirror = parse(&["--mirror", "eth0"]).expect("valid arguments");
        for (cpus, queues) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (8, 8),
            (64, MAX_DEFAULT_MIRROR_QUEUES),
        ] {
            let p = Plan::from_cli(&mirror, cpus).expect("plan");
            assert_eq!(p.live.mirror_queues, queues, "{cpus} CPUs");
        }
        let asked = parse(&["--mirror", "eth0", "--workers", "12"]).expect("valid arguments");
        let p = Plan::from_cli(&asked, 2).expect("plan");
        assert_eq!(
            p.live.mirror_queues, 12,
            "--workers beats the default and the cap"
        );
    }

    #[test]
    fn baseline_replaces_the_fixed_threshold() {
        let fixed = plan(&["--read", "x", "--threshold", "7.5"]).unwrap();
        assert_eq!(
            fixed.engine.aggregator.alert.threshold,
            Threshold::Fixed(7.5)
        );
        let learned = plan(&["--read", "x", "--baseline", "30", "--margin", "5"]).unwrap();
        assert_eq!(
            learned.engine.aggregator.alert.threshold,
            Threshold::Baseline {
                learn_secs: 30,
                margin_pct: 5.0
            }
        );
    }

    #[test]
    fn outputs_and_workers_are_carried_over() {
        let p = plan(&[
            "--read",
            "x",
            "--json",
            "--summary",
            "s.json",
            "--top",
            "3",
            "--workers",
            "2",
        ])
        .unwrap();
        assert!(p.outputs.json && p.engine.worker.events.is_some());
        assert_eq!(p.outputs.summary, Some("s.json".into()));
        assert_eq!((p.outputs.top, p.engine.aggregator.top_n), (3, 3));
        assert_eq!(p.engine.workers, 2);
        assert!(!p.engine.aggregator.metrics);
        let m = plan(&["--read", "x", "--metrics", "9920"]).unwrap();
        assert!(m.engine.aggregator.metrics);
        assert_eq!(m.outputs.metrics, Some("127.0.0.1:9920".parse().unwrap()));
    }

    #[test]
    fn dst_narrows_the_watched_addresses_and_says_so() {
        let all = plan(&["--read", "x"]).unwrap();
        assert!(all.engine.worker.dst.is_any());
        assert_eq!(all.watch_banner(), None);

        let p = plan(&[
            "--read",
            "x",
            "--dst",
            "2001:db8::/32,10.1.2.3",
            "--dst",
            "10.0.0.0/8",
        ])
        .unwrap();
        let shown: Vec<String> = p
            .engine
            .worker
            .dst
            .networks()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["10.0.0.0/8", "10.1.2.3/32", "2001:db8::/32"]);
        assert_eq!(
            p.watch_banner().unwrap(),
            "linewatch: watching traffic to and from 10.0.0.0/8, 10.1.2.3/32, 2001:db8::/32; \
             other segments are counted only as unmonitored"
        );
        let live = plan(&["--interface", "eth0", "--dst", "192.0.2.1"]).unwrap();
        assert!(live
            .watch_banner()
            .unwrap()
            .ends_with("192.0.2.1/32; other traffic is left to eth0's kernel (XDP passes it)"));
        let mirror = plan(&["--mirror", "eth0", "--dst", "192.0.2.1"]).unwrap();
        assert!(mirror
            .watch_banner()
            .unwrap()
            .ends_with("other traffic is dropped from the mirror copy in XDP"));
    }

    #[test]
    fn a_bad_dst_is_refused_naming_the_value() {
        for (bad, why) in [
            ("10.0.0.300", "`10.0.0.300` is not an address or network"),
            (
                "10.0.0.0/33",
                "`10.0.0.0/33`: the prefix length must be 0 to 32",
            ),
            ("2001:db8::/129", "the prefix length must be 0 to 128"),
            ("web1", "`web1` is not an address or network"),
        ] {
            let e = plan(&["--read", "x", "--dst", &format!("10.0.0.1,{bad}")]).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.contains("--dst"), "{bad}: {e}");
        }
    }

    #[test]
    fn dashboard_and_pace_options() {
        let p = plan(&["--read", "x", "--dashboard", "--speed", "10"]).unwrap();
        assert!(p.outputs.dashboard && p.engine.aggregator.dashboard);
        assert_eq!(p.pace, Some(10.0));
        assert!(
            p.engine.worker.events.is_none(),
            "the run adds the dashboard's sink"
        );
        let p = plan(&["--read", "x", "--realtime"]).unwrap();
        assert_eq!(p.pace, Some(1.0));
        assert!(!p.outputs.dashboard && !p.engine.aggregator.dashboard);
        assert_eq!(plan(&["--read", "x"]).unwrap().pace, None);
        for (args, starts) in [
            (
                &["--read", "x", "--realtime", "--speed", "2"][..],
                "error: the argument '--realtime' cannot be used with '--speed",
            ),
            (
                &["--read", "x", "--speed", "0"],
                "--speed 0 is out of range",
            ),
            (
                &["--read", "x", "--speed", "NaN"],
                "--speed NaN is out of range",
            ),
            (
                &["--mirror", "eth0", "--realtime"],
                "--realtime and --speed pace a replay",
            ),
            (
                &["--read", "x", "--dashboard", "--json"],
                "error: the argument '--dashboard' cannot be used with '--json'",
            ),
        ] {
            let e = plan(args).unwrap_err();
            assert!(e.starts_with(starts), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_banner_says_what_happens_to_a_scanner() {
        let mut p = plan(&["--interface", "eth0", "--allow", "10.0.0.0/8"]).unwrap();
        assert!(p
            .scan_banner()
            .unwrap()
            .ends_with("allow-list: 10.0.0.0/8 (eth0 has no address of its own)"));
        p.self_addresses = 2;
        let b = p.scan_banner().unwrap();
        assert_eq!(
            b,
            "linewatch: connection guard: a source opening connections to 3 ports within 60 s \
             is flagged (not blocked: see --block-scanners); allow-list: 10.0.0.0/8 (eth0's \
             own addresses included)"
        );
        let p = plan(&[
            "--mirror",
            "eth0",
            "--no-allow-self",
            "--block-scanners",
            "--block-for",
            "30",
        ])
        .unwrap();
        let b = p.scan_banner().unwrap();
        assert!(
            b.contains("dropped on eth0 for 30 s; allow-list: empty"),
            "{b}"
        );
        assert!(!b.contains("own addresses"), "{b}");
    }
}

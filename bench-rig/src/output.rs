//! The bench's outputs: a progress line per trial, the summary table (medians with min and
//! max over the repetitions), the JSON document and the SVG chart (received vs offered frames
//! per second, one line per receiver).

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{json, Value};

use crate::receivers::ReceiverKind;
use crate::rig::{rate_label, RigConfig, Trial};

/// Prints one line to stdout (a closed stdout is not an error worth stopping for).
pub fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Median, min and max of some values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    /// Median (the mean of the middle two for an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `values`; all zero when empty.
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }

    fn json(&self) -> Value {
        json!({"median": self.median, "min": self.min, "max": self.max})
    }
}

/// One (rate, receiver) cell over its repetitions.
#[derive(Debug, Clone)]
pub struct Row {
    /// Rate asked for (0: max).
    pub rate: f64,
    /// Receiver.
    pub receiver: ReceiverKind,
    /// Repetitions.
    pub reps: usize,
    /// Offered frames/s.
    pub offered: Spread,
    /// Received frames/s.
    pub received: Spread,
    /// Requests/s parsed (full path).
    pub requests: Option<Spread>,
    /// Frames lost, per trial.
    pub lost: Spread,
    /// Loss as a share of sent.
    pub loss_share: Spread,
    /// Frames the receiver's own path dropped (socket or tcpdump's kernel drops), per trial:
    /// the rest of the loss happened in the veth, before any receiver.
    pub receiver_drops: Spread,
    /// Receiver CPU seconds per million frames.
    pub cpu: Spread,
    /// Machine CPU seconds per million frames.
    pub machine_cpu: Spread,
    /// Capture latency p50 and p99, µs (full path).
    pub latency: Option<(Spread, Spread)>,
    /// Share of received frames whose segment the full path handed to another worker (the
    /// crossing fallback; 0 on one queue).
    pub crossed_share: Option<Spread>,
    /// Trials whose counts did not add up.
    pub inconsistent: usize,
    /// Trials made a second time because the first try's generator was killed.
    pub repeated: usize,
}

/// Ratios of the full path's median received pps to each baseline's, at one rate.
#[derive(Debug, Clone, Copy)]
pub struct Ratios {
    /// Rate asked for (0: max).
    pub rate: f64,
    /// full / rxdrop.
    pub rxdrop: Option<f64>,
    /// full / afpacket.
    pub afpacket: Option<f64>,
    /// full / xdpdrop.
    pub xdpdrop: Option<f64>,
}

/// The table's rows and the ratios.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Per (rate, receiver), rates in the order given, receivers in table order.
    pub rows: Vec<Row>,
    /// Per rate.
    pub ratios: Vec<Ratios>,
}

/// Groups the trials.
pub fn summarise(config: &RigConfig, trials: &[Trial]) -> Summary {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    let mut kinds = config.receivers.clone();
    kinds.sort();
    kinds.dedup();
    for &rate in &config.rates {
        for &kind in &kinds {
            let ts: Vec<&Trial> = trials
                .iter()
                .filter(|t| t.rate == rate && t.receiver == kind)
                .collect();
            if ts.is_empty() {
                continue;
            }
            let spread = |f: &dyn Fn(&Trial) -> f64| {
                Spread::of(&ts.iter().map(|t| f(t)).collect::<Vec<_>>())
            };
            let requests = (kind == ReceiverKind::Full).then(|| {
                spread(&|t: &Trial| t.got.requests.unwrap_or(0) as f64 / t.sent.seconds.max(1e-9))
            });
            let with_latency: Vec<[u64; 6]> = ts.iter().filter_map(|t| t.got.latency_us).collect();
            let latency = (!with_latency.is_empty()).then(|| {
                (
                    Spread::of(&with_latency.iter().map(|l| l[0] as f64).collect::<Vec<_>>()),
                    Spread::of(&with_latency.iter().map(|l| l[2] as f64).collect::<Vec<_>>()),
                )
            });
            rows.push(Row {
                rate,
                receiver: kind,
                reps: ts.len(),
                offered: spread(&Trial::offered_pps),
                received: spread(&Trial::received_pps),
                requests,
                lost: spread(&|t: &Trial| t.lost() as f64),
                loss_share: spread(&|t: &Trial| t.lost() as f64 / (t.sent.sent.max(1)) as f64),
                receiver_drops: spread(&|t: &Trial| t.got.dropped as f64),
                cpu: spread(&Trial::cpu_per_mpkt),
                machine_cpu: spread(&Trial::machine_cpu_per_mpkt),
                latency,
                crossed_share: (kind == ReceiverKind::Full).then(|| {
                    spread(&|t: &Trial| {
                        t.got.crossed.unwrap_or(0) as f64 / t.got.received.max(1) as f64
                    })
                }),
                inconsistent: ts.iter().filter(|t| t.check().is_err()).count(),
                repeated: ts.iter().filter(|t| t.repeated_after.is_some()).count(),
            });
        }
        let median = |k: ReceiverKind| {
            rows.iter()
                .find(|r| r.rate == rate && r.receiver == k)
                .map(|r| r.received.median)
        };
        let ratio = |k: ReceiverKind| match (median(ReceiverKind::Full), median(k)) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        ratios.push(Ratios {
            rate,
            rxdrop: ratio(ReceiverKind::Rxdrop),
            afpacket: ratio(ReceiverKind::AfPacket),
            xdpdrop: ratio(ReceiverKind::XdpDrop),
        });
    }
    Summary { rows, ratios }
}

/// The run's settings, one line.
pub fn header(config: &RigConfig) -> String {
    format!(
        "bench-rig: {} queue(s), {}-byte frames, {} flows, rates {}, {} s x {} rep(s), tx {}, XDP {}, AF_XDP ring {}, NAPI {}{}, generator core {}, receiver core {}",
        config.queues,
        config.frame_size,
        config.flows,
        config.rates.iter().map(|r| rate_label(*r)).collect::<Vec<_>>().join(","),
        config.seconds,
        config.reps,
        config.tx.name(),
        if config.generic { "generic" } else { "native" },
        config.ring.map_or_else(|| "default".to_owned(), |r| r.to_string()),
        if config.threaded_napi { "threaded on core " } else { "in softirq" },
        if config.threaded_napi { config.napi_core.to_string() } else { String::new() },
        config.gen_core,
        config.rx_core,
    )
}

/// One trial, one line.
pub fn progress(t: &Trial) -> String {
    format!(
        "  rate {:>8} rep {} {:<8} offered {:>9.0}/s received {:>9.0}/s lost {:>8} cpu {:.3} s/Mpkt{}",
        rate_label(t.rate),
        t.rep + 1,
        t.receiver.name(),
        t.offered_pps(),
        t.received_pps(),
        t.lost(),
        t.cpu_per_mpkt(),
        match t.check() {
            Ok(()) => String::new(),
            Err(e) => format!("  COUNTS DISAGREE: {e}"),
        }
    )
}

fn mpps(s: &Spread) -> String {
    format!(
        "{:.3} ({:.3}-{:.3})",
        s.median / 1e6,
        s.min / 1e6,
        s.max / 1e6
    )
}

/// The table.
pub fn table(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<6} {:<9} {:>24} {:>24} {:>10} {:>9} {:>9} {:>9} {:>9} {:>13} {:>8}",
        "rate",
        "receiver",
        "offered Mpps (min-max)",
        "received Mpps (min-max)",
        "req/s",
        "loss",
        "rx drops",
        "cpu s/M",
        "mach s/M",
        "lat p50/p99us",
        "crossed"
    );
    for r in &summary.rows {
        let _ = writeln!(
            out,
            "{:<6} {:<9} {:>24} {:>24} {:>10} {:>8.2}% {:>9.0} {:>9.3} {:>9.3} {:>13} {:>8}{}{}",
            if r.rate > 0.0 {
                format!("{:.0}k", r.rate / 1e3)
            } else {
                "max".into()
            },
            r.receiver.name(),
            mpps(&r.offered),
            mpps(&r.received),
            r.requests
                .map_or("-".into(), |s| format!("{:.0}", s.median)),
            r.loss_share.median * 100.0,
            r.receiver_drops.median,
            r.cpu.median,
            r.machine_cpu.median,
            r.latency.map_or("-".into(), |(p50, p99)| format!(
                "{:.0}/{:.0}",
                p50.median, p99.median
            )),
            r.crossed_share
                .map_or("-".into(), |s| format!("{:.1}%", s.median * 100.0)),
            if r.inconsistent > 0 {
                format!("  ({} trial(s) with disagreeing counts)", r.inconsistent)
            } else {
                String::new()
            },
            if r.repeated > 0 {
                format!(
                    "  ({} trial(s) made twice: the first try's generator was killed)",
                    r.repeated
                )
            } else {
                String::new()
            },
        );
    }
    let fmt = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}"));
    let _ = writeln!(
        out,
        "\nratios of median received pps: full/rxdrop, full/afpacket, full/xdpdrop"
    );
    for r in &summary.ratios {
        let _ = writeln!(
            out,
            "  rate {:>8}: {} {} {}",
            rate_label(r.rate),
            fmt(r.rxdrop),
            fmt(r.afpacket),
            fmt(r.xdpdrop)
        );
    }
    out
}

/// The JSON document.
pub fn to_json(config: &RigConfig, trials: &[Trial], summary: &Summary) -> Value {
    json!({
        "config": {
            "queues": config.queues,
            "frame_size": config.frame_size,
            "flows": config.flows,
            "rates": config.rates,
            "seconds": config.seconds,
            "reps": config.reps,
            "tx": config.tx.name(),
            "threaded_napi": config.threaded_napi,
            "xdp_mode": if config.generic { "generic" } else { "native" },
            "ring": config.ring,
            "napi_core": config.napi_core,
            "gen_core": config.gen_core,
            "rx_core": config.rx_core,
        },
        "summary": summary.rows.iter().map(|r| json!({
            "rate": r.rate,
            "receiver": r.receiver.name(),
            "reps": r.reps,
            "offered_pps": r.offered.json(),
            "received_pps": r.received.json(),
            "requests_per_s": r.requests.map(|s| s.json()),
            "lost": r.lost.json(),
            "loss_share": r.loss_share.json(),
            "receiver_drops": r.receiver_drops.json(),
            "cpu_s_per_mpkt": r.cpu.json(),
            "machine_cpu_s_per_mpkt": r.machine_cpu.json(),
            "capture_latency_us": r.latency.map(|(a, b)| json!({"p50": a.json(), "p99": b.json()})),
            "crossed_share": r.crossed_share.map(|s| s.json()),
            "inconsistent_trials": r.inconsistent,
            "repeated_trials": r.repeated,
        })).collect::<Vec<_>>(),
        "ratios": summary.ratios.iter().map(|r| json!({
            "rate": r.rate,
            "full_over_rxdrop": r.rxdrop,
            "full_over_afpacket": r.afpacket,
            "full_over_xdpdrop": r.xdpdrop,
        })).collect::<Vec<_>>(),
        "trials": trials.iter().map(Trial::to_json).collect::<Vec<_>>(),
    })
}

/// The chart: received vs offered Mpps, one polyline per receiver through its medians, with
/// min-max whiskers and the y = x line (nothing lost).
pub fn svg(summary: &Summary) -> String {
    const W: f64 = 720.0;
    const H: f64 = 480.0;
    const LEFT: f64 = 70.0;
    const BOTTOM: f64 = 50.0;
    const TOP: f64 = 40.0;
    const RIGHT: f64 = 150.0;
    let max_v = summary
        .rows
        .iter()
        .flat_map(|r| [r.offered.max, r.received.max])
        .fold(1.0f64, f64::max)
        * 1.05;
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / max_v * pw;
    let y = |v: f64| TOP + ph - v / max_v * ph;
    let colours = [
        (ReceiverKind::Full, "#d62728"),
        (ReceiverKind::Rxdrop, "#1f77b4"),
        (ReceiverKind::AfPacket, "#2ca02c"),
        (ReceiverKind::XdpDrop, "#7f7f7f"),
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15">received vs offered frames per second (medians, min-max bars)</text>"#
    );
    // Axes, grid and ticks.
    for i in 0..=5 {
        let v = max_v * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            LEFT,
            y(v),
            LEFT + pw,
            y(v)
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{:.2}</text>"#,
            LEFT - 6.0,
            y(v) + 4.0,
            v / 1e6
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.2}</text>"#,
            x(v),
            TOP + ph + 18.0,
            v / 1e6
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        TOP + ph,
        LEFT + pw,
        TOP + ph
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/>"#,
        TOP + ph
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">offered Mpps</text>"#,
        LEFT + pw / 2.0,
        H - 12.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">received Mpps</text>"#,
        TOP + ph / 2.0,
        TOP + ph / 2.0
    );
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 4"/>"##,
        x(0.0),
        y(0.0),
        x(max_v),
        y(max_v)
    );
    for (i, (kind, colour)) in colours.iter().enumerate() {
        let mut rows: Vec<&Row> = summary
            .rows
            .iter()
            .filter(|r| r.receiver == *kind)
            .collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(|a, b| a.offered.median.total_cmp(&b.offered.median));
        let points: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.offered.median), y(r.received.median)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        for r in &rows {
            let (cx, lo, hi) = (x(r.offered.median), y(r.received.min), y(r.received.max));
            let _ = writeln!(
                s,
                r#"<line x1="{cx:.1}" y1="{lo:.1}" x2="{cx:.1}" y2="{hi:.1}" stroke="{colour}"/>"#
            );
            let _ = writeln!(
                s,
                r#"<circle cx="{cx:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"#,
                y(r.received.median)
            );
        }
        // The lines overlap wherever every receiver took all it was offered: name the last
        // (highest) point of each.
        if let Some(last) = rows.last() {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" fill="{colour}">{} {:.2}</text>"#,
                x(last.offered.median) + 7.0,
                y(last.received.median) + 4.0,
                kind.name(),
                last.received.median / 1e6
            );
        }
        let ly = TOP + 20.0 + 20.0 * i as f64;
        let lx = LEFT + pw + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/>"#,
            lx + 20.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 26.0,
            ly + 4.0,
            kind.name()
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_of_odd_even_and_empty() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            }
        );
        assert_eq!(
            Spread::of(&[4.0, 1.0, 2.0, 3.0]),
            Spread {
                median: 2.5,
                min: 1.0,
                max: 4.0
            }
        );
        assert_eq!(Spread::of(&[]), Spread::default());
    }
}

//! Live capture from the command line: `--interface` captures on the NIC itself, `--mirror`
//! first builds a mirror of the NIC (tc into a veth pair linewatch owns) and captures there.
//! Both print their start lines only once capture is ready, so a start error stays one line.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arc_swap::ArcSwap;
use linewatch_engine::aggregate::Snapshot;
use linewatch_engine::live::rss::RssSetup;
use linewatch_engine::live::run::{BlockOn, LiveConfig, Ready};
use linewatch_engine::live::xdp::{CaptureOptions, RedirectPorts};
use linewatch_engine::live::{self, mirror};
use linewatch_engine::pipeline::RunResult;

use crate::cli::Ports;
use crate::output::Printer;
use crate::plan::Plan;

/// What every mode of a run shares.
pub(crate) struct Session<'a> {
    /// The run's plan.
    pub(crate) plan: &'a Plan,
    /// Where the aggregator publishes (status line, metrics).
    pub(crate) snapshot: &'a Arc<ArcSwap<Snapshot>>,
    /// Set by a signal or `--duration`.
    pub(crate) stop: &'a AtomicBool,
    /// Lines that say what this run does, printed when capture is ready.
    pub(crate) startup: &'a [String],
}

/// `--interface IFACE`: makes the NIC's RSS symmetric first (unless `--rss keep`), and
/// restores it however the capture ended (its guard process does after a kill -9).
pub(crate) fn interface(
    session: &Session<'_>,
    iface: &str,
    printer: Printer,
) -> Result<RunResult, String> {
    let mut rss = RssSetup::apply(iface, session.plan.live.rss);
    let together = rss.symmetric().is_some();
    let config = live_config(session.plan, iface, iface.to_owned(), None, !together);
    let result = live::run::run(
        &config,
        Box::new(printer),
        Arc::clone(session.snapshot),
        session.stop,
        |ready| {
            for line in rss.lines() {
                eprintln!("linewatch: {line}");
            }
            for line in session.startup {
                eprintln!("{line}");
            }
            announce(ready, together);
        },
    );
    let pairing = match rss.symmetric() {
        Some(how) => format!("symmetric RSS ({how}): each connection on one queue"),
        None => CROSSING.to_owned(),
    };
    let restored = rss.restore();
    let mut result = result.map_err(|e| e.to_string())?;
    note_pairing(&mut result, pairing);
    if let Err(e) = restored {
        eprintln!("linewatch: warning: {e}");
    }
    Ok(result)
}

/// What the summary says when nothing keeps a connection's two directions on one queue.
const CROSSING: &str = "crossing: the interface's hash may put a connection's two directions \
                        on different queues; each worker hands segments to the worker that \
                        owns their connection (crossed_out, crossed_in per queue)";

/// Writes into the capture figures how a connection's two directions were kept on one queue
/// (one queue needs nothing).
fn note_pairing(result: &mut RunResult, pairing: String) {
    if let Some(c) = result.capture.as_mut() {
        c.pairing = if c.queues.len() <= 1 {
            "one queue".to_owned()
        } else {
            pairing
        };
    }
}

/// `--mirror IFACE`: removes a killed run's leftovers, mirrors IFACE into a new veth pair,
/// captures on it, and removes the mirror again however the capture ended.
pub(crate) fn mirror(
    session: &Session<'_>,
    iface: &str,
    printer: Printer,
) -> Result<RunResult, String> {
    for line in mirror::clean_leftovers() {
        eprintln!("linewatch: removed a killed run's leftover: {line}");
    }
    let spec = mirror::MirrorSpec {
        interface: iface.to_owned(),
        queues: u32::try_from(session.plan.live.mirror_queues).unwrap_or(1),
    };
    let mut m = mirror::Mirror::create(&spec).map_err(|e| e.to_string())?;
    let steering = m.steering().clone();
    let steered = matches!(steering, mirror::Steering::Steered { .. });
    let config = live_config(
        session.plan,
        m.capture_interface(),
        format!("{iface} (mirrored)"),
        Some(iface),
        !steered,
    );
    let result = live::run::run(
        &config,
        Box::new(printer),
        Arc::clone(session.snapshot),
        session.stop,
        |ready| {
            eprintln!(
                "linewatch: mirroring {iface} into {} ({}); {iface} is untouched",
                ready.interface, steering
            );
            for line in session.startup {
                eprintln!("{line}");
            }
            announce(ready, steered);
        },
    );
    let copy_dropped = m.dropped();
    let teardown = m.teardown();
    let mut result = result.map_err(|e| e.to_string())?;
    if let Some(c) = result.capture.as_mut() {
        c.copy_dropped = copy_dropped;
    }
    let pairing = match &steering {
        mirror::Steering::Steered { .. } => {
            "steered: linewatch's tc program puts both directions of each connection on one \
             queue (address-pair hash)"
                .to_owned()
        }
        mirror::Steering::Mirred { .. } => CROSSING.to_owned(),
    };
    note_pairing(&mut result, pairing);
    if let Err(e) = teardown {
        eprintln!("linewatch: warning: {e}");
    }
    Ok(result)
}

/// The engine's live settings for capturing on `interface` (shown as `label`). `mirrored` is
/// the NIC when `interface` is linewatch's own mirror veth of it; `cross`: nothing keeps a
/// connection's two directions on one queue, so the workers hand segments to each other.
fn live_config(
    plan: &Plan,
    interface: &str,
    label: String,
    mirrored: Option<&str>,
    cross: bool,
) -> LiveConfig {
    let own_mirror = mirrored.is_some();
    LiveConfig {
        interface: interface.to_owned(),
        label,
        queues: if own_mirror {
            None
        } else {
            plan.live.queues.clone()
        },
        cores: plan.live.cores.clone(),
        ports: match &plan.ports {
            Ports::Any => RedirectPorts::Any,
            Ports::List(list) => RedirectPorts::List(list.clone()),
        },
        capture: CaptureOptions {
            drop_others: own_mirror,
            // On linewatch's own mirror veth every frame is a copy: the workers see every new
            // connection, to any port. On --interface a SYN to an unmonitored port belongs to
            // the host and is left to it.
            all_syns: own_mirror,
            block: plan.live.block_scanners && !own_mirror,
            // The XDP program keeps other servers' traffic away from the workers: the kernel's
            // on --interface, dropped from the copy on the mirror veth.
            dst: plan.engine.worker.dst.networks().to_vec(),
        },
        block: plan.live.block_scanners.then(|| match mirrored {
            Some(nic) => BlockOn::Nic(nic.to_owned()),
            None => BlockOn::Capture,
        }),
        ring: plan.live.ring,
        zero_copy: plan.live.zero_copy,
        generic: plan.live.generic,
        idle: plan.live.idle,
        cross,
        worker: plan.engine.worker.clone(),
        aggregator: plan.engine.aggregator.clone(),
    }
}

/// Prints the line that says capture is live (tests and scripts wait for it). `steered`: the
/// frames reach the queues by a symmetric flow hash (linewatch's own mirror steers them).
fn announce(ready: &Ready, steered: bool) {
    for notice in &ready.notices {
        eprintln!("linewatch: notice: {notice}");
    }
    if ready.queues.len() > 1 && !steered {
        // Each queue has its own worker, and the NIC (or veth) picks a frame's queue. Unless it
        // hashes flows symmetrically, a request and its response arrive on different queues:
        // the workers hand segments to the flow's owner (engine's `cross`).
        eprintln!(
            "linewatch: notice: {} queues, not kept together by the interface: each worker \
             hands a connection's segments to the worker that owns it, so every response is \
             paired (crossed_out, crossed_in per queue in the summary)",
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

//! The exit summary: the final tallies as a model [`Summary`], for the report crate to render.

use linewatch_model::{Capture, Fragments, Guard, LatencyTable, QueueCapture, Summary, Traffic};
use linewatch_parser::{HttpError, WireError};

use crate::aggregate::{percentiles, TOTAL_TABLE_CAPACITY};
use crate::counters::Counter;
use crate::pipeline::{CaptureFigures, RunResult};
use crate::source::SourceEnd;
use crate::worker::time_of;

/// Builds the summary of a finished run. Every key the since-start tables hold is listed
/// (the text renderer shows the top ones, `--summary` writes them all).
pub fn summary(run: &RunResult) -> Summary {
    let total = &run.aggregated.total;
    let traffic = Traffic {
        packets: total.get(Counter::Packets),
        bytes: total.get(Counter::Bytes),
        dropped: run.capture.as_ref().map_or(0, |c| c.dropped()),
        non_http: total.get(Counter::NonHttp),
        malformed: total.get(Counter::Malformed),
        retransmitted: total.get(Counter::Retransmitted),
        undecoded: total.get(Counter::Undecoded) + run.unsupported_link + run.unreadable_records,
        flows_evicted: total.get(Counter::FlowsEvicted),
        unmatched_responses: total.get(Counter::UnmatchedResponses),
        bare_lf: total.get(Counter::BareLf),
    };
    let mut errors: Vec<(&'static str, u64)> = Vec::new();
    for e in HttpError::ALL {
        errors.push((e.name(), total.http_errors[e.index()]));
    }
    for e in WireError::ALL {
        errors.push((e.name(), total.wire_errors[e.index()]));
    }
    errors.push(("unsupported_link_type", run.unsupported_link));
    errors.push(("unreadable_record", run.unreadable_records));
    for c in [
        Counter::SequenceGaps,
        Counter::Reordered,
        Counter::ReorderOverlaps,
        Counter::ReorderReclaimed,
        Counter::OutOfWindow,
        Counter::OutOfSync,
        Counter::CarryOverflow,
        Counter::CarryReclaimed,
        Counter::IncompleteHeads,
        Counter::PendingOverflow,
        Counter::Unmonitored,
        Counter::StampInFuture,
        Counter::CaptureLatencyDropped,
        Counter::CrossingLost,
        Counter::HeldForPeer,
        Counter::PeerWaitExpired,
    ] {
        errors.push((c.name(), total.get(c)));
    }
    errors.retain(|(_, n)| *n > 0);
    let (truncated, _) = match &run.end {
        SourceEnd::Complete => (false, String::new()),
        SourceEnd::Truncated(why) => (true, why.clone()),
    };
    Summary {
        source: run.source.clone(),
        truncated,
        first_packet: run.packet_times.map(|(first, _)| time_of(first)),
        last_packet: run.packet_times.map(|(_, last)| time_of(last)),
        traffic,
        errors,
        total: run.aggregated.retained.clone().unwrap_or_else(|| {
            let mut b = total.breakdown(TOTAL_TABLE_CAPACITY);
            b.seconds = run.aggregated.span_seconds();
            b
        }),
        alerts: run.aggregated.alerts.clone(),
        latency: vec![
            LatencyTable {
                name: "response_us",
                title: "response latency (request to first response byte)",
                unit: "us",
                percentiles: percentiles(&total.response_latency_us.histogram()),
            },
            LatencyTable {
                name: "capture_us",
                title: "capture latency (generator send stamp to worker)",
                unit: "us",
                percentiles: percentiles(&total.capture_latency_us),
            },
            LatencyTable {
                name: "batch_service_ns",
                title: "batch service time (one worker, one batch)",
                unit: "ns",
                percentiles: percentiles(&total.batch_service_ns),
            },
        ],
        peak_rss_bytes: peak_rss_bytes(),
        capture: run.capture.as_ref().map(capture),
        guard: Guard {
            scan_ports: run.guard.scan_ports,
            scan_window_secs: run.guard.scan_window_secs,
            allow: run.guard.allow.clone(),
            blocking_on: run.guard.blocking_on.clone(),
            new_connections: total.get(Counter::NewConnections),
            connections_unlogged: total.get(Counter::ConnectionsUnlogged),
            scanners_flagged: run.aggregated.scan.flagged,
            scans_allowed: run.aggregated.scan.allowed,
            syns_from_flagged: run.aggregated.scan.from_flagged,
            blocked_syns: run.aggregated.blocked_syns,
            sources_evicted: run.aggregated.scan.sources_evicted,
        },
        fragments: Fragments {
            fragments: total.get(Counter::Fragments),
            reassembled: total.get(Counter::FragmentsReassembled),
            timed_out: total.get(Counter::FragmentsTimedOut),
            evicted: total.get(Counter::FragmentsEvicted),
            overlap: total.get(Counter::FragmentsOverlap),
            duplicate: total.get(Counter::FragmentsDuplicate),
            too_large: total.get(Counter::FragmentsTooLarge),
            invalid: total.get(Counter::FragmentsInvalid),
        },
    }
}

fn capture(c: &CaptureFigures) -> Capture {
    let secs = |ns: u64| ns as f64 / 1e9;
    Capture {
        interface: c.interface.clone(),
        xdp_mode: c.mode.clone(),
        zero_copy: c.zero_copy,
        xdp_seen: c.xdp.seen,
        xdp_redirected: c.xdp.redirected,
        xdp_other: c.xdp.other,
        xdp_no_socket: c.xdp.no_socket,
        xdp_fragments: c.xdp.fragments,
        xdp_fragments_ahead: c.xdp.fragments_ahead,
        xdp_fragments_unwanted: c.xdp.fragments_unwanted,
        wall_seconds: secs(c.wall_ns),
        pairing: c.pairing.clone(),
        copy_dropped: c.copy_dropped,
        queues: c
            .queues
            .iter()
            .map(|q| QueueCapture {
                queue: q.queue,
                core: q.core,
                frames: q.frames,
                rx_dropped: q.stats.rx_dropped,
                rx_ring_full: q.stats.rx_ring_full,
                fill_ring_empty: q.stats.fill_ring_empty,
                rx_invalid_descs: q.stats.rx_invalid_descs,
                cpu_seconds: secs(q.cpu_ns),
                unmatched_responses: q.unmatched_responses,
                crossed_out: q.crossed.sent,
                crossed_in: q.crossed.received,
            })
            .collect(),
    }
}

/// This process's peak resident set size, from `/proc/self/status` (`VmHWM`, in kB).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

//! `--mirror` on several queues pairs every response (issue 16, item 1): the mirror's tc
//! program steers both directions of each connection to one queue of the mirror veth (by a
//! symmetric hash of the address pair), so the worker that sees a request also sees its
//! response, on 1, 2 or 4 queues alike.
//!
//! The truth is nginx's access log, as in live_nginx.rs: wrk (-t2 -c64, 2 s) against nginx in
//! the lab, once from each of N client addresses chosen so that their address pairs hash to
//! every one of the N queues, `linewatch --mirror <server veth> --workers N`; the summary must
//! hold nginx's requests, a response for each, no unmatched response, and a response latency
//! for every response, and every queue must carry frames (the flows were spread, not all put
//! on one queue). And kill -9 of a steering run leaves no qdisc, filter, BPF program, file or
//! veth.
//!
//! Needs root, ip, tc, nginx, wrk (curl for the lab's readiness check). Without them these tests
//! print a note and pass; with `CI` set they fail. Run them (as root):
//!
//! ```text
//! cargo test --profile ci --test live_mirror_queues -- --nocapture --test-threads 1
//! ```

#![allow(clippy::print_stdout)] // The figures are the tests' report.

mod common;
mod live;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use live::lab::{Lab, CLIENT_ADDR, MONITORED_PORT, SERVER_ADDR};
use live::traffic::{wrk_low_priority, WrkRun};
use live::{assert_matches_access_log, lab_for, serial, Linewatch};

const TOOLS: &[&str] = &["nginx", "curl", "wrk"];

/// wrk's threads, connections and seconds (per client address): the issue's load.
const WRK_THREADS: u32 = 2;
const WRK_CONNECTIONS: u32 = 64;
const WRK_SECS: u32 = 2;

/// Where the extra client addresses are looked for (10.202.0.X, in the lab's /24).
const EXTRA_CLIENT_HOSTS: std::ops::RangeInclusive<u8> = 10..=250;

/// After kill -9, how long linewatch's leftovers (its watchdog's work) may take to disappear.
const KILL_CLEANUP: Duration = Duration::from_secs(2);

/// What the start line says when the steering program is in use on more than one queue.
const STEERED: &str = "BPF steering: both directions of each connection on one of";

/// murmur3's finalizer, as `fmix` in engine/bpf/mirror_steer.bpf.c.
fn fmix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The queue the steering program picks for IPv4 addresses `a` and `b` (`pair_hash` in
/// mirror_steer.bpf.c, modulo `queues`): the test's own copy, to choose client addresses.
fn steered_queue(a: Ipv4Addr, b: Ipv4Addr, queues: u32) -> u32 {
    let (a, b) = (u32::from(a), u32::from(b));
    fmix(a.min(b) ^ fmix(a.max(b) ^ 0x9e37_79b9)) % queues
}

/// One client address per queue: the lab's own for one queue, otherwise the first addresses
/// of [`EXTRA_CLIENT_HOSTS`] whose pair with the server lands on a queue not yet covered.
fn client_addresses(queues: u32) -> Vec<Ipv4Addr> {
    let server: Ipv4Addr = SERVER_ADDR.parse().expect("server address");
    if queues == 1 {
        return vec![CLIENT_ADDR.parse().expect("client address")];
    }
    let mut by_queue = vec![None; queues as usize];
    for host in EXTRA_CLIENT_HOSTS {
        let addr = Ipv4Addr::new(10, 202, 0, host);
        let slot = &mut by_queue[steered_queue(addr, server, queues) as usize];
        if slot.is_none() {
            *slot = Some(addr);
        }
    }
    by_queue
        .into_iter()
        .map(|a| a.expect("some client address for every queue"))
        .collect()
}

/// Makes the client namespace send to the server from `addr` (added to its veth if new).
fn send_from(lab: &Lab, addr: Ipv4Addr) {
    let veth = lab.client_veth.as_str();
    let with_prefix = format!("{addr}/24");
    if addr.to_string() != CLIENT_ADDR {
        lab.client()
            .ip(&["addr", "add", &with_prefix, "dev", veth])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let to = format!("{SERVER_ADDR}/32");
    let src = addr.to_string();
    lab.client()
        .ip(&["route", "replace", &to, "dev", veth, "src", &src])
        .unwrap_or_else(|e| panic!("{e}"));
}

/// `wrk -t2 -c64 -d2s` on the monitored port, at the lowest priority.
fn load(lab: &Lab) -> WrkRun {
    wrk_low_priority(
        lab,
        WRK_THREADS,
        WRK_CONNECTIONS,
        WRK_SECS,
        &Lab::url(MONITORED_PORT, "/api/items"),
    )
}

/// One row of the pairing table.
struct Pairing {
    workers: u32,
    nginx: u64,
    requests: u64,
    responses: u64,
    unmatched: u64,
    latency_count: u64,
    frames: Vec<u64>,
}

/// Runs of one worker count at most: a run in which the kernel dropped copies on their way
/// into the mirror veth (its 256-frame ring full while the host is busy; linewatch reports
/// them as `copy_dropped`) cannot match nginx's log, and says nothing about pairing: it is run
/// again, in a new lab. Seen in CI about once in four runs, 157 of 379,617 frames.
const ATTEMPTS: u32 = 3;

/// `linewatch --mirror <server veth> --workers N` through the wrk load, in a lab of its own;
/// asserts the summary against nginx's log and returns the figures.
fn mirror_run(workers: u32) -> Option<Pairing> {
    for attempt in 1..=ATTEMPTS {
        let (lab, summary, started, sent) = mirror_attempt(workers)?;
        let dropped = summary["capture"]["copy_dropped"].as_u64().unwrap_or(0);
        if dropped > 0 && attempt < ATTEMPTS {
            println!(
                "--workers {workers}, attempt {attempt}: the kernel dropped {dropped} copies \
                 before capture (copy_dropped); once more"
            );
            continue;
        }
        return Some(judge(workers, &lab, &summary, &started, &sent));
    }
    None
}

/// One run of [`mirror_run`]: the lab, linewatch's summary, its start lines, and what wrk
/// sent from each client address.
fn mirror_attempt(workers: u32) -> Option<(Lab, serde_json::Value, String, Vec<String>)> {
    let lab = lab_for("mirror_pairs_every_response_on_any_queues", TOOLS)?;
    let n = workers.to_string();
    let args = [
        "--mirror",
        lab.server_veth.as_str(),
        "--workers",
        &n,
        "--port",
        "8080",
    ];
    let lw = Linewatch::ready(&lab, &args, &lab.dir.join("live.json"), live::READY_TIMEOUT);
    let started = lw.stderr_text();
    let mut sent = Vec::new();
    for addr in client_addresses(workers) {
        send_from(&lab, addr);
        let wrk = load(&lab);
        sent.push(format!(
            "{addr}: {} requests, {:.0} req/s",
            wrk.requests, wrk.req_per_s
        ));
    }
    std::thread::sleep(live::SETTLE);
    let summary = lw.interrupt();
    Some((lab, summary, started, sent))
}

/// Asserts a run's summary against nginx's log; returns the figures.
fn judge(
    workers: u32,
    lab: &Lab,
    summary: &serde_json::Value,
    started: &str,
    sent: &[String],
) -> Pairing {
    let label = format!("linewatch --mirror --workers {workers} vs nginx");
    assert_matches_access_log(&label, lab, summary);

    let field = |v: &serde_json::Value, what: &str| {
        v.as_u64()
            .unwrap_or_else(|| panic!("{label}: summary has no {what}: {summary}"))
    };
    let frames: Vec<u64> = summary["capture"]["queues"]
        .as_array()
        .unwrap_or_else(|| panic!("{label}: no capture.queues in the summary: {summary}"))
        .iter()
        .map(|q| field(&q["frames"], "capture.queues[].frames"))
        .collect();
    let row = Pairing {
        workers,
        nginx: live::access_log::read(&lab.access_log()).len() as u64,
        requests: field(&summary["requests"], "requests"),
        responses: field(&summary["responses"], "responses"),
        unmatched: field(&summary["unmatched_responses"], "unmatched_responses"),
        latency_count: field(
            &summary["latency"]["response_us"]["count"],
            "latency.response_us.count",
        ),
        frames,
    };
    println!(
        "wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_SECS}s from {}; unmatched responses {}, \
         latency count {}, frames per queue {:?}",
        sent.join(", "),
        row.unmatched,
        row.latency_count,
        row.frames
    );
    assert_eq!(row.unmatched, 0, "{label}: unmatched responses");
    assert_eq!(
        row.latency_count, row.responses,
        "{label}: every response has a latency"
    );
    assert_eq!(
        row.frames.len(),
        workers as usize,
        "{label}: one queue per worker"
    );
    // The summary says how the flows were kept together, and that no queue had to pair a
    // response it could not.
    let capture = &summary["capture"];
    let pairing = capture["pairing"].as_str().unwrap_or_default();
    let expected = if workers > 1 { "steered" } else { "one queue" };
    assert!(
        pairing.starts_with(expected),
        "{label}: pairing {pairing:?}"
    );
    for q in capture["queues"].as_array().into_iter().flatten() {
        assert_eq!(
            q["unmatched_responses"].as_u64(),
            Some(0),
            "{label}: queue {}",
            q["queue"]
        );
    }
    if workers > 1 {
        assert!(
            started.contains(STEERED),
            "{label}: the start line does not say the flows are steered:\n{started}"
        );
        // One client address per queue: a queue with no frame means the flows were not spread.
        assert!(
            row.frames.iter().all(|&f| f > 0),
            "{label}: a queue got no frame: {:?}",
            row.frames
        );
    }
    row
}

/// `--mirror --workers 1, 2, 4`: every response paired, on every number of queues.
#[test]
fn client_addresses_cover_every_queue() {
    for queues in [1, 2, 4] {
        let server: Ipv4Addr = SERVER_ADDR.parse().expect("server address");
        let mut covered: Vec<u32> = client_addresses(queues)
            .iter()
            .map(|&a| steered_queue(a, server, queues))
            .collect();
        covered.sort_unstable();
        assert_eq!(covered, (0..queues).collect::<Vec<_>>());
    }
    // Symmetric, like the program's hash.
    let (a, b) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(192, 168, 7, 9));
    assert_eq!(steered_queue(a, b, 7), steered_queue(b, a, 7));
}

#[test]
fn mirror_pairs_every_response_on_any_queues() {
    let _serial = serial();
    let mut rows = Vec::new();
    for workers in [1, 2, 4] {
        match mirror_run(workers) {
            Some(row) => rows.push(row),
            None => return,
        }
    }
    println!("\n| workers | nginx log | requests | responses | unmatched | latency count | frames per queue |");
    println!("|--------:|----------:|---------:|----------:|----------:|--------------:|------------------|");
    for r in &rows {
        let frames: Vec<String> = r.frames.iter().map(u64::to_string).collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.workers,
            r.nginx,
            r.requests,
            r.responses,
            r.unmatched,
            r.latency_count,
            frames.join(" / ")
        );
    }
}

/// The id of the BPF program in a `tc filter show` listing of the steering filter (`id N`).
fn program_id(show: &str) -> Option<u32> {
    let mut words = show.split_whitespace();
    while let Some(w) = words.next() {
        if w == "id" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// True while the kernel still knows BPF program `id` (BPF_PROG_GET_FD_BY_ID succeeds).
#[allow(unsafe_code)]
fn program_exists(id: u32) -> bool {
    /// `BPF_PROG_GET_FD_BY_ID` from <linux/bpf.h>.
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    // union bpf_attr for the command: prog_id, next_id, open_flags.
    let attr: [u32; 3] = [id, 0, 0];
    // SAFETY: the bpf syscall reads 12 bytes from `attr`, which lives across the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_GET_FD_BY_ID,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    if let Ok(fd) = libc::c_int::try_from(fd) {
        if fd >= 0 {
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(fd) };
            return true;
        }
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOENT)
}

/// What of a killed steering run is still there: veths, XDP, clsact, filters, the program,
/// the object file.
fn leftovers(lab: &Lab, pid: i32, programs: &[u32]) -> Vec<String> {
    let mut found = Vec::new();
    for line in lab.server_links().lines() {
        if line.contains("lwm") || line.contains("lwc") || line.contains("prog/xdp") {
            found.push(format!("link: {line}"));
        }
    }
    let veth = lab.server_veth.as_str();
    let qdiscs = lab.tc_server(&["qdisc", "show", "dev", veth]);
    if qdiscs.contains("clsact") {
        found.push(format!("clsact still on {veth}: {qdiscs}"));
        for dir in ["ingress", "egress"] {
            let filters = lab.tc_server(&["filter", "show", "dev", veth, dir]);
            if !filters.trim().is_empty() {
                found.push(format!("{dir} filters: {filters}"));
            }
        }
    }
    for &id in programs {
        if program_exists(id) {
            found.push(format!("BPF program id {id} still loaded"));
        }
    }
    let object = format!("/run/linewatch/lwm{pid}-steer.o");
    if Path::new(&object).exists() {
        found.push(format!("{object} still there"));
    }
    found
}

/// kill -9 of `--mirror --workers 4`: within 2 s its watchdog has removed the steering filters
/// (and so their program), the clsact qdisc, the veth pair with its XDP program, and the file.
#[test]
fn kill_9_leaves_no_steering_behind() {
    let _serial = serial();
    let Some(lab) = lab_for("kill_9_leaves_no_steering_behind", TOOLS) else {
        return;
    };
    let veth = lab.server_veth.clone();
    let args = ["--mirror", &veth, "--workers", "4", "--port", "8080"];
    let lw = Linewatch::ready(
        &lab,
        &args,
        &lab.dir.join("killed.json"),
        live::READY_TIMEOUT,
    );
    let pid = lw.pid();
    let mut programs = Vec::new();
    for dir in ["ingress", "egress"] {
        let show = lab.tc_server(&["filter", "show", "dev", &veth, dir]);
        println!("{dir}: {}", show.trim());
        assert!(
            show.contains(&format!(" lwm{pid}-steer.o:[tc] direct-action")),
            "no steering filter on {veth} {dir}:\n{show}"
        );
        let id = program_id(&show).unwrap_or_else(|| panic!("no program id in:\n{show}"));
        assert!(program_exists(id), "program {id} is not loaded");
        programs.push(id);
    }
    load(&lab);
    println!("linewatch pid {pid} steered wrk's load; kill -9");
    lw.kill_9();
    let deadline = Instant::now() + KILL_CLEANUP;
    loop {
        let found = leftovers(&lab, pid, &programs);
        if found.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{KILL_CLEANUP:?} after kill -9:\n{}",
            found.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("nothing left after kill -9 (programs {programs:?} unloaded)");
}

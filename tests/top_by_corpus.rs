//! `--top-by` is exact on real captures: `linewatch --read F --top-by client,server,port,
//! header:host` against the requests tshark found in every capture of `../shared/corpus`
//! (oracle: `../shared/corpus/oracle/F.tsv`, one row per frame with its addresses, ports and
//! Host field).
//!
//! Per request of the oracle: `client` is its frame's source address, `server` its destination
//! address, `port` its destination port, `header:host` its Host field as sent (`-` when absent).
//! Each table's counts must equal those of the oracle, key for key, with 1 worker and with 4,
//! and no count may be an estimate. Bytes: every table counts each request once with its
//! request bytes, so each table's bytes add up to the summary's `request_bytes`; and a
//! response-header table counts each response once.

#![allow(clippy::print_stdout)] // The figures are the test's report.

mod common;

use std::collections::BTreeMap;

use common::{corpus_captures as captures, summary_of, top_by_table as table_of};
use linewatch_testkit::corpus;

/// The keys compared, as given to `--top-by`.
const KEYS: [&str; 4] = ["client", "server", "port", "header:host"];

/// Per key of [`KEYS`], requests per value, from tshark's rows.
fn oracle_tables(capture: &str) -> Vec<BTreeMap<String, u64>> {
    let tsv = common::OracleTsv::read(capture).expect("oracle for a capture");
    let col = |name: &str| tsv.col(name);
    let (src4, src6, dst4, dst6, dport, method, host) = (
        col("ip.src"),
        col("ipv6.src"),
        col("ip.dst"),
        col("ipv6.dst"),
        col("tcp.dstport"),
        col("http.request.method"),
        col("http.host"),
    );
    let mut tables = vec![BTreeMap::new(); KEYS.len()];
    for f in tsv.rows() {
        let requests = f[method].split('|').filter(|m| !m.is_empty()).count();
        if requests == 0 {
            continue;
        }
        let either = |v4: usize, v6: usize| {
            let a = if f[v4].is_empty() { f[v6] } else { f[v4] };
            // Normalised as std prints addresses (tshark may spell IPv6 otherwise).
            a.parse::<std::net::IpAddr>()
                .unwrap_or_else(|e| panic!("{capture}: address {a:?}: {e}"))
                .to_string()
        };
        let hosts: Vec<&str> = f[host].split('|').collect();
        for i in 0..requests {
            let host = hosts
                .get(i)
                .copied()
                .filter(|h| !h.is_empty())
                .unwrap_or("-");
            let values = [
                either(src4, src6),
                either(dst4, dst6),
                f[dport].to_owned(),
                host.to_owned(),
            ];
            for (table, value) in tables.iter_mut().zip(values) {
                *table.entry(value).or_default() += 1;
            }
        }
    }
    tables
}

#[test]
fn top_by_tables_agree_with_tshark_on_every_capture() {
    let captures = captures();
    if captures.is_empty() {
        return;
    }
    let keys = format!("{},response-header:content-type", KEYS.join(","));
    let args = ["--top-by", keys.as_str(), "--top", "1000"];
    println!("\n| capture | requests | clients | servers | ports | hosts |");
    println!("|---|---|---|---|---|---|");
    for capture in &captures {
        let file = corpus::file(&format!("pcaps/{capture}")).expect("listed capture");
        let oracle = oracle_tables(capture);
        let (four, _) = summary_of(&file, &[&args[..], &["--workers", "4"]].concat());
        let (one, _) = summary_of(&file, &[&args[..], &["--workers", "1"]].concat());
        assert_eq!(
            four["top_by"], one["top_by"],
            "{capture}: 1 and 4 workers differ"
        );
        let requests = four["requests"].as_u64().expect("requests");
        let request_bytes = four["request_bytes"].as_u64().expect("request_bytes");
        let mut sizes = Vec::new();
        for (by, want) in KEYS.iter().zip(&oracle) {
            let (ours, total) = table_of(&four, by);
            let counts: BTreeMap<String, u64> =
                ours.iter().map(|(k, (n, _))| (k.clone(), *n)).collect();
            assert_eq!(&counts, want, "{capture}: --top-by {by}");
            assert_eq!(total, requests, "{capture}: {by} counted every request");
            let bytes: u64 = ours.values().map(|(_, b)| b).sum();
            assert_eq!(bytes, request_bytes, "{capture}: {by} bytes");
            sizes.push(want.len());
        }
        let (_, responses) = table_of(&four, "response-header:content-type");
        assert_eq!(
            Some(responses),
            four["responses"].as_u64(),
            "{capture}: every response counted once"
        );
        println!(
            "| {capture} | {requests} | {} | {} | {} | {} |",
            sizes[0], sizes[1], sizes[2], sizes[3]
        );
    }
}

#[test]
fn bad_top_by_keys_are_one_line_errors() {
    for (arg, want) in [
        ("host", "is not a table key"),
        ("header:", "is not a header name"),
        ("header:a b", "is not a header name"),
        ("client,client", "given twice"),
    ] {
        let out = common::linewatch(&["--read", "/dev/null", "--top-by", arg]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--top-by {arg}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "--top-by {arg}: {err}");
        assert!(err.contains(want), "--top-by {arg}: {err}");
    }
}

#[test]
fn json_top_by_events_cover_every_request_once() {
    let Some(file) = corpus::file("pcaps/chrissanders__http_espn.pcapng") else {
        return;
    };
    let (summary, out) = summary_of(
        &file,
        &[
            "--json",
            "--top-by",
            "client,response-header:content-type",
            "--report-interval",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v: &serde_json::Value| v["type"] == "top_by")
        .collect();
    let total = |by: &str| -> u64 {
        events
            .iter()
            .filter(|e| e["by"] == by)
            .map(|e| {
                assert_eq!(e["span_secs"], 1, "{e}");
                e["total"].as_u64().expect("total")
            })
            .sum()
    };
    assert!(events.len() >= 4, "{} top_by events", events.len());
    assert_eq!(Some(total("client")), summary["requests"].as_u64());
    assert_eq!(
        Some(total("response-header:content-type")),
        summary["responses"].as_u64()
    );
}

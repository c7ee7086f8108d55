//! linewatch's bench rig: lab set-up (network namespaces and a veth pair), the traffic
//! generator, packets-per-second, drop and latency measurement beside the rxdrop, AF_PACKET and
//! XDP_DROP baselines, and the demo.
//!
//! | module | what |
//! |---|---|
//! | [`capture`] | deterministic pcap files with their exact truth (replay tests, `perf/replay.sh`) |
//! | [`lab`] | the namespaces and the veth pair; interface counters; threaded NAPI |
//! | [`frames`] | the generator's prepared frames: varied requests, sequence numbers, send stamps |
//! | [`generator`] | AF_XDP TX (or AF_PACKET + PACKET_QDISC_BYPASS + sendmmsg) at a scripted rate |
//! | [`receivers`] | linewatch, rxdrop, tcpdump and XDP_DROP as processes in the lab |
//! | [`rig`] | the trials, alternated and repeated, and their counting checks |
//! | [`output`] | table, JSON and SVG chart |
//! | [`demo`] | the README's first command |
//!
//! The binary is `bench-rig` (built with linewatch, from the root package); [`cli::main`] is
//! its entry point.

// Unsafe code only where the rig talks to the kernel directly: AF_XDP and AF_PACKET sending in
// `generator`, signals and uids in `sys`; each block has its `// SAFETY:` argument.
#![deny(unsafe_code)]

pub mod capture;
pub mod cli;
pub mod demo;
pub mod frames;
#[allow(unsafe_code)] // AF_XDP TX rings, AF_PACKET sockets, sendmmsg
pub mod generator;
pub mod lab;
pub mod output;
pub mod receivers;
pub mod rig;
#[allow(unsafe_code)] // kill(2), geteuid(2), sysconf(3)
pub mod sys;

//! linewatch's bench rig: lab set-up (network namespaces and veth pairs), the traffic
//! generator, packets-per-second, drop and latency measurement beside the rxdrop, AF_PACKET and
//! XDP_DROP baselines, and the demo.
//!
//! Built so far: [`capture`], the deterministic pcap generator the replay tests and the replay
//! benchmark (`perf/replay.sh`) read, with the exact counts a perfect monitor must find
//! ([`capture::CaptureTruth`]). The lab, live generator and demo come with issue "4/5". The
//! parser benchmarks live in `perf/`.

pub mod capture;

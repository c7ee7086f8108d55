//! linewatch's bench rig: lab set-up (network namespaces and veth pairs), the traffic
//! generator, packets-per-second, drop and latency measurement beside the rxdrop, AF_PACKET and
//! XDP_DROP baselines, and the demo.
//!
//! Nothing is implemented here yet (issue "4/5" adds it). The parser benchmarks live in
//! `perf/`.

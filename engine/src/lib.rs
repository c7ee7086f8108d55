//! linewatch's engine: capture sources (AF_XDP live, pcap/pcapng replay), the XDP program,
//! per-queue workers, per-core counters, the flow table, the epoch-swapped aggregator and
//! alerting.
//!
//! Nothing is implemented here yet: the offline engine is issue "2/5" and live capture is
//! issue "3/5". Until then this crate only names where that code will live; the per-packet
//! parsing it will call is in `linewatch-parser`.

//! What linewatch's tests and its bench rig share, written once.
//!
//! - [`frame`]: hand-made Ethernet/IPv4/IPv6/TCP/UDP frames with correct lengths and checksums
//!   (smoltcp-style `Repr` structs that emit into a buffer), and classic pcap files of them;
//! - [`lab`]: network namespaces joined by veth pairs (N queues, addresses, commands inside),
//!   removed on every path (panics and early returns included), leftovers of killed runs too;
//! - [`corpus`]: where `../shared/corpus` is, and failing (not skipping) when `CI` is set and it
//!   is missing;
//! - [`tools`]: checks for root and the programs a test needs, and the rule for a test that
//!   cannot run (with `CI` set it fails; otherwise it says why and skips).

#![forbid(unsafe_code)]

pub mod corpus;
pub mod frame;
pub mod lab;
pub mod tools;

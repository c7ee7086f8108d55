//! What linewatch's tests and its bench rig share, written once.
//!
//! - [`frame`]: hand-made Ethernet/IPv4/IPv6/TCP/UDP frames with correct lengths and checksums
//!   (smoltcp-style `Repr` structs that emit into a buffer), and classic pcap files of them;
//! - [`lab`]: network namespaces joined by veth pairs, removed on every path (panics included);
//! - [`corpus`]: where `../shared/corpus` is, and failing (not skipping) when `CI` is set and it
//!   is missing;
//! - [`tools`]: checks for the system tools a test needs.

#![forbid(unsafe_code)]

pub mod corpus;
pub mod frame;
pub mod lab;
pub mod tools;

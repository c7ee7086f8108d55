//! Deterministic HTTP capture files: pcap traffic whose every count is known before it is read.
//!
//! # Contract
//!
//! [`write_capture`] turns a [`CaptureSpec`] into a classic pcap file (LINKTYPE_ETHERNET,
//! microsecond timestamps, little-endian) and returns its [`CaptureTruth`]: what a perfect
//! monitor must count on it. The same spec, seed included, always gives the same bytes.
//!
//! - **Exact rates.** Request `i` of second `s` (seconds counted from `start_unix_secs`, phase
//!   after phase) is stamped `s + i / rate` seconds, floored to the microsecond, so every second
//!   holds exactly its phase's rate and [`CaptureTruth::requests_per_second`] follows the
//!   timestamps exactly.
//! - **Honest frames.** Ethernet II (optionally one 802.1Q tag), IPv4 (DF, correct header
//!   checksum) or IPv6, TCP with a correct checksum and an MSS option on SYNs. Frames shorter
//!   than the Ethernet minimum are padded to 60 bytes, as a NIC sends them.
//! - **Coherent TCP.** Each connection has seeded initial sequence numbers, a SYN / SYN-ACK /
//!   ACK handshake and a FIN exchange (when [`CaptureSpec::handshake`] is set), sequence numbers
//!   advancing by payload length and acknowledgements that match, so a reassembler such as
//!   tshark follows every stream. A client 4-tuple is never reused while a connection on it is
//!   still open.
//! - **Sequential keep-alive.** A connection carries [`CaptureSpec::requests_per_connection`]
//!   requests one after another: the next request starts only after the response to the last
//!   one and the client's ACK of it. When a rate is too high for the connections already open,
//!   another one is opened; timestamps never move to fit the connections.
//! - **Ordered output.** Frames are written in timestamp order (ties in creation order).
//!
//! # Data flow
//!
//! ```text
//! requests in time order ──► idle connection with the oldest free time, or a new one
//!     ──► frames built at once (handshake, request, response, client ACK, FIN exchange)
//!     ──► pending heap ordered by (timestamp, creation order)
//!     ──► flushed to the PcapWriter once no later request can create an earlier frame
//! ```
//!
//! Memory is bounded by the traffic in flight (a few round trips of frames and the open
//! connections), plus the truth's key maps.
//!
//! | module | what |
//! |---|---|
//! | `spec` | [`CaptureSpec`], its validation, and [`CaptureTruth`] |
//! | `generator` | the data flow above: [`write_capture`], [`write_capture_file`] |
//! | `connection` | free 4-tuples, each connection's sequence numbers, the pending queue |
//! | `choice` | seeded choices: SplitMix64, heavy-key slots, pool walks |
//! | `shape` | what requests and responses say |
//! | `addressing` | addresses, ports, MACs, and the gaps inside an exchange |
//! | `layout` | one segment as an Ethernet frame (testkit's frame builder) |
//!
//! # Keys
//!
//! Sections are `/s{n}`, hosts `h{n}.example`, user agents `agent/{n}`, `n` counted from 0.
//! Heavy (section, host) pairs take exactly their per-mille share of every block of 1000
//! consecutive requests (the slots are shuffled once from the seed). The other requests walk
//! each pool in a seeded order that visits every key once before any key twice, so a pool of N
//! keys shows min(N, requests) distinct keys and no key is counted more than one above another.
//! Targets are the section, sometimes followed by a sub-path (`/s12/page7`) and sometimes by a
//! query (`?id=5`), so section extraction is exercised. About 90% of requests are GET, 7% POST
//! (with a small body in the same segment) and 3% HEAD; about 90% of responses are 200, 5% 404,
//! 3% 301 and 2% 500. Responses to HEAD carry a Content-Length and no body.

mod addressing;
mod choice;
mod connection;
mod generator;
mod layout;
mod shape;
mod spec;

pub(crate) use choice::SplitMix64;
pub use generator::{write_capture, write_capture_file};
pub use spec::{CaptureSpec, CaptureTruth, HeavyKey, KeySpec, Phase};

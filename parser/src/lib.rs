//! linewatch's per-packet parsing: zero-copy wire views and HTTP/1.x start lines.
//!
//! Every packet linewatch sees goes through this crate first, so it is written to three rules:
//!
//! - **Borrow, never allocate.** Every view and every parsed field is a slice of the caller's
//!   buffer; nothing here needs `alloc`, and the crate is `#![no_std]`.
//! - **Never panic, never read out of bounds.** Each view has a checked constructor
//!   (`new_checked`); once it returns `Ok`, no accessor of that view panics. The HTTP parser
//!   checks every index it uses. Hostile and random input is exercised by the property test in
//!   `tests/hostile.rs`.
//! - **Errors are counters.** Hot-path errors are small `Copy` enums ([`WireError`],
//!   [`HttpError`]) with an `index()` into a fixed array of counters and a `name()` for reports.
//!   They are counted, not propagated.
//!
//! Data flow for one frame:
//!
//! ```text
//! frame ──wire::decode_frame(LinkType, &[u8])──► wire::TcpSegment { addrs, ports, seq, flags, payload, trailer }
//!                                                        │
//!       payload ──http::requests(&[u8]) / http::responses(&[u8])──► Request / Response, one per message
//! ```
//!
//! Checksums are not verified: captures taken on the sending host carry checksums that the NIC
//! fills in later, so a checksum check would throw away good traffic.

#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod counter_enum;

pub mod http;
pub mod wire;

pub use http::HttpError;
pub use wire::WireError;

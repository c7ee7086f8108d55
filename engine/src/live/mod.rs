//! Live capture: the XDP program, one AF_XDP socket and one pinned worker per rx queue, and
//! the `--mirror` set-up. The workers, epochs and aggregator are the same as offline; only the
//! source of frames and the clock differ.
//!
//! ```text
//!  NIC rx queue q ──XDP program (xdp.rs): monitored TCP port?──yes──► xsks_map[q] ──► AF_XDP socket q
//!                                        └──no──► kernel stack (XDP_PASS)            │ rx ring, 16k
//!                                                                                    ▼
//!                     worker q (run.rs), pinned to a core: batch → Worker::process_frame → epochs
//! ```
//!
//! Modules: [`xdp`] loads and attaches the program through a bpf_link; [`xsk`] opens the
//! sockets (afxdp crate); [`run`] runs the workers on wall-clock epochs; [`rxdrop`] is the
//! same capture path without the engine (the bench rig's baseline); `sys` holds the system
//! facts (privileges, queues, memlock, errno text).

use std::fmt;

mod guard;
pub mod mirror;
pub mod run;
pub mod rxdrop;
pub mod sys;
/// The AF_XDP sockets among this process's file descriptors (the bench rig's generator finds
/// its tx sockets with it, as [`xsk`] does its rx sockets).
pub use sys::{interface_addresses, xdp_socket_fds};
pub mod xdp;
pub mod xsk;

/// Why live capture cannot start: one line with the cause and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveError(pub String);

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LiveError {}

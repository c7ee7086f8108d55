//! Live capture: the XDP program, one AF_XDP socket and one pinned worker per rx queue, and
//! the `--mirror` set-up. The workers, epochs and aggregator are the same as offline; only the
//! source of frames and the clock differ.
//!
//! ```text
//!  NIC rx queue q ──XDP program (xdp.rs): monitored TCP port (and --dst address)?──yes──► xsks_map[q] ──► AF_XDP socket q
//!                                        └──no──► kernel stack (XDP_PASS)            │ rx ring, 16k
//!                                                                                    ▼
//!                     worker q (run.rs), pinned to a core: batch → Worker::process_frame → epochs
//! ```
//!
//! Modules: [`xdp`] loads and attaches the program through a bpf_link; [`blocklist`] is the
//! blocklist the programs consult (`--block-scanners`); `maps` reads their per-CPU counters;
//! [`xsk`] opens the sockets (afxdp crate) and receives batches from them; [`run`] runs the
//! workers on wall-clock epochs; [`rxdrop`] is the same capture path without the engine (the
//! bench rig's baseline); `sys` holds the system facts (privileges, queues, memlock, errno
//! text); [`rss`] makes a NIC's receive hashing symmetric for `--interface` and restores it;
//! `statefile` keeps what the mirror and RSS must undo after a crash (the watchdog reads it);
//! `xdp_owner` names the process that holds another XDP program; [`LiveError`] (module
//! `error`) is what they all fail with.
//!
//! Imports run one way: `run` and `rxdrop` use `xdp`, `blocklist` and `xsk`; `xdp` uses
//! `blocklist`; `xdp` and `blocklist` both read their maps through `maps`; everything may use
//! `sys` and `error`, which use nothing here. This module declares its children and
//! re-exports, and none of them imports it.

#[allow(unsafe_code)] // BPF map syscalls
pub mod blocklist;
mod error;
#[allow(unsafe_code)] // BPF map syscalls
mod maps;
pub mod mirror;
pub mod rss;
#[allow(unsafe_code)] // poll(2), clock_gettime(2)
pub mod run;
pub mod rxdrop;
#[allow(unsafe_code)] // flock(2)
mod statefile;
#[allow(unsafe_code)] // ioctl, getifaddrs, setrlimit, sched_setaffinity and friends
pub mod sys;
pub use error::LiveError;
/// The AF_XDP sockets among this process's file descriptors (the bench rig's generator finds
/// its tx sockets with it, as [`xsk`] does its rx sockets).
pub use sys::{interface_addresses, xdp_socket_fds};
#[allow(unsafe_code)] // the BPF loader (libbpf)
pub mod xdp;
mod xdp_owner;
#[allow(unsafe_code)] // AF_XDP rings and UMEM (afxdp)
pub mod xsk;

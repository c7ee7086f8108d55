//! Live capture: what linewatch sets up on the host around its AF_XDP sockets.
//!
//! [`mirror`] builds (and always removes) the veth pair and tc mirroring behind
//! `linewatch --mirror IFACE`, so the host's own interface is left untouched.

pub mod mirror;

//! The transport layer: TCP, UDP or raw bytes.

use super::ip::IpRepr;
use super::ip_common::{IP_PROTOCOL_TCP, IP_PROTOCOL_UDP};
use super::tcp::TcpRepr;
use super::udp::UdpRepr;

/// The transport layer of a [`Frame`](super::Frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp(TcpRepr<'a>),
    /// A UDP datagram.
    Udp(UdpRepr<'a>),
    /// Any protocol, bytes as given (ICMP, a fragment's middle, a cut header).
    Raw {
        /// The IP protocol number.
        protocol: u8,
        /// What follows the IP header.
        bytes: &'a [u8],
    },
}

impl Transport<'_> {
    /// Its IP protocol number.
    #[must_use]
    pub const fn protocol(&self) -> u8 {
        match self {
            Transport::Tcp(_) => IP_PROTOCOL_TCP,
            Transport::Udp(_) => IP_PROTOCOL_UDP,
            Transport::Raw { protocol, .. } => *protocol,
        }
    }

    /// Its bytes, headers and payload.
    #[must_use]
    pub const fn buffer_len(&self) -> usize {
        match self {
            Transport::Tcp(tcp) => tcp.buffer_len(),
            Transport::Udp(udp) => udp.buffer_len(),
            Transport::Raw { bytes, .. } => bytes.len(),
        }
    }

    /// Writes it into `buf`, exactly [`buffer_len`](Self::buffer_len) bytes.
    pub fn emit(&self, ip: &IpRepr<'_>, buf: &mut [u8]) {
        match self {
            Transport::Tcp(tcp) => tcp.emit(ip, buf),
            Transport::Udp(udp) => udp.emit(ip, buf),
            Transport::Raw { bytes, .. } => buf.copy_from_slice(bytes),
        }
    }
}

//! Who talks to whom, and when: client and server addresses, ports and MACs, and the gaps
//! between the packets of one exchange.

/// Client addresses connections rotate over. With 64512 ephemeral ports each, a 4-tuple comes
/// back only after some 66 million connections.
pub(super) const CLIENT_HOSTS: u32 = 1024;
/// Client hosts per /24 in `10.0.x.y` (y from 1 to 250, avoiding .0 and .255).
const HOSTS_PER_SUBNET: u32 = 250;
/// The ephemeral ports clients take, as Linux's widest `ip_local_port_range` would give.
pub(super) const EPHEMERAL_FIRST: u16 = 1024;
pub(super) const EPHEMERAL_LAST: u16 = 65535;
pub(super) const EPHEMERAL_COUNT: u32 = (EPHEMERAL_LAST - EPHEMERAL_FIRST) as u32 + 1;
/// The server: HTTP on port 80, one address per family.
pub(super) const SERVER_PORT: u16 = 80;
pub(super) const SERVER_V4: [u8; 4] = [10, 1, 0, 1];
pub(super) const SERVER_V6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// Locally administered MAC addresses: the client side's router and the server.
pub(super) const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub(super) const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x01];

/// Gap between the packets of a handshake or a close: a LAN round trip.
pub(super) const HANDSHAKE_STEP_US: u64 = 20;
/// How far before its first request a connection's SYN goes out. No frame created for a
/// request at `t` is earlier than `t - HANDSHAKE_LEAD_US`, which is what makes flushing safe.
pub(super) const HANDSHAKE_LEAD_US: u64 = 3 * HANDSHAKE_STEP_US;
/// The client's delayed ACK of a response.
pub(super) const CLIENT_ACK_DELAY_US: u64 = 20;

/// `10.0.x.y` for client host `index`.
pub(super) fn client_v4(index: u32) -> [u8; 4] {
    let [.., subnet] = (index / HOSTS_PER_SUBNET).to_be_bytes();
    let [.., host] = (index % HOSTS_PER_SUBNET + 1).to_be_bytes();
    [10, 0, subnet, host]
}

/// `fd00::{index + 1}` for client host `index`.
pub(super) fn client_v6(index: u32) -> [u8; 16] {
    let mut address = [0; 16];
    address[0] = 0xfd;
    address[12..].copy_from_slice(&(index + 1).to_be_bytes());
    address
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_addresses_avoid_network_and_broadcast() {
        assert_eq!(client_v4(0), [10, 0, 0, 1]);
        assert_eq!(client_v4(249), [10, 0, 0, 250]);
        assert_eq!(client_v4(250), [10, 0, 1, 1]);
        assert_eq!(client_v4(CLIENT_HOSTS - 1)[2], 4);
        assert_eq!(client_v6(0)[15], 1);
    }
}

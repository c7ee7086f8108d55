//! Connections and the queue of frames: which client 4-tuples are free, where each open
//! connection's sequence numbers stand, and frames waiting for their timestamp.

use std::cmp::Ordering;
use std::collections::HashSet;

use super::addressing::{EPHEMERAL_COUNT, EPHEMERAL_FIRST, EPHEMERAL_LAST};
use super::choice::SplitMix64;

/// A client 4-tuple (the server side is fixed): client host index and port.
pub(super) type TupleKey = u64;

pub(super) fn tuple_key(client: u32, port: u16) -> TupleKey {
    (u64::from(client) << 16) | u64::from(port)
}

/// Ephemeral ports per client host, cycling through `1024..=65535` from a seeded start.
#[derive(Debug)]
pub(super) struct PortAllocator {
    next: Vec<u16>,
}

impl PortAllocator {
    pub(super) fn new(hosts: u32, rng: &mut SplitMix64) -> Self {
        let next = (0..hosts)
            .map(|_| port_at(rng.below(EPHEMERAL_COUNT)))
            .collect();
        PortAllocator { next }
    }

    /// The next port of `client` whose 4-tuple is not in use; `None` if all are.
    pub(super) fn take(&mut self, client: u32, in_use: &HashSet<TupleKey>) -> Option<u16> {
        let next = &mut self.next[client as usize];
        for _ in 0..EPHEMERAL_COUNT {
            let port = *next;
            *next = if port == EPHEMERAL_LAST {
                EPHEMERAL_FIRST
            } else {
                port + 1
            };
            if !in_use.contains(&tuple_key(client, port)) {
                return Some(port);
            }
        }
        None
    }
}

fn port_at(offset: u32) -> u16 {
    let [.., high, low] = (u32::from(EPHEMERAL_FIRST) + offset).to_be_bytes();
    u16::from_be_bytes([high, low])
}

/// One TCP connection's state: where each side's sequence numbers stand.
#[derive(Debug, Clone)]
pub(super) struct Connection {
    /// The client host's index.
    pub(super) client: u32,
    pub(super) port: u16,
    /// The next sequence number each side sends.
    pub(super) client_seq: u32,
    pub(super) server_seq: u32,
    /// The next IPv4 identification each side sends.
    pub(super) client_ip_id: u16,
    pub(super) server_ip_id: u16,
    pub(super) requests_left: u32,
}

/// A frame waiting for its turn, or the release of a 4-tuple once the connection's last frame
/// is out.
#[derive(Debug)]
pub(super) enum Work {
    Frame(Vec<u8>),
    Release(TupleKey),
}

/// Work due at `at_us`; `order` (creation order) breaks ties.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) at_us: u64,
    pub(super) order: u64,
    pub(super) work: Work,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at_us, self.order).cmp(&(other.at_us, other.order))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_wrap_and_skip_tuples_in_use() {
        let mut ports = PortAllocator {
            next: vec![65534, 1024],
        };
        let mut in_use = HashSet::new();
        in_use.insert(tuple_key(0, 65535));
        in_use.insert(tuple_key(0, 1024));
        assert_eq!(ports.take(0, &in_use), Some(65534));
        assert_eq!(ports.take(0, &in_use), Some(1025));
        // Client 1 is independent of client 0.
        assert_eq!(ports.take(1, &in_use), Some(1024));
        let everything: HashSet<TupleKey> = (1024..=65535).map(|p| tuple_key(1, p)).collect();
        assert_eq!(ports.take(1, &everything), None);
    }
}

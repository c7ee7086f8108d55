//! The per-worker flow table: TCP connections by their endpoints, bounded, oldest evicted.
//!
//! Contract: [`FlowTable`] holds at most its capacity of flows. Its memory is taken as flows
//! appear, not up front: it starts with room for [`INITIAL_FLOWS`] and doubles (up to the
//! capacity) when a new flow finds it full, so `--flows 16777216` costs nothing until that many
//! connections are seen. Looking a flow up, evicting the least recently seen and removing one
//! never allocate; inserting one allocates only when the table doubles, which happens at most
//! log2(capacity / [`INITIAL_FLOWS`]) times in a run and never once the table holds its working
//! set. Both directions of a connection map to the same entry: the key is the pair of endpoints
//! in a canonical order (lower endpoint first), and [`Side`] says which of the two sent a given
//! segment.
//!
//! Layout: flows live in a slab (`Vec<Flow>`, grown only by doubling); a hash index maps keys
//! to slab slots; a doubly linked list through the slab, ordered by last use, finds the oldest
//! flow in O(1) when the table is full. The index is a `HashMap` kept at twice the slab's room,
//! so hashbrown always has room to rehash in place and only grows with the slab; the free list
//! is kept at the slab's room, so a removal never allocates.

use std::collections::HashMap;
use std::net::IpAddr;

use linewatch_parser::http::ChunkedBody;

/// Which endpoint of a flow sent a segment: the lower one in key order, or the higher.
pub type Side = usize;

/// Marks "no slot" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// Flows a table has room for before its first doubling.
pub const INITIAL_FLOWS: usize = 1024;

/// Requests a flow remembers while waiting for their responses (pipelining). Browsers and
/// proxies pipeline a handful; the corpus has 9 GETs in one segment.
pub const PENDING_CAPACITY: usize = PENDING_SLOTS as usize;

/// [`PENDING_CAPACITY`] in the ring's index type.
const PENDING_SLOTS: u8 = 16;

/// One endpoint: address (IPv4 mapped into IPv6) and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    /// IPv6 address, or IPv4-mapped.
    pub addr: [u8; 16],
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// Builds an endpoint from a decoded address.
    pub fn new(addr: IpAddr, port: u16) -> Endpoint {
        let addr = match addr {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        Endpoint { addr, port }
    }

    /// The address back as an `IpAddr`.
    pub fn ip(&self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }
}

/// A connection's identity, the same for both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowKey {
    /// The outer VLAN id (0 untagged): the same addresses on two VLANs are two flows.
    pub vlan: u16,
    /// The endpoints, lower first.
    pub ends: [Endpoint; 2],
}

impl std::hash::Hash for FlowKey {
    /// Five word writes instead of the derived per-field, per-byte walk: the flow lookup runs
    /// for every packet.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [a, b] = &self.ends;
        let word = |bytes: &[u8; 16], half: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[half * 8..half * 8 + 8]);
            u64::from_le_bytes(w)
        };
        state.write_u64(word(&a.addr, 0));
        state.write_u64(word(&a.addr, 1) ^ word(&b.addr, 0).rotate_left(17));
        state.write_u64(word(&b.addr, 1));
        state.write_u64(u64::from(a.port) | u64::from(b.port) << 16 | u64::from(self.vlan) << 32);
    }
}

impl FlowKey {
    /// The key of a segment from `src` to `dst`, and which side `src` is.
    pub fn of(vlan: u16, src: Endpoint, dst: Endpoint) -> (FlowKey, Side) {
        if src <= dst {
            (
                FlowKey {
                    vlan,
                    ends: [src, dst],
                },
                0,
            )
        } else {
            (
                FlowKey {
                    vlan,
                    ends: [dst, src],
                },
                1,
            )
        }
    }
}

/// Seed of the replay's sharding hash (`offline::shard`), and with one bit flipped of the flow
/// table's: fixed so a replay shards and evicts the same way every time.
pub(crate) const SHARD_SEED: u64 = 0x6c69_6e65_7761_7463;

/// Where a direction's byte stream stands relative to HTTP message boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The next byte starts a message (or empty lines before one).
    Boundary,
    /// A head is cut: its first bytes are in this direction's carry slot.
    Carry,
    /// This many body bytes follow before the next message.
    Body(u64),
    /// A chunked body is being skipped.
    Chunked(ChunkedBody),
    /// The body runs to the end of the connection.
    UntilClose,
    /// Where the next message starts is unknown (a gap, an error, or a flow joined midway):
    /// wait for a segment that starts like a message.
    Unsynced,
    /// The stream is no longer HTTP/1.x (an upgrade, a CONNECT tunnel, or never was): ignore.
    Opaque,
}

/// One direction of a flow.
#[derive(Debug, Clone, Copy)]
pub struct Direction {
    /// The sequence number of the next byte expected, when known.
    pub next_seq: u32,
    /// `next_seq` is meaningful.
    pub seq_known: bool,
    /// Message framing state.
    pub framing: Framing,
    /// The carry slot holding a cut head (see [`crate::carry`]); `NIL` when none.
    pub carry: u32,
    /// Packet time of the first byte in the carry slot.
    pub carry_ts: u64,
    /// The reorder slot holding segments past a hole (see [`crate::reorder`]); `NIL` when
    /// none.
    pub held: u32,
    /// A FIN was seen.
    pub fin: bool,
    /// This direction's SYN was seen (so the peer's SYN is on its way, if not seen yet).
    pub syn: bool,
    /// A segment of this direction waited for the other direction in vain (see
    /// `crate::cross`): while that direction stays unseen, its segments are not held.
    pub peer_unseen: bool,
    /// Segments of this direction in the crossing's hold queue: a later one waits behind them.
    pub waiting: u16,
    /// The crossing's retry pass that held one of this direction's segments again: a later
    /// one in the same pass waits behind it.
    pub requeued_pass: u32,
}

impl Direction {
    const fn new() -> Direction {
        Direction {
            next_seq: 0,
            seq_known: false,
            framing: Framing::Unsynced,
            carry: NIL,
            carry_ts: 0,
            held: NIL,
            fin: false,
            syn: false,
            peer_unseen: false,
            waiting: 0,
            requeued_pass: 0,
        }
    }

    /// The carry slot, if this direction holds one.
    pub fn carry_slot(&self) -> Option<u32> {
        (self.carry != NIL).then_some(self.carry)
    }

    /// The reorder slot, if this direction holds segments past a hole.
    #[inline]
    pub fn held_slot(&self) -> Option<u32> {
        (self.held != NIL).then_some(self.held)
    }

    /// Forgets the reorder slot (the caller frees it).
    pub fn drop_held(&mut self) {
        self.held = NIL;
    }

    /// Forgets the carry slot (the caller frees it).
    pub fn drop_carry(&mut self) {
        self.carry = NIL;
    }
}

/// A request waiting for its response.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pending {
    /// Packet time of the request's first byte, in ns.
    pub ts: u64,
    /// The request was HEAD: its response has no body.
    pub head: bool,
    /// The request was CONNECT: a 2xx response turns the connection into a tunnel.
    pub connect: bool,
}

/// A connection's state.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Its key.
    pub key: FlowKey,
    /// The two directions, by [`Side`].
    pub dirs: [Direction; 2],
    /// Which side is the client, once known.
    pub client: Option<Side>,
    /// HTTP was seen on this flow (a failure later is out of sync, not `non_http`).
    pub http_seen: bool,
    /// Requests awaiting responses, oldest first (a ring).
    pending: [Pending; PENDING_CAPACITY],
    pending_head: u8,
    pending_len: u8,
    lru_prev: u32,
    lru_next: u32,
}

impl Flow {
    fn new(key: FlowKey) -> Flow {
        Flow {
            key,
            dirs: [Direction::new(); 2],
            client: None,
            http_seen: false,
            pending: [Pending::default(); PENDING_CAPACITY],
            pending_head: 0,
            pending_len: 0,
            lru_prev: NIL,
            lru_next: NIL,
        }
    }

    /// Queues a request; returns false (and drops the oldest) when the queue was full.
    pub fn push_pending(&mut self, p: Pending) -> bool {
        let cap = PENDING_SLOTS;
        if self.pending_len == cap {
            self.pending_head = (self.pending_head + 1) % cap;
            self.pending_len -= 1;
            let at = (self.pending_head + self.pending_len) % cap;
            self.pending[usize::from(at)] = p;
            self.pending_len += 1;
            return false;
        }
        let at = (self.pending_head + self.pending_len) % cap;
        self.pending[usize::from(at)] = p;
        self.pending_len += 1;
        true
    }

    /// Requests waiting.
    pub fn pending_len(&self) -> u8 {
        self.pending_len
    }

    /// Drops the newest waiting requests until at most `len` wait.
    pub fn keep_pending(&mut self, len: u8) {
        self.pending_len = self.pending_len.min(len);
    }

    /// The oldest waiting request, without removing it.
    pub fn front_pending(&self) -> Option<Pending> {
        (self.pending_len > 0).then(|| self.pending[usize::from(self.pending_head)])
    }

    /// Removes the oldest waiting request.
    pub fn pop_pending(&mut self) -> Option<Pending> {
        let p = self.front_pending()?;
        self.pending_head = (self.pending_head + 1) % PENDING_SLOTS;
        self.pending_len -= 1;
        Some(p)
    }
}

/// Fixed-capacity flow table. See the module doc.
#[derive(Debug)]
pub struct FlowTable {
    slab: Vec<Flow>,
    index: HashMap<FlowKey, u32, foldhash::fast::FixedState>,
    /// Free slab slots (flows removed), as a stack; slots never used are past `slab.len()`.
    free: Vec<u32>,
    /// Most recently used flow.
    lru_head: u32,
    /// Least recently used flow: the next to evict.
    lru_tail: u32,
    capacity: usize,
}

/// What [`FlowTable::get_or_insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The flow existed.
    Existing,
    /// A new flow took a free slot.
    New,
    /// A new flow took the slot of the oldest flow, which was still open.
    Evicted,
}

impl FlowTable {
    /// A table for at most `capacity` flows (at least 1, at most `u32::MAX - 1`), with room
    /// for [`INITIAL_FLOWS`] of them now.
    pub fn with_capacity(capacity: usize) -> FlowTable {
        let capacity = capacity.clamp(1, (NIL - 1) as usize);
        let mut table = FlowTable {
            slab: Vec::new(),
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(SHARD_SEED ^ 1)),
            free: Vec::new(),
            lru_head: NIL,
            lru_tail: NIL,
            capacity,
        };
        table.grow();
        table
    }

    /// Doubles the room for flows (to at least [`INITIAL_FLOWS`], at most the capacity): the
    /// slab, the index at twice that (see the module doc) and the free list with it. Called
    /// only from `with_capacity` and the out-of-line `new_slot`. (Marking it `#[cold]` too
    /// changed fat LTO's inlining of the frame decode in `engine_loop`: +70 instructions a
    /// frame; as it is, the figure is unchanged.)
    fn grow(&mut self) {
        let room =
            (self.slab.capacity() * 2).clamp(INITIAL_FLOWS.min(self.capacity), self.capacity);
        self.slab.reserve_exact(room - self.slab.len());
        self.index.reserve(room * 2 - self.index.len());
        self.free.reserve_exact(room - self.free.len());
    }

    /// A slot never used before, growing the table if it has no room: taken only until the
    /// table first holds its working set, so kept out of line, off the per-packet path.
    #[inline(never)]
    fn new_slot(&mut self, key: FlowKey) -> u32 {
        if self.slab.len() == self.slab.capacity() {
            self.grow();
        }
        // `slab.len() < capacity <= NIL - 1`: the slot fits.
        let slot = u32::try_from(self.slab.len()).unwrap_or(NIL - 1);
        self.slab.push(Flow::new(key));
        slot
    }

    /// Flows the table has room for now, without growing.
    pub fn room(&self) -> usize {
        self.slab.capacity()
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// The table is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Most flows it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The slot of `key`, if present, marked most recently used.
    #[inline]
    pub fn get(&mut self, key: &FlowKey) -> Option<u32> {
        let slot = *self.index.get(key)?;
        self.touch(slot);
        Some(slot)
    }

    /// The slot of `key`, inserting a fresh flow (evicting the oldest if full). When a flow was
    /// evicted, `on_evict` sees it before its slot is reused (to free its carry slots).
    pub fn get_or_insert(&mut self, key: FlowKey, on_evict: impl FnOnce(&Flow)) -> (u32, Inserted) {
        if let Some(slot) = self.get(&key) {
            return (slot, Inserted::Existing);
        }
        self.insert(key, on_evict)
    }

    /// Inserts `key`, absent from the table: once per connection, not per packet, so kept out
    /// of line (the per-packet lookup that calls it stays small enough to inline).
    #[inline(never)]
    fn insert(&mut self, key: FlowKey, on_evict: impl FnOnce(&Flow)) -> (u32, Inserted) {
        let (slot, how) = match self.free.pop() {
            Some(slot) => (slot, Inserted::New),
            None if self.slab.len() < self.capacity => (self.new_slot(key), Inserted::New),
            None => {
                let slot = self.lru_tail;
                let old = &self.slab[slot as usize];
                on_evict(old);
                let old_key = old.key;
                self.index.remove(&old_key);
                self.unlink(slot);
                (slot, Inserted::Evicted)
            }
        };
        self.slab[slot as usize] = Flow::new(key);
        self.index.insert(key, slot);
        self.link_front(slot);
        (slot, how)
    }

    /// The flow in `slot`, to read.
    #[inline]
    pub fn flow(&self, slot: u32) -> &Flow {
        &self.slab[slot as usize]
    }

    /// The flow in `slot`.
    #[inline]
    pub fn flow_mut(&mut self, slot: u32) -> &mut Flow {
        &mut self.slab[slot as usize]
    }

    /// Removes the flow in `slot` (the connection ended). The caller frees its carry slots.
    pub fn remove(&mut self, slot: u32) {
        let key = self.slab[slot as usize].key;
        if self.index.remove(&key).is_some() {
            self.unlink(slot);
            self.free.push(slot);
        }
    }

    /// Every flow in the table, most recently used first.
    pub fn iter(&self) -> impl Iterator<Item = &Flow> + '_ {
        let mut at = self.lru_head;
        std::iter::from_fn(move || {
            if at == NIL {
                return None;
            }
            let flow = &self.slab[at as usize];
            at = flow.lru_next;
            Some(flow)
        })
    }

    fn touch(&mut self, slot: u32) {
        if self.lru_head != slot {
            self.unlink(slot);
            self.link_front(slot);
        }
    }

    fn unlink(&mut self, slot: u32) {
        let (prev, next) = {
            let f = &self.slab[slot as usize];
            (f.lru_prev, f.lru_next)
        };
        if prev == NIL {
            self.lru_head = next;
        } else {
            self.slab[prev as usize].lru_next = next;
        }
        if next == NIL {
            self.lru_tail = prev;
        } else {
            self.slab[next as usize].lru_prev = prev;
        }
        let f = &mut self.slab[slot as usize];
        f.lru_prev = NIL;
        f.lru_next = NIL;
    }

    fn link_front(&mut self, slot: u32) {
        let old_head = self.lru_head;
        {
            let f = &mut self.slab[slot as usize];
            f.lru_prev = NIL;
            f.lru_next = old_head;
        }
        if old_head != NIL {
            self.slab[old_head as usize].lru_prev = slot;
        } else {
            self.lru_tail = slot;
        }
        self.lru_head = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> FlowKey {
        let a = Endpoint::new(IpAddr::from([10, 0, 0, 1]), 1000 + n);
        let b = Endpoint::new(IpAddr::from([10, 0, 0, 2]), 80);
        FlowKey::of(0, a, b).0
    }

    #[test]
    fn both_directions_share_a_key() {
        let a = Endpoint::new(IpAddr::from([10, 0, 0, 9]), 5555);
        let b = Endpoint::new("2001:db8::1".parse::<IpAddr>().unwrap(), 80);
        let (k1, s1) = FlowKey::of(7, a, b);
        let (k2, s2) = FlowKey::of(7, b, a);
        assert_eq!(k1, k2);
        assert_ne!(s1, s2);
        assert_eq!(a.ip(), IpAddr::from([10, 0, 0, 9]));
    }

    #[test]
    fn oldest_flow_is_evicted_when_full() {
        let mut t = FlowTable::with_capacity(3);
        for n in 0..3 {
            assert_eq!(
                t.get_or_insert(key(n), |_| panic!("no eviction yet")).1,
                Inserted::New
            );
        }
        // Touch flow 0 so flow 1 becomes the oldest.
        assert!(t.get(&key(0)).is_some());
        let mut evicted = None;
        let (_, how) = t.get_or_insert(key(3), |f| evicted = Some(f.key));
        assert_eq!(how, Inserted::Evicted);
        assert_eq!(evicted, Some(key(1)));
        assert!(t.get(&key(1)).is_none());
        assert_eq!(t.len(), 3);
        let order: Vec<_> = t.iter().map(|f| f.key).collect();
        assert_eq!(order, vec![key(3), key(0), key(2)]);
    }

    #[test]
    fn removed_slots_are_reused_without_eviction() {
        let mut t = FlowTable::with_capacity(2);
        let (s0, _) = t.get_or_insert(key(0), |_| {});
        t.get_or_insert(key(1), |_| {});
        t.remove(s0);
        assert_eq!(
            t.get_or_insert(key(2), |_| panic!("a slot was free")).1,
            Inserted::New
        );
        // Churn far beyond the capacity: the index must never need to grow.
        for n in 3..10_000u16 {
            let (slot, _) = t.get_or_insert(key(n), |_| {});
            if n % 2 == 0 {
                t.remove(slot);
            }
        }
        assert!(t.len() <= 2);
    }

    fn key32(n: u32) -> FlowKey {
        let [a, b, c, d] = n.to_be_bytes();
        let client = Endpoint::new(IpAddr::from([10, a, b, c]), 1000 + u16::from(d));
        let server = Endpoint::new(IpAddr::from([10, 0, 0, 2]), 80);
        FlowKey::of(0, client, server).0
    }

    #[test]
    fn memory_is_taken_as_flows_appear_by_doubling_up_to_the_capacity() {
        // The largest --flows: only the initial room is taken.
        let t = FlowTable::with_capacity(1 << 24);
        assert_eq!(t.room(), INITIAL_FLOWS);
        assert_eq!(t.capacity(), 1 << 24);

        let cap = 5_000;
        let mut t = FlowTable::with_capacity(cap);
        let mut rooms = vec![t.room()];
        for n in 0..u32::try_from(cap).unwrap() {
            let (_, how) = t.get_or_insert(key32(n), |_| panic!("no eviction below capacity"));
            assert_eq!(how, Inserted::New);
            if rooms.last() != Some(&t.room()) {
                rooms.push(t.room());
            }
        }
        assert_eq!(rooms, vec![1024, 2048, 4096, cap]);
        // Full: a new flow evicts, and churn (inserts, evictions, removals) never grows it.
        // (The index's reported capacity moves with its tombstones; its room for `cap` keys
        // is what matters: at twice the slab, hashbrown rehashes in place.)
        assert!(t.index.capacity() >= 2 * cap);
        for n in 10_000..110_000u32 {
            let (slot, how) = t.get_or_insert(key32(n), |_| {});
            assert_ne!(how, Inserted::Existing);
            if n % 3 == 0 {
                t.remove(slot);
            }
        }
        assert_eq!(t.room(), cap);
        assert!(t.index.capacity() >= cap);
        assert!(t.free.capacity() >= cap);
        assert!(t.len() <= cap);
    }

    #[test]
    fn pending_queue_keeps_order_and_overflows_oldest_first() {
        let mut f = Flow::new(key(0));
        for ts in 0..PENDING_CAPACITY as u64 {
            assert!(f.push_pending(Pending {
                ts,
                ..Pending::default()
            }));
        }
        assert!(!f.push_pending(Pending {
            ts: 99,
            ..Pending::default()
        }));
        assert_eq!(f.pop_pending().map(|p| p.ts), Some(1));
        for ts in 2..PENDING_CAPACITY as u64 {
            assert_eq!(f.pop_pending().map(|p| p.ts), Some(ts));
        }
        assert_eq!(f.pop_pending().map(|p| p.ts), Some(99));
        assert!(f.pop_pending().is_none());
    }
}

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
//! segment. Eviction is exact: the flow evicted is the one least recently looked up.
//!
//! Layout: flows live in a slab (`Vec<Flow>`, grown only by doubling); an open-addressing index
//! maps keys to slab slots; a doubly linked list through the slab, ordered by last use, finds
//! the oldest flow in O(1) when the table is full. The index is a power-of-two array of `u64`
//! entries, each a 32-bit tag of the key's hash and the slot (linear probing, backward-shift
//! removal, so no tombstones), kept at least twice the slab's room: a lookup hashes the key
//! once (two folded multiplies of its words), reads one entry (eight to a cache line) and
//! compares the key only in the slab entry whose tag matches, which the segment path reads next
//! anyway. An IPv4 segment (nearly all) is looked up by its [`V4Key`] instead: both ends and
//! the VLAN in two words, built, hashed and compared in a few instructions; a general key whose
//! ends are both IPv4 hashes as its `V4Key` does, so both find the same entry. The free list is
//! kept at the slab's room, so a removal never allocates.

use std::cmp::Ordering;
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
///
/// The address is kept as two big-endian words, not 16 bytes: the flow lookup orders, hashes
/// and compares endpoints of every segment, and a byte array there was taken apart byte by
/// byte by the optimiser (callgrind: +200 instructions a frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The IPv6 (or IPv4-mapped) address as a big-endian integer, high word first.
    addr: [u64; 2],
    /// TCP port.
    pub port: u16,
}

/// `::ffff:0:0/96`, where IPv4 addresses are mapped, in the low word of an address.
const V4_MAPPED: u64 = 0xffff_0000_0000;

impl Endpoint {
    /// Builds an endpoint from a decoded address.
    #[inline(always)]
    pub fn new(addr: IpAddr, port: u16) -> Endpoint {
        let addr = match addr {
            IpAddr::V4(v4) => [0, V4_MAPPED | u64::from(u32::from(v4))],
            IpAddr::V6(v6) => {
                let v = u128::from(v6);
                [high(v), low(v)]
            }
        };
        Endpoint { addr, port }
    }

    /// The address back as an `IpAddr`.
    pub fn ip(&self) -> IpAddr {
        let v6 = std::net::Ipv6Addr::from(self.octets());
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    }

    /// The address's 16 bytes (IPv4 mapped).
    pub fn octets(&self) -> [u8; 16] {
        (u128::from(self.addr[0]) << 64 | u128::from(self.addr[1])).to_be_bytes()
    }
}

/// Address bytes, then port: as a derived order on the 16 bytes would be.
impl Ord for Endpoint {
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        (self.addr, self.port).cmp(&(other.addr, other.port))
    }
}

impl PartialOrd for Endpoint {
    #[inline(always)]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A connection's identity, the same for both directions.
#[derive(Debug, Clone, Copy, Eq)]
pub struct FlowKey {
    /// The outer VLAN id (0 untagged): the same addresses on two VLANs are two flows.
    pub vlan: u16,
    /// The endpoints, lower first.
    pub ends: [Endpoint; 2],
}

/// Every word at once, without a branch per field.
impl PartialEq for FlowKey {
    #[inline(always)]
    fn eq(&self, other: &Self) -> bool {
        self.same_addresses(other) & (self.ports_vlan() == other.ports_vlan())
    }
}

impl FlowKey {
    /// Both ports and the VLAN in one word.
    #[inline(always)]
    fn ports_vlan(&self) -> u64 {
        let [a, b] = &self.ends;
        u64::from(a.port) | u64::from(b.port) << 16 | u64::from(self.vlan) << 32
    }

    /// Both addresses are `other`'s.
    #[inline(always)]
    fn same_addresses(&self, other: &FlowKey) -> bool {
        let [a, b] = &self.ends;
        let [c, d] = &other.ends;
        (a.addr[0] ^ c.addr[0])
            | (a.addr[1] ^ c.addr[1])
            | (b.addr[0] ^ d.addr[0])
            | (b.addr[1] ^ d.addr[1])
            == 0
    }

    /// The key of a segment from `src` to `dst`, and which side `src` is. Word by word, with
    /// a select per word rather than a branch between two copies of the key: the optimiser
    /// then keeps the key in registers through the lookup.
    #[inline(always)]
    pub fn of(vlan: u16, src: Endpoint, dst: Endpoint) -> (FlowKey, Side) {
        let (s, d) = (src.addr, dst.addr);
        // `dst < src` as the derived order has it, without branches.
        let swap = (d[0] < s[0])
            | ((d[0] == s[0]) & ((d[1] < s[1]) | ((d[1] == s[1]) & (dst.port < src.port))));
        let pick = |x: u64, y: u64| if swap { y } else { x };
        let pick_port = |x: u16, y: u16| if swap { y } else { x };
        let lower = Endpoint {
            addr: [pick(s[0], d[0]), pick(s[1], d[1])],
            port: pick_port(src.port, dst.port),
        };
        let upper = Endpoint {
            addr: [pick(d[0], s[0]), pick(d[1], s[1])],
            port: pick_port(dst.port, src.port),
        };
        (
            FlowKey {
                vlan,
                ends: [lower, upper],
            },
            usize::from(swap),
        )
    }

    /// The key as a [`V4Key`] when both ends are IPv4 (mapped) addresses.
    #[inline(always)]
    fn v4(&self) -> Option<V4Key> {
        let [a, b] = &self.ends;
        let mapped = |e: &Endpoint| e.addr[0] == 0 && e.addr[1] >> 32 == V4_MAPPED >> 32;
        if !(mapped(a) && mapped(b)) {
            return None;
        }
        let word = |e: &Endpoint| u64::from(low32(e.addr[1])) << PORT_BITS | u64::from(e.port);
        Some(V4Key([
            word(a) | u64::from(self.vlan) << V4_VLAN_SHIFT,
            word(b),
        ]))
    }

    /// The key's hash for the table's index: each end's two address words through a folded
    /// multiply (foldhash's mixing step), the first end's result carried into the second's,
    /// and a last one of that with the ports and VLAN, seeded with [`SHARD_SEED`] so a replay
    /// evicts alike every time. Every address bit, port bit and VLAN bit reaches the result;
    /// the last second operand is never 0 (the ports and VLAN fill 48 bits, and `SEEDS[1]`'s
    /// top 16 are not all clear), and no choice of one end's address zeroes the first.
    ///
    /// An IPv4 key (both ends IPv4-mapped) hashes as its [`V4Key`] does, so the segment path's
    /// [`FlowTable::get_v4`] finds what this key inserted.
    #[inline(always)]
    fn hash(&self) -> u64 {
        if let Some(v4) = self.v4() {
            return v4.hash();
        }
        // Each end's two words through a multiply of their own, not XORed together: a client
        // picks the low 64 bits of its IPv6 address, and a linear fold of the words is one it
        // could cancel against the (public) seed, sending every port of it to one hash.
        let [a, b] = &self.ends;
        let h = folded_multiply(a.addr[0] ^ SEEDS[0], a.addr[1] ^ SEEDS[2]);
        let h = folded_multiply(h ^ b.addr[0] ^ SEEDS[3], b.addr[1] ^ SEEDS[2]);
        folded_multiply(h ^ SEEDS[0], self.ports_vlan() ^ SEEDS[1])
    }
}

/// An IPv4 connection's identity in two words, for the segment path's lookup
/// ([`FlowTable::get_v4`]): each end as its address above its port (48 bits), lower end first
/// as [`FlowKey::of`] orders them; the lower end's word carries the VLAN in its top 16 bits,
/// the upper end's top 16 are clear. Built from the segment's fields with one compare, hashed with
/// one folded multiply and compared in two words: the general key's address words, order and
/// comparison cost every frame ~35 instructions more (callgrind). A flow whose key is not IPv4
/// holds [`V4Key::NONE`], which no IPv4 key equals (its second word's top bits are set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Key([u64; 2]);

/// Bits of an end's word below its address.
const PORT_BITS: u32 = 16;

/// Where the VLAN sits in a [`V4Key`]'s first word.
const V4_VLAN_SHIFT: u32 = 48;

impl V4Key {
    /// The key of a flow that is not IPv4: equal to no IPv4 key.
    const NONE: V4Key = V4Key([u64::MAX, u64::MAX]);

    /// The key of a segment from `src:src_port` to `dst:dst_port` on `vlan`, and which side
    /// `src` is: the same side [`FlowKey::of`] gives for the same ends.
    #[inline(always)]
    pub fn of(vlan: u16, src: u32, src_port: u16, dst: u32, dst_port: u16) -> (V4Key, Side) {
        let s = u64::from(src) << PORT_BITS | u64::from(src_port);
        let d = u64::from(dst) << PORT_BITS | u64::from(dst_port);
        let swap = d < s;
        let (lower, upper) = if swap { (d, s) } else { (s, d) };
        (
            V4Key([lower | u64::from(vlan) << V4_VLAN_SHIFT, upper]),
            usize::from(swap),
        )
    }

    /// The index hash of an IPv4 key: one folded multiply of its words, seeded (see
    /// [`FlowKey::hash`]). The second operand is never 0: its top 16 bits are `SEEDS[1]`'s,
    /// which are not all clear.
    #[inline(always)]
    fn hash(&self) -> u64 {
        folded_multiply(self.0[0] ^ SEEDS[0], self.0[1] ^ SEEDS[1])
    }
}

/// The full 128-bit product of `a` and `b`, its halves XORed: every input bit reaches the
/// middle of the result.
#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    low(full) ^ high(full)
}

/// The low 64 bits of `v` (the mask makes the conversion exact: it compiles to nothing).
#[inline(always)]
fn low(v: u128) -> u64 {
    u64::try_from(v & u128::from(u64::MAX)).unwrap_or(0)
}

/// The high 64 bits of `v`.
#[inline(always)]
fn high(v: u128) -> u64 {
    u64::try_from(v >> 64).unwrap_or(0)
}

/// The low 32 bits of `v`.
#[inline(always)]
fn low32(v: u64) -> u32 {
    u32::try_from(v & u64::from(u32::MAX)).unwrap_or(0)
}

/// The index hash's constants: [`SHARD_SEED`] spread by the digits of pi (as foldhash takes
/// its own).
const SEEDS: [u64; 4] = [
    SHARD_SEED ^ 0x243f_6a88_85a3_08d3,
    SHARD_SEED ^ 0xa409_3822_299f_31d0,
    SHARD_SEED ^ 0x082e_fa98_ec4e_6c89,
    SHARD_SEED ^ 0x4528_21e6_38d0_1377,
];

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
    /// The key's ports and VLAN in one word ([`FlowKey::ports_vlan`]): the lookup compares
    /// it with one instruction instead of assembling it from three fields.
    ports_vlan: u64,
    /// The key as [`FlowTable::get_v4`] compares it ([`V4Key::NONE`] when not IPv4).
    v4: V4Key,
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
            ports_vlan: key.ports_vlan(),
            v4: key.v4().unwrap_or(V4Key::NONE),
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

/// Most flows a table holds: its index then has at most 2^32 entries, so an entry's 32-bit
/// tag also gives its home position. (The command allows 2^24.)
const MAX_FLOWS: usize = 1 << 31;

/// An index entry: the key hash's low 32 bits above the slot plus one; 0 is an empty entry.
type Entry = u64;

/// Marks an empty index entry.
const EMPTY: Entry = 0;

/// Bits of an entry below its tag.
const TAG_SHIFT: u32 = 32;

/// Fixed-capacity flow table. See the module doc.
#[derive(Debug)]
pub struct FlowTable {
    slab: Vec<Flow>,
    /// The open-addressing index (see the module doc): a power of two long.
    index: Vec<Entry>,
    /// `index.len() - 1`.
    mask: usize,
    /// Flows in the table.
    len: usize,
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
    /// A table for at most `capacity` flows (at least 1, at most 2^31), with room for
    /// [`INITIAL_FLOWS`] of them now.
    pub fn with_capacity(capacity: usize) -> FlowTable {
        let capacity = capacity.clamp(1, MAX_FLOWS);
        let mut table = FlowTable {
            slab: Vec::new(),
            index: Vec::new(),
            mask: 0,
            len: 0,
            free: Vec::new(),
            lru_head: NIL,
            lru_tail: NIL,
            capacity,
        };
        table.grow();
        table
    }

    /// Doubles the room for flows (to at least [`INITIAL_FLOWS`], at most the capacity): the
    /// slab, the index to at least twice that (see the module doc, re-placing every entry) and
    /// the free list with it. Called only from `with_capacity` and the out-of-line `new_slot`.
    fn grow(&mut self) {
        let room =
            (self.slab.capacity() * 2).clamp(INITIAL_FLOWS.min(self.capacity), self.capacity);
        self.slab.reserve_exact(room - self.slab.len());
        self.free.reserve_exact(room - self.free.len());
        let entries = (room * 2).next_power_of_two();
        if entries > self.index.len() {
            let old = std::mem::replace(&mut self.index, vec![EMPTY; entries]);
            self.mask = entries - 1;
            for entry in old.into_iter().filter(|&e| e != EMPTY) {
                let mut pos = (entry >> TAG_SHIFT) as usize & self.mask;
                while self.index[pos] != EMPTY {
                    pos = (pos + 1) & self.mask;
                }
                self.index[pos] = entry;
            }
        }
    }

    /// A slot never used before, growing the table if it has no room: taken only until the
    /// table first holds its working set, so kept out of line, off the per-packet path.
    #[inline(never)]
    fn new_slot(&mut self, key: FlowKey) -> u32 {
        if self.slab.len() == self.slab.capacity() {
            self.grow();
        }
        // `slab.len() < capacity <= MAX_FLOWS`: the slot fits.
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
        self.len
    }

    /// The table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most flows it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Where `key` is in the index (`Ok`), or the empty entry that ends its probe (`Err`);
    /// and its entry's tag.
    #[inline(always)]
    fn find(&self, key: &FlowKey) -> (Result<usize, usize>, u64) {
        let tag = self.tag(key);
        let mut pos = low32(tag) as usize & self.mask;
        loop {
            let entry = self.index[pos];
            if entry == EMPTY {
                return (Err(pos), tag);
            }
            if entry >> TAG_SHIFT == tag {
                let slot = low32(entry).wrapping_sub(1);
                let flow = &self.slab[slot as usize];
                if (flow.ports_vlan == key.ports_vlan()) & flow.key.same_addresses(key) {
                    return (Ok(pos), tag);
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// The tag of `key`: the low half of its hash (the index has at most 2^32 entries, so the
    /// home position is the tag under the mask).
    #[inline(always)]
    fn tag(&self, key: &FlowKey) -> u64 {
        key.hash() & u64::from(u32::MAX)
    }

    /// The slot of `key`, if present, marked most recently used. Inlined: the segment path's
    /// key then stays in registers (a call cost every frame ~50 instructions of copies and
    /// saved registers, callgrind).
    #[inline(always)]
    pub fn get(&mut self, key: &FlowKey) -> Option<u32> {
        let pos = self.find(key).0.ok()?;
        let slot = low32(self.index[pos]).wrapping_sub(1);
        self.touch(slot);
        Some(slot)
    }

    /// [`FlowTable::get`] for an IPv4 flow, by its [`V4Key`]: the same slot `get` gives for
    /// the same ends (both hash alike), found by comparing two words.
    #[inline(always)]
    pub fn get_v4(&mut self, key: &V4Key) -> Option<u32> {
        let (slot, ()) = self.find_v4_then(key, |_| ())?;
        self.touch(slot);
        Some(slot)
    }

    /// [`FlowTable::get_v4`] without marking the flow used, and what `then` reads from the
    /// flow found (on the flow the probe compared: no second slab index for it). The caller
    /// marks it ([`FlowTable::mark_used`]) before it uses the table again, on each of its
    /// branches, so that what `then` read is tested once, in its branch (not kept across the
    /// mark).
    #[inline(always)]
    pub fn find_v4_then<R>(&self, key: &V4Key, then: impl FnOnce(&Flow) -> R) -> Option<(u32, R)> {
        let tag = key.hash() & u64::from(u32::MAX);
        let mut pos = low32(tag) as usize & self.mask;
        loop {
            let entry = self.index[pos];
            if entry == EMPTY {
                return None;
            }
            if entry >> TAG_SHIFT == tag {
                let slot = low32(entry).wrapping_sub(1);
                let flow = &self.slab[slot as usize];
                if flow.v4 == *key {
                    return Some((slot, then(flow)));
                }
            }
            pos = (pos + 1) & self.mask;
        }
    }

    /// The flow the next insert of a new key would evict: the least recently used one when the
    /// table is full, `None` while it has room.
    pub fn next_victim(&self) -> Option<u32> {
        let full = self.free.is_empty() && self.slab.len() >= self.capacity;
        (full && self.lru_tail != NIL).then_some(self.lru_tail)
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
                self.unindex(&old_key);
                self.unlink(slot);
                (slot, Inserted::Evicted)
            }
        };
        self.slab[slot as usize] = Flow::new(key);
        // Found only now: `new_slot` may have grown (and re-laid) the index.
        let (found, tag) = self.find(&key);
        if let Err(pos) = found {
            self.index[pos] = tag << TAG_SHIFT | (u64::from(slot) + 1);
            self.len += 1;
        }
        self.link_front(slot);
        (slot, how)
    }

    /// Takes `key` out of the index (true if it was there), shifting back the entries after it
    /// that are not at their home position, so no probe ever meets a hole it should pass.
    fn unindex(&mut self, key: &FlowKey) -> bool {
        let Ok(mut hole) = self.find(key).0 else {
            return false;
        };
        let mut pos = hole;
        loop {
            pos = (pos + 1) & self.mask;
            let entry = self.index[pos];
            if entry == EMPTY {
                break;
            }
            let home = (entry >> TAG_SHIFT) as usize & self.mask;
            // The entry may fill the hole when its home is not in (hole, pos], cyclically.
            let from_home = pos.wrapping_sub(home) & self.mask;
            let from_hole = pos.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.index[hole] = entry;
                hole = pos;
            }
        }
        self.index[hole] = EMPTY;
        self.len -= 1;
        true
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
        if self.unindex(&key) {
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

    /// Marks the flow in `slot` most recently used (see [`FlowTable::find_v4_then`]).
    #[inline(always)]
    pub fn mark_used(&mut self, slot: u32) {
        self.touch(slot);
    }

    #[inline(always)]
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
mod tests;

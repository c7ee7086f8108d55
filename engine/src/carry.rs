//! Carry buffers: the first bytes of a message head that was cut at a segment boundary.
//!
//! Contract: a [`CarryPool`] holds a fixed number of slots of [`CARRY_CAP`] bytes each, in one
//! allocation made at start. A flow direction takes a slot only while a head is cut, and gives
//! it back as soon as the head completes, the flow ends or is evicted. A head that outgrows its
//! slot is counted (`carry_overflow`) and its direction resynchronises. When no slot is free,
//! the slot of the least recently active cut head (the one whose last segment is the oldest)
//! is reclaimed for the new one: the stalled head is dropped, counted (`carry_reclaimed`) and
//! its direction resynchronises as after a loss. So a few stalled connections (a slowloris, or
//! just slow clients) can never keep a live head from being carried, and memory stays bounded
//! whatever the traffic does.
//!
//! Every slot in use knows its owner (flow slot and side), and the pool keeps the slots in use
//! on an intrusive list, least recently active first: taking, touching and giving back are
//! O(1), with no allocation after start.

/// Bytes one slot holds: a request head up to 8 KiB, the default header-size limit of nginx's
/// `large_client_header_buffers` and of Node.js. Bigger heads are counted as overflow.
pub const CARRY_CAP: usize = 8 * 1024;

/// Slots per worker: heads cut in the middle at the same moment on one core. 128 x 8 KiB =
/// 1 MiB per worker.
pub const CARRY_SLOTS: usize = 128;

/// End of a list (no slot).
const NIL: u32 = u32::MAX;

/// Who holds a carry slot: a flow slot and the side of the flow whose head it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The flow table slot.
    pub flow: u32,
    /// The flow direction (0 or 1).
    pub side: usize,
}

/// Fixed pool of carry slots. See the module doc. The default pool has no slots and
/// allocates nothing: a placeholder while the real pool is moved out.
#[derive(Debug, Default)]
pub struct CarryPool {
    bytes: Vec<u8>,
    lens: Vec<usize>,
    free: Vec<u32>,
    owners: Vec<Owner>,
    /// Links of the in-use list, by slot: towards the least (`older`) and the most (`newer`)
    /// recently active.
    older: Vec<u32>,
    newer: Vec<u32>,
    /// Least recently active slot in use: the one reclaimed next.
    oldest: u32,
    /// Most recently active slot in use.
    newest: u32,
}

impl CarryPool {
    /// A pool of `slots` slots, allocated now.
    pub fn new(slots: usize) -> CarryPool {
        let slots = slots.max(1);
        let count = u32::try_from(slots).unwrap_or(u32::MAX);
        CarryPool {
            bytes: vec![0; slots * CARRY_CAP],
            lens: vec![0; slots],
            free: (0..count).rev().collect(),
            owners: vec![Owner { flow: NIL, side: 0 }; slots],
            older: vec![NIL; slots],
            newer: vec![NIL; slots],
            oldest: NIL,
            newest: NIL,
        }
    }

    /// Takes a free slot for `owner`, empty and most recently active; `None` when all are in
    /// use (see [`CarryPool::reclaim`]).
    pub fn take(&mut self, owner: Owner) -> Option<u32> {
        let slot = self.free.pop()?;
        self.lens[slot as usize] = 0;
        self.owners[slot as usize] = owner;
        self.link_newest(slot);
        Some(slot)
    }

    /// Marks `slot` most recently active (its head got a new segment).
    pub fn touch(&mut self, slot: u32) {
        if self.newest != slot {
            self.unlink(slot);
            self.link_newest(slot);
        }
    }

    /// The least recently active slot in use and its owner, taken away from that owner and
    /// given to `owner`, empty and most recently active; `None` when the pool has no slot in
    /// use. The caller makes the old owner forget the slot.
    pub fn reclaim(&mut self, owner: Owner) -> Option<(u32, Owner)> {
        let slot = self.oldest;
        if slot == NIL {
            return None;
        }
        let old = self.owners[slot as usize];
        self.lens[slot as usize] = 0;
        self.owners[slot as usize] = owner;
        self.touch(slot);
        Some((slot, old))
    }

    /// The owner of `slot`, in use.
    pub fn owner(&self, slot: u32) -> Owner {
        self.owners[slot as usize]
    }

    /// Gives a slot back.
    pub fn give_back(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "carry slot {slot} freed twice");
        self.unlink(slot);
        self.owners[slot as usize].flow = NIL;
        self.free.push(slot);
    }

    /// Slots in use.
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.lens.len() - self.free.len()
    }

    /// The bytes held in `slot`.
    #[inline]
    pub fn data(&self, slot: u32) -> &[u8] {
        let start = slot as usize * CARRY_CAP;
        &self.bytes[start..start + self.lens[slot as usize]]
    }

    /// Appends as much of `more` as fits; returns how many bytes were taken.
    pub fn append(&mut self, slot: u32, more: &[u8]) -> usize {
        let len = self.lens[slot as usize];
        let take = more.len().min(CARRY_CAP - len);
        let at = slot as usize * CARRY_CAP + len;
        self.bytes[at..at + take].copy_from_slice(&more[..take]);
        self.lens[slot as usize] = len + take;
        take
    }

    /// Drops the first `n` bytes of `slot`, moving the rest to its front.
    pub fn consume(&mut self, slot: u32, n: usize) {
        let len = self.lens[slot as usize];
        let n = n.min(len);
        let start = slot as usize * CARRY_CAP;
        self.bytes.copy_within(start + n..start + len, start);
        self.lens[slot as usize] = len - n;
    }

    /// Keeps only the first `len` bytes of `slot`.
    pub fn truncate(&mut self, slot: u32, len: usize) {
        let held = &mut self.lens[slot as usize];
        *held = len.min(*held);
    }

    /// Puts `slot`, on no list, at the newest end of the in-use list.
    fn link_newest(&mut self, slot: u32) {
        self.older[slot as usize] = self.newest;
        self.newer[slot as usize] = NIL;
        if self.newest == NIL {
            self.oldest = slot;
        } else {
            self.newer[self.newest as usize] = slot;
        }
        self.newest = slot;
    }

    /// Takes `slot` off the in-use list.
    fn unlink(&mut self, slot: u32) {
        let (older, newer) = (self.older[slot as usize], self.newer[slot as usize]);
        if older == NIL {
            self.oldest = newer;
        } else {
            self.newer[older as usize] = newer;
        }
        if newer == NIL {
            self.newest = older;
        } else {
            self.older[newer as usize] = older;
        }
        self.older[slot as usize] = NIL;
        self.newer[slot as usize] = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(flow: u32) -> Owner {
        Owner { flow, side: 0 }
    }

    #[test]
    fn append_consume_and_bounds() {
        let mut pool = CarryPool::new(2);
        let a = pool.take(owner(1)).unwrap();
        let b = pool.take(owner(2)).unwrap();
        assert!(pool.take(owner(3)).is_none());
        assert_eq!(pool.append(a, b"GET /x HT"), 9);
        assert_eq!(pool.append(b, b"other"), 5);
        pool.consume(a, 4);
        assert_eq!(pool.data(a), b"/x HT");
        pool.truncate(a, 3);
        assert_eq!(pool.data(a), b"/x ");
        pool.truncate(a, 9);
        assert_eq!(pool.data(a), b"/x ");
        assert_eq!(pool.data(b), b"other");
        let big = vec![b'x'; CARRY_CAP];
        assert_eq!(pool.append(a, &big), CARRY_CAP - 3);
        assert_eq!(pool.data(a).len(), CARRY_CAP);
        assert_eq!(pool.append(a, b"more"), 0);
        pool.give_back(a);
        assert_eq!(pool.in_use(), 1);
        let c = pool.take(owner(4)).unwrap();
        assert!(pool.data(c).is_empty());
    }

    #[test]
    fn reclaims_the_least_recently_active_slot() {
        let mut pool = CarryPool::new(3);
        assert!(pool.reclaim(owner(9)).is_none());
        let a = pool.take(owner(1)).unwrap();
        let b = pool.take(owner(2)).unwrap();
        let c = pool.take(owner(3)).unwrap();
        pool.append(a, b"GET /a");
        // `a` got a segment after `b` and `c` were cut: `b` is now the least recently active.
        pool.touch(a);
        let (slot, old) = pool.reclaim(owner(4)).unwrap();
        assert_eq!((slot, old), (b, owner(2)));
        assert_eq!(pool.owner(b), owner(4));
        assert!(pool.data(b).is_empty());
        assert_eq!(pool.data(a), b"GET /a");
        // Order now, oldest first: c, a, b.
        assert_eq!(pool.reclaim(owner(5)).unwrap(), (c, owner(3)));
        assert_eq!(pool.reclaim(owner(6)).unwrap(), (a, owner(1)));
        // A slot given back leaves the list; the rest keep their order.
        pool.give_back(b);
        assert_eq!(pool.in_use(), 2);
        assert_eq!(pool.reclaim(owner(7)).unwrap(), (c, owner(5)));
        pool.give_back(a);
        pool.give_back(c);
        assert_eq!(pool.in_use(), 0);
        assert!(pool.reclaim(owner(8)).is_none());
        // Freed slots are taken again, and listed again.
        let d = pool.take(owner(10)).unwrap();
        assert_eq!(pool.reclaim(owner(11)).unwrap(), (d, owner(10)));
    }
}

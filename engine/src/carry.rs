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

/// Bytes one slot holds: a request head up to 32 KiB, nginx's default limit
/// (`large_client_header_buffers 4 8k`: each line within 8 KiB, the head within four such
/// buffers). A longer head is counted at its request line from what the slot holds
/// (`incomplete_heads`, and `carry_overflow`): nginx answers it 400 and logs it.
pub const CARRY_CAP: usize = 32 * 1024;

/// Slots per worker: heads cut in the middle at the same moment on one core. 128 x 32 KiB =
/// 4 MiB of address space per worker, in one zeroed allocation: the kernel backs a page only
/// once a head is written to it, so resident memory follows the heads actually carried.
pub const CARRY_SLOTS: usize = 128;

pub use crate::slots::Owner;
use crate::slots::Slots;

/// Fixed pool of carry slots. See the module doc. The default pool has no slots and
/// allocates nothing: a placeholder while the real pool is moved out.
#[derive(Debug, Default)]
pub struct CarryPool {
    bytes: Vec<u8>,
    lens: Vec<usize>,
    slots: Slots,
}

impl CarryPool {
    /// A pool of `slots` slots, allocated now.
    pub fn new(slots: usize) -> CarryPool {
        let slots = slots.max(1);
        CarryPool {
            bytes: vec![0; slots * CARRY_CAP],
            lens: vec![0; slots],
            slots: Slots::new(slots),
        }
    }

    /// Takes a free slot for `owner`, empty and most recently active; `None` when all are in
    /// use (see [`CarryPool::reclaim`]).
    pub fn take(&mut self, owner: Owner) -> Option<u32> {
        let slot = self.slots.take(owner)?;
        self.lens[slot as usize] = 0;
        Some(slot)
    }

    /// Marks `slot` most recently active (its head got a new segment).
    pub fn touch(&mut self, slot: u32) {
        self.slots.touch(slot);
    }

    /// The least recently active slot in use and its owner, taken away from that owner and
    /// given to `owner`, empty and most recently active; `None` when the pool has no slot in
    /// use. The caller makes the old owner forget the slot.
    pub fn reclaim(&mut self, owner: Owner) -> Option<(u32, Owner)> {
        let (slot, old) = self.slots.reclaim(owner)?;
        self.lens[slot as usize] = 0;
        Some((slot, old))
    }

    /// The owner of `slot`, in use.
    pub fn owner(&self, slot: u32) -> Owner {
        self.slots.owner(slot)
    }

    /// Gives a slot back.
    pub fn give_back(&mut self, slot: u32) {
        self.slots.give_back(slot);
    }

    /// Slots in use.
    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.slots.in_use()
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

    /// The order of reclaiming is `Slots`' (its own test); here, that a reclaimed slot comes
    /// back empty and the others keep their bytes.
    #[test]
    fn a_reclaimed_slot_comes_back_empty() {
        let mut pool = CarryPool::new(2);
        assert!(pool.reclaim(owner(9)).is_none());
        let a = pool.take(owner(1)).unwrap();
        let b = pool.take(owner(2)).unwrap();
        pool.append(a, b"GET /a");
        pool.append(b, b"GET /b");
        pool.touch(a);
        assert_eq!(pool.reclaim(owner(3)).unwrap(), (b, owner(2)));
        assert_eq!(pool.owner(b), owner(3));
        assert!(pool.data(b).is_empty());
        assert_eq!(pool.data(a), b"GET /a");
    }
}

//! Slot bookkeeping shared by the worker's fixed pools (cut heads in [`crate::carry`], held
//! out-of-order segments in [`crate::reorder`]): which slots are free, who holds each slot in
//! use, and the slots in use ordered by last activity, so the least recently active one can be
//! reclaimed when none is free.
//!
//! Contract: [`Slots`] knows `n` slots, all free at first. Taking, touching, reclaiming and
//! giving back are O(1) and never allocate after [`Slots::new`]: the free list is a stack and
//! the in-use list is intrusive (two link arrays by slot).

/// End of a list (no slot).
const NIL: u32 = u32::MAX;

/// Who holds a pool slot: a flow slot and the side of the flow it serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The flow table slot.
    pub flow: u32,
    /// The flow direction (0 or 1).
    pub side: usize,
}

/// Free slots, owners, and the in-use list by activity. The default has no slots and
/// allocates nothing (a placeholder while a pool is moved out).
#[derive(Debug)]
pub struct Slots {
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

impl Default for Slots {
    fn default() -> Slots {
        Slots {
            free: Vec::new(),
            owners: Vec::new(),
            older: Vec::new(),
            newer: Vec::new(),
            oldest: NIL,
            newest: NIL,
        }
    }
}

impl Slots {
    /// `slots` slots (at least one), all free.
    pub fn new(slots: usize) -> Slots {
        let slots = slots.max(1);
        let count = u32::try_from(slots).unwrap_or(u32::MAX);
        Slots {
            free: (0..count).rev().collect(),
            owners: vec![Owner { flow: NIL, side: 0 }; slots],
            older: vec![NIL; slots],
            newer: vec![NIL; slots],
            oldest: NIL,
            newest: NIL,
        }
    }

    /// How many slots there are.
    pub fn capacity(&self) -> usize {
        self.owners.len()
    }

    /// Slots in use.
    pub fn in_use(&self) -> usize {
        self.owners.len() - self.free.len()
    }

    /// Takes a free slot for `owner`, most recently active; `None` when all are in use.
    pub fn take(&mut self, owner: Owner) -> Option<u32> {
        debug_assert!(owner.flow != NIL, "an owner is a flow slot");
        let slot = self.free.pop()?;
        self.owners[slot as usize] = owner;
        self.link_newest(slot);
        Some(slot)
    }

    /// Marks `slot` most recently active.
    pub fn touch(&mut self, slot: u32) {
        if self.newest != slot {
            self.unlink(slot);
            self.link_newest(slot);
        }
    }

    /// The least recently active slot in use, if any.
    pub fn oldest(&self) -> Option<u32> {
        (self.oldest != NIL).then_some(self.oldest)
    }

    /// The least recently active slot in use and its owner, taken away from that owner and
    /// given to `owner`, most recently active; `None` when no slot is in use. The caller makes
    /// the old owner forget the slot.
    pub fn reclaim(&mut self, owner: Owner) -> Option<(u32, Owner)> {
        let slot = self.oldest()?;
        let old = self.owners[slot as usize];
        self.owners[slot as usize] = owner;
        self.touch(slot);
        Some((slot, old))
    }

    /// The owner of `slot`, in use.
    pub fn owner(&self, slot: u32) -> Owner {
        self.owners[slot as usize]
    }

    /// Gives a slot back. A slot that is free already is left as it is: unlinked a second
    /// time it would cut the in-use list, and pushed twice it would be handed out twice.
    pub fn give_back(&mut self, slot: u32) {
        if self.owners[slot as usize].flow == NIL {
            return;
        }
        self.unlink(slot);
        self.owners[slot as usize].flow = NIL;
        self.free.push(slot);
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
    fn a_slot_given_back_twice_is_free_once_and_the_list_stays_whole() {
        let mut slots = Slots::new(3);
        let a = slots.take(owner(1)).unwrap();
        let b = slots.take(owner(2)).unwrap();
        let c = slots.take(owner(3)).unwrap();
        slots.give_back(b);
        slots.give_back(b);
        assert_eq!(slots.in_use(), 2);
        // The in-use list still holds a then c, oldest first.
        assert_eq!(slots.reclaim(owner(4)).unwrap(), (a, owner(1)));
        assert_eq!(slots.reclaim(owner(5)).unwrap(), (c, owner(3)));
        // b is handed out once, then none is free.
        assert_eq!(slots.take(owner(6)), Some(b));
        assert_eq!(slots.take(owner(7)), None);
    }

    #[test]
    fn reclaims_the_least_recently_active_slot() {
        let mut slots = Slots::new(3);
        assert!(slots.reclaim(owner(9)).is_none());
        let a = slots.take(owner(1)).unwrap();
        let b = slots.take(owner(2)).unwrap();
        let c = slots.take(owner(3)).unwrap();
        assert!(slots.take(owner(4)).is_none());
        // `a` was active after `b` and `c`: `b` is now the least recently active.
        slots.touch(a);
        assert_eq!(slots.oldest(), Some(b));
        let (slot, old) = slots.reclaim(owner(4)).unwrap();
        assert_eq!((slot, old), (b, owner(2)));
        assert_eq!(slots.owner(b), owner(4));
        // Order now, oldest first: c, a, b.
        assert_eq!(slots.reclaim(owner(5)).unwrap(), (c, owner(3)));
        assert_eq!(slots.reclaim(owner(6)).unwrap(), (a, owner(1)));
        // A slot given back leaves the list; the rest keep their order.
        slots.give_back(b);
        assert_eq!(slots.in_use(), 2);
        assert_eq!(slots.reclaim(owner(7)).unwrap(), (c, owner(5)));
        slots.give_back(a);
        slots.give_back(c);
        assert_eq!(slots.in_use(), 0);
        assert!(slots.reclaim(owner(8)).is_none());
        assert_eq!(slots.oldest(), None);
        // Freed slots are taken again, and listed again.
        let d = slots.take(owner(10)).unwrap();
        assert_eq!(slots.reclaim(owner(11)).unwrap(), (d, owner(10)));
        assert_eq!(slots.capacity(), 3);
    }
}

//! The open-addressing index: finding a key's entry or the empty
//! slot it would take, and unlinking an evicted entry (backward-shift deletion).

use super::{entry_id, HeavyHitters, Probe, StoredKey, EMPTY, EMPTY_SLOT, MAX_CAPACITY};

impl HeavyHitters {
    /// `Ok(entry id)` of `key`, or `Err(the empty slot where it would go)`.
    #[inline(always)]
    pub(super) fn find(&self, key: &[u8], tag: u32) -> Result<usize, usize> {
        self.find_by(tag, &StoredKey(key))
    }

    /// `Ok(id)` of the entry with `tag` that holds `key`, or `Err(the empty slot where it would
    /// go)`.
    #[inline(always)]
    pub(super) fn find_by(&self, tag: u32, key: &impl Probe) -> Result<usize, usize> {
        // The mask taken from the index's own length (a power of two, equal to `self.mask`),
        // so that the compiler sees every masked position in bounds: no bounds check, and no
        // slicing to show it.
        let index = &self.index[..];
        let mask = index.len().wrapping_sub(1);
        let mut pos = tag as usize & mask;
        loop {
            let slot = index[pos];
            // `EMPTY` is the only id at or above `MAX_CAPACITY`: the bound fits an
            // instruction's immediate, `EMPTY` (zero-extended) does not, and took a register.
            if slot.entry as usize >= MAX_CAPACITY {
                debug_assert_eq!(slot.entry, EMPTY);
                return Err(pos);
            }
            if slot.tag == tag {
                let e = slot.entry as usize;
                if key.matches(&self.entries[e]) {
                    return Ok(e);
                }
            }
            // The index is at most a quarter full, so an empty slot ends every probe.
            pos = (pos + 1) & mask;
        }
    }

    /// The first empty slot on `tag`'s probe sequence.
    #[inline]
    pub(super) fn free_slot(&self, tag: u32) -> usize {
        let mut pos = tag as usize & self.mask;
        while self.index[pos].entry != EMPTY {
            pos = (pos + 1) & self.mask;
        }
        pos
    }

    /// Unlinks entry `e`, whose count is `count`, from the index and records that its key may
    /// be gone with its count. Returns the slot that became empty (the others only moved back).
    #[inline(always)]
    pub(super) fn evict(&mut self, e: usize, count: u64) -> usize {
        self.absent_bound = self.absent_bound.max(count);
        let mut hole = self.entries[e].slot;
        debug_assert_eq!(
            self.index[hole].entry,
            entry_id(e),
            "an entry knows its slot"
        );
        // Backward-shift deletion: walk the cluster after the hole and move back every slot
        // whose probe starts at or before the hole (cyclically), so no probe meets a gap
        // before its key.
        let mut pos = (hole + 1) & self.mask;
        loop {
            let slot = self.index[pos];
            // As in `find_by`.
            if slot.entry as usize >= MAX_CAPACITY {
                break;
            }
            let home = slot.tag as usize & self.mask;
            let from_home = pos.wrapping_sub(home) & self.mask;
            let from_hole = pos.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.index[hole] = slot;
                self.entries[slot.entry as usize].slot = hole;
                hole = pos;
            }
            pos = (pos + 1) & self.mask;
        }
        self.index[hole] = EMPTY_SLOT;
        hole
    }

    /// The first empty slot on `tag`'s probe sequence, given `free`, the first one before a
    /// deletion that emptied `emptied`: every slot from the probe's start up to `free` was
    /// taken, and only `emptied` became free since.
    #[inline(always)]
    pub(super) fn free_slot_after(&self, tag: u32, free: usize, emptied: usize) -> usize {
        let home = tag as usize & self.mask;
        let to_free = free.wrapping_sub(home) & self.mask;
        let to_emptied = emptied.wrapping_sub(home) & self.mask;
        if to_emptied < to_free {
            emptied
        } else {
            free
        }
    }
}

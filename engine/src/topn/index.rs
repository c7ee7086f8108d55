//! The open-addressing index: hashing a key to its tag, finding a key's entry or the empty
//! slot it would take, and unlinking an evicted entry (backward-shift deletion).

use core::hash::{BuildHasher, Hasher};

use foldhash::fast::FixedState;

use super::{entry_id, HeavyHitters, EMPTY, EMPTY_SLOT};

/// Fixed hash seed: every table hashes a key the same way, so merges reuse stored tags and runs
/// are reproducible. Attackers choosing colliding keys only lengthen probes in tables whose size
/// is bounded anyway.
const HASHER: FixedState = FixedState::with_seed(0x6c69_6e65_7761_7463);

/// The tag of a key: the high half of its hash (the low half of foldhash's folded multiply is
/// the weaker one).
#[inline(always)]
pub(super) fn tag_of(key: &[u8]) -> u32 {
    let mut hasher = HASHER.build_hasher();
    hasher.write(key);
    (hasher.finish() >> 32) as u32
}

impl HeavyHitters {
    /// `Ok(entry id)` of `key`, or `Err(the empty slot where it would go)`.
    #[inline(always)]
    pub(super) fn find(&self, key: &[u8], tag: u32) -> Result<usize, usize> {
        let mut pos = tag as usize & self.mask;
        loop {
            let slot = self.index[pos];
            if slot.entry == EMPTY {
                return Err(pos);
            }
            if slot.tag == tag {
                let e = slot.entry as usize;
                if self.entries[e].key() == key {
                    return Ok(e);
                }
            }
            // The index is at most half full, so an empty slot ends every probe.
            pos = (pos + 1) & self.mask;
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

    /// Unlinks entry `e` from the index and records that its key may be gone with its count.
    pub(super) fn evict(&mut self, e: usize) {
        self.absent_bound = self.absent_bound.max(self.counts[e]);
        let id = entry_id(e);
        let mut hole = self.entries[e].tag as usize & self.mask;
        while self.index[hole].entry != id {
            hole = (hole + 1) & self.mask;
        }
        // Backward-shift deletion: walk the cluster after the hole and move back every slot
        // whose probe starts at or before the hole (cyclically), so no probe meets a gap
        // before its key.
        let mut pos = (hole + 1) & self.mask;
        loop {
            let slot = self.index[pos];
            if slot.entry == EMPTY {
                break;
            }
            let home = slot.tag as usize & self.mask;
            let from_home = pos.wrapping_sub(home) & self.mask;
            let from_hole = pos.wrapping_sub(hole) & self.mask;
            if from_home >= from_hole {
                self.index[hole] = slot;
                hole = pos;
            }
            pos = (pos + 1) & self.mask;
        }
        self.index[hole] = EMPTY_SLOT;
    }
}

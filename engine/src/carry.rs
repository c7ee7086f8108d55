//! Carry buffers: the first bytes of a message head that was cut at a segment boundary.
//!
//! Contract: a [`CarryPool`] holds a fixed number of slots of [`CARRY_CAP`] bytes each, in one
//! allocation made at start. A flow direction takes a slot only while a head is cut, and gives
//! it back as soon as the head completes, the flow ends or is evicted. When no slot is free, or
//! a head outgrows its slot, the caller counts it (`carry_overflow`) and resynchronises: memory
//! stays bounded whatever the traffic does.

/// Bytes one slot holds: a request head up to 8 KiB, the default header-size limit of nginx's
/// `large_client_header_buffers` and of Node.js. Bigger heads are counted as overflow.
pub const CARRY_CAP: usize = 8 * 1024;

/// Slots per worker: heads cut in the middle at the same moment on one core. 128 x 8 KiB =
/// 1 MiB per worker.
pub const CARRY_SLOTS: usize = 128;

/// Fixed pool of carry slots. See the module doc. The default pool has no slots and
/// allocates nothing: a placeholder while the real pool is moved out.
#[derive(Debug, Default)]
pub struct CarryPool {
    bytes: Vec<u8>,
    lens: Vec<usize>,
    free: Vec<u32>,
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
        }
    }

    /// Takes a free slot, empty; `None` when all are in use.
    pub fn take(&mut self) -> Option<u32> {
        let slot = self.free.pop()?;
        self.lens[slot as usize] = 0;
        Some(slot)
    }

    /// Gives a slot back.
    pub fn give_back(&mut self, slot: u32) {
        debug_assert!(!self.free.contains(&slot), "carry slot {slot} freed twice");
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_consume_and_bounds() {
        let mut pool = CarryPool::new(2);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        assert_eq!(pool.append(a, b"GET /x HT"), 9);
        assert_eq!(pool.append(b, b"other"), 5);
        pool.consume(a, 4);
        assert_eq!(pool.data(a), b"/x HT");
        assert_eq!(pool.data(b), b"other");
        let big = vec![b'x'; CARRY_CAP];
        assert_eq!(pool.append(a, &big), CARRY_CAP - 5);
        assert_eq!(pool.data(a).len(), CARRY_CAP);
        assert_eq!(pool.append(a, b"more"), 0);
        pool.give_back(a);
        assert_eq!(pool.in_use(), 1);
        let c = pool.take().unwrap();
        assert!(pool.data(c).is_empty());
    }
}

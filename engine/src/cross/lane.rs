//! A lane: one worker's records for another, in a single-producer single-consumer ring of
//! variable-length records.
//!
//! Contract: [`lane`] makes a ring of a power-of-two number of bytes and its two ends. The
//! [`Producer`] appends records of up to [`Producer::max_record`] bytes; each is visible to
//! the [`Consumer`] once `push` returns (a release store of the tail). The consumer reads the
//! records in order and frees their space when its `drain` returns (a release store of the
//! head). Neither end blocks, locks or allocates: a full lane refuses a record (`push` returns
//! false) and the caller decides what to do.
//!
//! Layout: positions count bytes since the lane was made (wrapping); a record starts on an
//! 8-byte boundary with one word, its length in bytes, followed by its bytes padded to 8. A
//! record that would run past the end of the buffer is preceded by a [`WRAP`] word and starts
//! at offset 0 instead, so every record is one contiguous slice.
//!
//! Safety argument, once for the module: the buffer is initialised (zeroed) when made and
//! never freed while either end lives (both hold the `Arc`). The producer writes only bytes in
//! `[tail, head + capacity)`, which the consumer does not read; the consumer reads only bytes
//! in `[head, tail)`, which the producer does not write. The tail's release store publishes
//! the producer's writes before the consumer's acquire load of it lets it read them; the
//! head's release store publishes that the consumer is done with bytes before the producer's
//! acquire load lets it write them again. Each end is one value, not `Clone`, used through
//! `&mut self`: one producer and one consumer per lane.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam_utils::CachePadded;

/// Bytes of a record's length word, and the alignment of every record.
const WORD: usize = 8;

/// The length word that says "the next record starts at offset 0".
const WRAP: u64 = u64::MAX;

/// Records a drain takes before it publishes the room they leave.
const PUBLISH_EVERY: usize = 64;

/// The smallest lane: room for a few records of the largest kind.
pub const MIN_LANE_BYTES: usize = 64 * 1024;

/// What both ends share.
struct Ring {
    /// The bytes, as words so that every record is 8-aligned.
    buf: Box<[UnsafeCell<u64>]>,
    /// Capacity in bytes minus one (the capacity is a power of two).
    mask: usize,
    /// Where the consumer reads next (bytes since the start, wrapping).
    head: CachePadded<AtomicUsize>,
    /// Where the producer writes next.
    tail: CachePadded<AtomicUsize>,
}

// SAFETY: the module doc's argument: the two ends touch disjoint byte ranges, handed over by
// the acquire/release pairs on `head` and `tail`.
unsafe impl Sync for Ring {}

impl Ring {
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    fn base(&self) -> *mut u8 {
        UnsafeCell::raw_get(self.buf.as_ptr()).cast::<u8>()
    }
}

/// Rounds `len` up to a multiple of [`WORD`].
const fn padded(len: usize) -> usize {
    (len + WORD - 1) & !(WORD - 1)
}

/// Makes a lane of `bytes` (rounded up to a power of two, at least [`MIN_LANE_BYTES`]).
pub fn lane(bytes: usize) -> (Producer, Consumer) {
    let capacity = bytes.max(MIN_LANE_BYTES).next_power_of_two();
    // Zeroed by the allocator (calloc: fresh pages come zeroed from the kernel and are
    // resident only once written), not word by word: a lane costs memory as it is used.
    let zeroed: Box<[u64]> = vec![0u64; capacity / WORD].into_boxed_slice();
    // SAFETY: `UnsafeCell<u64>` is `repr(transparent)` over `u64`, so the slice's layout and
    // length are the same; the box is taken apart and put back together once.
    let buf: Box<[UnsafeCell<u64>]> =
        unsafe { Box::from_raw(Box::into_raw(zeroed) as *mut [UnsafeCell<u64>]) };
    let ring = Arc::new(Ring {
        buf,
        mask: capacity - 1,
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
    });
    (
        Producer {
            ring: Arc::clone(&ring),
            tail: 0,
            head: 0,
        },
        Consumer { ring, head: 0 },
    )
}

/// The writing end of a lane.
pub struct Producer {
    ring: Arc<Ring>,
    /// Our tail (published after each record).
    tail: usize,
    /// The consumer's head as last read: re-read only when the lane looks full.
    head: usize,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.ring.capacity())
            .field("used", &self.tail.wrapping_sub(self.head))
            .finish()
    }
}

impl Producer {
    /// The longest record a push may carry: half the lane, so that a record plus the end of
    /// the buffer it skips always fits an empty lane.
    pub fn max_record(&self) -> usize {
        self.ring.capacity() / 2 - WORD
    }

    /// Appends a record of `len` bytes written by `fill` (which gets exactly `len` bytes) and
    /// publishes it; false, with nothing written, when the lane has no room for it now or
    /// `len` is over [`Producer::max_record`].
    pub fn push(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> bool {
        if len > self.max_record() {
            return false;
        }
        let capacity = self.ring.capacity();
        let size = WORD + padded(len);
        let offset = self.tail & self.ring.mask;
        let to_end = capacity - offset;
        let need = if size > to_end { to_end + size } else { size };
        if self.tail.wrapping_sub(self.head) + need > capacity {
            // Acquire: the consumer's reads of the bytes it freed happened before.
            self.head = self.ring.head.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head) + need > capacity {
                return false;
            }
        }
        let base = self.ring.base();
        let mut at = offset;
        if size > to_end {
            // SAFETY: `offset` is 8-aligned and below the capacity (so a whole word fits before
            // the end), and the bytes from the tail to the end are free (checked above).
            unsafe { base.add(offset).cast::<u64>().write(WRAP) };
            self.tail = self.tail.wrapping_add(to_end);
            at = 0;
        }
        // SAFETY: `[at, at + size)` is inside the buffer (`size <= capacity - at` by the wrap
        // rule) and free (checked above); `at` is 8-aligned. The bytes are initialised (the
        // buffer was zeroed), so the slice is valid for `fill`.
        unsafe {
            let record = base.add(at);
            record.cast::<u64>().write(len as u64);
            fill(std::slice::from_raw_parts_mut(record.add(WORD), len));
        }
        self.tail = self.tail.wrapping_add(size);
        // Release: the record's bytes before the tail that shows them.
        self.ring.tail.store(self.tail, Ordering::Release);
        true
    }
}

/// The reading end of a lane.
pub struct Consumer {
    ring: Arc<Ring>,
    /// Our head (published when a drain ends).
    head: usize,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.ring.capacity())
            .finish()
    }
}

impl Consumer {
    /// Whether records are waiting.
    pub fn is_empty(&self) -> bool {
        // Acquire: as in `drain`, though only the position is used here.
        self.ring.tail.load(Ordering::Acquire) == self.head
    }

    /// Hands `each` every record published when the call began, in order, then frees their
    /// space. Returns how many there were.
    pub fn drain(&mut self, mut each: impl FnMut(&[u8])) -> usize {
        // Acquire: the producer's writes of every record before this tail are visible.
        let tail = self.ring.tail.load(Ordering::Acquire);
        let capacity = self.ring.capacity();
        let base = self.ring.base();
        let mut n = 0;
        while self.head != tail {
            let offset = self.head & self.ring.mask;
            // SAFETY: `offset` is 8-aligned, inside the buffer, and in `[head, tail)`: a
            // published length word (or wrap word) the producer no longer writes.
            let word = unsafe { base.add(offset).cast::<u64>().read() };
            if word == WRAP {
                self.head = self.head.wrapping_add(capacity - offset);
                continue;
            }
            // The producer wrote `len as u64` from a usize.
            let len = usize::try_from(word).unwrap_or(0);
            // SAFETY: the record's bytes follow its word, inside the buffer (the producer
            // placed it so) and in `[head, tail)`.
            let record = unsafe { std::slice::from_raw_parts(base.add(offset + WORD), len) };
            each(record);
            self.head = self.head.wrapping_add(WORD + padded(len));
            n += 1;
            if n % PUBLISH_EVERY == 0 {
                // Release: as below; a long drain frees room as it goes.
                self.ring.head.store(self.head, Ordering::Release);
            }
        }
        // Release: our reads of the freed bytes happen before the producer reuses them.
        self.ring.head.store(self.head, Ordering::Release);
        n
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // small test numbers
mod tests {
    use super::*;

    fn record(i: u32, len: usize) -> Vec<u8> {
        (0..len).map(|k| (i as usize + k) as u8).collect()
    }

    #[test]
    fn records_come_out_in_order_across_the_wrap() {
        let (mut p, mut c) = lane(MIN_LANE_BYTES);
        let mut sent = 0u32;
        let mut got = 0u32;
        // Lengths that do not divide the lane: records wrap at every offset class.
        for round in 0..200 {
            for _ in 0..7 {
                let len = 1 + (sent as usize * 37 + round) % 3000;
                let r = record(sent, len);
                if !p.push(r.len(), |b| b.copy_from_slice(&r)) {
                    break;
                }
                sent += 1;
            }
            c.drain(|b| {
                assert_eq!(b[0], got as u8, "record {got} out of order");
                assert_eq!(b, &record(got, b.len())[..]);
                got += 1;
            });
        }
        assert_eq!(sent, got);
        assert!(sent > 1000, "only {sent} records went through");
    }

    #[test]
    fn a_full_lane_refuses_and_takes_again_once_drained() {
        let (mut p, mut c) = lane(MIN_LANE_BYTES);
        let r = vec![7u8; 1000];
        let mut n = 0;
        while p.push(r.len(), |b| b.copy_from_slice(&r)) {
            n += 1;
        }
        // 1,008 bytes per record: 65 fit 64 KiB.
        assert_eq!(n, MIN_LANE_BYTES / 1008);
        // 16 bytes are left: a record of 1 byte (16 with its word) fits, one of 9 does not.
        assert!(!p.push(9, |_| {}), "still full");
        assert!(p.push(1, |b| b[0] = 7));
        assert_eq!(c.drain(|b| assert_eq!(b, &r[..b.len()])), n + 1);
        assert!(c.is_empty());
        assert!(p.push(r.len(), |b| b.copy_from_slice(&r)));
    }

    #[test]
    fn a_record_over_half_the_lane_is_refused() {
        let (mut p, mut c) = lane(MIN_LANE_BYTES);
        assert!(!p.push(p.max_record() + 1, |_| unreachable!()));
        assert!(p.push(p.max_record(), |b| b.fill(1)));
        assert_eq!(
            c.drain(|b| assert_eq!(b.len(), MIN_LANE_BYTES / 2 - WORD)),
            1
        );
    }

    #[test]
    fn two_threads_lose_and_reorder_nothing() {
        const RECORDS: u32 = 200_000;
        let (mut p, mut c) = lane(MIN_LANE_BYTES);
        let producer = std::thread::spawn(move || {
            let mut i = 0u32;
            while i < RECORDS {
                let len = 4 + (i as usize % 700);
                if p.push(len, |b| {
                    b[..4].copy_from_slice(&i.to_le_bytes());
                    b[4..].fill(i as u8);
                }) {
                    i += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0u32;
        while next < RECORDS {
            let n = c.drain(|b| {
                let i = u32::from_le_bytes(b[..4].try_into().unwrap());
                assert_eq!(i, next);
                assert_eq!(b.len(), 4 + (i as usize % 700));
                assert!(b[4..].iter().all(|&x| x == i as u8), "record {i} torn");
                next += 1;
            });
            if n == 0 {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(c.is_empty());
    }
}

//! The space-saving minimum: the entry an absent key replaces in a full table (see the
//! module doc of `topn` for the hint and cursor).

use super::HeavyHitters;

/// The smallest of `counts` (`u64::MAX` if empty), written as eight independent lanes so the
/// compiler turns it into vector min operations.
fn min_of(counts: &[u64]) -> u64 {
    const LANES: usize = 8;
    let mut lanes = [u64::MAX; LANES];
    let chunks = counts.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &c) in lanes.iter_mut().zip(chunk) {
            *lane = (*lane).min(c);
        }
    }
    let mut min = rest.iter().copied().fold(u64::MAX, u64::min);
    for lane in lanes {
        min = min.min(lane);
    }
    min
}

impl HeavyHitters {
    /// An entry with the smallest count, of a full table, and that count.
    #[inline(always)]
    pub(super) fn find_min(&mut self) -> (usize, u64) {
        // Full: every count is in use.
        debug_assert_eq!(self.len, self.counts.len(), "the minimum of a full table");
        let counts = &self.counts[..];
        let hint = self.min_hint;
        if let Some(i) = counts[self.min_cursor..].iter().position(|&c| c == hint) {
            // Every count is >= hint, so one equal to it is a minimum.
            self.min_cursor += i;
            return (self.min_cursor, hint);
        }
        self.find_min_again()
    }

    /// [`find_min`](Self::find_min) once every entry at the old minimum has grown: a scan of
    /// all counts. Out of line: it runs once per minimum (on traffic with many keys at the
    /// minimum, rarely), and inlined its set-up ran ahead of every eviction.
    #[cold]
    #[inline(never)]
    fn find_min_again(&mut self) -> (usize, u64) {
        let counts = &self.counts[..self.len];
        let min = min_of(counts);
        self.min_hint = min;
        self.min_cursor = counts.iter().position(|&c| c == min).unwrap_or(0);
        (self.min_cursor, min)
    }
}

//! Every seeded choice: the SplitMix64 generator (also the live generator's), and the keys
//! each request carries: heavy keys in their shuffled per-mille slots, the rest walking each
//! pool so that every key comes once before any comes twice.

use std::fmt::Write as _;

use super::spec::{HeavyKey, KeySpec, PER_MILLE};

/// SplitMix64: tiny, fast, and the same sequence everywhere for a seed (also the live
/// generator's).
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn next_u32(&mut self) -> u32 {
        high_half(self.next_u64())
    }

    pub(super) fn next_u16(&mut self) -> u16 {
        let [high, low, ..] = self.next_u32().to_be_bytes();
        u16::from_be_bytes([high, low])
    }

    /// Uniform in `0..n` for `n ≥ 1` (multiply-shift: bias below 2^-32 per draw).
    pub(crate) fn below(&mut self, n: u32) -> u32 {
        high_half(u64::from(self.next_u32()) * u64::from(n))
    }

    /// True `per_mille` times in a thousand.
    pub(super) fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < per_mille
    }
}

fn high_half(x: u64) -> u32 {
    let [a, b, c, d, ..] = x.to_be_bytes();
    u32::from_be_bytes([a, b, c, d])
}

/// Walks `0..len` in a seeded order that visits every index once before any twice:
/// `(offset + k·stride) mod len` with `stride` coprime to `len`.
#[derive(Debug, Clone)]
struct PoolWalk {
    len: u32,
    stride: u32,
    at: u32,
}

impl PoolWalk {
    fn new(len: u32, rng: &mut SplitMix64) -> Self {
        debug_assert!(len > 0);
        // Near the golden ratio of the pool, so neighbours in time are far apart in the pool.
        let golden = u32::try_from(u64::from(len) * 618 / 1000).expect("below len");
        let mut stride = (golden + rng.below(len / 16 + 1)) % len;
        while gcd(stride, len) != 1 {
            stride = (stride + 1) % len;
        }
        PoolWalk {
            len,
            stride,
            at: rng.below(len),
        }
    }

    fn next_index(&mut self) -> u32 {
        let index = self.at;
        // at + stride may exceed u32 for huge pools: step without overflowing.
        if self.at >= self.len - self.stride {
            self.at -= self.len - self.stride;
        } else {
            self.at += self.stride;
        }
        index
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// No heavy key in this slot of the 1000-request block.
const NOT_HEAVY: u32 = u32::MAX;

/// Picks section, host and user agent for each request.
#[derive(Debug)]
pub(super) struct KeyChooser {
    heavy: Vec<HeavyKey>,
    /// The heavy hosts lower-cased, as the truth counts them.
    heavy_hosts_lower: Vec<String>,
    /// Slot `k % 1000` of request `k`: the index of its heavy key, or [`NOT_HEAVY`].
    slots: Vec<u32>,
    sections: PoolWalk,
    hosts: PoolWalk,
    agents: PoolWalk,
}

impl KeyChooser {
    pub(super) fn new(keys: &KeySpec, rng: &mut SplitMix64) -> Self {
        let mut slots = Vec::with_capacity(1000);
        for (index, key) in keys.heavy.iter().enumerate() {
            let index = u32::try_from(index).expect("at most 1000 heavy keys take slots");
            slots.extend(std::iter::repeat_n(index, key.per_mille as usize));
        }
        slots.resize(1000, NOT_HEAVY);
        for i in (1..slots.len()).rev() {
            let j = rng.below(u32::try_from(i + 1).expect("i < 1000")) as usize;
            slots.swap(i, j);
        }
        KeyChooser {
            heavy: keys.heavy.clone(),
            heavy_hosts_lower: keys.heavy.iter().map(|k| k.host.to_lowercase()).collect(),
            slots,
            sections: PoolWalk::new(keys.distinct_sections, rng),
            hosts: PoolWalk::new(keys.distinct_hosts, rng),
            agents: PoolWalk::new(keys.distinct_user_agents, rng),
        }
    }

    /// Writes request `k`'s section, wire host, counted host and user agent into the buffers.
    pub(super) fn choose(&mut self, k: u64, keys: &mut RequestKeys) {
        keys.clear();
        let slot = self.slots[usize::try_from(k % PER_MILLE).expect("below 1000")];
        if slot == NOT_HEAVY {
            let section = self.sections.next_index();
            let host = self.hosts.next_index();
            let _ = write!(keys.section, "/s{section}");
            let _ = write!(keys.host, "h{host}.example");
            keys.host_lower.push_str(&keys.host);
        } else {
            let heavy = &self.heavy[slot as usize];
            keys.section.push_str(&heavy.section);
            keys.host.push_str(&heavy.host);
            keys.host_lower
                .push_str(&self.heavy_hosts_lower[slot as usize]);
        }
        let agent = self.agents.next_index();
        let _ = write!(keys.user_agent, "agent/{agent}");
    }
}

/// Reused buffers for one request's keys.
#[derive(Debug, Default)]
pub(super) struct RequestKeys {
    pub(super) section: String,
    /// As written on the wire.
    pub(super) host: String,
    /// As counted: lower-cased.
    pub(super) host_lower: String,
    pub(super) user_agent: String,
}

impl RequestKeys {
    fn clear(&mut self) {
        self.section.clear();
        self.host.clear();
        self.host_lower.clear();
        self.user_agent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_walk_visits_every_index_once_per_round() {
        let mut rng = SplitMix64(7);
        for len in [1u32, 2, 3, 10, 97, 1000, 4096] {
            let mut walk = PoolWalk::new(len, &mut rng);
            let mut seen = vec![0u32; len as usize];
            for _ in 0..2 * len {
                seen[walk.next_index() as usize] += 1;
            }
            assert!(seen.iter().all(|&n| n == 2), "len {len}: {seen:?}");
        }
    }

    #[test]
    fn pool_walk_steps_without_overflow_near_u32_max() {
        let mut walk = PoolWalk {
            len: u32::MAX,
            stride: u32::MAX - 2,
            at: u32::MAX - 1,
        };
        assert_eq!(walk.next_index(), u32::MAX - 1);
        // (MAX - 1) + (MAX - 2) = MAX - 3 (mod MAX).
        assert_eq!(walk.next_index(), u32::MAX - 3);
    }
}

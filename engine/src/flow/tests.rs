//! The flow table and keys against plain references.

use super::*;

#[test]
fn an_ipv6_client_cannot_send_all_its_ports_to_one_hash() {
    // The client picks the low 64 bits of its address. Before, the four address words were
    // XORed into the multiply's first operand, which a chosen word cancelled against the
    // seed; now it may zero its own end's multiply, and the ports still spread.
    let server: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0001;
    let (s0, s1): (u64, u64) = (0x2001_0db8_0000_0000, 1);
    let c0: u64 = 0x2001_0db9_0000_0000;
    let cancels_linear_fold =
        (SEEDS[0] ^ s1 ^ s0.rotate_left(16) ^ c0.rotate_left(48)).rotate_right(32);
    for c1 in [cancels_linear_fold, SEEDS[2], SEEDS[2] ^ s1, 0] {
        for c0 in [c0, 0x0000_0000_0000_0000, u64::MAX] {
            let client = (u128::from(c0) << 64) | u128::from(c1);
            let srv = Endpoint::new(IpAddr::from(std::net::Ipv6Addr::from(server)), 443);
            let hashes: std::collections::HashSet<u64> = (1..=5000u16)
                .map(|p| {
                    let c = Endpoint::new(IpAddr::from(std::net::Ipv6Addr::from(client)), p);
                    FlowKey::of(0, c, srv).0.hash() & u64::from(u32::MAX)
                })
                .collect();
            assert!(
                hashes.len() > 4990,
                "{c0:#x}:{c1:#x}: {} distinct of 5000",
                hashes.len()
            );
        }
    }
}

/// The segment path's IPv4 key finds what the general key inserted, from either end, with
/// the same side; an IPv6 flow and another VLAN's are not found by it.
#[test]
fn an_ipv4_key_finds_the_general_keys_flow() {
    let v4 = |a: [u8; 4]| u32::from_be_bytes(a);
    let mut t = FlowTable::with_capacity(64);
    // Ends ordered by address, by port at equal addresses, and equal ends.
    let cases = [
        ([10, 0, 0, 9], 5555, [10, 0, 0, 2], 80, 7),
        ([192, 0, 2, 1], 80, [192, 0, 2, 1], 40000, 0),
        ([192, 0, 2, 1], 40000, [192, 0, 2, 1], 80, 0),
        ([1, 2, 3, 4], 99, [1, 2, 3, 4], 99, 4095),
    ];
    for (src, sport, dst, dport, vlan) in cases {
        let (a, b) = (
            Endpoint::new(IpAddr::from(src), sport),
            Endpoint::new(IpAddr::from(dst), dport),
        );
        let (key, _) = FlowKey::of(vlan, a, b);
        let (slot, _) = t.get_or_insert(key, |_| panic!("room for all"));
        for (s, sp, d, dp) in [(src, sport, dst, dport), (dst, dport, src, sport)] {
            let (k4, side4) = V4Key::of(vlan, v4(s), sp, v4(d), dp);
            assert_eq!(Some(k4), key.v4());
            assert_eq!(t.get_v4(&k4), Some(slot));
            let general = FlowKey::of(
                vlan,
                Endpoint::new(IpAddr::from(s), sp),
                Endpoint::new(IpAddr::from(d), dp),
            );
            assert_eq!(side4, general.1);
        }
        let other_vlan = V4Key::of(vlan ^ 1, v4(src), sport, v4(dst), dport).0;
        assert_eq!(t.get_v4(&other_vlan), None);
    }
    let v6 = Endpoint::new("2001:db8::1".parse::<IpAddr>().unwrap(), 80);
    let key6 = FlowKey::of(0, Endpoint::new(IpAddr::from([10, 0, 0, 1]), 1), v6).0;
    assert_eq!(key6.v4(), None);
    let (slot6, _) = t.get_or_insert(key6, |_| panic!("room for all"));
    assert_eq!(t.flow(slot6).v4, V4Key::NONE);
    assert_eq!(t.get(&key6), Some(slot6));
}

fn key(n: u16) -> FlowKey {
    let a = Endpoint::new(IpAddr::from([10, 0, 0, 1]), 1000 + n);
    let b = Endpoint::new(IpAddr::from([10, 0, 0, 2]), 80);
    FlowKey::of(0, a, b).0
}

#[test]
fn both_directions_share_a_key() {
    let a = Endpoint::new(IpAddr::from([10, 0, 0, 9]), 5555);
    let b = Endpoint::new("2001:db8::1".parse::<IpAddr>().unwrap(), 80);
    let (k1, s1) = FlowKey::of(7, a, b);
    let (k2, s2) = FlowKey::of(7, b, a);
    assert_eq!(k1, k2);
    assert_ne!(s1, s2);
    assert_eq!(a.ip(), IpAddr::from([10, 0, 0, 9]));
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(b.ip(), v6);
    assert_eq!(
        Endpoint::new(v6, 80).octets(),
        [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    );
}

#[test]
fn oldest_flow_is_evicted_when_full() {
    let mut t = FlowTable::with_capacity(3);
    for n in 0..3 {
        assert_eq!(
            t.get_or_insert(key(n), |_| panic!("no eviction yet")).1,
            Inserted::New
        );
    }
    // Touch flow 0 so flow 1 becomes the oldest.
    assert!(t.get(&key(0)).is_some());
    let mut evicted = None;
    let (_, how) = t.get_or_insert(key(3), |f| evicted = Some(f.key));
    assert_eq!(how, Inserted::Evicted);
    assert_eq!(evicted, Some(key(1)));
    assert!(t.get(&key(1)).is_none());
    assert_eq!(t.len(), 3);
    let order: Vec<_> = t.iter().map(|f| f.key).collect();
    assert_eq!(order, vec![key(3), key(0), key(2)]);
}

#[test]
fn removed_slots_are_reused_without_eviction() {
    let mut t = FlowTable::with_capacity(2);
    let (s0, _) = t.get_or_insert(key(0), |_| {});
    t.get_or_insert(key(1), |_| {});
    t.remove(s0);
    assert_eq!(
        t.get_or_insert(key(2), |_| panic!("a slot was free")).1,
        Inserted::New
    );
    // Churn far beyond the capacity: the index must never need to grow.
    for n in 3..10_000u16 {
        let (slot, _) = t.get_or_insert(key(n), |_| {});
        if n % 2 == 0 {
            t.remove(slot);
        }
    }
    assert!(t.len() <= 2);
}

fn key32(n: u32) -> FlowKey {
    let [a, b, c, d] = n.to_be_bytes();
    let client = Endpoint::new(IpAddr::from([10, a, b, c]), 1000 + u16::from(d));
    let server = Endpoint::new(IpAddr::from([10, 0, 0, 2]), 80);
    FlowKey::of(0, client, server).0
}

#[test]
fn memory_is_taken_as_flows_appear_by_doubling_up_to_the_capacity() {
    // The largest --flows: only the initial room is taken.
    let t = FlowTable::with_capacity(1 << 24);
    assert_eq!(t.room(), INITIAL_FLOWS);
    assert_eq!(t.capacity(), 1 << 24);

    let cap = 5_000;
    let mut t = FlowTable::with_capacity(cap);
    let mut rooms = vec![t.room()];
    for n in 0..u32::try_from(cap).unwrap() {
        let (_, how) = t.get_or_insert(key32(n), |_| panic!("no eviction below capacity"));
        assert_eq!(how, Inserted::New);
        if rooms.last() != Some(&t.room()) {
            rooms.push(t.room());
        }
    }
    assert_eq!(rooms, vec![1024, 2048, 4096, cap]);
    // Full: a new flow evicts, and churn (inserts, evictions, removals) never grows it.
    // (Removals leave no tombstones: the index never needs more than twice the slab.)
    assert!(t.index.len() >= 2 * cap);
    for n in 10_000..110_000u32 {
        let (slot, how) = t.get_or_insert(key32(n), |_| {});
        assert_ne!(how, Inserted::Existing);
        if n % 3 == 0 {
            t.remove(slot);
        }
    }
    assert_eq!(t.room(), cap);
    assert!(t.index.len() >= 2 * cap);
    assert!(t.free.capacity() >= cap);
    assert!(t.len() <= cap);
}

#[test]
fn the_index_finds_every_flow_and_only_those_through_churn() {
    // A small table whose probes wrap and whose removals shift entries back, checked
    // against a plain map after every step.
    let cap = 700;
    let mut t = FlowTable::with_capacity(cap);
    let mut model = std::collections::HashMap::new();
    let mut x = 0x9e37_79b9_u32;
    for _ in 0..60_000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let k = key32(x % 3_000);
        if x % 7 == 0 {
            if let Some(slot) = t.get(&k) {
                t.remove(slot);
                assert_eq!(model.remove(&(x % 3_000)), Some(slot));
            }
            continue;
        }
        let mut evicted = None;
        let (slot, how) = t.get_or_insert(k, |old| evicted = Some(old.key));
        if let Some(old) = evicted {
            let n = (0..3_000).find(|&n| key32(n) == old).expect("a model flow");
            assert!(model.remove(&n).is_some());
        }
        match how {
            Inserted::Existing => assert_eq!(model.get(&(x % 3_000)), Some(&slot)),
            _ => assert!(model.insert(x % 3_000, slot).is_none()),
        }
        assert_eq!(t.len(), model.len());
    }
    for n in 0..3_000 {
        assert_eq!(
            t.find(&key32(n)).0.is_ok(),
            model.contains_key(&n),
            "flow {n}"
        );
    }
}

#[test]
fn endpoints_order_as_their_bytes() {
    let ends = [
        Endpoint::new(IpAddr::from([10, 0, 0, 1]), 80),
        Endpoint::new(IpAddr::from([10, 0, 0, 1]), 81),
        Endpoint::new(IpAddr::from([9, 255, 0, 1]), 65535),
        Endpoint::new("2001:db8::1".parse::<IpAddr>().unwrap(), 1),
        Endpoint::new("::1".parse::<IpAddr>().unwrap(), 1),
        Endpoint::new("ff02::1".parse::<IpAddr>().unwrap(), 0),
    ];
    for a in &ends {
        for b in &ends {
            assert_eq!(a.cmp(b), (a.octets(), a.port).cmp(&(b.octets(), b.port)));
            // The key puts the lower end first, and names the sender's side.
            let (key, side) = FlowKey::of(3, *a, *b);
            assert_eq!(key.ends, [*a.min(b), *a.max(b)]);
            assert_eq!(key.ends[side], *a);
        }
    }
}

#[test]
fn pending_queue_keeps_order_and_overflows_oldest_first() {
    let mut f = Flow::new(key(0));
    for ts in 0..PENDING_CAPACITY as u64 {
        assert!(f.push_pending(Pending {
            ts,
            ..Pending::default()
        }));
    }
    assert!(!f.push_pending(Pending {
        ts: 99,
        ..Pending::default()
    }));
    assert_eq!(f.pop_pending().map(|p| p.ts), Some(1));
    for ts in 2..PENDING_CAPACITY as u64 {
        assert_eq!(f.pop_pending().map(|p| p.ts), Some(ts));
    }
    assert_eq!(f.pop_pending().map(|p| p.ts), Some(99));
    assert!(f.pop_pending().is_none());
}

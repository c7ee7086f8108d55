//! IPv4 and IPv6 fragment reassembly, one reassembler per worker.
//!
//! Contract: [`Defrag::offer`] takes one captured frame that holds an IP fragment (IPv4 with MF
//! set or a non-zero offset, RFC 791; IPv6 with a Fragment header, RFC 8200 §4.5) of a TCP
//! datagram. It keeps the fragment's bytes until its datagram is whole, then answers
//! [`Offer::Complete`]: [`Defrag::datagram`] is then the reassembled IP packet, header first,
//! as if it had arrived unfragmented, ready for `decode_frame(LinkType::RawIp, …)`. Anything
//! else it answers [`Offer::NotFragment`] (the caller handles the frame as before) or
//! [`Offer::Held`]. Every outcome is counted into a [`FragmentTally`].
//!
//! Keys are the kernel's: IPv4 (source, destination, protocol, identification), IPv6 (source,
//! destination, identification), and the outer VLAN id, which stands where Linux puts the
//! receiving interface (two VLANs are two links; a datagram does not cross them).
//!
//! Bounds, like Linux's (`net/ipv4/inet_fragment.c`, `ip_fragment.c`, `reassembly.c`):
//! - [`DATAGRAMS_IN_FLIGHT`] datagrams per worker, each in a fixed slot of one pool allocated
//!   once, at the worker's first fragment ([`SLOT_BYTES`] each: a header room and 65,535
//!   bytes of data).
//!   The pool is the hard byte cap of a worker; nothing is allocated per packet. A fragment of
//!   a new datagram when every slot is taken evicts the oldest datagram (Linux's LRU
//!   evictor), counted `fragments_evicted`.
//! - A datagram whose reassembled packet would exceed 65,535 bytes (IPv4 total length, IPv6
//!   header plus payload length as Linux checks it) is dropped: `fragments_too_large`.
//! - A datagram not complete [`TIMEOUT_NS`] (Linux's `ipfrag_time`, 30 s) of packet time after
//!   its first fragment arrived is dropped: `fragments_timed_out`. The check runs when a
//!   fragment arrives (the pool is fixed, so a late check costs no memory).
//! - Overlaps (RFC 5722; Linux for IPv6 since 2.6.32 and for IPv4 since 4.19, 2018): a fragment
//!   whose bytes partly overlap bytes already received discards the whole datagram
//!   (`fragments_overlap`). A fragment that lies wholly inside bytes already received is a
//!   duplicate: it is ignored and the datagram kept (`fragments_duplicate`), as Linux's
//!   `inet_frag_queue_insert` returns `IPFRAG_DUP` for a fragment inside a run it holds,
//!   without comparing the bytes: the first copy wins.
//! - Inconsistent datagrams are dropped (`fragments_invalid`), as Linux drops the queue: a
//!   second last fragment with another end, a fragment past the known end, a non-last fragment
//!   whose length is not a multiple of 8, an IPv6 unfragmentable part longer than the header
//!   room, more holes than a slot tracks ([`MAX_RUNS`]).
//!
//! Only TCP datagrams are reassembled (the IPv4 protocol, the Fragment header's Next Header):
//! nothing else is counted, and a flood of, say, UDP fragments must not take the slots. A
//! fragment cut by the capture's snap length is not reassembled either (its bytes are not all
//! there): the caller handles it as before.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use linewatch_parser::wire::{
    ip_packet, ip_protocol, Ipv4Packet, Ipv6Packet, LinkType, TcpHeader, TcpSegment, WireError,
};

use crate::counters::{CoreDelta, Counter};

/// Datagrams one worker reassembles at once. 64 slots of 64 KiB are 4 MiB, Linux's default
/// `ipfrag_high_thresh` (the memory one network namespace may hold in fragments), so a
/// worker never holds more than a Linux host would; fragmented TCP is rare enough that 64
/// datagrams in flight on one worker are far more than real traffic needs.
pub const DATAGRAMS_IN_FLIGHT: usize = 64;

/// The largest IP packet: the IPv4 total length and the IPv6 payload length are 16 bits.
pub const MAX_DATAGRAM: usize = 65_535;

/// Room for the header in front of the data: IPv4 (at most 60 bytes) or IPv6 with its
/// unfragmentable extension headers and the Fragment header.
pub const HEADER_ROOM: usize = 256;

/// One slot of the pool: header room and the largest datagram's data.
pub const SLOT_BYTES: usize = HEADER_ROOM + MAX_DATAGRAM;

/// Packet time a datagram may take to complete: Linux's `ipfrag_time` (30 s).
pub const TIMEOUT_NS: u64 = 30_000_000_000;

/// Runs of contiguous bytes a slot tracks. In-order and reversed fragments form one run;
/// only a datagram whose fragments arrive scattered has more. Past it the datagram is
/// dropped (`fragments_invalid`).
pub const MAX_RUNS: usize = 16;

/// IPv4 fragment offsets and lengths of non-last fragments are in 8-byte units.
const FRAGMENT_UNIT: u32 = 8;

/// The IPv4 "don't fragment" bit, kept in the rebuilt header.
const IPV4_DONT_FRAGMENT: u16 = 0x4000;

/// IPv4 header fields rewritten in the reassembled packet.
mod v4_field {
    pub(super) const TOTAL_LEN: usize = 2;
    pub(super) const IDENT: usize = 4;
    pub(super) const FLAGS_FRAG_OFFSET: usize = 6;
}

/// IPv6 header lengths and fields the reassembler rewrites or reads itself.
mod v6_field {
    pub(super) const HEADER_LEN: usize = 40;
    pub(super) const PAYLOAD_LEN: usize = 4;
    /// The Fragment header: next header, reserved, offset and flags (from byte 2),
    /// identification.
    pub(super) const FRAGMENT_LEN: usize = 8;
    pub(super) const FRAGMENT_OFFSET: usize = 2;
    /// The offset bits (in 8-byte units, already shifted by 3) and the M flag.
    pub(super) const OFFSET_MASK: u16 = 0xFFF8;
    pub(super) const MORE: u16 = 0x0001;
}

/// The reassembler's counts since they were last drained: the caller decides whose delta
/// they go to (in a replay with several workers, every worker reassembles every fragment and
/// one of them counts).
#[derive(Debug, Clone, Copy)]
pub struct FragmentTally([u64; Counter::COUNT]);

impl Default for FragmentTally {
    fn default() -> Self {
        FragmentTally([0; Counter::COUNT])
    }
}

impl FragmentTally {
    fn add(&mut self, c: Counter, n: u64) {
        self.0[c as usize] += n;
    }

    /// What was counted of `c`.
    pub fn get(&self, c: Counter) -> u64 {
        self.0[c as usize]
    }

    /// Adds the counts to `delta` and clears them.
    pub fn drain_into(&mut self, delta: &mut CoreDelta) {
        for &c in Counter::ALL {
            let n = std::mem::take(&mut self.0[c as usize]);
            if n > 0 {
                delta.add(c, n);
            }
        }
    }
}

/// What [`Defrag::offer`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Not a TCP fragment it reassembles (or cut by the capture): the caller handles it.
    NotFragment,
    /// Kept, dropped as a duplicate, or dropped with its datagram: nothing to count yet.
    Held,
    /// Its datagram is whole: [`Defrag::datagram`] holds it until the next offer.
    Complete,
}

/// The reassembly key (see the module doc). IPv4 addresses are stored in the first 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    ident: u32,
    protocol: u8,
    version: u8,
    vlan: u16,
}

/// One datagram in reassembly.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    live: bool,
    key: Key,
    /// Packet time of the first fragment seen.
    created_ns: u64,
    /// Arrival order, for evicting the oldest.
    serial: u64,
    /// Length of the header kept in the header room; 0 until the first fragment arrives.
    header_len: u16,
    /// The data length, once the last fragment arrived.
    end: Option<u32>,
    /// Received byte ranges `[start, end)` of the data, sorted, disjoint, not adjacent.
    runs: [(u32, u32); MAX_RUNS],
    run_count: u8,
}

/// A parsed fragment: where its data lies in the frame and what it says.
struct Fragment<'a> {
    key: Key,
    offset: u32,
    more: bool,
    data: &'a [u8],
    /// The header to keep when this is the first fragment (offset 0).
    header: &'a [u8],
}

/// One worker's reassembler. See the module doc.
#[derive(Debug, Default)]
pub struct Defrag {
    slots: Vec<Slot>,
    /// `DATAGRAMS_IN_FLIGHT × SLOT_BYTES`, allocated once (zeroed, so the kernel maps pages
    /// only as fragments touch them).
    pool: Box<[u8]>,
    serial: u64,
    /// Where the last completed datagram lies in the pool.
    done: (usize, usize),
    /// Its key (addresses, family, VLAN) and header length.
    done_key: Key,
    done_header_len: usize,
}

impl Defrag {
    /// A reassembler with its whole pool allocated.
    pub fn new() -> Defrag {
        Defrag {
            slots: vec![Slot::default(); DATAGRAMS_IN_FLIGHT],
            pool: vec![0u8; DATAGRAMS_IN_FLIGHT * SLOT_BYTES].into_boxed_slice(),
            serial: 0,
            done: (0, 0),
            done_key: Key::default(),
            done_header_len: 0,
        }
    }

    /// The datagram completed by the last offer that answered [`Offer::Complete`].
    pub fn datagram(&self) -> &[u8] {
        &self.pool[self.done.0..self.done.1]
    }

    /// The TCP segment of that datagram, as `decode_frame` would give it for the whole packet
    /// (the outer VLAN id of its fragments included). Read here rather than through
    /// `decode_frame`: a second caller of it in the worker would cost every frame its
    /// inlining (perf/README.md).
    pub fn segment(&self) -> Result<TcpSegment<'_>, WireError> {
        let key = &self.done_key;
        let addr = |octets: &[u8; 16]| {
            if key.version == 4 {
                IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
            } else {
                IpAddr::V6(Ipv6Addr::from(*octets))
            }
        };
        let data = &self.pool[self.done.0 + self.done_header_len..self.done.1];
        let tcp = TcpHeader::new_checked(data)?;
        Ok(TcpSegment {
            vlan_ids: [key.vlan, 0],
            src: addr(&key.src),
            dst: addr(&key.dst),
            src_port: tcp.src_port(),
            dst_port: tcp.dst_port(),
            seq: tcp.seq(),
            ack: tcp.ack(),
            flags: tcp.flags(),
            payload: tcp.payload(),
            trailer: &[],
            truncated: false,
            fragmented: false,
        })
    }

    /// Datagrams held now.
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.live).count()
    }

    /// Takes `frame` (captured at `ts`, link layer `link`) if it is a TCP fragment; see the
    /// module doc.
    pub fn offer(
        &mut self,
        ts: u64,
        link: LinkType,
        frame: &[u8],
        tally: &mut FragmentTally,
    ) -> Offer {
        let Ok((vlan_ids, packet)) = ip_packet(link, frame) else {
            return Offer::NotFragment;
        };
        let Some(fragment) = parse(vlan_ids[0], packet) else {
            return Offer::NotFragment;
        };
        if self.pool.is_empty() {
            // A default-built reassembler (a worker's, until its first fragment): the pool is
            // allocated here, once.
            *self = Defrag::new();
        }
        tally.add(Counter::Fragments, 1);
        self.expire(ts, tally);
        self.insert(ts, &fragment, tally)
    }

    /// Drops the datagrams older than [`TIMEOUT_NS`] at `ts`.
    fn expire(&mut self, ts: u64, tally: &mut FragmentTally) {
        for slot in self.slots.iter_mut().filter(|s| s.live) {
            if ts.saturating_sub(slot.created_ns) > TIMEOUT_NS {
                slot.live = false;
                tally.add(Counter::FragmentsTimedOut, 1);
            }
        }
    }

    /// The slot of `key`, or a fresh one (evicting the oldest datagram when all are taken).
    fn slot_for(&mut self, ts: u64, key: &Key, tally: &mut FragmentTally) -> usize {
        if let Some(i) = self.slots.iter().position(|s| s.live && s.key == *key) {
            return i;
        }
        let i = match self.slots.iter().position(|s| !s.live) {
            Some(i) => i,
            None => {
                tally.add(Counter::FragmentsEvicted, 1);
                self.slots
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.serial)
                    .map_or(0, |(i, _)| i)
            }
        };
        self.serial += 1;
        self.slots[i] = Slot {
            live: true,
            key: *key,
            created_ns: ts,
            serial: self.serial,
            ..Slot::default()
        };
        i
    }

    fn insert(&mut self, ts: u64, f: &Fragment<'_>, tally: &mut FragmentTally) -> Offer {
        let i = self.slot_for(ts, &f.key, tally);
        let len = u32::try_from(f.data.len()).unwrap_or(u32::MAX);
        let start = f.offset;
        let end = start.saturating_add(len);
        let slot = &mut self.slots[i];
        // The smallest header the datagram can have, or the one kept.
        let min_header = match (slot.header_len, f.key.version) {
            (0, 4) => Ipv4Packet::<&[u8]>::MIN_HEADER_LEN,
            (0, _) => v6_field::HEADER_LEN + v6_field::FRAGMENT_LEN,
            (h, _) => usize::from(h),
        };
        let drop = |slot: &mut Slot, tally: &mut FragmentTally, why: Counter| {
            slot.live = false;
            tally.add(why, 1);
            Offer::Held
        };
        // Linux checks the IPv4 total length, and for IPv6 the payload length (which leaves
        // out the 40-byte fixed header).
        let counted_header = if f.key.version == 4 {
            min_header
        } else {
            min_header - v6_field::HEADER_LEN
        };
        if end as usize + counted_header > MAX_DATAGRAM {
            return drop(slot, tally, Counter::FragmentsTooLarge);
        }
        if f.more && len % FRAGMENT_UNIT != 0 {
            return drop(slot, tally, Counter::FragmentsInvalid);
        }
        match (f.more, slot.end) {
            (false, Some(e)) if e != end => return drop(slot, tally, Counter::FragmentsInvalid),
            (false, None) => {
                if slot.runs[..usize::from(slot.run_count)]
                    .last()
                    .is_some_and(|r| r.1 > end)
                {
                    return drop(slot, tally, Counter::FragmentsInvalid);
                }
                slot.end = Some(end);
            }
            (true, Some(e)) if end > e => return drop(slot, tally, Counter::FragmentsInvalid),
            _ => {}
        }
        if f.offset == 0 {
            if f.header.len() > HEADER_ROOM {
                return drop(slot, tally, Counter::FragmentsInvalid);
            }
            // A duplicate first fragment keeps the first copy's header, as it keeps its data.
            if slot.header_len == 0 {
                let base = i * SLOT_BYTES + HEADER_ROOM - f.header.len();
                self.pool[base..base + f.header.len()].copy_from_slice(f.header);
                slot.header_len = u16::try_from(f.header.len()).unwrap_or(0);
            }
        }
        if len > 0 {
            match add_run(slot, start, end) {
                Ok(true) => {}
                Ok(false) => {
                    tally.add(Counter::FragmentsDuplicate, 1);
                    return Offer::Held;
                }
                Err(why) => return drop(slot, tally, why),
            }
            let at = i * SLOT_BYTES + HEADER_ROOM + start as usize;
            self.pool[at..at + f.data.len()].copy_from_slice(f.data);
        }
        let whole = slot.end.is_some_and(|e| {
            slot.header_len != 0 && (e == 0 || (slot.run_count == 1 && slot.runs[0] == (0, e)))
        });
        if !whole {
            return Offer::Held;
        }
        slot.live = false;
        let data_len = slot.end.unwrap_or(0) as usize;
        let header_len = usize::from(slot.header_len);
        let version = slot.key.version;
        self.done_key = slot.key;
        self.done_header_len = header_len;
        let from = i * SLOT_BYTES + HEADER_ROOM - header_len;
        let to = i * SLOT_BYTES + HEADER_ROOM + data_len;
        rewrite_header(version, &mut self.pool[from..to], header_len, data_len);
        self.done = (from, to);
        tally.add(Counter::FragmentsReassembled, 1);
        Offer::Complete
    }
}

/// Adds `[start, end)` to the slot's runs: `Ok(false)` when it lies inside one (a duplicate),
/// the counter to drop the datagram under when it overlaps or the runs are full.
fn add_run(slot: &mut Slot, start: u32, end: u32) -> Result<bool, Counter> {
    let n = usize::from(slot.run_count);
    let runs = &mut slot.runs;
    // The first run that ends at or after `start`: the only ones `[start, end)` can touch.
    let at = runs[..n].iter().position(|r| r.1 >= start).unwrap_or(n);
    if at < n && runs[at].0 <= start && end <= runs[at].1 {
        return Ok(false);
    }
    // Runs touching (adjacent) are merged; any shared byte is an overlap.
    let mut last = at;
    while last < n && runs[last].0 <= end {
        let (a, b) = runs[last];
        if a < end && start < b {
            return Err(Counter::FragmentsOverlap);
        }
        last += 1;
    }
    let merged = (
        runs[at..last].first().map_or(start, |r| r.0.min(start)),
        runs[at..last].last().map_or(end, |r| r.1.max(end)),
    );
    let removed = last - at;
    if removed == 0 {
        if n == MAX_RUNS {
            return Err(Counter::FragmentsInvalid);
        }
        runs.copy_within(at..n, at + 1);
    } else {
        runs.copy_within(last..n, at + 1);
    }
    runs[at] = merged;
    slot.run_count = u8::try_from(n + 1 - removed).unwrap_or(u8::MAX);
    Ok(true)
}

/// Makes the kept header describe the whole datagram: IPv4 total length and no fragment
/// fields (DF kept); IPv6 payload length, the Fragment header left in place as an atomic
/// fragment (offset 0, M clear; RFC 6946), which the decoder walks through.
fn rewrite_header(version: u8, packet: &mut [u8], header_len: usize, data_len: usize) {
    let set16 = |p: &mut [u8], at: usize, v: usize| {
        let v = u16::try_from(v).unwrap_or(u16::MAX);
        p[at..at + 2].copy_from_slice(&v.to_be_bytes());
    };
    if version == 4 {
        set16(packet, v4_field::TOTAL_LEN, header_len + data_len);
        let flags = u16::from_be_bytes([
            packet[v4_field::FLAGS_FRAG_OFFSET],
            packet[v4_field::FLAGS_FRAG_OFFSET + 1],
        ]);
        set16(
            packet,
            v4_field::FLAGS_FRAG_OFFSET,
            usize::from(flags & IPV4_DONT_FRAGMENT),
        );
    } else {
        set16(
            packet,
            v6_field::PAYLOAD_LEN,
            header_len - v6_field::HEADER_LEN + data_len,
        );
        let frag = header_len - v6_field::FRAGMENT_LEN + v6_field::FRAGMENT_OFFSET;
        set16(packet, frag, 0);
    }
}

/// The fragment a packet carries, if it is one of a TCP datagram and whole in the capture.
fn parse(vlan: u16, packet: &[u8]) -> Option<Fragment<'_>> {
    match packet.first()? >> 4 {
        4 => {
            let ip = Ipv4Packet::new_checked(packet).ok()?;
            if !ip.is_fragment() || ip.is_truncated() || ip.protocol() != ip_protocol::TCP {
                return None;
            }
            let mut key = Key {
                ident: u32::from(u16::from_be_bytes([
                    packet[v4_field::IDENT],
                    packet[v4_field::IDENT + 1],
                ])),
                protocol: ip.protocol(),
                version: 4,
                vlan,
                ..Key::default()
            };
            key.src[..4].copy_from_slice(&ip.source().octets());
            key.dst[..4].copy_from_slice(&ip.destination().octets());
            Some(Fragment {
                key,
                offset: ip.fragment_offset(),
                more: ip.more_fragments(),
                data: ip.payload(),
                header: &packet[..ip.header_len()],
            })
        }
        6 => parse_v6(vlan, packet),
        _ => None,
    }
}

/// The IPv6 side of [`parse`]: walks the unfragmentable extension headers (Hop-by-Hop,
/// Routing, Destination Options) to the Fragment header.
fn parse_v6(vlan: u16, packet: &[u8]) -> Option<Fragment<'_>> {
    let ip = Ipv6Packet::new_checked(packet).ok()?;
    if ip.is_truncated() {
        return None; // cut by the capture
    }
    let packet = &packet[..packet.len() - ip.trailer().len()];
    let mut next = ip.next_header();
    let mut at = v6_field::HEADER_LEN;
    for _ in 0..Ipv6Packet::<&[u8]>::MAX_EXTENSION_HEADERS {
        match next {
            ip_protocol::HOP_BY_HOP | ip_protocol::ROUTING | ip_protocol::DESTINATION_OPTIONS => {
                let len = (usize::from(*packet.get(at + 1)?) + 1) * 8;
                next = *packet.get(at)?;
                at += len;
            }
            ip_protocol::FRAGMENT => {
                let header = packet.get(at..at + v6_field::FRAGMENT_LEN)?;
                if header[0] != ip_protocol::TCP {
                    return None;
                }
                let [_, _, off_hi, off_lo, id0, id1, id2, id3] = header else {
                    return None;
                };
                let field = u16::from_be_bytes([*off_hi, *off_lo]);
                let key = Key {
                    src: ip.source().octets(),
                    dst: ip.destination().octets(),
                    ident: u32::from_be_bytes([*id0, *id1, *id2, *id3]),
                    protocol: 0,
                    version: 6,
                    vlan,
                };
                let header_end = at + v6_field::FRAGMENT_LEN;
                return Some(Fragment {
                    key,
                    offset: u32::from(field & v6_field::OFFSET_MASK),
                    more: field & v6_field::MORE != 0,
                    data: &packet[header_end..],
                    header: &packet[..header_end],
                });
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use linewatch_parser::wire::decode_frame;
    use linewatch_testkit::frame::{
        Frame, IpRepr, Ipv4Repr, Ipv6Extension, TcpFlags, TcpRepr, Transport, IP_PROTOCOL_TCP,
    };

    use super::*;

    const T0: u64 = 1_700_000_000_000_000_000;
    const REQUEST: &[u8] = b"GET /fragmented/path HTTP/1.1\r\nHost: example.test\r\n\r\n";

    /// A frame of a TCP segment from `src` to `dst` carrying `payload`.
    fn tcp_frame(src: IpAddr, dst: IpAddr, payload: &[u8]) -> Frame<'_> {
        let tcp = TcpRepr {
            src_port: 40_000,
            dst_port: 80,
            seq: 1,
            flags: TcpFlags::ACK,
            payload,
            ..TcpRepr::default()
        };
        Frame::tcp(src, dst, tcp)
    }

    /// Ethernet frames carrying a segment of `payload` in fragments cut at `cuts` (multiples
    /// of 8 of the TCP bytes), in order. IPv6 frames carry `before` ahead of the Fragment
    /// header.
    fn fragments(
        (src, dst): (IpAddr, IpAddr),
        ident: u16,
        payload: &[u8],
        cuts: &[usize],
        before: &[Ipv6Extension],
    ) -> Vec<Vec<u8>> {
        let mut frame = tcp_frame(src, dst, payload);
        if let IpRepr::V6(ip) = &mut frame.ip {
            ip.extensions = before;
        }
        frame.fragments(u32::from(ident), cuts)
    }

    fn v4() -> (IpAddr, IpAddr) {
        (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
        )
    }

    fn v6() -> (IpAddr, IpAddr) {
        (
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2)),
        )
    }

    /// Offers `frames` in order at one packet time; the offers' answers.
    fn offer_all(d: &mut Defrag, tally: &mut FragmentTally, frames: &[Vec<u8>]) -> Vec<Offer> {
        frames
            .iter()
            .map(|f| d.offer(T0, LinkType::Ethernet, f, tally))
            .collect()
    }

    /// The reassembled datagram decodes to the request, from the right ends, and its segment
    /// is the one `decode_frame` reads from it (not fragmented).
    fn assert_request(d: &Defrag, (src, dst): (IpAddr, IpAddr), payload: &[u8]) {
        let mut seg = decode_frame(LinkType::RawIp, d.datagram()).unwrap();
        seg.fragmented = false; // IPv6 keeps an atomic Fragment header
        assert_eq!(d.segment(), Ok(seg));
        assert_eq!((seg.src, seg.dst), (src, dst));
        assert_eq!((seg.src_port, seg.dst_port), (40_000, 80));
        assert_eq!(seg.payload, payload);
        assert!(!seg.truncated);
    }

    #[test]
    fn in_order_and_reversed_v4_and_v6() {
        for ends in [v4(), v6()] {
            let bytes = REQUEST;
            for reversed in [false, true] {
                let mut frames = fragments(ends, 7, bytes, &[16, 48], &[]);
                if reversed {
                    frames.reverse();
                }
                let mut d = Defrag::new();
                let mut tally = FragmentTally::default();
                let offers = offer_all(&mut d, &mut tally, &frames);
                assert_eq!(offers, [Offer::Held, Offer::Held, Offer::Complete]);
                assert_request(&d, ends, REQUEST);
                assert_eq!(tally.get(Counter::Fragments), 3);
                assert_eq!(tally.get(Counter::FragmentsReassembled), 1);
                assert_eq!(d.in_flight(), 0);
            }
        }
    }

    #[test]
    fn ipv6_extension_headers_before_the_fragment_header() {
        let ends = v6();
        let bytes = REQUEST;
        let before = [
            Ipv6Extension::HopByHop,
            Ipv6Extension::Routing,
            Ipv6Extension::DestinationOptions,
        ];
        let mut frames = fragments(ends, 9, bytes, &[24], &before);
        frames.reverse();
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        assert_eq!(
            offer_all(&mut d, &mut tally, &frames),
            [Offer::Held, Offer::Complete]
        );
        assert_request(&d, ends, REQUEST);
    }

    #[test]
    fn interleaved_datagrams_complete_separately() {
        let ends = v4();
        let a = REQUEST;
        let b: &[u8] = b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n";
        let fa = fragments(ends, 1, a, &[32], &[]);
        let fb = fragments(ends, 2, b, &[24], &[]);
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        let mut offer = |f: &Vec<u8>| d.offer(T0, LinkType::Ethernet, f, &mut tally);
        assert_eq!(offer(&fa[0]), Offer::Held);
        assert_eq!(offer(&fb[1]), Offer::Held);
        assert_eq!(offer(&fb[0]), Offer::Complete);
        assert_request(&d, ends, b"GET /b HTTP/1.1\r\nHost: b\r\n\r\n");
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &fa[1], &mut tally),
            Offer::Complete
        );
        assert_request(&d, ends, REQUEST);
        assert_eq!(tally.get(Counter::FragmentsReassembled), 2);
    }

    #[test]
    fn overlap_drops_the_datagram_and_a_duplicate_is_ignored() {
        let ends = v4();
        let bytes = REQUEST;
        let frames = fragments(ends, 3, bytes, &[16, 48], &[]);
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        // The exact same fragment twice: the second is a duplicate, the datagram completes.
        assert_eq!(
            offer_all(
                &mut d,
                &mut tally,
                &[&frames[0], &frames[0], &frames[1], &frames[2]].map(Clone::clone)
            ),
            [Offer::Held, Offer::Held, Offer::Held, Offer::Complete]
        );
        assert_eq!(tally.get(Counter::FragmentsDuplicate), 1);
        assert_request(&d, ends, REQUEST);

        // [0, 24) then [16, 48): eight bytes overlap, the whole datagram goes.
        let overlapping = fragments(ends, 4, bytes, &[24], &[]);
        let late = fragments(ends, 4, bytes, &[16, 48], &[]);
        let mut tally = FragmentTally::default();
        assert_eq!(
            offer_all(
                &mut d,
                &mut tally,
                &[overlapping[0].clone(), late[1].clone()]
            ),
            [Offer::Held, Offer::Held]
        );
        assert_eq!(tally.get(Counter::FragmentsOverlap), 1);
        assert_eq!(d.in_flight(), 0);
        // What follows starts a new datagram that lacks its start: it never completes.
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &late[2], &mut tally),
            Offer::Held
        );
        assert_eq!(tally.get(Counter::FragmentsReassembled), 0);
    }

    #[test]
    fn timeout_is_packet_time() {
        let ends = v4();
        let bytes = REQUEST;
        let frames = fragments(ends, 5, bytes, &[32], &[]);
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &frames[0], &mut tally),
            Offer::Held
        );
        // Just inside the timeout it still completes ...
        let inside = T0 + TIMEOUT_NS;
        assert_eq!(
            d.offer(inside, LinkType::Ethernet, &frames[1], &mut tally),
            Offer::Complete
        );
        // ... just past it, the first fragment has gone.
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &frames[0], &mut tally),
            Offer::Held
        );
        let past = T0 + TIMEOUT_NS + 1;
        assert_eq!(
            d.offer(past, LinkType::Ethernet, &frames[1], &mut tally),
            Offer::Held
        );
        assert_eq!(tally.get(Counter::FragmentsTimedOut), 1);
        assert_eq!(tally.get(Counter::FragmentsReassembled), 1);
    }

    #[test]
    fn a_full_table_evicts_the_oldest() {
        let ends = v4();
        let bytes = REQUEST;
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        let n = u16::try_from(DATAGRAMS_IN_FLIGHT).unwrap();
        for ident in 0..=n {
            let first = &fragments(ends, ident, bytes, &[32], &[])[0];
            assert_eq!(
                d.offer(T0, LinkType::Ethernet, first, &mut tally),
                Offer::Held
            );
        }
        assert_eq!(tally.get(Counter::FragmentsEvicted), 1);
        assert_eq!(d.in_flight(), DATAGRAMS_IN_FLIGHT);
        // Datagram 0 was the oldest: datagram 1's rest completes it, datagram 0's does not.
        let rest = |ident| fragments(ends, ident, bytes, &[32], &[])[1].clone();
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &rest(1), &mut tally),
            Offer::Complete
        );
        assert_request(&d, ends, REQUEST);
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &rest(0), &mut tally),
            Offer::Held
        );
        assert_eq!(tally.get(Counter::FragmentsReassembled), 1);
    }

    #[test]
    fn at_most_65535_bytes() {
        let ends = v4();
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        // A last fragment whose data ends at 65,520: with the 20-byte header, 65,540 > 65,535.
        let (IpAddr::V4(s), IpAddr::V4(dst)) = ends else {
            unreachable!()
        };
        let last = |offset_units: u16, len: usize| {
            let ip = Ipv4Repr {
                ident: 11,
                dont_fragment: false,
                more_fragments: false,
                fragment_offset: offset_units,
                ..Ipv4Repr::new(s, dst)
            };
            let bytes = vec![0u8; len];
            Frame::new(
                IpRepr::V4(ip),
                Transport::Raw {
                    protocol: IP_PROTOCOL_TCP,
                    bytes: &bytes,
                },
            )
            .to_vec()
        };
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &last(8188, 16), &mut tally),
            Offer::Held
        );
        assert_eq!(tally.get(Counter::FragmentsTooLarge), 1);
        assert_eq!(d.in_flight(), 0);
        // Ending at 65,512 + 20 = 65,532 is allowed.
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &last(8188, 8), &mut tally),
            Offer::Held
        );
        assert_eq!(tally.get(Counter::FragmentsTooLarge), 1);
        assert_eq!(d.in_flight(), 1);
    }

    #[test]
    fn not_fragments_and_other_protocols_are_left_alone() {
        let ends = v4();
        let mut d = Defrag::new();
        let mut tally = FragmentTally::default();
        let whole = Frame::tcp(ends.0, ends.1, TcpRepr::default()).to_vec();
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &whole, &mut tally),
            Offer::NotFragment
        );
        let bytes = REQUEST;
        let mut udp = fragments(ends, 1, bytes, &[16], &[]).remove(0);
        udp[14 + 9] = 17; // protocol: UDP
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, &udp, &mut tally),
            Offer::NotFragment
        );
        // Cut by the capture: not all of its bytes are there.
        let frames = fragments(ends, 1, bytes, &[32], &[]);
        let cut = &frames[0][..frames[0].len() - 4];
        assert_eq!(
            d.offer(T0, LinkType::Ethernet, cut, &mut tally),
            Offer::NotFragment
        );
        assert_eq!(tally.get(Counter::Fragments), 0);
    }

    #[test]
    fn a_worker_counts_a_reassembled_request_once_and_live_keeps_the_old_path() {
        use crate::counters::CoreDelta;
        use crate::worker::{Worker, WorkerConfig};

        let ends = v4();
        let mut post = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n".to_vec();
        let head = post.len();
        post.extend_from_slice(&[b'x'; 40]);
        let bytes = &post;
        // Cut inside the head (28 bytes of it in the first fragment) and after it.
        assert!(28 < head && head <= 72 - 20);
        for (cut, counted_without) in [(48, 0), (72, 1)] {
            let mut frames = fragments(ends, 21, bytes, &[cut], &[]);
            frames.reverse();
            for reassemble in [true, false] {
                let mut w = Worker::new(&WorkerConfig::default(), CoreDelta::new(0));
                w.set_fragment_reassembly(reassemble);
                for f in &frames {
                    let len = u32::try_from(f.len()).unwrap();
                    w.process_frame(T0, LinkType::Ethernet, f, len);
                }
                let d = w.delta();
                assert_eq!(d.get(Counter::Packets), 2);
                let (requests, reassembled) = if reassemble {
                    (1, 1)
                } else {
                    (counted_without, 0)
                };
                assert_eq!(d.get(Counter::Requests), requests, "cut {cut} {reassemble}");
                assert_eq!(d.get(Counter::FragmentsReassembled), reassembled);
            }
        }
    }
}

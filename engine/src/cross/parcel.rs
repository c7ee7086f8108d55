//! A parcel: one TCP segment with its packet time, as bytes, for a lane or the hold queue.
//!
//! Contract: [`write`] lays a segment out in exactly [`len`] bytes, and [`read`] gives back a
//! segment equal to it in every field the worker's segment path reads (addresses of the same
//! family, ports, VLAN, sequence and acknowledgement numbers, flags, payload, the `truncated`
//! and `fragmented` marks), borrowing the payload from the bytes. The trailer is not carried:
//! what it holds (a send stamp) is read before a segment is handed on. No allocation.
//!
//! Layout (native byte order: both ends are this process):
//!
//! ```text
//! 0 ts u64 | 8 since u64 | 16 src [16] | 32 dst [16] | 48 seq u32 | 52 ack u32
//! 56 src_port u16 | 58 dst_port u16 | 60 vlan u16 | 62 flags u8 | 63 marks u8 | 64 payload
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use linewatch_parser::wire::{TcpFlags, TcpSegment, MAX_VLAN_TAGS};

/// Bytes before the payload.
pub const HEAD: usize = 64;

/// `marks` bits.
const V4: u8 = 1;
const TRUNCATED: u8 = 2;
const FRAGMENTED: u8 = 4;

/// A segment read back, with its packet time and when it was first held (0 on a lane).
#[derive(Debug)]
pub struct Parcel<'a> {
    /// Packet time, ns since the Unix epoch.
    pub ts: u64,
    /// Worker clock when the segment was first held for its peer's direction (the hold
    /// queue's deadline runs from here).
    pub since: u64,
    /// The segment.
    pub seg: TcpSegment<'a>,
}

/// Bytes [`write`] needs for `seg`.
pub fn len(seg: &TcpSegment<'_>) -> usize {
    HEAD + seg.payload.len()
}

fn octets(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Writes `seg` (at packet time `ts`, held `since`) into `out`, which is [`len`] bytes.
pub fn write(out: &mut [u8], ts: u64, since: u64, seg: &TcpSegment<'_>) {
    let (head, payload) = out.split_at_mut(HEAD);
    head[0..8].copy_from_slice(&ts.to_ne_bytes());
    head[8..16].copy_from_slice(&since.to_ne_bytes());
    head[16..32].copy_from_slice(&octets(seg.src));
    head[32..48].copy_from_slice(&octets(seg.dst));
    head[48..52].copy_from_slice(&seg.seq.to_ne_bytes());
    head[52..56].copy_from_slice(&seg.ack.to_ne_bytes());
    head[56..58].copy_from_slice(&seg.src_port.to_ne_bytes());
    head[58..60].copy_from_slice(&seg.dst_port.to_ne_bytes());
    head[60..62].copy_from_slice(&seg.vlan_ids[0].to_ne_bytes());
    head[62] = seg.flags.0;
    let mark = |on: bool, bit: u8| if on { bit } else { 0 };
    head[63] = mark(seg.src.is_ipv4(), V4)
        | mark(seg.truncated, TRUNCATED)
        | mark(seg.fragmented, FRAGMENTED);
    payload.copy_from_slice(seg.payload);
}

/// Reads back what [`write`] wrote. Bytes shorter than [`HEAD`] (never written so) read as an
/// empty segment between unspecified addresses.
pub fn read(bytes: &[u8]) -> Parcel<'_> {
    let (head, payload): (&[u8; HEAD], &[u8]) = bytes
        .split_first_chunk::<HEAD>()
        .unwrap_or((&[0; HEAD], &[]));
    let u64_at = |i: usize| u64::from_ne_bytes(head[i..i + 8].try_into().unwrap_or([0; 8]));
    let u32_at = |i: usize| u32::from_ne_bytes(head[i..i + 4].try_into().unwrap_or([0; 4]));
    let u16_at = |i: usize| u16::from_ne_bytes(head[i..i + 2].try_into().unwrap_or([0; 2]));
    let marks = head[63];
    // An IPv4 address is the last 4 of its 16 bytes (written mapped).
    let addr = |i: usize| {
        if marks & V4 != 0 {
            let o: [u8; 4] = head[i + 12..i + 16].try_into().unwrap_or([0; 4]);
            IpAddr::V4(Ipv4Addr::from(o))
        } else {
            let o: [u8; 16] = head[i..i + 16].try_into().unwrap_or([0; 16]);
            IpAddr::V6(Ipv6Addr::from(o))
        }
    };
    let mut vlan_ids = [0u16; MAX_VLAN_TAGS];
    vlan_ids[0] = u16_at(60);
    Parcel {
        ts: u64_at(0),
        since: u64_at(8),
        seg: TcpSegment {
            vlan_ids,
            src: addr(16),
            dst: addr(32),
            src_port: u16_at(56),
            dst_port: u16_at(58),
            seq: u32_at(48),
            ack: u32_at(52),
            flags: TcpFlags(head[62]),
            payload,
            trailer: &[],
            truncated: marks & TRUNCATED != 0,
            fragmented: marks & FRAGMENTED != 0,
        },
    }
}

/// Parcels in a plain bounded buffer: the segments a worker holds until the peer direction
/// catches up. Its room is taken once, when made; a push that does not fit is refused.
#[derive(Debug, Default)]
pub struct ParcelQueue {
    /// Records: a u32 length, then the parcel.
    bytes: Vec<u8>,
    /// Parcels in it.
    count: usize,
}

impl ParcelQueue {
    /// A queue of `room` bytes.
    pub fn with_room(room: usize) -> ParcelQueue {
        ParcelQueue {
            bytes: Vec::with_capacity(room),
            count: 0,
        }
    }

    /// Parcels in the queue.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends `seg`; false when the queue's room does not take it.
    pub fn push(&mut self, ts: u64, since: u64, seg: &TcpSegment<'_>) -> bool {
        let n = len(seg);
        let Ok(prefix) = u32::try_from(n) else {
            return false;
        };
        if self.bytes.len() + 4 + n > self.bytes.capacity() {
            return false;
        }
        self.bytes.extend_from_slice(&prefix.to_ne_bytes());
        let at = self.bytes.len();
        // Within the capacity checked above: no reallocation.
        self.bytes.resize(at + n, 0);
        write(&mut self.bytes[at..], ts, since, seg);
        self.count += 1;
        true
    }

    /// The parcels, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = Parcel<'_>> {
        self.entries().map(|(_, p)| p)
    }

    /// The parcels, oldest first, each with its place for [`ParcelQueue::get`].
    pub fn entries(&self) -> impl Iterator<Item = (usize, Parcel<'_>)> {
        let mut at = 0;
        std::iter::from_fn(move || {
            let here = at;
            let (parcel, next) = self.record(here)?;
            at = next;
            Some((here, read(parcel)))
        })
    }

    /// The places of the parcels, oldest first, each with its packet time (read alone).
    pub fn times(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let here = at;
            let (parcel, next) = self.record(here)?;
            at = next;
            let ts = parcel
                .first_chunk::<8>()
                .map_or(0, |b| u64::from_ne_bytes(*b));
            Some((here, ts))
        })
    }

    /// The parcel at `at`, a place [`ParcelQueue::entries`] gave (an empty segment for any
    /// other).
    pub fn get(&self, at: usize) -> Parcel<'_> {
        read(self.record(at).map_or(&[][..], |(parcel, _)| parcel))
    }

    /// The record at `at`: its parcel bytes and where the next record starts.
    fn record(&self, at: usize) -> Option<(&[u8], usize)> {
        let rest = self.bytes.get(at..)?;
        let (prefix, tail) = rest.split_first_chunk::<4>()?;
        let n = (u32::from_ne_bytes(*prefix) as usize).min(tail.len());
        Some((&tail[..n], at + 4 + n))
    }

    /// Empties the queue, keeping its room.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.count = 0;
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // small test numbers
mod tests {
    use super::*;

    fn segment(src: IpAddr, dst: IpAddr, payload: &[u8]) -> TcpSegment<'_> {
        TcpSegment {
            vlan_ids: [42, 0],
            src,
            dst,
            src_port: 40_000,
            dst_port: 80,
            seq: 0xdead_beef,
            ack: 7,
            flags: TcpFlags(TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN),
            payload,
            trailer: b"ignored",
            truncated: true,
            fragmented: false,
        }
    }

    fn same(a: &TcpSegment<'_>, b: &TcpSegment<'_>) {
        assert_eq!(
            (a.vlan_ids[0], a.src, a.dst, a.src_port, a.dst_port),
            (b.vlan_ids[0], b.src, b.dst, b.src_port, b.dst_port)
        );
        assert_eq!((a.seq, a.ack, a.flags), (b.seq, b.ack, b.flags));
        assert_eq!(
            (a.payload, a.truncated, a.fragmented),
            (b.payload, b.truncated, b.fragmented)
        );
        assert!(b.trailer.is_empty());
    }

    #[test]
    fn a_segment_comes_back_equal_v4_and_v6() {
        let v4 = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let v6: (IpAddr, IpAddr) = (
            "2001:db8::1".parse().unwrap(),
            "::ffff:0:1".parse().unwrap(),
        );
        for (src, dst) in [v4, v6] {
            let seg = segment(src, dst, b"GET / HTTP/1.1\r\n\r\n");
            let mut buf = vec![0u8; len(&seg)];
            write(&mut buf, 5, 6, &seg);
            let p = read(&buf);
            assert_eq!((p.ts, p.since), (5, 6));
            same(&seg, &p.seg);
        }
    }

    #[test]
    fn the_queue_keeps_order_and_its_bound() {
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut q = ParcelQueue::with_room(1000);
        let room = q.bytes.capacity();
        let payloads: [&[u8]; 3] = [b"one", b"", b"three"];
        for (i, p) in payloads.iter().enumerate() {
            assert!(q.push(i as u64, 0, &segment(a, b, p)));
        }
        assert_eq!(q.len(), 3);
        let got: Vec<(u64, Vec<u8>)> = q.iter().map(|p| (p.ts, p.seg.payload.to_vec())).collect();
        assert_eq!(
            got,
            vec![(0, b"one".to_vec()), (1, vec![]), (2, b"three".to_vec())]
        );
        // 4 + 64 + 3 = 71 bytes a parcel: 1000 bytes take 14 in all.
        let mut n = 3;
        while q.push(0, 0, &segment(a, b, b"abc")) {
            n += 1;
        }
        assert_eq!(n, 14);
        assert_eq!(q.bytes.capacity(), room, "the queue grew past its room");
        q.clear();
        assert!(q.is_empty());
        assert_eq!(q.iter().count(), 0);
    }
}

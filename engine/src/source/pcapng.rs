//! pcapng, block by block through the read buffer.

use super::*;

/// pcapng block types read here.
pub(super) const BLOCK_SECTION_HEADER: u32 = 0x0A0D_0D0A;
pub(super) const BLOCK_INTERFACE: u32 = 1;
/// The obsolete Packet Block (still written by old tools; tshark reads it).
pub(super) const BLOCK_PACKET: u32 = 2;
pub(super) const BLOCK_SIMPLE_PACKET: u32 = 3;
pub(super) const BLOCK_ENHANCED_PACKET: u32 = 6;
/// The section header's byte-order magic, as written in big-endian order.
pub(super) const BYTE_ORDER_MAGIC: [u8; 4] = [0x1A, 0x2B, 0x3C, 0x4D];
/// Block type and total length before the body, total length again after it.
pub(super) const BLOCK_OVERHEAD: usize = 12;
/// The longest block read (16 MiB, well above a 256 KiB packet and its options). A longer
/// length field is garbage: where the next block starts is lost.
pub(super) const MAX_BLOCK: u32 = 16 << 20;
/// Interfaces kept per section. A packet naming one past this is skipped and counted, like a
/// packet naming an interface never described: a file of millions of interface blocks costs
/// at most this many small [`Interface`]s.
pub const MAX_INTERFACES: usize = 1 << 16;
/// The `if_tsresol` option of an interface block.
pub(super) const OPTION_TSRESOL: u16 = 9;
/// The pcapng default timestamp resolution: microseconds.
pub(super) const DEFAULT_TSRESOL: u8 = 6;
/// Fixed part of an enhanced (and obsolete) packet block's body before the packet bytes.
pub(super) const PACKET_FIXED: usize = 20;
/// Fixed part of an interface block's body before its options.
pub(super) const INTERFACE_FIXED: usize = 8;

/// What a pcapng interface needs for decoding its packets.
#[derive(Debug, Clone, Copy)]
pub(super) struct Interface {
    pub(super) link: Option<LinkType>,
    /// Packet bytes kept per packet (0: no limit); a simple packet block has no caplen.
    pub(super) snaplen: u32,
    /// Multiply the raw timestamp by `mul` and divide by `div` to get nanoseconds.
    pub(super) mul: u64,
    pub(super) div: u64,
}

impl Interface {
    pub(super) fn ts_ns(&self, raw: u64) -> u64 {
        let ns = u128::from(raw) * u128::from(self.mul) / u128::from(self.div.max(1));
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// A pcapng file.
pub(super) struct PcapNgSource {
    pub(super) stream: Stream,
    pub(super) path: PathBuf,
    /// The current section's byte order.
    pub(super) big_endian: bool,
    pub(super) interfaces: Vec<Interface>,
    pub(super) end: Option<SourceEnd>,
    pub(super) unsupported: u64,
    pub(super) unreadable: u64,
}

/// One block in the read buffer: its type and its body (offsets into [`Stream::bytes`]).
#[derive(Debug, Clone)]
pub(super) struct BlockAt {
    pub(super) kind: u32,
    pub(super) body: std::ops::Range<usize>,
}

impl PcapNgSource {
    pub(super) fn open(stream: Stream, path: &Path) -> Result<PcapNgSource, SourceError> {
        let mut source = PcapNgSource {
            stream,
            path: path.to_path_buf(),
            big_endian: false,
            interfaces: Vec::new(),
            end: None,
            unsupported: 0,
            unreadable: 0,
        };
        // The section header must frame: otherwise this is not a pcapng file at all.
        match source.next_block() {
            Ok(block) => {
                debug_assert_eq!(block.kind, BLOCK_SECTION_HEADER);
                Ok(source)
            }
            Err(SourceEnd::Complete) => Err(SourceError::NotCapture {
                path: path.to_path_buf(),
                reason: "it holds no section header".into(),
            }),
            Err(SourceEnd::Truncated(reason)) => Err(SourceError::NotCapture {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }

    /// Frames the next block in the buffer (consumed at the next call), or how reading
    /// ends. A section header also sets the byte order and starts a new interface list.
    pub(super) fn next_block(&mut self) -> Result<BlockAt, SourceEnd> {
        let s = &mut self.stream;
        s.consume_pending();
        let io = end_of;
        if !s.fill(8).map_err(io)? {
            return Err(if s.available() == 0 {
                SourceEnd::Complete
            } else {
                SourceEnd::Truncated(ENDS_INSIDE.into())
            });
        }
        // The section header's type reads the same in both byte orders.
        let mut big_endian = self.big_endian;
        let kind = word(s.bytes(8), 0, big_endian);
        if kind == BLOCK_SECTION_HEADER {
            if !s.fill(BLOCK_OVERHEAD).map_err(io)? {
                return Err(SourceEnd::Truncated(ENDS_INSIDE.into()));
            }
            let bom = &s.bytes(BLOCK_OVERHEAD)[8..12];
            big_endian = if bom == BYTE_ORDER_MAGIC {
                true
            } else if bom.iter().rev().eq(BYTE_ORDER_MAGIC.iter()) {
                false
            } else {
                return Err(SourceEnd::Truncated(format!(
                    "the section header at byte {} has no byte-order magic",
                    s.offset()
                )));
            };
        }
        let len = word(s.bytes(8), 4, big_endian);
        if (len as usize) < BLOCK_OVERHEAD || len % 4 != 0 || len > MAX_BLOCK {
            return Err(SourceEnd::Truncated(format!(
                "the block at byte {} claims a length of {len} bytes: where the next block \
                 starts is lost",
                s.offset()
            )));
        }
        let len = len as usize;
        if !s.fill(len).map_err(io)? {
            return Err(SourceEnd::Truncated(ENDS_INSIDE.into()));
        }
        s.pending = len;
        if kind == BLOCK_SECTION_HEADER {
            self.big_endian = big_endian;
            // A new section starts its own interface numbering.
            self.interfaces.clear();
        }
        Ok(BlockAt {
            kind,
            body: 8..len - 4,
        })
    }
}

/// What a packet of this interface block needs; `None` when the block is too short.
pub(super) fn interface_of(body: &[u8], big: bool) -> Option<Interface> {
    if body.len() < INTERFACE_FIXED {
        return None;
    }
    let mut tsresol = DEFAULT_TSRESOL;
    let mut at = INTERFACE_FIXED;
    while at + 4 <= body.len() {
        let (code, len) = (half(body, at, big), usize::from(half(body, at + 2, big)));
        if code == 0 || at + 4 + len > body.len() {
            break;
        }
        if code == OPTION_TSRESOL && len >= 1 {
            tsresol = body[at + 4];
        }
        at += 4 + len.next_multiple_of(4);
    }
    let (mul, div) = resolution(tsresol);
    Some(Interface {
        link: LinkType::from_pcap(u32::from(half(body, 0, big))),
        snaplen: word(body, 4, big),
        mul,
        div,
    })
}

impl Source for PcapNgSource {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        // Find the next packet's place in the buffer first, then lend it: a borrow returned
        // from inside the loop would keep the buffer borrowed for every later turn.
        let (data, ts_ns, link, wire_len) = loop {
            if self.end.is_some() {
                return None;
            }
            let block = match self.next_block() {
                Ok(b) => b,
                Err(end) => {
                    self.end = Some(end);
                    return None;
                }
            };
            let big = self.big_endian;
            let body = &self.stream.bytes(block.body.end)[block.body.clone()];
            let (iface, raw_ts, caplen, wire_len, data_at) = match block.kind {
                BLOCK_INTERFACE => {
                    match interface_of(body, big) {
                        None => self.unreadable += 1,
                        // Past the cap an interface is not kept; its packets are skipped and
                        // counted as unreadable.
                        Some(i) if self.interfaces.len() < MAX_INTERFACES => {
                            self.interfaces.push(i);
                        }
                        Some(_) => {}
                    }
                    continue;
                }
                BLOCK_ENHANCED_PACKET | BLOCK_PACKET if body.len() >= PACKET_FIXED => {
                    let iface = if block.kind == BLOCK_PACKET {
                        u32::from(half(body, 0, big))
                    } else {
                        word(body, 0, big)
                    };
                    let raw_ts =
                        u64::from(word(body, 4, big)) << 32 | u64::from(word(body, 8, big));
                    (
                        iface,
                        Some(raw_ts),
                        word(body, 12, big) as usize,
                        word(body, 16, big),
                        PACKET_FIXED,
                    )
                }
                BLOCK_SIMPLE_PACKET if body.len() >= 4 => {
                    let wire_len = word(body, 0, big);
                    let snaplen = self.interfaces.first().map_or(0, |i| i.snaplen);
                    let mut caplen = (wire_len as usize).min(body.len() - 4);
                    if snaplen != 0 {
                        caplen = caplen.min(snaplen as usize);
                    }
                    (0, None, caplen, wire_len, 4)
                }
                BLOCK_ENHANCED_PACKET | BLOCK_PACKET | BLOCK_SIMPLE_PACKET => {
                    self.unreadable += 1;
                    continue;
                }
                _ => continue,
            };
            let Some(iface) = self.interfaces.get(iface as usize).copied() else {
                self.unreadable += 1;
                continue;
            };
            if data_at + caplen > body.len() {
                self.unreadable += 1;
                continue;
            }
            let Some(link) = iface.link else {
                self.unsupported += 1;
                continue;
            };
            let start = block.body.start + data_at;
            break (
                start..start + caplen,
                raw_ts.map_or(0, |t| iface.ts_ns(t)),
                link,
                wire_len,
            );
        };
        Some(Packet {
            ts_ns,
            link,
            data: &self.stream.bytes(data.end)[data],
            wire_len,
        })
    }

    fn end(&self) -> SourceEnd {
        self.end.clone().unwrap_or(SourceEnd::Complete)
    }

    fn describe(&self) -> String {
        name_of(&self.path)
    }

    fn unsupported_link_packets(&self) -> u64 {
        self.unsupported
    }

    fn unreadable_records(&self) -> u64 {
        self.unreadable
    }
    fn watch_stop(&mut self, stop: Arc<AtomicBool>) {
        self.stream.watch_stop(stop);
    }
}

/// (multiplier, divisor) turning a raw pcapng timestamp into nanoseconds for `if_tsresol`.
pub(super) fn resolution(tsresol: u8) -> (u64, u64) {
    let exp = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        // 10^-exp seconds per unit.
        if exp <= 9 {
            (10u64.pow(9 - exp), 1)
        } else {
            (1, 10u64.saturating_pow(exp - 9))
        }
    } else {
        // 2^-exp seconds per unit.
        (1_000_000_000, 1u64.checked_shl(exp).unwrap_or(u64::MAX))
    }
}

//! Port-scan detection, the detecting half of the connection guard: new connections in, flagged
//! scanners out, with the allow-list and the hook through which flagged scanners are blocked
//! ([`Blocker`]; live, the XDP blocklist in [`crate::live::blocklist`]).
//!
//! Contract: the workers log every new connection (a TCP segment with SYN set and ACK clear,
//! IPv4 or IPv6, on any port) into their epoch's delta; the aggregator hands each closed
//! second's logs, merged in packet-time order, to [`ScanDetector::observe`]. A source is a
//! port scanner when it opened connections to at least `ports` distinct destination ports
//! within `window`: precisely, when a SYN at time `t` makes the number of distinct ports whose
//! latest SYN from that source is later than `t - window` reach `ports`. Hammering one port is
//! one port however often; a slow scan whose ports are spaced `window` or more apart never has
//! two ports in the window.
//!
//! A flagged source raises one alert and is not flagged again while it stays flagged: for the
//! rest of the run, or until its block expires (`block_for`), after which it starts over.
//! Sources in the [`AllowList`] are tracked like any other but never flagged: reaching the
//! threshold gives one [`ScanEvent::Allowed`] per episode (the detector forgets a source once
//! all its ports have left the window), which is logged, never blocked.
//!
//! Bounded memory whatever the traffic: at most [`MAX_SOURCES`] sources and
//! [`MAX_PORT_ENTRIES`] (source, port) entries are tracked; sources idle for a whole window are
//! forgotten every second ([`ScanDetector::expire`]); past either bound, the least recently
//! active half of the tracked sources is forgotten at once (counted: `sources_evicted`), so an
//! address-spoofing flood costs O(log n) per new source and cannot grow the table. At most
//! [`MAX_FLAGGED`] sources stay flagged (the XDP blocklist holds as many); past it the oldest
//! flag is dropped (and its block lifted) to make room.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::counters::SynRecord;
use crate::live::sys::NS_PER_SEC;

/// Sources tracked at once.
pub const MAX_SOURCES: usize = 65_536;

/// (source, port) entries tracked at once over all sources.
pub const MAX_PORT_ENTRIES: usize = 1 << 20;

/// Sources flagged at once (the size of the XDP blocklist maps).
pub const MAX_FLAGGED: usize = 65_536;

/// The largest `--scan-ports`.
pub const MAX_SCAN_PORTS: u32 = 4096;

/// An IPv4 or IPv6 network: `10.0.0.0/8`, `2001:db8::/32`, or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address (host bits cleared).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// A single address (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Cidr {
        let addr = canonical(addr);
        Cidr {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
        }
    }

    /// `addr` is in this network. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = mask_v4(self.prefix);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = mask_v6(self.prefix);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an address or network (e.g. 10.0.0.0/8, ::1)"))?;
        let addr = canonical(addr);
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("`{s}`: the prefix length must be 0 to {max}")),
            },
        };
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = mask_v4(prefix);
                IpAddr::from(std::net::Ipv4Addr::from(u32::from(a) & mask))
            }
            IpAddr::V6(a) => {
                let mask = mask_v6(prefix);
                IpAddr::from(std::net::Ipv6Addr::from(u128::from(a) & mask))
            }
        };
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The network mask of an IPv4 prefix length (0 to 32).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The network mask of an IPv6 prefix length (0 to 128).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as IPv4; everything else unchanged.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Sources that are never flagged as port scanners.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    nets: Vec<Cidr>,
}

impl AllowList {
    /// An allow-list of these networks.
    pub fn new(nets: Vec<Cidr>) -> AllowList {
        AllowList { nets }
    }

    /// `addr` is allowed.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(addr))
    }

    /// The networks, in the order given.
    pub fn nets(&self) -> &[Cidr] {
        &self.nets
    }
}

/// Port-scan detection settings.
#[derive(Debug, Clone)]
pub struct ScanConfig {
    /// Distinct ports that make a scan (`--scan-ports`, at least 1).
    pub ports: u32,
    /// Seconds they must fall within (`--scan-window`, at least 1).
    pub window_secs: u64,
    /// Never flagged.
    pub allow: AllowList,
    /// How long a flagged source stays flagged (and blocked), in seconds; `None`: for the rest
    /// of the run.
    pub block_for_secs: Option<u64>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            ports: 3,
            window_secs: 60,
            allow: AllowList::default(),
            block_for_secs: None,
        }
    }
}

/// What the detector found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEvent {
    /// `source` reached the threshold at `ts` (ns) with `ports` distinct ports: flagged.
    Flagged {
        /// The scanner.
        source: IpAddr,
        /// Packet time of the SYN that reached the threshold.
        ts: u64,
        /// Distinct ports in the window at that moment.
        ports: u32,
    },
    /// An allow-listed source reached the threshold: logged, never flagged.
    Allowed {
        /// The source.
        source: IpAddr,
        /// Packet time of the SYN that reached the threshold.
        ts: u64,
        /// Distinct ports in the window at that moment.
        ports: u32,
    },
    /// A flag expired (`block_for`): the source starts over.
    Expired {
        /// The source.
        source: IpAddr,
        /// When the flag expired (ns).
        ts: u64,
    },
}

#[derive(Debug)]
struct Tracked {
    /// (port, packet time of its latest SYN), at most `ports - 1` long between observations.
    ports: Vec<(u16, u64)>,
    /// Latest SYN from this source.
    last: u64,
    /// An allow-listed source already reported for the ports now in its window.
    reported: bool,
}

/// Flag of one source: when it was flagged, when it expires.
#[derive(Debug, Clone, Copy)]
struct Flag {
    at: u64,
    until: Option<u64>,
}

/// Port-scan detector. See the module doc.
#[derive(Debug)]
pub struct ScanDetector {
    config: ScanConfig,
    window_ns: u64,
    sources: HashMap<IpAddr, Tracked>,
    entries: usize,
    flagged: HashMap<IpAddr, Flag>,
    /// Counters for the summary.
    pub stats: ScanStats,
}

/// The detector's own counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Sources flagged (alerts raised).
    pub flagged: u64,
    /// Allow-listed sources that reached the threshold.
    pub allowed: u64,
    /// Tracked sources forgotten early to stay within the bounds.
    pub sources_evicted: u64,
    /// Flags dropped early to stay within [`MAX_FLAGGED`].
    pub flags_evicted: u64,
    /// SYNs from flagged sources (seen, so not blocked: blocking off, or before the block).
    pub from_flagged: u64,
}

impl ScanDetector {
    /// A detector with nothing tracked.
    pub fn new(mut config: ScanConfig) -> ScanDetector {
        config.ports = config.ports.clamp(1, MAX_SCAN_PORTS);
        config.window_secs = config.window_secs.max(1);
        ScanDetector {
            window_ns: config.window_secs.saturating_mul(NS_PER_SEC),
            config,
            sources: HashMap::new(),
            entries: 0,
            flagged: HashMap::new(),
            stats: ScanStats::default(),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    /// Sources flagged now.
    pub fn flagged_now(&self) -> usize {
        self.flagged.len()
    }

    /// Sources tracked now.
    pub fn tracked(&self) -> usize {
        self.sources.len()
    }

    /// Feeds new connections in packet-time order; calls `event` for each finding.
    pub fn observe(&mut self, syns: &[SynRecord], mut event: impl FnMut(ScanEvent)) {
        for syn in syns {
            self.one(syn, &mut event);
        }
    }

    fn one(&mut self, syn: &SynRecord, event: &mut impl FnMut(ScanEvent)) {
        let source = canonical(syn.src);
        if self.flagged.contains_key(&source) {
            self.stats.from_flagged += 1;
            return;
        }
        if !self.sources.contains_key(&source)
            && (self.sources.len() >= MAX_SOURCES || self.entries >= MAX_PORT_ENTRIES)
        {
            self.evict_half();
        }
        let window = self.window_ns;
        let threshold = self.config.ports as usize;
        let tracked = self.sources.entry(source).or_insert_with(|| Tracked {
            ports: Vec::new(),
            last: syn.ts,
            reported: false,
        });
        tracked.last = tracked.last.max(syn.ts);
        // Ports whose latest SYN is `window` or more before this one have left the window.
        let before = tracked.ports.len();
        tracked
            .ports
            .retain(|&(_, at)| syn.ts.saturating_sub(at) < window);
        let mut entries = self.entries - (before - tracked.ports.len());
        if tracked.ports.is_empty() {
            tracked.reported = false;
        }
        match tracked.ports.iter_mut().find(|(p, _)| *p == syn.port) {
            Some((_, at)) => *at = (*at).max(syn.ts),
            None => {
                tracked.ports.push((syn.port, syn.ts));
                entries += 1;
            }
        }
        let distinct = tracked.ports.len();
        self.entries = entries;
        if distinct < threshold {
            return;
        }
        let ports = u32::try_from(distinct).unwrap_or(u32::MAX);
        if self.config.allow.contains(source) {
            if !tracked.reported {
                tracked.reported = true;
                self.stats.allowed += 1;
                event(ScanEvent::Allowed {
                    source,
                    ts: syn.ts,
                    ports,
                });
            }
            // Reported for this episode: keep fewer ports than the threshold (the oldest go),
            // so an allowed source scanning every port stays small.
            while tracked.ports.len() >= threshold {
                let oldest = (0..tracked.ports.len())
                    .min_by_key(|&i| tracked.ports[i].1)
                    .unwrap_or(0);
                tracked.ports.swap_remove(oldest);
                self.entries -= 1;
            }
            return;
        }
        // Flagged: tracking ends; the flag holds it from now on.
        if let Some(t) = self.sources.remove(&source) {
            self.entries -= t.ports.len();
        }
        if self.flagged.len() >= MAX_FLAGGED {
            if let Some((&oldest, _)) = self.flagged.iter().min_by_key(|(_, f)| f.at) {
                self.flagged.remove(&oldest);
                self.stats.flags_evicted += 1;
                event(ScanEvent::Expired {
                    source: oldest,
                    ts: syn.ts,
                });
            }
        }
        let until = self
            .config
            .block_for_secs
            .map(|s| syn.ts.saturating_add(s.saturating_mul(NS_PER_SEC)));
        self.flagged.insert(source, Flag { at: syn.ts, until });
        self.stats.flagged += 1;
        event(ScanEvent::Flagged {
            source,
            ts: syn.ts,
            ports,
        });
    }

    /// Forgets the least recently active half of the tracked sources.
    fn evict_half(&mut self) {
        let mut lasts: Vec<u64> = self.sources.values().map(|t| t.last).collect();
        if lasts.is_empty() {
            return;
        }
        let mid = lasts.len() / 2;
        let (_, &mut cut, _) = lasts.select_nth_unstable(mid);
        let before = self.sources.len();
        let mut freed = 0;
        self.sources.retain(|_, t| {
            let keep = t.last > cut;
            if !keep {
                freed += t.ports.len();
            }
            keep
        });
        self.entries -= freed;
        self.stats.sources_evicted += (before - self.sources.len()) as u64;
    }

    /// Called once per closed second with that second's end (ns): forgets sources idle for a
    /// whole window, and ends the flags whose time is up (calling `event` for each).
    pub fn expire(&mut self, now: u64, mut event: impl FnMut(ScanEvent)) {
        let window = self.window_ns;
        let mut freed = 0;
        self.sources.retain(|_, t| {
            let keep = now.saturating_sub(t.last) < window;
            if !keep {
                freed += t.ports.len();
            }
            keep
        });
        self.entries -= freed;
        let mut ended: Vec<(IpAddr, u64)> = self
            .flagged
            .iter()
            .filter_map(|(a, f)| f.until.filter(|&u| u <= now).map(|u| (*a, u)))
            .collect();
        ended.sort_by_key(|&(a, u)| (u, a));
        for (source, until) in ended {
            self.flagged.remove(&source);
            event(ScanEvent::Expired { source, ts: until });
        }
    }
}

/// The guard's settings as the summary shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardInfo {
    /// Distinct ports that make a scan.
    pub scan_ports: u32,
    /// Within this many seconds.
    pub scan_window_secs: u64,
    /// The allow-list as text.
    pub allow: Vec<String>,
    /// Where scanners were blocked (the interface), when `--block-scanners` was on.
    pub blocking_on: Option<String>,
}

impl GuardInfo {
    /// The settings of `config`, blocking on `blocking_on`.
    pub fn of(config: &ScanConfig, blocking_on: Option<String>) -> GuardInfo {
        GuardInfo {
            scan_ports: config.ports,
            scan_window_secs: config.window_secs,
            allow: config
                .allow
                .nets()
                .iter()
                .map(ToString::to_string)
                .collect(),
            blocking_on,
        }
    }
}

/// Where flagged sources are blocked: the XDP blocklist, live. The aggregator calls it on its
/// own thread, once per flag and expiry.
pub trait Blocker: Send {
    /// Blocks new connections (SYNs) from `source`.
    fn block(&mut self, source: IpAddr) -> Result<(), String>;
    /// Lifts the block on `source`.
    fn unblock(&mut self, source: IpAddr) -> Result<(), String>;
    /// SYNs dropped so far.
    fn dropped(&self) -> u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_SEC;

    fn syn(ts: u64, src: &str, port: u16) -> SynRecord {
        SynRecord {
            ts,
            src: src.parse().unwrap(),
            port,
        }
    }

    fn detector(ports: u32, window_secs: u64, allow: &[&str]) -> ScanDetector {
        ScanDetector::new(ScanConfig {
            ports,
            window_secs,
            allow: AllowList::new(allow.iter().map(|a| a.parse().unwrap()).collect()),
            block_for_secs: None,
        })
    }

    fn run(d: &mut ScanDetector, syns: &[SynRecord]) -> Vec<ScanEvent> {
        let mut out = Vec::new();
        d.observe(syns, |e| out.push(e));
        out
    }

    #[test]
    fn flags_at_the_pth_distinct_port_within_the_window() {
        let mut d = detector(3, 60, &[]);
        let events = run(
            &mut d,
            &[
                syn(100 * S, "10.0.0.9", 80),
                syn(101 * S, "10.0.0.9", 81),
                syn(102 * S, "10.0.0.9", 82),
                syn(103 * S, "10.0.0.9", 83),
            ],
        );
        assert_eq!(
            events,
            vec![ScanEvent::Flagged {
                source: "10.0.0.9".parse().unwrap(),
                ts: 102 * S,
                ports: 3
            }]
        );
        assert_eq!(d.stats.from_flagged, 1);
        assert_eq!(d.tracked(), 0);
    }

    #[test]
    fn hammering_one_port_is_not_a_scan() {
        let mut d = detector(3, 60, &[]);
        let syns: Vec<_> = (0..10_000)
            .map(|i| syn(100 * S + i, "10.0.0.9", 80))
            .collect();
        assert!(run(&mut d, &syns).is_empty());
        let two: Vec<_> = (0..1000)
            .map(|i| syn(200 * S + i, "10.0.0.9", 80 + u16::try_from(i % 2).unwrap()))
            .collect();
        assert!(run(&mut d, &two).is_empty(), "two ports are below three");
    }

    #[test]
    fn a_slow_scan_spaced_by_the_window_is_not_flagged() {
        let mut d = detector(3, 5, &[]);
        let syns: Vec<_> = (0..20)
            .map(|i| {
                syn(
                    1000 * S + i * 5 * S,
                    "10.0.0.9",
                    8000 + u16::try_from(i).unwrap(),
                )
            })
            .collect();
        assert!(run(&mut d, &syns).is_empty());
        // Just inside the window: flagged.
        let mut d = detector(3, 5, &[]);
        let fast: Vec<_> = (0..3)
            .map(|i| {
                syn(
                    1000 * S + i * (5 * S - 1) / 2,
                    "10.0.0.9",
                    8000 + u16::try_from(i).unwrap(),
                )
            })
            .collect();
        assert_eq!(run(&mut d, &fast).len(), 1);
    }

    #[test]
    fn a_repeated_port_refreshes_its_time() {
        let mut d = detector(3, 10, &[]);
        let events = run(
            &mut d,
            &[
                syn(0, "10.0.0.9", 80),
                syn(8 * S, "10.0.0.9", 80),
                syn(12 * S, "10.0.0.9", 81),
                syn(17 * S, "10.0.0.9", 82),
            ],
        );
        assert_eq!(
            events.len(),
            1,
            "port 80 was hit again at 8 s: still in the window"
        );
    }

    #[test]
    fn allow_listed_sources_are_reported_once_not_flagged() {
        let mut d = detector(3, 60, &["10.1.0.0/16", "::1"]);
        let mut syns: Vec<_> = (0..50)
            .map(|i| syn(S + i, "10.1.2.3", 1 + u16::try_from(i).unwrap()))
            .collect();
        syns.extend((0..5).map(|i| syn(2 * S + i, "::1", 1 + u16::try_from(i).unwrap())));
        syns.extend(
            (0..5).map(|i| syn(3 * S + i, "::ffff:10.1.9.9", 1 + u16::try_from(i).unwrap())),
        );
        let events = run(&mut d, &syns);
        assert_eq!(events.len(), 3, "{events:?}");
        assert!(events
            .iter()
            .all(|e| matches!(e, ScanEvent::Allowed { .. })));
        assert_eq!(d.flagged_now(), 0);
        // 50 ports scanned, but an allowed source keeps fewer than the threshold tracked.
        assert!(d.entries < 3 * 3, "{}", d.entries);
        // The episode ends when its ports leave the window; a new one is reported again.
        let again = run(
            &mut d,
            &(0..3)
                .map(|i| syn(200 * S + i, "10.1.2.3", 1 + u16::try_from(i).unwrap()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(again.len(), 1);
    }

    #[test]
    fn ipv6_and_mapped_sources() {
        let mut d = detector(2, 60, &[]);
        let events = run(
            &mut d,
            &[
                syn(S, "::ffff:192.0.2.7", 22),
                syn(S + 1, "192.0.2.7", 23),
                syn(S + 2, "2001:db8::7", 22),
            ],
        );
        assert_eq!(
            events,
            vec![ScanEvent::Flagged {
                source: "192.0.2.7".parse().unwrap(),
                ts: S + 1,
                ports: 2
            }]
        );
    }

    #[test]
    fn flags_expire_with_block_for_and_the_source_starts_over() {
        let mut d = ScanDetector::new(ScanConfig {
            ports: 2,
            window_secs: 60,
            allow: AllowList::default(),
            block_for_secs: Some(30),
        });
        assert_eq!(
            run(
                &mut d,
                &[syn(10 * S, "10.0.0.9", 1), syn(10 * S, "10.0.0.9", 2)]
            )
            .len(),
            1
        );
        let mut ended = Vec::new();
        d.expire(39 * S, |e| ended.push(e));
        assert!(ended.is_empty());
        d.expire(40 * S, |e| ended.push(e));
        assert_eq!(
            ended,
            vec![ScanEvent::Expired {
                source: "10.0.0.9".parse().unwrap(),
                ts: 40 * S
            }]
        );
        assert_eq!(
            run(
                &mut d,
                &[syn(41 * S, "10.0.0.9", 1), syn(41 * S, "10.0.0.9", 2)]
            )
            .len(),
            1
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_spoofed_flood() {
        let mut d = detector(3, 60, &[]);
        let mut flagged = 0;
        for batch in 0..40u64 {
            let syns: Vec<_> = (0..10_000u64)
                .map(|i| {
                    let n = u32::try_from(batch * 10_000 + i).unwrap();
                    SynRecord {
                        ts: batch * S + i,
                        src: IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 | n)),
                        port: 1 + (n % 2) as u16,
                    }
                })
                .collect();
            d.observe(&syns, |_| flagged += 1);
            assert!(d.tracked() <= MAX_SOURCES);
            assert!(d.entries <= MAX_PORT_ENTRIES);
        }
        assert_eq!(flagged, 0);
        assert!(d.stats.sources_evicted > 0);
        // A real scanner in the flood is still caught.
        let events = run(
            &mut d,
            &[
                syn(50 * S, "192.0.2.1", 1),
                syn(50 * S + 1, "192.0.2.1", 2),
                syn(50 * S + 2, "192.0.2.1", 3),
            ],
        );
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn idle_sources_are_forgotten() {
        let mut d = detector(3, 10, &[]);
        run(&mut d, &[syn(S, "10.0.0.1", 1), syn(S, "10.0.0.2", 1)]);
        assert_eq!(d.tracked(), 2);
        d.expire(10 * S, |_| {});
        assert_eq!(d.tracked(), 2);
        d.expire(11 * S, |_| {});
        assert_eq!(d.tracked(), 0);
        assert_eq!(d.entries, 0);
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.1.2.3/16".parse().unwrap();
        assert_eq!(c.to_string(), "10.1.0.0/16");
        assert!(c.contains("10.1.255.1".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert_eq!(one.prefix, 128);
        assert!(one.contains("::1".parse().unwrap()));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "x/8",
            "10.0.0.0/-1",
            "1.2.3.4/ab",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}

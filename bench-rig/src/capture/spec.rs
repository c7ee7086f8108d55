//! What a capture is asked to be ([`CaptureSpec`]: phases, keys, layers, seed) and what a
//! perfect monitor must count on it ([`CaptureTruth`]). [`CaptureSpec::validate`] checks
//! everything about a spec that the generator relies on.

use std::collections::{BTreeMap, HashMap};
use std::io;

/// One stretch of constant request rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// How many seconds the phase lasts.
    pub seconds: u32,
    /// Requests in each of those seconds (0 is an idle second).
    pub requests_per_second: u32,
}

/// A (section, host) pair that takes a fixed share of all requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeavyKey {
    /// The section, e.g. `/api`: starts with `/` and holds no other `/`, no `?` or `#`.
    pub section: String,
    /// The Host header value, e.g. `api.example`; counted lower-cased, as the monitor does.
    pub host: String,
    /// Requests per thousand that go to this pair.
    pub per_mille: u32,
}

/// Which keys the requests carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySpec {
    /// Size of the `/s{n}` section pool.
    pub distinct_sections: u32,
    /// Size of the `h{n}.example` host pool.
    pub distinct_hosts: u32,
    /// Size of the `agent/{n}` user-agent pool.
    pub distinct_user_agents: u32,
    /// Heavy keys: each (section, host) pair gets this many requests per thousand; the rest
    /// spread uniformly (deterministically, from the seed) over the distinct pools.
    pub heavy: Vec<HeavyKey>,
}

impl Default for KeySpec {
    fn default() -> Self {
        KeySpec {
            distinct_sections: 50,
            distinct_hosts: 10,
            distinct_user_agents: 5,
            heavy: Vec::new(),
        }
    }
}

/// What to generate. See the module doc for what each field guarantees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// Unix time of the first second.
    pub start_unix_secs: u64,
    /// Consecutive stretches of constant rate.
    pub phases: Vec<Phase>,
    /// Keep-alive: this many requests in a row on one TCP connection (at least 1).
    pub requests_per_connection: u32,
    /// SYN, SYN-ACK, ACK before each connection, FIN/ACK exchange after it.
    pub handshake: bool,
    /// A response (and the client's ACK of it) after each request.
    pub responses: bool,
    /// Request → response delay, jittered deterministically by up to +50%.
    pub response_latency_us: u32,
    /// Sections, hosts and user agents.
    pub keys: KeySpec,
    /// IPv6 (client `fd00::/8`, server `fd00:1::1`) instead of IPv4 (`10.0.x.y`, `10.1.0.1`).
    pub ipv6: bool,
    /// One 802.1Q tag with this VLAN ID (1..=4094) on every frame.
    pub vlan: Option<u16>,
    /// Seeds every choice: ISNs, ports, keys, methods, status codes, body lengths, latency.
    pub seed: u64,
}

impl Default for CaptureSpec {
    /// A small capture: 10 s at 100 requests/s, 10 requests per connection, responses and
    /// handshakes on, 50 sections, 10 hosts, 5 user agents, IPv4.
    fn default() -> Self {
        CaptureSpec {
            start_unix_secs: DEFAULT_START_UNIX_SECS,
            phases: vec![Phase {
                seconds: 10,
                requests_per_second: 100,
            }],
            requests_per_connection: 10,
            handshake: true,
            responses: true,
            response_latency_us: 250,
            keys: KeySpec::default(),
            ipv6: false,
            vlan: None,
            seed: 1,
        }
    }
}

/// 2023-11-14T22:13:20Z: a round, recent time that fits classic pcap's 32-bit seconds.
const DEFAULT_START_UNIX_SECS: u64 = 1_700_000_000;

impl CaptureSpec {
    /// The capture the replay benchmark reads: 1,000,000 requests, 100 s at 10,000 requests/s,
    /// 100 requests per keep-alive connection, responses and handshakes on, 2,000 sections,
    /// 500 hosts, 200 user agents, and three heavy keys (10%, 5% and 2% of requests).
    pub fn bench_default() -> Self {
        CaptureSpec {
            start_unix_secs: DEFAULT_START_UNIX_SECS,
            phases: vec![Phase {
                seconds: 100,
                requests_per_second: 10_000,
            }],
            requests_per_connection: 100,
            handshake: true,
            responses: true,
            response_latency_us: 250,
            keys: KeySpec {
                distinct_sections: 2_000,
                distinct_hosts: 500,
                distinct_user_agents: 200,
                heavy: vec![
                    heavy("/api", "api.example", 100),
                    heavy("/static", "cdn.example", 50),
                    heavy("/login", "www.example", 20),
                ],
            },
            ipv6: false,
            vlan: None,
            seed: 0x6c69_6e65_7761_7463, // "linewatc"
        }
    }

    /// How many requests the phases hold.
    pub fn total_requests(&self) -> u64 {
        self.phases
            .iter()
            .map(|p| u64::from(p.seconds) * u64::from(p.requests_per_second))
            .sum()
    }

    /// How many seconds the phases last.
    pub fn total_seconds(&self) -> u64 {
        self.phases.iter().map(|p| u64::from(p.seconds)).sum()
    }

    /// Phases holding exactly `requests` requests at `rate` per second: whole seconds at
    /// `rate`, then one second with the remainder. `rate` 0 gives no phases.
    pub fn phases_for(requests: u64, rate: u32) -> Vec<Phase> {
        if rate == 0 {
            return Vec::new();
        }
        let full = requests / u64::from(rate);
        let rest = requests % u64::from(rate);
        let mut phases = Vec::new();
        // A phase's seconds are u32: more than 136 years of full seconds splits into several.
        let mut left = full;
        while left > 0 {
            let seconds = u32::try_from(left).unwrap_or(u32::MAX);
            phases.push(Phase {
                seconds,
                requests_per_second: rate,
            });
            left -= u64::from(seconds);
        }
        if rest > 0 {
            phases.push(Phase {
                seconds: 1,
                requests_per_second: u32::try_from(rest).expect("rest < rate, a u32"),
            });
        }
        phases
    }

    /// Checks what the generator relies on; the error says which field is wrong and why.
    pub fn validate(&self) -> io::Result<()> {
        if self.requests_per_connection == 0 {
            return Err(invalid("requests_per_connection must be at least 1"));
        }
        let keys = &self.keys;
        if keys.distinct_sections == 0 || keys.distinct_hosts == 0 || keys.distinct_user_agents == 0
        {
            return Err(invalid(
                "distinct sections, hosts and user agents must each be at least 1",
            ));
        }
        let mut per_mille = 0u64;
        for key in &keys.heavy {
            per_mille += u64::from(key.per_mille);
            check_section(&key.section)?;
            check_host(&key.host)?;
        }
        if per_mille > PER_MILLE {
            return Err(invalid(format!(
                "heavy keys take {per_mille} per mille of requests: at most 1000"
            )));
        }
        if let Some(vid) = self.vlan {
            if !(VLAN_ID_MIN..=VLAN_ID_MAX).contains(&vid) {
                return Err(invalid(format!(
                    "VLAN ID {vid} is outside {VLAN_ID_MIN}..={VLAN_ID_MAX} (0 means untagged, 4095 is reserved)"
                )));
            }
        }
        let end = self.start_unix_secs.saturating_add(self.total_seconds());
        if end > u64::from(u32::MAX) {
            return Err(invalid(format!(
                "the capture would end at unix time {end}: classic pcap timestamps stop at {}",
                u32::MAX
            )));
        }
        Ok(())
    }
}

fn heavy(section: &str, host: &str, per_mille: u32) -> HeavyKey {
    HeavyKey {
        section: section.to_owned(),
        host: host.to_owned(),
        per_mille,
    }
}

/// What a perfect monitor must count on the capture [`write_capture`](super::write_capture) wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureTruth {
    /// HTTP requests.
    pub requests: u64,
    /// HTTP responses.
    pub responses: u64,
    /// Frames in the file.
    pub packets: u64,
    /// TCP connections (SYNs without ACK, when the handshake is on).
    pub connections: u64,
    /// Requests per second; index 0 is `start_unix_secs`.
    pub requests_per_second: Vec<u64>,
    /// Requests by method.
    pub methods: BTreeMap<String, u64>,
    /// Responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Requests by section.
    pub sections: HashMap<String, u64>,
    /// Requests by host, lower-cased.
    pub hosts: HashMap<String, u64>,
    /// Requests by user agent.
    pub user_agents: HashMap<String, u64>,
}

impl CaptureTruth {
    /// The `n` sections with the most requests, most first (ties by name).
    pub fn top_sections(&self, n: usize) -> Vec<(&str, u64)> {
        top(&self.sections, n)
    }

    /// The `n` hosts with the most requests, most first (ties by name).
    pub fn top_hosts(&self, n: usize) -> Vec<(&str, u64)> {
        top(&self.hosts, n)
    }

    /// The `n` user agents with the most requests, most first (ties by name).
    pub fn top_user_agents(&self, n: usize) -> Vec<(&str, u64)> {
        top(&self.user_agents, n)
    }
}

fn top(counts: &HashMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
    let mut all: Vec<(&str, u64)> = counts.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    all.truncate(n);
    all
}

/// A thousand: heavy keys' shares are per mille of every block of this many requests.
pub(super) const PER_MILLE: u64 = 1000;
const VLAN_ID_MIN: u16 = 1;
const VLAN_ID_MAX: u16 = 4094;
/// Longest heavy section or host: keeps every request inside one 1460-byte segment.
const MAX_KEY_LEN: usize = 256;

/// An `InvalidInput` error: what a wrong spec (or a time classic pcap cannot hold) gives.
pub(super) fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message.into())
}

fn check_section(section: &str) -> io::Result<()> {
    let rest = section.strip_prefix('/').ok_or_else(|| {
        invalid(format!(
            "heavy section {section:?} must start with '/' (e.g. /api)"
        ))
    })?;
    if section.len() > MAX_KEY_LEN
        || rest
            .bytes()
            .any(|b| matches!(b, b'/' | b'?' | b'#') || !b.is_ascii_graphic())
    {
        return Err(invalid(format!(
            "heavy section {section:?} must be '/' followed by visible ASCII bytes other than '/', '?' and '#', {MAX_KEY_LEN} bytes at most"
        )));
    }
    Ok(())
}

fn check_host(host: &str) -> io::Result<()> {
    if host.is_empty() || host.len() > MAX_KEY_LEN || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(format!(
            "heavy host {host:?} must be 1 to {MAX_KEY_LEN} visible ASCII bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_for_hold_exactly_the_requests() {
        let phases = CaptureSpec::phases_for(100_001, 10_000);
        let spec = CaptureSpec {
            phases,
            ..CaptureSpec::default()
        };
        assert_eq!(spec.total_requests(), 100_001);
        assert_eq!(spec.total_seconds(), 11);
        assert!(CaptureSpec::phases_for(5, 0).is_empty());
    }
}

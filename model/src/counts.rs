//! What was counted: heavy-hitter entries, the breakdown of one span of time, and the packet
//! counters.

/// One key of a heavy-hitter table (section, host, user agent, ...), as merged by the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopEntry {
    /// The key as it came off the wire (hosts lower-cased), at most the engine's key cap long.
    pub key: Vec<u8>,
    /// Requests counted under this key (an overestimate by at most `error`).
    pub count: u64,
    /// How much of `count` may belong to keys this entry replaced (space-saving); 0 = exact.
    pub error: u64,
    /// Request bytes (head + declared body) counted under this key.
    pub bytes: u64,
    /// The key was longer than the cap and was cut.
    pub truncated: bool,
}

impl TopEntry {
    /// The least the key's true count can be: `count - error`, exact when `error` is 0.
    pub fn lower_bound(&self) -> u64 {
        self.count.saturating_sub(self.error)
    }

    /// The count is an estimate: the key took over a slot other keys had counted in.
    pub fn is_approximate(&self) -> bool {
        self.error > 0
    }
}

/// A section with the hosts it was requested under, for "top sections (with their top hosts)".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionHosts {
    /// The section.
    pub section: TopEntry,
    /// Its top hosts, largest first.
    pub hosts: Vec<TopEntry>,
}

/// Counts over one span of time: a report interval, or everything since start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Breakdown {
    /// Length of the span in seconds.
    pub seconds: u64,
    /// HTTP requests.
    pub requests: u64,
    /// HTTP responses.
    pub responses: u64,
    /// Request bytes (head + declared body).
    pub request_bytes: u64,
    /// Requests per method name (`GET`, ..., `other`), largest first; zero counts left out.
    pub methods: Vec<(&'static str, u64)>,
    /// Responses per status code, by code.
    pub status: Vec<(u16, u64)>,
    /// Responses per status class: index 0 = 1xx ... 4 = 5xx; index 5 = codes 600 to 999.
    pub status_classes: [u64; 6],
    /// Top sections, largest first.
    pub sections: Vec<TopEntry>,
    /// Top sections with their top hosts, largest first.
    pub section_hosts: Vec<SectionHosts>,
    /// Top hosts (`-` when a request had no Host), largest first.
    pub hosts: Vec<TopEntry>,
    /// Top user agents (`-` when absent), largest first.
    pub user_agents: Vec<TopEntry>,
    /// New connections (TCP SYN without ACK, any port).
    pub connections: u64,
    /// Top sources of new connections (keys: the address as text), largest first.
    pub connection_sources: Vec<TopEntry>,
    /// Top destination ports of new connections (keys: the port as text), largest first.
    pub connection_ports: Vec<TopEntry>,
    /// The `--top-by` tables, in the order asked for.
    pub top_by: Vec<TopByTable>,
    /// Set when the span is everything since start limited by `--retention`: the counts cover
    /// only its last part, `seconds` long.
    pub retained: Option<Retained>,
}

/// What a span limited by `--retention` covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retained {
    /// The retention asked for, in seconds.
    pub retention_secs: u64,
    /// The first second counted.
    pub since: std::time::SystemTime,
}

/// What a `--top-by` table counts under (`--top-by KEY`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TopByKey {
    /// The client's address (the source of requests).
    Client,
    /// The server's address (the destination of requests).
    Server,
    /// The server's port.
    Port,
    /// A request header field, by its name in lower case (`referer`).
    Header(String),
    /// A response header field, by its name in lower case (`content-type`).
    ResponseHeader(String),
}

impl TopByKey {
    /// The table counts responses (a response header) rather than requests.
    pub fn is_response(&self) -> bool {
        matches!(self, TopByKey::ResponseHeader(_))
    }

    /// What the table's counts and bytes are, for the reports' titles and the metrics' help.
    pub fn measures(&self) -> &'static str {
        if self.is_response() {
            "responses; bytes = response head + declared body"
        } else {
            "requests; bytes = request head + declared body"
        }
    }
}

impl std::fmt::Display for TopByKey {
    /// As written on the command line: `client`, `server`, `port`, `header:referer`,
    /// `response-header:content-type`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopByKey::Client => f.write_str("client"),
            TopByKey::Server => f.write_str("server"),
            TopByKey::Port => f.write_str("port"),
            TopByKey::Header(name) => write!(f, "header:{name}"),
            TopByKey::ResponseHeader(name) => write!(f, "response-header:{name}"),
        }
    }
}

/// One `--top-by` table over a span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopByTable {
    /// What it is keyed by.
    pub by: TopByKey,
    /// Requests (responses, for a response header) counted into the table: the sum of every
    /// key's true count. Keys are addresses and ports as text, header values as sent (`-` when
    /// the field is absent); bytes as [`TopByKey::measures`] says.
    pub total: u64,
    /// Its top keys, largest first.
    pub entries: Vec<TopEntry>,
}

/// IP fragment reassembly: fragments taken and what became of their datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fragments {
    /// Fragments of TCP datagrams taken by the reassembler.
    pub fragments: u64,
    /// Datagrams reassembled and counted as if whole.
    pub reassembled: u64,
    /// Datagrams dropped incomplete after 30 s of packet time.
    pub timed_out: u64,
    /// Datagrams dropped incomplete to make room for newer ones.
    pub evicted: u64,
    /// Datagrams dropped because two fragments overlapped (RFC 5722).
    pub overlap: u64,
    /// Fragments ignored because their bytes had already arrived.
    pub duplicate: u64,
    /// Datagrams dropped because they would exceed 65,535 bytes.
    pub too_large: u64,
    /// Datagrams dropped for inconsistent fragments.
    pub invalid: u64,
}

impl Fragments {
    /// Every figure with its name in the summary, in order.
    pub fn named(&self) -> [(&'static str, u64); 8] {
        [
            ("fragments", self.fragments),
            ("reassembled", self.reassembled),
            ("timed_out", self.timed_out),
            ("evicted", self.evicted),
            ("overlap", self.overlap),
            ("duplicate", self.duplicate),
            ("too_large", self.too_large),
            ("invalid", self.invalid),
        ]
    }
}

/// Counters of packets and of what could not be counted as HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Packets read from the source.
    pub packets: u64,
    /// Bytes of those packets as captured.
    pub bytes: u64,
    /// Packets lost before linewatch saw them (kernel drops; 0 offline).
    pub dropped: u64,
    /// TCP payload segments on monitored ports that were not HTTP (or not at a message start).
    pub non_http: u64,
    /// HTTP messages that broke the grammar (counted once each).
    pub malformed: u64,
    /// TCP segments seen again (retransmissions), counted once.
    pub retransmitted: u64,
    /// Frames that could not be decoded down to TCP (not IP, not TCP, truncated, ...).
    pub undecoded: u64,
    /// Flows evicted from a full flow table before they ended.
    pub flows_evicted: u64,
    /// Responses with no request seen on their flow.
    pub unmatched_responses: u64,
    /// Requests and responses (counted as such too) whose head ended a line in a bare LF
    /// rather than CRLF.
    pub bare_lf: u64,
}

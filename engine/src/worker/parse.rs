//! Message heads: parsing a run of heads from a message boundary and counting each request
//! and response (totals, the heavy-hitter tables, pairing, events); how a segment that starts
//! a direction is recognised as HTTP.

use linewatch_model::{RequestEvent, ResponseEvent};
use linewatch_parser::http::{
    parse_request, parse_request_line, parse_response, Body, ChunkProgress, ChunkedBody, Method,
    Request, Response, Status, TargetForm,
};
use linewatch_parser::HttpError;

use super::{time_of, Worker, ABSENT, NS_PER_US};
use crate::counters::Counter;
use crate::flow::{Framing, Pending, Side};
use crate::topn::HashedKey;

/// Where a run of parsing stopped.
pub(super) enum Stop {
    /// Every byte was used; the direction continues with this framing.
    Framing(Framing),
    /// A head starting at this offset is cut.
    Partial(usize),
}

impl Worker {
    /// Parses every message head in `buf` (which starts at a message boundary). Bytes before
    /// `split` arrived at `early_ts`, the rest at `ts`.
    pub(super) fn parse(
        &mut self,
        slot: u32,
        side: Side,
        buf: &[u8],
        early_ts: u64,
        split: usize,
        ts: u64,
    ) -> Stop {
        let is_client = self.flows.flow(slot).client == Some(side);
        self.parse_as(slot, side, is_client, buf, early_ts, split, ts)
    }

    /// [`Worker::parse`] for a caller that knows whether `side` is the flow's client (the
    /// stream has its flow at hand: one slab lookup less per segment).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(super) fn parse_as(
        &mut self,
        slot: u32,
        side: Side,
        is_client: bool,
        buf: &[u8],
        early_ts: u64,
        split: usize,
        ts: u64,
    ) -> Stop {
        // One loop per side: each has only its own parser inlined, so fewer registers are
        // saved and spilled around a head than in one loop holding both.
        if is_client {
            self.parse_side::<true>(slot, side, buf, early_ts, split, ts)
        } else {
            self.parse_side::<false>(slot, side, buf, early_ts, split, ts)
        }
    }

    /// [`Worker::parse_as`] for one side: requests when `CLIENT`, responses otherwise.
    fn parse_side<const CLIENT: bool>(
        &mut self,
        slot: u32,
        side: Side,
        buf: &[u8],
        early_ts: u64,
        split: usize,
        ts: u64,
    ) -> Stop {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            // Nothing but empty lines left: the first byte tells, for all but a run of them.
            let empty_lines = match rest.first() {
                None => true,
                Some(b'\r' | b'\n') => rest.iter().all(|&b| b == b'\r' || b == b'\n'),
                Some(_) => false,
            };
            if empty_lines {
                return Stop::Framing(Framing::Boundary);
            }
            let msg_ts = if at < split { early_ts } else { ts };
            let parsed = if CLIENT {
                match parse_request(rest) {
                    Ok(Status::Complete(req)) => {
                        self.count_request(slot, side, &req, msg_ts);
                        if self.top_by.is_some() {
                            self.top_by(slot, side, true, &rest[..req.head_len]);
                        }
                        Ok((req.head_len, req.body, None))
                    }
                    Ok(Status::Partial) => return Stop::Partial(at),
                    Err(e) => Err(e),
                }
            } else {
                match parse_response(rest) {
                    Ok(Status::Complete(resp)) => {
                        let forced = self.count_response(slot, side, &resp, msg_ts);
                        if self.top_by.is_some() {
                            self.top_by(slot, side, false, &rest[..resp.head_len]);
                        }
                        Ok((resp.head_len, resp.body, forced))
                    }
                    Ok(Status::Partial) => return Stop::Partial(at),
                    Err(e) => Err(e),
                }
            };
            let (head_len, body, forced) = match parsed {
                Ok(v) => v,
                Err(e) => {
                    if self.flows.flow_mut(slot).http_seen {
                        self.malformed(e);
                    } else {
                        self.delta.add(Counter::NonHttp, 1);
                    }
                    return Stop::Framing(Framing::Unsynced);
                }
            };
            at += head_len;
            let rest = &buf[at..];
            // The body: dispatched once, on the parser's `Body` (a `Framing` made of it first
            // and matched again cost ~12 instructions a frame, callgrind).
            match forced {
                Some(Framing::Boundary) => continue,
                Some(other) => return Stop::Framing(other),
                None => {}
            }
            match body {
                Body::Empty | Body::Length(0) => {}
                Body::Length(n) => match usize::try_from(n) {
                    Ok(n) if n <= rest.len() => at += n,
                    _ => return Stop::Framing(Framing::Body(n - rest.len() as u64)),
                },
                Body::Chunked => {
                    let mut chunked = ChunkedBody::new();
                    match chunked.advance(rest) {
                        Ok(ChunkProgress::Done(used)) => at += used,
                        Ok(ChunkProgress::NeedMore) => {
                            return Stop::Framing(Framing::Chunked(chunked))
                        }
                        Err(e) => {
                            self.malformed(e);
                            return Stop::Framing(Framing::Unsynced);
                        }
                    }
                }
                Body::UntilClose => return Stop::Framing(Framing::UntilClose),
                Body::Unknown => return Stop::Framing(Framing::Unsynced),
            }
        }
    }

    pub(super) fn malformed(&mut self, e: HttpError) {
        self.delta.add(Counter::Malformed, 1);
        self.delta.tally.http_errors[e.index()] += 1;
    }

    /// Counts a request head (`parse` frames its body).
    pub(super) fn count_request(&mut self, slot: u32, side: Side, req: &Request<'_>, ts: u64) {
        let d = &mut *self.delta;
        let line = &req.line;
        let kind = line.method_kind();
        let section = line.section();
        // An absolute-form target's authority takes precedence over Host; an authority-form
        // target (CONNECT) stands in when Host is absent. One match on the form.
        let host = match line.target_form() {
            TargetForm::Origin | TargetForm::Asterisk => req.host,
            TargetForm::Absolute => line.authority().or(req.host),
            TargetForm::Authority => req.host.or(line.authority()),
        }
        .unwrap_or(ABSENT);
        let user_agent = req.user_agent.unwrap_or(ABSENT);
        let declared = match req.body {
            Body::Length(n) => n,
            _ => 0,
        };
        let bytes = req.head_len as u64 + declared;

        d.add(Counter::Requests, 1);
        d.add(Counter::RequestBytes, bytes);
        d.add(Counter::BareLf, u64::from(req.bare_lf));
        d.tally.methods[kind.index()] += 1;
        if let Some(e) = req.defect {
            d.add(Counter::Malformed, 1);
            d.tally.http_errors[e.index()] += 1;
        }
        // Each key hashed once: the section and host hashes also make the pair's. The pair
        // right after its parts, so that they need not be kept across the agent's record.
        let section_key = HashedKey::new(section);
        d.tally.sections.record_hashed(&section_key, 1, bytes);
        let host_key = HashedKey::lowercase(host);
        d.tally.hosts.record_hashed(&host_key, 1, bytes);
        d.tally
            .section_hosts
            .record_pair(&section_key, &host_key, 1, bytes);
        d.tally
            .user_agents
            .record_hashed(&HashedKey::new(user_agent), 1, bytes);

        let flow = self.flows.flow_mut(slot);
        flow.http_seen = true;
        let pending = Pending {
            ts,
            head: kind == Method::Head,
            connect: kind == Method::Connect,
        };
        if !flow.push_pending(pending) {
            d.add(Counter::PendingOverflow, 1);
        }
        if let Some(sink) = self.events.as_mut() {
            let (client, server) = (flow.key.ends[side], flow.key.ends[1 - side]);
            sink.request(&RequestEvent {
                ts: time_of(ts),
                src: (client.ip(), client.port),
                dst: (server.ip(), server.port),
                method: line.method,
                target: line.target,
                section,
                version: line.version.as_str(),
                host: req.host,
                user_agent: req.user_agent,
                bytes,
            });
        }
    }

    /// Counts a response head; returns how its body is framed when not as `resp.body` says
    /// (which `parse` reads): none after a HEAD request (`Boundary`), a tunnel after a 2xx to
    /// CONNECT or a 101 (`Opaque`). Always inlined into the response loop: as a call it
    /// cost 12 instructions a frame more on the bench mix (802.4 against 790.6).
    #[inline(always)]
    pub(super) fn count_response(
        &mut self,
        slot: u32,
        side: Side,
        resp: &Response<'_>,
        ts: u64,
    ) -> Option<Framing> {
        let d = &mut *self.delta;
        let code = resp.line.code;
        d.add(Counter::Responses, 1);
        d.add(Counter::BareLf, u64::from(resp.bare_lf));
        if let Some(s) = d.tally.status.get_mut(usize::from(code)) {
            *s += 1;
        }
        if let Some(e) = resp.defect {
            d.add(Counter::Malformed, 1);
            d.tally.http_errors[e.index()] += 1;
        }
        let flow = self.flows.flow_mut(slot);
        flow.http_seen = true;
        let interim = (100..200).contains(&code) && code != 101;
        let request = if interim {
            flow.front_pending()
        } else {
            flow.pop_pending()
        };
        let mut latency_us = None;
        let mut body = None;
        match request {
            Some(req) => {
                let us = ts.saturating_sub(req.ts) / NS_PER_US;
                if !interim {
                    d.tally.response_latency_us.record(us.max(1));
                }
                latency_us = Some(us);
                if req.head {
                    body = Some(Framing::Boundary);
                }
                if req.connect && (200..300).contains(&code) {
                    body = Some(Framing::Opaque);
                    flow.dirs[1 - side].framing = Framing::Opaque;
                }
            }
            None => {
                d.add(Counter::UnmatchedResponses, 1);
                self.unmatched += 1;
            }
        }
        if code == 101 {
            body = Some(Framing::Opaque);
            flow.dirs[1 - side].framing = Framing::Opaque;
        }
        if let Some(sink) = self.events.as_mut() {
            let (server, client) = (flow.key.ends[side], flow.key.ends[1 - side]);
            let declared = match resp.body {
                Body::Length(n) => n,
                _ => 0,
            };
            sink.response(&ResponseEvent {
                ts: time_of(ts),
                src: (server.ip(), server.port),
                dst: (client.ip(), client.port),
                status: code,
                latency_us,
                bytes: resp.head_len as u64 + declared,
            });
        }
        body
    }
}

/// Methods whose name alone makes a segment start believable as a request.
pub(super) const KNOWN_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"CONNECT ",
    b"OPTIONS ",
    b"TRACE ",
    b"PATCH ",
];

/// `buf` starts like a request: a known method, or any method token on a line that ends in an
/// `HTTP/1.x` version. A cut-off start counts if it is a prefix of a known method.
pub(super) fn plausible_request(buf: &[u8]) -> bool {
    if KNOWN_METHODS
        .iter()
        .any(|m| buf.starts_with(m) || m.starts_with(buf))
    {
        return true;
    }
    matches!(parse_request_line(buf), Ok(Status::Complete((line, _)))
        if line.version != linewatch_parser::http::Version::Http09)
}

/// `buf` starts like a response: `HTTP/1.` (or a prefix of it).
pub(super) fn plausible_response(buf: &[u8]) -> bool {
    const START: &[u8] = b"HTTP/1.";
    buf.starts_with(START) || START.starts_with(buf)
}

//! The `--top-by` tables: each request (response, for a response header) is also counted under
//! the keys the operator chose (client or server address, server port, a header's value).
//!
//! Contract: without `--top-by` a message costs one `Option` test ([`Worker::top_by`] is
//! `None`); the counting itself is out of line, so the frame path's inlining stays as it was
//! (see the comments in `heads.rs` on what a second inlined call cost `engine_loop`). A header
//! is found by a scan of the head's lines for the configured names only, case-insensitively;
//! the first field of that name counts, its value with the whitespace around it trimmed, and a
//! message without it counts under `-` (as nginx logs an absent header). A core's delta gets
//! its tables on its first message with `--top-by` (once per delta: they are kept across
//! clears), so deltas made before the worker knew its keys need nothing.

use linewatch_model::TopByKey;
use linewatch_parser::http::{Body, Request, Response};

use super::{Worker, ABSENT};
use crate::counters::{addr_key, CORE_TABLE_CAPACITY};
use crate::flow::Side;

/// What a worker counts with `--top-by`.
#[derive(Debug)]
pub(super) struct TopBy {
    /// Every key, in the order asked for (each delta's tables follow it).
    keys: Box<[TopByKey]>,
    /// Some key is counted per request.
    requests: bool,
    /// Some key is counted per response.
    responses: bool,
}

impl TopBy {
    /// `None` without keys: the worker then pays one `Option` test per message.
    pub(super) fn new(keys: &[TopByKey]) -> Option<Box<TopBy>> {
        if keys.is_empty() {
            return None;
        }
        Some(Box::new(TopBy {
            keys: keys.into(),
            requests: keys.iter().any(|k| !k.is_response()),
            responses: keys.iter().any(TopByKey::is_response),
        }))
    }
}

/// Bytes of a message: its head and the body length it declares (`request_bytes`' measure).
fn message_bytes(head_len: usize, body: Body) -> u64 {
    let declared = match body {
        Body::Length(n) => n,
        _ => 0,
    };
    head_len as u64 + declared
}

/// The value of the first header field called `name` (lower case) in `head`, a whole message
/// head (leading empty lines, the start line, the fields, the empty line), OWS trimmed.
pub(crate) fn header_value<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    let start = head.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let mut lines = head[start..].split(|&b| b == b'\n');
    // The start line.
    lines.next()?;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if line[..colon].eq_ignore_ascii_case(name) {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

impl Worker {
    /// Counts request `req` (whose head is `head`) of the flow in `slot`, sent by `side`, into
    /// the request-keyed `--top-by` tables.
    #[cold]
    #[inline(never)]
    pub(super) fn top_by_request(&mut self, slot: u32, side: Side, req: &Request<'_>, head: &[u8]) {
        let Some(spec) = self.top_by.as_deref() else {
            return;
        };
        if !spec.requests {
            return;
        }
        let tally = &mut self.delta.tally;
        tally.add_top_by(&spec.keys, CORE_TABLE_CAPACITY);
        let key = self.flows.flow_mut(slot).key;
        let (client, server) = (key.ends[side], key.ends[1 - side]);
        let bytes = message_bytes(req.head_len, req.body);
        for (by, table) in &mut tally.top_by {
            match by {
                TopByKey::Client => {
                    let (k, n) = addr_key(client.ip());
                    table.record(&k[..n], 1, bytes);
                }
                TopByKey::Server => {
                    let (k, n) = addr_key(server.ip());
                    table.record(&k[..n], 1, bytes);
                }
                TopByKey::Port => table.record(&server.port.to_be_bytes(), 1, bytes),
                TopByKey::Header(name) => {
                    table.record(header_value(head, name).unwrap_or(ABSENT), 1, bytes);
                }
                TopByKey::ResponseHeader(_) => {}
            }
        }
    }

    /// Counts response `resp` (whose head is `head`) into the response-header `--top-by`
    /// tables.
    #[cold]
    #[inline(never)]
    pub(super) fn top_by_response(&mut self, resp: &Response<'_>, head: &[u8]) {
        let Some(spec) = self.top_by.as_deref() else {
            return;
        };
        if !spec.responses {
            return;
        }
        let tally = &mut self.delta.tally;
        tally.add_top_by(&spec.keys, CORE_TABLE_CAPACITY);
        let bytes = message_bytes(resp.head_len, resp.body);
        for (by, table) in &mut tally.top_by {
            if let TopByKey::ResponseHeader(name) = by {
                table.record(header_value(head, name).unwrap_or(ABSENT), 1, bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_value_finds_the_first_field_by_name_in_any_case() {
        let head =
            b"\r\nGET / HTTP/1.1\r\nHost: a\r\nreferer:  http://x/y \r\nReferer: second\r\n\r\n";
        assert_eq!(header_value(head, "referer"), Some(&b"http://x/y"[..]));
        assert_eq!(header_value(head, "host"), Some(&b"a"[..]));
        assert_eq!(header_value(head, "x-forwarded-for"), None);
        // The start line is not a field, however it reads.
        assert_eq!(header_value(b"GET /a:b HTTP/1.1\r\n\r\n", "get /a"), None);
    }

    #[test]
    fn header_value_reads_bare_lf_heads_and_stops_at_the_empty_line() {
        let head = b"HTTP/1.1 200 OK\nContent-Type:text/html\n\nX-After: no\n";
        assert_eq!(header_value(head, "content-type"), Some(&b"text/html"[..]));
        assert_eq!(header_value(head, "x-after"), None);
        assert_eq!(
            header_value(b"HTTP/1.1 200 OK\r\nX-Empty:\r\n\r\n", "x-empty"),
            Some(&b""[..])
        );
    }
}

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

/// The header fields of `head`, a whole message head (leading empty lines, the start line,
/// the fields, the empty line), as `(name, value)` with the value's whitespace trimmed.
fn fields(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let start = head
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(head.len());
    head[start..]
        .split(|&b| b == b'\n')
        // The start line.
        .skip(1)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .take_while(|line| !line.is_empty())
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], line[colon + 1..].trim_ascii()))
        })
}

/// The value of the first header field called `name` (lower case) in `head` (see [`fields`]).
pub(crate) fn header_value<'a>(head: &'a [u8], name: &str) -> Option<&'a [u8]> {
    fields(head)
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

/// Bytes of the message whose head is `head`: the head and the body length it declares
/// (`request_bytes`' measure: Content-Length, unless a Transfer-Encoding overrides it). Read
/// from the head here rather than taken from the parser's result: passing that result out of
/// `parse` cost the frame path instructions without `--top-by` (see [`Worker::top_by`]).
fn message_bytes(head: &[u8]) -> u64 {
    let mut declared = None;
    for (name, value) in fields(head) {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return head.len() as u64;
        }
        if declared.is_none() && name.eq_ignore_ascii_case(b"content-length") {
            declared = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    head.len() as u64 + declared.unwrap_or(0)
}

impl Worker {
    /// Counts the message whose head is `head` (a request when `is_client`, else a response),
    /// of the flow in `slot`, sent by `side`, into the `--top-by` tables. Only the head is
    /// passed: handing over more of what `parse` had parsed kept it alive across the count on
    /// the frame path, and parsing again here made a second caller of the parser's entry
    /// points, which the compiler then stopped inlining; either cost `engine_loop` 8 to 37
    /// instructions a frame without `--top-by`.
    #[cold]
    #[inline(never)]
    pub(super) fn top_by(&mut self, slot: u32, side: Side, is_client: bool, head: &[u8]) {
        let Some(spec) = self.top_by.as_deref() else {
            return;
        };
        if !(if is_client {
            spec.requests
        } else {
            spec.responses
        }) {
            return;
        }
        let bytes = message_bytes(head);
        let tally = &mut self.delta.tally;
        tally.add_top_by(&spec.keys, CORE_TABLE_CAPACITY);
        let key = self.flows.flow_mut(slot).key;
        let (client, server) = (key.ends[side], key.ends[1 - side]);
        for (by, table) in &mut tally.top_by {
            match (by, is_client) {
                (TopByKey::Client, true) => {
                    let (k, n) = addr_key(client.ip());
                    table.record(&k[..n], 1, bytes);
                }
                (TopByKey::Server, true) => {
                    let (k, n) = addr_key(server.ip());
                    table.record(&k[..n], 1, bytes);
                }
                (TopByKey::Port, true) => table.record(&server.port.to_be_bytes(), 1, bytes),
                (TopByKey::Header(name), true) | (TopByKey::ResponseHeader(name), false) => {
                    table.record(header_value(head, name).unwrap_or(ABSENT), 1, bytes);
                }
                _ => {}
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
    fn message_bytes_are_the_head_and_its_declared_length() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
        assert_eq!(message_bytes(head), head.len() as u64 + 10);
        let head = b"POST / HTTP/1.1\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(message_bytes(head), head.len() as u64);
        let head = b"HTTP/1.1 200 OK\nContent-Length: x\n\n";
        assert_eq!(message_bytes(head), head.len() as u64);
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

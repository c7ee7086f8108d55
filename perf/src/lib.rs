//! Inputs shared by linewatch's benchmarks, so every benchmark and the baseline beside it parse
//! exactly the same bytes. The benchmarks themselves are in `benches/`; results and the
//! commands that made them are in `perf/README.md`.

#![forbid(unsafe_code)]

/// The shortest realistic request: what `curl http://localhost/` sends, minus its headers
/// other than Host.
pub const SHORT_GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

/// A typical browser navigation request with cookies, about 700 bytes.
pub const BROWSER_GET: &[u8] = b"GET /wiki/Special:Search?search=traffic+monitor&go=Go HTTP/1.1\r\n\
Host: en.wikipedia.org\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://en.wikipedia.org/wiki/Main_Page\r\n\
Connection: keep-alive\r\n\
Cookie: WMF-Last-Access=21-Nov-2026; WMF-Last-Access-Global=21-Nov-2026; enwikimwuser-sessionId=3f9a8c2e1b7d4a6f0e5c; enwikiwmE-sessionTickLastTickTime=1795000000000; enwikiwmE-sessionTickTickCount=12\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
\r\n";

/// One request of the pipelined segment: a scanner's GET, as in the pipelining capture of the
/// corpus (nine of them fit one 1440-byte segment).
const PIPELINED_GET: &str = "GET /_vti_bin/_vti_aut/author.dll HTTP/1.1\r\n\
Host: 116.181.2.152\r\n\
User-Agent: Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)\r\n\
\r\n";

/// How many requests the pipelined segment holds.
pub const PIPELINED_REQUESTS: usize = 9;

/// Nine pipelined GETs in one segment.
pub fn pipelined_segment() -> Vec<u8> {
    PIPELINED_GET.repeat(PIPELINED_REQUESTS).into_bytes()
}

/// A typical response head: status line plus the headers a server sends with a small page.
pub const RESPONSE_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\n\
Server: nginx/1.22.1\r\n\
Date: Sat, 21 Nov 2026 15:31:13 GMT\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Length: 612\r\n\
Last-Modified: Tue, 17 Nov 2026 09:00:00 GMT\r\n\
Connection: keep-alive\r\n\
ETag: \"6736a1c0-264\"\r\n\
Accept-Ranges: bytes\r\n\
\r\n";

/// The job each benchmark times, done by our parser and by httparse.
pub mod jobs {
    use linewatch_parser::http::{self, Status};

    use super::{pipelined_segment, BROWSER_GET, RESPONSE_HEAD, SHORT_GET};

    /// One parser doing the job on one input; the result is summed so it cannot be optimised away.
    pub type Job = fn(&[u8]) -> usize;

    /// httparse needs a header array up front; 64 covers any browser request.
    const MAX_HEADERS: usize = 64;

    /// What both parsers must produce for a request: lengths of method, target and Host, summed
    /// so the work cannot be optimised away.
    #[inline]
    fn ours_answer(r: &http::Request<'_>) -> usize {
        r.line.method.len() + r.line.target.len() + r.host.map_or(0, <[u8]>::len)
    }

    /// The same answer from httparse: Host has to be looked up among the parsed headers.
    #[inline]
    fn httparse_answer(req: &httparse::Request<'_, '_>) -> usize {
        let host = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("host"));
        req.method.map_or(0, str::len)
            + req.path.map_or(0, str::len)
            + host.map_or(0, |h| h.value.len())
    }

    /// One request.
    pub fn ours_request(buf: &[u8]) -> usize {
        match http::parse_request(buf) {
            Ok(Status::Complete(r)) => ours_answer(&r),
            _ => 0,
        }
    }

    /// One request, by httparse.
    pub fn httparse_request(buf: &[u8]) -> usize {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(_)) => httparse_answer(&req),
            _ => 0,
        }
    }

    /// Every request of a pipelined segment, one after another.
    pub fn ours_pipelined(buf: &[u8]) -> usize {
        http::requests(buf).map(|(_, r)| ours_answer(&r)).sum()
    }

    /// Every request of a pipelined segment, by httparse.
    pub fn httparse_pipelined(mut buf: &[u8]) -> usize {
        let mut sum = 0;
        while !buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(len)) = req.parse(buf) else {
                break;
            };
            sum += httparse_answer(&req);
            // No bodies in this segment (GETs without Content-Length).
            buf = &buf[len..];
        }
        sum
    }

    /// Status code and Content-Length: what linewatch needs from a response head.
    pub fn ours_response(buf: &[u8]) -> usize {
        match http::parse_response(buf) {
            Ok(Status::Complete(r)) => {
                let length = match r.body {
                    http::Body::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
                    _ => 0,
                };
                usize::from(r.line.code) + length
            }
            _ => 0,
        }
    }

    /// Status code and Content-Length, by httparse.
    pub fn httparse_response(buf: &[u8]) -> usize {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(buf) {
            Ok(httparse::Status::Complete(_)) => {
                let length = res
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| {
                        std::str::from_utf8(h.value)
                            .ok()?
                            .trim()
                            .parse::<usize>()
                            .ok()
                    })
                    .unwrap_or(0);
                usize::from(res.code.unwrap_or(0)) + length
            }
            _ => 0,
        }
    }

    /// Every benchmark: name, input, our job, httparse's job.
    pub fn all() -> [(&'static str, Vec<u8>, Job, Job); 4] {
        [
            (
                "short_get",
                SHORT_GET.to_vec(),
                ours_request,
                httparse_request,
            ),
            (
                "browser_get",
                BROWSER_GET.to_vec(),
                ours_request,
                httparse_request,
            ),
            (
                "pipelined_9_gets",
                pipelined_segment(),
                ours_pipelined,
                httparse_pipelined,
            ),
            (
                "response_head",
                RESPONSE_HEAD.to_vec(),
                ours_response,
                httparse_response,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_what_their_names_say() {
        assert!(
            (650..=800).contains(&BROWSER_GET.len()),
            "{}",
            BROWSER_GET.len()
        );
        let segment = pipelined_segment();
        assert!(segment.len() <= 1460, "fits one segment: {}", segment.len());
        let n = linewatch_parser::http::requests(&segment).count();
        assert_eq!(n, PIPELINED_REQUESTS);
        for input in [SHORT_GET, BROWSER_GET, RESPONSE_HEAD] {
            assert!(input.ends_with(b"\r\n\r\n"));
        }
    }

    #[test]
    fn both_parsers_find_the_same_answer() {
        for (name, input, ours, theirs) in jobs::all() {
            assert_ne!(ours(&input), 0, "{name}: nothing parsed");
            assert_eq!(ours(&input), theirs(&input), "{name}: parsers disagree");
        }
    }
}

/// Frames for the engine benchmark: a capture from the bench rig's generator, in memory.
pub mod frames {
    use linewatch_bench_rig::capture::{write_capture, CaptureSpec, Phase};
    use linewatch_parser::wire::LinkType;
    use pcap_file::pcap::PcapReader;

    /// One captured frame: time (ns) and bytes.
    #[derive(Debug, Clone)]
    pub struct Frame {
        /// Capture time, ns since the Unix epoch.
        pub ts_ns: u64,
        /// The Ethernet frame.
        pub data: Vec<u8>,
        /// Its length on the wire.
        pub wire_len: u32,
    }

    /// The link type of every frame.
    pub const LINK: LinkType = LinkType::Ethernet;

    /// `requests` requests of the replay benchmark's mix (keep-alive connections with
    /// handshakes, responses and ACKs; 2,000 sections, 500 hosts), as frames in capture order.
    pub fn bench_mix(requests: u32) -> Vec<Frame> {
        let mut spec = CaptureSpec::bench_default();
        spec.phases = vec![Phase {
            seconds: 1,
            requests_per_second: requests,
        }];
        let mut file = Vec::new();
        // Writing to a Vec cannot fail, and the spec is the tested default with a smaller rate.
        write_capture(&spec, &mut file).expect("generating the benchmark capture");
        let mut reader = PcapReader::new(&file[..]).expect("reading back the generated capture");
        let mut frames = Vec::new();
        while let Some(Ok(p)) = reader.next_packet() {
            frames.push(Frame {
                ts_ns: u64::try_from(p.timestamp.as_nanos()).unwrap_or(u64::MAX),
                wire_len: p.orig_len,
                data: p.data.into_owned(),
            });
        }
        frames
    }

    /// Pure ACKs the receiver sends after each segment with data in [`ack_heavy_mix`].
    pub const ACKS_PER_SEGMENT: usize = 8;

    /// The smallest frames a link carries: [`bench_mix`] with [`ACKS_PER_SEGMENT`] pure ACKs
    /// (60 bytes captured, 64 on the wire with the FCS) from the receiver after every segment
    /// with data: the first acknowledges it, the rest are window updates. About nine frames in
    /// ten are then minimum-size ACKs, as on a link busy with transfers in both directions.
    pub fn ack_heavy_mix(requests: u32) -> Vec<Frame> {
        let mut out = Vec::new();
        for f in bench_mix(requests) {
            let acks = data_segment(&f.data).map(|seg| acks_for(&seg));
            let ts_ns = f.ts_ns;
            out.push(f);
            for (i, ack) in acks.into_iter().flatten().enumerate() {
                out.push(Frame {
                    // A microsecond apart, after the segment they answer.
                    ts_ns: ts_ns + 1_000 * (i as u64 + 1),
                    wire_len: u32::try_from(ack.len()).unwrap_or(u32::MAX),
                    data: ack,
                });
            }
        }
        out
    }

    /// What an ACK of a segment needs from it.
    struct DataSegment {
        src: [u8; 4],
        dst: [u8; 4],
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        len: u32,
    }

    /// The generator's untagged Ethernet/IPv4/TCP frame, if it carries data.
    fn data_segment(frame: &[u8]) -> Option<DataSegment> {
        const IP: usize = 14;
        let be16 = |at: usize| Some(u16::from_be_bytes(frame.get(at..at + 2)?.try_into().ok()?));
        let be32 = |at: usize| Some(u32::from_be_bytes(frame.get(at..at + 4)?.try_into().ok()?));
        if be16(12)? != 0x0800 {
            return None;
        }
        let ihl = usize::from(frame.get(IP)? & 0x0f) * 4;
        let tcp = IP + ihl;
        let tcp_len = usize::from(frame.get(tcp + 12)? >> 4) * 4;
        let len = usize::from(be16(IP + 2)?).checked_sub(ihl + tcp_len)?;
        (len > 0).then_some(DataSegment {
            src: frame.get(IP + 12..IP + 16)?.try_into().ok()?,
            dst: frame.get(IP + 16..IP + 20)?.try_into().ok()?,
            src_port: be16(tcp)?,
            dst_port: be16(tcp + 2)?,
            seq: be32(tcp + 4)?,
            ack: be32(tcp + 8)?,
            len: u32::try_from(len).ok()?,
        })
    }

    /// [`ACKS_PER_SEGMENT`] pure ACKs of `seg` from its receiver, padded to the minimum frame.
    fn acks_for(seg: &DataSegment) -> Vec<Vec<u8>> {
        use linewatch_testkit::frame::{Frame as Builder, TcpFlags, TcpRepr, ETHERNET_MIN_FRAME};
        (0..ACKS_PER_SEGMENT)
            .map(|i| {
                let mut frame = Builder::tcp(
                    seg.dst.into(),
                    seg.src.into(),
                    TcpRepr {
                        src_port: seg.dst_port,
                        dst_port: seg.src_port,
                        seq: seg.ack,
                        ack: seg.seq.wrapping_add(seg.len),
                        flags: TcpFlags::ACK,
                        window: 64_000 + u16::try_from(i).unwrap_or(0),
                        ..TcpRepr::default()
                    },
                );
                frame.min_len = ETHERNET_MIN_FRAME;
                frame.to_vec()
            })
            .collect()
    }
}

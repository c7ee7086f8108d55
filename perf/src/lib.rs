//! Inputs shared by linewatch's benchmarks, so every benchmark and the baseline beside it parse
//! exactly the same bytes. The benchmarks themselves are in `benches/`; results and the
//! commands that made them are in `perf/README.md`.

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
}

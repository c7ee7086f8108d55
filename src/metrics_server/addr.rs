//! `--metrics ADDR`: the address the endpoint listens on, as the user may write it.
//!
//! `PORT`, `:PORT`, `HOST:PORT` (an IPv4 address, `localhost` or a DNS name) or `[IPv6]:PORT`;
//! without a host the endpoint listens on 127.0.0.1 only, so that counters are not published
//! to the network unless asked. Every error is one line that quotes what was given (escaped)
//! and says what is expected.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Text of an I/O error without Rust's " (os error N)" suffix.
pub(super) fn io_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// Parses `--metrics ADDR`: `PORT`, `:PORT`, `HOST:PORT` (IPv4, `localhost` or a name) or
/// `[IPv6]:PORT`. Without a host the address is 127.0.0.1. Port 0 is refused. Errors are one
/// line.
pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let usage =
        || format!("invalid metrics address {s:?}: expected PORT, :PORT, HOST:PORT or [IPv6]:PORT");
    let port = |p: &str| -> Result<u16, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(usage());
        }
        match p.parse::<u16>() {
            Ok(0) => Err(format!(
                "invalid metrics address {s:?}: port 0 is not allowed (give a port to scrape)"
            )),
            Ok(n) => Ok(n),
            Err(_) => Err(format!(
                "invalid metrics address {s:?}: port {p} is out of range (1-65535)"
            )),
        }
    };
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if let Some(p) = s.strip_prefix(':').filter(|p| !p.contains(':')) {
        return Ok(SocketAddr::new(loopback, port(p)?));
    }
    let Some((host, p)) = s.rsplit_once(':') else {
        return Ok(SocketAddr::new(loopback, port(s)?));
    };
    let port = port(p)?;
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<IpAddr>() {
            Ok(ip @ IpAddr::V6(_)) => Ok(SocketAddr::new(ip, port)),
            _ => Err(usage()),
        };
    }
    if host.contains(':') {
        return Err(format!(
            "invalid metrics address {s:?}: an IPv6 address needs brackets, e.g. [::1]:{port}"
        ));
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::new(IpAddr::V4(ip), port));
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(loopback, port));
    }
    if !is_host_name(host) {
        return Err(usage());
    }
    // A host name: the first address it resolves to, IPv4 preferred.
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| format!("invalid metrics address {s:?}: {host} has no address"))
        }
        Err(e) => Err(format!(
            "invalid metrics address {s:?}: cannot resolve {host}: {}",
            io_text(&e)
        )),
    }
}

/// A DNS host name (RFC 1123: dot-separated labels of letters, digits and inner hyphens, the
/// last one not all digits, so that a mistyped IPv4 address is not looked up).
fn is_host_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.len() <= 253
        && host.split('.').all(label_ok)
        && !host
            .rsplit('.')
            .next()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn parse_addr_accepts_the_documented_forms() {
        let v4 = |a: [u8; 4], p| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p);
        for (s, want) in [
            ("9100", v4([127, 0, 0, 1], 9100)),
            (":9100", v4([127, 0, 0, 1], 9100)),
            ("127.0.0.1:9100", v4([127, 0, 0, 1], 9100)),
            ("0.0.0.0:9100", v4([0, 0, 0, 0], 9100)),
            ("10.1.2.3:65535", v4([10, 1, 2, 3], 65535)),
            ("localhost:9100", v4([127, 0, 0, 1], 9100)),
            ("LOCALHOST:1", v4([127, 0, 0, 1], 1)),
            (
                "[::1]:9100",
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 9100),
            ),
            (
                "[::]:9100",
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 9100),
            ),
        ] {
            assert_eq!(parse_addr(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn parse_addr_refuses_port_0_and_garbage_in_one_line() {
        for s in [
            "",
            "0",
            ":0",
            "127.0.0.1:0",
            "[::1]:0",
            "abc",
            ":",
            "127.0.0.1",
            "127.0.0.1:",
            "127.0.0.1:abc",
            "9100x",
            "-1",
            "+9100",
            "65536",
            ":99999",
            "::1:9100",
            "[::1]",
            "[127.0.0.1]:9100",
            "[::1:9100",
            "[]:9100",
            " 9100",
            "a b:9100",
            ":9100\n",
            "\u{1b}[2J:80",
            "1.2.3.4.5:80",
            "256.0.0.1:80",
            "-host:80",
            "a..b:80",
            "h_x:80",
        ] {
            let err = parse_addr(s).map(|_| ()).unwrap_err();
            assert!(
                !err.contains('\n') && !err.contains('\u{1b}'),
                "{s:?}: {err}"
            );
            assert!(err.starts_with("invalid metrics address "), "{s:?}: {err}");
        }
        assert!(parse_addr("0")
            .unwrap_err()
            .contains("port 0 is not allowed"));
        assert!(parse_addr("::1:9100").unwrap_err().contains("brackets"));
        assert!(parse_addr("70000").unwrap_err().contains("out of range"));
        assert!(is_host_name("web-1.example.net") && is_host_name("h") && is_host_name("a.b."));
        assert!(!is_host_name("") && !is_host_name("1.2.3") && !is_host_name(&"a".repeat(64)));
    }
}

//! Request targets (RFC 9112 §3.2) and the section linewatch counts them under.
//!
//! The section is the path up to, not including, its second `/`, with the query and fragment
//! stripped: `/pages/create` → `/pages`, `/` → `/`, `/index.html?x=1` → `/index.html`. An
//! absolute-form target's path is used the same way (`http://h/a/b` → `/a`, `http://h` → `/`);
//! `*` is its own section; an authority-form target (CONNECT) is its own section.

use memchr::memchr3;

/// The four forms of a request target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetForm {
    /// `/path?query`, the usual form.
    Origin,
    /// `scheme://authority/path?query`, sent to proxies.
    Absolute,
    /// `host:port`, sent with CONNECT.
    Authority,
    /// `*`, sent with OPTIONS.
    Asterisk,
}

/// The section `/` stands for a path that is empty or just `/`.
const ROOT: &[u8] = b"/";

impl TargetForm {
    /// Tells the form of `target`.
    pub fn of(target: &[u8]) -> TargetForm {
        match target {
            [b'/', ..] => TargetForm::Origin,
            b"*" => TargetForm::Asterisk,
            _ if scheme_len(target).is_some() => TargetForm::Absolute,
            _ => TargetForm::Authority,
        }
    }
}

/// The length of `scheme` in a `scheme://` prefix, if `target` has one.
fn scheme_len(target: &[u8]) -> Option<usize> {
    let first = *target.first()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let len = target
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    target[len..].starts_with(b"://").then_some(len)
}

/// Splits an absolute-form target into its authority (userinfo removed) and the rest.
fn split_absolute(target: &[u8], scheme_len: usize) -> (&[u8], &[u8]) {
    let after_scheme = &target[scheme_len + "://".len()..];
    let authority_end = memchr3(b'/', b'?', b'#', after_scheme).unwrap_or(after_scheme.len());
    let authority = &after_scheme[..authority_end];
    // Credentials are never counted: keep what follows the last '@'.
    let host = match memchr::memrchr(b'@', authority) {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    (host, &after_scheme[authority_end..])
}

/// The section of a path that starts with `/` (or is empty, or starts with `?` or `#`: the rest
/// of an absolute-form target without a path), query and fragment stripped.
///
/// One byte loop finds the first `/`, `?` or `#` after the leading `/`: sections are a few
/// bytes long, and two memchr calls (query, then second `/`) cost more than the bytes they
/// look at (callgrind, engine_loop: about 40 instructions per frame).
fn path_section(path: &[u8]) -> &[u8] {
    match path {
        [b'/', after_first @ ..] => {
            let len = after_first
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .unwrap_or(after_first.len());
            // `/`, `/?q` and `//x` all end up as `/`, the root section.
            &path[..1 + len]
        }
        _ => ROOT,
    }
}

/// The section `target` is counted under (see the module doc).
pub fn section(target: &[u8]) -> &[u8] {
    match target {
        [b'/', ..] => path_section(target),
        b"*" => target,
        _ => match scheme_len(target) {
            Some(len) => path_section(split_absolute(target, len).1),
            None => target,
        },
    }
}

/// The host (and port) an absolute-form target names, userinfo removed; `None` for the other
/// forms. RFC 9112 §3.2.2: a server uses it in place of the Host field.
pub fn authority(target: &[u8]) -> Option<&[u8]> {
    let len = scheme_len(target)?;
    Some(split_absolute(target, len).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! sections {
        ($($target:literal => $section:literal, $form:ident;)+) => {
            $(
                assert_eq!(
                    section($target),
                    &$section[..],
                    "section of {:?}",
                    core::str::from_utf8($target)
                );
                assert_eq!(TargetForm::of($target), TargetForm::$form, "form of {:?}", $target);
            )+
        };
    }

    #[test]
    fn section_table() {
        sections! {
            b"/pages/create" => b"/pages", Origin;
            b"/" => b"/", Origin;
            b"/index.html?x=1" => b"/index.html", Origin;
            b"/a/b/c" => b"/a", Origin;
            b"/a?x=/y/z" => b"/a", Origin;
            b"/a#frag/x" => b"/a", Origin;
            b"/?q" => b"/", Origin;
            b"//double" => b"/", Origin;
            b"/trailing/" => b"/trailing", Origin;
            b"http://h/a/b" => b"/a", Absolute;
            b"http://h" => b"/", Absolute;
            b"http://h?x=1" => b"/", Absolute;
            b"HTTPS://h:8443/x?y" => b"/x", Absolute;
            b"http://u:p@h/secret/x" => b"/secret", Absolute;
            b"*" => b"*", Asterisk;
            b"example.com:443" => b"example.com:443", Authority;
            b"h:80" => b"h:80", Authority;
        }
    }

    /// The section as first written: strip the query and fragment, then cut at the second `/`.
    fn two_search_section(path: &[u8]) -> &[u8] {
        let path = &path[..memchr::memchr2(b'?', b'#', path).unwrap_or(path.len())];
        match path.get(1..) {
            None | Some([]) => ROOT,
            Some(after_first) => match memchr::memchr(b'/', after_first) {
                Some(second) => &path[..second + 1],
                None => path,
            },
        }
    }

    #[test]
    fn one_pass_section_matches_the_two_searches() {
        // Every path of up to six bytes over the bytes that matter, as origin-form paths and
        // as the rest of an absolute-form target (which may start with `?` or `#`, or be empty).
        let alphabet = [b'/', b'?', b'#', b'a'];
        let mut paths = std::vec![std::vec::Vec::new()];
        let mut start = 0;
        for _ in 0..6 {
            let end = paths.len();
            for i in start..end {
                for &b in &alphabet {
                    let mut p = paths[i].clone();
                    p.push(b);
                    paths.push(p);
                }
            }
            start = end;
        }
        // A path given to `path_section` never starts with another byte (see `section`).
        for path in paths.iter().filter(|p| p.first() != Some(&b'a')) {
            assert_eq!(path_section(path), two_search_section(path), "{path:?}");
        }
    }

    #[test]
    fn authority_strips_userinfo_and_keeps_port() {
        assert_eq!(authority(b"http://h/a/b"), Some(&b"h"[..]));
        assert_eq!(
            authority(b"http://user:pw@Example.com:8080/x"),
            Some(&b"Example.com:8080"[..])
        );
        assert_eq!(
            authority(b"http://a%12:b!&*$@hypnotoad.org:1234/toto"),
            Some(&b"hypnotoad.org:1234"[..])
        );
        assert_eq!(authority(b"http://h:1?q"), Some(&b"h:1"[..]));
        assert_eq!(authority(b"/a"), None);
        assert_eq!(authority(b"h:443"), None);
        assert_eq!(authority(b"1http://x"), None);
    }
}

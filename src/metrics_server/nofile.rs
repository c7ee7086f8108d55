//! The open-files limit of a process that serves metrics: each connection is a descriptor, so
//! at start the soft `RLIMIT_NOFILE` is raised to the hard limit (what an unprivileged process
//! may do), and the endpoint serves at most as many connections at once as that leaves room
//! for, beside the descriptors the rest of linewatch needs.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use super::{MAX_BUFFERED_HEADS, MAX_CONNECTIONS};

/// Descriptors left to the rest of linewatch (capture sockets, files, the epoll instance).
const RESERVED_FDS: u64 = 128;

/// Connections served at once at the least, however low the limit.
const MIN_CONNECTIONS: usize = 16;

/// The soft limit asked for when the hard limit is unlimited (the kernel's default
/// `fs.nr_open`, above which setrlimit fails).
const NR_OPEN: u64 = 1 << 20;

/// What to do when the limit is too low, ending every message about it.
pub(super) const RAISE_HINT: &str =
    "raise the open-files limit (ulimit -n, or LimitNOFILE= in a systemd unit)";

/// What the endpoint may hold: the connections the open-files limit in force leaves room
/// for, and the bytes of partial request heads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The soft limit after raising (`None`: unlimited).
    pub(crate) nofile: Option<u64>,
    /// Connections served at once; beyond it the oldest is closed.
    pub(crate) connections: usize,
    /// Bytes of partial request heads held across all connections (heads that arrive whole
    /// are never held); a head that would go over is answered 503.
    pub(crate) buffered_heads: usize,
}

impl Limits {
    /// Raises the soft limit to the hard one, and derives the connections cap from it.
    pub(super) fn raise() -> Limits {
        let now = getrlimit(Resource::Nofile);
        let hard = now.maximum.unwrap_or(NR_OPEN);
        if now.current.is_some_and(|soft| soft < hard) {
            // Refused (it should not be, for soft up to hard): the limit stays as it was, and
            // the cap below follows it.
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: now.maximum,
                },
            );
        }
        Limits::for_nofile(getrlimit(Resource::Nofile).current)
    }

    /// The cap for a soft limit of `nofile` descriptors.
    pub(super) fn for_nofile(nofile: Option<u64>) -> Limits {
        let room = nofile.map_or(u64::MAX, |n| n.saturating_sub(RESERVED_FDS));
        let connections = usize::try_from(room)
            .unwrap_or(usize::MAX)
            .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS);
        Limits {
            nofile,
            connections,
            buffered_heads: MAX_BUFFERED_HEADS,
        }
    }

    /// The soft limit as text.
    pub(super) fn nofile_text(&self) -> String {
        self.nofile
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
    }

    /// One line for the start when the limit holds the endpoint below [`MAX_CONNECTIONS`].
    pub(crate) fn note(&self) -> Option<String> {
        (self.connections < MAX_CONNECTIONS).then(|| {
            format!(
                "linewatch: warning: the metrics endpoint serves at most {} connections at once \
                 (open-files limit {}; {MAX_CONNECTIONS} wanted): {RAISE_HINT}",
                self.connections,
                self.nofile_text()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_limit_and_says_so_when_low() {
        let ample = Limits::for_nofile(Some(1 << 20));
        assert_eq!(ample.connections, MAX_CONNECTIONS);
        assert_eq!(ample.note(), None);
        assert_eq!(Limits::for_nofile(None).connections, MAX_CONNECTIONS);
        let low = Limits::for_nofile(Some(1024));
        assert_eq!(low.connections, 1024 - 128);
        let note = low.note().expect("a note");
        assert!(note.contains("at most 896 connections"), "{note}");
        assert!(
            note.contains("limit 1024") && note.contains("ulimit -n"),
            "{note}"
        );
        assert_eq!(Limits::for_nofile(Some(20)).connections, MIN_CONNECTIONS);
    }

    #[test]
    fn raise_lifts_the_soft_limit_to_the_hard_one() {
        let mut before = getrlimit(Resource::Nofile);
        if let Some(hard) = before.maximum.filter(|&h| h > 4096) {
            // Lowered a little first (lowering is always allowed), so that the raise is seen;
            // not far, as the other tests of this process open sockets meanwhile.
            before.current = Some(hard - 1);
            setrlimit(Resource::Nofile, before).unwrap_or_else(|e| panic!("{e}"));
        }
        let limits = Limits::raise();
        let after = getrlimit(Resource::Nofile);
        assert_eq!(after.maximum, before.maximum);
        match before.maximum {
            Some(hard) => assert_eq!(after.current, Some(hard)),
            None => assert!(after.current >= before.current),
        }
        assert_eq!(limits.nofile, after.current);
    }
}

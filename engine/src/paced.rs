//! A replay paced at the capture's own speed (`--realtime`, `--speed FACTOR`), so that a
//! capture can be watched as it happened (on the dashboard, or the status line and reports).
//!
//! Contract: [`Paced`] wraps any [`Source`] and hands on its packets unchanged and in order, but
//! not before their time: a packet `t` seconds of packet time after the first is handed on no
//! earlier than `t / speed` seconds of wall time after the first was. Packets that are late
//! (the reader fell behind) go at once; the pace never speeds up to catch up beyond that.
//! Waiting is in short naps that look at the stop flag: a stop ends the source at once (as the
//! end of the capture; the caller marks the run interrupted), even in the middle of a quiet
//! gap of the capture. Packet time that steps back waits for nothing.
//!
//! The pace is kept on the reader's thread, before packets are shared out: the workers count
//! as they always do, and their clocks stay on packet time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::source::{Packet, Source, SourceEnd};

/// The longest single nap: bounds how late a stop (Ctrl-C, `q`) is noticed.
const NAP: Duration = Duration::from_millis(50);

/// Fastest and slowest pace accepted (the command line checks its own range first).
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.01..=10_000.0;

/// A source whose packets are handed on at `speed` × the capture's own pace. See the module.
pub struct Paced {
    inner: Box<dyn Source + Send>,
    speed: f64,
    stop: Arc<AtomicBool>,
    /// The first packet's time (ns) and the wall time it was handed on.
    origin: Option<(u64, Instant)>,
    stopped: bool,
}

impl std::fmt::Debug for Paced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paced")
            .field("speed", &self.speed)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl Paced {
    /// `inner` at `speed` × its own pace (1.0: as captured), clamped to [`SPEED_RANGE`];
    /// setting `stop` ends it.
    pub fn new(inner: Box<dyn Source + Send>, speed: f64, stop: Arc<AtomicBool>) -> Paced {
        Paced {
            inner,
            speed: speed.clamp(*SPEED_RANGE.start(), *SPEED_RANGE.end()),
            stop,
            origin: None,
            stopped: false,
        }
    }

    /// Whether a stop ended the source before the capture did.
    pub fn stopped(&self) -> bool {
        self.stopped
    }
}

/// Naps until `due`; false when a stop came first.
fn wait(stop: &AtomicBool, due: Instant) -> bool {
    loop {
        // Relaxed: the flag carries no data, only "stop soon".
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= due {
            return true;
        }
        std::thread::sleep((due - now).min(NAP));
    }
}

impl Source for Paced {
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.stopped {
            return None;
        }
        // Read first, then wait for its time: the packet stays borrowed from `inner` meanwhile
        // (the fields used below are others).
        let packet = self.inner.next_packet()?;
        let (first_ns, first_at) = *self.origin.get_or_insert((packet.ts_ns, Instant::now()));
        let after = packet.ts_ns.saturating_sub(first_ns) as f64 / 1e9 / self.speed;
        if !wait(&self.stop, first_at + Duration::from_secs_f64(after)) {
            self.stopped = true;
            return None;
        }
        Some(packet)
    }

    fn end(&self) -> SourceEnd {
        self.inner.end()
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn unsupported_link_packets(&self) -> u64 {
        self.inner.unsupported_link_packets()
    }

    fn unreadable_records(&self) -> u64 {
        self.inner.unreadable_records()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use linewatch_parser::wire::LinkType;

    /// Packets at the given times (ns), one byte each.
    struct Times {
        times: Vec<u64>,
        next: usize,
        byte: [u8; 1],
    }

    impl Source for Times {
        fn next_packet(&mut self) -> Option<Packet<'_>> {
            let ts_ns = *self.times.get(self.next)?;
            self.next += 1;
            Some(Packet {
                ts_ns,
                link: LinkType::Ethernet,
                data: &self.byte,
                wire_len: 1,
            })
        }
        fn end(&self) -> SourceEnd {
            SourceEnd::Complete
        }
        fn describe(&self) -> String {
            "times".to_owned()
        }
    }

    fn times(times: &[u64]) -> Box<dyn Source + Send> {
        Box::new(Times {
            times: times.to_vec(),
            next: 0,
            byte: [0],
        })
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn packets_wait_for_their_time_divided_by_the_speed() {
        let stop = Arc::new(AtomicBool::new(false));
        // 400 ms of packet time, one step back, at double speed: about 200 ms.
        let mut paced = Paced::new(times(&[0, 100 * MS, 50 * MS, 400 * MS]), 2.0, stop);
        let started = Instant::now();
        let mut seen = Vec::new();
        while let Some(p) = paced.next_packet() {
            seen.push((p.ts_ns, started.elapsed()));
        }
        let got: Vec<u64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(
            got,
            [0, 100 * MS, 50 * MS, 400 * MS],
            "order and packets unchanged"
        );
        assert!(seen[1].1 >= Duration::from_millis(50), "{seen:?}");
        assert!(seen[3].1 >= Duration::from_millis(200), "{seen:?}");
        assert!(seen[3].1 < Duration::from_secs(2), "{seen:?}");
        assert!(!paced.stopped());
        assert_eq!(paced.end(), SourceEnd::Complete);
    }

    #[test]
    fn a_stop_ends_a_long_wait_at_once() {
        let stop = Arc::new(AtomicBool::new(false));
        // An hour-long quiet gap at real speed.
        let mut paced = Paced::new(times(&[0, 3_600_000 * MS]), 1.0, Arc::clone(&stop));
        assert!(paced.next_packet().is_some());
        let flag = Arc::clone(&stop);
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        });
        let started = Instant::now();
        assert!(paced.next_packet().is_none());
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(paced.stopped());
        assert!(paced.next_packet().is_none(), "stays ended");
        setter.join().unwrap();
    }
}

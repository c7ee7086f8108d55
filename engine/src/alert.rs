//! High-traffic alerting: the average request rate over a sliding window of closed seconds,
//! against a fixed threshold or a learned baseline (SPEC §4). The clock is injected: the caller
//! says which second closed (packet time offline, wall time live), so a replay gives the same
//! alerts every time and tests need no sleeping.
//!
//! # Contract
//!
//! The caller closes seconds in increasing order with [`AlertState::close_second`], giving the
//! requests counted in each. After closing second `s` the window rate is the requests in seconds
//! `s - window + 1 ..= s`, divided by `window` (always the full window, as the seeds do; seconds
//! before the first one closed count as zero). Then, if a threshold is in force:
//!
//! - no alert active and rate `>` threshold: **raised** at `s`, with the rate as its value;
//! - alert active and rate `<=` threshold: **recovered** at `s`, with the rate.
//!
//! So after every call, with a threshold in force, [`AlertState::is_active`] equals
//! `window_rate() > threshold`.
//!
//! Seconds the caller skips (`second > last + 1`) had no requests and are evaluated too, so a
//! recovery during a quiet gap carries the right second; this costs O(min(gap, window)), not
//! O(gap). A second at or before the last one (the wall clock stepped back, or a late count) is
//! added to the last closed second, which is then evaluated again: a raise it causes carries the
//! last closed second.
//!
//! Baseline mode (`--baseline LEARN`): learning starts with the first closed second. When
//! `learn_secs` seconds have closed (skipped seconds included), the baseline is the requests
//! counted in them over `learn_secs`; if it is zero, learning starts again with the next second,
//! otherwise the threshold becomes `baseline * (1 + margin_pct / 100)` for good, and the second
//! that completed learning is evaluated against it at once. No alert is raised while learning,
//! but the window keeps filling, so enforcement starts with a full window when
//! `learn_secs >= window_secs`.
//!
//! # Algorithm
//!
//! The per-second counts live in a ring of `window_secs` slots (allocated once) with a running
//! `u64` sum, so the rate is exact and each second costs O(1). A gap is walked second by second
//! only until the ring is all zeros (at most `window` seconds); from then on the rate stays 0, so
//! the rest of the gap only advances learning, which is arithmetic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use linewatch_model::{AlertKind, AlertRecord};

/// Most alerts kept in [`AlertState::history`]; older ones are dropped (and counted) so a
/// flapping threshold cannot grow memory without bound.
pub const HISTORY_CAP: usize = 10_000;

/// What the window rate is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// A fixed rate in requests per second (`--threshold`).
    Fixed(f64),
    /// Learn the average rate, then alert above it by a margin (`--baseline`, `--margin`).
    Baseline {
        /// Seconds to learn over; clamped to at least 1.
        learn_secs: u32,
        /// Margin above the baseline, in percent (10 = alert above 1.1 × baseline).
        margin_pct: f64,
    },
}

/// Alerting settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// Length of the sliding window in seconds (the caller validates; clamped to at least 1).
    pub window_secs: u32,
    /// What the window rate is compared with.
    pub threshold: Threshold,
}

/// A change of alert state, with the alert's record as it stands after the change.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertTransition {
    /// The window rate went above the threshold.
    Raised(AlertRecord),
    /// The window rate came back to or below the threshold.
    Recovered(AlertRecord),
}

/// Where the threshold comes from, and its learning progress.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Limit {
    /// Fixed, or learned: in force.
    Known(f64),
    /// A baseline being learned.
    Learning {
        learn_secs: u64,
        margin_pct: f64,
        /// Seconds closed in this learning period.
        elapsed: u64,
        /// Requests counted in them.
        requests: u64,
    },
}

/// The high-traffic alert of one monitor.
#[derive(Debug, Clone)]
pub struct AlertState {
    /// Requests per second of the window, a ring; `ring[head]` is the last closed second.
    ring: Box<[u64]>,
    head: usize,
    /// Sum of `ring`.
    sum: u64,
    /// The last closed second.
    last: Option<u64>,
    limit: Limit,
    active: bool,
    /// Every alert, oldest first; the last one is the active alert, if any.
    history: Vec<AlertRecord>,
    dropped_history: u64,
}

/// The moment a unix second starts. Only corrupt timestamps (beyond the year 292 billion) do
/// not fit; they map to the epoch rather than panic.
fn time_of(second: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(second))
        .unwrap_or(UNIX_EPOCH)
}

impl AlertState {
    /// A state with an empty window (and, in baseline mode, learning from the first second).
    pub fn new(config: AlertConfig) -> Self {
        let window = config.window_secs.max(1) as usize;
        let limit = match config.threshold {
            Threshold::Fixed(t) => Limit::Known(t),
            Threshold::Baseline {
                learn_secs,
                margin_pct,
            } => Limit::Learning {
                learn_secs: u64::from(learn_secs.max(1)),
                margin_pct,
                elapsed: 0,
                requests: 0,
            },
        };
        AlertState {
            ring: vec![0; window].into_boxed_slice(),
            head: 0,
            sum: 0,
            last: None,
            limit,
            active: false,
            history: Vec::new(),
            dropped_history: 0,
        }
    }

    /// Closes unix second `second`, which had `requests` requests, and calls `on_transition`
    /// for each raise or recovery, in order (see the module doc for skipped and repeated
    /// seconds).
    pub fn close_second(
        &mut self,
        second: u64,
        requests: u64,
        mut on_transition: impl FnMut(AlertTransition),
    ) {
        let report = &mut on_transition;
        match self.last {
            Some(last) if second <= last => {
                // The clock stepped back, or a count came late: it belongs to the newest second
                // we have, not to one that has already left the window's bookkeeping.
                self.ring[self.head] += requests;
                self.sum += requests;
                if let Limit::Learning {
                    requests: learned, ..
                } = &mut self.limit
                {
                    *learned += requests;
                }
                self.evaluate(last, report);
                return;
            }
            Some(last) => self.close_quiet(last + 1, second - last - 1, report),
            None => {}
        }
        self.close_one(second, requests, report);
        self.last = Some(second);
    }

    /// Closes `count` seconds without requests, from `first` on.
    fn close_quiet(&mut self, first: u64, count: u64, report: &mut impl FnMut(AlertTransition)) {
        let end = first + count;
        let mut second = first;
        // Second by second while the window still holds requests: the rate falls, and may
        // cross the threshold, only then. At most `window` iterations.
        while second < end {
            self.close_one(second, 0, report);
            second += 1;
            if self.sum == 0 {
                break;
            }
        }
        if second == end {
            return;
        }
        // The ring is all zeros and the rate 0 has been evaluated: only learning moves now.
        let rest = end - second;
        if let Limit::Learning {
            learn_secs,
            margin_pct,
            elapsed,
            requests,
        } = &mut self.limit
        {
            let left = *learn_secs - *elapsed;
            if rest < left {
                *elapsed += rest;
            } else if *requests == 0 {
                // Every learning period in the rest of the gap ends with nothing learned.
                *elapsed = (rest - left) % *learn_secs;
            } else {
                let done_at = second + left - 1;
                self.limit = Limit::Known(learned_threshold(*requests, *learn_secs, *margin_pct));
                self.evaluate(done_at, report);
            }
        }
    }

    /// Closes one second (the next after the last): window, learning, evaluation.
    fn close_one(&mut self, second: u64, requests: u64, report: &mut impl FnMut(AlertTransition)) {
        self.head = if self.head + 1 == self.ring.len() {
            0
        } else {
            self.head + 1
        };
        // The slot being overwritten is the second that just left the window.
        self.sum = self.sum - self.ring[self.head] + requests;
        self.ring[self.head] = requests;
        if let Limit::Learning {
            learn_secs,
            margin_pct,
            elapsed,
            requests: learned,
        } = &mut self.limit
        {
            *elapsed += 1;
            *learned += requests;
            if *elapsed < *learn_secs {
                return;
            }
            if *learned == 0 {
                // A zero baseline would alert on the first request: learn again.
                *elapsed = 0;
                return;
            }
            self.limit = Limit::Known(learned_threshold(*learned, *learn_secs, *margin_pct));
        }
        self.evaluate(second, report);
    }

    /// Compares the window rate after closing `second` with the threshold in force.
    fn evaluate(&mut self, second: u64, report: &mut impl FnMut(AlertTransition)) {
        let Limit::Known(threshold) = self.limit else {
            return;
        };
        let rate = self.window_rate();
        if !self.active && rate > threshold {
            let record = AlertRecord {
                kind: AlertKind::HighTraffic,
                triggered_at: time_of(second),
                value: rate,
                threshold,
                recovered_at: None,
                recovered_value: None,
                window_secs: self.ring.len() as u64,
                source: None,
                blocked: false,
            };
            self.active = true;
            if self.history.len() == HISTORY_CAP {
                // Rare (one alert per two seconds at most) and bounded: a plain shift is fine.
                self.history.remove(0);
                self.dropped_history += 1;
            }
            self.history.push(record.clone());
            report(AlertTransition::Raised(record));
        } else if self.active && rate <= threshold {
            self.active = false;
            // The active alert is always the newest one in the history.
            if let Some(record) = self.history.last_mut() {
                record.recovered_at = Some(time_of(second));
                record.recovered_value = Some(rate);
                report(AlertTransition::Recovered(record.clone()));
            }
        }
    }

    /// Requests in the last `window_secs` closed seconds, divided by `window_secs`.
    pub fn window_rate(&self) -> f64 {
        self.sum as f64 / self.ring.len() as f64
    }

    /// The threshold in force; `None` while a baseline is being learned.
    pub fn threshold(&self) -> Option<f64> {
        match self.limit {
            Limit::Known(t) => Some(t),
            Limit::Learning { .. } => None,
        }
    }

    /// An alert is raised and not recovered.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// A baseline is being learned (no alerts yet).
    pub fn learning(&self) -> bool {
        matches!(self.limit, Limit::Learning { .. })
    }

    /// Every alert, oldest first (at most [`HISTORY_CAP`]; see
    /// [`dropped_history`](Self::dropped_history)).
    pub fn history(&self) -> &[AlertRecord] {
        &self.history
    }

    /// Alerts dropped from the front of the history to keep it at [`HISTORY_CAP`].
    pub fn dropped_history(&self) -> u64 {
        self.dropped_history
    }
}

/// `baseline * (1 + margin_pct / 100)`, with baseline = `requests / learn_secs`.
fn learned_threshold(requests: u64, learn_secs: u64, margin_pct: f64) -> f64 {
    requests as f64 / learn_secs as f64 * (1.0 + margin_pct / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A realistic unix second to start from.
    const BASE: u64 = 1_700_000_000;

    fn fixed(window_secs: u32, threshold: f64) -> AlertState {
        AlertState::new(AlertConfig {
            window_secs,
            threshold: Threshold::Fixed(threshold),
        })
    }

    fn baseline(window_secs: u32, learn_secs: u32, margin_pct: f64) -> AlertState {
        AlertState::new(AlertConfig {
            window_secs,
            threshold: Threshold::Baseline {
                learn_secs,
                margin_pct,
            },
        })
    }

    /// A transition reduced to what the tests compare: raised?, second, rate, threshold.
    type Seen = (bool, u64, f64, f64);

    fn seen(t: &AlertTransition) -> Seen {
        let second = |at: SystemTime| {
            at.duration_since(UNIX_EPOCH)
                .expect("after epoch")
                .as_secs()
        };
        match t {
            AlertTransition::Raised(r) => (true, second(r.triggered_at), r.value, r.threshold),
            AlertTransition::Recovered(r) => (
                false,
                second(r.recovered_at.expect("recovered")),
                r.recovered_value.expect("recovered"),
                r.threshold,
            ),
        }
    }

    /// Closes `(second, requests)` in order; every transition seen.
    fn run(state: &mut AlertState, seconds: impl IntoIterator<Item = (u64, u64)>) -> Vec<Seen> {
        let mut out = Vec::new();
        for (second, requests) in seconds {
            state.close_second(second, requests, |t| out.push(seen(&t)));
        }
        out
    }

    /// The rule of SPEC §4 by brute force: `counts[i]` = requests in second `BASE + i`;
    /// every second's window summed from the raw counts; fixed threshold.
    fn brute_force(counts: &[u64], window: usize, threshold: f64) -> Vec<Seen> {
        let mut out = Vec::new();
        let mut active = false;
        for s in 0..counts.len() {
            let from = (s + 1).saturating_sub(window);
            let rate = counts[from..=s].iter().sum::<u64>() as f64 / window as f64;
            if !active && rate > threshold {
                active = true;
                out.push((true, BASE + s as u64, rate, threshold));
            } else if active && rate <= threshold {
                active = false;
                out.push((false, BASE + s as u64, rate, threshold));
            }
        }
        out
    }

    #[test]
    fn seeds_scenario_raises_at_67_and_recovers_at_132() {
        // 20 req/s for seconds 0..60, 100 req/s for 60..80, 20 req/s after; window 60,
        // threshold 30. For 60 <= s < 80 the window holds s-59 seconds at 100 and 119-s at 20:
        // sum = 80s - 3520 > 1800 <=> s > 66.5, so the raise is at s = 67 (rate 30.67).
        // For 120 <= s < 140 it holds 139-s seconds at 100 and s-79 at 20:
        // sum = 12320 - 80s <= 1800 <=> s >= 131.5, so the recovery is at s = 132 (rate 29.33).
        let counts: Vec<u64> = (0..300)
            .map(|s| if (60..80).contains(&s) { 100 } else { 20 })
            .collect();
        let raise_at = (0..)
            .find(|&s: &u64| s >= 60 && 80 * s > 3520 + 1800)
            .expect("raise");
        let recover_at = (120..)
            .find(|&s: &u64| 12320 <= 1800 + 80 * s)
            .expect("recovery");
        assert_eq!((raise_at, recover_at), (67, 132));

        let mut state = fixed(60, 30.0);
        let got = run(
            &mut state,
            counts
                .iter()
                .enumerate()
                .map(|(s, &r)| (BASE + s as u64, r)),
        );
        assert_eq!(got.len(), 2);
        assert!(got[0].0, "raised first");
        assert_eq!(got[0].1, BASE + raise_at);
        assert!((got[0].2 - 1840.0 / 60.0).abs() < 1e-9);
        assert!(!got[1].0, "recovered second");
        assert_eq!(got[1].1, BASE + recover_at);
        assert!((got[1].2 - 1760.0 / 60.0).abs() < 1e-9);
        // No other second crosses: the brute-force recomputation agrees exactly.
        assert_eq!(got, brute_force(&counts, 60, 30.0));
        assert_eq!(state.history().len(), 1);
        assert_eq!(state.history()[0].kind, AlertKind::HighTraffic);
        assert!(!state.is_active());
    }

    #[test]
    fn high_total_with_low_window_does_not_alert() {
        // 4 req/s for 1000 s: 4000 requests in all, far above 10 s x 5 req/s, but the window
        // rate is 4 throughout.
        let mut state = fixed(10, 5.0);
        assert!(run(&mut state, (0..1000).map(|s| (BASE + s, 4))).is_empty());
        // A burst long ago, then quiet: one alert, recovered, nothing after.
        let mut state = fixed(10, 5.0);
        let mut seconds = vec![(BASE, 10_000)];
        seconds.extend((1..5000).map(|s| (BASE + s, 0)));
        let got = run(&mut state, seconds);
        assert_eq!(
            got.iter().map(|t| (t.0, t.1)).collect::<Vec<_>>(),
            [(true, BASE), (false, BASE + 10)]
        );
        assert!(!state.is_active());
    }

    #[test]
    fn exactly_at_threshold_does_not_raise() {
        // Window 4, threshold 10: 40 requests in the window is exactly 10 req/s.
        let mut state = fixed(4, 10.0);
        assert!(run(&mut state, (0..8).map(|s| (BASE + s, 10))).is_empty());
        assert_eq!(state.window_rate(), 10.0);
        // One request more: 41 / 4 > 10 raises.
        let got = run(&mut state, [(BASE + 8, 11)]);
        assert_eq!(got, [(true, BASE + 8, 10.25, 10.0)]);
        // 10, 10, 10 and the 11 leaves: back to exactly 10 recovers (at or below).
        let got = run(&mut state, (9..13).map(|s| (BASE + s, 10)));
        assert_eq!(got, [(false, BASE + 12, 10.0, 10.0)]);
    }

    #[test]
    fn recovery_in_a_long_gap_is_reported_at_its_second() {
        // Window 60, threshold 10, 100 req/s for 60 s: rate 100. Then nothing until a second
        // 10_001 later. After k quiet seconds the sum is 100 * (60 - k) <= 600 <=> k >= 54.
        let mut state = fixed(60, 10.0);
        let got = run(&mut state, (0..60).map(|s| (BASE + s, 100)));
        assert_eq!(got.len(), 1);
        let last = BASE + 59;
        let got = run(&mut state, [(last + 10_001, 3)]);
        assert_eq!(got, [(false, last + 54, 10.0, 10.0)]);
        assert_eq!(state.window_rate(), 3.0 / 60.0);
        // The gap is not walked second by second: 2^50 seconds take no time either.
        let got = run(&mut state, (0..60).map(|s| (last + 20_000 + s, 100)));
        assert_eq!(got.len(), 1);
        let got = run(&mut state, [(last + (1 << 50), 0)]);
        assert_eq!(got, [(false, last + 20_059 + 54, 10.0, 10.0)]);
        assert_eq!(state.window_rate(), 0.0);
    }

    #[test]
    fn baseline_learns_restarts_while_zero_and_alerts_above_margin() {
        // Learn 10 s, margin 50 %, window 5.
        let mut state = baseline(5, 10, 50.0);
        assert!(state.learning());
        assert_eq!(state.threshold(), None);
        // Ten silent seconds: baseline 0, learning starts again.
        assert!(run(&mut state, (0..10).map(|s| (BASE + s, 0))).is_empty());
        assert!(state.learning());
        // Ten seconds of 10 req/s; traffic above any threshold while learning raises nothing.
        let got = run(
            &mut state,
            (10..19).map(|s| (BASE + s, if s == 12 { 50 } else { 10 })),
        );
        assert!(got.is_empty());
        assert_eq!(state.threshold(), None);
        // 10 * 9 + 50 = 140 requests: baseline 14, threshold 21. The window (seconds 15..=19,
        // rate 10) is evaluated at once and is below it.
        assert!(run(&mut state, [(BASE + 19, 10)]).is_empty());
        assert!(!state.learning());
        assert_eq!(state.threshold(), Some(21.0));
        // It stays fixed: rates of 21 do not raise, 21.2 does.
        assert!(run(&mut state, (20..30).map(|s| (BASE + s, 21))).is_empty());
        let got = run(&mut state, [(BASE + 30, 22)]);
        assert_eq!(got, [(true, BASE + 30, 21.2, 21.0)]);
        assert_eq!(state.threshold(), Some(21.0));
    }

    #[test]
    fn baseline_counts_gap_seconds_and_restarts_inside_gaps() {
        // Learn 10 s. Second 0 (no requests), then nothing until second 25: the periods
        // 0..=9 and 10..=19 learn 0 and restart; 20..=29 holds the 100 requests at second 25
        // and ends at 29 with baseline 10.
        let mut state = baseline(3, 10, 0.0);
        assert!(run(&mut state, [(BASE, 0), (BASE + 25, 100)]).is_empty());
        assert!(state.learning());
        // The window (3 s) holds the 100 requests: it is above 10, but learning.
        assert!(run(&mut state, [(BASE + 28, 0)]).is_empty());
        assert!(state.learning());
        assert!(run(&mut state, [(BASE + 29, 0)]).is_empty());
        assert_eq!(state.threshold(), Some(10.0));
        // Learning may also complete inside a gap: learn 4 s from second 0 with 40 requests,
        // then a gap; completion at second 3 with baseline 10 and a negative margin (-150 %)
        // makes the threshold -5, so the rate 0 is above it and raises at 3.
        let mut state = baseline(2, 4, -150.0);
        let got = run(&mut state, [(BASE, 40), (BASE + 100, 0)]);
        assert_eq!(got, [(true, BASE + 3, 0.0, -5.0)]);
    }

    #[test]
    fn clock_stepping_back_adds_to_the_last_second() {
        let mut state = fixed(2, 10.5);
        assert!(run(&mut state, [(BASE + 5, 10), (BASE + 6, 10)]).is_empty());
        // One second back, and the same second again: both go to second 6, which is
        // evaluated again each time: (10 + 11) / 2 = 10.5 is not above, (10 + 12) / 2 = 11 is.
        assert!(run(&mut state, [(BASE + 5, 1)]).is_empty());
        assert_eq!(state.window_rate(), 10.5);
        let got = run(&mut state, [(BASE + 6, 1)]);
        assert_eq!(got, [(true, BASE + 6, 11.0, 10.5)]);
        // The clock moves on from 6: second 7 sees second 6's 12 requests in its window.
        let got = run(&mut state, [(BASE + 7, 8)]);
        assert_eq!(got, [(false, BASE + 7, 10.0, 10.5)]);
        // A late count during learning is learned too.
        let mut state = baseline(1, 2, 0.0);
        assert!(run(&mut state, [(BASE, 0), (BASE, 6), (BASE + 1, 0)]).is_empty());
        assert_eq!(state.threshold(), Some(3.0));
    }

    #[test]
    fn history_is_bounded() {
        // Window 1, threshold 0.5: every other second raises, the next recovers.
        let mut state = fixed(1, 0.5);
        let alerts = HISTORY_CAP as u64 + 5;
        let got = run(&mut state, (0..2 * alerts).map(|s| (BASE + s, (s + 1) % 2)));
        assert_eq!(got.len() as u64, 2 * alerts);
        assert_eq!(state.history().len(), HISTORY_CAP);
        assert_eq!(state.dropped_history(), 5);
        // The oldest kept is the sixth alert (raised at second 10), the newest the last one.
        let second = |at: SystemTime| {
            at.duration_since(UNIX_EPOCH)
                .expect("after epoch")
                .as_secs()
        };
        assert_eq!(second(state.history()[0].triggered_at), BASE + 10);
        let newest = state.history().last().expect("alerts");
        assert_eq!(second(newest.triggered_at), BASE + 2 * (alerts - 1));
        assert_eq!(newest.recovered_at.map(second), Some(BASE + 2 * alerts - 1));
    }

    /// The whole rule, naively: every second expanded (gaps as zero seconds, late counts
    /// added to the last second), windows summed from the raw counts, learning counted second
    /// by second. An independent model for random streams.
    fn model(config: &AlertConfig, calls: &[(u64, u64)]) -> Vec<Seen> {
        let window = config.window_secs.max(1) as usize;
        let mut counts: Vec<u64> = Vec::new();
        let mut first = None;
        let mut out = Vec::new();
        let mut active = false;
        let mut threshold = match config.threshold {
            Threshold::Fixed(t) => Some(t),
            Threshold::Baseline { .. } => None,
        };
        let (mut learned_secs, mut learned) = (0u64, 0u64);
        let mut evaluate =
            |counts: &[u64], threshold: Option<f64>, out: &mut Vec<Seen>, base: u64| {
                let Some(t) = threshold else { return };
                let s = counts.len() - 1;
                let rate = counts[(s + 1).saturating_sub(window)..].iter().sum::<u64>() as f64
                    / window as f64;
                if !active && rate > t {
                    active = true;
                    out.push((true, base + s as u64, rate, t));
                } else if active && rate <= t {
                    active = false;
                    out.push((false, base + s as u64, rate, t));
                }
            };
        for &(second, requests) in calls {
            let base = *first.get_or_insert(second);
            let next = base + counts.len() as u64;
            if second < next {
                *counts.last_mut().expect("a second") += requests;
                if threshold.is_none() {
                    learned += requests;
                }
                evaluate(&counts, threshold, &mut out, base);
                continue;
            }
            for s in next..=second {
                let r = if s == second { requests } else { 0 };
                counts.push(r);
                if let (
                    None,
                    Threshold::Baseline {
                        learn_secs,
                        margin_pct,
                    },
                ) = (threshold, config.threshold)
                {
                    learned_secs += 1;
                    learned += r;
                    let learn_secs = u64::from(learn_secs.max(1));
                    if learned_secs == learn_secs {
                        if learned == 0 {
                            learned_secs = 0;
                        } else {
                            threshold = Some(
                                learned as f64 / learn_secs as f64 * (1.0 + margin_pct / 100.0),
                            );
                        }
                    }
                }
                evaluate(&counts, threshold, &mut out, base);
            }
        }
        out
    }

    #[test]
    fn random_streams_match_the_naive_model() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut transitions = 0;
        for round in 0..300 {
            let window_secs = [1, 2, 5, 17, 60][round % 5];
            let threshold = if round % 3 == 0 {
                Threshold::Fixed([0.0, 3.0, 10.0, 25.5][round % 4])
            } else {
                Threshold::Baseline {
                    learn_secs: [0, 1, 4, 30, 90][round % 5].try_into().expect("small"),
                    margin_pct: [0.0, 10.0, 50.0][round % 3],
                }
            };
            let config = AlertConfig {
                window_secs,
                threshold,
            };
            let mut calls = Vec::new();
            let mut second = BASE + next(1000);
            for _ in 0..400 {
                let step = match next(20) {
                    0 => 0,                                          // the same second again
                    1 if second > BASE => u64::MAX,                  // one second back
                    2 => 2 + next(3 * u64::from(window_secs) + 100), // a gap
                    _ => 1,
                };
                let at = if step == u64::MAX {
                    second - 1
                } else {
                    second + step
                };
                second = second.max(at);
                let burst = next(10) == 0;
                let requests = if burst {
                    next(200)
                } else if next(3) == 0 {
                    0
                } else {
                    next(30)
                };
                calls.push((at, requests));
            }
            let mut state = AlertState::new(config.clone());
            let mut got = Vec::new();
            for &(s, r) in &calls {
                state.close_second(s, r, |t| got.push(seen(&t)));
                if let Some(t) = state.threshold() {
                    assert_eq!(state.is_active(), state.window_rate() > t);
                }
            }
            let want = model(&config, &calls);
            assert_eq!(got, want, "round {round}: {config:?}");
            transitions += got.len();
        }
        // The streams do cross thresholds: the comparison is not vacuous.
        assert!(transitions > 1000, "{transitions}");
    }
}

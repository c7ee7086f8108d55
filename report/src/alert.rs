//! Alert lines and the alert history.
//!
//! Contract: [`raised_line`] and [`recovered_line`] are the spec's texts, character for
//! character (scripts and the seeds' tests match on them):
//! `High traffic generated an alert - hits = {value:.2}, triggered at {time}` and
//! `High traffic alert recovered - hits = {value:.2}, recovered at {time}`, times as
//! [`format_time`] prints them. [`history`] is the on-screen block of the last alerts, one line
//! each, ending in a newline.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use linewatch_model::{AlertKind, AlertRecord};

use crate::time::format_time;

/// The line printed when an alert is raised.
pub fn raised_line(a: &AlertRecord) -> String {
    if a.kind == AlertKind::PortScan {
        return format!(
            "Port scan detected - source = {}, ports = {:.0} within {} s, triggered at {}{}",
            source_text(a),
            a.value,
            a.window_secs,
            format_time(a.triggered_at),
            if a.blocked {
                "; its new connections are blocked"
            } else {
                ""
            }
        );
    }
    format!(
        "High traffic generated an alert - hits = {:.2}, triggered at {}",
        a.value,
        format_time(a.triggered_at)
    )
}

/// The line printed when an alert recovers; `None` while it is still active.
pub fn recovered_line(a: &AlertRecord) -> Option<String> {
    let at = a.recovered_at?;
    if a.kind == AlertKind::PortScan {
        return Some(format!(
            "Port scan flag expired - source = {}, recovered at {}{}",
            source_text(a),
            format_time(at),
            if a.blocked { "; unblocked" } else { "" }
        ));
    }
    // A recovery with no value recorded still gets its line; NaN says the value is unknown.
    let value = a.recovered_value.unwrap_or(f64::NAN);
    Some(format!(
        "High traffic alert recovered - hits = {value:.2}, recovered at {}",
        format_time(at)
    ))
}

/// The line printed when an allow-listed source scans: logged, never flagged or blocked.
pub fn allowed_scan_line(
    source: std::net::IpAddr,
    ports: u32,
    window_secs: u64,
    at: SystemTime,
) -> String {
    format!(
        "Port scan from allow-listed source {source} not flagged - ports = {ports} within {window_secs} s, at {}",
        format_time(at)
    )
}

fn source_text(a: &AlertRecord) -> String {
    a.source.map_or_else(|| "-".to_owned(), |s| s.to_string())
}

/// How long an alert lasted, to the second; `None` while active or if the clock went back.
pub(crate) fn alert_duration(a: &AlertRecord) -> Option<Duration> {
    let end = a.recovered_at?;
    let d = end.duration_since(a.triggered_at).ok()?;
    Some(Duration::from_secs(d.as_secs()))
}

/// The "Alert history" block: a title, then one line per alert for the last `last` of
/// `alerts` (oldest first): when it was raised and at what rate over which threshold, then when
/// it recovered, at what rate and how long it lasted, or `active`.
pub fn history(alerts: &[AlertRecord], last: usize) -> String {
    let mut out = String::new();
    if alerts.is_empty() {
        out.push_str("Alert history: none\n");
        return out;
    }
    let shown = &alerts[alerts.len().saturating_sub(last)..];
    if shown.len() == alerts.len() {
        let _ = writeln!(out, "Alert history ({})", alerts.len());
    } else {
        let _ = writeln!(
            out,
            "Alert history (last {} of {})",
            shown.len(),
            alerts.len()
        );
    }
    for a in shown {
        if a.kind == AlertKind::PortScan {
            let _ = write!(
                out,
                "  {:<12} raised {}  source {}  ports = {:.0} within {} s",
                a.kind.name(),
                format_time(a.triggered_at),
                source_text(a),
                a.value,
                a.window_secs
            );
            match (a.recovered_at, a.blocked) {
                (Some(at), _) => {
                    let _ = write!(out, "  expired {}", format_time(at));
                }
                (None, true) => out.push_str("  blocked"),
                (None, false) => out.push_str("  flagged"),
            }
            out.push('\n');
            continue;
        }
        let _ = write!(
            out,
            "  {:<12} raised {}  hits = {:.2} > {:.2}",
            a.kind.name(),
            format_time(a.triggered_at),
            a.value,
            a.threshold
        );
        match a.recovered_at {
            Some(at) => {
                let _ = write!(out, "  recovered {}", format_time(at));
                if let Some(v) = a.recovered_value {
                    let _ = write!(out, "  hits = {v:.2}");
                }
                match alert_duration(a) {
                    Some(d) => {
                        let _ = write!(out, "  lasted {}", humantime::format_duration(d));
                    }
                    None => out.push_str("  lasted ?"),
                }
            }
            None => out.push_str("  active"),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    pub(crate) fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    pub(crate) fn alert(start: u64, end: Option<u64>) -> AlertRecord {
        AlertRecord {
            kind: AlertKind::HighTraffic,
            triggered_at: at(start),
            value: 12.345,
            threshold: 10.0,
            recovered_at: end.map(at),
            recovered_value: end.map(|_| 9.5),
            window_secs: 120,
            source: None,
            blocked: false,
        }
    }

    fn scan(start: u64, end: Option<u64>, blocked: bool) -> AlertRecord {
        AlertRecord {
            kind: AlertKind::PortScan,
            value: 3.0,
            threshold: 3.0,
            window_secs: 60,
            source: Some("10.0.0.9".parse().unwrap()),
            blocked,
            recovered_value: None,
            ..alert(start, end)
        }
    }

    #[test]
    fn port_scan_lines_and_history() {
        let a = scan(1_614_053_178, None, true);
        let raised = raised_line(&a);
        assert!(
            raised.starts_with(
                "Port scan detected - source = 10.0.0.9, ports = 3 within 60 s, triggered at "
            ) && raised.ends_with("; its new connections are blocked"),
            "{raised}"
        );
        assert_eq!(recovered_line(&a), None);
        assert!(!raised_line(&scan(0, None, false)).contains("blocked"));
        let done = scan(1_614_053_178, Some(1_614_053_478), true);
        let line = recovered_line(&done).unwrap();
        assert!(
            line.starts_with("Port scan flag expired - source = 10.0.0.9, recovered at ")
                && line.ends_with("; unblocked"),
            "{line}"
        );
        let h = history(
            &[alert(0, Some(30)), a.clone(), scan(5, None, false), done],
            10,
        );
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 5, "{h}");
        assert!(lines[2].contains("port_scan") && lines[2].contains("source 10.0.0.9"));
        assert!(lines[2].ends_with("  blocked"), "{h}");
        assert!(lines[3].ends_with("  flagged"), "{h}");
        assert!(lines[4].contains("  expired "), "{h}");
        let allowed = allowed_scan_line("::1".parse().unwrap(), 4, 60, at(0));
        assert!(
            allowed.starts_with(
                "Port scan from allow-listed source ::1 not flagged - ports = 4 within 60 s, at "
            ),
            "{allowed}"
        );
    }

    #[test]
    fn lines_are_the_spec_texts() {
        let a = alert(1_614_053_178, Some(1_614_053_178 + 125));
        assert_eq!(
            raised_line(&a),
            "High traffic generated an alert - hits = 12.35, triggered at 2021-02-23T04:06:18Z"
        );
        assert_eq!(
            recovered_line(&a).as_deref(),
            Some("High traffic alert recovered - hits = 9.50, recovered at 2021-02-23T04:08:23Z")
        );
        assert_eq!(recovered_line(&alert(0, None)), None);
    }

    #[test]
    fn history_shows_the_last_alerts() {
        let alerts: Vec<_> = (0..7u64)
            .map(|i| alert(1_000 * i, (i < 6).then_some(1_000 * i + 125)))
            .collect();
        let h = history(&alerts, 5);
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "Alert history (last 5 of 7)");
        assert_eq!(lines.len(), 6);
        assert!(lines[1].contains("raised 1970-01-01T00:33:20Z"), "{h}");
        assert!(lines[1].contains("lasted 2m 5s"), "{h}");
        assert!(lines[1].contains("hits = 12.35 > 10.00"), "{h}");
        assert!(lines[5].ends_with("active"), "{h}");
        assert_eq!(history(&[], 5), "Alert history: none\n");
        assert_eq!(history(&alerts, 0), "Alert history (last 0 of 7)\n");
        assert_eq!(history(&alerts[..2], 5).lines().count(), 3);
    }

    #[test]
    fn recovery_before_raise_does_not_panic() {
        let mut a = alert(100, Some(50));
        a.recovered_value = None;
        assert!(history(&[a.clone()], 1).contains("lasted ?"));
        assert!(recovered_line(&a).is_some());
    }
}

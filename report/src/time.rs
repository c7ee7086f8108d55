//! Time stamps as linewatch prints them.
//!
//! Contract: [`format_time`] gives RFC 3339 UTC to the second (`2021-02-23T04:06:18Z`) for every
//! `SystemTime`, [`unix_seconds`] a number of seconds since 1970 that is negative before it.
//! Neither panics: a pcapng file can carry any 64-bit time stamp, and humantime panics before
//! 1970 and fails after 9999, so those times are formatted here (proleptic Gregorian calendar,
//! ISO 8601 expanded years such as `+10000`).

use std::time::{SystemTime, UNIX_EPOCH};

/// The last second humantime formats: 9999-12-31T23:59:59Z.
const LAST_HUMANTIME_SECOND: u64 = 253_402_300_799;

/// Seconds in a day (UTC has no leap seconds in this arithmetic, as in RFC 3339 stamps).
const SECONDS_PER_DAY: i64 = 86_400;

/// `t` as RFC 3339 UTC with seconds, e.g. `2021-02-23T04:06:18Z`; fractions are cut, not
/// rounded, so a time prints in the second it belongs to.
pub fn format_time(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) if d.as_secs() <= LAST_HUMANTIME_SECOND => {
            humantime::format_rfc3339_seconds(t).to_string()
        }
        _ => format_civil(floor_seconds(t)),
    }
}

/// Seconds since 1970-01-01T00:00:00Z, negative before it.
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Appends `t` as unix seconds with exactly six decimals (`1614053178.123456`), from integers:
/// an f64 holds only about 16 digits, not enough for today's seconds plus microseconds.
/// Fractions are cut toward zero.
pub(crate) fn push_unix_micros(t: SystemTime, out: &mut Vec<u8>) {
    let (negative, d) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (false, d),
        Err(e) => (true, e.duration()),
    };
    let micros = d.subsec_micros();
    if negative && (d.as_secs() != 0 || micros != 0) {
        out.push(b'-');
    }
    push_u64(d.as_secs(), out);
    out.push(b'.');
    push_u64_padded(u64::from(micros), 6, out);
}

/// Appends the decimal digits of `n`.
pub(crate) fn push_u64(n: u64, out: &mut Vec<u8>) {
    push_u64_padded(n, 1, out);
}

/// Appends the decimal digits of `n`, zero-padded to at least `width` digits (at most 20).
fn push_u64_padded(mut n: u64, width: usize, out: &mut Vec<u8>) {
    // u64::MAX has 20 digits.
    let mut buf = [b'0'; 20];
    let mut start = buf.len();
    loop {
        start -= 1;
        // n % 10 < 10: the conversion cannot fail.
        buf[start] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 || start == 0 {
            break;
        }
    }
    let start = start.min(buf.len().saturating_sub(width));
    out.extend_from_slice(&buf[start..]);
}

/// Whole seconds since 1970, rounded toward the past (so 0.5 s before 1970 is second -1).
fn floor_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let whole = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let partial = i64::from(d.subsec_nanos() > 0);
            0i64.saturating_sub(whole).saturating_sub(partial)
        }
    }
}

/// (year, month, day) of a day number counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, valid for every i64 day through i128 arithmetic).
fn civil_from_days(days: i64) -> (i128, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i128::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// RFC 3339 for any second; years outside 0000..=9999 in ISO 8601 expanded form.
fn format_civil(secs: i64) -> String {
    let days = secs.div_euclid(SECONDS_PER_DAY);
    let sod = secs.rem_euclid(SECONDS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let year = if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else if year > 9999 {
        format!("+{year}")
    } else {
        format!("-{:04}", year.unsigned_abs())
    };
    format!(
        "{year}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn before(d: Duration) -> SystemTime {
        UNIX_EPOCH.checked_sub(d).expect("representable")
    }

    fn micros(t: SystemTime) -> String {
        let mut out = Vec::new();
        push_unix_micros(t, &mut out);
        String::from_utf8(out).expect("ASCII")
    }

    #[test]
    fn formats_rfc3339_seconds() {
        assert_eq!(format_time(at(1_614_053_178)), "2021-02-23T04:06:18Z");
        assert_eq!(format_time(at(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_time(at(1_614_053_178) + Duration::from_millis(999)),
            "2021-02-23T04:06:18Z"
        );
    }

    #[test]
    fn out_of_humantime_range_does_not_panic() {
        assert_eq!(
            format_time(before(Duration::from_secs(1))),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            format_time(before(Duration::from_millis(500))),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(
            format_time(before(Duration::from_secs(86_400 * 365))),
            "1969-01-01T00:00:00Z"
        );
        assert_eq!(
            format_time(at(LAST_HUMANTIME_SECOND)),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            format_time(at(LAST_HUMANTIME_SECOND + 1)),
            "+10000-01-01T00:00:00Z"
        );
        // The extremes SystemTime can hold on this platform, whatever they are.
        let far = at(u64::try_from(i64::MAX / 2).unwrap_or(0));
        assert!(format_time(far).starts_with('+'));
        // 62_167_219_200 s before 1970 is 0000-01-01; one day more is year -1.
        assert_eq!(
            format_time(before(Duration::from_secs(62_167_219_200))),
            "0000-01-01T00:00:00Z"
        );
        assert_eq!(
            format_time(before(Duration::from_secs(62_167_219_200 + 86_400))),
            "-0001-12-31T00:00:00Z"
        );
    }

    #[test]
    fn civil_fallback_agrees_with_humantime() {
        // Every ~11.6 days from 1970 to 9999, plus each day of the leap-year edges.
        let mut secs = 0u64;
        while secs <= LAST_HUMANTIME_SECOND {
            let i = i64::try_from(secs).unwrap_or(0);
            assert_eq!(
                format_civil(i),
                humantime::format_rfc3339_seconds(at(secs)).to_string(),
                "second {secs}"
            );
            secs += 1_000_003;
        }
        for day in [
            11_016u64, 11_017, 11_018, 10_956, 10_957, 47_540, 47_541, 2_932_896,
        ] {
            let s = day * 86_400 + 86_399;
            let i = i64::try_from(s).unwrap_or(0);
            assert_eq!(
                format_civil(i),
                humantime::format_rfc3339_seconds(at(s)).to_string()
            );
        }
    }

    #[test]
    fn unix_seconds_signs() {
        assert_eq!(unix_seconds(at(10)), 10.0);
        assert_eq!(unix_seconds(before(Duration::from_millis(1_500))), -1.5);
        assert_eq!(unix_seconds(UNIX_EPOCH), 0.0);
    }

    #[test]
    fn micros_are_exact() {
        let t = at(1_614_053_178) + Duration::from_nanos(123_456_789);
        assert_eq!(micros(t), "1614053178.123456");
        assert_eq!(micros(UNIX_EPOCH), "0.000000");
        assert_eq!(micros(before(Duration::from_micros(1))), "-0.000001");
        assert_eq!(micros(before(Duration::from_nanos(1))), "0.000000");
        assert_eq!(
            micros(before(Duration::from_micros(2_000_001))),
            "-2.000001"
        );
        let mut out = Vec::new();
        push_u64(u64::MAX, &mut out);
        assert_eq!(out, b"18446744073709551615");
    }
}

//! Numbers as a person reads them on screen: short counts (`12.3k`), byte sizes (`1.2 MB`) and
//! rates. Decimal (SI) prefixes throughout, as network rates are counted.

/// A count in at most six characters: exact below 10 000, then `12.3k`, `1.23M`, `4.56G`, ...
pub fn short_count(n: u64) -> String {
    const STEPS: [(f64, &str); 5] = [
        (1e18, "E"),
        (1e15, "P"),
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
    ];
    if n < 10_000 {
        return n.to_string();
    }
    let x = n as f64;
    for (scale, prefix) in STEPS {
        if x >= scale {
            return format!("{:.2}{prefix}", x / scale);
        }
    }
    format!("{:.1}k", x / 1e3)
}

/// A byte size: `512 B`, `12.3 kB`, `1.2 MB`, ...
pub fn bytes(n: u64) -> String {
    const STEPS: [(f64, &str); 6] = [
        (1e18, "EB"),
        (1e15, "PB"),
        (1e12, "TB"),
        (1e9, "GB"),
        (1e6, "MB"),
        (1e3, "kB"),
    ];
    if n < 1_000 {
        return format!("{n} B");
    }
    let x = n as f64;
    for (scale, unit) in STEPS {
        if x >= scale {
            return format!("{:.1} {unit}", x / scale);
        }
    }
    format!("{n} B")
}

/// `count` per second over `seconds`, or 0 for an empty span.
pub(crate) fn per_second(count: u64, seconds: u64) -> f64 {
    if seconds == 0 {
        0.0
    } else {
        count as f64 / seconds as f64
    }
}

/// A rate with two decimals below 10 (a slow site's rate is still readable), one below
/// 10 000, else with a prefix like [`short_count`].
pub(crate) fn short_rate(r: f64) -> String {
    if !r.is_finite() {
        return format!("{r}");
    }
    if r.abs() < 10.0 {
        return format!("{r:.2}");
    }
    if r.abs() < 10_000.0 {
        return format!("{r:.1}");
    }
    let (x, prefix) = if r.abs() >= 1e9 {
        (r / 1e9, "G")
    } else if r.abs() >= 1e6 {
        (r / 1e6, "M")
    } else {
        (r / 1e3, "k")
    };
    format!("{x:.1}{prefix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_counts() {
        assert_eq!(short_count(0), "0");
        assert_eq!(short_count(9_999), "9999");
        assert_eq!(short_count(12_345), "12.3k");
        assert_eq!(short_count(1_234_567), "1.23M");
        assert_eq!(short_count(u64::MAX), "18.45E");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(12_345), "12.3 kB");
        assert_eq!(bytes(1_200_000), "1.2 MB");
    }

    #[test]
    fn rates() {
        assert_eq!(per_second(10, 0), 0.0);
        assert_eq!(per_second(25, 10), 2.5);
        assert_eq!(short_rate(12.34), "12.3");
        assert_eq!(short_rate(0.027), "0.03");
        assert_eq!(short_rate(123_456.0), "123.5k");
        assert_eq!(short_rate(f64::NAN), "NaN");
    }
}

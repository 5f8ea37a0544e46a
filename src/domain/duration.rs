//! protojson durations: `"<seconds>[.<fraction>]s"` in, 0/3/6/9 fractional digits out.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration {
    pub nanos: i64,
}

/// The most seconds a protobuf `Duration` holds either way (10,000 years).
pub const MAX_SECONDS: i64 = 315_576_000_000;

impl Duration {
    pub const fn from_secs(s: i64) -> Self {
        Duration { nanos: s * 1_000_000_000 }
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.nanos.max(0) as u64)
    }

    /// Parses the protojson form only: optional `-`, digits, optional `.` and 1..9 digits, then `s`.
    pub fn parse(input: &str) -> Option<Self> {
        let body = input.strip_suffix('s')?;
        let (negative, body) = match body.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        let (whole, frac) = match body.split_once('.') {
            Some((w, f)) => (w, f),
            None => (body, ""),
        };
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if body.contains('.') && (frac.is_empty() || frac.len() > 9) {
            return None;
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let secs: i64 = whole.parse().ok()?;
        // protobuf Duration range: ±315,576,000,000 seconds.
        if secs > MAX_SECONDS {
            return None;
        }
        let mut frac_nanos: i64 = 0;
        if !frac.is_empty() {
            frac_nanos = format!("{frac:0<9}").parse().ok()?;
        }
        let nanos = secs.checked_mul(1_000_000_000)?.checked_add(frac_nanos)?;
        Some(Duration { nanos: if negative { -nanos } else { nanos } })
    }

    /// [`Duration::parse`] for request fields: a well-formed protojson duration beyond what this
    /// type holds (about ±292 years, inside protobuf's ±10,000 years) reads as the longest (or
    /// shortest) one, so that the field's own bound refuses it ("at most 270s"), rather than
    /// calling it malformed. Every request field that takes a duration has such a bound.
    pub fn parse_saturating(input: &str) -> Option<Self> {
        if let Some(d) = Duration::parse(input) {
            return Some(d);
        }
        // Well-formed with the fraction dropped and 1s in place of the seconds: then only the
        // seconds' size made it fail.
        let body = input.strip_suffix('s')?;
        let (negative, body) = match body.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, body),
        };
        let whole = body.split_once('.').map_or(body, |(w, _)| w);
        // Digits only: Rust's integer parse would also take a sign ("+2"), which protojson refuses.
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let shape = input.replacen(whole, "1", 1);
        let secs: u64 = whole.parse().ok()?;
        if secs > MAX_SECONDS as u64 || Duration::parse(&shape).is_none() {
            return None;
        }
        Some(Duration { nanos: if negative { i64::MIN } else { i64::MAX } })
    }
}

/// Parses the ACTIONSD_* configuration durations: the protojson form plus `ms`, `m`, `h`, `d` units.
pub fn parse_config(input: &str) -> Option<Duration> {
    let s = input.trim();
    if let Some(d) = Duration::parse(s) {
        return Some(d);
    }
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000i64)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000_000_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000_000_000)
    } else if let Some(n) = s.strip_suffix('d') {
        (n, 86_400_000_000_000)
    } else {
        return None;
    };
    let n: i64 = num.trim().parse().ok()?;
    Some(Duration { nanos: n.checked_mul(mult)? })
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let secs = abs / 1_000_000_000;
        let nanos = abs % 1_000_000_000;
        if nanos == 0 {
            write!(f, "{sign}{secs}s")
        } else if nanos.is_multiple_of(1_000_000) {
            write!(f, "{sign}{secs}.{:03}s", nanos / 1_000_000)
        } else if nanos.is_multiple_of(1_000) {
            write!(f, "{sign}{secs}.{:06}s", nanos / 1_000)
        } else {
            write!(f, "{sign}{secs}.{nanos:09}s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_protojson_durations() {
        let cases = [
            ("1.5s", "1.500s"),
            ("10s", "10s"),
            ("0.000412s", "0.000412s"),
            ("0s", "0s"),
            ("0.000000001s", "0.000000001s"),
        ];
        for (input, printed) in cases {
            assert_eq!(Duration::parse(input).unwrap().to_string(), printed);
        }
        for bad in ["1m", "1", "s", ".5s", "1.s", "1.0000000001s", "abc", "1.5 s", "+1s", ""] {
            assert!(Duration::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(Duration::parse("-1s").unwrap().nanos, -1_000_000_000);
    }

    #[test]
    fn request_durations_saturate_inside_protobufs_range() {
        assert_eq!(Duration::parse_saturating("10s"), Duration::parse("10s"));
        assert_eq!(Duration::parse_saturating("99999999999s").unwrap().nanos, i64::MAX);
        assert_eq!(Duration::parse_saturating("99999999999.5s").unwrap().nanos, i64::MAX);
        assert_eq!(Duration::parse_saturating("-99999999999s").unwrap().nanos, i64::MIN);
        assert_eq!(Duration::parse_saturating("315576000000s").unwrap().nanos, i64::MAX);
        for bad in [
            "315576000001s",
            "99999999999",
            "9999999999999999999999s",
            "99999999999.s",
            "1x1s",
            "",
            "s",
            "+2s",
            "+0s",
            "-+2s",
            "+99999999999s",
            "+2.5s",
        ] {
            assert!(Duration::parse_saturating(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn config_units() {
        assert_eq!(parse_config("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert_eq!(parse_config("24h").unwrap(), Duration::from_secs(86400));
        assert_eq!(parse_config("250ms").unwrap().nanos, 250_000_000);
        assert_eq!(parse_config("20s").unwrap(), Duration::from_secs(20));
    }
}

//! Timestamps are stored as microseconds since the Unix epoch and printed as RFC 3339 UTC.

use chrono::{DateTime, Utc};

pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// RFC 3339 with `Z` and 0, 3, 6 fractional digits, as protojson prints timestamps.
pub fn format_micros(micros: i64) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    let base = dt.format("%Y-%m-%dT%H:%M:%S");
    let frac = micros.rem_euclid(1_000_000);
    if frac == 0 {
        format!("{base}Z")
    } else if frac % 1000 == 0 {
        format!("{base}.{:03}Z", frac / 1000)
    } else {
        format!("{base}.{frac:06}Z")
    }
}

/// Parses an RFC 3339 timestamp into microseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|d| d.with_timezone(&Utc).timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_protojson() {
        assert_eq!(format_micros(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_micros(1_500_000), "1970-01-01T00:00:01.500Z");
        assert_eq!(format_micros(1_000_001), "1970-01-01T00:00:01.000001Z");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500_000));
    }
}

//! Timestamps are stored as microseconds since the Unix epoch and printed as RFC 3339 UTC.

use chrono::{DateTime, Datelike, Timelike, Utc};

pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// RFC 3339 with `Z` and 0, 3, 6 fractional digits, as protojson prints timestamps.
///
/// Written digit by digit: every answer carries two or more of these, and chrono's `format`
/// (which parses its pattern on each call) cost about 4k instructions per timestamp.
pub fn format_micros(micros: i64) -> String {
    let dt = DateTime::<Utc>::from_timestamp_micros(micros).unwrap_or_default();
    let frac = micros.rem_euclid(1_000_000) as u32;
    let year = dt.year();
    let Ok(year @ 0..=9999) = u32::try_from(year) else {
        // Outside protobuf's range (years 1 to 9999) anyway; chrono signs such years.
        return with_fraction(dt.format("%Y-%m-%dT%H:%M:%S").to_string(), frac);
    };
    let mut out = String::with_capacity(27);
    for (value, width, after) in [
        (year, 4, '-'),
        (dt.month(), 2, '-'),
        (dt.day(), 2, 'T'),
        (dt.hour(), 2, ':'),
        (dt.minute(), 2, ':'),
        (dt.second(), 2, '\0'),
    ] {
        push_digits(&mut out, value, width);
        if after != '\0' {
            out.push(after);
        }
    }
    with_fraction(out, frac)
}

fn with_fraction(mut out: String, frac: u32) -> String {
    if frac != 0 {
        out.push('.');
        if frac.is_multiple_of(1000) {
            push_digits(&mut out, frac / 1000, 3);
        } else {
            push_digits(&mut out, frac, 6);
        }
    }
    out.push('Z');
    out
}

/// `value`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
    }
}

/// The instants a protobuf `Timestamp` can hold: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z
/// (microseconds).
pub const TIMESTAMP_RANGE: std::ops::RangeInclusive<i64> = -62_135_596_800_000_000..=253_402_300_799_999_999;

/// Parses an RFC 3339 timestamp into microseconds; None for one outside protobuf's range (an
/// offset can carry `9999-12-31T23:59:59-01:00` into year 10000, which no answer could print).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc).timestamp_micros())
        .filter(|micros| TIMESTAMP_RANGE.contains(micros))
}

/// Seconds and nanoseconds of `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (1 to 9 fractional digits), the
/// form every answer carries, read field by field; None for any other spelling (an offset,
/// lowercase `t`/`z`, a leap second, year 0), which chrono's RFC 3339 parser then reads: the
/// general parser cost about 1k instructions per timestamp of every gRPC answer.
pub fn parse_utc(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || b[b.len() - 1] != b'Z' || separators.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let number =
        |digits: &[u8]| digits.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')));
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => number(digits)? * 10u32.pow(9 - digits.len() as u32),
        _ => return None,
    };
    let year = number(&b[0..4])?;
    if year == 0 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, number(&b[5..7])?, number(&b[8..10])?)?;
    let time = date.and_hms_opt(number(&b[11..13])?, number(&b[14..16])?, number(&b[17..19])?)?;
    Some((time.and_utc().timestamp(), nanos))
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

    #[test]
    fn timestamps_outside_protobufs_range_are_refused() {
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999999Z"), Some(253_402_300_799_999_999));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), Some(-62_135_596_800_000_000));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59-01:00"), None, "year 10000 in UTC");
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00+01:00"), None, "year 0 in UTC");
    }

    /// The field-by-field reader agrees with chrono's RFC 3339 parser wherever it answers, and
    /// leaves every other spelling to it.
    #[test]
    fn canonical_utc_reads_as_chrono_reads_it() {
        let chrono_read =
            |text: &str| DateTime::parse_from_rfc3339(text).ok().map(|t| (t.timestamp(), t.timestamp_subsec_nanos()));
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut read = 0;
        for _ in 0..60_000 {
            let r = next();
            let digits = (r % 10) as usize;
            let fraction: String = (0..digits).map(|i| char::from(b'0' + ((r >> (8 + i * 3)) % 10) as u8)).collect();
            let text = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}Z",
                next() % 10_000,
                next() % 14,
                next() % 33,
                next() % 25,
                next() % 61,
                next() % 62,
                if digits > 0 { "." } else { "" },
                fraction
            );
            let fast = parse_utc(&text);
            if fast.is_some() {
                read += 1;
                assert_eq!(fast, chrono_read(&text), "{text}");
            } else if let Some((seconds, _)) = chrono_read(&text) {
                // What the reader leaves to chrono: year 0 and leap seconds only.
                assert!(text.starts_with("0000") || &text[17..19] == "60", "{text} read by chrono ({seconds}) only");
            }
        }
        assert!(read > 30_000, "most samples are valid instants: {read}");
        for text in [
            "2026-12-03T10:11:12.1234567890Z",
            "2026-12-03T10:11:12.Z",
            "2026-12-03t10:11:12Z",
            "2026-12-03T10:11:12+00:00",
            "2026-12-03T10:11:12",
            "2026-12-03T10:11:1aZ",
            "2026-02-29T10:11:12Z",
            "+026-12-03T10:11:12Z",
        ] {
            assert_eq!(parse_utc(text), None, "{text}");
        }
        assert_eq!(parse_utc("2024-02-29T23:59:59.000000001Z"), chrono_read("2024-02-29T23:59:59.000000001Z"));
        assert_eq!(parse_utc("0001-01-01T00:00:00Z"), Some((-62_135_596_800, 0)));
        assert_eq!(parse_utc("9999-12-31T23:59:59.999999999Z"), Some((253_402_300_799, 999_999_999)));
    }

    /// The digit-by-digit form prints what chrono's pattern printed, fraction rules included.
    #[test]
    fn prints_what_the_chrono_pattern_printed() {
        fn by_pattern(micros: i64) -> String {
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
        let mut samples = vec![
            0,
            -1,
            1,
            999_999,
            1_000,
            -1_000_000,
            951_782_400_000_000,     // 2000-02-29
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // year 10000
            -62_135_596_800_000_000, // 0001-01-01
            -62_167_219_200_000_001, // before year 0
            i64::MAX,
            i64::MIN,
            now_micros(),
        ];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            samples.push(x % 4_000_000_000_000_000);
            samples.push((x % 4_000_000_000_000) * 1000);
            samples.push((x % 4_000_000_000_000) * 1_000_000);
        }
        for micros in samples {
            assert_eq!(format_micros(micros), by_pattern(micros), "{micros}");
        }
    }
}

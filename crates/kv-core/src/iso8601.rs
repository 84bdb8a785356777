//! Timestamps as `i64` microseconds since the Unix epoch (UTC).
//!
//! py-key-value stores `created_at`/`expires_at` as Python
//! `datetime.isoformat()` text of a UTC-aware datetime, so microseconds are
//! the natural (lossless) unit. Calendar arithmetic is the proleptic
//! Gregorian calendar, done here with the classic days-from-civil algorithm
//! to avoid a date/time dependency.

use std::fmt;

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// First instant Python's `datetime` can represent: `0001-01-01T00:00:00Z`.
pub const MIN_PYTHON_MICROS: i64 = -62_135_596_800 * MICROS_PER_SECOND;
/// Last instant Python's `datetime` can represent: `9999-12-31T23:59:59.999999Z`.
pub const MAX_PYTHON_MICROS: i64 = 253_402_300_800 * MICROS_PER_SECOND - 1;

/// Why [`parse_iso8601`] rejected its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError {
    input: String,
    reason: &'static str,
}

impl TimestampError {
    fn new(input: &str, reason: &'static str) -> Self {
        // Keep messages bounded even for huge garbage inputs.
        let input = match input.char_indices().nth(64) {
            Some((cut, _)) => format!("{}...", &input[..cut]),
            None => input.to_owned(),
        };
        TimestampError { input, reason }
    }

    /// Short description of the problem, without the input.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid ISO-8601 timestamp {:?}: {}",
            self.input, self.reason
        )
    }
}

impl std::error::Error for TimestampError {}

/// Days since 1970-01-01 of a proleptic Gregorian date (`month` 1..=12).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Broken-down UTC time: (year, month, day, hour, minute, second, micros).
fn split(micros: i64) -> (i64, u32, u32, u32, u32, u32, u32) {
    // Floor division so that instants before 1970 land on the previous day.
    let days = micros.div_euclid(MICROS_PER_DAY);
    let in_day = micros.rem_euclid(MICROS_PER_DAY); // [0, MICROS_PER_DAY)
    let (y, mo, d) = civil_from_days(days);
    let secs = in_day / MICROS_PER_SECOND;
    let frac = (in_day % MICROS_PER_SECOND) as u32;
    let (h, mi, s) = (
        (secs / 3600) as u32,
        (secs / 60 % 60) as u32,
        (secs % 60) as u32,
    );
    (y, mo, d, h, mi, s, frac)
}

fn push_date_time(out: &mut String, y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) {
    // Four digits for years 0..=9999 (all Python can express); outside that
    // range an ISO-8601 expanded year, which no Python reader will accept.
    let year = match y {
        0..=9999 => format!("{y:04}"),
        _ if y < 0 => format!("-{:04}", y.unsigned_abs()),
        _ => format!("+{y}"),
    };
    out.push_str(&format!("{year}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}"));
}

/// Formats like Python's `datetime.isoformat()` of a UTC-aware datetime, the
/// form py-key-value stores: `YYYY-MM-DDTHH:MM:SS+00:00` when the microsecond
/// part is zero, else `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (always six digits).
/// The offset is always `+00:00`, never `Z`, because that is what Python
/// writes. Instants outside [`MIN_PYTHON_MICROS`]..=[`MAX_PYTHON_MICROS`]
/// are formatted with an expanded year that Python cannot read.
pub fn format_isoformat(micros: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = split(micros);
    let mut out = String::with_capacity(32);
    push_date_time(&mut out, y, mo, d, h, mi, s);
    if frac != 0 {
        out.push_str(&format!(".{frac:06}"));
    }
    out.push_str("+00:00");
    out
}

/// Formats as RFC 3339 with exactly six fraction digits and `Z`, e.g.
/// `2026-11-22T02:56:14.569741Z`: a fixed-width form for humans and CLIs.
/// (Not the stored format; use [`format_isoformat`] for documents.)
pub fn format_rfc3339_micros(micros: i64) -> String {
    let (y, mo, d, h, mi, s, frac) = split(micros);
    let mut out = String::with_capacity(32);
    push_date_time(&mut out, y, mo, d, h, mi, s);
    out.push_str(&format!(".{frac:06}Z"));
    out
}

/// A tiny cursor over the ASCII bytes of a timestamp.
struct Cursor<'a> {
    input: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn err(&self, reason: &'static str) -> TimestampError {
        TimestampError::new(self.input, reason)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize, what: &'static str) -> Result<u32, TimestampError> {
        let mut value = 0u32;
        for _ in 0..n {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => return Err(self.err(what)),
            }
        }
        Ok(value)
    }
}

/// Parses an ISO-8601 / RFC 3339 timestamp that carries a UTC offset into
/// microseconds since the epoch.
///
/// Accepted (a superset of what Python writes, roughly what Python 3.11's
/// `datetime.fromisoformat` reads): `YYYY-MM-DD`, separator `T`, `t` or a
/// space, `HH:MM` with optional `:SS`, an optional fraction of 1 to 9 digits
/// after `.` or `,` (digits beyond microseconds are truncated), and an offset
/// `Z`, `z`, `±HH:MM`, `±HHMM` or `±HH` (less than 24 hours). Years must be
/// 0001..=9999. A timestamp *without* offset is rejected: Python would read
/// it as a naive datetime and then fail when comparing it with the current
/// time, so such a document is unusable anyway.
pub fn parse_iso8601(s: &str) -> Result<i64, TimestampError> {
    let mut c = Cursor {
        input: s,
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4, "expected a four-digit year")?;
    if !c.eat(b'-') {
        return Err(c.err("expected '-' after the year"));
    }
    let month = c.digits(2, "expected a two-digit month")?;
    if !c.eat(b'-') {
        return Err(c.err("expected '-' after the month"));
    }
    let day = c.digits(2, "expected a two-digit day")?;
    if year == 0 {
        return Err(c.err("year 0000 is out of range"));
    }
    if !(1..=12).contains(&month) {
        return Err(c.err("month out of range"));
    }
    if day == 0 || day > days_in_month(i64::from(year), month) {
        return Err(c.err("day out of range for the month"));
    }
    if c.peek().is_none() {
        return Err(c.err("missing time and UTC offset (naive date)"));
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return Err(c.err("expected 'T' or ' ' between date and time"));
    }
    let hour = c.digits(2, "expected a two-digit hour")?;
    if !c.eat(b':') {
        return Err(c.err("expected ':' after the hour"));
    }
    let minute = c.digits(2, "expected a two-digit minute")?;
    let second = if c.eat(b':') {
        c.digits(2, "expected two-digit seconds")?
    } else {
        0
    };
    if hour > 23 || minute > 59 || second > 59 {
        return Err(c.err("time of day out of range"));
    }
    let mut frac_micros = 0i64;
    if c.eat(b'.') || c.eat(b',') {
        let mut count = 0usize;
        while let Some(b @ b'0'..=b'9') = c.peek() {
            count += 1;
            if count > 9 {
                return Err(c.err("more than 9 fraction digits"));
            }
            if count <= 6 {
                frac_micros = frac_micros * 10 + i64::from(b - b'0');
            }
            c.pos += 1;
        }
        if count == 0 {
            return Err(c.err("expected digits after the decimal point"));
        }
        for _ in count..6 {
            frac_micros *= 10;
        }
    }
    let offset_seconds: i64 = match c.peek() {
        None => return Err(c.err("missing UTC offset (naive time)")),
        Some(b'Z' | b'z') => {
            c.pos += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            c.pos += 1;
            let oh = c.digits(2, "expected a two-digit offset hour")?;
            let om = if c.peek().is_none() {
                0
            } else {
                c.eat(b':');
                c.digits(2, "expected a two-digit offset minute")?
            };
            if oh > 23 || om > 59 {
                return Err(c.err("UTC offset out of range"));
            }
            let magnitude = i64::from(oh) * 3600 + i64::from(om) * 60;
            if sign == b'-' { -magnitude } else { magnitude }
        }
        Some(_) => return Err(c.err("unexpected character where the UTC offset should be")),
    };
    if c.peek().is_some() {
        return Err(c.err("trailing characters after the UTC offset"));
    }
    let days = days_from_civil(i64::from(year), month, day);
    let local_seconds =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
    Ok((local_seconds - offset_seconds) * MICROS_PER_SECOND + frac_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_735_689_600_000_000; // 2025-01-01T00:00:00Z

    #[test]
    fn study_examples() {
        assert_eq!(format_isoformat(T0), "2025-01-01T00:00:00+00:00");
        assert_eq!(format_isoformat(T0 + 5), "2025-01-01T00:00:00.000005+00:00");
        assert_eq!(
            format_isoformat(T0 + 250_000),
            "2025-01-01T00:00:00.250000+00:00"
        );
        assert_eq!(
            format_isoformat(T0 + 10_000_000),
            "2025-01-01T00:00:10+00:00"
        );
        let t = parse_iso8601("2026-11-22T02:56:14.569741+00:00").unwrap();
        assert_eq!(format_isoformat(t), "2026-11-22T02:56:14.569741+00:00");
        assert_eq!(format_rfc3339_micros(t), "2026-11-22T02:56:14.569741Z");
        assert_eq!(format_rfc3339_micros(T0), "2025-01-01T00:00:00.000000Z");
        assert_eq!(t, 1_795_316_174_569_741);
    }

    #[test]
    fn known_instants() {
        assert_eq!(format_isoformat(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(format_isoformat(-1), "1969-12-31T23:59:59.999999+00:00");
        assert_eq!(
            format_isoformat(-MICROS_PER_DAY),
            "1969-12-31T00:00:00+00:00"
        );
        assert_eq!(
            format_isoformat(951_782_400_000_000),
            "2000-02-29T00:00:00+00:00"
        );
        assert_eq!(
            format_isoformat(MIN_PYTHON_MICROS),
            "0001-01-01T00:00:00+00:00"
        );
        assert_eq!(
            format_isoformat(MAX_PYTHON_MICROS),
            "9999-12-31T23:59:59.999999+00:00"
        );
        assert_eq!(format_rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.999999+00:00"), Ok(-1));
        assert_eq!(
            parse_iso8601("0001-01-01T00:00:00+00:00"),
            Ok(MIN_PYTHON_MICROS)
        );
        assert_eq!(
            parse_iso8601("9999-12-31T23:59:59.999999Z"),
            Ok(MAX_PYTHON_MICROS)
        );
        assert_eq!(
            parse_iso8601("1900-03-01T00:00:00Z"),
            Ok(-2_203_891_200_000_000)
        );
    }

    #[test]
    fn extreme_values_do_not_panic() {
        for v in [
            i64::MIN,
            i64::MAX,
            i64::MIN + 1,
            MIN_PYTHON_MICROS - 1,
            MAX_PYTHON_MICROS + 1,
        ] {
            let a = format_isoformat(v);
            let b = format_rfc3339_micros(v);
            assert!(a.ends_with("+00:00") && b.ends_with('Z'));
            assert!(parse_iso8601(&a).is_err(), "{a} is outside 0001..=9999");
        }
        assert_eq!(
            format_isoformat(MAX_PYTHON_MICROS + 1),
            "+10000-01-01T00:00:00+00:00"
        );
        assert_eq!(
            format_isoformat(MIN_PYTHON_MICROS - 1),
            "0000-12-31T23:59:59.999999+00:00"
        );
    }

    #[test]
    fn civil_round_trip_every_day() {
        // Every day of 1600..=2400 plus the ends of the supported range.
        let ranges = [
            days_from_civil(1, 1, 1)..days_from_civil(2, 1, 1),
            days_from_civil(1600, 1, 1)..days_from_civil(2401, 1, 1),
            days_from_civil(9999, 1, 1)..days_from_civil(10000, 1, 1),
        ];
        for range in ranges {
            let mut prev: Option<(i64, u32, u32)> = None;
            for days in range {
                let (y, m, d) = civil_from_days(days);
                assert_eq!(days_from_civil(y, m, d), days);
                assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
                if let Some((py, pm, pd)) = prev {
                    let next = if pd < days_in_month(py, pm) {
                        (py, pm, pd + 1)
                    } else if pm < 12 {
                        (py, pm + 1, 1)
                    } else {
                        (py + 1, 1, 1)
                    };
                    assert_eq!((y, m, d), next);
                }
                prev = Some((y, m, d));
            }
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(
            civil_from_days(days_from_civil(2024, 2, 29) + 1),
            (2024, 3, 1)
        );
        assert_eq!(
            civil_from_days(days_from_civil(1900, 2, 28) + 1),
            (1900, 3, 1)
        );
    }

    #[test]
    fn format_parse_round_trips() {
        let mut values = vec![
            0,
            -1,
            1,
            T0,
            T0 - 1,
            951_782_400_000_000 - 1,
            951_782_400_000_000 + 123_456,
            MIN_PYTHON_MICROS,
            MIN_PYTHON_MICROS + 1,
            MAX_PYTHON_MICROS,
            MAX_PYTHON_MICROS - 999_999,
            -86_400_000_001,
            -62_000_000_000_000_001,
        ];
        // A deterministic spread over the whole Python range (LCG steps).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let span = (MAX_PYTHON_MICROS - MIN_PYTHON_MICROS) as u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = MIN_PYTHON_MICROS + (x % span) as i64;
            values.push(v);
            values.push(v - v.rem_euclid(MICROS_PER_SECOND)); // whole seconds
        }
        for v in values {
            let iso = format_isoformat(v);
            assert_eq!(parse_iso8601(&iso), Ok(v), "{iso}");
            let rfc = format_rfc3339_micros(v);
            assert_eq!(parse_iso8601(&rfc), Ok(v), "{rfc}");
            assert_eq!(
                iso.len(),
                if v.rem_euclid(MICROS_PER_SECOND) == 0 {
                    25
                } else {
                    32
                }
            );
        }
    }

    #[test]
    fn lenient_forms() {
        let ok = [
            "2025-01-01T00:00:00Z",
            "2025-01-01T00:00:00z",
            "2025-01-01t00:00:00Z",
            "2025-01-01 00:00:00+00:00",
            "2025-01-01T00:00+00:00",
            "2025-01-01T01:00:00+01:00",
            "2025-01-01T01:00:00+0100",
            "2025-01-01T01:00:00+01",
            "2024-12-31T23:00:00-01:00",
            "2024-12-31T23:00:00-0100",
            "2025-01-01T00:00:00-00:00",
            "2025-01-01T00:00:00.000000+00:00",
            "2025-01-01T00:00:00.0Z",
            "2025-01-01T00:00:00,000000000Z",
        ];
        for s in ok {
            assert_eq!(parse_iso8601(s), Ok(T0), "{s}");
        }
        assert_eq!(
            parse_iso8601("2025-01-01T00:00:00.5+00:00"),
            Ok(T0 + 500_000)
        );
        assert_eq!(parse_iso8601("2025-01-01T00:00:00.25Z"), Ok(T0 + 250_000));
        assert_eq!(
            parse_iso8601("2025-01-01T00:00:00.123456789Z"),
            Ok(T0 + 123_456)
        );
        assert_eq!(parse_iso8601("2025-01-01T00:00:00.000001Z"), Ok(T0 + 1));
        assert_eq!(
            parse_iso8601("2025-01-01T05:30:00.5+05:30"),
            Ok(T0 + 500_000)
        );
    }

    #[test]
    fn rejected_forms() {
        let bad = [
            "",
            "2025-01-01",
            "2025-01-01T00:00:00",
            "2025-01-01T00:00:00.250000",
            "2025-01-01 00:00:00",
            "garbage",
            "2025-1-01T00:00:00Z",
            "25-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-00-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-01-01T24:00:00Z",
            "2025-01-01T00:60:00Z",
            "2025-01-01T00:00:60Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00.1234567890Z",
            "2025-01-01T00:00:00+24:00",
            "2025-01-01T00:00:00+01:60",
            "2025-01-01T00:00:00+1",
            "2025-01-01T00:00:00+01:0",
            "2025-01-01T00:00:00+01:00:00",
            "2025-01-01T00:00:00ZZ",
            "2025-01-01T00:00:00Z ",
            " 2025-01-01T00:00:00Z",
            "2025-01-01X00:00:00Z",
            "2025-01-01T00:00:00 UTC",
            "20250101T000000Z",
            "2025-01-01T00:00:00\u{e9}",
            "２０２５-01-01T00:00:00Z",
        ];
        for s in bad {
            assert!(parse_iso8601(s).is_err(), "{s:?} should be rejected");
        }
        let e = parse_iso8601("2025-01-01T00:00:00").unwrap_err();
        assert!(e.to_string().contains("naive"), "{e}");
        let long = "\u{e9}".repeat(1000);
        assert!(parse_iso8601(&long).unwrap_err().to_string().len() < 200);
    }
}

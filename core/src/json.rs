//! The stored JSON of an event's values (`events.properties`, and the plaintext of
//! `events.sealed`): sorted keys, no whitespace, and each value spelled exactly as msgspec spells
//! it, so that rows stored before the core and rows stored by it are the same bytes.
//!
//! - strings: `"` and `\` escaped, control characters as `\b \f \n \r \t` or `\u00XX`, every
//!   other character (DEL, U+2028, emoji...) as its UTF-8;
//! - floats: the shortest text that reads back as the same double, in decimal notation when
//!   the decimal exponent is from -5 to 15 (`1.0`, `0.00001`, `9007199254740992.0`), else in
//!   scientific notation without a `+` (`1e16`, `1.5e-6`);
//! - times: RFC 3339 with the value's own offset (`Z` for UTC), microseconds only when not 0.

use std::fmt::Write;

use crate::calendar::{civil_from_days, days_from_civil};

/// `s` as a JSON string.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// An integer.
pub fn write_i64(out: &mut Vec<u8>, value: i64) {
    let mut text = String::with_capacity(20);
    let _ = write!(text, "{value}");
    out.extend_from_slice(text.as_bytes());
}

/// `true` or `false`.
pub fn write_bool(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

/// A finite double (the schemas' decoders refuse the others); `None` for NaN or an infinity.
pub fn write_f64(out: &mut Vec<u8>, value: f64) -> Option<()> {
    if !value.is_finite() {
        return None;
    }
    // ryu's shortest round-trip text (ties to even, as msgspec and Python's repr), read back
    // as its digits and decimal exponent and written in msgspec's notation.
    let mut buffer = ryu::Buffer::new();
    let (digits, exponent, negative) = shortest(buffer.format_finite(value))?;
    if negative {
        out.push(b'-');
    }
    if (-5..16).contains(&exponent) {
        if exponent >= 0 {
            let whole = usize::try_from(exponent).ok()? + 1;
            if digits.len() <= whole {
                out.extend_from_slice(digits.as_bytes());
                out.resize(out.len() + whole - digits.len(), b'0');
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits.as_bytes()[..whole]);
                out.push(b'.');
                out.extend_from_slice(&digits.as_bytes()[whole..]);
            }
        } else {
            let zeros = usize::try_from(-exponent).ok()? - 1;
            out.extend_from_slice(b"0.");
            out.resize(out.len() + zeros, b'0');
            out.extend_from_slice(digits.as_bytes());
        }
    } else {
        out.extend_from_slice(&digits.as_bytes()[..1]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits.as_bytes()[1..]);
        }
        let _ = write!(Text(out), "e{exponent}");
    }
    Some(())
}

/// (significant digits, decimal exponent of the first, negative?) of a number's text as ryu
/// writes it (`1.5e-7`, `0.0001`, `123.0`, `1e16`).
fn shortest(text: &str) -> Option<(String, i32, bool)> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, scale) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = [whole, fraction].concat();
    let leading = all.bytes().take_while(|b| *b == b'0').count();
    let digits = all[leading..].trim_end_matches('0');
    if digits.is_empty() {
        return Some(("0".to_owned(), 0, negative));
    }
    let point = i32::try_from(whole.len()).ok()? - i32::try_from(leading).ok()?;
    Some((digits.to_owned(), point - 1 + scale, negative))
}

/// A calendar time and its offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub microsecond: u32,
    /// Ahead of UTC, in seconds (negative west of Greenwich).
    pub offset_seconds: i32,
}

/// A time as a JSON string, msgspec's spelling: its own offset rounded to the minute (`Z` when
/// that is 0), microseconds only when not 0.
pub fn write_time(out: &mut Vec<u8>, t: &Time) {
    out.push(b'"');
    write_calendar(out, t);
    if t.microsecond != 0 {
        let _ = write!(Text(out), ".{:06}", t.microsecond);
    }
    // Rounded to the minute, a half minute down (an RFC 3339 offset has no seconds).
    let minutes = (t.offset_seconds.abs() + 29) / 60;
    if minutes == 0 {
        out.push(b'Z');
    } else {
        let sign = if t.offset_seconds < 0 { '-' } else { '+' };
        let _ = write!(Text(out), "{sign}{:02}:{:02}", minutes / 60, minutes % 60);
    }
    out.push(b'"');
}

/// The time in UTC as a stored time's text (`events.occurred_at`): RFC 3339, microseconds
/// always, `Z`. `None` when it falls outside years 1-9999 once in UTC.
pub fn utc_text(t: &Time) -> Option<String> {
    let utc = to_utc(t)?;
    let mut out = Vec::with_capacity(27);
    write_calendar(&mut out, &utc);
    let _ = write!(Text(&mut out), ".{:06}Z", utc.microsecond);
    String::from_utf8(out).ok()
}

fn write_calendar(out: &mut Vec<u8>, t: &Time) {
    let _ = write!(
        Text(out),
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second
    );
}

/// The same instant with offset 0.
pub fn to_utc(t: &Time) -> Option<Time> {
    if t.offset_seconds == 0 {
        return Some(*t);
    }
    let days = days_from_civil(t.year, t.month, t.day);
    let seconds =
        days * 86_400 + i64::from(t.hour) * 3_600 + i64::from(t.minute) * 60 + i64::from(t.second)
            - i64::from(t.offset_seconds);
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    Some(Time {
        year: i32::try_from(year).ok()?,
        month,
        day,
        hour: u8::try_from(second_of_day / 3_600).ok()?,
        minute: u8::try_from(second_of_day % 3_600 / 60).ok()?,
        second: u8::try_from(second_of_day % 60).ok()?,
        microsecond: t.microsecond,
        offset_seconds: 0,
    })
}

/// `write!` into a byte buffer.
struct Text<'a>(&'a mut Vec<u8>);

impl Write for Text<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(v: f64) -> String {
        let mut out = Vec::new();
        write_f64(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_as_msgspec_spells_them() {
        for (v, text) in [
            (1.0, "1.0"),
            (1e16, "1e16"),
            (1e15, "1000000000000000.0"),
            (1.5e-5, "0.000015"),
            (1e-5, "0.00001"),
            (1.5e-6, "1.5e-6"),
            (0.0001, "0.0001"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e300, "1e300"),
            (123456789012345678.0, "1.2345678901234568e17"),
            (0.1 + 0.2, "0.30000000000000004"),
            (5e-324, "5e-324"),
            (12.5, "12.5"),
            (-12.5, "-12.5"),
            (9007199254740992.0, "9007199254740992.0"),
            (1.234e-5, "0.00001234"),
            (-1.5e16, "-1.5e16"),
            // Exact ties between two shortest spellings go to the even digit, as in Python.
            (811212085039910.2, "811212085039910.2"),
            (-1929377421321310.2, "-1929377421321310.2"),
            (1e-7, "1e-7"),
            (123.0, "123.0"),
            (1e23, "1e23"),
            (f64::MAX, "1.7976931348623157e308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        ] {
            assert_eq!(float(v), text, "{v:?}");
        }
        assert!(write_f64(&mut Vec::new(), f64::NAN).is_none());
        assert!(write_f64(&mut Vec::new(), f64::INFINITY).is_none());
    }

    #[test]
    fn strings_escaped_as_msgspec_does() {
        let mut out = Vec::new();
        write_str(
            &mut out,
            "a\"\\\u{0}\u{1f}\u{7f}\u{2028}é\n\t\u{8}\u{c}\r\u{1b}😀",
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"\\\\\\u0000\\u001f\u{7f}\u{2028}é\\n\\t\\b\\f\\r\\u001b😀\""
        );
    }

    fn time(offset_seconds: i32, microsecond: u32) -> Time {
        Time {
            year: 2026,
            month: 1,
            day: 2,
            hour: 3,
            minute: 4,
            second: 5,
            microsecond,
            offset_seconds,
        }
    }

    fn time_text(t: &Time) -> String {
        let mut out = Vec::new();
        write_time(&mut out, t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn times_with_their_offset() {
        assert_eq!(time_text(&time(0, 0)), "\"2026-01-02T03:04:05Z\"");
        assert_eq!(
            time_text(&time(19_800, 120)),
            "\"2026-01-02T03:04:05.000120+05:30\""
        );
        assert_eq!(
            time_text(&time(-3_600, 123_456)),
            "\"2026-01-02T03:04:05.123456-01:00\""
        );
        for (seconds, offset) in [
            (30, "Z"),
            (-30, "Z"),
            (31, "+00:01"),
            (90, "+00:01"),
            (150, "+00:02"),
            (-119, "-00:02"),
            (-3_631, "-01:01"),
            (18_059, "+05:01"),
        ] {
            assert_eq!(
                time_text(&time(seconds, 0)),
                format!("\"2026-01-02T03:04:05{offset}\""),
                "{seconds}"
            );
        }
    }

    #[test]
    fn utc_text_moves_across_days_months_and_years() {
        assert_eq!(
            utc_text(&time(0, 0)).unwrap(),
            "2026-01-02T03:04:05.000000Z"
        );
        assert_eq!(
            utc_text(&time(14 * 3_600, 7)).unwrap(),
            "2026-01-01T13:04:05.000007Z"
        );
        let new_year = Time {
            year: 2025,
            month: 12,
            day: 31,
            hour: 23,
            minute: 30,
            second: 0,
            microsecond: 0,
            offset_seconds: -3_600,
        };
        assert_eq!(utc_text(&new_year).unwrap(), "2026-01-01T00:30:00.000000Z");
        let leap = Time {
            year: 2024,
            month: 3,
            day: 1,
            hour: 0,
            minute: 15,
            second: 0,
            microsecond: 0,
            offset_seconds: 3_600,
        };
        assert_eq!(utc_text(&leap).unwrap(), "2024-02-29T23:15:00.000000Z");
        let first = Time {
            year: 1,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            microsecond: 0,
            offset_seconds: 3_600,
        };
        assert!(utc_text(&first).is_none());
    }
}

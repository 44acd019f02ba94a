//! RFC 3339 times as events carry them: `YYYY-MM-DD`, `T` (or `t` or a space), `HH:MM:SS`,
//! an optional fraction (rounded half up to microseconds), and a zone (`Z`, `z`, `+HH:MM`,
//! `+HHMM`), or none (a naive time, which the callers refuse where a zone is needed).

/// A calendar time as written, and its offset from UTC in minutes when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub micro: u32,
    pub offset: Option<i32>,
}

use crate::calendar::{civil_from_days, days_from_civil};

const MICROS_PER_DAY: i64 = 86_400_000_000;

fn leap(year: i32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(year: i32, month: u8) -> u8 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Time {
    /// Microseconds since the Unix epoch of the time as written, as if it were UTC.
    fn local_micros(&self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        let secs =
            i64::from(self.hour) * 3600 + i64::from(self.minute) * 60 + i64::from(self.second);
        days * MICROS_PER_DAY + secs * 1_000_000 + i64::from(self.micro)
    }

    /// Microseconds since the Unix epoch (UTC), for an aware time.
    pub fn epoch_micros(&self) -> Option<i64> {
        self.offset
            .map(|minutes| self.local_micros() - i64::from(minutes) * 60_000_000)
    }

    /// The year of the UTC form of an aware time (which may fall outside 1-9999).
    pub fn utc_year(&self) -> Option<i64> {
        self.epoch_micros()
            .map(|us| civil_from_days(us.div_euclid(MICROS_PER_DAY)).0)
    }
}

fn num(s: &[u8], at: usize, len: usize) -> Option<u32> {
    let digits = s.get(at..at + len)?;
    digits.iter().try_fold(0u32, |v, d| {
        d.is_ascii_digit().then(|| v * 10 + u32::from(d - b'0'))
    })
}

/// The time `text` spells, or None when it is not RFC 3339.
pub fn parse(text: &str) -> Option<Time> {
    let s = text.as_bytes();
    let year = num(s, 0, 4)?;
    let month = num(s, 5, 2)?;
    let day = num(s, 8, 2)?;
    let hour = num(s, 11, 2)?;
    let minute = num(s, 14, 2)?;
    let second = num(s, 17, 2)?;
    if s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let year = i32::try_from(year).ok()?;
    let (month, day) = (u8::try_from(month).ok()?, u8::try_from(day).ok()?);
    let (hour, minute, second) = (
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
    );
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut at = 19;
    let mut micro = 0u32;
    let mut round_up = false;
    if s.get(at) == Some(&b'.') {
        at += 1;
        let first = at;
        while s.get(at).is_some_and(u8::is_ascii_digit) {
            let d = u32::from(s[at] - b'0');
            match at - first {
                0..=5 => micro = micro * 10 + d,
                6 => round_up = d >= 5,
                _ => {}
            }
            at += 1;
        }
        let n = at - first;
        if n == 0 {
            return None;
        }
        for _ in n..6 {
            micro *= 10;
        }
    }
    let offset = match &s[at..] {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (h, m) = match rest.len() {
                5 if rest[2] == b':' => (num(rest, 0, 2)?, num(rest, 3, 2)?),
                4 => (num(rest, 0, 2)?, num(rest, 2, 2)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = i32::try_from(h * 60 + m).ok()?;
            Some(if *sign == b'-' { -minutes } else { minutes })
        }
        _ => return None,
    };
    let mut time = Time {
        year,
        month,
        day,
        hour,
        minute,
        second,
        micro,
        offset,
    };
    if round_up {
        time = time.plus_one_micro()?;
    }
    Some(time)
}

impl Time {
    /// The next microsecond (a rounded fraction carries), None past the year 9999.
    fn plus_one_micro(mut self) -> Option<Self> {
        self.micro += 1;
        if self.micro < 1_000_000 {
            return Some(self);
        }
        self.micro = 0;
        self.second += 1;
        if self.second < 60 {
            return Some(self);
        }
        self.second = 0;
        self.minute += 1;
        if self.minute < 60 {
            return Some(self);
        }
        self.minute = 0;
        self.hour += 1;
        if self.hour < 24 {
            return Some(self);
        }
        self.hour = 0;
        self.day += 1;
        if self.day <= days_in(self.year, self.month) {
            return Some(self);
        }
        self.day = 1;
        self.month += 1;
        if self.month <= 12 {
            return Some(self);
        }
        self.month = 1;
        self.year += 1;
        (self.year <= 9999).then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_instant() {
        let z = parse("2026-01-01T11:00:00Z").unwrap();
        let plus = parse("2026-01-01t12:00:00+0100").unwrap();
        let minus = parse("2026-01-01 10:30:00.000000-00:30").unwrap();
        assert_eq!(z.epoch_micros(), plus.epoch_micros());
        assert_eq!(z.epoch_micros(), minus.epoch_micros());
        assert_eq!(z.epoch_micros(), Some(1_767_265_200_000_000));
        assert_eq!(parse("2026-01-01T11:00:00").unwrap().offset, None);
    }

    #[test]
    fn fractions_round_half_up_and_carry() {
        assert_eq!(parse("2026-01-01T11:00:00.0000005Z").unwrap().micro, 1);
        assert_eq!(parse("2026-01-01T11:00:00.00000049Z").unwrap().micro, 0);
        let carried = parse("2026-12-31T23:59:59.9999995Z").unwrap();
        assert_eq!((carried.year, carried.month, carried.day), (2027, 1, 1));
        assert_eq!(parse("9999-12-31T23:59:59.9999999Z"), None);
    }

    #[test]
    fn what_is_not_rfc_3339() {
        for bad in [
            "2026-01-01",
            "2026-01-01T11:00Z",
            "2026-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T11:00:60Z",
            "2026-01-01T11:00:00+24:00",
            "2026-01-01T11:00:00+23",
            "2026-01-01T11:00:00.Z",
            "2026-01-01T11:00:00 Z",
            "+2026-01-01T11:00:00Z",
            "2026-01-01T11:00:00ZZ",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert!(parse("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn utc_years_at_the_calendar_edges() {
        assert_eq!(
            parse("0001-01-01T00:00:00+01:00").unwrap().utc_year(),
            Some(0)
        );
        assert_eq!(
            parse("9999-12-31T23:59:59-01:00").unwrap().utc_year(),
            Some(10000)
        );
        assert_eq!(
            parse("1970-01-01T00:00:00Z").unwrap().utc_year(),
            Some(1970)
        );
    }
}

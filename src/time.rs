//! Time as cairn stores it: unix milliseconds, UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::error::{Error, Result};

/// A point in time, in milliseconds since the unix epoch (UTC).
///
/// ```
/// use cairn::Timestamp;
/// let t = Timestamp::from_millis(1_700_000_000_000);
/// assert!(t < Timestamp::now());
/// // Parsed from RFC 3339, or a date (midnight UTC):
/// let t: Timestamp = "2026-01-05T10:30:00+01:00".parse()?;
/// assert_eq!(t, "2026-01-05T09:30:00Z".parse()?);
/// assert_eq!("2026-01-05".parse::<Timestamp>()?, "2026-01-05T00:00:00Z".parse()?);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// From milliseconds since the unix epoch.
    pub fn from_millis(millis: i64) -> Self {
        Timestamp(millis)
    }

    /// Milliseconds since the unix epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let millis = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => clamp_millis(after),
            Err(before) => -clamp_millis(before.duration()),
        };
        Timestamp(millis)
    }
}

fn clamp_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = Error;

    /// Parses an RFC 3339 date-time (`2026-01-05T10:30:00Z`, `2026-01-05 10:30:00.250+01:00`;
    /// fractions below a millisecond are dropped) or a date alone (`2026-01-05`, midnight
    /// UTC). ISO 8601's shorter forms are accepted too: no seconds (`2026-01-05T10:30Z`),
    /// no offset (UTC), an offset as `+0100` or `+01`. Anything else is
    /// [`Error::InvalidInput`] naming `time`.
    fn from_str(text: &str) -> Result<Timestamp> {
        parse(text.trim()).ok_or_else(|| {
            Error::invalid_input(
                "time",
                format!(
                    "{text:?} is neither RFC 3339 (2026-01-05T10:30:00Z) nor a date (2026-01-05)"
                ),
            )
        })
    }
}

/// The parser behind [`Timestamp`]'s `FromStr`; `None` for anything malformed or out of
/// range.
fn parse(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if b.len() == 10 {
        return Some(Timestamp(days * 86_400_000));
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (digits(11..13)?, digits(14..16)?);
    // Seconds (and a fraction after them) may be left out.
    let mut i = 16;
    let mut second = 0;
    let mut millis = 0;
    if b.get(i) == Some(&b':') {
        second = digits(17..19)?;
        i = 19;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
            let fraction = &text[start..i.min(start + 3)];
            millis = fraction.parse::<i64>().ok()? * 10_i64.pow(3 - fraction.len() as u32);
        }
    }
    // A leap second (60) is accepted, as RFC 3339 allows, and lands on the next minute.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // `Z`, none (UTC), `+HH:MM`, `+HHMM` or `+HH`.
    let offset = |h: std::ops::Range<usize>, m: Option<std::ops::Range<usize>>| {
        let (h, m) = (digits(h)?, m.map_or(Some(0), &digits)?);
        (h <= 23 && m <= 59).then_some(h * 60 + m)
    };
    let offset_minutes = match b.get(i..)? {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let minutes = match rest {
                [_, _] => offset(i + 1..i + 3, None)?,
                [_, _, _, _] => offset(i + 1..i + 3, Some(i + 3..i + 5))?,
                [_, _, b':', _, _] => offset(i + 1..i + 3, Some(i + 4..i + 6))?,
                _ => return None,
            };
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(Timestamp(seconds * 1000 + millis))
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A duration in whole microseconds (saturating), for trace fields.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_time_round_trip() {
        let t = Timestamp::from(UNIX_EPOCH + Duration::from_millis(1234));
        assert_eq!(t.as_millis(), 1234);
        let before = Timestamp::from(UNIX_EPOCH - Duration::from_millis(5));
        assert_eq!(before.as_millis(), -5);
    }

    fn millis(text: &str) -> i64 {
        text.parse::<Timestamp>()
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .as_millis()
    }

    #[test]
    fn rfc_3339_and_dates_parse() {
        assert_eq!(millis("1970-01-01"), 0);
        assert_eq!(millis("1970-01-01T00:00:00Z"), 0);
        assert_eq!(millis("2026-11-23T04:50:01Z"), 1_795_409_401_000);
        assert_eq!(millis("2026-11-23t04:50:01z"), 1_795_409_401_000);
        assert_eq!(millis("2026-11-23 04:50:01.5Z"), 1_795_409_401_500);
        assert_eq!(millis("2026-11-23T04:50:01.123456789Z"), 1_795_409_401_123);
        assert_eq!(millis("2026-11-23T05:50:01+01:00"), 1_795_409_401_000);
        assert_eq!(millis("2026-11-22T23:20:01-05:30"), 1_795_409_401_000);
        assert_eq!(millis("2000-02-29"), 951_782_400_000);
        assert_eq!(millis("1969-12-31T23:59:59Z"), -1000);
        assert_eq!(millis(" 2026-01-05 "), millis("2026-01-05T00:00:00Z"));
        // ISO 8601's shorter forms.
        let full = millis("2026-01-05T10:30:00Z");
        for short in [
            "2026-01-05T10:30Z",
            "2026-01-05T10:30:00",
            "2026-01-05 10:30",
            "2026-01-05T11:30:00+0100",
            "2026-01-05T11:30+01",
            "2026-01-05T05:30-05:00",
        ] {
            assert_eq!(millis(short), full, "{short}");
        }
    }

    #[test]
    fn malformed_times_are_refused_naming_the_field() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2025-02-29",
            "2026-1-5",
            "2026-01-05T10",
            "2026-01-05T24:00:00Z",
            "2026-01-05T10:30.5Z",
            "2026-01-05T10:30:00.Z",
            "2026-01-05T10:30:00+1:00",
            "2026-01-05T10:30:00+01:0",
            "2026-01-05T10:30:00+24:00",
            "2026-01-05T10:30:00Zjunk",
            "2026-01-05X",
            "1732233600",
            "+2026-01-05",
        ] {
            let e = bad.parse::<Timestamp>().unwrap_err();
            assert!(
                e.is_invalid_input() && e.to_string().contains("time"),
                "{bad:?}: {e}"
            );
        }
    }
}

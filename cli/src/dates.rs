//! ISO 8601 instants in arguments (`search_memory`'s `since`, `until`, `valid_at`): a
//! date, `2026-11-30` (midnight UTC), or a date and time, `2026-11-30T14:05:00Z`, with
//! optional seconds and fraction and an offset (`Z`, `+02:00`, `-0500`; none means UTC).
//! Written by hand because these are the only dates cairn reads, and a calendar crate
//! would be the largest dependency of the binary for one function.

use cairn::Timestamp;

/// What an unparseable instant is told it should look like.
const EXPECTED: &str = "an ISO 8601 date or time, e.g. 2026-11-30 or 2026-11-30T14:05:00Z";

/// Parses `text` as an instant; the error says what was expected.
pub(crate) fn parse(text: &str) -> Result<Timestamp, String> {
    parse_instant(text.trim()).ok_or_else(|| format!("{text:?} is not {EXPECTED}"))
}

fn parse_instant(text: &str) -> Option<Timestamp> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(Timestamp::from_millis(millis));
    }
    // `T`, `t` or a space, then HH:MM, optional :SS and .fraction, then an offset.
    if !matches!(rest[0], b'T' | b't' | b' ') || rest.len() < 6 || rest[3] != b':' {
        return None;
    }
    let hour = digits(&rest[1..3])?;
    let minute = digits(&rest[4..6])?;
    let mut at = 6;
    let mut second = 0;
    if rest.get(at) == Some(&b':') {
        second = digits(rest.get(at + 1..at + 3)?)?;
        at += 3;
        if rest.get(at) == Some(&b'.') {
            let fraction_digits = rest[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if fraction_digits == 0 {
                return None;
            }
            // Milliseconds: the first three digits, the rest truncated.
            let kept = &rest[at + 1..at + 1 + fraction_digits.min(3)];
            let scale = [100, 10, 1][kept.len() - 1];
            millis += digits(kept)? * scale;
            at += 1 + fraction_digits;
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    millis += ((hour * 60 + minute) * 60 + second.min(59)) * 1000;
    let offset = offset_minutes(&rest[at..])?;
    Some(Timestamp::from_millis(millis - offset * 60_000))
}

/// `Z`, nothing (UTC), `+HH:MM`, `+HHMM` or `+HH`, in minutes east of UTC.
fn offset_minutes(b: &[u8]) -> Option<i64> {
    match b {
        [] | [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (hours, minutes) = match rest {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, m1, m2] | [h1, h2, b':', m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            let minutes = hours * 60 + minutes;
            Some(if *sign == b'-' { -minutes } else { minutes })
        }
        _ => None,
    }
}

/// A run of ASCII digits as a number; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::iso;

    fn at(text: &str) -> String {
        iso(parse(text).unwrap())
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(at("1970-01-01"), "1970-01-01T00:00:00Z");
        assert_eq!(at("2026-11-23T04:50:01Z"), "2026-11-23T04:50:01Z");
        assert_eq!(at("2000-02-29"), "2000-02-29T00:00:00Z");
        assert_eq!(at("2026-11-23 04:50"), "2026-11-23T04:50:00Z");
        assert_eq!(at("2026-11-23T06:50:01+02:00"), "2026-11-23T04:50:01Z");
        assert_eq!(at("2026-11-22T23:50:01-0500"), "2026-11-23T04:50:01Z");
        assert_eq!(at("1969-12-31T23:59:59Z"), "1969-12-31T23:59:59Z");
        assert_eq!(
            parse("2026-11-23T04:50:01.25Z").unwrap().as_millis() % 1000,
            250
        );
        assert_eq!(
            parse("2026-11-23T04:50:01.123456Z").unwrap().as_millis() % 1000,
            123
        );
    }

    #[test]
    fn what_is_not_a_date_is_refused_with_an_example() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-29",
            "2026-11-31",
            "2026-11-23T25:00Z",
            "2026-11-23T04:50:01.Z",
            "2026-11-23T04:50+2:00",
            "2026-11-23X",
            "1732233600",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("2026-11-30T14:05:00Z"), "{bad}: {err}");
        }
    }
}

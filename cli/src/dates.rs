//! ISO 8601 instants in arguments (`search_memory`'s `since`, `until`, `valid_at`): a
//! date, `2026-11-30` (midnight UTC), or a date and time, `2026-11-30T14:05:00Z`, with
//! optional seconds and fraction and an offset (`Z`, `+02:00`, `-0500`; none means UTC).
//! The parsing is the library's (`Timestamp`'s `FromStr`), which the command line's
//! `--since`, `--until`, `--valid-at` and `--at` use too; this gives it the MCP tools'
//! error message.

use cairn::Timestamp;

/// What an unparseable instant is told it should look like.
const EXPECTED: &str = "an ISO 8601 date or time, e.g. 2026-11-30 or 2026-11-30T14:05:00Z";

/// Parses `text` as an instant; the error says what was expected.
pub(crate) fn parse(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>()
        .map_err(|_| format!("{text:?} is not {EXPECTED}"))
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

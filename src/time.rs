//! Time as cairn stores it: unix milliseconds, UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// A point in time, in milliseconds since the unix epoch (UTC).
///
/// ```
/// use cairn::Timestamp;
/// let t = Timestamp::from_millis(1_700_000_000_000);
/// assert!(t < Timestamp::now());
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
}

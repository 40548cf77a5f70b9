//! Recognizing a cairn file and bringing its schema up to date.
//!
//! The schema version lives in `PRAGMA user_version`; `PRAGMA application_id` marks the
//! file as cairn's. Each migration runs in its own `BEGIN IMMEDIATE` and re-reads the
//! version inside it, so several processes opening one new file at once migrate it once.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// `PRAGMA application_id` of every cairn file: ASCII "carn".
pub(crate) const APPLICATION_ID: i64 = 0x6361_726E;

/// Migration `i` (0-based) brings the file from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema/0001_core.sql"),
    include_str!("schema/0002_documents.sql"),
    include_str!("schema/0003_vectors.sql"),
    include_str!("schema/0004_idempotency.sql"),
    include_str!("schema/0005_document_about.sql"),
    include_str!("schema/0006_name_keys.sql"),
    include_str!("schema/0007_fact_sources.sql"),
];

/// The schema version this build writes and understands.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Checks that `conn` holds a cairn memory (or an empty file) of a version this build can
/// use, and migrates it unless `read_only`.
pub(crate) fn prepare(conn: &Connection, path: &Path, read_only: bool) -> Result<()> {
    let version = probe(conn, path)?;
    if version > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if read_only {
        return Err(Error::NeedsMigration {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        apply(conn, from as i64, sql)?;
    }
    Ok(())
}

/// Reads the schema version, refusing garbage and other applications' databases.
fn probe(conn: &Connection, path: &Path) -> Result<i64> {
    let header = conn.query_row(
        "SELECT (SELECT user_version FROM pragma_user_version),
                (SELECT application_id FROM pragma_application_id),
                (SELECT count(*) FROM sqlite_schema)",
        [],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
            ))
        },
    );
    let (version, app_id, objects) = header?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(foreign(path, format!("application_id is {app_id:#x}")));
    }
    if app_id == 0 && objects > 0 {
        return Err(foreign(
            path,
            format!("it already holds {objects} schema objects"),
        ));
    }
    Ok(version)
}

fn apply(conn: &Connection, from: i64, sql: &str) -> Result<()> {
    crate::db::write::begin_immediate(conn, std::time::Duration::from_secs(30))?;
    let result = (|| {
        let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current != from {
            // Another process migrated while we waited for the lock.
            return Ok(());
        }
        conn.execute_batch(sql)?;
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {};",
            from + 1
        ))?;
        Ok(())
    })();
    crate::db::write::finish(conn, result)
}

fn foreign(path: &Path, reason: String) -> Error {
    Error::ForeignDatabase {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory_conn() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn fresh_file_migrates_to_latest() {
        let conn = memory_conn();
        prepare(&conn, Path::new(":memory:"), false).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        // Idempotent.
        prepare(&conn, Path::new(":memory:"), false).unwrap();
    }

    #[test]
    fn newer_version_is_refused() {
        let conn = memory_conn();
        prepare(&conn, Path::new(":memory:"), false).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
            .unwrap();
        let err = prepare(&conn, Path::new(":memory:"), false).unwrap_err();
        assert!(matches!(err, Error::NewerSchema { found, .. } if found == SCHEMA_VERSION + 1));
    }

    #[test]
    fn other_applications_databases_are_refused() {
        let conn = memory_conn();
        conn.execute_batch("CREATE TABLE invoices(id INTEGER PRIMARY KEY)")
            .unwrap();
        assert!(matches!(
            prepare(&conn, Path::new(":memory:"), false),
            Err(Error::ForeignDatabase { .. })
        ));
        let conn = memory_conn();
        conn.execute_batch("PRAGMA application_id = 42").unwrap();
        assert!(matches!(
            prepare(&conn, Path::new(":memory:"), false),
            Err(Error::ForeignDatabase { .. })
        ));
    }

    #[test]
    fn read_only_open_does_not_migrate() {
        let conn = memory_conn();
        assert!(matches!(
            prepare(&conn, Path::new(":memory:"), true),
            Err(Error::NeedsMigration { found: 0, .. })
        ));
    }
}

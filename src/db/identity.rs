//! The file's identity: a random 128-bit id created by the first writable open and kept
//! in `meta` (key `file_id`). The derived index records the id it was built from, so an
//! index left beside a file that was replaced (another memory copied over it) is told
//! apart from the file's own. A copy made by `backup` keeps the id: it is the same
//! memory, and an index ahead of a restored copy's history is caught by its position.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;

/// The `meta` key of the id.
const KEY: &str = "file_id";

/// Creates the id if the file has none yet (concurrent first opens agree on one: the
/// first insert wins).
pub(crate) fn ensure(conn: &Connection) -> Result<()> {
    if read(conn)?.is_none() {
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, lower(hex(randomblob(16))))",
            [KEY],
        )?;
    }
    Ok(())
}

/// The file's id; `None` in a file no writer has opened since ids exist (read-only so far).
pub(crate) fn read(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [KEY], |r| r.get(0))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_created_once_and_random() {
        let conn = Connection::open_in_memory().unwrap();
        crate::db::migrate::prepare(&conn, std::path::Path::new(":memory:"), false).unwrap();
        assert_eq!(read(&conn).unwrap(), None);
        ensure(&conn).unwrap();
        let id = read(&conn).unwrap().unwrap();
        assert_eq!(id.len(), 32, "{id}");
        ensure(&conn).unwrap();
        assert_eq!(read(&conn).unwrap().as_deref(), Some(id.as_str()));
        let other = Connection::open_in_memory().unwrap();
        crate::db::migrate::prepare(&other, std::path::Path::new(":memory:"), false).unwrap();
        ensure(&other).unwrap();
        assert_ne!(read(&other).unwrap(), Some(id));
    }
}

//! The only `unsafe` code of cairn: calls into SQLite's C API that rusqlite does not wrap.
//!
//! The library itself forbids `unsafe`; what it needs of the C API beyond rusqlite lives
//! here, one small function per call, each with the reason it is sound.

/// The OS error number (`errno`) SQLite recorded for the last system call that failed on
/// `conn`'s files, or `None` if it recorded none.
///
/// SQLite keeps it per connection (`sqlite3_system_errno`); the extended result code of
/// an I/O error says which call failed (`SQLITE_IOERR_FSYNC`), this says why (`EIO`,
/// `ENOSPC`). It can be left over from an earlier failure, so read it only right after a
/// failed call of an I/O kind.
pub fn system_errno(conn: &rusqlite::Connection) -> Option<i32> {
    // SAFETY: `handle()` is the connection's open `sqlite3*`, valid while `conn` is
    // borrowed; `sqlite3_system_errno` only reads a field of it and is safe to call at any
    // time on an open connection (it takes the connection's mutex itself).
    let errno = unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) };
    (errno != 0).then_some(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_connection_has_no_errno() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        assert_eq!(system_errno(&conn), None);
    }

    #[test]
    fn a_failed_open_records_the_os_error() {
        let dir = std::env::temp_dir().join(format!("cairn-ffi-{}", std::process::id()));
        // A database path inside a folder that does not exist: open(2) fails with ENOENT.
        let path = dir.join("missing").join("a.db");
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
        let conn = rusqlite::Connection::open_with_flags(&path, flags);
        assert!(conn.is_err());
        // The connection is gone with the error; a connection that failed a statement
        // on a real file is what callers use. Open one on a file, then make it fail.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let attached = conn.execute(
            "ATTACH DATABASE ?1 AS other",
            [path.to_string_lossy().as_ref()],
        );
        assert!(attached.is_err());
        assert_eq!(system_errno(&conn), Some(2), "ENOENT");
    }
}

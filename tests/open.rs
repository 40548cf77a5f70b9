//! Opening files: what cairn accepts, what it refuses, and how.

mod common;

use cairn::{Error, Memory, Options};

#[test]
fn a_newer_schema_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    Memory::open(&path)
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA user_version = 9999").unwrap();
    drop(conn);
    match Memory::open(&path) {
        Err(Error::NewerSchema {
            found: 9999,
            supported,
        }) => assert!(supported < 9999),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 9999, "an older cairn never downgrades the file");
}

#[test]
fn a_garbage_file_is_refused_with_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    let junk: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, &junk).unwrap();
    let result = Memory::open(&path);
    assert!(
        matches!(result, Err(Error::NotADatabase { .. })),
        "{result:?}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        junk,
        "the file was not modified"
    );
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL)")
        .unwrap();
    drop(conn);
    assert!(matches!(
        Memory::open(&path),
        Err(Error::ForeignDatabase { .. })
    ));
}

#[test]
fn in_memory_paths_are_refused() {
    assert!(Memory::open(":memory:").unwrap_err().is_invalid_input());
}

#[test]
fn the_file_is_in_wal_mode_with_the_schema_version_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal.db");
    let _memory = Memory::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), version), ("wal", 4));
}

#[test]
fn read_only_memories_refuse_writes_but_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.db");
    Memory::open(&path)
        .unwrap()
        .add_triple(("A", "r", "B"))
        .unwrap();
    let ro = Options::new().read_only(true).open(&path).unwrap();
    assert!(ro.resolve("a").unwrap().is_some());
    assert!(matches!(
        ro.add_triple(("C", "r", "D")),
        Err(Error::ReadOnly)
    ));
    assert!(matches!(ro.ensure_entity("new"), Err(Error::ReadOnly)));
    assert_eq!(ro.stats().unwrap().entities, 2);
}

#[test]
fn ephemeral_memories_clean_up_after_themselves() {
    let memory = Memory::ephemeral().unwrap();
    memory.add_triple(("A", "r", "B")).unwrap();
    let path = memory.path().to_owned();
    let clone = memory.clone();
    drop(memory);
    assert!(path.exists(), "a clone still holds it");
    std::thread::spawn(move || clone.ensure_entity("from another thread").unwrap())
        .join()
        .unwrap();
    assert!(!path.exists(), "removed when the last handle dropped");
}

#[test]
fn busy_writers_get_a_typed_retryable_error_after_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let memory = Options::new()
        .busy_timeout(std::time::Duration::from_millis(200))
        .open(&path)
        .unwrap();
    // Another process (stand-in: a raw connection) holds the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = memory.add_triple(("A", "r", "B")).unwrap_err();
    assert!(err.is_busy() && err.is_retryable(), "{err:?}");
    other.execute_batch("COMMIT").unwrap();
    memory.add_triple(("A", "r", "B")).unwrap();
}

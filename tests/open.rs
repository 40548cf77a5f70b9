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
        matches!(result, Err(Error::NotADatabase { .. }))
            // An encryption build cannot tell garbage from a file encrypted with a key.
            || cfg!(feature = "encryption") && matches!(result, Err(Error::KeyRequired { .. })),
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
    assert_eq!((mode.as_str(), version), ("wal", 7));
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

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A file restored or copied over the one its index was built from: the index is ahead of
/// the file's log, and following the log from there would skip this file's rows.
#[test]
fn an_index_ahead_of_its_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (long, short) = (dir.path().join("long.db"), dir.path().join("short.db"));
    let memory = Memory::open(&long).unwrap();
    for i in 0..20 {
        memory
            .add_triple((format!("Old {i}").as_str(), "knows", "Ann"))
            .unwrap();
    }
    memory.sync().unwrap();
    drop(memory);
    let memory = Memory::open(&short).unwrap();
    memory.add_triple(("Zebra", "eats", "Grass")).unwrap();
    memory.sync().unwrap();
    drop(memory);
    let index = |db: &std::path::Path| {
        let mut p = db.as_os_str().to_owned();
        p.push(".index");
        std::path::PathBuf::from(p)
    };
    std::fs::remove_dir_all(index(&short)).unwrap();
    copy_dir(&index(&long), &index(&short));

    let memory = Memory::open(&short).unwrap();
    memory.sync().unwrap();
    // The open that found the other history reports it (the index is rebuilt already).
    let report = memory.verify(cairn::VerifyMode::Full).unwrap();
    assert!(
        report.problems.iter().all(|p| p.check == "index_history") && !report.is_ok(),
        "{:?}",
        report.problems
    );
    assert!(report.index_compared && report.index_seq == report.last_seq);
    let options = cairn::SearchOptions::new().read_your_writes(true);
    let hits = memory.search("zebra", &options).unwrap();
    assert!(hits.iter().any(|h| h.text.contains("Zebra")), "{hits:?}");
    assert!(memory.search("old", &options).unwrap().is_empty());
}

#[test]
fn restore_refuses_an_orphan_wal_and_drops_an_orphan_index() {
    let dir = tempfile::tempdir().unwrap();
    let source = Memory::open(dir.path().join("a.db")).unwrap();
    source.add_triple(("Ann", "knows", "Bob")).unwrap();
    let backup = dir.path().join("a.backup");
    source.backup(&backup).unwrap();
    let to = dir.path().join("b.db");
    std::fs::write(dir.path().join("b.db-wal"), b"a log of some other file").unwrap();
    let err = Memory::restore(&backup, &to).unwrap_err();
    assert!(
        err.is_invalid_input() && err.to_string().contains("b.db-wal"),
        "{err}"
    );
    assert!(!to.exists(), "nothing was written");
    std::fs::remove_file(dir.path().join("b.db-wal")).unwrap();
    std::fs::create_dir_all(dir.path().join("b.db.index/stale")).unwrap();
    let restored = Memory::restore(&backup, &to).unwrap();
    assert!(!dir.path().join("b.db.index/stale").exists());
    assert!(restored.resolve("ann").unwrap().is_some());
}

/// Entry point for child processes; runs only when spawned with `--ignored`.
#[test]
#[ignore = "entry point for child processes spawned by other tests"]
fn child_process() {
    let path = std::env::var("CAIRN_CHILD_DB").expect("CAIRN_CHILD_DB");
    let seed: u64 = std::env::var("CAIRN_CHILD_SEED").unwrap().parse().unwrap();
    match std::env::var("CAIRN_CHILD_TASK").as_deref() {
        Ok("open-and-write") => match Memory::open(&path) {
            Ok(m) => match m.add_triple((format!("Starter {seed}").as_str(), "opened", "the file"))
            {
                Ok(_) => println!("CHILD-OK"),
                Err(e) => println!("CHILD-FAILED write: {e}"),
            },
            Err(e) => println!("CHILD-FAILED open: {e}"),
        },
        other => panic!("unknown task {other:?}"),
    }
}

#[test]
fn thirty_two_processes_start_on_a_brand_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let children: Vec<_> = (0..32)
        .map(|seed| common::spawn_child("open-and-write", &path, seed))
        .collect();
    let mut failures = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !stdout.contains("CHILD-OK") {
            failures.push(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 32 failed: {failures:#?}",
        failures.len()
    );
    let m = Memory::open(&path).unwrap();
    assert_eq!(m.stats().unwrap().relations, 32);
}

#[test]
fn keys_from_before_schema_6_are_recomputed_and_their_duplicates_merged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old-keys.db");
    let m = Memory::open(&path).unwrap();
    m.add_triple(("Acme Corp", "acquired", "Widget Inc"))
        .unwrap();
    drop(m);
    // What a cairn before schema 6 wrote for two spellings it did not fold together:
    // keys with a variation selector and a direction mark left in them.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "INSERT INTO entity(id, name, created_at, updated_at) VALUES (100, 'Acme Corp\u{fe0f}', 1, 1);
         INSERT INTO alias(key, entity_id, name, created_at) VALUES ('acme corp\u{fe0f}', 100, 'Acme Corp\u{fe0f}', 1);
         INSERT INTO observation(entity_id, text, created_at) VALUES (100, 'Founded in 1999', 1);
         INSERT INTO entity(id, name, created_at, updated_at) VALUES (101, '\u{200e}Globex', 1, 1);
         INSERT INTO alias(key, entity_id, name, created_at) VALUES ('\u{200e}globex', 101, '\u{200e}Globex', 1);
         INSERT INTO meta(key, value) VALUES ('rekey_aliases', '1');",
    )
    .unwrap();
    drop(conn);

    let m = Memory::open(&path).unwrap();
    let acme = m.resolve("Acme Corp").unwrap().unwrap();
    assert_eq!(m.resolve("Acme Corp\u{fe0f}").unwrap(), Some(acme));
    assert!(m.entity(cairn::EntityId::from_raw(100)).unwrap().is_none());
    let facts: Vec<String> = m
        .observations(acme)
        .unwrap()
        .into_iter()
        .map(|o| o.text)
        .collect();
    assert_eq!(facts, ["Founded in 1999"], "the duplicate's facts moved");
    assert_eq!(
        m.resolve("Globex").unwrap(),
        Some(cairn::EntityId::from_raw(101)),
        "a key without a rival is rewritten in place"
    );
    let report = m.verify(cairn::VerifyMode::Quick).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(m.stats().unwrap().entities, 3);
}

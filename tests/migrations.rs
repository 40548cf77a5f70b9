//! A file written by schema version 1 (`tests/fixtures/schema-v1.db`: three entities,
//! an extra alias, two relations, an observation, an episode and its change log, made
//! with `src/db/schema/0001_core.sql` alone) opens, migrates to the current version,
//! verifies, and keeps its data.

use cairn::{Memory, SearchOptions, VerifyMode};

#[test]
fn a_version_1_file_migrates_with_its_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schema-v1.db"),
        &path,
    )
    .unwrap();

    let memory = Memory::open(&path).unwrap();
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert!(version > 1, "migrated to {version}");

    let report = memory.verify(VerifyMode::Full).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(
        report.index_compared,
        "the index was built from the old change log"
    );
    assert_eq!(report.last_seq, 9);

    let stats = memory.stats().unwrap();
    assert_eq!(
        (
            stats.entities,
            stats.aliases,
            stats.relations,
            stats.observations
        ),
        (3, 4, 2, 1)
    );
    let acme = memory
        .resolve("ＡＣＭＥ")
        .unwrap()
        .expect("the old alias resolves");
    let entity = memory.entity(acme).unwrap().unwrap();
    assert_eq!(
        (entity.name.as_str(), entity.kind.as_deref()),
        ("Acme Corp", Some("organization"))
    );
    let out = memory.outgoing(acme).unwrap();
    assert_eq!(
        (out[0].object_name.as_str(), out[0].mentions),
        ("Widget Inc", 2)
    );
    assert!(out.iter().all(|r| r.episode.is_some()));
    assert_eq!(memory.written_by("mail-agent", 100).unwrap().len(), 9);

    // New writes work and go on from the old log; search finds old and new facts.
    memory.add_triple(("Ann", "knows", "Bob")).unwrap();
    assert_eq!(memory.last_seq().unwrap().get(), 11, "Bob and the relation");
    let hits = memory
        .search(
            "widgets zurich",
            &SearchOptions::new().read_your_writes(true),
        )
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.text.contains("Makes widgets in Zürich")),
        "{hits:?}"
    );
}

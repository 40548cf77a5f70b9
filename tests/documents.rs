//! Documents, chunks and units; and migrating a version-1 file to the current schema.

mod common;

use cairn::{ChangeOp, ChunkOptions, Document, Error, Memory, Seq, Unit};

fn memory() -> Memory {
    Memory::ephemeral_with(common::options()).unwrap()
}

#[test]
fn documents_are_split_and_keep_their_spans() {
    let m = memory();
    let text = "Acme Corp acquired Widget Inc in May. The deal was worth $2bn. ".repeat(30);
    let doc = Document::new(text.as_str())
        .source("news/1")
        .metadata(serde_json::json!({"url": "https://example.com"}))
        .chunking(ChunkOptions::new().max_chars(200).overlap_chars(40));
    let (id, chunk_ids) = m.add_document(&doc).unwrap();
    let chunks = m.chunks(id).unwrap();
    assert_eq!(chunks.iter().map(|c| c.id).collect::<Vec<_>>(), chunk_ids);
    assert!(chunks.len() > 5);
    let chars: Vec<char> = text.chars().collect();
    for c in &chunks {
        assert!(c.text.chars().count() <= 200);
        let span: String = chars[c.start as usize..c.end as usize].iter().collect();
        assert_eq!(span, c.text);
    }
    let changes = m.changes_since(Seq::from_raw(0), usize::MAX).unwrap();
    assert_eq!(changes.len(), chunks.len());
    assert!(changes.iter().all(|c| c.op == ChangeOp::ChunkAdded));
    let stats = m.stats().unwrap();
    assert_eq!((stats.documents, stats.chunks), (1, chunks.len() as u64));
}

#[test]
fn units_are_stored_one_chunk_each_with_metadata() {
    let m = memory();
    let units: Vec<Unit> = (1..=3)
        .map(|i| {
            Unit::new(format!("Speaker: turn {i}"))
                .metadata(serde_json::json!({"dia_id": format!("D1:{i}")}))
        })
        .collect();
    let (doc, ids) = m.add_units("conversation-1/session-1", &units).unwrap();
    assert_eq!(ids.len(), 3);
    let second = m.chunk(ids[1]).unwrap().unwrap();
    assert_eq!(second.document, doc);
    assert_eq!(second.ord, 1);
    assert_eq!(second.text, "Speaker: turn 2");
    assert_eq!(second.metadata.as_deref(), Some(r#"{"dia_id":"D1:2"}"#));
}

#[test]
fn a_bad_unit_writes_nothing_and_names_its_index() {
    let m = memory();
    let units = [
        Unit::new("fine"),
        Unit::new("also fine"),
        Unit::new("  "),
        Unit::new("never reached"),
    ];
    match m.add_units("s", &units) {
        Err(Error::InvalidBatchItem { index: 2, .. }) => {}
        other => panic!("expected item 2 to be refused, got {other:?}"),
    }
    assert!(
        m.add_document(&Document::new(" \n "))
            .unwrap_err()
            .is_invalid_input()
    );
    assert!(
        m.add_document(&Document::new("x").chunking(ChunkOptions::new().max_chars(4)))
            .is_err()
    );
    let stats = m.stats().unwrap();
    assert_eq!((stats.documents, stats.chunks, stats.changes), (0, 0, 0));
}

#[test]
fn deleting_a_document_removes_and_logs_its_chunks() {
    let m = memory();
    let (doc, ids) = m.add_units("s", &[Unit::new("a"), Unit::new("b")]).unwrap();
    let before = m.last_seq().unwrap();
    assert!(m.delete_document(doc).unwrap());
    assert!(!m.delete_document(doc).unwrap());
    assert_eq!(m.chunk(ids[0]).unwrap(), None);
    let removed: Vec<i64> = m
        .changes_since(before, 10)
        .unwrap()
        .into_iter()
        .filter(|c| c.op == ChangeOp::ChunkRemoved)
        .map(|c| c.target)
        .collect();
    assert_eq!(removed, ids.iter().map(|i| i.get()).collect::<Vec<_>>());
}

/// A file written at schema version 1 (built here from the version-1 migration alone)
/// opens, migrates, and keeps its data.
#[test]
fn a_version_1_file_migrates_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("../src/db/schema/0001_core.sql"))
        .unwrap();
    conn.execute_batch(
        "PRAGMA application_id = 1667330670; PRAGMA user_version = 1;
         INSERT INTO entity(id, name, created_at, updated_at) VALUES (1, 'Acme Corp', 0, 0), (2, 'Widget', 0, 0);
         INSERT INTO alias(key, entity_id, name, created_at) VALUES ('acme corp', 1, 'Acme Corp', 0), ('widget', 2, 'Widget', 0);
         INSERT INTO relation(subject_id, predicate, predicate_key, object_id, first_seen, last_seen)
             VALUES (1, 'acquired', 'acquired', 2, 0, 0);",
    )
    .unwrap();
    drop(conn);
    let m = Memory::open(&path).unwrap();
    let acme = m.resolve("ACME CORP").unwrap().unwrap();
    assert_eq!(m.outgoing(acme).unwrap()[0].object_name, "Widget");
    m.add_units(
        "after migration",
        &[Unit::new("Acme Corp is based in Springfield.")],
    )
    .unwrap();
    drop(m);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
    common::assert_file_is_sound(&path);
}

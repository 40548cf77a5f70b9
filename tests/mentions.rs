//! Mention linking: chunks are linked to the entities whose names they contain, whichever
//! was stored first.

mod common;

use cairn::{Memory, Unit};

fn memory() -> Memory {
    Memory::ephemeral_with(common::options()).unwrap()
}

fn add(m: &Memory, texts: &[&str]) -> Vec<cairn::ChunkId> {
    let units: Vec<Unit> = texts.iter().map(|t| Unit::new(*t)).collect();
    m.add_units("test", &units).unwrap().1
}

#[test]
fn a_chunk_stored_after_an_entity_is_linked_to_it() {
    let m = memory();
    let acme = m.ensure_entity("Acme Corp").unwrap();
    let ann = m.ensure_entity("Ann Lee").unwrap();
    let chunks = add(
        &m,
        &[
            "Ann Lee joined ＡＣＭＥ  corp's board.",
            "Acmes and acme-corporation are other words.",
            "Nothing here.",
        ],
    );
    m.sync().unwrap();
    let mut first = m.mentions(chunks[0]).unwrap();
    first.sort();
    assert_eq!(first, [acme, ann]);
    assert!(m.mentions(chunks[1]).unwrap().is_empty());
    assert!(m.mentions(chunks[2]).unwrap().is_empty());
    assert_eq!(m.mentioned_by(acme, 10).unwrap(), [chunks[0]]);
}

#[test]
fn an_entity_or_alias_created_later_is_linked_to_existing_chunks() {
    let m = memory();
    let chunks = add(
        &m,
        &[
            "Widget Inc shipped the new gear.",
            "The WIDGET INC. board met on Monday.",
            "Widgets are sold by Gadget Inc.",
        ],
    );
    m.sync().unwrap();
    let widget = m.ensure_entity("Widget Inc").unwrap();
    let gadget = m.ensure_entity("GadgetCo").unwrap();
    m.sync().unwrap();
    assert_eq!(m.mentioned_by(widget, 10).unwrap(), [chunks[1], chunks[0]]);
    assert!(m.mentioned_by(gadget, 10).unwrap().is_empty());
    assert!(m.add_alias(gadget, "Gadget Inc").unwrap());
    m.sync().unwrap();
    assert_eq!(m.mentioned_by(gadget, 10).unwrap(), [chunks[2]]);
}

#[test]
fn merge_moves_links_and_delete_removes_them() {
    let m = memory();
    let acme = m.ensure_entity("Acme").unwrap();
    let acme_corp = m.ensure_entity("Acme Corp").unwrap();
    let chunks = add(&m, &["Acme Corp hired Bob.", "Acme fired Carl."]);
    m.sync().unwrap();
    assert_eq!(m.mentioned_by(acme, 10).unwrap(), [chunks[1], chunks[0]]);
    m.merge(acme, acme_corp).unwrap();
    assert_eq!(m.mentions(chunks[0]).unwrap(), [acme]);
    assert_eq!(m.mentioned_by(acme, 10).unwrap(), [chunks[1], chunks[0]]);
    m.delete_entity(acme).unwrap();
    assert!(m.mentions(chunks[0]).unwrap().is_empty());
    assert!(m.mentions(chunks[1]).unwrap().is_empty());
}

#[test]
fn many_names_link_many_chunks_exactly() {
    // Names interleaved with chunks, across many index batches: every chunk ends up linked to
    // exactly the names it contains, whether the name or the chunk came first.
    let m = memory();
    let mut expected = Vec::new();
    for i in 0..300 {
        let name = format!("Person {i:03}");
        let unit = format!("Today Person {i:03} met Person {:03}.", (i + 7) % 300);
        if i % 2 == 0 {
            m.ensure_entity(&name).unwrap();
            let chunk = add(&m, &[&unit])[0];
            expected.push((chunk, i, (i + 7) % 300));
        } else {
            let chunk = add(&m, &[&unit])[0];
            m.ensure_entity(&name).unwrap();
            expected.push((chunk, i, (i + 7) % 300));
        }
    }
    m.sync().unwrap();
    for (chunk, a, b) in expected {
        let mut names: Vec<String> = m
            .mentions(chunk)
            .unwrap()
            .into_iter()
            .map(|id| m.entity(id).unwrap().unwrap().name)
            .collect();
        names.sort();
        let mut want = vec![format!("Person {a:03}"), format!("Person {b:03}")];
        want.sort();
        assert_eq!(names, want, "chunk {chunk}");
    }
}

#[test]
fn links_survive_an_index_rebuild_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let chunks;
    {
        let m = Memory::open_with(&path, common::options()).unwrap();
        m.ensure_entity("Acme Corp").unwrap();
        chunks = add(&m, &["Acme Corp is here.", "And acme corp again."]);
        m.ensure_entity("Widget").unwrap();
        m.sync().unwrap();
    }
    let before: Vec<_> = {
        let m = Memory::open_with(&path, common::options()).unwrap();
        chunks.iter().map(|c| m.mentions(*c).unwrap()).collect()
    };
    std::fs::remove_dir_all(dir.path().join("m.db.index")).unwrap();
    let m = Memory::open_with(&path, common::options()).unwrap();
    m.sync().unwrap();
    let after: Vec<_> = chunks.iter().map(|c| m.mentions(*c).unwrap()).collect();
    assert_eq!(before, after);
    assert_eq!(after[0].len(), 1);
}

/// A plain SQLite connection holding the file's write lock (`BEGIN IMMEDIATE`), as
/// another process's writer does, until dropped.
struct WriteLockHeld(rusqlite::Connection);

impl WriteLockHeld {
    fn take(path: &std::path::Path) -> WriteLockHeld {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(60))
            .unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        WriteLockHeld(conn)
    }
}

impl Drop for WriteLockHeld {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

/// Writes a chunk naming "Acme Corp" through `writer` (a handle that does not hold the
/// index writer, so the holder only finds the change at its next poll) and takes the
/// write lock at once; returns the chunk, searchable with read-your-writes through
/// `writer` while the lock is held (within a generous bound: an index commit that
/// waited for the lock would never get there), and the lock.
fn searchable_under_the_lock(
    writer: &Memory,
    path: &std::path::Path,
    word: &str,
) -> (cairn::ChunkId, WriteLockHeld) {
    let chunk = add(writer, &[&format!("Acme Corp signed the {word} deal.")])[0];
    let lock = WriteLockHeld::take(path);
    let (found, searched) = std::sync::mpsc::channel();
    let searcher = writer.clone();
    let word = word.to_owned();
    std::thread::spawn(move || {
        let ryw = cairn::SearchOptions::new()
            .bm25_only()
            .kinds(&[cairn::HitKind::Chunk])
            .read_your_writes(true);
        let _ = found.send(searcher.search(&word, &ryw).map(|hits| hits.len()));
    });
    let hits = searched.recv_timeout(std::time::Duration::from_secs(30));
    assert!(
        matches!(hits, Ok(Ok(1))),
        "the write did not become searchable while another connection held the write lock: {hits:?}"
    );
    (chunk, lock)
}

#[test]
fn an_index_commit_does_not_wait_for_the_write_lock_and_links_follow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    // The first handle holds the index writer; the second writes.
    let holder = Memory::open_with(&path, common::options()).unwrap();
    let acme = holder.ensure_entity("Acme Corp").unwrap();
    holder.sync().unwrap();
    let writer = Memory::open_with(&path, common::options()).unwrap();
    let mut deferred = false;
    for word in ["zeppelin", "quokka", "marimba"] {
        let (chunk, lock) = searchable_under_the_lock(&writer, &path, word);
        // Searchable, and its link is not in the file yet: it waits for the lock. (If the
        // holder's poll came between the write and the lock, the link got in first; try
        // again with another chunk.)
        let linked_early = !writer.mentions(chunk).unwrap().is_empty();
        drop(lock);
        writer.sync().unwrap();
        assert_eq!(writer.mentions(chunk).unwrap(), [acme], "linked after sync");
        if !linked_early {
            deferred = true;
            break;
        }
    }
    assert!(
        deferred,
        "the link was never written after the index commit"
    );
}

#[test]
fn links_a_closing_holder_could_not_write_are_written_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let holder = Memory::open_with(&path, common::options()).unwrap();
    let acme = holder.ensure_entity("Acme Corp").unwrap();
    holder.sync().unwrap();
    let writer = Memory::open_with(&path, common::options()).unwrap();
    let (chunk, lock) = searchable_under_the_lock(&writer, &path, "zeppelin");
    // The holder closes while the lock is held: its queued link cannot be written.
    drop(holder);
    drop(lock);
    // The remaining handle takes the index writer over and derives the link again.
    writer.sync().unwrap();
    assert_eq!(writer.mentions(chunk).unwrap(), [acme]);
    drop(writer);
    let reopened = Memory::open_with(&path, common::options()).unwrap();
    reopened.sync().unwrap();
    assert_eq!(reopened.mentions(chunk).unwrap(), [acme]);
    let report = reopened.verify(cairn::VerifyMode::Full).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
}

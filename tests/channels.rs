//! The vector channel, its embedder bookkeeping, and the search filters.

mod common;

use std::sync::Arc;

use cairn::{
    Episode, Error, Fusion, HashingEmbedder, HitKind, Memory, Options, Reason, SearchOptions,
    Target, Timestamp, Triple, Unit,
};

fn with_embedder(dimension: usize) -> Options {
    common::options().embedder(Arc::new(HashingEmbedder::new(dimension).unwrap()))
}

#[test]
fn an_embedder_of_another_dimension_is_refused_and_none_only_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    {
        let m = Memory::open_with(&path, with_embedder(256)).unwrap();
        m.add_units("chat", &[Unit::new("Ann: hello")]).unwrap();
        m.sync().unwrap();
    }
    let err = Memory::open_with(&path, with_embedder(128)).unwrap_err();
    assert!(
        matches!(&err, Error::EmbedderMismatch { stored, given }
            if stored.contains("dimension 256") && given.contains("dimension 128")),
        "{err}"
    );
    // Without an embedder everything but writing works: stats, search (words and graph
    // only), export, backup, verify; a write is refused with the mismatch and writes
    // nothing.
    let bare = Memory::open_with(&path, common::options()).unwrap();
    assert_eq!(
        bare.missing_embedder(),
        Some("cairn-hash-v1-256 (dimension 256)")
    );
    let before = bare.last_seq().unwrap();
    assert_eq!(bare.stats().unwrap().chunks, 1);
    let hits = bare.search("hello", &SearchOptions::new()).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    let mut export = Vec::new();
    bare.export_jsonl(&mut export, cairn::JsonlFormat::Cairn)
        .unwrap();
    assert!(String::from_utf8(export).unwrap().contains("Ann: hello"));
    bare.backup(dir.path().join("backup.db")).unwrap();
    assert!(bare.verify(cairn::VerifyMode::Full).unwrap().is_ok());
    let err = bare.add_triple(("Ann", "says", "hello")).unwrap_err();
    assert!(
        matches!(&err, Error::EmbedderMismatch { stored, given }
            if stored.contains("dimension 256") && given.starts_with("no embedder")),
        "{err}"
    );
    assert_eq!(bare.last_seq().unwrap(), before);
    drop(bare);
    // Read-only without an embedder is fine; the same embedder is fine.
    let reader = Memory::open_with(&path, common::options().read_only(true)).unwrap();
    assert_eq!(
        reader.missing_embedder(),
        None,
        "asked for read-only: no reason"
    );
    let m = Memory::open_with(&path, with_embedder(256)).unwrap();
    assert_eq!(m.stats().unwrap().chunks, 1);
}

#[test]
fn vectors_are_stored_in_the_file_and_find_what_words_miss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let m = Memory::open_with(&path, with_embedder(256)).unwrap();
    let (_, chunks) = m
        .add_units(
            "notes",
            &[
                Unit::new("The Acmecorporation annual report is due."),
                Unit::new("Lunch at noon with the design team."),
            ],
        )
        .unwrap();
    m.sync().unwrap();
    let rows: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM vector", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
    // No word of the query occurs in the text; its character n-grams do.
    let options = SearchOptions::new().kinds(&[HitKind::Chunk]).depth(0);
    let hits = m.search("acme corporation", &options).unwrap();
    assert_eq!(hits[0].target, Target::Chunk(chunks[0]), "{hits:?}");
    assert!(matches!(hits[0].why[..], [Reason::Vector { rank: 1, .. }]));
    // With the vector channel off, nothing matches.
    let off = options.clone().vector_weight(0.0);
    assert!(m.search("acme corporation", &off).unwrap().is_empty());
    // A second handle loads the stored vectors instead of recomputing them.
    drop(m);
    let reopened = Memory::open_with(&path, with_embedder(256)).unwrap();
    let hits = reopened
        .search("acme corporation", &options.fusion(Fusion::Score))
        .unwrap();
    assert_eq!(hits[0].target, Target::Chunk(chunks[0]));
}

#[test]
fn a_memory_without_an_embedder_has_no_vector_channel() {
    let m = Memory::ephemeral_with(common::options()).unwrap();
    m.add_units("notes", &[Unit::new("The Acmecorporation report")])
        .unwrap();
    m.sync().unwrap();
    assert!(
        m.search("acme corporation", &SearchOptions::new())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn filters_by_agent_time_and_validity() {
    let m = Memory::ephemeral_with(common::options()).unwrap();
    let mail = m.episode(&Episode::new("mail")).unwrap();
    let calendar = m.episode(&Episode::new("calendar")).unwrap();
    let t = |ms| Timestamp::from_millis(ms);
    let old = mail
        .add_triple(Triple::new("Ann", "works at", "Acme").valid_to(t(1_000)))
        .unwrap();
    let new = calendar
        .add_triple(Triple::new("Ann", "works at", "Globex").valid_from(t(1_000)))
        .unwrap();
    m.sync().unwrap();
    let found = |options: &SearchOptions| -> Vec<Target> {
        m.search("ann works", options)
            .unwrap()
            .into_iter()
            .map(|h| h.target)
            .collect()
    };
    // By default the relation whose validity ended is left out (tests/validity.rs).
    let current = SearchOptions::new().kinds(&[HitKind::Relation]).depth(0);
    assert_eq!(found(&current), [Target::Relation(new)]);
    let relations = current.include_history(true);
    let mut both = found(&relations);
    both.sort_by_key(|t| format!("{t:?}"));
    assert_eq!(both.len(), 2);
    assert_eq!(
        found(&relations.clone().agent("mail")),
        [Target::Relation(old)]
    );
    assert_eq!(
        found(&relations.clone().agent("calendar")),
        [Target::Relation(new)]
    );
    assert!(found(&relations.clone().agent("nobody")).is_empty());
    assert_eq!(
        found(&relations.clone().valid_at(t(500))),
        [Target::Relation(old)]
    );
    assert_eq!(
        found(&relations.clone().valid_at(t(1_000))),
        [Target::Relation(new)]
    );
    let now = Timestamp::now().as_millis();
    assert_eq!(
        found(
            &relations
                .clone()
                .written_between(t(now - 3_600_000), t(now + 1_000))
        )
        .len(),
        2
    );
    assert!(found(&relations.written_between(t(0), t(1_000))).is_empty());
}

/// The hashing embedder, counting the queries it embeds.
struct CountingQueries {
    inner: HashingEmbedder,
    queries: std::sync::atomic::AtomicUsize,
}

impl cairn::Embedder for CountingQueries {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn embed_passages(&self, texts: &[&str]) -> cairn::Result<cairn::ndarray::Array2<f32>> {
        self.inner.embed_passages(texts)
    }

    fn embed_query(&self, query: &str) -> cairn::Result<cairn::ndarray::Array1<f32>> {
        self.queries
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.embed_query(query)
    }
}

#[test]
fn a_search_that_looks_again_deeper_embeds_its_query_once() {
    let embedder = Arc::new(CountingQueries {
        inner: HashingEmbedder::new(64).unwrap(),
        queries: Default::default(),
    });
    let dir = tempfile::tempdir().unwrap();
    let memory = Memory::open_with(
        dir.path().join("m.db"),
        common::options().embedder(embedder.clone()),
    )
    .unwrap();
    // Ended relations are hidden by default: with most of them ended, a limit-10 search
    // comes up short and looks again, deeper.
    for i in 0..30 {
        let id = memory
            .add_triple(("Ada", "visited", format!("city {i}").as_str()))
            .unwrap();
        if i % 10 != 0 {
            memory.invalidate(id, Timestamp::now()).unwrap();
        }
    }
    memory.sync().unwrap();
    let count = || embedder.queries.load(std::sync::atomic::Ordering::SeqCst);
    let before = count();
    let hits = memory
        .search(
            "Ada visited",
            &SearchOptions::new().limit(10).kinds(&[HitKind::Relation]),
        )
        .unwrap();
    assert!(
        hits.len() < 10,
        "the search was meant to come up short: {hits:?}"
    );
    assert_eq!(count() - before, 1, "one embedding per search");
    let before = count();
    memory
        .search(
            "Ada visited",
            &SearchOptions::new().limit(10).vector_weight(0.0),
        )
        .unwrap();
    assert_eq!(count(), before, "no vector channel, no embedding");
}

#[test]
fn rows_written_before_the_embedder_get_their_vectors_once_it_comes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    // More rows than one backfill step takes (1,024), so the pass goes on from a cursor.
    let units: Vec<Unit> = (0..1_500)
        .map(|i| Unit::new(format!("Note {i}: the zeppelin{i} hangar report.")))
        .collect();
    {
        let m = Memory::open_with(&path, common::options()).unwrap();
        let written = m.add_units("notes", &units).unwrap();
        m.observe("Ann", "prefers green tea").unwrap();
        m.observe("Ann", "lives in Oslo").unwrap();
        m.sync().unwrap();
        assert_eq!(written.1.len(), 1_500);
    }
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM vector"), 0);

    let m = Memory::open_with(&path, with_embedder(64)).unwrap();
    m.sync().unwrap();
    assert_eq!(
        count("SELECT count(*) FROM vector WHERE kind = 'chunk'"),
        count("SELECT count(*) FROM chunk")
    );
    assert_eq!(
        count("SELECT count(*) FROM vector WHERE kind = 'observation'"),
        2
    );
    // Kinds the memory does not embed got none; the request is gone with the pass.
    assert_eq!(
        count("SELECT count(*) FROM vector WHERE kind = 'entity'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM meta WHERE key = 'vectors_backfill'"),
        0
    );
    // An old chunk is found by the vector channel alone.
    let options = SearchOptions::new()
        .kinds(&[HitKind::Chunk])
        .depth(0)
        .vector_weight(1.0);
    let hits = m
        .search("zeppelin1234 hangar", &options.fusion(Fusion::Score))
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.why.iter().any(|r| matches!(r, Reason::Vector { .. }))),
        "{hits:?}"
    );
    drop(m);

    // A file that had its embedder from the start asks for no pass.
    let fresh = dir.path().join("fresh.db");
    let m = Memory::open_with(&fresh, with_embedder(64)).unwrap();
    m.add_units("notes", &units[..3]).unwrap();
    m.sync().unwrap();
    drop(m);
    let meta: i64 = rusqlite::Connection::open(&fresh)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM meta WHERE key = 'vectors_backfill'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(meta, 0);
}

//! The derived search index: tantivy, following the change log.
//!
//! The SQLite file is the only source of truth. The index lives beside it
//! (`<file>.index/`, or in RAM for ephemeral memories) and records, as its tantivy commit
//! payload, the last change-log `seq` it applied. A background thread applies new
//! changes in `seq` order and commits in batches; on open it catches up from the payload,
//! and if the payload is missing or names another schema it starts over from `seq` 0.
//!
//! Only one process can hold tantivy's writer lock. The others keep reading: the holder
//! indexes everybody's changes (they are all in the change log), and the others reload
//! its commits. [`SearchIndex::sync`] waits until everything committed to the file before
//! the call is searchable.

pub(crate) mod indexer;
pub(crate) mod linker;
pub(crate) mod nearest;
mod partition;
pub(crate) mod schema;
pub(crate) mod tokenizer;
pub(crate) mod vectors;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::indexer::LogMergePolicy;
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery,
    Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, Term};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::graph::{change, mention};
use crate::id::{ChunkId, Seq};
use linker::Linker;
use schema::{DocKind, Fields, SCHEMA_TAG};
use vectors::{Embedding, VectorCache, VectorWrite};

/// How often the background thread looks for changes of other processes (writes of
/// this process wake it at once).
const POLL: Duration = Duration::from_millis(50);
/// Changes applied per tantivy commit at most (bounds the memory of one batch).
const BATCH: usize = 20_000;
/// How many segments of one size class make tantivy merge them (its default is 8).
const MERGE_AT_SEGMENTS: usize = 3;
/// Idle compaction merges everything once the smaller segments hold 1/this of the
/// largest (see [`Compaction`]).
const COMPACT_RATIO: u64 = 8;
/// At least this long between two idle compactions.
const COMPACT_PAUSE: Duration = Duration::from_secs(1);
/// Memory budget of tantivy's writer.
const WRITER_HEAP: usize = 50_000_000;
/// How long the indexer waits for this process's writers before it retries a batch later.
const DERIVED_WAIT: Duration = Duration::from_secs(1);
/// How long [`SearchIndex::wait_for`] keeps waiting while the indexer reports an error.
const SYNC_ERROR_GRACE: Duration = Duration::from_secs(1);
/// How long [`SearchIndex::sync`] waits before reporting the index as busy.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// One BM25 match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bm25Hit {
    pub(crate) kind: DocKind,
    pub(crate) id: i64,
    /// For a chunk, its document.
    pub(crate) document: Option<i64>,
    pub(crate) score: f32,
}

/// What [`SearchIndex::census`] counted.
pub(crate) struct Census {
    /// Live documents per kind.
    pub(crate) counts: Vec<(DocKind, u64)>,
    /// The last `seq` searchable before and after counting: equal unless a commit landed
    /// in between, and then the counts may mix two positions.
    pub(crate) before: i64,
    pub(crate) after: i64,
}

/// The index of one memory, with its background indexing thread.
pub(crate) struct SearchIndex {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// What this memory embeds, and the vectors loaded so far; `None` without an embedder.
    vectors: Option<(Embedding, VectorCache)>,
    progress: Mutex<Progress>,
    wake: Condvar,
    columns: ColumnCache,
}

/// The fast-field columns a hit is read from, per segment. Opening a column parses its
/// block index (a measurable share of a search when done per hit); segments never
/// change, so a segment's columns are opened once and kept while it exists.
#[derive(Default)]
struct ColumnCache {
    segments: Mutex<std::collections::HashMap<tantivy::index::SegmentId, Arc<SegmentColumns>>>,
}

struct SegmentColumns {
    kind: tantivy::columnar::Column<u64>,
    id: tantivy::columnar::Column<i64>,
    document: tantivy::columnar::Column<i64>,
}

impl ColumnCache {
    fn of(&self, searcher: &Searcher, ord: u32, f: &Fields) -> Result<Arc<SegmentColumns>> {
        let reader = searcher.segment_reader(ord);
        let segment = reader.segment_id();
        if let Some(columns) = self.segments.lock().get(&segment) {
            return Ok(Arc::clone(columns));
        }
        let schema = searcher.schema();
        let fast = reader.fast_fields();
        let columns = Arc::new(SegmentColumns {
            kind: fast.u64(schema.get_field_name(f.kind_code))?,
            id: fast.i64(schema.get_field_name(f.id))?,
            document: fast.i64(schema.get_field_name(f.document))?,
        });
        let mut segments = self.segments.lock();
        if segments.len() >= 4 * searcher.segment_readers().len() + 16 {
            // Merged-away segments: keep only the ones this searcher still reads.
            let live: std::collections::HashSet<_> = searcher
                .segment_readers()
                .iter()
                .map(|r| r.segment_id())
                .collect();
            segments.retain(|id, _| live.contains(id));
        }
        segments.insert(segment, Arc::clone(&columns));
        Ok(columns)
    }
}

#[derive(Default)]
struct Progress {
    /// The last `seq` searchable through `reader`.
    visible: i64,
    /// Set when the memory closes.
    stop: bool,
    /// Set by a write of this process since the indexer last looked.
    nudged: bool,
    /// The last indexing error, reported to `sync` callers.
    error: Option<String>,
}

impl SearchIndex {
    /// Opens (or creates, or rebuilds) the index for `db` and starts following it.
    pub(crate) fn open(db: Arc<Db>, dir: Option<&Path>) -> Result<SearchIndex> {
        let read_only = db.options().read_only;
        let embedding = db.options().embedding();
        vectors::check_embedder(&db, embedding.as_ref())?;
        let (index, mut resume_from) = open_index(dir)?;
        if resume_from > db.read(change::last_seq)?.get() && !read_only {
            resume_from = forget_another_history(&index, resume_from)?;
        }
        let fields = schema::build().1;
        let reader = index
            .reader_builder()
            // Commits of this process reload at once (see `index_new_changes`); this
            // also picks up merged segments, which tantivy publishes in the background.
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        let shared = Arc::new(Shared {
            index,
            reader,
            fields,
            vectors: embedding.map(|e| {
                let cache = VectorCache::new(e.embedder.dimension());
                (e, cache)
            }),
            progress: Mutex::new(Progress {
                visible: resume_from,
                ..Progress::default()
            }),
            wake: Condvar::new(),
            columns: ColumnCache::default(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("cairn-indexer".into())
            .spawn(move || follow(&worker, &db, resume_from, read_only))?;
        Ok(SearchIndex {
            shared,
            thread: Some(thread),
        })
    }

    /// Returns once every change with `seq <= target` is searchable.
    pub(crate) fn wait_for(&self, target: Seq) -> Result<()> {
        let start = Instant::now();
        let mut progress = self.shared.progress.lock();
        while progress.visible < target.get() {
            let waited = start.elapsed();
            // The indexer retries a failed round with a fresh writer; only an error that
            // outlasts a few retries is the caller's.
            if let Some(e) = &progress.error
                && waited >= SYNC_ERROR_GRACE
            {
                return Err(Error::Index(e.clone()));
            }
            if waited >= SYNC_TIMEOUT {
                return Err(Error::IndexLag {
                    behind: target.get().saturating_sub(progress.visible).max(0) as u64,
                    waited,
                });
            }
            self.shared.wake.notify_all();
            self.shared.wake.wait_for(&mut progress, POLL);
        }
        Ok(())
    }

    /// BM25 over names, text and chunk context (each weighted as `weights` says),
    /// restricted to `kinds` (empty: every kind of hit), each kind scored with its own
    /// statistics. A query of stop words only ("who are they") is searched for those
    /// words, in the fields that keep them.
    pub(crate) fn bm25(
        &self,
        query: &str,
        kinds: &[DocKind],
        limit: usize,
        weights: FieldWeights,
    ) -> Result<Vec<Bm25Hit>> {
        let kinds = if kinds.is_empty() {
            &DocKind::HITS[..]
        } else {
            kinds
        };
        let mut tokens = schema::tokens(query);
        let stop_words_only = tokens.is_empty();
        if stop_words_only {
            tokens = schema::stop_tokens(query);
        }
        let tokens = counted(tokens);
        let searcher = self.shared.reader.searcher();
        let f = &self.shared.fields;
        // (kind, its document count, its fields by role: name, body, context).
        let mut searched = Vec::new();
        for &kind in kinds {
            let Some(k) = f.of(kind) else {
                continue;
            };
            let roles = if stop_words_only {
                [(None, 0.0), (Some(k.stop), 1.0), (None, 0.0)]
            } else {
                [
                    (k.name, weights.name),
                    (Some(k.body), 1.0),
                    (k.context, weights.context),
                ]
            };
            searched.push((count(&searcher, f, kind)?, roles));
        }
        // A term's rarity is judged among all the kinds searched (its document frequency
        // in the same role's fields of each, over their documents), so that the scores
        // of different kinds stay comparable; a field's average length is its own kind's.
        let all_docs: u64 = searched.iter().map(|(docs, _)| docs).sum();
        let mut clauses = Vec::new();
        for role in 0..3 {
            // The role's average length over the searched kinds that have it.
            let (mut role_tokens, mut role_docs) = (0u64, 0u64);
            for &(docs, roles) in &searched {
                if let (Some(field), _) = roles[role] {
                    role_tokens += Bm25StatisticsProvider::total_num_tokens(&searcher, field)?;
                    role_docs += docs;
                }
            }
            let field_tokens =
                (role_tokens as f64 * all_docs as f64 / role_docs.max(1) as f64) as u64;
            for (token, repeats) in &tokens {
                let mut doc_freq = 0;
                for (_, roles) in &searched {
                    if let (Some(field), _) = roles[role] {
                        doc_freq += searcher.doc_freq(&Term::from_field_text(field, token))?;
                    }
                }
                for &(_, roles) in &searched {
                    let (Some(field), weight) = roles[role] else {
                        continue;
                    };
                    let scoring = Scoring {
                        all_docs,
                        field_tokens,
                        doc_freq,
                    };
                    clauses.extend(term_clause(field, token, weight * repeats, scoring));
                }
            }
        }
        // One flat union of term queries, whatever the kinds: tantivy scores it with
        // block-max WAND (skipping blocks that cannot make the top).
        self.top(&searcher, clauses, limit)
    }

    /// BM25 of whole documents: their ids and scores, best first.
    pub(crate) fn documents(&self, query: &str, limit: usize) -> Result<Vec<(i64, f32)>> {
        let searcher = self.shared.reader.searcher();
        let f = &self.shared.fields;
        // Documents are scored among documents: a word in every session of a
        // conversation says nothing about which session the query is about.
        let docs = count(&searcher, f, DocKind::Document)?;
        let mut clauses = Vec::new();
        for (token, repeats) in counted(schema::tokens(query)) {
            let scoring = Scoring {
                all_docs: docs,
                field_tokens: Bm25StatisticsProvider::total_num_tokens(&searcher, f.whole)?,
                doc_freq: searcher.doc_freq(&Term::from_field_text(f.whole, &token))?,
            };
            clauses.extend(term_clause(f.whole, &token, repeats, scoring));
        }
        Ok(self
            .top(&searcher, clauses, limit)?
            .into_iter()
            .map(|h| (h.id, h.score))
            .collect())
    }

    fn top(
        &self,
        searcher: &Searcher,
        clauses: Vec<(Occur, Box<dyn Query>)>,
        limit: usize,
    ) -> Result<Vec<Bm25Hit>> {
        if limit == 0 || clauses.is_empty() {
            return Ok(Vec::new());
        }
        let collector = TopDocs::with_limit(limit).order_by_score();
        let top = searcher.search(&BooleanQuery::new(clauses), &collector)?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let columns =
                self.shared
                    .columns
                    .of(searcher, address.segment_ord, &self.shared.fields)?;
            let kind = columns
                .kind
                .first(address.doc_id)
                .and_then(DocKind::from_code);
            let id = columns.id.first(address.doc_id);
            let document = columns.document.first(address.doc_id);
            if let (Some(kind), Some(id)) = (kind, id) {
                hits.push(Bm25Hit {
                    kind,
                    id,
                    document,
                    score,
                });
            }
        }
        Ok(hits)
    }
}

/// How many index documents of `kind` there are (deleted ones counted until merged away,
/// like the fields' token counts).
fn count(searcher: &Searcher, f: &Fields, kind: DocKind) -> Result<u64> {
    Ok(searcher.doc_freq(&Term::from_field_text(f.kind, kind.as_str()))?)
}

/// The BM25 statistics one term query of one kind is scored with.
#[derive(Clone, Copy, Debug)]
struct Scoring {
    /// The documents of every kind searched.
    all_docs: u64,
    /// The field's token count as BM25 divides it by `all_docs`: scaled so that the
    /// quotient is the average length of the role (name, body, context) over the
    /// searched kinds that have it.
    field_tokens: u64,
    /// The term's document frequency over the same role's fields of every kind searched.
    doc_freq: u64,
}

/// A term query scored with [`Scoring`] instead of the whole index's statistics. With
/// fields per kind, a chunk-only search is scored with chunk statistics alone, whatever
/// else the memory holds.
#[derive(Clone, Debug)]
struct Scored {
    scoring: Scoring,
    query: TermQuery,
}

impl Query for Scored {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        match scoring {
            EnableScoring::Enabled { searcher, .. } => {
                let statistics = Statistics {
                    scoring: self.scoring,
                };
                self.query
                    .weight(EnableScoring::enabled_from_statistics_provider(
                        &statistics,
                        searcher,
                    ))
            }
            disabled => self.query.weight(disabled),
        }
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.query.query_terms(visitor);
    }
}

/// [`Scoring`] as tantivy asks for it (for the one term of a [`Scored`] query).
struct Statistics {
    scoring: Scoring,
}

impl Bm25StatisticsProvider for Statistics {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.scoring.field_tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.scoring.all_docs.max(1))
    }

    fn doc_freq(&self, _term: &Term) -> tantivy::Result<u64> {
        Ok(self.scoring.doc_freq)
    }
}

/// How much a query term counts in each text field, relative to `body`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldWeights {
    pub(crate) name: f32,
    pub(crate) context: f32,
}

/// The distinct tokens of a query in first-seen order, each with how often it occurs: a
/// word repeated n times becomes one clause weighted n (the same score as n clauses), so
/// a query of 8,000 copies of one word costs what a query of that word does.
fn counted(tokens: Vec<String>) -> Vec<(String, f32)> {
    let mut out: Vec<(String, f32)> = Vec::new();
    let mut at: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for token in tokens {
        match at.get(&token).and_then(|&i| out.get_mut(i)) {
            Some(entry) => entry.1 += 1.0,
            None => {
                at.insert(token.clone(), out.len());
                out.push((token, 1.0));
            }
        }
    }
    out
}

/// A clause of the union: `token` in `field`, weighted, scored with `scoring`; none
/// when the weight is not positive.
fn term_clause(
    field: Field,
    token: &str,
    weight: f32,
    scoring: Scoring,
) -> Option<(Occur, Box<dyn Query>)> {
    (weight > 0.0).then(|| {
        let query = Scored {
            scoring,
            query: TermQuery::new(
                Term::from_field_text(field, token),
                IndexRecordOption::WithFreqs,
            ),
        };
        let boosted: Box<dyn Query> = Box::new(BoostQuery::new(Box::new(query), weight));
        (Occur::Should, boosted)
    })
}

impl Shared {
    /// The texts to embed of the touched rows of the kinds this memory embeds (`None`:
    /// the row is gone). Read inside the batch's snapshot; embedded outside it.
    fn embedding_texts(
        &self,
        conn: &rusqlite::Connection,
        touched: &std::collections::BTreeSet<(DocKind, i64)>,
    ) -> Result<Vec<(DocKind, i64, Option<String>)>> {
        let Some((embedding, _)) = &self.vectors else {
            return Ok(Vec::new());
        };
        let mut texts = Vec::new();
        for &(kind, id) in touched {
            if embedding.kinds.contains(&kind) {
                texts.push((kind, id, indexer::embedding_text(conn, kind, id)?));
            }
        }
        Ok(texts)
    }

    /// Embeds what [`Shared::embedding_texts`] read. Runs outside any snapshot, so a slow
    /// model never keeps a reader on the WAL (which would keep checkpoints from
    /// restarting it), and stops between batches when the memory closes.
    fn embed(&self, texts: Vec<(DocKind, i64, Option<String>)>) -> Result<Vec<VectorWrite>> {
        let Some((embedding, _)) = &self.vectors else {
            return Ok(Vec::new());
        };
        vectors::embed(embedding.embedder.as_ref(), texts, &|| {
            self.progress.lock().stop
        })
    }

    /// The chunks searchable now whose text holds every word of `key` (as the analyzer
    /// sees words): the candidates for a new name's mentions. None if the key has no
    /// searchable word (it is all stop words).
    fn chunks_with_words(&self, key: &str) -> Result<Vec<ChunkId>> {
        let tokens = schema::tokens(key);
        let Some(chunk) = self.fields.of(DocKind::Chunk) else {
            return Ok(Vec::new());
        };
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let must: Vec<(Occur, Box<dyn Query>)> = tokens
            .iter()
            .map(|t| {
                let term = Term::from_field_text(chunk.body, t);
                (
                    Occur::Must,
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            })
            .collect();
        let searcher = self.reader.searcher();
        let found = searcher.search(&BooleanQuery::new(must), &DocSetCollector)?;
        let mut chunks = Vec::with_capacity(found.len());
        for address in found {
            let columns = self
                .columns
                .of(&searcher, address.segment_ord, &self.fields)?;
            if let Some(id) = columns.id.first(address.doc_id) {
                chunks.push(ChunkId::from_raw(id));
            }
        }
        Ok(chunks)
    }
}

impl SearchIndex {
    /// Live index documents per kind, and the change-log position they reflect.
    pub(crate) fn census(&self) -> Result<Census> {
        let before = self.shared.progress.lock().visible;
        let searcher = self.shared.reader.searcher();
        let f = &self.shared.fields;
        let mut counts = Vec::new();
        for kind in DocKind::all() {
            let query = TermQuery::new(
                Term::from_field_text(f.kind, kind.as_str()),
                IndexRecordOption::Basic,
            );
            let n = searcher.search(&query, &tantivy::collector::Count)?;
            counts.push((kind, n as u64));
        }
        let after = self.shared.progress.lock().visible;
        Ok(Census {
            counts,
            before,
            after,
        })
    }

    /// How many segments searches read now.
    #[cfg(test)]
    pub(crate) fn segments(&self) -> usize {
        self.shared.reader.searcher().segment_readers().len()
    }

    /// Something to call after each local commit: wakes the indexer at once instead of
    /// at its next poll.
    pub(crate) fn waker(&self) -> Box<dyn Fn() + Send + Sync> {
        let shared = Arc::downgrade(&self.shared);
        Box::new(move || {
            if let Some(shared) = shared.upgrade() {
                shared.progress.lock().nudged = true;
                shared.wake.notify_all();
            }
        })
    }

    /// The `k` rows whose vectors are most similar to `query`'s, best first; `None` when
    /// the memory has no embedder.
    pub(crate) fn similar(
        &self,
        conn: &rusqlite::Connection,
        query: &str,
        k: usize,
    ) -> Result<Option<Vec<(DocKind, i64, f32)>>> {
        let Some((embedding, cache)) = &self.shared.vectors else {
            return Ok(None);
        };
        let row = embedding.embedder.embed_query(query)?;
        if row.len() != embedding.embedder.dimension() {
            return Err(Error::Index(format!(
                "embedder {} returned {} values for a query, not {}",
                embedding.embedder.id(),
                row.len(),
                embedding.embedder.dimension()
            )));
        }
        cache.top_k(conn, row.view(), k).map(Some)
    }
}

impl Drop for SearchIndex {
    fn drop(&mut self) {
        self.shared.progress.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // A panicked indexer has nothing left to clean up.
            let _ = thread.join();
        }
    }
}

/// Where the index of the file at `db_path` lives: a folder per schema version, so an
/// index built by another cairn version is never opened with the wrong fields (it is
/// simply not looked at; a new one is built from the change log).
pub(crate) fn dir_for(db_path: &Path) -> PathBuf {
    folder_for(db_path).join(SCHEMA_TAG)
}

/// `<file>.index/`: the folder holding every schema version's index of the file.
pub(crate) fn folder_for(db_path: &Path) -> PathBuf {
    crate::db::sibling(db_path, ".index")
}

/// Opens (creating if needed) the index and tells from which `seq` to resume: its
/// payload's, or 0 when it has none (new, or never committed) — applying the change log
/// from the start is idempotent, so that rebuilds it. Safe when several processes open
/// the same new file at once: creating the folder and the first `meta.json` are both
/// idempotent.
fn open_index(dir: Option<&Path>) -> Result<(Index, i64)> {
    let (tantivy_schema, _) = schema::build();
    let index = match dir {
        None => Index::create_in_ram(tantivy_schema),
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            let directory = MmapDirectory::open(dir).map_err(|e| Error::Index(e.to_string()))?;
            Index::open_or_create(directory, tantivy_schema)?
        }
    };
    schema::register(&index);
    let resume = index
        .load_metas()?
        .payload
        .as_deref()
        .and_then(parse_payload)
        .unwrap_or(0);
    Ok((index, resume))
}

/// Empties an index that is ahead of its file's change log: it was built from another
/// history (a file restored or copied over the one it indexed), and following the log
/// from its position would skip this file's rows. Returns the position to resume from
/// (0: everything is indexed again). When another process holds the index writer the
/// index is left as it is, and `verify` reports it.
fn forget_another_history(index: &Index, position: i64) -> Result<i64> {
    let writer: tantivy::Result<IndexWriter> = index.writer_with_num_threads(1, WRITER_HEAP);
    let Ok(mut writer) = writer else {
        return Ok(position);
    };
    writer.delete_all_documents()?;
    let mut commit = writer.prepare_commit()?;
    commit.set_payload(&payload(0));
    commit.commit()?;
    writer.wait_merging_threads()?;
    Ok(0)
}

fn payload(seq: i64) -> String {
    serde_json::json!({ "schema": SCHEMA_TAG, "seq": seq }).to_string()
}

fn parse_payload(text: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    (value.get("schema")?.as_str()? == SCHEMA_TAG).then_some(())?;
    value.get("seq")?.as_i64()
}

/// The background thread: apply new changes (when this process holds the writer lock),
/// or follow the holder's commits (when it does not).
fn follow(shared: &Shared, db: &Db, mut applied: i64, read_only: bool) {
    let mut writer: Option<IndexWriter> = None;
    let mut linker = Linker::default();
    let mut compaction = Compaction::default();
    loop {
        {
            let mut progress = shared.progress.lock();
            if progress.stop {
                return;
            }
            if !progress.nudged {
                shared.wake.wait_for(&mut progress, POLL);
            }
            progress.nudged = false;
            if progress.stop {
                return;
            }
        }
        if writer.is_none() && !read_only {
            writer = open_writer(&shared.index);
        }
        let before = applied;
        let step = match writer.as_mut() {
            Some(w) => {
                let step = index_new_changes(shared, db, w, &mut linker, &mut applied);
                let idle = step.is_ok() && applied == before;
                compaction.tick(&shared.index, w, idle);
                if step.is_err() {
                    // A failed commit (an I/O error in tantivy's worker) leaves the writer
                    // without its indexing worker: later documents would vanish while
                    // commits still succeed. A fresh writer starts from the last commit.
                    writer = None;
                }
                step
            }
            None => follow_other_writer(shared),
        };
        db.checkpoint_when_idle();
        let mut progress = shared.progress.lock();
        match step {
            Ok(visible) => {
                progress.visible = progress.visible.max(visible);
                progress.error = None;
            }
            Err(Error::Index(message)) => progress.error = Some(message),
            Err(e) => progress.error = Some(e.to_string()),
        }
        shared.wake.notify_all();
    }
}

/// Merging every segment into one while the indexer is idle.
///
/// The merge policy keeps segments of one size class few, but a large index still ends
/// up as a few segments of different sizes, and every segment costs each query its own
/// term lookups and its own top-k (measured in `docs/benchmarks.md`: 4 segments search
/// about 1.4 times slower than 1). When no change arrived since the last round and the
/// smaller segments hold at least `1 / COMPACT_RATIO` of the largest one's documents, the
/// whole index is merged in the background; tantivy publishes the result and readers
/// reload it. The ratio bounds how often a document is rewritten by these merges.
#[derive(Default)]
struct Compaction {
    running: Option<Pin<Box<tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>>>>,
    last_start: Option<Instant>,
}

impl Compaction {
    fn tick(&mut self, index: &Index, writer: &mut IndexWriter, idle: bool) {
        if let Some(merge) = &mut self.running {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if merge.as_mut().poll(&mut cx).is_pending() {
                return;
            }
            // A failed merge (e.g. a segment the merge policy was merging) changed
            // nothing; the next idle round may try again.
            self.running = None;
        }
        if !idle || self.last_start.is_some_and(|t| t.elapsed() < COMPACT_PAUSE) {
            return;
        }
        let Ok(segments) = index.searchable_segment_metas() else {
            return;
        };
        if !worth_compacting(&segments) {
            return;
        }
        let ids: Vec<_> = segments.iter().map(|s| s.id()).collect();
        self.last_start = Some(Instant::now());
        self.running = Some(Box::pin(writer.merge(&ids)));
    }
}

/// True when the segments other than the largest hold at least `1 / COMPACT_RATIO` of
/// its documents.
fn worth_compacting(segments: &[tantivy::index::SegmentMeta]) -> bool {
    let sizes: Vec<u64> = segments.iter().map(|s| u64::from(s.max_doc())).collect();
    small_ones_add_up(&sizes)
}

fn small_ones_add_up(sizes: &[u64]) -> bool {
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let rest: u64 = sizes.iter().sum::<u64>() - largest;
    sizes.len() > 1 && rest.saturating_mul(COMPACT_RATIO) >= largest
}

/// tantivy's writer, or `None` while another process holds its lock.
///
/// A query is scored segment by segment, each with its own top-k and its own term
/// lookups, so many mid-sized segments cost search time. tantivy's default merge policy
/// waits for 8 segments of a size class before merging them; merging as soon as 3 are
/// alike keeps a large index at a few segments (measured in `docs/benchmarks.md`).
fn open_writer(index: &Index) -> Option<IndexWriter> {
    let writer: IndexWriter = index.writer_with_num_threads(1, WRITER_HEAP).ok()?;
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_AT_SEGMENTS);
    writer.set_merge_policy(Box::new(policy));
    Some(writer)
}

fn index_new_changes(
    shared: &Shared,
    db: &Db,
    writer: &mut IndexWriter,
    linker: &mut Linker,
    applied: &mut i64,
) -> Result<i64> {
    loop {
        let batch = db
            .snapshot(|conn| {
                let changes = change::since(conn, Seq::from_raw(*applied), BATCH)?;
                let touched = indexer::touched(conn, &changes)?;
                indexer::apply(conn, writer, &shared.fields, &touched)?;
                let links =
                    linker.links_for(conn, &changes, |key| shared.chunks_with_words(key))?;
                let texts = shared.embedding_texts(conn, &touched)?;
                Ok((changes.last().map(|c| c.seq.get()), links, texts))
            })
            .and_then(|(last, links, texts)| {
                let vectors = shared.embed(texts)?;
                // Derived rows are written before the index commit that records the batch
                // as applied: a crash in between only means deriving the batch again.
                if !links.is_empty() || !vectors.is_empty() {
                    db.try_write_for(DERIVED_WAIT, |conn| {
                        for (chunk, key) in &links {
                            mention::link(conn, *chunk, key)?;
                        }
                        vectors.iter().try_for_each(|v| vectors::store(conn, v))
                    })?;
                }
                Ok(last)
            });
        let last = match batch {
            Ok(last) => last,
            Err(e) => {
                // Drop what this batch added; the next round starts from `applied` again.
                writer.rollback()?;
                return Err(e);
            }
        };
        let Some(last) = last else {
            return Ok(*applied);
        };
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&payload(last));
        commit.commit()?;
        shared.reader.reload()?;
        *applied = last;
        let stop = {
            // A committed batch is progress: an error of an earlier round is over.
            let mut progress = shared.progress.lock();
            progress.visible = last;
            progress.error = None;
            progress.stop
        };
        shared.wake.notify_all();
        if stop {
            // Closing: other processes may keep the log growing forever; whoever holds
            // the index writer next catches up from this commit.
            return Ok(*applied);
        }
    }
}

fn follow_other_writer(shared: &Shared) -> Result<i64> {
    shared.reader.reload()?;
    let payload = shared.index.load_metas()?.payload;
    Ok(payload.as_deref().and_then(parse_payload).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_words_become_one_weighted_clause() {
        let tokens = ["acme", "corp", "acme", "acme"].map(String::from).to_vec();
        assert_eq!(
            counted(tokens),
            [("acme".to_owned(), 3.0), ("corp".to_owned(), 1.0)]
        );
    }

    #[test]
    fn compaction_waits_for_the_small_segments_to_add_up() {
        assert!(!small_ones_add_up(&[]));
        assert!(!small_ones_add_up(&[1_000]));
        assert!(small_ones_add_up(&[10, 10]));
        assert!(!small_ones_add_up(&[800, 50, 49]));
        assert!(small_ones_add_up(&[800, 50, 50]));
    }

    #[test]
    fn an_idle_index_is_compacted_into_one_segment() {
        let memory = crate::Memory::ephemeral().unwrap();
        // Each sync is its own index commit, so each write leaves its own segment.
        for i in 0..6 {
            memory
                .add_triple((format!("E{i}").as_str(), "r", "X"))
                .unwrap();
            memory.sync().unwrap();
        }
        let index = memory.search_index();
        let deadline = Instant::now() + Duration::from_secs(30);
        while index.segments() > 1 {
            assert!(
                Instant::now() < deadline,
                "still {} segments",
                index.segments()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let hits = memory
            .search("E3", &crate::SearchOptions::new().depth(0))
            .unwrap();
        assert!(hits.iter().any(|h| h.text == "E3"), "{hits:?}");
    }
}

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

//!
//! By role: [`search`] answers queries, [`follower`] is one round of the indexer thread,
//! [`compaction`] keeps segments few, [`columns`] caches the fast fields hits are read
//! from, [`payload`] is what a commit records. The thread itself ([`run`]) also runs the
//! file's idle checkpoint, which is the database's business and not the follower's.

pub(crate) mod columns;
pub(crate) mod compaction;
pub(crate) mod follower;
pub(crate) mod indexer;
pub(crate) mod linker;
pub(crate) mod nearest;
pub(crate) mod payload;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod tokenizer;
pub(crate) mod vectors;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};

use crate::db::Db;
use crate::error::{Error, Result};
use crate::graph::change;
use crate::id::Seq;
use columns::ColumnCache;
use follower::{Follower, WRITER_HEAP};
use schema::{Fields, SCHEMA_TAG};
pub(crate) use search::{Bm25Hit, Census, FieldWeights};
use vectors::{Embedding, VectorCache};

/// How often the background thread looks for changes of other processes (writes of
/// this process wake it at once).
const POLL: Duration = Duration::from_millis(50);
/// How long [`SearchIndex::wait_for`] keeps waiting while the indexer reports an error.
const SYNC_ERROR_GRACE: Duration = Duration::from_secs(1);
/// How long [`SearchIndex::sync`] waits before reporting the index as busy.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

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
        let embedding = Embedding::configured(db.options());
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
            .spawn(move || run(&worker, &db, Follower::new(resume_from, read_only)))?;
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
        .and_then(payload::decode)
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
    commit.set_payload(&payload::encode(0));
    commit.commit()?;
    writer.wait_merging_threads()?;
    Ok(0)
}

/// The indexer thread: a follower round whenever this process wrote or the poll
/// interval passed, then the file's idle checkpoint (run here because this thread is the
/// one that wakes up regularly in a memory at rest), then the round's outcome published
/// to waiting callers.
fn run(shared: &Shared, db: &Db, mut follower: Follower) {
    while wait_for_round(shared) {
        let step = follower.round(shared, db);
        db.checkpoint_when_idle();
        publish(shared, step);
    }
}

/// Waits until this process wrote or the poll interval passed; false once the memory
/// closes.
fn wait_for_round(shared: &Shared) -> bool {
    let mut progress = shared.progress.lock();
    if progress.stop {
        return false;
    }
    if !progress.nudged {
        shared.wake.wait_for(&mut progress, POLL);
    }
    progress.nudged = false;
    !progress.stop
}

/// Records a round's outcome for [`SearchIndex::wait_for`].
fn publish(shared: &Shared, step: Result<i64>) {
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

//! The derived search index: tantivy, following the change log.
//!
//! The SQLite file is the only source of truth. The index lives beside it
//! (`<file>.index/`, or in RAM for ephemeral memories) and records, as its tantivy commit
//! payload, the last change-log `seq` it applied and the file it was built from. Nothing
//! of it opens with the memory: the first search, `sync`, or indexer turn (after this
//! process's first write) opens it. Indexer turns on the process's shared workers
//! ([`pool`]) apply new changes in `seq` order and commit in batches; on open the index
//! catches up from the payload, and if the payload is missing or names another schema it
//! starts over from `seq` 0. A damaged index, or one of another file or history, is moved
//! aside and rebuilt by the same turns ([`repair`]).
//!
//! Only one process can hold tantivy's writer lock. The others keep reading: the holder
//! indexes everybody's changes (they are all in the change log), and the others reload
//! its commits. The rows the holder derives in the file (mention links, vectors) are
//! written after the index commit by turns of their own ([`derived`]), so a commit
//! never waits for SQLite's write lock. [`SearchIndex::wait_for`] waits until the changes
//! a caller names are searchable (and, for `sync`, their derived rows written).
//!
//! By role: [`search`] answers queries, [`follower`] is one indexer round, [`compaction`]
//! keeps segments few, [`columns`] caches the fast fields hits are read from, [`payload`]
//! is what a commit records, [`repair`] finds and heals damage. The indexer turn itself
//! (`Core::index_turn`) also runs the file's idle checkpoint, which is the database's
//! business and not the follower's.

mod backfill;
pub(crate) mod columns;
pub(crate) mod compaction;
mod derived;
pub(crate) mod follower;
pub(crate) mod indexer;
pub(crate) mod linker;
pub(crate) mod nearest;
mod partition;
pub(crate) mod payload;
pub(crate) mod pool;
mod private_directory;
pub(crate) mod repair;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod tokenizer;
pub(crate) mod vectors;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::db::{Db, identity};
use crate::error::{Error, Result};
use crate::graph::change;
use crate::id::Seq;
use columns::ColumnCache;
use derived::Derived;
use follower::Follower;
use payload::Payload;
use pool::{Next, Slot};
use private_directory::PrivateDirectory;
use repair::{Damage, DamageLog};
use schema::{Fields, SCHEMA_TAG};
pub(crate) use search::{Bm25Hit, Census, FieldWeights};
use vectors::{Embedding, VectorCache};

/// How often an open index looks for changes of other processes (writes of this
/// process queue a turn at once).
const POLL: Duration = Duration::from_millis(50);
/// How long [`SearchIndex::wait_for`] keeps waiting while the indexer reports an error.
const SYNC_ERROR_GRACE: Duration = Duration::from_secs(1);
/// How long [`SearchIndex::wait_for`] waits before reporting the index as lagging.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a memory's searches read their index from ([`crate::Memory::index_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IndexSource {
    /// The index folder beside the file (`<file>.index/`).
    Folder,
    /// An index in RAM, as every ephemeral memory has.
    Ram,
    /// Built in RAM from the file's change log by this read-only open, because the index
    /// folder could not be used read-only: missing, unreadable, damaged, or behind the
    /// file with no process updating it. Searches are complete once it caught up
    /// ([`crate::Memory::sync`]); nothing is written to the folder.
    Rebuilt {
        /// Why the folder was not used.
        reason: String,
    },
}

/// The index of one memory. Nothing of it is opened with the memory: the tantivy index
/// opens when a search, `sync` or the indexer first needs it (the indexer needs it after
/// this process's first write), and its background work runs on the process's shared
/// workers ([`pool`]), not on threads of its own.
pub(crate) struct SearchIndex {
    core: Arc<Core>,
}

/// What the memory's handles and its turns on the shared workers share. The workers hold
/// it weakly, so the last handle's drop closes it.
struct Core {
    db: Arc<Db>,
    /// Where the index lives; `None`: in RAM.
    dir: Option<PathBuf>,
    /// The open index, once something needed it.
    opened: OnceLock<Opened>,
    /// Held while the index opens, so two first searches open it once.
    opening: Mutex<()>,
    /// The indexer's turns: a follower round, the idle checkpoint, the outcome published.
    indexer: Arc<Slot>,
    /// The derived-rows turns ([`derived`]); `None` for a read-only memory.
    deriver: Option<Arc<Slot>>,
}

/// An open index and the indexer's state between its turns.
struct Opened {
    shared: Shared,
    follower: Mutex<Follower>,
}

struct Shared {
    /// Where the index lives; `None`: in RAM.
    dir: Option<PathBuf>,
    /// Where searches read from now: the folder, or RAM (see [`IndexSource`]).
    source: Mutex<IndexSource>,
    /// The file's identity, recorded in every commit payload (`None` in a file no writer
    /// has opened since identities exist).
    file_id: Option<String>,
    /// The open index; replaced as a whole when the index is rebuilt.
    live: RwLock<Arc<Live>>,
    fields: Fields,
    /// What this memory embeds, and the vectors loaded so far; `None` without an embedder.
    vectors: Option<(Embedding, VectorCache)>,
    progress: Mutex<Progress>,
    wake: Condvar,
    columns: ColumnCache,
    /// Rows derived by index batches on their way to the file.
    derived: Derived,
}

/// An open tantivy index with its reader.
struct Live {
    index: Index,
    reader: IndexReader,
}

#[derive(Default)]
struct Progress {
    /// The last `seq` searchable through the live reader.
    visible: i64,
    /// The last `seq` up to which every change's derived rows (mention links, vectors)
    /// are in the file, as far as this process knows.
    derived: i64,
    /// The last error writing derived rows, reported to `sync` callers.
    derived_error: Option<String>,
    /// Rows older than the file's embedder are being embedded ([`backfill`]): `sync`
    /// waits for the pass.
    backfill: bool,
    /// Set when the memory closes.
    stop: bool,
    /// The last indexing error, reported to `sync` callers.
    error: Option<String>,
    /// Damage found and not repaired yet: the indexer's next round repairs it, and
    /// searches answer [`Error::IndexRebuilding`] until the new index caught up.
    damage: Option<Damage>,
    /// While a new index is built: the position it must reach to be searched.
    rebuilding: Option<i64>,
    /// Every damage this process found, for `verify`.
    found: DamageLog,
}

impl Progress {
    /// Records that everything up to `seq` is searchable.
    fn advance(&mut self, seq: i64) {
        self.visible = self.visible.max(seq);
        if self.rebuilding.is_some_and(|target| self.visible >= target) {
            self.rebuilding = None;
        }
    }

    /// `Err(IndexRebuilding)` while the index is damaged or being rebuilt.
    fn searchable(&self) -> Result<()> {
        if self.damage.is_none() && self.rebuilding.is_none() {
            return Ok(());
        }
        Err(Error::IndexRebuilding {
            indexed: if self.damage.is_some() {
                0
            } else {
                self.visible
            },
            of: self.rebuilding.unwrap_or(self.visible),
        })
    }

    /// Records `damage` for the indexer to repair (once: while one is pending, later
    /// reports of the same damage add nothing).
    fn report(&mut self, damage: Damage) {
        if self.damage.is_none() {
            tracing::warn!(target: "cairn::index", detail = %damage.detail, "index damaged; it will be rebuilt from the file");
            self.found.push(damage.clone());
            self.damage = Some(damage);
        }
    }
}

impl Shared {
    /// True when the live index is in RAM (an ephemeral memory's, or one a read-only open
    /// rebuilt): only this process has it, so it may always be written.
    fn in_ram(&self) -> bool {
        !matches!(*self.source.lock(), IndexSource::Folder)
    }

    /// The live index for a search: `Err(IndexRebuilding)` while it is damaged or being
    /// rebuilt.
    fn searchable(&self) -> Result<Arc<Live>> {
        self.progress.lock().searchable()?;
        Ok(self.current())
    }

    /// The live index, whatever its state (for the indexer, which rebuilds it).
    fn current(&self) -> Arc<Live> {
        Arc::clone(&self.live.read())
    }

    /// A search's error: a tantivy error means the index is damaged (a healthy index
    /// does not fail a query), which is reported for repair and answered as
    /// [`Error::IndexRebuilding`]; anything else is returned as it is.
    fn damaged(&self, e: Error) -> Error {
        let Error::Index(detail) = e else {
            return e;
        };
        let mut progress = self.progress.lock();
        progress.report(Damage::broken(format!("a search failed: {detail}")));
        let answer = progress.searchable().err();
        drop(progress);
        self.wake.notify_all();
        answer.unwrap_or(Error::Index(detail))
    }
}

impl SearchIndex {
    /// The index of `db`, in `dir` (in RAM without one). Opens nothing yet; checks (or
    /// records) the file's embedder, which is the open's business.
    pub(crate) fn new(db: Arc<Db>, dir: Option<&Path>) -> Result<SearchIndex> {
        let embedding = Embedding::configured(db.options());
        vectors::check_embedder(&db, embedding.as_ref())?;
        let indexer = pool::INDEXERS.worker()?;
        let deriver = if db.options().read_only {
            None
        } else {
            Some(pool::DERIVERS.worker()?)
        };
        let core = Arc::new_cyclic(|me: &Weak<Core>| {
            let (index_turn, derived_turn) = (me.clone(), me.clone());
            Core {
                db,
                dir: dir.map(Path::to_owned),
                opened: OnceLock::new(),
                opening: Mutex::new(()),
                indexer: Slot::new(
                    indexer,
                    Box::new(move || index_turn.upgrade().map_or(Next::Idle, |c| c.index_turn())),
                ),
                deriver: deriver.map(|worker| {
                    Slot::new(
                        worker,
                        Box::new(move || {
                            derived_turn
                                .upgrade()
                                .map_or(Next::Idle, |c| c.derived_turn())
                        }),
                    )
                }),
            }
        });
        Ok(SearchIndex { core })
    }

    /// The open index, opening it now if nothing did yet.
    fn shared(&self) -> Result<&Shared> {
        Ok(&self.core.open()?.shared)
    }

    /// Returns once every change with `seq <= target` is searchable and, when
    /// `with_derived`, has its derived rows (mention links, vectors) in the file (`sync`):
    /// waits through a rebuild too, within the same budget.
    pub(crate) fn wait_for(&self, target: Seq, with_derived: bool) -> Result<()> {
        self.wait(target, true, with_derived)
    }

    /// [`SearchIndex::wait_for`] for a search with read-your-writes: searchable is
    /// enough (derived rows follow), and a damaged or rebuilding index answers
    /// [`Error::IndexRebuilding`] at once instead of keeping the caller for the whole
    /// rebuild.
    pub(crate) fn wait_searchable(&self, target: Seq) -> Result<()> {
        self.wait(target, false, false)
    }

    fn wait(&self, target: Seq, through_rebuild: bool, with_derived: bool) -> Result<()> {
        let start = Instant::now();
        let shared = self.shared()?;
        // A change of another process is found by the next poll; this one looks now.
        self.core.indexer.nudge();
        let mut progress = shared.progress.lock();
        loop {
            let rebuilding = progress.searchable();
            if rebuilding.is_err() && !through_rebuild {
                return rebuilding;
            }
            let reached = if with_derived {
                progress.visible.min(progress.derived)
            } else {
                progress.visible
            };
            let backfilling = with_derived && progress.backfill;
            if reached >= target.get() && rebuilding.is_ok() && !backfilling {
                return Ok(());
            }
            let waited = start.elapsed();
            // The indexer retries a failed round with a fresh writer (and the derived-rows
            // thread its write); only an error that outlasts a few retries is the caller's.
            let error = progress.error.as_ref().or(with_derived
                .then_some(progress.derived_error.as_ref())
                .flatten());
            if let Some(e) = error
                && waited >= SYNC_ERROR_GRACE
            {
                return Err(Error::Index(e.clone()));
            }
            if waited >= SYNC_TIMEOUT {
                return Err(Error::IndexLag {
                    behind: target.get().saturating_sub(reached).max(0) as u64,
                    waited,
                });
            }
            shared.wake.wait_for(&mut progress, POLL);
        }
    }

    /// Something to call after each local commit: queues an indexer turn (which opens
    /// the index if nothing did yet).
    pub(crate) fn waker(&self) -> Box<dyn Fn() + Send + Sync> {
        let indexer = Arc::clone(&self.core.indexer);
        Box::new(move || indexer.nudge())
    }

    /// Where searches read their index from (opening it: the answer depends on what the
    /// open finds). An index that cannot be opened at all is reported as the folder or
    /// RAM it would be in; searches report the error.
    pub(crate) fn source(&self) -> IndexSource {
        match self.shared() {
            Ok(shared) => shared.source.lock().clone(),
            Err(_) if self.core.dir.is_some() => IndexSource::Folder,
            Err(_) => IndexSource::Ram,
        }
    }

    /// The damage this process found in the index (repaired or being repaired), oldest
    /// first, for `verify` (which opens the index).
    pub(crate) fn damage_found(&self) -> Vec<Damage> {
        self.shared()
            .map(|shared| shared.progress.lock().found.all())
            .unwrap_or_default()
    }

    /// Whether the index is open in this process (for tests of the lazy open).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        self.core.opened.get().is_some()
    }
}

impl Drop for SearchIndex {
    /// Closing is prompt: it waits for a turn of this memory that is running (one batch
    /// at most), never for queued work, which the change log keeps for the next open.
    fn drop(&mut self) {
        let core = &self.core;
        if let Some(opened) = core.opened.get() {
            opened.shared.progress.lock().stop = true;
            opened.shared.wake.notify_all();
        }
        core.indexer.close();
        if let Some(deriver) = &core.deriver {
            deriver.close();
        }
        // After the indexer: its last batch's rows are queued by now. What the file does
        // not take within the close budget is derived again by the next holder. The
        // follower (dropped with the core, after this) keeps tantivy's writer until
        // then, so no other process derives the same rows meanwhile (an older vector
        // written over a newer one).
        if let Some(opened) = core.opened.get()
            && !core.db.options().read_only
        {
            derived::finish(&opened.shared, &core.db);
        }
    }
}

impl Core {
    /// The open index, opening it now if nothing did yet. Never fails because of the
    /// index itself: a damaged one is reported, and the indexer rebuilds it while
    /// searches answer [`Error::IndexRebuilding`].
    fn open(&self) -> Result<&Opened> {
        if let Some(opened) = self.opened.get() {
            return Ok(opened);
        }
        let guard = self.opening.lock();
        if self.opened.get().is_none() {
            let opened = open_index(&self.db, self.dir.as_deref(), self.deriver.clone())?;
            let _ = self.opened.set(opened);
            // Start following: what the log holds beyond the index gets indexed.
            self.indexer.nudge();
        }
        drop(guard);
        self.opened
            .get()
            .ok_or_else(|| Error::Index("the index was not opened".to_owned()))
    }

    /// One indexer turn: a follower round (one batch at most), then the file's idle
    /// checkpoint (run here because this is the work that comes back regularly in a
    /// memory at rest), then the round's outcome published to waiting callers.
    fn index_turn(&self) -> Next {
        let opened = match self.open() {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!(target: "cairn::index", error = %e, "the index cannot be opened; retrying");
                return Next::After(POLL);
            }
        };
        let shared = &opened.shared;
        if shared.progress.lock().stop {
            return Next::Idle;
        }
        let mut follower = opened.follower.lock();
        let step = follower.round(shared, &self.db);
        let more = follower.has_more();
        drop(follower);
        self.db.checkpoint_when_idle();
        publish(shared, step);
        if more { Next::Now } else { Next::After(POLL) }
    }

    /// One derived-rows turn ([`derived::turn`]).
    fn derived_turn(&self) -> Next {
        match self.opened.get() {
            Some(opened) => derived::turn(&opened.shared, &self.db),
            None => Next::Idle,
        }
    }
}

/// Opens (or creates) the index for `db` and the follower that resumes it.
fn open_index(db: &Db, dir: Option<&Path>, deriver: Option<Arc<Slot>>) -> Result<Opened> {
    let read_only = db.options().read_only;
    let embedding = Embedding::configured(db.options());
    let file_id = db.read(identity::read)?;
    let mut progress = Progress::default();
    let mut source = if dir.is_some() {
        IndexSource::Folder
    } else {
        IndexSource::Ram
    };
    let opened =
        open_checked(dir, file_id.as_deref(), db, read_only).and_then(|(live, resume_from)| {
            match dir.filter(|_| read_only) {
                Some(dir) => match unattended_lag(dir, resume_from, db) {
                    Some(reason) => Err(Damage::broken(reason)),
                    None => Ok((live, resume_from)),
                },
                None => Ok((live, resume_from)),
            }
        });
    let live = match opened {
        Ok((live, resume_from)) => {
            progress.visible = resume_from;
            progress.derived = follower::derived_position(db, &live)?;
            live
        }
        Err(damage) if read_only && dir.is_some() => {
            // A read-only memory cannot repair the folder: it searches an index of
            // its own, built in RAM from the change log.
            tracing::info!(target: "cairn::index", reason = %damage.detail, "read-only: index rebuilt in RAM");
            let last = db.read(change::last_seq)?.get();
            progress.rebuilding = (last > 0).then_some(last);
            source = IndexSource::Rebuilt {
                reason: damage.detail,
            };
            open_live(None, false)?
        }
        Err(damage) => {
            // Searches wait for the rebuild; the placeholder is never searched.
            progress.report(damage);
            progress.derived = db.read(derived::recorded)?;
            open_live(None, false)?
        }
    };
    progress.backfill = embedding.is_some() && !read_only && db.read(backfill::requested)?;
    let resume_from = progress.visible;
    let shared = Shared {
        dir: dir.map(Path::to_owned),
        source: Mutex::new(source),
        file_id,
        live: RwLock::new(Arc::new(live)),
        fields: schema::build().1,
        vectors: embedding.map(|e| {
            let cache = VectorCache::new(e.embedder.dimension());
            (e, cache)
        }),
        progress: Mutex::new(progress),
        wake: Condvar::new(),
        columns: ColumnCache::default(),
        derived: Derived::new(deriver),
    };
    Ok(Opened {
        shared,
        follower: Mutex::new(Follower::new(resume_from, read_only)),
    })
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

/// The index folder of the file at `db_path` and the damaged indexes kept beside it.
pub(crate) fn all_folders_for(db_path: &Path) -> Vec<PathBuf> {
    let folder = folder_for(db_path);
    let mut out = repair::damaged_folders(&folder);
    out.push(folder);
    out
}

/// Removes the index of the file at `db_path` and the damaged indexes kept beside it
/// (for a file that is deleted or replaced).
pub(crate) fn remove_all_for(db_path: &Path) -> Result<()> {
    let folder = folder_for(db_path);
    for damaged in repair::damaged_folders(&folder) {
        crate::db::remove_dir_if_present(&damaged)?;
    }
    crate::db::remove_dir_if_present(&folder)
}

/// Opens (creating if needed) the index in `dir` (in RAM without one) with its reader.
/// Safe when several processes open the same new file at once: creating the folder and
/// the first `meta.json` are both idempotent. tantivy checks every segment file's footer
/// when the reader opens them, so a truncated or missing file fails here. `read_only`:
/// nothing is created, and a folder without an index is an error.
fn open_live(dir: Option<&Path>, read_only: bool) -> Result<Live> {
    let (tantivy_schema, _) = schema::build();
    let at =
        |dir: &Path, e: &dyn std::fmt::Display| Error::Index(format!("{}: {e}", dir.display()));
    let index = match dir {
        None => Index::create_in_ram(tantivy_schema),
        Some(dir) if read_only => {
            if !dir.join("meta.json").is_file() {
                return Err(at(dir, &"no index there"));
            }
            let directory = PrivateDirectory::open(dir, true).map_err(|e| at(dir, &e))?;
            Index::open(directory).map_err(|e| at(dir, &e))?
        }
        Some(dir) => {
            crate::files::private_dir(dir).map_err(|e| Error::file(dir, e))?;
            let directory = PrivateDirectory::open(dir, false).map_err(|e| at(dir, &e))?;
            Index::open_or_create(directory, tantivy_schema).map_err(|e| at(dir, &e))?
        }
    };
    schema::register(&index);
    let reader = index
        .reader_builder()
        // Reloaded by the indexer: after each of its commits, each round that follows
        // another process's commits, and each idle health check (which picks up merged
        // segments tantivy published in the background). tantivy's other policy watches
        // `meta.json` from a thread of its own per index.
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    Ok(Live { index, reader })
}

/// The last commit's payload of `index`.
fn last_payload(index: &Index) -> Result<Option<Payload>> {
    Ok(index
        .load_metas()?
        .payload
        .as_deref()
        .and_then(payload::decode))
}

/// Opens the index in `dir` and checks that it is readable and is this file's (see
/// [`payload::check`]); returns it with the `seq` to resume from (0 when it has no
/// payload: applying the change log from the start is idempotent, so that builds it).
fn open_checked(
    dir: Option<&Path>,
    file_id: Option<&str>,
    db: &Db,
    read_only: bool,
) -> std::result::Result<(Live, i64), Damage> {
    let broken = |e: Error| Damage::broken(format!("the index cannot be opened: {e}"));
    let live = open_live(dir, read_only).map_err(broken)?;
    let payload = last_payload(&live.index).map_err(broken)?;
    // Read after the payload: a commit of another process in between is then never
    // beyond the log this reads.
    let last_seq = db
        .read(change::last_seq)
        .map_err(|e| Damage::broken(format!("the file's log cannot be read: {e}")))?;
    payload::check(payload.as_ref(), file_id, last_seq.get())?;
    Ok((live, payload::resume(payload.as_ref())))
}

/// Why a read-only memory should not search the folder `dir` whose index is at
/// `resume_from`: it is behind the file's log and no process holds its writer lock, so
/// nobody will bring it up to date. `None`: it is current, or a writer is at work.
fn unattended_lag(dir: &Path, resume_from: i64, db: &Db) -> Option<String> {
    let last = db.read(change::last_seq).ok()?.get();
    if resume_from >= last || repair::writer_at_work(dir) {
        return None;
    }
    Some(format!(
        "the index in {} is at change {resume_from} of {last} and no process is updating it",
        dir.display()
    ))
}

/// Records a round's outcome for [`SearchIndex::wait_for`].
fn publish(shared: &Shared, step: Result<i64>) {
    let mut progress = shared.progress.lock();
    match step {
        Ok(visible) => {
            progress.advance(visible);
            progress.error = None;
        }
        Err(e) => {
            tracing::warn!(target: "cairn::index", error = %e, "indexer round failed; retrying");
            progress.error = Some(match e {
                Error::Index(message) => message,
                e => e.to_string(),
            });
        }
    }
    shared.wake.notify_all();
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn reads_leave_the_index_closed_and_a_write_opens_it_on_a_worker() {
        let dir = tempfile::tempdir().unwrap();
        let memory = crate::Memory::open(dir.path().join("m.db")).unwrap();
        memory.stats().unwrap();
        assert_eq!(memory.resolve("nobody").unwrap(), None);
        assert!(!memory.search_index().is_open(), "reads opened the index");
        memory.add_triple(("Ann", "works at", "Acme")).unwrap();
        // Nobody asks for it: the write's indexer turn opens it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !memory.search_index().is_open() {
            assert!(Instant::now() < deadline, "the write's turn never came");
            std::thread::sleep(Duration::from_millis(5));
        }
        memory.sync().unwrap();
    }
}

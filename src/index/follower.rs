//! The follower: one indexer round (a turn on the shared workers, [`super::pool`]). When this process holds tantivy's
//! writer lock it applies new change-log entries in `seq` order and commits them in
//! batches, handing their mention links and texts to embed to the derived-rows turns
//! ([`super::derived`]) without waiting for it; when another process holds it, it
//! reloads that process's commits and reads how far the derived rows are.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tantivy::indexer::IndexWriterOptions;
use tantivy::{Index, IndexWriter};

use super::backfill::{self, Backfill, Step};
use super::compaction::{self, Compaction};
use super::derived::{self, Rows};
use super::repair::{self, Damage, Repaired};
use super::{Live, Shared, payload};
use crate::db::Db;
use crate::error::Result;
use crate::graph::change;
use crate::id::Seq;
use crate::index::indexer;
use crate::index::linker::Linker;
use crate::index::schema::DocKind;
use crate::index::vectors::{self, VectorWrite};

/// Changes applied per tantivy commit at most (bounds the memory of one batch).
const BATCH: usize = 20_000;
/// How often an idle indexer looks for damage nobody reported.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// How long a writer without work is kept (its threads, its lock) before it is given
/// back.
const WRITER_IDLE: Duration = Duration::from_secs(2);
/// Memory budget of tantivy's writer.
pub(super) const WRITER_HEAP: usize = 50_000_000;

/// What the indexer keeps from one round to the next.
pub(super) struct Follower {
    writer: Option<IndexWriter>,
    linker: Linker,
    compaction: Compaction,
    /// The pass that embeds rows older than the file's embedder ([`backfill`]).
    backfill: Backfill,
    /// The last `seq` this process committed to the index, or saw the holder commit.
    applied: i64,
    read_only: bool,
    /// When the index was last checked for damage nobody reported (see [`health`]).
    last_health: Option<Instant>,
    /// The last round stopped after a full batch: the log may hold more.
    more: bool,
    /// When a round last applied something (or took the writer): the writer is given
    /// back after [`WRITER_IDLE`] without work.
    busy_at: Instant,
    /// The index's `meta.json` (size, mtime) when a round without the writer last
    /// looked (see [`Follower::nothing_to_follow`]).
    meta_seen: Option<(u64, std::time::SystemTime)>,
}

impl Follower {
    /// A follower resuming after `applied`.
    pub(super) fn new(applied: i64, read_only: bool) -> Follower {
        Follower {
            writer: None,
            linker: Linker::default(),
            compaction: Compaction::default(),
            backfill: Backfill::default(),
            applied,
            read_only,
            last_health: None,
            more: false,
            busy_at: Instant::now(),
            meta_seen: None,
        }
    }

    /// Whether the last round left changes to apply (it applies one batch, so that one
    /// memory's catch-up does not hold up the others on the shared workers).
    pub(super) fn has_more(&self) -> bool {
        self.more
    }

    /// Repairs reported damage, then applies what is new (holding the writer) or reloads
    /// the holder's commits, and returns the last `seq` searchable now. A failed or idle
    /// round looks for damage nobody reported (the folder deleted, `meta.json` garbled).
    pub(super) fn round(&mut self, shared: &Shared, db: &Db) -> Result<i64> {
        if shared.progress.lock().damage.is_some() {
            // A held writer keeps tantivy's lock, which the repair must take itself.
            self.writer = None;
            match repair::repair(shared, db, self.read_only)? {
                Repaired::Pending => return Ok(self.applied),
                Repaired::From(seq) => self.applied = seq,
            }
        }
        let before = self.applied;
        let step = self.apply_or_follow(shared, db);
        let idle = step.as_ref().is_ok_and(|_| self.applied == before);
        if step.is_err() || (idle && self.health_due()) {
            self.last_health = Some(Instant::now());
            // The reader reloads manually: this picks up segments tantivy merged in the
            // background since the last commit (a failure is the health check's to find).
            let _ = shared.current().reader.reload();
            if let Some(damage) = health(shared, db) {
                shared.progress.lock().report(damage);
                shared.wake.notify_all();
            }
        }
        step
    }

    fn health_due(&self) -> bool {
        self.last_health.is_none_or(|t| t.elapsed() >= HEALTH_EVERY)
    }

    fn apply_or_follow(&mut self, shared: &Shared, db: &Db) -> Result<i64> {
        let live = shared.current();
        if self.writer.is_none() && self.wants_writer(shared, db, &live)? {
            self.writer = open_writer(&live.index);
            self.busy_at = Instant::now();
            if self.writer.is_some()
                && let Err(e) = self.take_over(shared, db, &live)
            {
                self.writer = None;
                return Err(e);
            }
        }
        let Some(writer) = self.writer.as_mut() else {
            watch_backfill(shared, db)?;
            if self.nothing_to_follow(shared, db)? {
                return Ok(self.applied);
            }
            return self.follow_other_writer(shared, db, &live);
        };
        let before = self.applied;
        self.more = false;
        let step = index_new_changes(
            shared,
            &live,
            db,
            writer,
            &mut self.linker,
            &mut self.applied,
            &mut self.more,
        );
        let mut idle = step.is_ok() && self.applied == before;
        if idle && !self.more && backfill_step(&mut self.backfill, shared, db)? == Step::Working {
            idle = false;
        }
        if !idle {
            self.busy_at = Instant::now();
        }
        self.compaction.tick(&live.index, writer, idle);
        if step.as_ref().is_err_and(|e| !e.is_busy()) {
            // A batch that only found the file busy keeps the writer (and with it the
            // index: handing it to another process costs its catch-up). A failed commit
            // (an I/O error in tantivy's worker) leaves the writer without its indexing
            // worker: later documents would vanish while commits still succeed. A fresh
            // writer starts from the last commit.
            self.writer = None;
        } else if idle
            && self.busy_at.elapsed() >= WRITER_IDLE
            && !self.compaction.is_running()
            && shared.derived.is_idle()
        {
            // An idle memory gives tantivy's writer (and its threads) back; the next
            // change takes it again. Only once its derived rows are written: another
            // process may take the writer over now.
            self.writer = None;
        }
        step
    }

    /// Whether this round should take tantivy's writer: the log holds changes the index
    /// does not, or the last holder left changes whose derived rows are not in the file.
    /// A read-only memory writes only an index of its own, in RAM.
    fn wants_writer(&mut self, shared: &Shared, db: &Db, live: &Live) -> Result<bool> {
        if self.read_only && !shared.in_ram() {
            return Ok(false);
        }
        let last = db.read(change::last_seq)?.get();
        if last > self.applied || self.backfill.pending(shared, db)? {
            return Ok(true);
        }
        let derived = shared.progress.lock().derived;
        Ok(derived < self.applied && derived_position(db, live)? < self.applied)
    }

    /// Whether a round without the writer can skip reloading: the log is not ahead of
    /// the index, every change's derived rows are known to be in the file, and the
    /// index's `meta.json` is as the last round saw it (nobody committed). Keeps the
    /// poll of an idle open memory at one query and two `stat`s.
    fn nothing_to_follow(&mut self, shared: &Shared, db: &Db) -> Result<bool> {
        let seen = shared.dir.as_deref().and_then(|dir| {
            let meta = std::fs::metadata(dir.join("meta.json")).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        });
        let unchanged = seen == self.meta_seen;
        self.meta_seen = seen;
        if !unchanged || shared.progress.lock().derived < self.applied {
            return Ok(false);
        }
        Ok(db.read(change::last_seq)?.get() <= self.applied)
    }

    /// This process just took tantivy's writer: resume from where the file holds every
    /// change's derived rows, if that is before the index's position (the previous
    /// holder closed or died with rows queued), so those changes are derived again.
    /// The automaton starts over too: keys added while another process indexed are not
    /// in it.
    fn take_over(&mut self, shared: &Shared, db: &Db, live: &Live) -> Result<()> {
        let from = derived_position(db, live)?;
        self.linker = Linker::default();
        self.backfill.restart();
        if from < self.applied {
            tracing::debug!(target: "cairn::index", from, to = self.applied, "deriving again the rows the last holder did not write");
            self.applied = from;
        }
        shared.derived.resume(from);
        Ok(())
    }

    /// Reloads the writer holder's commits. An index whose position went back was
    /// rebuilt by the holder: searches wait until it is where this process's was.
    fn follow_other_writer(&mut self, shared: &Shared, db: &Db, live: &Live) -> Result<i64> {
        live.reader.reload()?;
        let payload = super::last_payload(&live.index)?;
        let seq = payload::resume(payload.as_ref());
        if seq != self.applied {
            tracing::trace!(target: "cairn::index", from = self.applied, to = seq, "followed the writer's commits");
        }
        let derived = derived_position(db, live)?;
        let mut progress = shared.progress.lock();
        progress.derived = progress.derived.max(derived);
        if seq < self.applied {
            let last = db.read(change::last_seq)?.get();
            progress.visible = seq;
            progress.rebuilding = Some(last);
        }
        drop(progress);
        self.applied = seq;
        Ok(seq)
    }
}

/// Up to where the derived rows of every change are in the file: what the file records,
/// or what the index's last commit recorded if that is more.
pub(super) fn derived_position(db: &Db, live: &Live) -> Result<i64> {
    let payload = super::last_payload(&live.index)?;
    let recorded = db.read(derived::recorded)?;
    Ok(recorded.max(payload.map_or(0, |p| p.derived)))
}

/// With nothing newer to index: one step of the backfill pass, its end published to
/// `sync` callers.
fn backfill_step(backfill: &mut Backfill, shared: &Shared, db: &Db) -> Result<Step> {
    let step = backfill.step(shared, db)?;
    if step == Step::Done {
        finish_backfill(shared);
    }
    Ok(step)
}

/// A process without the writer learns from the file when the holder ended the pass.
fn watch_backfill(shared: &Shared, db: &Db) -> Result<()> {
    if shared.progress.lock().backfill && !db.read(backfill::requested)? {
        finish_backfill(shared);
    }
    Ok(())
}

fn finish_backfill(shared: &Shared) {
    let mut progress = shared.progress.lock();
    if progress.backfill {
        progress.backfill = false;
        drop(progress);
        shared.wake.notify_all();
    }
}

/// Damage nobody reported: the folder gone or unreadable, or its last commit naming
/// another file or history. Reads `meta.json` only, so it is cheap enough for every idle
/// second.
fn health(shared: &Shared, db: &Db) -> Option<Damage> {
    if shared.in_ram() {
        return None;
    }
    let dir = shared.dir.as_deref()?;
    if !dir.join("meta.json").exists() {
        return Some(Damage::broken(format!(
            "the index folder {} is gone or has no meta.json",
            dir.display()
        )));
    }
    let live = shared.current();
    let payload = match super::last_payload(&live.index) {
        Ok(payload) => payload,
        Err(e) => return Some(Damage::broken(format!("the index cannot be read: {e}"))),
    };
    let last_seq = db.read(change::last_seq).ok()?.get();
    payload::check(payload.as_ref(), shared.file_id.as_deref(), last_seq).err()
}

/// tantivy's writer with cairn's merge policy, or `None` while another process holds its
/// lock.
pub(super) fn open_writer(index: &Index) -> Option<IndexWriter> {
    // One indexing thread and one merge thread (tantivy's default is four) per writer:
    // many memories may hold one each, and their batches are small.
    let options = IndexWriterOptions::builder()
        .num_worker_threads(1)
        .num_merge_threads(1)
        .memory_budget_per_thread(WRITER_HEAP)
        .build();
    let writer: IndexWriter = index.writer_with_options(options).ok()?;
    compaction::set_merge_policy(&writer);
    Some(writer)
}

fn index_new_changes(
    shared: &Shared,
    live: &Live,
    db: &Db,
    writer: &mut IndexWriter,
    linker: &mut Linker,
    applied: &mut i64,
    more: &mut bool,
) -> Result<i64> {
    // One batch per round (see `Follower::has_more`).
    if shared.derived.backlogged() {
        // The file has not taken the rows of the last batches yet: wait for it.
        return Ok(*applied);
    }
    let started = Instant::now();
    let mut traced = BatchTrace::default();
    // Changes up to here already have their rows in the file or queued (an index
    // being rebuilt, or re-applying what a previous holder had not derived).
    let covered = shared.derived.covered();
    let batch = db.snapshot(|conn| {
        let changes = change::since(conn, Seq::from_raw(*applied), BATCH)?;
        let touched = indexer::touched(conn, &changes)?;
        indexer::apply(conn, writer, &shared.fields, &touched)?;
        // Mention links and vectors are rows of the file: a read-only memory
        // (indexing into RAM) uses those a writer derived and derives none.
        let (links, texts) = if db.options().read_only {
            (Vec::new(), Vec::new())
        } else {
            let links =
                linker.links_for(conn, &changes, covered, |key| shared.chunks_with_words(key))?;
            let stale = changes.partition_point(|c| c.seq.get() <= covered);
            let texts = if stale == 0 {
                shared.embedding_texts(conn, &touched)?
            } else {
                shared.embedding_texts(conn, &indexer::touched(conn, &changes[stale..])?)?
            };
            (links, texts)
        };
        traced = BatchTrace {
            changes: changes.len(),
            documents: touched.len(),
            links: links.len(),
            vectors: texts.len(),
            oldest: changes.first().map(|c| c.at),
        };
        Ok((changes.last().map(|c| c.seq.get()), Rows::new(links, texts)))
    });
    let (last, rows) = match batch {
        Ok(batch) => batch,
        Err(e) => {
            // Drop what this batch added; the next round starts from `applied` again.
            writer.rollback()?;
            return Err(e);
        }
    };
    let Some(last) = last else {
        return Ok(*applied);
    };
    *more = traced.changes >= BATCH;
    // Queued before the commit, so a derived-rows turn writes them while tantivy
    // commits; the commit never waits for SQLite's write lock.
    let derived = shared.derived.queue(rows, last);
    let committing = Instant::now();
    let mut commit = writer.prepare_commit()?;
    commit.set_payload(&payload::encode(last, derived, shared.file_id.as_deref()));
    commit.commit()?;
    live.reader.reload()?;
    traced.emit(last, started, committing);
    *applied = last;
    {
        // A committed batch is progress: an error of an earlier round is over.
        let mut progress = shared.progress.lock();
        progress.advance(last);
        progress.derived = progress.derived.max(derived);
        progress.error = None;
    }
    shared.wake.notify_all();
    Ok(*applied)
}

/// What one index batch did, for its `debug` event.
#[derive(Default)]
struct BatchTrace {
    changes: usize,
    documents: usize,
    links: usize,
    vectors: usize,
    /// When the batch's oldest change was committed: its lag is how long ago that was.
    oldest: Option<crate::time::Timestamp>,
}

impl BatchTrace {
    /// One event per committed batch: its size, where its time went, and how far behind
    /// the writers it was (commit of its oldest change → searchable now).
    fn emit(&self, through: i64, started: Instant, committing: Instant) {
        let lag_ms = self.oldest.map_or(0, |at| {
            crate::time::Timestamp::now().as_millis() - at.as_millis()
        });
        tracing::debug!(
            target: "cairn::index",
            through,
            changes = self.changes,
            documents = self.documents,
            links = self.links,
            vectors = self.vectors,
            apply_ms = (committing - started).as_millis() as u64,
            commit_ms = committing.elapsed().as_millis() as u64,
            lag_ms,
            "index batch committed"
        );
    }
}

impl Shared {
    /// The texts to embed of the touched rows of the kinds this memory embeds (`None`:
    /// the row is gone). Read inside the batch's snapshot; embedded outside it.
    pub(super) fn embedding_texts(
        &self,
        conn: &rusqlite::Connection,
        touched: &BTreeSet<(DocKind, i64)>,
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

    /// Embeds what [`Shared::embedding_texts`] read. Runs outside any snapshot, on the
    /// derived-rows turn, so a slow model never keeps a reader on the WAL (which would
    /// keep checkpoints from restarting it) nor an index commit waiting, and stops
    /// between batches once `stopped` says so.
    pub(super) fn embed(
        &self,
        texts: Vec<(DocKind, i64, Option<String>)>,
        stopped: &dyn Fn() -> bool,
    ) -> Result<Vec<VectorWrite>> {
        let Some((embedding, _)) = &self.vectors else {
            return Ok(Vec::new());
        };
        vectors::embed(embedding.embedder.as_ref(), texts, stopped)
    }
}

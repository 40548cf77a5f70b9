//! Derived rows — mention links and embedding vectors — written to the file *after* the
//! index batch that derived them, by turns of their own on the process's shared workers
//! ([`super::pool::DERIVERS`]).
//!
//! An index batch reads its changes in one snapshot, updates tantivy's documents, and
//! works out the mention links of those changes and the texts to embed. The documents
//! become searchable when tantivy commits; the rows must go to the file in a SQLite write.
//! Under steady load from other processes SQLite's write lock can be seconds away (new
//! writers arriving all the time, the WAL limit's checkpoints), and an index commit that
//! waited for it kept every search that reads its writes waiting too. So a batch only
//! queues its rows here and commits at once; a derived-rows turn embeds the texts and
//! writes the rows, retrying until it gets the lock, and records in the same transaction how far the
//! rows go (`meta` key `derived_through`).
//!
//! That position is what makes queued rows safe to lose (a crash, a close that could not
//! get the lock in time): every change up to it has its rows in the file. Each index
//! commit also records the position this process knew ([`super::payload::Payload`]). A
//! process that takes the index writer over — after a restart, or when the holder
//! exits — resumes indexing from the larger of the two, so the few changes beyond it are
//! applied and derived again: documents (delete, then add), links (`INSERT OR IGNORE`)
//! and vectors (`INSERT OR REPLACE`) are idempotent.
//!
//! What readers see meanwhile: a change is searchable once its index commit lands (what
//! read-your-writes waits for); the graph step's mention links and the vector channel
//! see its derived rows once a turn wrote them, normally a few milliseconds later;
//! [`crate::Memory::sync`] waits for both.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension};

use super::Shared;
use super::linker::Link;
use super::pool::{Next, Slot};
use crate::db::Db;
use crate::error::Result;
use crate::graph::mention;
use crate::index::schema::DocKind;
use crate::index::vectors::{self, VectorWrite};

/// The `meta` key of the position.
const KEY: &str = "derived_through";
/// How long one attempt waits for this process's writers.
const LOCK_WAIT: Duration = Duration::from_millis(100);
/// How long one attempt polls for SQLite's write lock before it lets this process's
/// writers have the process lock again.
const POLL_FOR: Duration = Duration::from_millis(250);
/// The pause after a write that failed for another reason than a busy lock.
const AFTER_ERROR: Duration = Duration::from_millis(100);
/// How long a closing memory gives the rows still queued.
pub(super) const CLOSE_BUDGET: Duration = Duration::from_millis(100);
/// Queued rows beyond which the indexer stops taking new batches until some are written
/// (bounds the memory of a backlog the file cannot take, e.g. on a full disk).
const MAX_BACKLOG: usize = 200_000;

/// What index batches derived and the file does not hold yet, oldest first.
#[derive(Default)]
pub(super) struct Rows {
    /// Mention links to record.
    pub(super) links: Vec<Link>,
    /// Vectors computed by an attempt whose write failed; older than every text below.
    vectors: Vec<VectorWrite>,
    /// The current text of each touched row of an embedded kind (`None`: the row is gone).
    pub(super) texts: Vec<(DocKind, i64, Option<String>)>,
}

impl Rows {
    /// Rows to queue.
    pub(super) fn new(links: Vec<Link>, texts: Vec<(DocKind, i64, Option<String>)>) -> Rows {
        Rows {
            links,
            vectors: Vec::new(),
            texts,
        }
    }

    fn len(&self) -> usize {
        self.links.len() + self.vectors.len() + self.texts.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `newer` after these rows (vector writes keep their order: a later
    /// deletion of a row must not be overtaken by its earlier vector).
    fn append(&mut self, mut newer: Rows) {
        self.links.append(&mut newer.links);
        self.vectors.append(&mut newer.vectors);
        self.texts.append(&mut newer.texts);
    }
}

/// The queue between the indexer's turns and the derived-rows turns.
#[derive(Default)]
pub(super) struct Derived {
    state: Mutex<State>,
    /// Where the derived-rows turns run (`None`: a read-only memory, or a unit test).
    slot: Option<Arc<Slot>>,
}

#[derive(Default)]
struct State {
    queued: Rows,
    /// Every change up to here has its rows in the file or queued.
    covered: i64,
    /// Every change up to here has its rows in the file.
    written: i64,
    /// A write is running, with rows taken from `queued`.
    writing: bool,
}

impl Derived {
    /// The queue of a memory whose derived-rows turns run on `slot`.
    pub(super) fn new(slot: Option<Arc<Slot>>) -> Derived {
        Derived {
            state: Mutex::default(),
            slot,
        }
    }

    /// Up to where the rows of every change are written or queued: a batch derives the
    /// rows of the changes beyond it only.
    pub(super) fn covered(&self) -> i64 {
        self.state.lock().covered
    }

    /// Whether every queued row is written and no write runs.
    pub(super) fn is_idle(&self) -> bool {
        let state = self.state.lock();
        state.covered <= state.written && !state.writing && state.queued.is_empty()
    }

    /// Whether so many rows wait that the indexer should not derive more yet.
    pub(super) fn backlogged(&self) -> bool {
        self.state.lock().queued.len() >= MAX_BACKLOG
    }

    /// Queues the rows of a batch that applied every change up to `through`, and returns
    /// up to where the file holds every change's rows (for the batch's commit payload).
    /// A batch without rows, with nothing queued or being written before it, is
    /// complete at once.
    pub(super) fn queue(&self, rows: Rows, through: i64) -> i64 {
        let mut state = self.state.lock();
        let caught_up = state.queued.is_empty() && !state.writing && state.written >= state.covered;
        state.covered = state.covered.max(through);
        if rows.is_empty() && caught_up {
            state.written = state.covered;
            return state.written;
        }
        state.queued.append(rows);
        let written = state.written;
        drop(state);
        if let Some(slot) = &self.slot {
            slot.nudge();
        }
        written
    }

    /// This process took the index writer over at a position whose derived rows are in
    /// the file up to `from`: the indexer derives every change after it again.
    pub(super) fn resume(&self, from: i64) {
        let mut state = self.state.lock();
        state.covered = from;
        state.written = state.written.max(from);
    }

    /// Takes what is queued for a write, with the position it brings the file to; `None`
    /// when nothing waits or a write is running.
    fn take(&self) -> Option<(Rows, i64)> {
        let mut state = self.state.lock();
        // Rows queued without moving the position (a backfill pass) are written too.
        if (state.covered <= state.written && state.queued.is_empty()) || state.writing {
            return None;
        }
        state.writing = true;
        Some((std::mem::take(&mut state.queued), state.covered))
    }
}

/// One derived-rows turn: writes whatever is queued, all of it in one transaction.
pub(super) fn turn(shared: &Shared, db: &Db) -> Next {
    let derived = &shared.derived;
    let Some((mut rows, through)) = derived.take() else {
        return Next::Idle;
    };
    let outcome = write(shared, db, &mut rows, through, None);
    let mut state = derived.state.lock();
    state.writing = false;
    match outcome {
        Ok(()) => {
            state.written = state.written.max(through);
            let (written, more) = (
                state.written,
                state.covered > state.written || !state.queued.is_empty(),
            );
            drop(state);
            let mut progress = shared.progress.lock();
            progress.derived = progress.derived.max(written);
            progress.derived_error = None;
            drop(progress);
            shared.wake.notify_all();
            if more { Next::Now } else { Next::Idle }
        }
        Err(e) => {
            // Put back in front of what was queued meanwhile: order matters for vectors.
            let newer = std::mem::take(&mut state.queued);
            rows.append(newer);
            state.queued = rows;
            drop(state);
            if e.is_busy() {
                tracing::debug!(target: "cairn::index", through, "derived rows wait for the write lock");
                Next::Now
            } else {
                tracing::warn!(target: "cairn::index", error = %e, "writing derived rows failed; retrying");
                shared.progress.lock().derived_error = Some(e.to_string());
                shared.wake.notify_all();
                Next::After(AFTER_ERROR)
            }
        }
    }
}

/// The memory closes (no turn runs any more): what is still queued is written within
/// [`CLOSE_BUDGET`], or left to the next holder of the index writer.
pub(super) fn finish(shared: &Shared, db: &Db) {
    let Some((mut rows, through)) = shared.derived.take() else {
        return;
    };
    let deadline = Instant::now() + CLOSE_BUDGET;
    if let Err(e) = write(shared, db, &mut rows, through, Some(deadline)) {
        tracing::debug!(target: "cairn::index", error = %e, through, "closing: derived rows left to the next holder of the index");
    }
}

/// Embeds the texts of `rows` (kept as vectors if the write fails), then writes every row
/// and the position `through` in one transaction.
fn write(
    shared: &Shared,
    db: &Db,
    rows: &mut Rows,
    through: i64,
    closing: Option<Instant>,
) -> Result<()> {
    let started = Instant::now();
    let past_deadline = || closing.is_some_and(|deadline| Instant::now() >= deadline);
    if !rows.texts.is_empty() {
        let texts = std::mem::take(&mut rows.texts);
        match shared.embed(texts.clone(), &past_deadline) {
            Ok(mut vectors) => rows.vectors.append(&mut vectors),
            Err(e) => {
                rows.texts = texts;
                return Err(e);
            }
        }
    }
    let (lock_wait, poll_for) = match closing {
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            (left, left)
        }
        None => (LOCK_WAIT, POLL_FOR),
    };
    db.write_derived(lock_wait, poll_for, |conn| {
        for (chunk, key) in &rows.links {
            mention::link(conn, *chunk, key)?;
        }
        rows.vectors
            .iter()
            .try_for_each(|v| vectors::store(conn, v))?;
        record(conn, through)
    })?;
    tracing::debug!(
        target: "cairn::index",
        through,
        links = rows.links.len(),
        vectors = rows.vectors.len(),
        write_ms = started.elapsed().as_millis() as u64,
        "derived rows written"
    );
    Ok(())
}

/// Records that every change up to `through` has its derived rows in the file (never
/// moving the position back).
fn record(conn: &Connection, through: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), excluded.value)",
    )?
    .execute(rusqlite::params![KEY, through])?;
    Ok(())
}

/// Up to where the file holds every change's derived rows (0 if no process recorded it,
/// or if the row is not a number: deriving everything again is always safe).
pub(super) fn recorded(conn: &Connection) -> Result<i64> {
    let value: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([KEY], |r| r.get(0))
        .optional()?;
    Ok(value.and_then(|text| text.parse().ok()).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;

    fn one_link() -> Rows {
        Rows::new(vec![(ChunkId::from_raw(1), "acme".into())], Vec::new())
    }

    #[test]
    fn a_batch_without_rows_is_complete_only_when_nothing_waits_before_it() {
        let derived = Derived::default();
        assert_eq!(derived.queue(Rows::default(), 5), 5, "nothing to write");
        assert_eq!(
            derived.queue(one_link(), 9),
            5,
            "the link of 6..=9 is queued"
        );
        assert_eq!(
            derived.queue(Rows::default(), 12),
            5,
            "10..=12 have no rows, but come after a queued one"
        );
        assert_eq!(derived.covered(), 12);
        assert_eq!(derived.state.lock().queued.len(), 1);
    }

    #[test]
    fn a_takeover_derives_again_after_what_the_file_holds() {
        let derived = Derived::default();
        derived.queue(one_link(), 9);
        derived.resume(4);
        assert_eq!(derived.covered(), 4, "5.. are derived again");
        assert_eq!(
            derived.queue(Rows::default(), 9),
            4,
            "the queued link still waits"
        );
        let state = derived.state.lock();
        assert_eq!((state.written, state.queued.len()), (4, 1));
    }
}

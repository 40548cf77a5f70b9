//! Derived rows — mention links and embedding vectors — written to the file *after* the
//! index batch that derived them, by a thread of their own.
//!
//! An index batch reads its changes in one snapshot, updates tantivy's documents, and
//! works out the mention links of those changes and the texts to embed. The documents
//! become searchable when tantivy commits; the rows must go to the file in a SQLite write.
//! Under steady load from other processes SQLite's write lock can be seconds away (new
//! writers arriving all the time, the WAL limit's checkpoints), and an index commit that
//! waited for it kept every search that reads its writes waiting too. So a batch only
//! queues its rows here and commits at once; this thread embeds the texts and writes the
//! rows, retrying until it gets the lock, and records in the same transaction how far the
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
//! see its derived rows once this thread wrote them, normally a few milliseconds later;
//! [`crate::Memory::sync`] waits for both.

use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, OptionalExtension};

use super::Shared;
use super::linker::Link;
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

/// The queue between the indexer thread and the derived-rows thread.
#[derive(Default)]
pub(super) struct Derived {
    state: Mutex<State>,
    wake: Condvar,
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
    /// Set when the memory closes: what is still queued by then is written before this
    /// deadline or left to the next holder of the index writer.
    closing: Option<Instant>,
}

impl Derived {
    /// Up to where the rows of every change are written or queued: a batch derives the
    /// rows of the changes beyond it only.
    pub(super) fn covered(&self) -> i64 {
        self.state.lock().covered
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
        } else {
            state.queued.append(rows);
            self.wake.notify_all();
        }
        state.written
    }

    /// This process took the index writer over at a position whose derived rows are in
    /// the file up to `from`: the indexer derives every change after it again.
    pub(super) fn resume(&self, from: i64) {
        let mut state = self.state.lock();
        state.covered = from;
        state.written = state.written.max(from);
    }

    /// Asks the thread to write what is queued within [`CLOSE_BUDGET`] and stop.
    pub(super) fn close(&self) {
        self.state.lock().closing = Some(Instant::now() + CLOSE_BUDGET);
        self.wake.notify_all();
    }
}

/// The derived-rows thread: writes whatever is queued, all of it in one transaction,
/// until the memory closes.
pub(super) fn run(shared: &Shared, db: &Db) {
    let derived = &shared.derived;
    loop {
        let (rows, through, closing) = {
            let mut state = derived.state.lock();
            loop {
                if state.covered > state.written && !state.writing {
                    break;
                }
                if state.closing.is_some() {
                    return;
                }
                derived.wake.wait(&mut state);
            }
            state.writing = true;
            (
                std::mem::take(&mut state.queued),
                state.covered,
                state.closing,
            )
        };
        let mut rows = rows;
        let outcome = write(shared, db, &mut rows, through, closing);
        let mut state = derived.state.lock();
        state.writing = false;
        match outcome {
            Ok(()) => {
                state.written = state.written.max(through);
                let written = state.written;
                drop(state);
                let mut progress = shared.progress.lock();
                progress.derived = progress.derived.max(written);
                progress.derived_error = None;
                drop(progress);
                shared.wake.notify_all();
            }
            Err(e) => {
                if state
                    .closing
                    .is_some_and(|deadline| Instant::now() >= deadline)
                {
                    tracing::debug!(target: "cairn::index", error = %e, through, "closing: derived rows left to the next holder of the index");
                    return;
                }
                // Put back in front of what was queued meanwhile: order matters for vectors.
                let newer = std::mem::take(&mut state.queued);
                rows.append(newer);
                state.queued = rows;
                drop(state);
                if e.is_busy() {
                    tracing::debug!(target: "cairn::index", through, "derived rows wait for the write lock");
                } else {
                    tracing::warn!(target: "cairn::index", error = %e, "writing derived rows failed; retrying");
                    shared.progress.lock().derived_error = Some(e.to_string());
                    shared.wake.notify_all();
                    std::thread::sleep(AFTER_ERROR);
                }
            }
        }
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

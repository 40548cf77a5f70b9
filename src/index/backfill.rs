//! Vectors for rows that predate the embedder.
//!
//! A memory written without an embedder and opened later with one holds rows the indexer
//! never embedded, and the change log cannot bring them back: `meta.derived_through` (and
//! the index's own position) say those changes' derived rows are in the file, which was
//! true of their links. So the write that first records an embedder in a file that already
//! holds rows also records a request (`meta` key `vectors_backfill`), and the holder of the
//! index writer, once it has nothing newer to index, embeds those rows in bounded batches
//! through the derived-rows queue ([`super::derived`]) and removes the request after one
//! whole pass. A pass cut short (a crash, a close, the writer handed over) starts again
//! from the first row at the next holder: rows that got their vector meanwhile are
//! skipped, so a pass is idempotent.

use rusqlite::{Connection, OptionalExtension};

use super::Shared;
use super::derived::Rows;
use crate::db::Db;
use crate::error::Result;
use crate::index::indexer;
use crate::index::schema::DocKind;

/// The `meta` key of the request.
const KEY: &str = "vectors_backfill";
/// Rows read and queued per step: bounds one step's reads and the queue's growth.
const BATCH: usize = 1_024;
/// The kinds a pass visits, in this order (the tables of embedded rows).
const KINDS: [DocKind; 4] = [
    DocKind::Entity,
    DocKind::Relation,
    DocKind::Observation,
    DocKind::Chunk,
];

/// Records a request for a pass if the file already holds rows of an embedded kind
/// (called in the transaction that records the file's first embedder).
pub(crate) fn request_if_rows(conn: &Connection) -> Result<()> {
    let rows: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM entity) OR EXISTS(SELECT 1 FROM relation)
             OR EXISTS(SELECT 1 FROM observation) OR EXISTS(SELECT 1 FROM chunk)",
        [],
        |r| r.get(0),
    )?;
    if rows {
        conn.execute(
            "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, '1')",
            [KEY],
        )?;
    }
    Ok(())
}

/// Whether the file asks for a pass.
pub(super) fn requested(conn: &Connection) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM meta WHERE key = ?1")?
        .query_row([KEY], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Where this process's pass is.
#[derive(Debug, Default)]
pub(super) struct Backfill {
    /// `None`: not looked at the file yet.
    state: Option<State>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// No request in the file (or this memory embeds nothing, or only reads).
    Done,
    /// Next: rows of `KINDS[kind]` with an id above `after`.
    At { kind: usize, after: i64 },
    /// Every row was queued; the request goes once the queue is written.
    Queued,
}

/// What a [`Backfill::step`] did.
#[derive(Debug, PartialEq)]
pub(super) enum Step {
    /// Nothing to do (no request, or the pass is over).
    Done,
    /// Waiting for the derived-rows queue, or rows were queued: more steps follow.
    Working,
}

impl Backfill {
    /// Whether a pass may be due: true until the file was read and said no.
    pub(super) fn pending(&mut self, shared: &Shared, db: &Db) -> Result<bool> {
        Ok(self.state(shared, db)? != State::Done)
    }

    /// Starts the pass over (this process took the index writer: another holder may have
    /// queued rows it never wrote).
    pub(super) fn restart(&mut self) {
        if self.state != Some(State::Done) {
            self.state = None;
        }
    }

    /// One bounded step, taken by the holder of the index writer when nothing newer waits:
    /// queues the next rows without a vector, or ends the pass.
    pub(super) fn step(&mut self, shared: &Shared, db: &Db) -> Result<Step> {
        let state = self.state(shared, db)?;
        if state == State::Done {
            return Ok(Step::Done);
        }
        if !shared.derived.is_idle() {
            // One batch in the queue at a time: the pass never outruns the model.
            return Ok(Step::Working);
        }
        self.state = Some(match state {
            State::At { kind, after } => self.queue_next(shared, db, kind, after)?,
            State::Queued => {
                db.write(|conn| {
                    conn.execute("DELETE FROM meta WHERE key = ?1", [KEY])?;
                    Ok(())
                })?;
                tracing::info!(target: "cairn::index", "vectors of the rows that predate the embedder written");
                State::Done
            }
            State::Done => State::Done,
        });
        Ok(if self.state == Some(State::Done) {
            Step::Done
        } else {
            Step::Working
        })
    }

    fn state(&mut self, shared: &Shared, db: &Db) -> Result<State> {
        if let Some(state) = self.state {
            return Ok(state);
        }
        let wanted = shared.vectors.is_some() && !db.options().read_only && db.read(requested)?;
        let state = if wanted {
            tracing::info!(target: "cairn::index", "embedding the rows that predate the embedder");
            State::At { kind: 0, after: 0 }
        } else {
            State::Done
        };
        self.state = Some(state);
        Ok(state)
    }

    /// Queues the texts of the next rows of `KINDS[kind]` after `after` that lack a vector,
    /// and says where the pass goes on.
    fn queue_next(&self, shared: &Shared, db: &Db, kind: usize, after: i64) -> Result<State> {
        let Some((embedding, _)) = &shared.vectors else {
            return Ok(State::Done);
        };
        let Some(&doc_kind) = KINDS.get(kind) else {
            return Ok(State::Queued);
        };
        if !embedding.kinds.contains(&doc_kind) {
            return Ok(State::At {
                kind: kind + 1,
                after: 0,
            });
        }
        let texts = db.snapshot(|conn| {
            let ids = without_vector(conn, doc_kind, after)?;
            ids.into_iter()
                .map(|id| Ok((doc_kind, id, indexer::embedding_text(conn, doc_kind, id)?)))
                .collect::<Result<Vec<_>>>()
        })?;
        let next = match texts.last() {
            Some(&(_, last, _)) if texts.len() == BATCH => State::At { kind, after: last },
            _ => State::At {
                kind: kind + 1,
                after: 0,
            },
        };
        if !texts.is_empty() {
            let covered = shared.derived.covered();
            shared.derived.queue(Rows::new(Vec::new(), texts), covered);
        }
        Ok(next)
    }
}

/// The next ids of `kind`'s table after `after` that have no vector.
fn without_vector(conn: &Connection, kind: DocKind, after: i64) -> Result<Vec<i64>> {
    let table = kind.as_str();
    let sql = format!(
        "SELECT t.id FROM {table} t
         WHERE t.id > ?1
           AND NOT EXISTS (SELECT 1 FROM vector v WHERE v.kind = ?2 AND v.target = t.id)
         ORDER BY t.id LIMIT ?3"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let ids = statement
        .query_map(rusqlite::params![after, table, BATCH as i64], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

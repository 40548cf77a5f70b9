//! The write path: a process-wide reentrant lock, `BEGIN IMMEDIATE` with bounded retry,
//! and savepoints for writes nested inside writes on the same thread.
//!
//! Threads of one process queue on the [`WriteLock`] instead of spinning on
//! `SQLITE_BUSY`; across processes SQLite's own write lock and `busy_timeout` order the
//! writers, and `begin_immediate` retries the cases the busy handler does not cover
//! until the busy budget is spent.

use std::cell::{Cell, RefCell};
use std::time::{Duration, Instant};

use parking_lot::{ReentrantMutex, ReentrantMutexGuard};
use rusqlite::{Connection, ErrorCode};

use crate::db::connections::Pooled;
use crate::error::{Error, Result};

/// What the thread holding the lock needs to remember between nested writes.
#[derive(Default)]
pub(crate) struct WriteState {
    /// 0 outside a write; 1 inside the outermost transaction; n > 1 inside savepoints.
    depth: Cell<u32>,
    /// In pool mode, the connection the outermost write took from the pool; every call
    /// made by the lock holder (reads included) goes through it so it sees its own writes.
    pinned: RefCell<Option<Pooled>>,
}

/// The process-wide reentrant write lock of one memory.
#[derive(Default)]
pub(crate) struct WriteLock {
    mutex: ReentrantMutex<WriteState>,
}

impl WriteLock {
    pub(crate) fn lock(&self) -> ReentrantMutexGuard<'_, WriteState> {
        self.mutex.lock()
    }

    pub(crate) fn try_lock_for(
        &self,
        wait: Duration,
    ) -> Option<ReentrantMutexGuard<'_, WriteState>> {
        self.mutex.try_lock_for(wait)
    }

    pub(crate) fn is_held_by_this_thread(&self) -> bool {
        self.mutex.is_owned_by_current_thread()
    }
}

impl WriteState {
    pub(crate) fn depth(&self) -> u32 {
        self.depth.get()
    }

    pub(crate) fn pinned(&self) -> &RefCell<Option<Pooled>> {
        &self.pinned
    }
}

/// How the outermost write of a thread waits for SQLite's write lock.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Begin {
    /// SQLite's busy handler, retried until this budget is spent: the callers' writes.
    Queue(Duration),
    /// Asks again every millisecond, for at most this long, then gives up with
    /// [`Error::Busy`]: a background write that must not be starved. SQLite's busy
    /// handler sleeps longer the longer a writer has waited (up to 100 ms), so under
    /// steady load from other processes a writer that has waited long keeps losing the
    /// lock to writers that just arrived; one writer that polls instead gets a turn.
    Poll(Duration),
}

/// Runs `f` as one write on `conn`: the outermost write on this thread opens a
/// `BEGIN IMMEDIATE` transaction (waiting as `begin` says), a nested one a savepoint.
/// The caller holds the lock.
pub(crate) fn run<T>(
    state: &WriteState,
    conn: &Connection,
    begin: Begin,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    let depth = state.depth.get();
    let _depth = DepthGuard::enter(state, conn);
    if depth == 0 {
        let started = Instant::now();
        match begin {
            Begin::Queue(budget) => begin_immediate(conn, budget),
            Begin::Poll(window) => begin_polling(conn, window),
        }
        .map_err(|e| e.with_errno_of(conn))?;
        let begun = Instant::now();
        let result = f(conn);
        let ran = Instant::now();
        let result = finish(conn, result);
        trace_transaction(started, begun, ran, result.is_ok());
        result
    } else {
        let name = format!("cairn_{depth}");
        conn.execute_batch(&format!("SAVEPOINT {name}"))?;
        let result = f(conn);
        finish_savepoint(conn, &name, result)
    }
}

/// One `debug` event per transaction: how long it waited for SQLite's lock (other
/// processes), ran, and committed (the fsync) — what an operator needs to tell contention
/// from slow disks.
fn trace_transaction(started: Instant, begun: Instant, ran: Instant, committed: bool) {
    tracing::debug!(
        target: "cairn::write",
        begin_wait_us = crate::time::micros(begun - started),
        run_us = crate::time::micros(ran - begun),
        commit_us = crate::time::micros(ran.elapsed()),
        committed,
        "transaction"
    );
}

/// Restores the depth when the write ends, and rolls the transaction back if the
/// closure panicked: otherwise the thread's connection would stay inside a transaction
/// that nobody commits, and every later write on it would fail.
struct DepthGuard<'a> {
    state: &'a WriteState,
    conn: &'a Connection,
    depth: u32,
}

impl<'a> DepthGuard<'a> {
    fn enter(state: &'a WriteState, conn: &'a Connection) -> Self {
        let depth = state.depth.get();
        state.depth.set(depth + 1);
        DepthGuard { state, conn, depth }
    }
}

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.state.depth.set(self.depth);
        if self.depth == 0 && std::thread::panicking() {
            rollback_quietly(self.conn);
        }
    }
}

/// `BEGIN IMMEDIATE`, retried with backoff while SQLite reports busy, for at most
/// `budget`. The connection's `busy_timeout` already waits inside SQLite; this loop covers
/// the busy results SQLite returns without calling the busy handler.
pub(crate) fn begin_immediate(conn: &Connection, budget: Duration) -> Result<()> {
    let start = Instant::now();
    let mut backoff = Duration::from_micros(500);
    loop {
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => return Ok(()),
            Err(e) if is_busy(&e) => {
                let waited = start.elapsed();
                if waited >= budget {
                    return Err(Error::Busy { waited });
                }
                std::thread::sleep(backoff.min(budget - waited));
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// `BEGIN IMMEDIATE` asked every millisecond for at most `window`, with SQLite's busy
/// handler off meanwhile (the connection's own timeout is restored afterwards).
fn begin_polling(conn: &Connection, window: Duration) -> Result<()> {
    let start = Instant::now();
    let restore: i64 = conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
    conn.busy_timeout(Duration::ZERO)?;
    let outcome = loop {
        match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => break Ok(()),
            Err(e) if is_busy(&e) => {
                let waited = start.elapsed();
                if waited >= window {
                    break Err(Error::Busy { waited });
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => break Err(e.into()),
        }
    };
    conn.busy_timeout(Duration::from_millis(restore.max(0) as u64))?;
    outcome
}

/// Commits on success, rolls back on error; a failed commit is rolled back too, so the
/// connection is never left inside a transaction.
///
/// A `COMMIT` that fails may already be durable (the WAL frames were written, the fsync
/// that followed failed), so its error is [`Error::OutcomeUnknown`], never an error that
/// claims nothing was written. Only a busy `COMMIT` is known not to have happened.
pub(crate) fn finish<T>(conn: &Connection, result: Result<T>) -> Result<T> {
    match result {
        // The OS error number is read before the rollback, right after the failed call.
        Ok(value) => match conn.execute_batch("COMMIT") {
            Ok(()) => Ok(value),
            Err(e) => {
                let error = commit_error(e).with_errno_of(conn);
                rollback_quietly(conn);
                Err(error)
            }
        },
        Err(e) => {
            let error = e.with_errno_of(conn);
            rollback_quietly(conn);
            Err(error)
        }
    }
}

fn commit_error(e: rusqlite::Error) -> Error {
    if is_busy(&e) {
        e.into()
    } else {
        Error::OutcomeUnknown {
            source: e,
            errno: None,
        }
    }
}

fn finish_savepoint<T>(conn: &Connection, name: &str, result: Result<T>) -> Result<T> {
    match result {
        Ok(value) => {
            conn.execute_batch(&format!("RELEASE {name}"))?;
            Ok(value)
        }
        Err(e) => {
            // Some errors (a full disk, an I/O error, an interrupt) make SQLite roll the
            // whole transaction back by itself, savepoints and all: `ROLLBACK TO` would
            // then fail with "no such savepoint" and hide the cause. The cause is the
            // error, and the transaction is already gone.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
            }
            Err(e)
        }
    }
}

/// Rolls back whatever is open. Its own failure is not reported: the error that made us
/// roll back is the one the caller needs, and SQLite rolls back automatically when the
/// statement that failed already ended the transaction.
pub(crate) fn rollback_quietly(conn: &Connection) {
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
}

pub(crate) fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// True for the UNIQUE / PRIMARY KEY violations (extended codes 2067 / 1555) that mean
/// another writer inserted the same key first.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    const SQLITE_CONSTRAINT_PRIMARYKEY: i32 = 1555;
    const SQLITE_CONSTRAINT_UNIQUE: i32 = 2067;
    match e {
        rusqlite::Error::SqliteFailure(inner, _) => matches!(
            inner.extended_code,
            SQLITE_CONSTRAINT_UNIQUE | SQLITE_CONSTRAINT_PRIMARYKEY
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_table::{conn, count};

    #[test]
    fn nested_error_rolls_back_only_the_savepoint() {
        let c = conn();
        let state = WriteState::default();
        let budget = Begin::Queue(Duration::from_secs(1));
        run(&state, &c, budget, |c| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            let inner: Result<()> = run(&state, c, budget, |c| {
                c.execute("INSERT INTO t VALUES (2)", [])?;
                Err(Error::invalid_input("test", "boom"))
            });
            assert!(inner.is_err());
            Ok(())
        })
        .unwrap();
        assert_eq!(count(&c), 1);
        assert_eq!(state.depth(), 0);
        assert!(c.is_autocommit());
    }

    #[test]
    fn outer_error_rolls_back_everything() {
        let c = conn();
        let state = WriteState::default();
        let budget = Begin::Queue(Duration::from_secs(1));
        let r: Result<()> = run(&state, &c, budget, |c| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            run(&state, c, budget, |c| {
                Ok(c.execute("INSERT INTO t VALUES (2)", [])?)
            })?;
            Err(Error::invalid_input("test", "boom"))
        });
        assert!(r.is_err());
        assert_eq!(count(&c), 0);
        assert!(c.is_autocommit());
    }

    /// SQLite rolls a whole transaction back by itself on some errors (a full disk): the
    /// savepoint is gone then, and the caller must hear the cause, not "no such
    /// savepoint".
    #[test]
    fn a_transaction_sqlite_rolled_back_reports_its_cause() {
        let c = conn();
        let state = WriteState::default();
        let budget = Begin::Queue(Duration::from_secs(1));
        let r: Result<()> = run(&state, &c, budget, |c| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            run(&state, c, budget, |c| {
                c.execute("INSERT INTO t VALUES (2)", [])?;
                // What SQLITE_FULL does to the transaction.
                c.execute_batch("ROLLBACK")?;
                Err(Error::from(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                    None,
                )))
            })
        });
        let e = r.unwrap_err();
        assert!(
            matches!(&e, Error::Sqlite { source: inner, .. } if inner.sqlite_error_code() == Some(ErrorCode::DiskFull)),
            "{e}"
        );
        assert_eq!(count(&c), 0);
        assert!(c.is_autocommit());
        assert_eq!(state.depth(), 0);
    }

    #[test]
    fn unique_violation_is_recognized() {
        let c = conn();
        c.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let e = c.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(is_unique_violation(&e));
        c.execute_batch("CREATE TABLE u(k TEXT UNIQUE); INSERT INTO u VALUES ('a')")
            .unwrap();
        let e = c.execute("INSERT INTO u VALUES ('a')", []).unwrap_err();
        assert!(is_unique_violation(&e));
    }
}

//! Group commit: concurrent single-call writes share one transaction.
//!
//! A commit costs far more than the rows of one triple (WAL frames, a checkpoint now and
//! then), and the process-wide lock makes writers of one process wait for each other
//! anyway. So a writer does not run its work itself: it queues a [`Job`] and takes the
//! lock. Whoever gets the lock first (the *leader*) runs every queued job in one
//! `BEGIN IMMEDIATE` transaction, each in its own savepoint, commits once, and hands each
//! job its result. A writer that gets the lock later finds its result already there.
//!
//! Every caller still returns only after the transaction holding its write committed, so
//! an acknowledged write is exactly as durable as before; only the number of commits
//! shrinks. A job that fails rolls back its own savepoint and leaves the others alone.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::Connection;

use crate::db::write::{self, WriteState};
use crate::error::{Error, Result};

/// Work queued by one writer.
pub(crate) trait Job: Send {
    /// Runs the work inside the leader's transaction (in a savepoint when `isolate`).
    fn run(
        self: Box<Self>,
        state: &WriteState,
        conn: &Connection,
        budget: Duration,
        isolate: bool,
    ) -> Box<dyn Ran>;
    /// The transaction could not start: report `error` without running.
    fn fail(self: Box<Self>, error: &Error);
}

/// Work that ran and waits for the commit's outcome.
pub(crate) trait Ran: Send {
    /// The job's own error, if it failed.
    fn error(&self) -> Option<&Error>;
    /// Hands the writer its result: its own error if it failed, the commit's error if
    /// the transaction did not commit, its value otherwise.
    fn deliver(self: Box<Self>, commit: Result<(), &Error>);
}

/// Where a job's result waits for its writer.
pub(crate) type Slot<T> = Arc<Mutex<Option<Result<T>>>>;

/// A writer's closure and the slot its result goes to.
pub(crate) struct Pending<T, F> {
    pub(crate) f: F,
    pub(crate) slot: Slot<T>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn run(
        self: Box<Self>,
        state: &WriteState,
        conn: &Connection,
        budget: Duration,
        isolate: bool,
    ) -> Box<dyn Ran> {
        let result = if isolate {
            write::run(state, conn, write::Begin::Queue(budget), self.f)
        } else {
            (self.f)(conn)
        };
        Box::new(Finished {
            result,
            slot: self.slot,
        })
    }

    fn fail(self: Box<Self>, error: &Error) {
        *self.slot.lock() = Some(Err(error.replicate()));
    }
}

struct Finished<T> {
    result: Result<T>,
    slot: Slot<T>,
}

impl<T: Send> Ran for Finished<T> {
    fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    fn deliver(self: Box<Self>, commit: Result<(), &Error>) {
        let result = match (commit, self.result) {
            (_, Err(own)) => Err(own),
            (Ok(()), Ok(value)) => Ok(value),
            (Err(e), Ok(_)) => Err(e.replicate()),
        };
        *self.slot.lock() = Some(result);
    }
}

/// Jobs waiting for a leader, and whether one is at work.
///
/// Waiting writers sleep on a condition variable, not on the write lock: a writer whose
/// job a leader already ran must be able to return (and queue its next job) without
/// queueing for the lock behind the leader, or groups never grow past one job.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    led: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: Vec<Box<dyn Job>>,
    leader_active: bool,
}

impl Queue {
    /// Queues `job` and returns once its result is in `slot`: either another writer ran
    /// it, or this thread became the leader and ran it with everything else queued.
    /// `lead_group` runs a group: it takes the write lock, then [`Queue::take`]s the jobs.
    pub(crate) fn submit<T>(&self, job: Box<dyn Job>, slot: &Slot<T>, lead_group: impl FnOnce()) {
        let mut state = self.state.lock();
        state.jobs.push(job);
        loop {
            if slot.lock().is_some() {
                return;
            }
            if !state.leader_active {
                state.leader_active = true;
                drop(state);
                // Writers just woken by the previous leader are about to queue their
                // next jobs: give them the CPU for a moment so this group includes them.
                std::thread::yield_now();
                // Whatever happens inside, the next leader must be able to take over.
                let _handover = Handover(self);
                lead_group();
                return;
            }
            self.led.wait(&mut state);
        }
    }
}

impl Queue {
    /// Everything queued so far (the leader calls this once it holds the write lock).
    pub(crate) fn take(&self) -> Vec<Box<dyn Job>> {
        std::mem::take(&mut self.state.lock().jobs)
    }
}

/// Ends a leader's turn, also when the group panicked.
struct Handover<'a>(&'a Queue);

impl Drop for Handover<'_> {
    fn drop(&mut self) {
        self.0.state.lock().leader_active = false;
        self.0.led.notify_all();
    }
}

/// Leader's side: runs `jobs` in one transaction on `conn` and delivers every result.
/// `begin_and_run` is the write path ([`write::run`] at depth 0) with the lock held.
pub(crate) fn lead(
    mut jobs: Vec<Box<dyn Job>>,
    state: &WriteState,
    budget: Duration,
    begin_and_run: impl FnOnce(&mut dyn FnMut(&Connection) -> Result<()>) -> Result<()>,
) {
    // One job alone needs no savepoint: if it fails, the whole transaction rolls back,
    // which is exactly its own work.
    let isolate = jobs.len() > 1;
    tracing::debug!(target: "cairn::write", jobs = jobs.len(), "group commit");
    let mut ran: Vec<Box<dyn Ran>> = Vec::with_capacity(jobs.len());
    // Run in order, and stop at a job whose failure made SQLite roll the whole
    // transaction back (a full disk): the jobs after it would run outside any
    // transaction. Those not run hear the failure through `fail`.
    jobs.reverse();
    let outcome = begin_and_run(&mut |conn| {
        while let Some(job) = jobs.pop() {
            ran.push(job.run(state, conn, budget, isolate));
            if isolate
                && conn.is_autocommit()
                && let Some(e) = ran.last().and_then(|r| r.error())
            {
                return Err(e.replicate());
            }
        }
        match ran.iter().find_map(|r| r.error()) {
            Some(e) if !isolate => Err(e.replicate()),
            _ => Ok(()),
        }
    });
    match &outcome {
        Ok(()) => ran.into_iter().for_each(|r| r.deliver(Ok(()))),
        Err(e) => {
            ran.into_iter().for_each(|r| r.deliver(Err(e)));
            jobs.into_iter().for_each(|j| j.fail(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_table::{conn, count};

    /// A job inserting `x`, failing afterwards when `fail`.
    fn job(x: i64, fail: bool) -> (Box<dyn Job>, Slot<i64>) {
        let slot: Slot<i64> = Arc::default();
        let f = move |c: &Connection| -> Result<i64> {
            c.execute("INSERT INTO t VALUES (?1)", [x])?;
            if fail {
                return Err(Error::invalid_input("job", "planted failure"));
            }
            Ok(x)
        };
        (
            Box::new(Pending {
                f,
                slot: Arc::clone(&slot),
            }),
            slot,
        )
    }

    fn lead_on(c: &Connection, jobs: Vec<Box<dyn Job>>) {
        let state = WriteState::default();
        let budget = Duration::from_secs(1);
        lead(jobs, &state, budget, |run_all| {
            write::run(&state, c, write::Begin::Queue(budget), run_all)
        });
    }

    fn take<T>(slot: &Slot<T>) -> Result<T> {
        slot.lock().take().expect("a result was delivered")
    }

    #[test]
    fn a_failing_job_does_not_take_the_group_down() {
        let c = conn();
        let (a, sa) = job(1, false);
        let (b, sb) = job(2, true);
        let (d, sd) = job(3, false);
        lead_on(&c, vec![a, b, d]);
        assert_eq!(take(&sa).unwrap(), 1);
        assert!(take(&sb).unwrap_err().is_invalid_input());
        assert_eq!(take(&sd).unwrap(), 3);
        assert_eq!(
            count(&c),
            2,
            "the failed job's insert was rolled back, the others kept"
        );
        assert!(c.is_autocommit());
    }

    #[test]
    fn a_lone_failing_job_leaves_nothing_behind() {
        let c = conn();
        let (a, sa) = job(1, true);
        lead_on(&c, vec![a]);
        assert!(
            take(&sa).unwrap_err().is_invalid_input(),
            "its own error, not a shared one"
        );
        assert_eq!(count(&c), 0);
        assert!(c.is_autocommit());
    }

    #[test]
    fn when_the_transaction_cannot_start_every_writer_hears_why() {
        let (a, sa) = job(1, false);
        let (b, sb) = job(2, false);
        let state = WriteState::default();
        lead(vec![a, b], &state, Duration::from_secs(1), |_| {
            Err(Error::Busy {
                waited: Duration::from_millis(5),
            })
        });
        assert!(take(&sa).unwrap_err().is_busy());
        assert!(take(&sb).unwrap_err().is_busy());
    }

    #[test]
    fn a_failed_commit_reaches_every_writer() {
        let c = conn();
        let (a, sa) = job(1, false);
        let (b, sb) = job(2, false);
        let state = WriteState::default();
        lead(vec![a, b], &state, Duration::from_secs(1), |run_all| {
            c.execute_batch("BEGIN")?;
            run_all(&c)?;
            c.execute_batch("ROLLBACK")?;
            Err(Error::Sqlite {
                source: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                    Some("disk I/O error".into()),
                ),
                errno: None,
            })
        });
        for slot in [&sa, &sb] {
            assert!(matches!(take(slot), Err(Error::Sqlite { .. })));
        }
        assert_eq!(count(&c), 0);
    }
}

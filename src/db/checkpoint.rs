//! Keeping the WAL bounded, under the file's [`CheckpointPolicy`].
//!
//! *Standalone*: SQLite's automatic PASSIVE checkpoint runs inside commits (set up by
//! `connections::init_connection`); on top of it, the memory's background thread calls
//! [`Checkpointer::idle_tick`], which runs one TRUNCATE checkpoint once the `-wal` file
//! has not changed for [`IDLE_AFTER`] — so a memory at rest is one file again, and a
//! copy of the main file alone is complete.
//!
//! Under steady load a standalone memory never goes idle, and with readers always present
//! the PASSIVE checkpoints cannot restart the log, so the `-wal` file would grow without
//! bound. [`Checkpointer::after_commit`] caps it: once the file passes
//! `Options::wal_limit_bytes`, the committing writer runs a TRUNCATE checkpoint that waits
//! at most [`LIMIT_BUSY`] for readers (their snapshots are short), at most once per
//! [`LIMIT_PAUSE`].
//!
//! *Replicated*: no automatic checkpoints; a replication tool (Litestream) checkpoints.
//! The only thing cairn does is the guard in [`Checkpointer::after_commit`]: a PASSIVE
//! checkpoint when the `-wal` file has grown past `Options::wal_guard_bytes`, at most once
//! per [`GUARD_PAUSE`] (a PASSIVE checkpoint never shrinks the file, so without the pause
//! every later commit would trip it again). PASSIVE takes no lock a reader or writer
//! waits for and never restarts the WAL, so it cannot cut the log out from under the
//! tool; FULL, RESTART and TRUNCATE can (they stall writers for the whole busy timeout
//! while Litestream holds its read transaction) and are never run in this mode.
//!
//! Activity is judged by the `-wal` file's size and modification time rather than by
//! this process's own commits, so another process writing the same file also counts as
//! "not idle", and of several idle processes the first one to truncate ends the work
//! of the others.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension};

use crate::config::CheckpointPolicy;
use crate::error::Result;
use crate::time::Timestamp;

/// How long the `-wal` file must stay unchanged before a standalone memory truncates it.
pub(crate) const IDLE_AFTER: Duration = Duration::from_secs(1);
/// How long an idle checkpoint waits for readers before giving up until the next change.
const IDLE_BUSY: Duration = Duration::from_millis(50);
/// At least this long between two guard checkpoints.
pub(crate) const GUARD_PAUSE: Duration = Duration::from_secs(1);
/// How long a standalone limit checkpoint waits for readers: cairn's readers hold their
/// snapshots for one search or one index batch, so a short wait finds a gap.
const LIMIT_BUSY: Duration = Duration::from_millis(100);
/// At least this long between two limit checkpoints (one that found no gap is retried
/// after it, not on every commit).
const LIMIT_PAUSE: Duration = Duration::from_millis(100);
/// The `meta` row that records the file's policy.
const POLICY_KEY: &str = "checkpoint_policy";

/// Which checkpoint ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckpointMode {
    /// Copies what it can without waiting for anyone; the WAL is kept.
    Passive,
    /// Waits (up to a bound) for readers, copies everything and empties the `-wal` file.
    Truncate,
}

impl CheckpointMode {
    fn pragma(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
            CheckpointMode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
        }
    }
}

/// Why a checkpoint ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckpointTrigger {
    /// A standalone memory was idle.
    Idle,
    /// A replicated memory's WAL grew past the guard.
    WalGuard,
    /// A standalone memory's WAL grew past its limit under steady load.
    WalLimit,
    /// [`crate::Memory::checkpoint`].
    Manual,
}

/// One checkpoint run by this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CheckpointRun {
    /// When it finished.
    pub at: Timestamp,
    /// PASSIVE or TRUNCATE.
    pub mode: CheckpointMode,
    /// Why it ran.
    pub trigger: CheckpointTrigger,
    /// Frames in the WAL when it ran.
    pub wal_frames: u64,
    /// Frames copied into the database file (all of them when `complete`).
    pub checkpointed_frames: u64,
    /// False when a reader or writer kept it from finishing (SQLite's `SQLITE_BUSY`).
    pub complete: bool,
}

/// The state of a memory's write-ahead log; see [`crate::Memory::wal_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WalStatus {
    /// The policy this memory runs under.
    pub policy: CheckpointPolicy,
    /// Size of the `-wal` file in bytes (0 when there is none).
    pub wal_bytes: u64,
    /// When the main database file was last written. In WAL mode only checkpoints write
    /// it (besides its creation and schema setup), so this is the last checkpoint, by any
    /// process, that copied at least one page.
    pub last_checkpoint_at: Option<Timestamp>,
    /// The last checkpoint this process ran.
    pub last_run: Option<CheckpointRun>,
    /// Checkpoints this process ran.
    pub runs: u64,
    /// Of those, how many the replicated-mode WAL guard (or, standalone, the WAL limit)
    /// ran.
    pub guard_trips: u64,
    /// The guard's threshold ([`crate::Options::wal_guard_bytes`]).
    pub guard_bytes: u64,
}

/// Size and modification time of the `-wal` file: it changes with every commit.
type WalSignature = (u64, SystemTime);

/// What one process knows about the checkpoints of one file.
pub(crate) struct Checkpointer {
    policy: CheckpointPolicy,
    guard_bytes: u64,
    limit_bytes: u64,
    db_path: PathBuf,
    wal_path: PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    seen: Option<WalSignature>,
    unchanged_since: Option<Instant>,
    /// The WAL an idle checkpoint was last tried on: not tried again until it changes.
    tried: Option<WalSignature>,
    last_guard: Option<Instant>,
    last_run: Option<CheckpointRun>,
    runs: u64,
    guard_trips: u64,
}

impl Checkpointer {
    pub(crate) fn new(
        db_path: &Path,
        policy: CheckpointPolicy,
        guard_bytes: u64,
        limit_bytes: u64,
    ) -> Self {
        Checkpointer {
            policy,
            guard_bytes,
            limit_bytes,
            db_path: db_path.to_owned(),
            wal_path: super::sibling(db_path, "-wal"),
            state: Mutex::new(State::default()),
        }
    }

    /// The checkpoint a standalone memory wants now, if any: TRUNCATE once the WAL has
    /// been unchanged for [`IDLE_AFTER`], and only once per state of the WAL.
    pub(crate) fn idle_tick(&self) -> Option<CheckpointMode> {
        if self.policy != CheckpointPolicy::Standalone {
            return None;
        }
        let signature = self.wal_signature()?;
        let mut state = self.state.lock();
        if state.seen != Some(signature) {
            state.seen = Some(signature);
            state.unchanged_since = Some(Instant::now());
            return None;
        }
        let quiet = state
            .unchanged_since
            .is_some_and(|t| t.elapsed() >= IDLE_AFTER);
        if !quiet || state.tried == Some(signature) {
            return None;
        }
        state.tried = Some(signature);
        Some(CheckpointMode::Truncate)
    }

    /// The checkpoint a memory wants after a commit: for a replicated one, PASSIVE when
    /// the WAL is over the guard and the last guard checkpoint is [`GUARD_PAUSE`] ago;
    /// for a standalone one, TRUNCATE when the WAL is over its limit and the last limit
    /// checkpoint is [`LIMIT_PAUSE`] ago.
    pub(crate) fn after_commit(&self) -> Option<(CheckpointMode, CheckpointTrigger)> {
        let (threshold, pause, wanted) = match self.policy {
            CheckpointPolicy::Replicated => (
                self.guard_bytes,
                GUARD_PAUSE,
                (CheckpointMode::Passive, CheckpointTrigger::WalGuard),
            ),
            CheckpointPolicy::Standalone => (
                self.limit_bytes,
                LIMIT_PAUSE,
                (CheckpointMode::Truncate, CheckpointTrigger::WalLimit),
            ),
        };
        let (bytes, _) = self.wal_signature()?;
        let mut state = self.state.lock();
        let paused = state.last_guard.is_some_and(|t| t.elapsed() < pause);
        if bytes <= threshold || paused {
            return None;
        }
        state.last_guard = Some(Instant::now());
        tracing::debug!(target: "cairn::checkpoint", wal_bytes = bytes, threshold, "WAL over its bound");
        Some(wanted)
    }

    /// The checkpoint [`crate::Memory::checkpoint`] runs: the strongest the policy allows.
    pub(crate) fn manual_mode(&self) -> CheckpointMode {
        match self.policy {
            CheckpointPolicy::Standalone => CheckpointMode::Truncate,
            CheckpointPolicy::Replicated => CheckpointMode::Passive,
        }
    }

    /// How long a checkpoint of `trigger` may wait for readers and writers.
    pub(crate) fn busy_wait(trigger: CheckpointTrigger, budget: Duration) -> Duration {
        match trigger {
            CheckpointTrigger::Idle => IDLE_BUSY,
            CheckpointTrigger::WalLimit => LIMIT_BUSY,
            CheckpointTrigger::WalGuard | CheckpointTrigger::Manual => budget,
        }
    }

    pub(crate) fn record(&self, run: CheckpointRun) {
        let mut state = self.state.lock();
        state.runs += 1;
        if matches!(
            run.trigger,
            CheckpointTrigger::WalGuard | CheckpointTrigger::WalLimit
        ) {
            state.guard_trips += 1;
        }
        state.last_run = Some(run);
    }

    pub(crate) fn status(&self) -> WalStatus {
        let state = self.state.lock();
        WalStatus {
            policy: self.policy,
            wal_bytes: self.wal_signature().map_or(0, |(bytes, _)| bytes),
            last_checkpoint_at: std::fs::metadata(&self.db_path)
                .and_then(|m| m.modified())
                .ok()
                .map(Timestamp::from),
            last_run: state.last_run,
            runs: state.runs,
            guard_trips: state.guard_trips,
            guard_bytes: self.guard_bytes,
        }
    }

    /// `None` when there is no `-wal` file or it is empty: nothing to checkpoint.
    fn wal_signature(&self) -> Option<WalSignature> {
        let meta = std::fs::metadata(&self.wal_path).ok()?;
        let modified = meta.modified().ok()?;
        (meta.len() > 0).then_some((meta.len(), modified))
    }
}

/// Runs one checkpoint of `mode` on `conn`, waiting at most `wait` for other
/// connections, and restores the connection's busy timeout to `budget` afterwards.
pub(crate) fn run(
    conn: &Connection,
    mode: CheckpointMode,
    trigger: CheckpointTrigger,
    wait: Duration,
    budget: Duration,
) -> Result<CheckpointRun> {
    let started = std::time::Instant::now();
    conn.busy_timeout(wait)?;
    let row = conn.query_row(mode.pragma(), [], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    });
    conn.busy_timeout(budget)?;
    let (busy, log, checkpointed) = row?;
    tracing::debug!(
        target: "cairn::checkpoint",
        ?mode,
        ?trigger,
        wal_frames = log,
        checkpointed_frames = checkpointed,
        complete = busy == 0,
        took_us = crate::time::micros(started.elapsed()),
        "checkpoint"
    );
    Ok(CheckpointRun {
        at: Timestamp::now(),
        mode,
        trigger,
        // -1 when the file is not in WAL mode; nothing was logged then.
        wal_frames: log.max(0) as u64,
        checkpointed_frames: checkpointed.max(0) as u64,
        complete: busy == 0,
    })
}

/// The policy to run with: `explicit` if the caller set one (recorded in the file when it
/// differs), otherwise the one recorded in the file, otherwise standalone.
pub(crate) fn resolve_policy(
    conn: &Connection,
    explicit: Option<CheckpointPolicy>,
    read_only: bool,
) -> Result<CheckpointPolicy> {
    let stored = stored_policy(conn)?;
    let Some(wanted) = explicit else {
        return Ok(stored.unwrap_or_default());
    };
    if stored != Some(wanted) && !read_only {
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (POLICY_KEY, wanted.as_str()),
        )?;
    }
    Ok(wanted)
}

fn stored_policy(conn: &Connection) -> Result<Option<CheckpointPolicy>> {
    let name: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [POLICY_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    match name {
        None => Ok(None),
        Some(name) => CheckpointPolicy::from_name(&name).map(Some).ok_or_else(|| {
            crate::Error::invalid_input(
                "database file",
                format!("unknown checkpoint policy {name:?} in its meta table"),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_file(dir: &Path, bytes: usize) -> PathBuf {
        let db = dir.join("c.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::write(dir.join("c.db-wal"), vec![0u8; bytes]).unwrap();
        db
    }

    #[test]
    fn idle_truncate_waits_for_a_quiet_wal_and_is_tried_once_per_state() {
        let dir = tempfile::tempdir().unwrap();
        let db = wal_file(dir.path(), 100);
        let c = Checkpointer::new(&db, CheckpointPolicy::Standalone, 0, u64::MAX);
        assert_eq!(c.idle_tick(), None, "first sight starts the quiet period");
        assert_eq!(c.idle_tick(), None, "not quiet for long enough yet");
        c.state.lock().unchanged_since = Some(Instant::now() - IDLE_AFTER);
        assert_eq!(c.idle_tick(), Some(CheckpointMode::Truncate));
        assert_eq!(c.idle_tick(), None, "the same WAL is not tried twice");
        std::fs::write(dir.path().join("c.db-wal"), vec![0u8; 200]).unwrap();
        assert_eq!(c.idle_tick(), None, "a change restarts the quiet period");
        std::fs::write(dir.path().join("c.db-wal"), b"").unwrap();
        assert_eq!(c.idle_tick(), None, "an empty WAL needs nothing");
    }

    #[test]
    fn replicated_memories_never_truncate_and_guard_with_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let db = wal_file(dir.path(), 100);
        let small = Checkpointer::new(&db, CheckpointPolicy::Replicated, 100, 0);
        assert_eq!(small.after_commit(), None, "at the guard, not over it");
        let c = Checkpointer::new(&db, CheckpointPolicy::Replicated, 99, 0);
        c.state.lock().unchanged_since = Some(Instant::now() - IDLE_AFTER * 10);
        c.state.lock().seen = c.wal_signature();
        assert_eq!(c.idle_tick(), None);
        assert_eq!(c.manual_mode(), CheckpointMode::Passive);
        let guard = Some((CheckpointMode::Passive, CheckpointTrigger::WalGuard));
        assert_eq!(c.after_commit(), guard);
        assert_eq!(c.after_commit(), None, "paused after a guard checkpoint");
        c.state.lock().last_guard = Some(Instant::now() - GUARD_PAUSE);
        assert_eq!(c.after_commit(), guard);
        let standalone = Checkpointer::new(&db, CheckpointPolicy::Standalone, 0, 100);
        assert_eq!(
            standalone.after_commit(),
            None,
            "under its limit SQLite's autocheckpoint does it"
        );
    }

    #[test]
    fn a_standalone_wal_over_its_limit_is_truncated_with_a_pause() {
        let dir = tempfile::tempdir().unwrap();
        let db = wal_file(dir.path(), 100);
        let c = Checkpointer::new(&db, CheckpointPolicy::Standalone, 0, 99);
        let limit = Some((CheckpointMode::Truncate, CheckpointTrigger::WalLimit));
        assert_eq!(c.after_commit(), limit);
        assert_eq!(c.after_commit(), None, "paused after a limit checkpoint");
        c.state.lock().last_guard = Some(Instant::now() - LIMIT_PAUSE);
        assert_eq!(c.after_commit(), limit);
    }

    #[test]
    fn the_policy_is_recorded_and_followed() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .unwrap();
        let resolve = |p| resolve_policy(&conn, p, false).unwrap();
        assert_eq!(resolve(None), CheckpointPolicy::Standalone);
        assert_eq!(
            resolve(Some(CheckpointPolicy::Replicated)),
            CheckpointPolicy::Replicated
        );
        assert_eq!(
            resolve(None),
            CheckpointPolicy::Replicated,
            "the file remembers"
        );
        conn.execute("UPDATE meta SET value = 'sometimes'", [])
            .unwrap();
        assert!(resolve_policy(&conn, None, false).is_err());
    }
}

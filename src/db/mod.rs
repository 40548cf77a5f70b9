//! The database layer: connections, pragmas, the write lock, migrations.
//!
//! Everything above this module sees SQLite only through [`Db::read`], [`Db::snapshot`]
//! and [`Db::write`]; it never opens connections or transactions itself.

pub(crate) mod checkpoint;
pub(crate) mod connections;
pub(crate) mod group;
pub(crate) mod identity;
pub(crate) mod migrate;
pub(crate) mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::ReentrantMutexGuard;
use rusqlite::Connection;

use crate::config::{CheckpointPolicy, Options};
use crate::error::{Error, Result};
use checkpoint::{CheckpointRun, CheckpointTrigger, Checkpointer, WalStatus};
use connections::Connections;
use write::{WriteLock, WriteState};

/// One open memory file.
pub(crate) struct Db {
    // Field order matters: connections close before the ephemeral file is removed.
    connections: Connections,
    lock: WriteLock,
    queue: group::Queue,
    options: Options,
    checkpoints: Checkpointer,
    path: PathBuf,
    /// Called after every outermost write commits (the indexer's wake-up).
    on_commit: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// The newest change-log `seq` a write of this process committed: what a search with
    /// read-your-writes waits for (never other processes' backlog).
    own_seq: AtomicI64,
    /// Reads the newest `seq` inside a write transaction (the change log's owner,
    /// `graph::change`, provides it; `db` does not know the table).
    newest_seq: OnceLock<fn(&Connection) -> Result<i64>>,
    /// The shared lock on `<file>.lock` every open holds (see [`open_lock`]); released
    /// after the connections closed.
    _open_lock: Option<std::fs::File>,
    _ephemeral: Option<EphemeralFile>,
}

impl Db {
    pub(crate) fn open(path: &Path, mut options: Options) -> Result<Db> {
        if path.as_os_str().is_empty() || path == Path::new(":memory:") {
            return Err(Error::invalid_input(
                "path",
                "an in-memory path gives every thread its own database; use Memory::ephemeral()",
            ));
        }
        // Before anything is created: a key this build cannot use, an empty passphrase,
        // or a key for a plain file is refused with the file untouched.
        if let Some(key) = &options.key {
            if !cfg!(feature = "encryption") {
                return Err(Error::EncryptionUnavailable);
            }
            key.check()?;
            options.file_key = Some(key.for_file(path)?);
        }
        if options.read_only {
            if !path.exists() {
                return Err(Error::file(
                    path,
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no memory file there (a read-only open creates nothing)",
                    ),
                ));
            }
            // A file nobody may write here (this user, or anyone on a read-only mount)
            // whose WAL is empty: read it as immutable, so that no `-wal`/`-shm` is made
            // beside it (a read-only connection would create them and never remove them).
            options.immutable = probe_write(path).is_err() && wal_is_empty(path);
        } else {
            // Owner-only from the start (SQLite gives `-wal` and `-shm` the file's mode).
            // Failing here (a missing folder, say) is left to SQLite's open to report.
            let _ = crate::files::create_private_file(path);
            // SQLite would open a file it may not write read-only without a word, and
            // fail at the first write (or leave reader-owned `-wal`/`-shm` behind).
            if let Err(e) = probe_write(path)
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                )
            {
                return Err(Error::file(path, e));
            }
        }
        let open_lock = open_lock(path, options.read_only)?;
        let assumed = options.policy();
        let (policy, setup) = match prepare_file_within_budget(path, &mut options) {
            // No `-shm` can be made here (a read-only folder or mount): with an empty WAL
            // there is nothing SQLite needs one for.
            Err(e)
                if options.read_only
                    && !options.immutable
                    && cannot_open(&e)
                    && wal_is_empty(path) =>
            {
                options.immutable = true;
                prepare_file_within_budget(path, &mut options)
            }
            other => other,
        }
        .map_err(|e| open_error(not_a_database(e, path, &options), path, &options))?;
        options.checkpoint_policy = Some(policy);
        if policy != assumed {
            // Its pragmas depend on the policy, which the file only now told.
            connections::apply_pragmas(&setup, &options)?;
        }
        let connections = Connections::new(path, &options)?;
        // The setup connection becomes this thread's: a cold open opens the file once,
        // and no close of a last connection (a checkpoint, the WAL deleted and made
        // again) happens in between.
        connections.adopt(setup);
        Ok(Db {
            connections,
            lock: WriteLock::default(),
            queue: group::Queue::default(),
            checkpoints: Checkpointer::new(
                path,
                policy,
                options.wal_guard_bytes,
                options.wal_limit_bytes,
            ),
            options,
            path: path.to_owned(),
            on_commit: OnceLock::new(),
            own_seq: AtomicI64::new(0),
            newest_seq: OnceLock::new(),
            _open_lock: open_lock,
            _ephemeral: None,
        })
    }

    /// A fresh database in the temporary directory, removed when the last handle drops.
    pub(crate) fn ephemeral(options: Options) -> Result<Db> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "cairn-ephemeral-{}-{nanos}-{}.db",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let guard = EphemeralFile(path.clone());
        let mut db = Db::open(&path, options)?;
        db._ephemeral = Some(guard);
        Ok(db)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn options(&self) -> &Options {
        &self.options
    }

    /// Runs `f` on a connection for reading. While this thread is inside a write, that
    /// is the write's own connection, so the read sees the write's uncommitted rows.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.lock.is_held_by_this_thread() {
            let state = self.lock.lock();
            let pinned = state.pinned().borrow();
            if let Some(conn) = pinned.as_ref() {
                return f(conn);
            }
        }
        self.connections.with(f)
    }

    /// Like [`Db::read`], but every statement in `f` sees one snapshot of the file.
    pub(crate) fn snapshot<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.read(|conn| {
            if !conn.is_autocommit() {
                return f(conn);
            }
            conn.execute_batch("BEGIN DEFERRED")?;
            let result = f(conn);
            write::rollback_quietly(conn);
            result
        })
    }

    /// Runs `f` as one write transaction: under the process-wide lock, in
    /// `BEGIN IMMEDIATE`, or in a savepoint when this thread is already writing.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if self.options.read_only {
            return Err(self.options.read_only_error());
        }
        let state = self.queue_for_lock();
        self.write_locked(&state, f)
    }

    /// The process-wide write lock, with a `debug` event saying how long this thread
    /// queued behind the process's other writers.
    fn queue_for_lock(&self) -> ReentrantMutexGuard<'_, WriteState> {
        let asked = std::time::Instant::now();
        let state = self.lock.lock();
        tracing::debug!(
            target: "cairn::write",
            lock_wait_us = crate::time::micros(asked.elapsed()),
            "process write lock"
        );
        state
    }

    /// A write of derived rows (mention links, vectors) by a background thread: gives up
    /// with [`Error::Busy`] if the process-wide lock is not free within `lock_wait` (a
    /// caller holding it in a `transaction()` may be waiting for that very thread, and
    /// queueing behind it without a bound would deadlock), then polls for SQLite's write
    /// lock for at most `poll_for` ([`write::Begin::Poll`]). Its commit is not one of
    /// this process's own writes: a read-your-writes search never waits for the index to
    /// reach the change-log position it happened to commit at.
    pub(crate) fn write_derived<T>(
        &self,
        lock_wait: Duration,
        poll_for: Duration,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        if self.options.read_only {
            return Err(self.options.read_only_error());
        }
        let Some(state) = self.lock.try_lock_for(lock_wait) else {
            return Err(Error::Busy { waited: lock_wait });
        };
        let mode = Mode {
            begin: write::Begin::Poll(poll_for),
            own: false,
        };
        self.write_in_mode(&state, mode, f)
    }

    /// Like [`Db::write`], but `f` may be run by another writer thread together with
    /// other writers' work in one transaction (group commit, see [`group`]). Returns
    /// after the transaction holding `f`'s writes committed, or with its error.
    pub(crate) fn write_grouped<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        if self.options.read_only {
            return Err(self.options.read_only_error());
        }
        if self.lock.is_held_by_this_thread() {
            // Inside a write already: join it, as any nested write does.
            return self.write(f);
        }
        let slot: group::Slot<T> = Arc::default();
        let job = Box::new(group::Pending {
            f,
            slot: Arc::clone(&slot),
        });
        self.queue.submit(job, &slot, || {
            let state = self.queue_for_lock();
            group::lead(
                self.queue.take(),
                &state,
                self.options.busy_timeout,
                |run_all| self.write_locked(&state, |conn| run_all(conn)),
            );
        });
        slot.lock().take().unwrap_or_else(|| {
            // Unreachable: submit returns only once a leader delivered the result.
            Err(Error::SharedCommit {
                message: "group commit lost a result".to_owned(),
            })
        })
    }

    /// Registers what to call after each committed write (once; later calls are ignored).
    pub(crate) fn on_commit(&self, listener: Box<dyn Fn() + Send + Sync>) {
        let _ = self.on_commit.set(listener);
    }

    fn write_locked<T>(
        &self,
        state: &WriteState,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let mode = Mode {
            begin: write::Begin::Queue(self.options.busy_timeout),
            own: true,
        };
        self.write_in_mode(state, mode, f)
    }

    fn write_in_mode<T>(
        &self,
        state: &WriteState,
        mode: Mode,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let outermost = state.depth() == 0;
        let result = self
            .write_locked_inner(state, mode, f)
            .map_err(|e| e.at_file(&self.path));
        if outermost && result.is_ok() {
            self.guard_the_wal();
            // Derived rows add nothing to the change log: nothing for the indexer to do.
            if mode.own
                && let Some(listener) = self.on_commit.get()
            {
                listener();
            }
        }
        result
    }

    /// The replicated-mode WAL guard (see [`checkpoint`]). Its failure is not the
    /// committed write's: it is recorded as an incomplete run, and the next commit past
    /// the pause tries again.
    fn guard_the_wal(&self) {
        if let Some((mode, trigger)) = self.checkpoints.after_commit() {
            let _ = self.run_checkpoint(mode, trigger);
        }
    }

    /// What the memory's background thread calls between rounds: a standalone memory
    /// whose WAL has been quiet for a while is truncated. Skipped while a writer of this
    /// process holds the lock (it is not idle) and for read-only memories.
    pub(crate) fn checkpoint_when_idle(&self) {
        if self.options.read_only {
            return;
        }
        let Some(_writing) = self.lock.try_lock_for(Duration::ZERO) else {
            return;
        };
        if let Some(mode) = self.checkpoints.idle_tick() {
            let _ = self.run_checkpoint(mode, CheckpointTrigger::Idle);
        }
    }

    /// Runs the strongest checkpoint the policy allows now: TRUNCATE (standalone) or
    /// PASSIVE (replicated), waiting up to the busy timeout for other connections.
    pub(crate) fn checkpoint(&self) -> Result<CheckpointRun> {
        if self.options.read_only {
            return Err(self.options.read_only_error());
        }
        let _writing = self.lock.lock();
        self.run_checkpoint(self.checkpoints.manual_mode(), CheckpointTrigger::Manual)
    }

    /// The WAL's size, the policy and this process's last checkpoint.
    pub(crate) fn wal_status(&self) -> WalStatus {
        self.checkpoints.status()
    }

    /// Runs one checkpoint on a connection of this thread. The caller holds the write
    /// lock, so no writer of this process is inside a transaction meanwhile.
    fn run_checkpoint(
        &self,
        mode: checkpoint::CheckpointMode,
        trigger: CheckpointTrigger,
    ) -> Result<CheckpointRun> {
        let budget = self.options.busy_timeout;
        let wait = Checkpointer::busy_wait(trigger, budget);
        let run = self.read(|conn| checkpoint::run(conn, mode, trigger, wait, budget))?;
        self.checkpoints.record(run);
        Ok(run)
    }

    fn write_locked_inner<T>(
        &self,
        state: &WriteState,
        mode: Mode,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let begin = mode.begin;
        let outermost = state.depth() == 0;
        let track = outermost && mode.own;
        // The transaction's newest seq, read inside it (nobody else can commit while it
        // holds the write lock) and published only once it committed.
        let mut newest = None;
        let f = |conn: &Connection| {
            let out = f(conn)?;
            if track && let Some(read) = self.newest_seq.get() {
                newest = Some(read(conn)?);
            }
            Ok(out)
        };
        let result = if outermost && let Some(pooled) = self.connections.checkout()? {
            *state.pinned().borrow_mut() = Some(pooled);
            let _unpin = ReturnToPool(state, &self.connections);
            self.read(|conn| write::run(state, conn, begin, f))
        } else {
            self.read(|conn| write::run(state, conn, begin, f))
        };
        if result.is_ok()
            && let Some(seq) = newest
        {
            self.own_seq.fetch_max(seq, Ordering::SeqCst);
        }
        result
    }

    /// The newest change-log position a write of this process committed (0: none yet).
    pub(crate) fn own_seq(&self) -> i64 {
        self.own_seq.load(Ordering::SeqCst)
    }

    /// Registers how to read the newest change-log position inside a write (once).
    pub(crate) fn track_seq_with(&self, read: fn(&Connection) -> Result<i64>) {
        let _ = self.newest_seq.set(read);
    }

    /// Whether this thread holds the process-wide write lock (inside a write or a
    /// `transaction()`).
    pub(crate) fn writing_on_this_thread(&self) -> bool {
        self.lock.is_held_by_this_thread()
    }

    /// Takes the process-wide write lock without opening a transaction, so a caller can
    /// re-check state that only this process's writers change.
    pub(crate) fn lock(&self) -> ReentrantMutexGuard<'_, WriteState> {
        self.lock.lock()
    }
}

/// How one write waits for SQLite's lock, and whether it is one of this process's own
/// (tracked for read-your-writes).
#[derive(Clone, Copy)]
struct Mode {
    begin: write::Begin,
    own: bool,
}

/// A file beside the database named by its path plus `suffix` (`-wal`, `-shm`,
/// `.index`...): SQLite and cairn find a memory's companions by name only.
pub(crate) fn sibling(db_path: &Path, suffix: &str) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a folder and what it holds; one that is not there is already removed.
pub(crate) fn remove_dir_if_present(path: &Path) -> Result<()> {
    ignore_missing(std::fs::remove_dir_all(path))
}

fn ignore_missing(result: std::io::Result<()>) -> Result<()> {
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// [`prepare_file`], retried with backoff while SQLite reports the file busy, for at most
/// the busy budget. Many processes opening a brand-new file at once contend for it in
/// ways SQLite's busy handler does not cover (the switch to WAL, a migration racing a
/// reader of the still rollback-journaled file): without the retry a few of them failed
/// at once with `Busy` after waiting 0 ns. Every step is idempotent, so a retry is safe.
fn prepare_file_within_budget(
    path: &Path,
    options: &mut Options,
) -> Result<(CheckpointPolicy, Connection)> {
    let start = std::time::Instant::now();
    let mut backoff = Duration::from_millis(1);
    loop {
        match prepare_file(path, options) {
            // Another process created the encrypted file first, with a salt of its own:
            // the key is derived again from the salt now at the file's start.
            Err(e) if is_not_a_database(&e) && resalted(path, options)? => {}
            Err(e) if e.is_busy() && start.elapsed() < options.busy_timeout => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(50));
            }
            Err(Error::Busy { .. }) => {
                return Err(Error::Busy {
                    waited: start.elapsed(),
                });
            }
            other => return other,
        }
    }
}

/// Checks and migrates the file on one connection, turns on WAL, and settles the
/// checkpoint policy; returns the connection, which the open keeps.
fn prepare_file(path: &Path, options: &Options) -> Result<(CheckpointPolicy, Connection)> {
    let setup = connections::open_connection(path, options)?;
    migrate::prepare(&setup, path, options.read_only)?;
    if !options.read_only {
        connections::enable_wal(&setup)?;
        identity::ensure(&setup)?;
    }
    let policy = checkpoint::resolve_policy(&setup, options.checkpoint_policy, options.read_only)?;
    // The setup connection may be the file's last one: in a replicated file its close
    // must not checkpoint and delete the WAL either.
    setup.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        policy == CheckpointPolicy::Replicated,
    )?;
    Ok((policy, setup))
}

/// True for SQLite's `SQLITE_NOTADB`: the header (or, encrypted, page 1) does not read.
fn is_not_a_database(e: &Error) -> bool {
    matches!(e, Error::Sqlite { source: inner, .. }
        if inner.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase))
}

/// When the key of `options` was derived with a salt other than the one now at the
/// start of the file at `path` (two processes created the file at once, each with a
/// fresh salt, and the other one's was written): derives it again and says so.
fn resalted(path: &Path, options: &mut Options) -> Result<bool> {
    let (Some(key), Some(used)) = (&options.key, &options.file_key) else {
        return Ok(false);
    };
    match crate::key::read_salt(path)? {
        crate::key::Header::Salt(salt) if salt != used.salt => {
            options.file_key = Some(key.for_file(path)?);
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// SQLite reports a file that is not a database from whichever statement first reads the
/// header; callers get one typed error instead. Encrypted, that is also what a wrong key
/// looks like, and an encrypted file opened without a key.
fn not_a_database(e: Error, path: &Path, options: &Options) -> Error {
    if !is_not_a_database(&e) {
        return e;
    }
    unreadable_file(path, options.file_key.is_some())
}

/// What a file SQLite cannot read as a database is: [`Error::WrongKey`] when it was
/// opened with a key; without one, in an encryption build, [`Error::KeyRequired`] when
/// it does not start as a plain SQLite file does (an encrypted file cannot be told from
/// garbage; without SQLCipher it cannot be opened either way, so it stays
/// [`Error::NotADatabase`]).
pub(crate) fn unreadable_file(path: &Path, keyed: bool) -> Error {
    let path = path.to_owned();
    if keyed {
        return Error::WrongKey { path };
    }
    if cfg!(feature = "encryption")
        && matches!(
            crate::key::read_salt(&path),
            Ok(crate::key::Header::Salt(_))
        )
    {
        return Error::KeyRequired { path };
    }
    Error::NotADatabase { path }
}

/// `<file>.lock`: the file every open of the memory holds a shared lock on, so that
/// another process can tell whether anybody has it open (a tenant drop takes it
/// exclusively). A lock file of its own, never the database: closing any descriptor of
/// the database would release SQLite's own POSIX locks on it.
pub(crate) fn lock_path(db_path: &Path) -> PathBuf {
    sibling(db_path, ".lock")
}

/// Takes the shared open lock of the memory at `path`. Read-write opens create the lock
/// file (owner-only); read-only ones use it if it is there and readable, and create
/// nothing. Where the platform has no file locks, nothing is held.
fn open_lock(path: &Path, read_only: bool) -> Result<Option<std::fs::File>> {
    let lock = lock_path(path);
    let file = if read_only {
        match std::fs::File::open(&lock) {
            Ok(file) => file,
            Err(_) => return Ok(None),
        }
    } else {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&lock) {
            Ok(file) => file,
            // The folder cannot be written: SQLite's open reports that, naming the file.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Error::file(&lock, e)),
        }
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::InUse {
            path: path.to_owned(),
            reason: "it is being dropped, archived or drained for a move".to_owned(),
        }),
        Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            Ok(None)
        }
        Err(std::fs::TryLockError::Error(e)) => Err(Error::file(&lock, e)),
    }
}

/// Opens `path` for writing without writing anything: whether this process may write it
/// (permissions, a read-only mount; root may write whatever its mode says).
fn probe_write(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).open(path).map(drop)
}

/// True when the file's `-wal` is missing or empty: the file alone holds the memory.
fn wal_is_empty(path: &Path) -> bool {
    std::fs::metadata(sibling(path, "-wal")).map_or(true, |m| m.len() == 0)
}

/// SQLite could not open (or create) the file or a file beside it.
fn cannot_open(e: &Error) -> bool {
    matches!(e, Error::Sqlite { source: inner, .. } if matches!(
        inner.sqlite_error_code(),
        Some(
            rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::PermissionDenied
        )
    ))
}

/// An open's failure to open or create a file, as [`Error::File`] naming it and saying
/// why; other errors unchanged.
fn open_error(e: Error, path: &Path, options: &Options) -> Error {
    if !cannot_open(&e) {
        return e;
    }
    use std::io::{Error as IoError, ErrorKind};
    let detail = e.to_string();
    if options.read_only && wal_is_empty(path) {
        return Error::file(
            path,
            match std::fs::File::open(path) {
                Err(io) => io,
                Ok(_) => IoError::other(detail),
            },
        );
    }
    if options.read_only {
        let shm = sibling(path, "-shm");
        return Error::file(
            &shm,
            IoError::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{detail}: the -wal beside it holds changes not yet in the file, and \
                     reading them needs this -shm, which cannot be opened or created here; \
                     open the memory once where its folder can be written"
                ),
            ),
        );
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match probe_folder(folder) {
        Err(io) => Error::file(
            path,
            IoError::new(
                io.kind(),
                format!(
                    "cannot create it or its -wal and -shm in {}: {io}",
                    folder.display()
                ),
            ),
        ),
        Ok(()) => Error::file(path, IoError::other(detail)),
    }
}

/// Creates and removes a file in `folder`: whether this process may create files there.
fn probe_folder(folder: &Path) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let probe = folder.join(format!(".cairn-probe-{}-{nanos}", std::process::id()));
    crate::files::create_private_file(&probe)?;
    std::fs::remove_file(&probe)
}

/// Returns the pinned connection when the outermost write ends.
struct ReturnToPool<'a>(&'a WriteState, &'a Connections);

impl Drop for ReturnToPool<'_> {
    fn drop(&mut self) {
        if let Some(pooled) = self.0.pinned().borrow_mut().take() {
            self.1.give_back(pooled);
        }
    }
}

/// Removes an ephemeral database and its WAL and shared-memory files.
struct EphemeralFile(PathBuf);

impl Drop for EphemeralFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
            // Best effort: a leftover temp file is harmless, a panic in drop is not.
            let _ = std::fs::remove_file(sibling(&self.0, suffix));
        }
    }
}

#[cfg(test)]
pub(crate) mod test_table {
    //! A one-table in-memory database for the transaction-mechanics tests.
    use rusqlite::Connection;

    pub(crate) fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t(x INTEGER PRIMARY KEY)")
            .unwrap();
        c
    }

    pub(crate) fn count(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }
}

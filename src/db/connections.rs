//! The connection manager: one WAL connection per thread, or an r2d2 pool, both opened
//! by [`init_connection`] so every connection runs with the same pragmas.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use scheduled_thread_pool::ScheduledThreadPool;
use thread_local::ThreadLocal;

use crate::config::{CheckpointPolicy, ConnectionMode, Options};
use crate::error::Result;
use crate::key::{FileKey, Key};

/// The connection an outermost write holds for its duration ([`Connections::checkout`]).
pub(crate) enum Pooled {
    /// Taken from the r2d2 pool, which gets it back when this is dropped.
    Pool(r2d2::PooledConnection<SqliteConnectionManager>),
    /// An encrypted memory's writer connection, given back by [`Connections::give_back`].
    Writer(Connection),
}

impl std::ops::Deref for Pooled {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Pooled::Pool(conn) => conn,
            Pooled::Writer(conn) => conn,
        }
    }
}

/// Where connections come from.
pub(crate) enum Connections {
    PerThread {
        path: PathBuf,
        options: Options,
        local: Box<ThreadLocal<Connection>>,
        /// Encrypted memories only: the one connection every write runs on (see
        /// [`Connections::checkout`]), opened by the first write. Not an r2d2 pool: a
        /// pool opens its connections on threads of its own, and when one of them held
        /// the pool last, the connection closed there after the memory was dropped —
        /// leaving the WAL beside the file for a while (and three threads per memory).
        writer: Option<Box<Mutex<Option<Connection>>>>,
    },
    Pool(r2d2::Pool<SqliteConnectionManager>),
}

impl Connections {
    pub(crate) fn new(path: &Path, options: &Options) -> Result<Self> {
        Ok(match options.mode {
            ConnectionMode::ThreadLocal => Connections::PerThread {
                path: path.to_owned(),
                options: options.clone(),
                local: Box::new(ThreadLocal::new()),
                writer: (options.encrypted() && !options.read_only).then(Box::default),
            },
            ConnectionMode::Pool { size } => Connections::Pool(pool(path, options, size)?),
        })
    }

    /// Runs `f` on this thread's connection, or on a connection taken from the pool.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        match self {
            Connections::PerThread {
                path,
                options,
                local,
                ..
            } => {
                let conn = local.get_or_try(|| open_connection(path, options))?;
                f(conn)
            }
            Connections::Pool(pool) => {
                let conn = pool.get()?;
                f(&conn)
            }
        }
    }

    /// Keeps `conn`, opened by [`open_connection`] with these options, as this thread's
    /// connection (thread-local mode; a pool opens its own).
    pub(crate) fn adopt(&self, conn: Connection) {
        if let Connections::PerThread { local, .. } = self {
            let _ = local.get_or(|| conn);
        }
    }

    /// The connection an outermost write pins for its duration: one from the pool in
    /// pool mode; for an encrypted memory with thread-local connections, its one writer
    /// connection. SQLite drops a connection's whole page cache when another connection
    /// committed since its last transaction; each page read again is decrypted and its
    /// HMAC checked, so writes that took turns on every thread's connection re-read
    /// (and decrypted) every page they touched. Writes queue on the process's write lock
    /// anyway, so one connection for all of them costs no parallelism, and its cache
    /// stays warm. (On the shared benchmark machine its effect on write throughput was
    /// within the run-to-run noise: docs/benchmarks.md.) `None`: the thread's own
    /// connection.
    pub(crate) fn checkout(&self) -> Result<Option<Pooled>> {
        match self {
            Connections::PerThread {
                path,
                options,
                writer: Some(writer),
                ..
            } => {
                // Writes are serialized by the process's write lock: the slot is full
                // except during a write.
                let kept = writer.lock().take();
                let conn = match kept {
                    Some(conn) => conn,
                    None => open_connection(path, options)?,
                };
                Ok(Some(Pooled::Writer(conn)))
            }
            Connections::PerThread { writer: None, .. } => Ok(None),
            Connections::Pool(pool) => Ok(Some(Pooled::Pool(pool.get()?))),
        }
    }

    /// Takes back what [`Connections::checkout`] gave when the write ends.
    pub(crate) fn give_back(&self, pooled: Pooled) {
        if let (
            Pooled::Writer(conn),
            Connections::PerThread {
                writer: Some(writer),
                ..
            },
        ) = (pooled, self)
        {
            *writer.lock() = Some(conn);
        }
    }
}

impl Drop for Connections {
    /// r2d2 opens a pool's connections on its thread, which holds the pool while it hands
    /// a new connection over: if that thread held it last, the connections would close
    /// there after the memory was dropped (its WAL left beside the file for a while).
    /// A job queued behind any such hand-over makes this handle the last one.
    fn drop(&mut self) {
        if let Connections::Pool(_) = self {
            let (done, finished) = std::sync::mpsc::channel();
            R2D2_THREAD.execute(move || {
                let _ = done.send(());
            });
            let _ = finished.recv_timeout(std::time::Duration::from_secs(1));
        }
    }
}

/// The one thread every r2d2 pool of the process opens its connections on (r2d2 starts
/// three per pool by default: a process with many pooled memories would hold hundreds).
static R2D2_THREAD: std::sync::LazyLock<Arc<ScheduledThreadPool>> =
    std::sync::LazyLock::new(|| {
        Arc::new(
            ScheduledThreadPool::builder()
                .num_threads(1)
                .thread_name_pattern("cairn-r2d2")
                .build(),
        )
    });

/// An r2d2 pool of at most `size` connections opened with cairn's pragmas.
fn pool(path: &Path, options: &Options, size: u32) -> Result<r2d2::Pool<SqliteConnectionManager>> {
    let init_options = options.clone();
    let manager = SqliteConnectionManager::file(target(path, options))
        .with_flags(open_flags(options))
        .with_init(move |conn| init_connection(conn, &init_options));
    Ok(r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(0))
        .thread_pool(Arc::clone(&R2D2_THREAD))
        // No reaper job (it would hold the pool for a moment every 30 s): connections
        // live as long as the memory.
        .idle_timeout(None)
        .max_lifetime(None)
        .connection_timeout(options.busy_timeout.max(std::time::Duration::from_secs(1)))
        .build(manager)?)
}

fn open_flags(options: &Options) -> OpenFlags {
    let base = OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if options.read_only {
        base | OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        base | OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    }
}

/// What SQLite is asked to open: the path, or for an immutable read-only open the
/// `file:` URI with `immutable=1` (SQLite then takes no locks and needs no `-shm`).
fn target(path: &Path, options: &Options) -> PathBuf {
    if !options.immutable {
        return path.to_owned();
    }
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-' | b'~') {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    PathBuf::from(uri)
}

/// Opens one connection to `path` with cairn's pragmas.
pub(crate) fn open_connection(path: &Path, options: &Options) -> Result<Connection> {
    let conn = Connection::open_with_flags(target(path, options), open_flags(options))?;
    init_connection(&conn, options)?;
    Ok(conn)
}

/// The one place connection settings live; the thread-local and the pooled connections
/// both come through here.
pub(crate) fn init_connection(conn: &Connection, options: &Options) -> rusqlite::Result<()> {
    // SQLCipher's key must be the first statement on the connection: before it, the
    // file reads as garbage (and a pragma that reads the file fails).
    if let Some(key) = &options.file_key {
        apply_key(conn, key)?;
    }
    apply_pragmas(conn, options)
}

/// The pragmas of [`init_connection`] without the key: what an open connection is given
/// again when its settings change (keying twice would reset SQLCipher's key material).
pub(crate) fn apply_pragmas(conn: &Connection, options: &Options) -> rusqlite::Result<()> {
    conn.busy_timeout(options.busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(options.statement_cache);
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", options.durability.pragma_value())?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    let replicated = options.policy() == CheckpointPolicy::Replicated;
    let autocheckpoint = if replicated {
        0
    } else {
        options.autocheckpoint_pages
    };
    conn.pragma_update(None, "wal_autocheckpoint", autocheckpoint)?;
    // Closing the last connection would otherwise checkpoint and delete the WAL, which a
    // replication tool still reads from.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, replicated)?;
    // Negative: a size in KiB, not pages.
    conn.pragma_update(None, "cache_size", -i64::from(options.page_cache_kib))?;
    conn.pragma_update(
        None,
        "mmap_size",
        i64::try_from(options.mmap_bytes).unwrap_or(i64::MAX),
    )?;
    Ok(())
}

/// Keys `conn` with `key` (SQLCipher's `PRAGMA key`, which reads nothing yet: a wrong key
/// shows at the first statement that reads the file, as `SQLITE_NOTADB`).
pub(crate) fn apply_key(conn: &Connection, key: &FileKey) -> rusqlite::Result<()> {
    conn.execute_batch(&key.pragma())?;
    // SQLCipher logs a failed page check (a wrong key) to stderr by default; cairn
    // reports it as Error::WrongKey instead. The level is process-wide and set after
    // SQLCipher's own start-up default, so it holds.
    conn.execute_batch("PRAGMA cipher_log_level = NONE")
}

/// A connection outside the memory's own (a backup's target, an archive's source, a
/// check of a copy) with `flags`, keyed first when the memory is encrypted: with
/// `file_key` when the file is (to be) one of its copies, else with the key derived
/// from `key` for the file at `path`.
pub(crate) fn open_side(
    path: &Path,
    flags: OpenFlags,
    key: Option<&Key>,
    file_key: Option<&FileKey>,
) -> Result<Connection> {
    let derived;
    let file_key = match (file_key, key) {
        (Some(k), _) => Some(k),
        (None, Some(key)) => {
            derived = key.for_file(path)?;
            Some(&derived)
        }
        (None, None) => None,
    };
    let conn = Connection::open_with_flags(path, flags)?;
    if let Some(k) = file_key {
        apply_key(&conn, k)?;
    }
    Ok(conn)
}

/// Switches the file to WAL mode (persistent: recorded in the file header) and checks
/// that SQLite agreed.
pub(crate) fn enable_wal(conn: &Connection) -> Result<()> {
    // Stepped to the end: the header change commits when the statement finishes, and an
    // I/O error there would otherwise be dropped with the statement (found under fiu-run
    // fault injection: an open returned Ok on a file still in rollback-journal mode).
    let mut stmt = conn.prepare("PRAGMA journal_mode = WAL")?;
    let mut rows = stmt.query([])?;
    let mode: String = match rows.next()? {
        Some(row) => row.get(0)?,
        None => String::new(),
    };
    while rows.next()?.is_some() {}
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(crate::Error::invalid_input(
            "database file",
            format!("SQLite refused WAL mode (journal_mode stayed {mode})"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;

    #[test]
    fn every_connection_gets_the_same_pragmas() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        let options = Options::new().durability(Durability::Full);
        let conn = open_connection(&path, &options).unwrap();
        enable_wal(&conn).unwrap();
        let pool = Connections::new(
            &path,
            &options
                .clone()
                .connection_mode(ConnectionMode::Pool { size: 2 }),
        )
        .unwrap();
        let local = Connections::new(&path, &options).unwrap();
        for conns in [&pool, &local] {
            conns
                .with(|c| {
                    let fk: i64 = c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                    let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
                    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                    let busy: i64 = c.query_row("PRAGMA busy_timeout", [], |r| r.get(0))?;
                    assert_eq!((fk, sync, mode.as_str(), busy), (1, 2, "wal", 5000));
                    Ok(())
                })
                .unwrap();
        }
    }
}

//! The one error type of cairn.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong in cairn.
///
/// Errors about the caller's input ([`Error::is_invalid_input`]) mean nothing of that call
/// was written. [`Error::is_retryable`] errors may succeed if the same call is repeated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name or predicate is empty, blank, contains control characters or is too long.
    #[error("invalid {what} {name:?}: {reason}")]
    InvalidName {
        /// Which name: `name`, `predicate`, `subject`, `object`, or the path of the field
        /// in a call's arguments (`relations[3].relationType`).
        what: std::borrow::Cow<'static, str>,
        /// A bounded, escaped preview of the rejected name.
        name: String,
        /// What is wrong with it.
        reason: InvalidName,
    },
    /// Some other argument is unacceptable (observation text, metadata, time range...).
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which argument.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// Item `index` of a batch is invalid; nothing of the batch was written.
    #[error("batch item {index} is invalid: {source}")]
    InvalidBatchItem {
        /// Zero-based position of the offending item.
        index: usize,
        /// The error that item alone would have produced.
        #[source]
        source: Box<Error>,
    },
    /// Line `line` of an import is malformed (not UTF-8, not JSON, not a record of the
    /// format) or invalid (a bad name, a broken reference); nothing of the import was
    /// written.
    #[error("line {line}: {reason}")]
    InvalidLine {
        /// 1-based line number in the input.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A referenced row does not exist (or no longer exists).
    #[error("{what} not found: {key}")]
    NotFound {
        /// What kind of thing was looked up (`entity`, `relation`, ...).
        what: &'static str,
        /// The id or name that was looked up.
        key: String,
    },
    /// An alias (normalized name) already belongs to a different entity.
    #[error("the name {key:?} already belongs to entity {owner}")]
    AliasTaken {
        /// The normalized key.
        key: String,
        /// The entity that owns it.
        owner: i64,
    },
    /// The database stayed locked by other writers for the whole busy budget.
    #[error(
        "database busy: other writers held it for the whole busy budget (cairn retried for {waited:?})"
    )]
    Busy {
        /// How long cairn's own retry loop waited. Zero when SQLite's busy handler, which
        /// already waits up to the busy timeout inside one statement, gave up first.
        waited: Duration,
    },
    /// The search index did not catch up with the writes a call waits for within its
    /// budget (it is rebuilding, or far behind a bulk load). The writes are stored; only
    /// searching them has to wait.
    #[error("the search index is {behind} changes behind (waited {waited:?})")]
    IndexLag {
        /// Change-log entries between what is searchable and what the call waits for.
        behind: u64,
        /// How long the call waited.
        waited: Duration,
    },
    /// The derived search index was found damaged (or built from another file) and is
    /// being rebuilt from the file; searching works again once it has caught up. Writes
    /// are not affected. Retryable.
    #[error("the search index is being rebuilt ({indexed} of {of} changes indexed); retry")]
    IndexRebuilding {
        /// The change-log position the new index has reached.
        indexed: i64,
        /// The position it rebuilds up to (the log's end when the damage was found).
        of: i64,
    },
    /// The memory is open elsewhere (another process, or another handle of this one), so
    /// it may not be removed; or it is being removed, so it may not be opened.
    #[error("{path} is in use: {reason}")]
    InUse {
        /// The memory file.
        path: PathBuf,
        /// Who has it, or what is happening to it.
        reason: String,
    },
    /// The tenant was archived (`Tenants::archive`) and its live files dropped: a write to
    /// it is refused rather than starting an empty memory under its id. Restore the
    /// archive (`Tenants::restore_archive`), or drop the tenant to reuse the id.
    #[error("{path} was archived to {archive}; restore the archive (or drop the tenant) first")]
    Archived {
        /// The tenant's memory file (gone).
        path: PathBuf,
        /// Where the archive was written.
        archive: PathBuf,
    },
    /// The tenant was moved to another server (`Tenants::drain`, then `Drained::moved`)
    /// and its files here removed: a call routed here by a stale route is refused rather
    /// than starting an empty memory under its id. Send it to `to`.
    #[error("{path} was moved to {to}; route the tenant's calls there")]
    Moved {
        /// The tenant's memory file here (gone).
        path: PathBuf,
        /// Where it went, as the drain recorded it (a server name or address).
        to: String,
    },
    /// A write was attempted on a memory opened read-only.
    #[error("this memory was opened read-only")]
    ReadOnly,
    /// The file was written by a newer cairn whose schema this version does not know.
    #[error(
        "schema version {found} is newer than this cairn supports ({supported}); upgrade cairn"
    )]
    NewerSchema {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A read-only open found a file that still needs migrations only a writer may run.
    #[error("schema version {found} needs migrating to {supported}; open it read-write once")]
    NeedsMigration {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The version this build expects.
        supported: i64,
    },
    /// The file is not an SQLite database at all (or is encrypted, or is corrupt).
    #[error("{path} is not an SQLite database")]
    NotADatabase {
        /// The file that was opened.
        path: PathBuf,
    },
    /// The key given does not open the file: another secret than the one it was
    /// encrypted with (or the file is not a database at all). Nothing was written.
    #[error("{path}: the key does not open this file (a wrong key, or not a cairn memory)")]
    WrongKey {
        /// The file that was opened.
        path: PathBuf,
    },
    /// The file is encrypted (or is not a database) and no key was given
    /// ([`crate::Options::key`]; the command line reads `CAIRN_KEY` or `CAIRN_KEY_FILE`).
    /// Nothing was written.
    #[error(
        "{path} is encrypted (or is not an SQLite database): give its key (CAIRN_KEY_FILE or CAIRN_KEY)"
    )]
    KeyRequired {
        /// The file that was opened.
        path: PathBuf,
    },
    /// A key was given for a file that is not encrypted: cairn never encrypts an existing
    /// plain file in place (export and import it into a new encrypted memory instead).
    /// Nothing was written.
    #[error("{path} is not encrypted, but a key was given; open it without one")]
    NotEncrypted {
        /// The file that was opened.
        path: PathBuf,
    },
    /// A key was given, but this build of cairn has no encryption (cargo feature
    /// `encryption`). Nothing was opened.
    #[error(
        "this cairn was built without encryption (cargo feature `encryption`); it cannot use a key"
    )]
    EncryptionUnavailable,
    /// The file is an SQLite database, but somebody else's.
    #[error("{path} is an SQLite database but not a cairn memory: {reason}")]
    ForeignDatabase {
        /// The file that was opened.
        path: PathBuf,
        /// What gave it away.
        reason: String,
    },
    /// The file's vectors were made by another embedder (or another dimension) than the
    /// one this open configured: vectors of two embedders are not comparable, so the open
    /// is refused. Also what a write fails with on a file with vectors opened without an
    /// embedder (such an open only reads; see [`crate::Memory::missing_embedder`]).
    #[error("embedder mismatch: the file's vectors are {stored}, this open configures {given}")]
    EmbedderMismatch {
        /// What the file records, as `id (dimension N)`.
        stored: String,
        /// What the open configured, likewise, or `no embedder`.
        given: String,
    },
    /// A model directory (see `SentenceEmbedder`, feature `model`) lacks a file, or a
    /// file of it is unreadable, malformed, or describes a model cairn cannot run.
    #[error("model file {path}: {problem}")]
    Model {
        /// The file (or directory) at fault.
        path: PathBuf,
        /// What is wrong with it.
        problem: ModelProblem,
    },
    /// An embedding model failed while embedding (the texts were not stored as vectors).
    #[error("embedding failed: {0}")]
    Inference(String),
    /// The shared transaction this write was committed in (see group commit in
    /// `docs/architecture.md`) failed for a reason only the first writer got in full.
    #[error("the transaction shared with other writers failed: {message}")]
    SharedCommit {
        /// The original error, rendered.
        message: String,
    },
    /// `COMMIT` itself failed (an I/O error, a full disk): SQLite may have made the
    /// transaction durable before the error, or not. Reading the memory tells which; a
    /// write that carries an idempotency key (see [`crate::Memory::record`]) can simply be
    /// repeated. Everything before `COMMIT` failing is an ordinary error and means nothing
    /// was written.
    #[error(
        "commit failed, the write may or may not be stored: {}",
        sqlite_detail(source, *errno)
    )]
    OutcomeUnknown {
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
        /// The OS error number behind it (`ENOSPC`, `EIO`), when SQLite recorded one.
        errno: Option<i32>,
    },
    /// The derived search index failed (it can always be rebuilt from the file).
    #[error("search index: {0}")]
    Index(String),
    /// An error from SQLite that cairn has no more specific variant for. The message
    /// carries SQLite's extended result code, and the OS error number of an I/O error.
    #[error("sqlite: {}", sqlite_detail(source, *errno))]
    Sqlite {
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
        /// The OS error number behind an I/O error (a failed open, read, write or fsync),
        /// when SQLite recorded one.
        errno: Option<i32>,
    },
    /// The disk (or the file-system quota) is full: SQLite could not grow the file or
    /// its WAL. SQLite rolled the transaction back; nothing of the call was written.
    #[error("disk full writing {path}: {}", sqlite_detail(source, None))]
    DiskFull {
        /// The memory file whose write failed.
        path: PathBuf,
        /// What SQLite reported.
        #[source]
        source: rusqlite::Error,
    },
    /// A file or folder of the memory (the database, its `-wal`/`-shm`, the index folder)
    /// could not be opened, created, read or written.
    #[error("{path}: {source}")]
    File {
        /// The file or folder at fault.
        path: PathBuf,
        /// What the operating system (or SQLite, rendered) reported.
        #[source]
        source: std::io::Error,
    },
    /// The connection pool could not hand out a connection in time.
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    /// A file-system error (creating directories, removing ephemeral files...).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidName {
    /// Empty, or nothing but white space and invisible characters.
    #[error("it is empty or blank")]
    Blank,
    /// Contains a control character (other than white space).
    #[error("it contains the control character {0:?}")]
    ControlCharacter(char),
    /// Contains a bidirectional embedding, override or isolate, which reorders what a
    /// reader sees (so two names that look alike could differ).
    #[error("it contains the bidirectional control {0:?}, which reorders what a reader sees")]
    BidiControl(char),
    /// Longer than the limit.
    #[error("it is {bytes} bytes long; the limit is {max}")]
    TooLong {
        /// Its length in UTF-8 bytes.
        bytes: usize,
        /// The limit ([`crate::MAX_NAME_BYTES`]).
        max: usize,
    },
}

/// What is wrong with a file of a model directory ([`Error::Model`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelProblem {
    /// The file does not exist.
    #[error("missing")]
    Missing,
    /// The file exists but could not be read.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// The file is not what its name says (not JSON, a field missing or of the wrong
    /// type, weights that do not load).
    #[error("malformed: {0}")]
    Malformed(String),
    /// The file is well-formed but asks for something cairn does not implement (another
    /// pooling, another architecture).
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    /// True when other writers held the database for the whole busy budget.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Busy { .. })
    }

    /// True when repeating the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Busy { .. }
            | Error::Pool(_)
            | Error::IndexLag { .. }
            | Error::IndexRebuilding { .. } => true,
            Error::Sqlite { source: e, .. } => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }

    /// True when the search index is being rebuilt after damage ([`Error::IndexRebuilding`]):
    /// retry the search a little later.
    pub fn is_index_rebuilding(&self) -> bool {
        matches!(self, Error::IndexRebuilding { .. })
    }

    /// True when a commit failed in a way that leaves open whether it was stored
    /// ([`Error::OutcomeUnknown`], or a shared transaction that failed so).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::OutcomeUnknown { .. })
    }

    /// True when the caller's input was refused (nothing was written).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidName { .. }
                | Error::InvalidInput { .. }
                | Error::InvalidBatchItem { .. }
                | Error::InvalidLine { .. }
        )
    }

    /// True when a file or folder of the memory could not be written because of its
    /// permissions or a read-only file system ([`Error::File`]): opening the memory
    /// read-only ([`crate::Options::read_only`]) still reads it.
    pub fn is_not_writable(&self) -> bool {
        matches!(self, Error::File { source, .. } if matches!(
            source.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ))
    }

    /// True when the open failed because of the key: a wrong one ([`Error::WrongKey`]),
    /// none for an encrypted file ([`Error::KeyRequired`]), one for a plain file
    /// ([`Error::NotEncrypted`]), or one this build cannot use
    /// ([`Error::EncryptionUnavailable`]). Nothing was written.
    pub fn is_key_error(&self) -> bool {
        matches!(
            self,
            Error::WrongKey { .. }
                | Error::KeyRequired { .. }
                | Error::NotEncrypted { .. }
                | Error::EncryptionUnavailable
        )
    }

    /// True when a referenced entity, relation, observation or episode does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// A copy of this error for every writer of a shared transaction; errors that do not
    /// clone keep their message.
    pub(crate) fn replicate(&self) -> Error {
        self.try_clone().unwrap_or_else(|| Error::SharedCommit {
            message: self.to_string(),
        })
    }

    /// The same error again, for the variants that can be rebuilt from their fields (an
    /// I/O error as one of the same kind and message; a SQLite error when it is a
    /// failure code with its message); `None` for the rest, whose sources do not clone.
    /// One error reaches several callers when they shared the work that failed: a group
    /// commit's writers, the threads waiting on one tenant's open.
    pub(crate) fn try_clone(&self) -> Option<Error> {
        let io = |source: &std::io::Error| std::io::Error::new(source.kind(), source.to_string());
        let sqlite = |source: &rusqlite::Error| match source {
            rusqlite::Error::SqliteFailure(code, message) => {
                Some(rusqlite::Error::SqliteFailure(*code, message.clone()))
            }
            _ => None,
        };
        Some(match self {
            Error::Busy { waited } => Error::Busy { waited: *waited },
            Error::ReadOnly => Error::ReadOnly,
            Error::InvalidInput { what, reason } => Error::InvalidInput {
                what,
                reason: reason.clone(),
            },
            Error::NotFound { what, key } => Error::NotFound {
                what,
                key: key.clone(),
            },
            Error::InUse { path, reason } => Error::InUse {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::Archived { path, archive } => Error::Archived {
                path: path.clone(),
                archive: archive.clone(),
            },
            Error::Moved { path, to } => Error::Moved {
                path: path.clone(),
                to: to.clone(),
            },
            Error::NewerSchema { found, supported } => Error::NewerSchema {
                found: *found,
                supported: *supported,
            },
            Error::NeedsMigration { found, supported } => Error::NeedsMigration {
                found: *found,
                supported: *supported,
            },
            Error::NotADatabase { path } => Error::NotADatabase { path: path.clone() },
            Error::WrongKey { path } => Error::WrongKey { path: path.clone() },
            Error::KeyRequired { path } => Error::KeyRequired { path: path.clone() },
            Error::NotEncrypted { path } => Error::NotEncrypted { path: path.clone() },
            Error::EncryptionUnavailable => Error::EncryptionUnavailable,
            Error::ForeignDatabase { path, reason } => Error::ForeignDatabase {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::File { path, source } => Error::File {
                path: path.clone(),
                source: io(source),
            },
            Error::Io(source) => Error::Io(io(source)),
            Error::Sqlite { source, errno } => Error::Sqlite {
                source: sqlite(source)?,
                errno: *errno,
            },
            Error::DiskFull { path, source } => Error::DiskFull {
                path: path.clone(),
                source: sqlite(source)?,
            },
            Error::OutcomeUnknown { source, errno } => Error::OutcomeUnknown {
                source: sqlite(source)?,
                errno: *errno,
            },
            _ => return None,
        })
    }

    /// `e` about the file or folder at `path` ([`Error::File`]).
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::File {
            path: path.into(),
            source,
        }
    }

    /// This error, re-tagged as being about the name `what` (`subject`, a field path):
    /// other errors are returned unchanged.
    pub(crate) fn for_name(self, what: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        match self {
            Error::InvalidName { name, reason, .. } => Error::InvalidName {
                what: what.into(),
                name,
                reason,
            },
            other => other,
        }
    }

    /// A SQLite error of a write to the file at `path`: a full disk becomes
    /// [`Error::DiskFull`] naming the file, anything else is returned unchanged.
    pub(crate) fn at_file(self, path: &std::path::Path) -> Self {
        match self {
            Error::Sqlite { source, .. }
                if source.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) =>
            {
                Error::DiskFull {
                    path: path.to_owned(),
                    source,
                }
            }
            other => other,
        }
    }

    /// This error with the OS error number SQLite recorded on `conn`, if it is an I/O
    /// kind of SQLite error (a failed open, read, write or fsync) that has none yet: read
    /// right after the failed call, so the number is that call's. (A full disk has none:
    /// SQLite turns `ENOSPC` into `SQLITE_FULL` itself and records no number for it.)
    pub(crate) fn with_errno_of(self, conn: &rusqlite::Connection) -> Self {
        match self {
            Error::Sqlite {
                source,
                errno: None,
            } if is_io_kind(&source) => Error::Sqlite {
                errno: cairn_ffi::system_errno(conn),
                source,
            },
            Error::OutcomeUnknown {
                source,
                errno: None,
            } if is_io_kind(&source) => Error::OutcomeUnknown {
                errno: cairn_ffi::system_errno(conn),
                source,
            },
            other => other,
        }
    }

    #[cfg(feature = "model")]
    pub(crate) fn model(path: impl Into<PathBuf>, problem: ModelProblem) -> Self {
        Error::Model {
            path: path.into(),
            problem,
        }
    }

    pub(crate) fn not_found(what: &'static str, key: impl ToString) -> Self {
        Error::NotFound {
            what,
            key: key.to_string(),
        }
    }

    pub(crate) fn invalid_input(what: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            what,
            reason: reason.into(),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        // Busy surfaces from statements as well as from BEGIN (e.g. a reader during WAL
        // recovery); callers should see one retryable kind, whichever statement hit it.
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy) => Error::Busy {
                waited: Duration::ZERO,
            },
            _ => Error::Sqlite {
                source: e,
                errno: None,
            },
        }
    }
}

impl From<tantivy::TantivyError> for Error {
    fn from(e: tantivy::TantivyError) -> Self {
        Error::Index(e.to_string())
    }
}

/// SQLite's message with its extended result code (`disk I/O error (SQLITE_IOERR_WRITE,
/// extended code 778)`), which tells a full disk from a failed fsync or a lost lock.
/// An I/O error's OS error follows when SQLite recorded one (`Input/output error (os
/// error 5)`), read through `cairn-ffi`, the crate that holds cairn's only FFI call.
fn sqlite_detail(e: &rusqlite::Error, errno: Option<i32>) -> String {
    let detail = match e {
        rusqlite::Error::SqliteFailure(code, _) => {
            let name = extended_code_name(code.extended_code);
            format!("{e} ({name}, extended code {})", code.extended_code)
        }
        other => other.to_string(),
    };
    match errno {
        Some(n) => format!("{detail}, {}", std::io::Error::from_raw_os_error(n)),
        None => detail,
    }
}

/// SQLite errors of a failed system call, whose OS error number tells why.
fn is_io_kind(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen)
    )
}

/// The name of SQLite's (extended) result code `code`, for messages.
fn extended_code_name(code: std::ffi::c_int) -> String {
    use rusqlite::ffi;
    let name = match code {
        ffi::SQLITE_IOERR_READ => "SQLITE_IOERR_READ",
        ffi::SQLITE_IOERR_SHORT_READ => "SQLITE_IOERR_SHORT_READ",
        ffi::SQLITE_IOERR_WRITE => "SQLITE_IOERR_WRITE",
        ffi::SQLITE_IOERR_FSYNC => "SQLITE_IOERR_FSYNC",
        ffi::SQLITE_IOERR_DIR_FSYNC => "SQLITE_IOERR_DIR_FSYNC",
        ffi::SQLITE_IOERR_TRUNCATE => "SQLITE_IOERR_TRUNCATE",
        ffi::SQLITE_IOERR_FSTAT => "SQLITE_IOERR_FSTAT",
        ffi::SQLITE_IOERR_UNLOCK => "SQLITE_IOERR_UNLOCK",
        ffi::SQLITE_IOERR_RDLOCK => "SQLITE_IOERR_RDLOCK",
        ffi::SQLITE_IOERR_DELETE => "SQLITE_IOERR_DELETE",
        ffi::SQLITE_IOERR_NOMEM => "SQLITE_IOERR_NOMEM",
        ffi::SQLITE_IOERR_ACCESS => "SQLITE_IOERR_ACCESS",
        ffi::SQLITE_IOERR_LOCK => "SQLITE_IOERR_LOCK",
        ffi::SQLITE_IOERR_CLOSE => "SQLITE_IOERR_CLOSE",
        ffi::SQLITE_IOERR_SHMOPEN => "SQLITE_IOERR_SHMOPEN",
        ffi::SQLITE_IOERR_SHMSIZE => "SQLITE_IOERR_SHMSIZE",
        ffi::SQLITE_IOERR_SHMMAP => "SQLITE_IOERR_SHMMAP",
        ffi::SQLITE_IOERR_SEEK => "SQLITE_IOERR_SEEK",
        ffi::SQLITE_IOERR_MMAP => "SQLITE_IOERR_MMAP",
        ffi::SQLITE_IOERR_GETTEMPPATH => "SQLITE_IOERR_GETTEMPPATH",
        ffi::SQLITE_IOERR_CONVPATH => "SQLITE_IOERR_CONVPATH",
        ffi::SQLITE_CANTOPEN_NOTEMPDIR => "SQLITE_CANTOPEN_NOTEMPDIR",
        ffi::SQLITE_CANTOPEN_ISDIR => "SQLITE_CANTOPEN_ISDIR",
        ffi::SQLITE_CANTOPEN_FULLPATH => "SQLITE_CANTOPEN_FULLPATH",
        ffi::SQLITE_READONLY_RECOVERY => "SQLITE_READONLY_RECOVERY",
        ffi::SQLITE_READONLY_CANTLOCK => "SQLITE_READONLY_CANTLOCK",
        ffi::SQLITE_READONLY_ROLLBACK => "SQLITE_READONLY_ROLLBACK",
        ffi::SQLITE_READONLY_DBMOVED => "SQLITE_READONLY_DBMOVED",
        ffi::SQLITE_READONLY_CANTINIT => "SQLITE_READONLY_CANTINIT",
        ffi::SQLITE_READONLY_DIRECTORY => "SQLITE_READONLY_DIRECTORY",
        ffi::SQLITE_CONSTRAINT_PRIMARYKEY => "SQLITE_CONSTRAINT_PRIMARYKEY",
        ffi::SQLITE_CONSTRAINT_UNIQUE => "SQLITE_CONSTRAINT_UNIQUE",
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => "SQLITE_CONSTRAINT_FOREIGNKEY",
        ffi::SQLITE_CONSTRAINT_NOTNULL => "SQLITE_CONSTRAINT_NOTNULL",
        ffi::SQLITE_CONSTRAINT_CHECK => "SQLITE_CONSTRAINT_CHECK",
        ffi::SQLITE_BUSY_RECOVERY => "SQLITE_BUSY_RECOVERY",
        ffi::SQLITE_BUSY_SNAPSHOT => "SQLITE_BUSY_SNAPSHOT",
        ffi::SQLITE_CORRUPT_VTAB => "SQLITE_CORRUPT_VTAB",
        _ => return format!("{:?}", rusqlite::ffi::Error::new(code).code),
    };
    name.to_owned()
}

/// `Result<T, cairn::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_keep_variant_kind_and_message() {
        let file = Error::file(
            "/x/y.db",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no"),
        );
        let copy = file.try_clone().unwrap();
        assert!(matches!(&copy, Error::File { path, source }
            if path == std::path::Path::new("/x/y.db") && source.kind() == std::io::ErrorKind::PermissionDenied));
        assert_eq!(copy.to_string(), file.to_string());
        let full = Error::DiskFull {
            path: "/x/y.db".into(),
            source: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some("full".into()),
            ),
        };
        assert_eq!(full.try_clone().unwrap().to_string(), full.to_string());
        // A source that does not clone: no copy, and a shared commit keeps the message.
        let index = Error::Index("segment gone".into());
        assert!(index.try_clone().is_none());
        assert!(
            matches!(index.replicate(), Error::SharedCommit { message } if message.contains("segment gone"))
        );
    }

    #[test]
    fn helpers_classify() {
        assert!(
            Error::Busy {
                waited: Duration::from_secs(1)
            }
            .is_busy()
        );
        assert!(
            Error::Busy {
                waited: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(!Error::ReadOnly.is_retryable());
        let bad = Error::invalid_input("observation", "empty");
        assert!(bad.is_invalid_input());
        assert!(!bad.is_busy());
        assert!(Error::not_found("entity", 7).is_not_found());
        let rebuilding = Error::IndexRebuilding { indexed: 3, of: 9 };
        assert!(rebuilding.is_index_rebuilding() && rebuilding.is_retryable());
        assert!(!Error::ReadOnly.is_index_rebuilding());
    }

    #[test]
    fn sqlite_errors_carry_their_extended_code() {
        let raw = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_FSYNC),
            Some("disk I/O error".into()),
        );
        let text = Error::OutcomeUnknown {
            source: raw,
            errno: None,
        }
        .to_string();
        assert!(
            text.contains("disk I/O error")
                && text.contains("SQLITE_IOERR_FSYNC, extended code 1034"),
            "{text}"
        );
        let raw = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let full = Error::Sqlite {
            source: raw,
            errno: None,
        }
        .at_file(std::path::Path::new("/data/a.db"));
        let text = full.to_string();
        assert!(matches!(full, Error::DiskFull { .. }), "{text}");
        assert!(
            text.starts_with("disk full writing /data/a.db: ") && text.contains("extended code 13"),
            "{text}"
        );
    }

    #[test]
    fn busy_from_sqlite_is_typed() {
        let raw = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(Error::from(raw).is_busy());
    }
}

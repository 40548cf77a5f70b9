//! How a memory is opened: durability, busy budget, connection mode, read-only.

use std::sync::Arc;
use std::time::Duration;

use crate::embed::Embedder;
use crate::key::{FileKey, Key};
use crate::kinds::{DocKind, HitKind};

/// Default of [`Options::autocheckpoint_pages`].
const DEFAULT_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// How hard a commit tries to survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous=NORMAL`: in WAL mode a commit survives a crash of the process, and the
    /// database stays consistent after power loss, but the last commits may be rolled back.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced before it is acknowledged.
    Full,
}

impl Durability {
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        }
    }
}

/// Who checkpoints the write-ahead log: cairn itself, or a replication tool.
///
/// The policy is stored in the file when it is set with [`Options::checkpoint_policy`],
/// and every later open that does not set one follows the file (the `cairn` command
/// line included), so one process cannot break the replication another set up.
///
/// ```
/// use cairn::{CheckpointPolicy, Options};
/// // Litestream replicates this file: it alone may restart or truncate the WAL.
/// let options = Options::new().checkpoint_policy(CheckpointPolicy::Replicated);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum CheckpointPolicy {
    /// cairn keeps the WAL bounded by itself: SQLite's automatic (PASSIVE) checkpoint
    /// after a commit once the WAL holds [`Options::autocheckpoint_pages`], and a
    /// TRUNCATE checkpoint once the file has been idle for a second, which empties the
    /// `-wal` file.
    #[default]
    Standalone,
    /// A replication tool such as Litestream owns the WAL: automatic checkpoints are off
    /// (`wal_autocheckpoint=0`), cairn never runs a FULL, RESTART or TRUNCATE checkpoint
    /// or an in-place `VACUUM`, and closing the last connection leaves the WAL alone.
    /// Only a guard remains: when a commit finds the `-wal` file larger than
    /// [`Options::wal_guard_bytes`], cairn runs a PASSIVE checkpoint (which waits for
    /// nobody and never moves the WAL under a reader) and counts it in
    /// [`crate::WalStatus::guard_trips`].
    Replicated,
}

impl CheckpointPolicy {
    /// The name stored in the file and printed by `cairn stats`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckpointPolicy::Standalone => "standalone",
            CheckpointPolicy::Replicated => "replicated",
        }
    }

    /// Parses [`CheckpointPolicy::as_str`]'s names.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "standalone" => Some(CheckpointPolicy::Standalone),
            "replicated" => Some(CheckpointPolicy::Replicated),
            _ => None,
        }
    }
}

/// Where a thread's connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConnectionMode {
    /// One connection per thread, opened on first use and kept for the life of the memory.
    /// Best for a fixed set of long-lived agent threads.
    #[default]
    ThreadLocal,
    /// An r2d2 pool of at most `size` connections, for callers that churn through many
    /// short-lived threads or async tasks.
    Pool {
        /// Maximum number of open connections.
        size: u32,
    },
}

/// Options for [`crate::Memory::open_with`]; build them with [`Options::new`] and its setters.
///
/// ```
/// use std::time::Duration;
/// use cairn::{ConnectionMode, Durability, Options};
///
/// let options = Options::new()
///     .durability(Durability::Full)
///     .busy_timeout(Duration::from_secs(10))
///     .connection_mode(ConnectionMode::Pool { size: 8 });
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct Options {
    pub(crate) durability: Durability,
    pub(crate) busy_timeout: Duration,
    pub(crate) mode: ConnectionMode,
    pub(crate) read_only: bool,
    pub(crate) statement_cache: usize,
    pub(crate) autocheckpoint_pages: u32,
    pub(crate) page_cache_kib: u32,
    pub(crate) mmap_bytes: u64,
    /// `None`: follow the policy stored in the file.
    pub(crate) checkpoint_policy: Option<CheckpointPolicy>,
    pub(crate) wal_guard_bytes: u64,
    pub(crate) wal_limit_bytes: u64,
    pub(crate) embedder: Option<SharedEmbedder>,
    pub(crate) embed_kinds: Vec<DocKind>,
    /// Set when the file has vectors and this open configured no embedder: the memory
    /// was opened read-only for that reason, and writes say so. The file's embedder,
    /// as `id (dimension N)`.
    pub(crate) missing_embedder: Option<String>,
    /// Set by a read-only open that reads the file as SQLite's `immutable=1` (see
    /// `Db::open`): no `-wal` or `-shm` can be made beside it, or the file may not be
    /// written at all, and its WAL is empty.
    pub(crate) immutable: bool,
    /// The secret of an encrypted memory ([`Options::key`]).
    pub(crate) key: Option<Key>,
    /// The database key derived from [`Options::key`] for this file, set by `Db::open`:
    /// what every connection of the memory is keyed with, first.
    pub(crate) file_key: Option<FileKey>,
}

/// The configured embedder; a type of its own only to be `Debug` (embedders need not be).
#[derive(Clone)]
pub(crate) struct SharedEmbedder(pub(crate) Arc<dyn Embedder>);

impl std::fmt::Debug for SharedEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (dimension {})", self.0.id(), self.0.dimension())
    }
}

/// Default [`Options::mmap_bytes`]: 1 GiB.
const DEFAULT_MMAP_BYTES: u64 = 1 << 30;
/// Default [`Options::wal_limit_bytes`]: 32 MiB.
const DEFAULT_WAL_LIMIT_BYTES: u64 = 32 << 20;
/// Default [`Options::wal_guard_bytes`]: 256 MiB.
const DEFAULT_WAL_GUARD_BYTES: u64 = 256 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Normal,
            busy_timeout: Duration::from_secs(5),
            mode: ConnectionMode::ThreadLocal,
            read_only: false,
            statement_cache: 64,
            autocheckpoint_pages: DEFAULT_AUTOCHECKPOINT_PAGES,
            page_cache_kib: 16 * 1024,
            mmap_bytes: DEFAULT_MMAP_BYTES,
            checkpoint_policy: None,
            wal_guard_bytes: DEFAULT_WAL_GUARD_BYTES,
            wal_limit_bytes: DEFAULT_WAL_LIMIT_BYTES,
            embedder: None,
            embed_kinds: vec![DocKind::Chunk, DocKind::Observation],
            missing_embedder: None,
            immutable: false,
            key: None,
            file_key: None,
        }
    }
}

impl Options {
    /// The defaults: durability `Normal`, a 5 s busy budget, one connection per thread.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the commit durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long a write waits for other writers (threads or processes) before it fails
    /// with [`crate::Error::Busy`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Thread-local connections (default) or a pool.
    pub fn connection_mode(mut self, mode: ConnectionMode) -> Self {
        self.mode = mode;
        self
    }

    /// Opens the file read-only: every write returns [`crate::Error::ReadOnly`].
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// What a write on a read-only open fails with: [`crate::Error::ReadOnly`], or the
    /// embedder mismatch that made the open read-only.
    pub(crate) fn read_only_error(&self) -> crate::Error {
        match &self.missing_embedder {
            Some(stored) => crate::Error::EmbedderMismatch {
                stored: stored.clone(),
                given: "no embedder (it can read and search without vectors, not write)".to_owned(),
            },
            None => crate::Error::ReadOnly,
        }
    }

    /// Capacity of each connection's prepared-statement cache (default 64).
    pub fn statement_cache(mut self, capacity: usize) -> Self {
        self.statement_cache = capacity;
        self
    }

    /// After how many WAL pages a commit runs an automatic checkpoint
    /// (`PRAGMA wal_autocheckpoint`; default 10,000 pages ≈ 40 MB with 4 KiB pages).
    /// `0` turns automatic checkpoints off (for external replication tools that
    /// checkpoint themselves).
    ///
    /// SQLite's own default is 1,000 pages; cairn's writes touch the same index pages over
    /// and over, and a larger WAL lets a checkpoint copy each page once for many commits,
    /// at the price of a larger `-wal` file between checkpoints.
    pub fn autocheckpoint_pages(mut self, pages: u32) -> Self {
        self.autocheckpoint_pages = pages;
        self
    }

    /// SQLite's page cache per connection, in KiB (default 16 MiB; SQLite's own default
    /// is 2 MiB). Graph expansion reads relation pages all over the file, and with a
    /// small cache every search goes back to the operating system for them.
    pub fn page_cache_kib(mut self, kib: u32) -> Self {
        self.page_cache_kib = kib;
        self
    }

    /// How much of the file SQLite reads through memory mapping (`PRAGMA mmap_size`;
    /// default 1 GiB of address space, `0` turns it off). Mapped pages are read without
    /// a system call or a copy per page, which is most of the cost of a graph expansion
    /// whose relation pages are not in the page cache (measured in
    /// `docs/benchmarks.md`). The WAL is always read with ordinary reads.
    pub fn mmap_bytes(mut self, bytes: u64) -> Self {
        self.mmap_bytes = bytes;
        self
    }

    /// Sets the file's [`CheckpointPolicy`] and records it in the file. Without this
    /// call, a memory follows the policy recorded in its file (standalone for a file that
    /// never had one).
    pub fn checkpoint_policy(mut self, policy: CheckpointPolicy) -> Self {
        self.checkpoint_policy = Some(policy);
        self
    }

    /// Under [`CheckpointPolicy::Replicated`], the `-wal` size above which a commit runs
    /// a PASSIVE checkpoint (default 256 MiB). Litestream checkpoints far below this while
    /// it runs; a WAL this large means it has stopped or fallen behind, and the guard
    /// keeps the copy a restart has to replay bounded.
    pub fn wal_guard_bytes(mut self, bytes: u64) -> Self {
        self.wal_guard_bytes = bytes;
        self
    }

    /// Under [`CheckpointPolicy::Standalone`], the `-wal` size above which a commit runs
    /// a TRUNCATE checkpoint that waits at most 100 ms for readers (default 32 MiB). Under
    /// steady load a memory is never idle and, with readers always present, SQLite's own
    /// checkpoints never restart the log; this keeps the file near the limit instead of
    /// growing without bound.
    pub fn wal_limit_bytes(mut self, bytes: u64) -> Self {
        self.wal_limit_bytes = bytes;
        self
    }

    /// Opens (or creates) the memory encrypted with `key` (cargo feature `encryption`:
    /// SQLCipher, AES-256 with an HMAC per page). A new file is created encrypted; an
    /// existing one must have been encrypted with the same secret, or the open fails
    /// with [`crate::Error::WrongKey`] and writes nothing. A plain file is
    /// [`crate::Error::NotEncrypted`], and a build without the feature refuses every key
    /// ([`crate::Error::EncryptionUnavailable`]). The search index of an encrypted
    /// memory is never written to disk: it is built in RAM from the file when the memory
    /// opens ([`crate::IndexSource::Ram`]; see `docs/encryption.md`).
    ///
    /// ```
    /// use cairn::{Key, Options};
    /// let options = Options::new().key(Key::passphrase("correct horse battery staple"));
    /// # let _ = options;
    /// ```
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// True when the memory is (to be) encrypted: a key was given.
    pub(crate) fn encrypted(&self) -> bool {
        self.key.is_some()
    }

    /// The checkpoint policy this memory runs with (after open: the file's).
    pub(crate) fn policy(&self) -> CheckpointPolicy {
        self.checkpoint_policy.unwrap_or_default()
    }

    /// Embeds chunks and observations with `embedder` and adds a vector channel to
    /// search. The vectors are stored in the file, and the embedder's
    /// [`id`](Embedder::id) and dimension with them: every later open of the file that
    /// configures an embedder must configure the same one, or it fails with
    /// [`crate::Error::EmbedderMismatch`]. An open that configures none is read-only
    /// (it reads, exports, backs up and searches without the vector channel; writes fail
    /// with the mismatch): see [`crate::Memory::missing_embedder`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use cairn::{HashingEmbedder, Options};
    ///
    /// let options = Options::new().embedder(Arc::new(HashingEmbedder::default()));
    /// # let _ = options;
    /// ```
    pub fn embedder(mut self, embedder: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(SharedEmbedder(embedder));
        self
    }

    /// Which kinds of rows the embedder embeds (default: chunks and observations; names
    /// and triples are short and well served by BM25 and the graph). Has no effect
    /// without [`Options::embedder`].
    pub fn embed_kinds(mut self, kinds: &[HitKind]) -> Self {
        self.embed_kinds = kinds.iter().map(|k| k.doc_kind()).collect();
        self
    }
}

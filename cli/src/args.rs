//! The command line's grammar: every subcommand, flag and environment variable, as clap
//! types. `commands.rs` runs what is parsed here.

use std::path::PathBuf;

use cairn::Timestamp;
use clap::{Parser, Subcommand, ValueEnum};

/// An embedded memory graph for AI agents, in one SQLite file.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The memory file (created by `init`, `add`, `observe`, `import` and `mcp` if missing).
    /// A leading `~`, `$HOME` or `${HOME}` is expanded (MCP clients pass it unexpanded).
    #[arg(long, env = "CAIRN_DB", global = true, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
    /// A directory of per-tenant memories (see `cairn tenants`): the command works on the
    /// memory of `--tenant` in it instead of a `--db` file.
    #[arg(long, env = "CAIRN_TENANTS", global = true, value_name = "DIR")]
    pub(crate) tenants: Option<PathBuf>,
    /// The tenant id whose memory in `--tenants DIR` the command works on.
    #[arg(long, env = "CAIRN_TENANT", global = true, value_name = "ID")]
    pub(crate) tenant: Option<String>,
    /// Print JSON instead of text (one object per command).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Record a checkpoint policy in the file: `replicated` when Litestream (or another
    /// WAL replication tool) copies it, `standalone` otherwise. Without it, the policy
    /// recorded in the file applies (standalone for a new file).
    #[arg(long, env = "CAIRN_CHECKPOINT", global = true, value_enum)]
    pub(crate) checkpoint: Option<Policy>,
    /// A sentence-transformers model directory (`config.json`, `model.safetensors`,
    /// `tokenizer.json`, `1_Pooling/`): chunks and observations are embedded with it and
    /// searches match by meaning too. A memory written with a model must always be opened
    /// with the same one.
    #[arg(long, env = "CAIRN_MODEL", global = true, value_name = "DIR")]
    pub(crate) model: Option<PathBuf>,
    /// A file holding the passphrase of an encrypted memory (its whole content, less one
    /// trailing line break; keep it owner-only). Needs a cairn built with the
    /// `encryption` feature. The passphrase itself may instead be given in the
    /// environment variable CAIRN_KEY; there is no flag for it, as a command line is
    /// visible to every user of the machine.
    #[arg(long, env = "CAIRN_KEY_FILE", global = true, value_name = "PATH")]
    pub(crate) key_file: Option<PathBuf>,
    /// What to log on stderr: cairn's own events (index damage and repair, failed indexer
    /// rounds; at `debug`, every transaction, index batch and search with its timings).
    #[arg(
        long,
        env = "CAIRN_LOG",
        global = true,
        value_enum,
        default_value = "warn"
    )]
    pub(crate) log: LogLevel,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `--log` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// Installs a stderr subscriber at this level (none for `off`): stdout stays the
    /// command's output, or the MCP protocol.
    pub(crate) fn install(self) {
        use tracing::Level;
        let level = match self {
            LogLevel::Off => return,
            LogLevel::Error => Level::ERROR,
            LogLevel::Warn => Level::WARN,
            LogLevel::Info => Level::INFO,
            LogLevel::Debug => Level::DEBUG,
            LogLevel::Trace => Level::TRACE,
        };
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .try_init();
    }
}

/// `--checkpoint` values.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Policy {
    Standalone,
    Replicated,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the memory file (or check an existing one) and print its path.
    Init,
    /// Store a triple: SUBJECT –PREDICATE→ OBJECT (ends found or created by name).
    Add {
        /// Subject entity name.
        subject: String,
        /// Predicate, e.g. "works at".
        predicate: String,
        /// Object entity name.
        object: String,
        #[command(flatten)]
        provenance: Provenance,
    },
    /// Store an observation (a free-text fact) about an entity.
    Observe {
        /// Entity name (found or created).
        entity: String,
        /// The fact.
        text: String,
        #[command(flatten)]
        provenance: Provenance,
    },
    /// Store a document (a file, or `-` for standard input), split into searchable
    /// chunks; Markdown is split at its headings.
    AddDocument {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
        /// A title, stored in the document's metadata.
        #[arg(long)]
        title: Option<String>,
        /// The entity the document is about (found or created by name).
        #[arg(long, value_name = "NAME")]
        about: Option<String>,
        /// How to split it: `markdown` at headings (each chunk keeps its heading path),
        /// `text` by paragraphs and sentences; `auto`: markdown for `.md` / `.markdown`
        /// files, text otherwise.
        #[arg(long, value_enum, default_value_t = DocFormat::Auto)]
        format: DocFormat,
        /// At most this many characters per chunk.
        #[arg(long, default_value_t = 800)]
        max_chars: usize,
        /// `--agent` and `--source` (default: the file's path, or `stdin`), recorded as
        /// the document's source and its episode's.
        #[command(flatten)]
        author: Author,
    },
    /// Delete an entity (with its relations and observations), a relation, an
    /// observation or a document.
    Delete {
        #[command(subcommand)]
        what: DeleteWhat,
    },
    /// Merge ABSORB into KEEP: ABSORB's names, relations and observations move to KEEP,
    /// then ABSORB is deleted.
    Merge {
        /// The entity that stays (any of its names).
        keep: String,
        /// The entity merged into it and removed (any of its names).
        absorb: String,
        #[command(flatten)]
        author: Author,
    },
    /// Give an entity a new display name; its old names keep reaching it.
    Rename {
        /// Any name of the entity.
        name: String,
        /// The new display name.
        new_name: String,
        #[command(flatten)]
        author: Author,
    },
    /// Make another name reach an entity.
    Alias {
        /// Any name of the entity.
        name: String,
        /// The new name (refused if it already reaches another entity: merge them).
        alias: String,
        #[command(flatten)]
        author: Author,
    },
    /// Mark a relation as no longer holding from a time on (it stays, as history).
    Invalidate {
        /// Subject entity name.
        subject: String,
        /// Predicate.
        predicate: String,
        /// Object entity name.
        object: String,
        /// When it stopped holding: RFC 3339 (2026-01-05T10:30:00Z) or a date
        /// (2026-01-05, midnight UTC). Default: now.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<Timestamp>,
        #[command(flatten)]
        author: Author,
    },
    /// What was written, when, by which agent from which source: the change log with
    /// its episodes, newest first.
    Log {
        /// Only what this agent wrote.
        #[arg(long)]
        agent: Option<String>,
        /// Only changes at or after this time: RFC 3339 or a date (midnight UTC).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        since: Option<Timestamp>,
        /// Only changes before this time (a date: before that day starts).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        until: Option<Timestamp>,
        /// Only changes older than this change-log position: the next page after one
        /// whose last line had it.
        #[arg(long, value_name = "SEQ")]
        before: Option<i64>,
        /// At most this many changes (at most 10000).
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Import JSON Lines: a cairn export, or the reference server's memory.jsonl.
    Import {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
        /// The file's format (default: detected from the first line).
        #[arg(long, value_enum, default_value_t = Format::Auto)]
        format: Format,
        /// Skip invalid lines (counted and reported) instead of refusing the whole file.
        #[arg(long)]
        skip_invalid: bool,
        /// Record a memory.jsonl import under this agent (its source: the file's path, or
        /// `stdin`); the same content imported again by the same agent writes nothing.
        #[arg(long, default_value = "cairn-import")]
        agent: String,
    },
    /// Export the memory as JSON Lines.
    Export {
        /// Write here (atomically: a temporary file renamed into place); default stdout.
        file: Option<PathBuf>,
        /// `cairn` (everything, exact round trip) or `memory-jsonl` (the reference server's).
        #[arg(long, value_enum, default_value_t = ExportFormat::Cairn)]
        format: ExportFormat,
    },
    /// Hybrid search: ranked entities, relations, observations and chunks.
    Search {
        /// What to look for.
        query: String,
        #[command(flatten)]
        search: SearchArgs,
    },
    /// Search, rendered as prompt text within a token budget.
    Context {
        /// What to look for.
        query: String,
        /// Token budget of the rendered text.
        #[arg(long, default_value_t = 1000)]
        budget: usize,
        /// Start each line of the text with who wrote it and when, as in
        /// `[mail-agent, 2026-11-30] Acme Corp acquired Widget Inc`.
        #[arg(long)]
        provenance: bool,
        #[command(flatten)]
        search: SearchArgs,
    },
    /// One entity with its aliases, relations, observations and provenance.
    Show {
        /// Any name of the entity.
        name: String,
    },
    /// Row counts of the memory.
    Stats,
    /// Verify the file and its index: SQLite's checks, cairn's invariants, index counts.
    Check {
        /// Run every check (`integrity_check`, foreign keys, invariants, index contents)
        /// instead of the quick ones.
        #[arg(long)]
        full: bool,
    },
    /// Write a consistent backup of the memory while writers continue, and check it.
    Backup {
        /// The backup file (replaced atomically if it exists).
        dest: PathBuf,
    },
    /// Restore a backup into the --db path, which must not exist yet.
    Restore {
        /// The backup file.
        backup: PathBuf,
    },
    /// Per-tenant stores: a directory with one memory file per tenant id.
    Tenants {
        /// The tenants' directory (default: the global `--tenants DIR`).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(subcommand)]
        action: TenantAction,
    },
    /// Serve the memory over MCP (stdio): the reference memory server's tools, plus
    /// `search_memory`.
    Mcp {
        /// The agent name the server's writes are recorded under.
        #[arg(long, default_value = "mcp")]
        agent: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TenantAction {
    /// The tenant ids in the directory.
    List,
    /// Create a tenant's memory.
    Create {
        /// Tenant id: letters, digits, `-`, `_`, `.`; at most 64 bytes.
        id: String,
    },
    /// Write a checked backup of a tenant's memory.
    Export {
        /// Tenant id.
        id: String,
        /// The backup file.
        dest: PathBuf,
    },
    /// Remove a tenant: its file, `-wal`, `-shm` and index.
    Drop {
        /// Tenant id.
        id: String,
    },
    /// Archive a tenant: a compacted, checked, owner-only single-file copy at DEST, then
    /// the live tenant dropped (refused while another process has it open).
    Archive {
        /// Tenant id.
        id: String,
        /// The archive file; must not exist, its folder must.
        dest: PathBuf,
    },
    /// Restore an archive (or a backup) as a tenant that does not exist.
    Restore {
        /// Tenant id.
        id: String,
        /// The archive file; checked before anything is written.
        src: PathBuf,
    },
    /// Migrate every tenant in the directory to the current schema and verify it; a
    /// later run skips the tenants an earlier one finished. Exits 4 when any failed.
    Migrate {
        /// The tenants' directory (default: `--dir`, or the global `--tenants DIR`).
        #[arg(value_name = "DIR")]
        path: Option<PathBuf>,
        /// Migrate and verify every tenant again, ignoring the progress file.
        #[arg(long)]
        redo: bool,
    },
}

/// What `delete` removes; names are matched as every write matches them (any alias,
/// any spelling with the same normalized key).
#[derive(Debug, Subcommand)]
pub(crate) enum DeleteWhat {
    /// An entity, with its aliases, relations and observations.
    Entity {
        /// Any name of the entity.
        name: String,
        #[command(flatten)]
        author: Author,
    },
    /// One relation: SUBJECT –PREDICATE→ OBJECT.
    Relation {
        /// Subject entity name.
        subject: String,
        /// Predicate.
        predicate: String,
        /// Object entity name.
        object: String,
        #[command(flatten)]
        author: Author,
    },
    /// One observation of an entity, by its exact text.
    Observation {
        /// Any name of the entity.
        entity: String,
        /// The observation's text, exactly as stored (surrounding white space ignored).
        text: String,
        #[command(flatten)]
        author: Author,
    },
    /// A document and its chunks, by the id `add-document` printed.
    Document {
        /// The document id.
        id: i64,
        #[command(flatten)]
        author: Author,
    },
}

/// Who an edit comes from: recorded as the episode the change log points to.
#[derive(Debug, clap::Args)]
pub(crate) struct Author {
    /// Record the write under this agent.
    #[arg(long, default_value = "cli")]
    pub(crate) agent: String,
    /// Where the fact came from (a message id, a file...).
    #[arg(long)]
    pub(crate) source: Option<String>,
}

impl Author {
    /// The episode this author's writes are recorded under.
    pub(crate) fn episode(&self) -> cairn::Episode {
        let episode = cairn::Episode::new(self.agent.as_str());
        match &self.source {
            Some(source) => episode.source(source.as_str()),
            None => episode,
        }
    }
}

/// Who a write comes from, and whether it may be repeated.
#[derive(Debug, clap::Args)]
pub(crate) struct Provenance {
    #[command(flatten)]
    pub(crate) author: Author,
    /// An idempotency key naming this write: repeating the command with the same agent
    /// and key writes nothing more (safe to retry after a failure).
    #[arg(long, value_name = "KEY")]
    pub(crate) key: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    /// At most this many hits.
    #[arg(long, default_value_t = 10)]
    pub(crate) limit: usize,
    /// Graph expansion depth (0: text match only).
    #[arg(long, default_value_t = 2)]
    pub(crate) depth: u32,
    /// Only hits written under an episode of this agent.
    #[arg(long)]
    pub(crate) agent: Option<String>,
    /// Only hits written at or after this time (a relation: first stated): RFC 3339 or
    /// a date (midnight UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) since: Option<Timestamp>,
    /// Only hits written before this time.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) until: Option<Timestamp>,
    /// Only relations valid at this time (including ones ended since); other kinds are
    /// not affected.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub(crate) valid_at: Option<Timestamp>,
    /// Only these kinds of hits, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', value_name = "KINDS")]
    pub(crate) kinds: Vec<Kind>,
    /// Also relations whose validity ended, marked with their interval (default: only
    /// what holds now).
    #[arg(long)]
    pub(crate) history: bool,
}

/// `--kinds` values: the kinds of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    Entity,
    Relation,
    Observation,
    Chunk,
}

impl Kind {
    pub(crate) fn hit_kind(self) -> cairn::HitKind {
        match self {
            Kind::Entity => cairn::HitKind::Entity,
            Kind::Relation => cairn::HitKind::Relation,
            Kind::Observation => cairn::HitKind::Observation,
            Kind::Chunk => cairn::HitKind::Chunk,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Auto,
    Cairn,
    MemoryJsonl,
}

/// `add-document --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DocFormat {
    Auto,
    Markdown,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    Cairn,
    MemoryJsonl,
}

/// Parses a `--at` / `--since` style time with the library's parser (RFC 3339 or a date).
pub(crate) fn parse_time(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| e.to_string())
}

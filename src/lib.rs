//! # cairn
//!
//! An embedded, multi-threaded, local-first memory graph for AI agents. One SQLite file
//! (WAL mode) holds the whole memory: entities reached by Unicode-normalized names,
//! knowledge triples, observations, provenance and a change log. Many agent threads
//! and several processes write into it at once with no duplicate entities, no lost
//! writes and no `database is locked`.
//!
//! ```
//! use cairn::{Batch, Episode, Memory};
//!
//! let memory = Memory::ephemeral()?; // or Memory::open("agents.db")?
//!
//! // Writes can carry provenance.
//! let mail = memory.episode(&Episode::new("mail-agent").source("inbox/4711"))?;
//! mail.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
//!
//! // Names are matched by normalized keys: one entity, many spellings.
//! let mut batch = Batch::new();
//! batch.triple(("ＡＣＭＥ  Corp", "based in", "Springfield"))
//!      .observe("acme corp", "Founded in 1999");
//! memory.apply(&batch)?;
//!
//! let acme = memory.resolve("Acme Corp")?.unwrap();
//! assert_eq!(memory.outgoing(acme)?.len(), 2);
//! assert_eq!(memory.stats()?.entities, 3);
//! # Ok::<(), cairn::Error>(())
//! ```
//!
//! See `docs/architecture.md` for the modules and the write path.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod config;
mod db;
mod embed;
mod error;
mod files;
mod graph;
mod id;
mod index;
mod key;
mod kinds;
mod memory;
mod normalize;
mod ops;
mod retrieve;
mod time;

pub use config::{CheckpointPolicy, ConnectionMode, Durability, Options};
pub use db::checkpoint::{CheckpointMode, CheckpointRun, CheckpointTrigger, WalStatus};
pub use embed::{Embedder, HashingEmbedder};
#[cfg(feature = "model")]
pub use embed::{QueryPrecision, SentenceEmbedder, SentenceEmbedderBuilder};
pub use error::{Error, InvalidName, ModelProblem, Result};
pub use graph::batch::{Batch, BatchReport};
pub use graph::change::{Change, ChangeOp};
pub use graph::chunker::ChunkOptions;
pub use graph::document::{Chunk, Document, MAX_DOCUMENT_BYTES, Unit};
pub use graph::entity::{Alias, Entity};
pub use graph::episode::{Episode, EpisodeInfo, Recorded};
pub use graph::input::{EntityRef, MAX_OBSERVATION_BYTES, Triple};
pub use graph::observation::Observation;
pub use graph::relation::{Direction, Relation};
pub use graph::stats::Stats;
pub use id::{ChunkId, DocumentId, EntityId, EpisodeId, ObservationId, RelationId, Seq};
/// The in-memory vector index behind the vector channel, exported for
/// `benches/vectors.rs` only: not part of cairn's stable API.
#[doc(hidden)]
pub use index::IndexSource;
pub use index::nearest::VectorIndex;
pub use key::Key;
pub use kinds::HitKind;
pub use memory::Memory;
pub use normalize::{MAX_NAME_BYTES, normalize_name, normalize_predicate};
pub use ops::backup::BackupReport;
pub use ops::history::{HistoryEntry, HistoryQuery};
pub use ops::jsonl::{
    ExportReport, ImportOptions, ImportProgress, ImportReport, JsonlFormat, MAX_LINE_BYTES,
};
pub use ops::knowledge_graph::{
    KgAdded, KgEntity, KgGraph, KgObservations, KgRelation, KnowledgeGraph, Page,
};
pub use ops::tenants::{
    Drained, MAX_TENANT_ID_BYTES, MIGRATE_PROGRESS_FILE, MigrateOptions, MigrateOutcome,
    MigrateReport, TenantMigration, Tenants,
};
pub use ops::verify::{Problem, VerifyMode, VerifyReport};
pub use retrieve::context::{Context, estimate_tokens};
pub use retrieve::provenance::Provenance;
pub use retrieve::{Fusion, Hit, Reason, SearchOptions, Target};

/// The `ndarray` version cairn's [`Embedder`] API uses.
pub use ndarray;
/// The `serde_json` version cairn's API takes metadata and returns exports in.
pub use serde_json;
pub use time::Timestamp;

/// The README's tour, compiled and run as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

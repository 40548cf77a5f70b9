//! [`Memory`]: the handle every agent thread shares.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::config::Options;
use crate::db::Db;
use crate::db::checkpoint::{CheckpointRun, WalStatus};
use crate::error::{Error, Result};
use crate::graph::WriteCtx;
use crate::graph::batch::{self, Batch, BatchReport};
use crate::graph::change::{self, Change};
use crate::graph::document::{self, Chunk, Document, Unit};
use crate::graph::entity::{self, Alias, Entity};
use crate::graph::episode::{self, Episode, EpisodeInfo, Recorded};
use crate::graph::input::{EntityRef, Triple, ValidName, ValidRef, check_text, observation_text};
use crate::graph::mention;
use crate::graph::observation::{self, Observation};
use crate::graph::relation::{self, Direction, Relation};
use crate::graph::stats::{self, Stats};
use crate::id::{ChunkId, DocumentId, EntityId, EpisodeId, ObservationId, RelationId, Seq};
use crate::index::{self, IndexSource, SearchIndex};
use crate::retrieve::context::Context;
use crate::retrieve::provenance::Provenance;
use crate::retrieve::{self, Hit, SearchOptions, Target};
use crate::time::Timestamp;

/// Longest accepted entity kind, in bytes.
pub(crate) const MAX_KIND_BYTES: usize = 256;
/// Longest accepted entity summary, in bytes.
const MAX_SUMMARY_BYTES: usize = 64 * 1024;

/// A memory graph stored in one SQLite file.
///
/// `Memory` is a cheap handle (`Clone + Send + Sync`): clone it into every agent thread.
/// Every write call is one transaction; bad input is refused before anything is written.
///
/// ```
/// use cairn::Memory;
///
/// let memory = Memory::ephemeral()?;
/// memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
/// memory.observe("ACME corp", "Headquartered in Springfield")?;
///
/// let acme = memory.resolve("ＡＣＭＥ Corp")?.expect("one entity, many spellings");
/// assert_eq!(memory.outgoing(acme)?[0].object_name, "Widget Inc");
/// assert_eq!(memory.observations(acme)?.len(), 1);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Clone)]
pub struct Memory {
    // Field order matters: the index (and its thread, which holds the Db) closes first.
    index: Arc<SearchIndex>,
    db: Arc<Db>,
    episode: Option<EpisodeId>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("path", &self.db.path())
            .field("episode", &self.episode)
            .finish()
    }
}

/// Finishes schema 6 on a file written by an earlier cairn: its alias keys are
/// recomputed with today's name keys, once (a read-only open leaves them as they are).
fn rekey_if_needed(db: &Db) -> Result<()> {
    if db.options().read_only || !db.read(entity::needs_rekey)? {
        return Ok(());
    }
    let changed = db.write(|c| entity::rekey_aliases(c, &WriteCtx::new(None)))?;
    tracing::info!(changed, "alias keys recomputed for schema 6");
    Ok(())
}

impl Options {
    /// Opens (creating if needed) the memory at `path` with these options.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Memory> {
        Memory::open_with(path, self)
    }
}

impl Memory {
    /// Opens the memory at `path` with default [`Options`], creating the file if needed.
    pub fn open(path: impl AsRef<Path>) -> Result<Memory> {
        Self::open_with(path, Options::default())
    }

    /// Opens the memory at `path` with `options`.
    pub fn open_with(path: impl AsRef<Path>, options: Options) -> Result<Memory> {
        let mut db = Arc::new(Db::open(path.as_ref(), options)?);
        rekey_if_needed(&db)?;
        if let Some(stored) = index::vectors::missing_embedder(&db)? {
            // Everything but writing works without the file's embedder: reopen read-only.
            let mut options = db.options().clone().read_only(true);
            options.missing_embedder = Some(stored);
            drop(db);
            db = Arc::new(Db::open(path.as_ref(), options)?);
        }
        // An encrypted memory's index never touches the disk: tantivy's files would hold
        // every text in the clear. It is built in RAM from the change log instead
        // (docs/encryption.md measures what that costs an open).
        if db.options().encrypted() {
            let memory = Self::with_index(db, None)?;
            // The open returns with the index caught up, so the first search of a fresh
            // process (a command-line call) sees the whole memory, as it would with the
            // folder. One that takes longer than the sync budget is left to finish in
            // the background; searches meanwhile see what it indexed so far.
            match memory.sync_searchable() {
                Ok(()) => {}
                Err(Error::IndexLag { behind, .. }) => {
                    tracing::warn!(target: "cairn::index", behind, "encrypted open: the index in RAM is still being built");
                }
                Err(e) => return Err(e),
            }
            return Ok(memory);
        }
        let dir = index::dir_for(path.as_ref());
        Self::with_index(db, Some(&dir))
    }

    fn with_index(db: Arc<Db>, index_dir: Option<&Path>) -> Result<Memory> {
        let index = SearchIndex::new(Arc::clone(&db), index_dir)?;
        db.on_commit(index.waker());
        db.track_seq_with(|conn| Ok(change::last_seq(conn)?.get()));
        Ok(Memory {
            index: Arc::new(index),
            db,
            episode: None,
        })
    }

    /// The same memory, writing under `episode`.
    fn stamped(&self, episode: EpisodeId) -> Memory {
        Memory {
            index: Arc::clone(&self.index),
            db: Arc::clone(&self.db),
            episode: Some(episode),
        }
    }

    /// A throw-away memory in the temporary directory, deleted when the last handle is
    /// dropped. It behaves exactly like a file memory (WAL, several threads).
    pub fn ephemeral() -> Result<Memory> {
        Self::ephemeral_with(Options::default())
    }

    /// [`Memory::ephemeral`] with `options`.
    pub fn ephemeral_with(options: Options) -> Result<Memory> {
        Self::with_index(Arc::new(Db::ephemeral(options)?), None)
    }

    /// The embedder the file's vectors were made with (`id (dimension N)`) when this open
    /// configured none. Such a memory is opened read-only: it reads, exports, backs up and
    /// searches (without the vector channel), and its writes fail with
    /// [`Error::EmbedderMismatch`].
    pub fn missing_embedder(&self) -> Option<&str> {
        self.db.options().missing_embedder.as_deref()
    }

    /// Where searches read their index from: the index folder, RAM (an ephemeral
    /// memory), or an index a read-only open rebuilt in RAM because it could not use the
    /// folder ([`IndexSource::Rebuilt`] says why).
    pub fn index_source(&self) -> IndexSource {
        self.index.source()
    }

    /// True when the file is opened read-only: by [`Options::read_only`], or because it
    /// has vectors and this open configured no embedder ([`Memory::missing_embedder`]).
    pub fn is_read_only(&self) -> bool {
        self.db.options().read_only
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.db.path()
    }

    /// The options the memory was opened with.
    pub fn options(&self) -> &Options {
        self.db.options()
    }

    /// What a write through this handle is stamped with (also for `ops`, which write
    /// through the graph layer directly).
    pub(crate) fn ctx(&self) -> WriteCtx {
        WriteCtx::new(self.episode)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// How many handles share this memory (clones, episode handles).
    pub(crate) fn handles(&self) -> usize {
        // The index's turns on the shared workers hold the Db too (while they run); only
        // handles hold the index.
        Arc::strong_count(&self.index)
    }

    pub(crate) fn search_index(&self) -> &SearchIndex {
        &self.index
    }

    // ----- provenance -------------------------------------------------------------

    /// Records `episode` and returns a handle whose writes all point to it.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let mail = memory.episode(&cairn::Episode::new("mail-agent").source("msg-42"))?;
    /// mail.add_triple(("Ann", "works at", "Acme"))?;
    /// assert_eq!(memory.written_by("mail-agent", 100)?.len(), 3); // 2 entities + 1 relation
    /// # Ok::<(), cairn::Error>(())
    /// ```
    ///
    /// An episode with an [idempotency key](Episode::idempotency_key) that was recorded
    /// before is not recorded again: the handle writes under the first one. (Writes made
    /// through the handle are separate transactions; to make the writes themselves
    /// idempotent, use [`Memory::record`].)
    pub fn episode(&self, episode: &Episode) -> Result<Memory> {
        let valid = episode.validate()?;
        let id = self.db.write(|c| episode::find_or_insert(c, &valid))?;
        Ok(self.stamped(id))
    }

    /// Records `episode` and writes `batch` under it, in one transaction.
    ///
    /// With an [idempotency key](Episode::idempotency_key) on the episode, the call can
    /// be repeated safely: when the key is found, nothing is written and the first call's
    /// report comes back with `replayed: true`. That is the answer to a commit that failed
    /// with [`Error::OutcomeUnknown`] (or a process killed mid-write): call again with the
    /// same key.
    ///
    /// ```
    /// use cairn::{Batch, Episode};
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let episode = Episode::new("mail-agent").source("msg-4711").idempotency_key("msg-4711");
    /// let mut batch = Batch::new();
    /// batch.triple(("Acme Corp", "acquired", "Widget Inc"));
    /// batch.observe("Acme Corp", "Announced on Monday");
    ///
    /// let first = memory.record(&episode, &batch)?;
    /// let again = memory.record(&episode, &batch)?; // e.g. after Error::OutcomeUnknown
    /// assert!(!first.replayed && again.replayed);
    /// assert_eq!(first.report, again.report);
    /// assert_eq!(memory.stats()?.observations, 1);
    /// assert_eq!(memory.stats()?.episodes, 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn record(&self, episode: &Episode, batch: &Batch<'_>) -> Result<Recorded> {
        let valid = episode.validate()?;
        let items = batch.validate()?;
        self.db.write(|c| {
            let found = episode::find_keyed(c, &valid)?;
            if let Some((id, Some(report))) = found {
                return Ok(Recorded {
                    episode: id,
                    report,
                    replayed: true,
                });
            }
            // A keyed episode recorded by `episode()` has no batch yet: this is its first.
            let id = match found {
                Some((id, None)) => id,
                _ => episode::insert(c, &valid)?,
            };
            let report = batch::apply(c, &items, &WriteCtx::new(Some(id)))?;
            if episode::is_keyed(&valid) {
                episode::set_outcome(c, id, &report)?;
            }
            Ok(Recorded {
                episode: id,
                report,
                replayed: false,
            })
        })
    }

    /// A handle whose writes point to an episode recorded earlier.
    pub fn with_episode(&self, id: EpisodeId) -> Result<Memory> {
        self.get_episode(id)?
            .ok_or_else(|| Error::not_found("episode", id))?;
        Ok(self.stamped(id))
    }

    /// The episode this handle's writes point to, if any.
    pub fn current_episode(&self) -> Option<EpisodeId> {
        self.episode
    }

    /// Reads one episode.
    pub fn get_episode(&self, id: EpisodeId) -> Result<Option<EpisodeInfo>> {
        self.db.read(|c| episode::get(c, id))
    }

    /// Every episode recorded for `agent`, oldest first.
    pub fn episodes_by_agent(&self, agent: &str) -> Result<Vec<EpisodeInfo>> {
        self.db.read(|c| episode::by_agent(c, agent))
    }

    /// What `agent` wrote, and when: the change-log rows of its episodes, oldest first.
    pub fn written_by(&self, agent: &str, limit: usize) -> Result<Vec<Change>> {
        self.db.read(|c| change::by_agent(c, agent, limit))
    }

    // ----- entities ---------------------------------------------------------------

    /// Finds the entity reached by `name` (any alias, any spelling with the same key), or
    /// creates it. Safe to call from many threads and processes at once: one name, one
    /// entity.
    pub fn ensure_entity(&self, name: &str) -> Result<EntityId> {
        let name = ValidName::entity(name)?;
        // Fast path: most names already exist, and a lookup needs no lock.
        if let Some(id) = self.db.read(|c| entity::lookup(c, &name.key))? {
            return Ok(id);
        }
        let _queue = self.db.lock();
        // Another thread of this process may have created it while we queued.
        if let Some(id) = self.db.read(|c| entity::lookup(c, &name.key))? {
            return Ok(id);
        }
        #[cfg(test)]
        hooks::before_insert(&name.key);
        // Another *process* may still win between the re-check and the insert: the
        // insert then hits the key's UNIQUE constraint and returns the winner.
        let ctx = self.ctx();
        self.db.write(|c| entity::insert_or_winner(c, &name, &ctx))
    }

    /// The entity reached by `name`, without creating anything.
    pub fn resolve(&self, name: &str) -> Result<Option<EntityId>> {
        let key = crate::normalize::normalize_name(name)?;
        self.db.read(|c| entity::lookup(c, &key))
    }

    /// Reads one entity.
    pub fn entity(&self, id: EntityId) -> Result<Option<Entity>> {
        self.db.read(|c| entity::get(c, id))
    }

    /// Up to `limit` entities with ids greater than `after`, by id (for paging).
    pub fn entities(&self, after: Option<EntityId>, limit: usize) -> Result<Vec<Entity>> {
        self.db.snapshot(|c| entity::list(c, after, limit))
    }

    /// Every name the entity is reached by.
    pub fn aliases(&self, id: EntityId) -> Result<Vec<Alias>> {
        self.db.read(|c| entity::aliases(c, id))
    }

    /// Makes `name` another way to reach `id`. Returns false if it already was;
    /// [`Error::AliasTaken`] if the name belongs to another entity.
    pub fn add_alias(&self, id: EntityId, name: &str) -> Result<bool> {
        let name = ValidName::entity(name)?;
        let ctx = self.ctx();
        self.db.write(|c| entity::add_alias(c, id, &name, &ctx))
    }

    /// Changes the display name; the old names keep resolving to the entity.
    pub fn rename(&self, id: EntityId, new_name: &str) -> Result<()> {
        let name = ValidName::entity(new_name)?;
        let ctx = self.ctx();
        self.db.write(|c| entity::rename(c, id, &name, &ctx))
    }

    /// Sets the entity's kind (e.g. `person`).
    pub fn set_kind(&self, id: EntityId, kind: &str) -> Result<()> {
        check_text("entity kind", kind, MAX_KIND_BYTES)?;
        let ctx = self.ctx();
        self.db
            .write(|c| entity::update(c, id, Some(kind.trim()), None, &ctx))
    }

    /// Sets the entity's summary.
    pub fn set_summary(&self, id: EntityId, summary: &str) -> Result<()> {
        check_text("entity summary", summary, MAX_SUMMARY_BYTES)?;
        let ctx = self.ctx();
        self.db
            .write(|c| entity::update(c, id, None, Some(summary.trim()), &ctx))
    }

    /// Merges `absorb` into `keep`: aliases, relations and observations move over
    /// (collisions deduplicated), then `absorb` is deleted.
    pub fn merge(&self, keep: EntityId, absorb: EntityId) -> Result<()> {
        let ctx = self.ctx();
        self.db.write(|c| entity::merge(c, keep, absorb, &ctx))
    }

    /// Deletes the entity with its aliases, relations and observations. Returns false if
    /// it did not exist.
    pub fn delete_entity(&self, id: EntityId) -> Result<bool> {
        let ctx = self.ctx();
        self.db.write(|c| entity::delete(c, id, &ctx))
    }

    // ----- relations --------------------------------------------------------------

    /// Stores a triple, finding or creating its ends. Asserting an existing triple again
    /// counts one more mention and updates its last-seen time.
    pub fn add_triple<'a>(&self, triple: impl Into<Triple<'a>>) -> Result<RelationId> {
        let triple = triple.into().validate()?;
        let ctx = self.ctx();
        self.db
            .write_grouped(move |c| relation::add(c, &triple, &ctx))
    }

    /// The stored triple `subject –predicate→ object`, its ends and predicate matched by
    /// normalized keys (any alias, any spelling); `None` if an end or the triple is
    /// unknown. Invalid names are errors, as they are for writes.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let id = memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// assert_eq!(memory.find_relation("ACME corp", "Acquired", "widget inc")?, Some(id));
    /// assert_eq!(memory.find_relation("Acme Corp", "sold", "Widget Inc")?, None);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn find_relation(
        &self,
        subject: &str,
        predicate: &str,
        object: &str,
    ) -> Result<Option<RelationId>> {
        let subject = ValidName::entity(subject)?;
        let predicate = ValidName::predicate(predicate)?;
        let object = ValidName::entity(object)?;
        self.db.snapshot(|c| {
            let (Some(s), Some(o)) = (
                entity::lookup(c, &subject.key)?,
                entity::lookup(c, &object.key)?,
            ) else {
                return Ok(None);
            };
            relation::find(c, s, &predicate.key, o)
        })
    }

    /// Reads one relation.
    pub fn relation(&self, id: RelationId) -> Result<Option<Relation>> {
        self.db.read(|c| relation::get(c, id))
    }

    /// Marks a relation as no longer valid from `at` on (it stays in the memory).
    pub fn invalidate(&self, id: RelationId, at: Timestamp) -> Result<()> {
        let ctx = self.ctx();
        self.db.write(|c| relation::invalidate(c, id, at, &ctx))
    }

    /// Removes a relation. Returns false if it did not exist.
    pub fn remove_relation(&self, id: RelationId) -> Result<bool> {
        let ctx = self.ctx();
        self.db.write(|c| relation::remove(c, id, &ctx))
    }

    /// The entity's relations in the given direction.
    pub fn relations(&self, id: EntityId, direction: Direction) -> Result<Vec<Relation>> {
        self.db.read(|c| relation::of_entity(c, id, direction))
    }

    /// Relations where the entity is the subject.
    pub fn outgoing(&self, id: EntityId) -> Result<Vec<Relation>> {
        self.relations(id, Direction::Outgoing)
    }

    /// Relations where the entity is the object.
    pub fn incoming(&self, id: EntityId) -> Result<Vec<Relation>> {
        self.relations(id, Direction::Incoming)
    }

    /// Distinct entities one relation away, in either direction.
    pub fn neighbours(&self, id: EntityId) -> Result<Vec<EntityId>> {
        self.db.read(|c| relation::neighbours(c, id))
    }

    // ----- observations -----------------------------------------------------------

    /// Stores a free-text fact about an entity (found or created by name). The same text
    /// on the same entity is stored once; its id is returned either way.
    pub fn observe<'a>(
        &self,
        entity: impl Into<EntityRef<'a>>,
        text: &str,
    ) -> Result<ObservationId> {
        let entity = ValidRef::new(&entity.into())?;
        let text = observation_text(text)?.to_owned();
        let ctx = self.ctx();
        self.db.write_grouped(move |c| {
            let id = entity::resolve_ref(c, &entity, &ctx)?;
            observation::add(c, id, &text, &ctx)
        })
    }

    /// Removes an observation. Returns false if it did not exist.
    pub fn remove_observation(&self, id: ObservationId) -> Result<bool> {
        let ctx = self.ctx();
        self.db.write(|c| observation::remove(c, id, &ctx))
    }

    /// The entity's observation with exactly this text (trimmed, as stored), if any.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let id = memory.observe("Ann", "Likes tea")?;
    /// let ann = memory.resolve("ann")?.unwrap();
    /// assert_eq!(memory.find_observation(ann, "  Likes tea ")?, Some(id));
    /// assert_eq!(memory.find_observation(ann, "likes tea")?, None);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn find_observation(&self, entity: EntityId, text: &str) -> Result<Option<ObservationId>> {
        let text = observation_text(text)?;
        self.db.read(|c| observation::find(c, entity, text))
    }

    /// The entity's observations, oldest first.
    pub fn observations(&self, id: EntityId) -> Result<Vec<Observation>> {
        self.db.read(|c| observation::of_entity(c, id))
    }

    // ----- documents and chunks ----------------------------------------------------

    /// Stores a document, split into chunks (see [`crate::ChunkOptions`]); returns its id
    /// and its chunks' ids in order.
    pub fn add_document(&self, doc: &Document<'_>) -> Result<(DocumentId, Vec<ChunkId>)> {
        let valid = doc.validate()?;
        let ctx = self.ctx();
        self.db.write(|c| document::insert(c, &valid, &ctx))
    }

    /// Stores pre-split units (chat turns, tool results) as the chunks of one document
    /// from `source`, one chunk per unit, each with its own metadata.
    pub fn add_units(
        &self,
        source: &str,
        units: &[Unit<'_>],
    ) -> Result<(DocumentId, Vec<ChunkId>)> {
        let valid = document::validate_units(source, units)?;
        let ctx = self.ctx();
        self.db.write(|c| document::insert(c, &valid, &ctx))
    }

    /// The entities a chunk mentions: those with an alias that occurs in its text (case,
    /// width and spacing folded; whole words only).
    ///
    /// Links are derived by the indexer, like search results: they appear once the chunk
    /// (or, for a name added later, the name) is indexed; [`Memory::sync`] waits for that.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let acme = memory.ensure_entity("Acme Corp")?;
    /// let (_doc, chunks) = memory.add_units("mail", &[cairn::Unit::new("Lunch with ACME  corp's CFO")])?;
    /// memory.sync()?;
    /// assert_eq!(memory.mentions(chunks[0])?, [acme]);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn mentions(&self, chunk: ChunkId) -> Result<Vec<EntityId>> {
        self.db.read(|c| mention::mentioned_in(c, chunk))
    }

    /// The chunks that mention an entity, newest first, at most `limit` (see
    /// [`Memory::mentions`]).
    pub fn mentioned_by(&self, entity: EntityId, limit: usize) -> Result<Vec<ChunkId>> {
        self.db.read(|c| mention::mentioning(c, entity, limit))
    }

    /// Reads one chunk.
    pub fn chunk(&self, id: ChunkId) -> Result<Option<Chunk>> {
        self.db.read(|c| document::chunk(c, id))
    }

    /// A document's chunks, in order.
    pub fn chunks(&self, document: DocumentId) -> Result<Vec<Chunk>> {
        self.db.read(|c| document::chunks(c, document))
    }

    /// Deletes a document and its chunks. Returns false if it did not exist.
    pub fn delete_document(&self, id: DocumentId) -> Result<bool> {
        let ctx = self.ctx();
        self.db.write(|c| document::delete(c, id, &ctx))
    }

    // ----- search ------------------------------------------------------------------

    /// Returns once every write committed before this call (by any process) is
    /// searchable and its derived rows — the mention links the graph step follows, the
    /// vectors — are in the file.
    ///
    /// A search with [`SearchOptions::read_your_writes`] waits for less: for this
    /// process's writes to be searchable; their mention links and vectors are written
    /// right after the index commit, by a background thread, so for a moment the graph
    /// and vector channels may not see them yet. Called inside [`Memory::transaction`],
    /// `sync` waits for searchability only: the derived rows need the write lock that
    /// the calling thread holds.
    pub fn sync(&self) -> Result<()> {
        let target = self.last_seq()?;
        let with_derived = !self.db.writing_on_this_thread();
        self.index.wait_for(target, with_derived)
    }

    /// Returns once every write committed before this call (by any process) is
    /// searchable, without waiting for their derived rows (see [`Memory::sync`]): how far
    /// behind the writers the index is.
    pub fn sync_searchable(&self) -> Result<()> {
        let target = self.last_seq()?;
        self.index.wait_for(target, false)
    }

    /// Ranked hits for `query` (BM25 over names and text).
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// let options = cairn::SearchOptions::new().read_your_writes(true);
    /// let hits = memory.search("who acquired widget?", &options)?;
    /// assert!(hits.iter().any(|h| h.text == "Acme Corp acquired Widget Inc"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn search(&self, query: &str, options: &SearchOptions) -> Result<Vec<Hit>> {
        options.validate(query)?;
        if options.read_your_writes {
            // This process's own writes, not everybody's: another process's backlog is
            // that process's to wait for.
            self.index
                .wait_searchable(Seq::from_raw(self.db.own_seq()))?;
        }
        self.db
            .snapshot(|c| retrieve::search(c, &self.index, query, options))
    }

    /// [`Memory::search`], rendered as prompt text within `token_budget` tokens (estimated
    /// by [`crate::estimate_tokens`]), most useful first, without duplicates.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// let options = cairn::SearchOptions::new().read_your_writes(true);
    /// let context = memory.context("acme", &options, 200)?;
    /// assert!(context.text.contains("Acme Corp acquired Widget Inc"));
    /// assert!(context.tokens <= 200);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn context(
        &self,
        query: &str,
        options: &SearchOptions,
        token_budget: usize,
    ) -> Result<Context> {
        let hits = self.search(query, options)?;
        let labels = if options.provenance {
            self.db
                .snapshot(|c| retrieve::context::provenance_labels(c, &hits))?
        } else {
            HashMap::new()
        };
        Ok(retrieve::context::render(hits, token_budget, &labels))
    }

    /// Who wrote each of `targets` (typically the targets of [`Memory::search`]'s hits)
    /// and when; a target that no longer exists is absent from the map. One statement
    /// per kind of target.
    ///
    /// ```
    /// # use cairn::{Episode, Memory, SearchOptions};
    /// # let memory = Memory::ephemeral()?;
    /// let mail = memory.episode(&Episode::new("mail-agent").source("inbox/4711"))?;
    /// mail.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// let hits = memory.search("widget", &SearchOptions::new().read_your_writes(true))?;
    /// let targets: Vec<_> = hits.iter().map(|h| h.target).collect();
    /// let who = memory.provenance(&targets)?;
    /// assert_eq!(who[&hits[0].target].agent.as_deref(), Some("mail-agent"));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn provenance(&self, targets: &[Target]) -> Result<HashMap<Target, Provenance>> {
        self.db
            .snapshot(|c| retrieve::provenance::provenance_of(c, targets))
    }

    // ----- batches, transactions, change log ----------------------------------------

    /// Writes a whole batch in one transaction. Every item is checked first; if any is
    /// invalid, nothing is written and the error names its index.
    pub fn apply(&self, batch: &Batch<'_>) -> Result<BatchReport> {
        let items = batch.validate()?;
        let ctx = self.ctx();
        self.db.write(|c| batch::apply(c, &items, &ctx))
    }

    /// Runs `f` as one transaction: every call this thread makes on this memory inside
    /// `f` joins it, and an error from `f` rolls all of them back.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let result: cairn::Result<()> = memory.transaction(|| {
    ///     memory.add_triple(("Ann", "knows", "Bob"))?;
    ///     Err(cairn::Error::ReadOnly) // anything that fails...
    /// });
    /// assert!(result.is_err());
    /// assert_eq!(memory.resolve("Ann")?, None); // ...and nothing was written
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.db.write(|_| f())
    }

    /// Change-log rows with `seq` greater than `after`, oldest first, at most `limit`.
    pub fn changes_since(&self, after: Seq, limit: usize) -> Result<Vec<Change>> {
        self.db.read(|c| change::since(c, after, limit))
    }

    /// The newest change-log position (0 when nothing was ever written).
    pub fn last_seq(&self) -> Result<Seq> {
        self.db.read(change::last_seq)
    }

    /// Row counts, read from one snapshot.
    pub fn stats(&self) -> Result<Stats> {
        self.db.snapshot(stats::read)
    }

    // ----- write-ahead log -----------------------------------------------------------

    /// The WAL's size, the [`CheckpointPolicy`](crate::CheckpointPolicy) and the last
    /// checkpoint.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// memory.add_triple(("Ann", "knows", "Bob"))?;
    /// let status = memory.wal_status();
    /// assert_eq!(status.policy, cairn::CheckpointPolicy::Standalone);
    /// assert!(status.wal_bytes > 0);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn wal_status(&self) -> WalStatus {
        self.db.wal_status()
    }

    /// Checkpoints now, as far as the policy allows: a standalone memory runs a TRUNCATE
    /// checkpoint (the `-wal` file is emptied once every reader has moved on, waiting up
    /// to the busy timeout); a replicated one only a PASSIVE checkpoint, which never
    /// waits and never restarts the WAL under the replication tool.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// memory.add_triple(("Ann", "knows", "Bob"))?;
    /// let run = memory.checkpoint()?;
    /// assert!(run.complete);
    /// assert_eq!(memory.wal_status().wal_bytes, 0);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn checkpoint(&self) -> Result<CheckpointRun> {
        self.db.checkpoint()
    }
}

#[cfg(test)]
pub(crate) mod hooks {
    //! Test-only fault injection on the find-or-create path.
    use std::cell::RefCell;

    type Hook = Box<dyn FnMut(&str)>;

    thread_local! {
        static BEFORE_INSERT: RefCell<Option<Hook>> = RefCell::new(None);
    }

    /// Runs `hook` on this thread between find-or-create's re-check and its insert.
    pub(crate) fn set_before_insert(hook: Option<Hook>) {
        BEFORE_INSERT.with(|h| *h.borrow_mut() = hook);
    }

    pub(crate) fn before_insert(key: &str) {
        BEFORE_INSERT.with(|h| {
            if let Some(hook) = h.borrow_mut().as_mut() {
                hook(key);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConnectionMode;

    #[test]
    fn is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Memory>();
    }

    /// The UNIQUE fallback, forced: between the re-check and the insert, a second
    /// connection (standing in for another process) commits the same key.
    #[test]
    fn unique_violation_fallback_returns_the_winner() {
        for mode in [
            ConnectionMode::ThreadLocal,
            ConnectionMode::Pool { size: 2 },
        ] {
            let memory = Memory::ephemeral_with(Options::new().connection_mode(mode)).unwrap();
            let path = memory.path().to_owned();
            let winner = std::rc::Rc::new(std::cell::Cell::new(None));
            let seen = std::rc::Rc::clone(&winner);
            hooks::set_before_insert(Some(Box::new(move |key: &str| {
                let other = Memory::open(&path).unwrap();
                // Write through the graph layer directly, skipping the fast path and lock
                // that would otherwise make this handle see the key and return early.
                let name = ValidName::entity("ACME corp").unwrap();
                assert_eq!(name.key, key);
                let id = other
                    .db
                    .write(|c| entity::insert_or_winner(c, &name, &WriteCtx::new(None)))
                    .unwrap();
                seen.set(Some(id));
            })));
            let got = memory.ensure_entity("Acme Corp");
            hooks::set_before_insert(None);
            let got = got.unwrap();
            assert_eq!(
                Some(got),
                winner.get(),
                "the call returns the other writer's entity"
            );
            let stats = memory.stats().unwrap();
            assert_eq!(
                (stats.entities, stats.aliases),
                (1, 1),
                "no duplicate, no orphan"
            );
            assert_eq!(memory.entity(got).unwrap().unwrap().name, "ACME corp");
            // The losing insert was rolled back: one creation in the log.
            assert_eq!(memory.last_seq().unwrap(), Seq::from_raw(1));
        }
    }

    #[test]
    fn nested_writes_join_the_outer_transaction() {
        for mode in [
            ConnectionMode::ThreadLocal,
            ConnectionMode::Pool { size: 1 },
        ] {
            let memory = Memory::ephemeral_with(Options::new().connection_mode(mode)).unwrap();
            let r: Result<()> = memory.transaction(|| {
                memory.add_triple(("A", "r", "B"))?;
                // A read inside sees the uncommitted write, even with a pool of one.
                assert!(memory.resolve("a")?.is_some());
                memory.transaction(|| memory.observe("A", "nested").map(|_| ()))?;
                Err(Error::invalid_input("test", "abort"))
            });
            assert!(r.is_err());
            assert_eq!(memory.stats().unwrap().entities, 0);
            memory
                .transaction(|| memory.add_triple(("A", "r", "B")).map(|_| ()))
                .unwrap();
            assert_eq!(memory.stats().unwrap().relations, 1);
        }
    }

    #[test]
    fn a_panic_inside_a_write_leaves_the_memory_usable() {
        let memory = Memory::ephemeral().unwrap();
        let m = memory.clone();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            m.transaction(|| -> Result<()> {
                m.add_triple(("A", "r", "B"))?;
                panic!("agent bug");
            })
        }));
        assert!(result.is_err());
        memory.add_triple(("C", "r", "D")).unwrap();
        assert_eq!(memory.stats().unwrap().entities, 2);
    }
}

//! `cairn.Memory`: the library's `Memory` handle, every call made with the GIL released.
//!
//! Each method validates and converts its Python arguments while attached to the
//! interpreter, then runs the library call inside `py.detach`, so other Python threads
//! run (and write, and search) meanwhile; results become Python objects after.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use cairn::{
    ChunkOptions, Direction, Document, EntityId, EntityRef, Episode, ImportOptions, JsonlFormat,
    ObservationId, RelationId, Target, Timestamp, Triple, Unit, VerifyMode,
};

use crate::batch::{PyBatch, PyBatchReport};
use crate::convert::{entity_ref, json_opt, json_value, timestamp, timestamp_opt};
use crate::errors::{IntoPy, invalid, to_py};
use crate::options::{OpenArgs, SearchArgs};
use crate::reports::{PyBackupReport, PyImportReport, PyVerifyReport};
use crate::types::{PyContext, PyEntityView, PyEpisodeInfo, PyHit, PyRelation};

/// A memory graph in one SQLite file, shared by every thread (and process) that opens it.
///
/// `Memory(path, ...)` opens or creates the file; `Memory.ephemeral()` makes a
/// throw-away one. A handle is cheap and thread-safe: share one across threads.
#[pyclass(frozen, module = "cairn._native", name = "Memory")]
pub(crate) struct PyMemory {
    pub(crate) inner: cairn::Memory,
}

impl PyMemory {
    pub(crate) fn wrap(inner: cairn::Memory) -> Self {
        PyMemory { inner }
    }

    /// The entity `arg` names (a name that must exist, or an id), or `NotFoundError`.
    fn existing(
        &self,
        py: Python<'_>,
        arg: &Bound<'_, PyAny>,
        field: &'static str,
    ) -> PyResult<EntityId> {
        match entity_ref(arg, field)? {
            EntityRef::Id(id) => Ok(id),
            EntityRef::Name(name) => {
                let found = py.detach(|| self.inner.resolve(&name)).py_err(py)?;
                found.ok_or_else(|| {
                    to_py(
                        py,
                        cairn::Error::NotFound {
                            what: "entity",
                            key: name.into_owned(),
                        },
                    )
                })
            }
        }
    }

    /// Search hits with who wrote them (one provenance read for all of them).
    fn hits(
        &self,
        py: Python<'_>,
        hits: Vec<cairn::Hit>,
        provenance: bool,
    ) -> PyResult<Vec<Py<PyHit>>> {
        let mut written = if provenance && !hits.is_empty() {
            let targets: Vec<Target> = hits.iter().map(|h| h.target).collect();
            py.detach(|| self.inner.provenance(&targets)).py_err(py)?
        } else {
            HashMap::new()
        };
        hits.into_iter()
            .map(|hit| {
                let w = written.remove(&hit.target);
                Py::new(py, PyHit::new(hit, w))
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
#[pymethods]
impl PyMemory {
    /// Opens (creating if needed) the memory at `path`.
    #[new]
    #[pyo3(signature = (path, *, durability="normal", busy_timeout=5.0, read_only=false, pool_size=None, checkpoint_policy=None, embedder=None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        durability: &str,
        busy_timeout: f64,
        read_only: bool,
        pool_size: Option<u32>,
        checkpoint_policy: Option<&str>,
        embedder: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = OpenArgs {
            durability,
            busy_timeout,
            read_only,
            pool_size,
            checkpoint_policy,
            embedder,
        }
        .options(py)?;
        let memory = py
            .detach(|| cairn::Memory::open_with(&path, options))
            .py_err(py)?;
        Ok(Self::wrap(memory))
    }

    /// A throw-away memory in the temporary directory, deleted when the last handle to it
    /// is garbage-collected. It behaves like a file memory (WAL, threads).
    #[staticmethod]
    #[pyo3(signature = (*, durability="normal", busy_timeout=5.0, pool_size=None, embedder=None))]
    fn ephemeral(
        py: Python<'_>,
        durability: &str,
        busy_timeout: f64,
        pool_size: Option<u32>,
        embedder: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = OpenArgs {
            durability,
            busy_timeout,
            read_only: false,
            pool_size,
            checkpoint_policy: None,
            embedder,
        }
        .options(py)?;
        let memory = py
            .detach(|| cairn::Memory::ephemeral_with(options))
            .py_err(py)?;
        Ok(Self::wrap(memory))
    }

    /// Restores the backup at `backup` into the new file `to` (which must not exist) and
    /// opens it.
    #[staticmethod]
    fn restore(py: Python<'_>, backup: PathBuf, to: PathBuf) -> PyResult<Self> {
        let memory = py
            .detach(|| cairn::Memory::restore(&backup, &to))
            .py_err(py)?;
        Ok(Self::wrap(memory))
    }

    /// The database file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_owned()
    }

    /// The episode this handle writes under (see `episode`), or `None`.
    #[getter]
    fn episode_id(&self) -> Option<i64> {
        self.inner.current_episode().map(|e| e.get())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Nothing to close: the handle lives as long as Python holds it. Exceptions pass.
    fn __exit__(
        &self,
        _kind: Option<&Bound<'_, PyAny>>,
        _value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        false
    }

    fn __repr__(&self) -> String {
        match self.inner.current_episode() {
            Some(e) => format!("Memory({:?}, episode={e})", self.inner.path()),
            None => format!("Memory({:?})", self.inner.path()),
        }
    }

    // ----- writes ----------------------------------------------------------------------

    /// Stores the triple subject –predicate→ object (ends found or created by name, or
    /// given by id) and returns the relation id. Repeating a triple counts a mention.
    #[pyo3(signature = (subject, predicate, object, *, valid_from=None, valid_to=None))]
    fn add_triple(
        &self,
        py: Python<'_>,
        subject: &Bound<'_, PyAny>,
        predicate: &str,
        object: &Bound<'_, PyAny>,
        valid_from: Option<&Bound<'_, PyAny>>,
        valid_to: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<i64> {
        let triple = triple(subject, predicate, object, valid_from, valid_to)?;
        let id = py.detach(|| self.inner.add_triple(triple)).py_err(py)?;
        Ok(id.get())
    }

    /// Stores a free-text fact about an entity (found or created by name); the same text
    /// on the same entity is stored once. Returns the observation id.
    fn observe(&self, py: Python<'_>, entity: &Bound<'_, PyAny>, text: &str) -> PyResult<i64> {
        let entity = entity_ref(entity, "entity")?;
        let id = py.detach(|| self.inner.observe(entity, text)).py_err(py)?;
        Ok(id.get())
    }

    /// Finds the entity reached by `name` or creates it; returns its id.
    fn ensure_entity(&self, py: Python<'_>, name: &str) -> PyResult<i64> {
        let id = py.detach(|| self.inner.ensure_entity(name)).py_err(py)?;
        Ok(id.get())
    }

    /// Stores a document split into chunks; returns `(document_id, [chunk_id, ...])`.
    #[pyo3(signature = (text, *, source=None, metadata=None, about=None, max_chars=None, overlap_chars=None))]
    fn add_document(
        &self,
        py: Python<'_>,
        text: &str,
        source: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
        about: Option<&Bound<'_, PyAny>>,
        max_chars: Option<usize>,
        overlap_chars: Option<usize>,
    ) -> PyResult<(i64, Vec<i64>)> {
        let mut doc = Document::new(text);
        if let Some(source) = source {
            doc = doc.source(source);
        }
        if let Some(metadata) = json_opt(metadata, "document metadata")? {
            doc = doc.metadata(metadata);
        }
        if let Some(about) = about {
            doc = doc.about(entity_ref(about, "about")?);
        }
        if max_chars.is_some() || overlap_chars.is_some() {
            let mut chunking = ChunkOptions::new();
            if let Some(max) = max_chars {
                chunking = chunking.max_chars(max);
            }
            if let Some(overlap) = overlap_chars {
                chunking = chunking.overlap_chars(overlap);
            }
            doc = doc.chunking(chunking);
        }
        let (id, chunks) = py.detach(|| self.inner.add_document(&doc)).py_err(py)?;
        Ok((id.get(), chunks.into_iter().map(|c| c.get()).collect()))
    }

    /// Stores pre-split units (chat turns, tool results) as the chunks of one document
    /// from `source`. Each unit is a `str` or a `(text, metadata)` pair. Returns
    /// `(document_id, [chunk_id, ...])`.
    fn add_units(
        &self,
        py: Python<'_>,
        source: &str,
        units: Vec<Bound<'_, PyAny>>,
    ) -> PyResult<(i64, Vec<i64>)> {
        let mut owned = Vec::with_capacity(units.len());
        for unit in &units {
            if let Ok(text) = unit.cast::<PyString>() {
                owned.push(Unit::new(text.to_cow()?.into_owned()));
            } else if let Ok((text, metadata)) = unit.extract::<(String, Bound<'_, PyAny>)>() {
                owned.push(Unit::new(text).metadata(json_value(&metadata, "unit metadata")?));
            } else {
                return Err(invalid(
                    py,
                    "units",
                    "each unit is a str or a (str, metadata) pair",
                ));
            }
        }
        let (id, chunks) = py
            .detach(|| self.inner.add_units(source, &owned))
            .py_err(py)?;
        Ok((id.get(), chunks.into_iter().map(|c| c.get()).collect()))
    }

    /// Writes a whole `Batch` in one transaction: every item is checked first, and if
    /// any is invalid nothing is written (the error's `index` names it).
    fn apply(&self, py: Python<'_>, batch: &PyBatch) -> PyResult<PyBatchReport> {
        let items = batch.snapshot();
        let report = py
            .detach(|| self.inner.apply(&PyBatch::build(&items)))
            .py_err(py)?;
        Ok(PyBatchReport::new(report, None, false))
    }

    /// Records an episode and writes `batch` under it in one transaction. With an
    /// `idempotency_key`, repeating the call (say after `OutcomeUnknownError`) writes
    /// nothing and returns the first call's report with `replayed=True`.
    #[pyo3(signature = (batch, *, agent, source=None, at=None, metadata=None, idempotency_key=None))]
    fn record(
        &self,
        py: Python<'_>,
        batch: &PyBatch,
        agent: String,
        source: Option<String>,
        at: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<PyBatchReport> {
        let episode = episode(agent, source, at, metadata, idempotency_key)?;
        let items = batch.snapshot();
        let recorded = py
            .detach(|| self.inner.record(&episode, &PyBatch::build(&items)))
            .py_err(py)?;
        Ok(PyBatchReport::new(
            recorded.report,
            Some(recorded.episode.get()),
            recorded.replayed,
        ))
    }

    /// Records an episode (who wrote, from what, when) and returns a handle whose writes
    /// all point to it; usable as a context manager. An episode whose
    /// `idempotency_key` was recorded before (for the same agent) is not recorded again.
    #[pyo3(signature = (agent, *, source=None, at=None, metadata=None, idempotency_key=None))]
    fn episode(
        &self,
        py: Python<'_>,
        agent: String,
        source: Option<String>,
        at: Option<&Bound<'_, PyAny>>,
        metadata: Option<&Bound<'_, PyAny>>,
        idempotency_key: Option<String>,
    ) -> PyResult<Self> {
        let episode = episode(agent, source, at, metadata, idempotency_key)?;
        let handle = py.detach(|| self.inner.episode(&episode)).py_err(py)?;
        Ok(Self::wrap(handle))
    }

    /// Reads one episode, or `None`.
    fn get_episode(&self, py: Python<'_>, id: i64) -> PyResult<Option<PyEpisodeInfo>> {
        let info = py
            .detach(|| self.inner.get_episode(cairn::EpisodeId::from_raw(id)))
            .py_err(py)?;
        Ok(info.map(PyEpisodeInfo::from))
    }

    /// Every episode recorded for `agent`, oldest first.
    fn episodes_by_agent(&self, py: Python<'_>, agent: &str) -> PyResult<Vec<PyEpisodeInfo>> {
        let infos = py
            .detach(|| self.inner.episodes_by_agent(agent))
            .py_err(py)?;
        Ok(infos.into_iter().map(PyEpisodeInfo::from).collect())
    }

    // ----- reads -----------------------------------------------------------------------

    /// The id of the entity reached by `name` (any spelling with the same key), or
    /// `None`; never creates anything.
    fn resolve(&self, py: Python<'_>, name: &str) -> PyResult<Option<i64>> {
        let id = py.detach(|| self.inner.resolve(name)).py_err(py)?;
        Ok(id.map(EntityId::get))
    }

    /// The entity (by name or id) with its aliases, relations and observations;
    /// `NotFoundError` if there is none.
    fn show(&self, py: Python<'_>, entity: &Bound<'_, PyAny>) -> PyResult<PyEntityView> {
        let id = self.existing(py, entity, "entity")?;
        let parts = py
            .detach(|| -> cairn::Result<_> {
                let Some(entity) = self.inner.entity(id)? else {
                    return Ok(None);
                };
                Ok(Some((
                    entity,
                    self.inner.aliases(id)?,
                    self.inner.relations(id, Direction::Both)?,
                    self.inner.observations(id)?,
                )))
            })
            .py_err(py)?;
        let (entity, aliases, relations, observations) = parts.ok_or_else(|| {
            to_py(
                py,
                cairn::Error::NotFound {
                    what: "entity",
                    key: id.to_string(),
                },
            )
        })?;
        PyEntityView::new(py, entity, aliases, relations, observations)
    }

    /// The relations of an entity (by name or id): `direction` is `"both"`,
    /// `"outgoing"` or `"incoming"`.
    #[pyo3(signature = (entity, direction="both"))]
    fn relations(
        &self,
        py: Python<'_>,
        entity: &Bound<'_, PyAny>,
        direction: &str,
    ) -> PyResult<Vec<PyRelation>> {
        let direction = match direction {
            "both" => Direction::Both,
            "outgoing" => Direction::Outgoing,
            "incoming" => Direction::Incoming,
            other => {
                return Err(invalid(
                    py,
                    "direction",
                    format!("{other:?} is not \"both\", \"outgoing\" or \"incoming\""),
                ));
            }
        };
        let id = self.existing(py, entity, "entity")?;
        let relations = py
            .detach(|| self.inner.relations(id, direction))
            .py_err(py)?;
        Ok(relations.into_iter().map(PyRelation::from).collect())
    }

    /// Ranked hits for `query`, filtered by writer (`agent`), write time
    /// (`since` ≤ t < `until`), validity (`valid_at`) and `kinds`; each `Hit` carries its
    /// provenance unless `provenance=False`.
    #[pyo3(signature = (query, *, limit=10, kinds=None, agent=None, since=None, until=None, valid_at=None, include_history=false, read_your_writes=false, depth=None, bm25_only=false, provenance=true))]
    fn search(
        &self,
        py: Python<'_>,
        query: &str,
        limit: usize,
        kinds: Option<Vec<String>>,
        agent: Option<&str>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        valid_at: Option<&Bound<'_, PyAny>>,
        include_history: bool,
        read_your_writes: bool,
        depth: Option<u32>,
        bm25_only: bool,
        provenance: bool,
    ) -> PyResult<Vec<Py<PyHit>>> {
        let options = SearchArgs {
            limit,
            kinds,
            agent,
            since,
            until,
            valid_at,
            include_history,
            read_your_writes,
            depth,
            bm25_only,
        }
        .options(py)?;
        let hits = py
            .detach(|| self.inner.search(query, &options))
            .py_err(py)?;
        self.hits(py, hits, provenance)
    }

    /// For benchmarks only (`python/bench/overhead.py`): runs the library's search for
    /// `query` `repeat` times inside Rust, with the options `search` builds and, with
    /// `provenance=True`, the provenance read `search` makes, and returns the mean
    /// nanoseconds per call. Timed against `search` in the same process, the difference
    /// is what the bindings add: argument conversion, releasing the GIL, `Hit` objects.
    #[pyo3(signature = (query, *, limit=10, repeat=1, provenance=false))]
    fn _search_rust_ns(
        &self,
        py: Python<'_>,
        query: &str,
        limit: usize,
        repeat: u32,
        provenance: bool,
    ) -> PyResult<u64> {
        let options = SearchArgs {
            limit,
            kinds: None,
            agent: None,
            since: None,
            until: None,
            valid_at: None,
            include_history: false,
            read_your_writes: false,
            depth: None,
            bm25_only: false,
        }
        .options(py)?;
        let repeat = repeat.max(1);
        py.detach(|| {
            let began = std::time::Instant::now();
            for _ in 0..repeat {
                let hits = self.inner.search(query, &options)?;
                if provenance && !hits.is_empty() {
                    let targets: Vec<Target> = hits.iter().map(|h| h.target).collect();
                    std::hint::black_box(self.inner.provenance(&targets)?);
                }
                std::hint::black_box(hits);
            }
            let nanos = began.elapsed().as_nanos() / u128::from(repeat);
            Ok(u64::try_from(nanos).unwrap_or(u64::MAX))
        })
        .py_err(py)
    }

    /// `search`, rendered as prompt text within `budget` tokens, most useful first;
    /// `labels=True` starts each line with `[agent, date]`.
    #[pyo3(signature = (query, *, budget=1000, limit=10, kinds=None, agent=None, since=None, until=None, valid_at=None, include_history=false, read_your_writes=false, depth=None, bm25_only=false, labels=false))]
    fn context(
        &self,
        py: Python<'_>,
        query: &str,
        budget: usize,
        limit: usize,
        kinds: Option<Vec<String>>,
        agent: Option<&str>,
        since: Option<&Bound<'_, PyAny>>,
        until: Option<&Bound<'_, PyAny>>,
        valid_at: Option<&Bound<'_, PyAny>>,
        include_history: bool,
        read_your_writes: bool,
        depth: Option<u32>,
        bm25_only: bool,
        labels: bool,
    ) -> PyResult<PyContext> {
        let options = SearchArgs {
            limit,
            kinds,
            agent,
            since,
            until,
            valid_at,
            include_history,
            read_your_writes,
            depth,
            bm25_only,
        }
        .options(py)?
        .provenance(labels);
        let context = py
            .detach(|| self.inner.context(query, &options, budget))
            .py_err(py)?;
        let hits = self.hits(py, context.hits, false)?;
        Ok(PyContext::new(context.text, context.tokens, hits))
    }

    /// Returns once every write committed before the call is searchable.
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.sync()).py_err(py)
    }

    /// Row counts: entities, aliases, relations, observations, episodes, changes,
    /// documents, chunks.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| self.inner.stats()).py_err(py)?;
        let out = PyDict::new(py);
        for (name, value) in [
            ("entities", s.entities),
            ("aliases", s.aliases),
            ("relations", s.relations),
            ("observations", s.observations),
            ("episodes", s.episodes),
            ("changes", s.changes),
            ("documents", s.documents),
            ("chunks", s.chunks),
        ] {
            out.set_item(name, value)?;
        }
        Ok(out)
    }

    // ----- editing ---------------------------------------------------------------------

    /// Merges entity `absorb` into `keep` (names or ids): aliases, relations and
    /// observations move over, then `absorb` is deleted. Returns `keep`'s id.
    fn merge(
        &self,
        py: Python<'_>,
        keep: &Bound<'_, PyAny>,
        absorb: &Bound<'_, PyAny>,
    ) -> PyResult<i64> {
        let keep = self.existing(py, keep, "keep")?;
        let absorb = self.existing(py, absorb, "absorb")?;
        py.detach(|| self.inner.merge(keep, absorb)).py_err(py)?;
        Ok(keep.get())
    }

    /// Deletes an entity (name or id) with its aliases, relations and observations.
    /// Returns `False` if there was none.
    fn delete(&self, py: Python<'_>, entity: &Bound<'_, PyAny>) -> PyResult<bool> {
        let id = match entity_ref(entity, "entity")? {
            EntityRef::Id(id) => id,
            EntityRef::Name(name) => match py.detach(|| self.inner.resolve(&name)).py_err(py)? {
                Some(id) => id,
                None => return Ok(false),
            },
        };
        py.detach(|| self.inner.delete_entity(id)).py_err(py)
    }

    /// Changes an entity's display name; its old names keep resolving to it.
    fn rename(&self, py: Python<'_>, entity: &Bound<'_, PyAny>, new_name: &str) -> PyResult<()> {
        let id = self.existing(py, entity, "entity")?;
        py.detach(|| self.inner.rename(id, new_name)).py_err(py)
    }

    /// Makes `name` another way to reach the entity. Returns `False` if it already was;
    /// `AliasTakenError` if the name belongs to another entity.
    fn alias(&self, py: Python<'_>, entity: &Bound<'_, PyAny>, name: &str) -> PyResult<bool> {
        let id = self.existing(py, entity, "entity")?;
        py.detach(|| self.inner.add_alias(id, name)).py_err(py)
    }

    /// Sets an entity's kind (e.g. `"person"`) and/or summary.
    #[pyo3(signature = (entity, *, kind=None, summary=None))]
    fn describe(
        &self,
        py: Python<'_>,
        entity: &Bound<'_, PyAny>,
        kind: Option<&str>,
        summary: Option<&str>,
    ) -> PyResult<()> {
        let id = self.existing(py, entity, "entity")?;
        py.detach(|| -> cairn::Result<()> {
            self.inner.transaction(|| {
                if let Some(kind) = kind {
                    self.inner.set_kind(id, kind)?;
                }
                if let Some(summary) = summary {
                    self.inner.set_summary(id, summary)?;
                }
                Ok(())
            })
        })
        .py_err(py)
    }

    /// Marks relation `relation` as no longer valid from `at` (default: now) on; it stays
    /// in the memory and in `search(include_history=True)`.
    #[pyo3(signature = (relation, at=None))]
    fn invalidate(
        &self,
        py: Python<'_>,
        relation: i64,
        at: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let at = timestamp_opt(at, "at")?.unwrap_or_else(Timestamp::now);
        py.detach(|| self.inner.invalidate(RelationId::from_raw(relation), at))
            .py_err(py)
    }

    /// Removes a relation. Returns `False` if it did not exist.
    fn remove_relation(&self, py: Python<'_>, relation: i64) -> PyResult<bool> {
        py.detach(|| self.inner.remove_relation(RelationId::from_raw(relation)))
            .py_err(py)
    }

    /// Removes an observation. Returns `False` if it did not exist.
    fn remove_observation(&self, py: Python<'_>, observation: i64) -> PyResult<bool> {
        py.detach(|| {
            self.inner
                .remove_observation(ObservationId::from_raw(observation))
        })
        .py_err(py)
    }

    // ----- operations ------------------------------------------------------------------

    /// Writes the memory to `path` as JSON Lines (`format` `"cairn"`: every row, an exact
    /// round trip; `"memory-jsonl"`: the reference memory server's). Returns the lines.
    #[pyo3(signature = (path, *, format="cairn"))]
    fn export_jsonl(&self, py: Python<'_>, path: PathBuf, format: &str) -> PyResult<u64> {
        let format = jsonl_format(py, format)?;
        let report = py
            .detach(|| -> cairn::Result<cairn::ExportReport> {
                let out = BufWriter::new(File::create(&path)?);
                self.inner.export_jsonl(out, format)
            })
            .py_err(py)?;
        Ok(report.lines)
    }

    /// Reads JSON Lines from `path` in one transaction (format detected unless given);
    /// a bad line is an `InvalidInputError` with its `line` and nothing is written,
    /// unless `skip_invalid`.
    #[pyo3(signature = (path, *, format=None, skip_invalid=false))]
    fn import_jsonl(
        &self,
        py: Python<'_>,
        path: PathBuf,
        format: Option<&str>,
        skip_invalid: bool,
    ) -> PyResult<PyImportReport> {
        let mut options = ImportOptions::new().skip_invalid(skip_invalid);
        if let Some(format) = format {
            options = options.format(jsonl_format(py, format)?);
        }
        let report = py
            .detach(|| -> cairn::Result<cairn::ImportReport> {
                let input = BufReader::new(File::open(&path)?);
                self.inner.import_jsonl(input, &options)
            })
            .py_err(py)?;
        Ok(PyImportReport::from(report))
    }

    /// Checks the file: `full=False` is the quick check, `full=True` everything
    /// (integrity, foreign keys, cairn's invariants, the index against the file).
    #[pyo3(signature = (*, full=false))]
    fn verify(&self, py: Python<'_>, full: bool) -> PyResult<PyVerifyReport> {
        let mode = if full {
            VerifyMode::Full
        } else {
            VerifyMode::Quick
        };
        let report = py.detach(|| self.inner.verify(mode)).py_err(py)?;
        Ok(PyVerifyReport::from(report))
    }

    /// An online backup into the new file `dest` while writers go on.
    fn backup(&self, py: Python<'_>, dest: PathBuf) -> PyResult<PyBackupReport> {
        let report = py.detach(|| self.inner.backup(&dest)).py_err(py)?;
        Ok(PyBackupReport::from(report))
    }

    /// Checkpoints the WAL as far as the checkpoint policy allows; `True` if complete.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<bool> {
        let run = py.detach(|| self.inner.checkpoint()).py_err(py)?;
        Ok(run.complete)
    }
}

/// The triple of `add_triple` and `Batch.triple`.
pub(crate) fn triple(
    subject: &Bound<'_, PyAny>,
    predicate: &str,
    object: &Bound<'_, PyAny>,
    valid_from: Option<&Bound<'_, PyAny>>,
    valid_to: Option<&Bound<'_, PyAny>>,
) -> PyResult<Triple<'static>> {
    let mut triple = Triple::new(
        entity_ref(subject, "subject")?,
        predicate.to_owned(),
        entity_ref(object, "object")?,
    );
    if let Some(at) = valid_from {
        triple = triple.valid_from(timestamp(at, "valid_from")?);
    }
    if let Some(at) = valid_to {
        triple = triple.valid_to(timestamp(at, "valid_to")?);
    }
    Ok(triple)
}

/// The episode of `episode` and `record`.
fn episode(
    agent: String,
    source: Option<String>,
    at: Option<&Bound<'_, PyAny>>,
    metadata: Option<&Bound<'_, PyAny>>,
    idempotency_key: Option<String>,
) -> PyResult<Episode> {
    let mut episode = Episode::new(agent);
    if let Some(source) = source {
        episode = episode.source(source);
    }
    if let Some(at) = timestamp_opt(at, "at")? {
        episode = episode.at(at);
    }
    if let Some(metadata) = json_opt(metadata, "episode metadata")? {
        episode = episode.metadata(metadata);
    }
    if let Some(key) = idempotency_key {
        episode = episode.idempotency_key(key);
    }
    Ok(episode)
}

/// A JSON Lines format by its command-line name.
fn jsonl_format(py: Python<'_>, name: &str) -> PyResult<JsonlFormat> {
    match name {
        "cairn" => Ok(JsonlFormat::Cairn),
        "memory-jsonl" | "memory" => Ok(JsonlFormat::MemoryJsonl),
        other => Err(invalid(
            py,
            "format",
            format!("{other:?} is not \"cairn\" or \"memory-jsonl\""),
        )),
    }
}

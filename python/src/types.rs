//! What calls return: plain, immutable Python objects over the library's structs.
//!
//! Times are kept as the library's `Timestamp` and turned into `datetime` objects only
//! when read, so a search pays for no conversion its caller does not look at.

use pyo3::prelude::*;

use cairn::{Provenance, Reason, Target};

use crate::convert::{datetime, datetime_opt, json_to_py};

/// The kind name and raw id of a search target.
pub(crate) fn target_parts(target: Target) -> (&'static str, i64) {
    match target {
        Target::Entity(id) => ("entity", id.get()),
        Target::Relation(id) => ("relation", id.get()),
        Target::Observation(id) => ("observation", id.get()),
        Target::Chunk(id) => ("chunk", id.get()),
        // `Target` is non-exhaustive; a kind added later shows up by name, not silently.
        _ => ("unknown", 0),
    }
}

/// An optional string as Python shows it: quoted, or `None`.
fn opt_repr(value: Option<&str>) -> String {
    value.map_or_else(|| "None".to_owned(), |v| format!("{v:?}"))
}

/// One search result: what was found (`kind`, `id`), how well it matched (`score`), its
/// text, why it was found (`reasons`), and who wrote it (`agent`, `source`,
/// `written_at`, `episode`).
#[pyclass(frozen, module = "cairn._native", name = "Hit")]
pub(crate) struct PyHit {
    /// `"entity"`, `"relation"`, `"observation"` or `"chunk"`.
    #[pyo3(get)]
    kind: &'static str,
    /// The row id of the target, unique within its kind.
    #[pyo3(get)]
    id: i64,
    /// The fused score, higher is better.
    #[pyo3(get)]
    score: f32,
    /// The text as a prompt would show it.
    #[pyo3(get)]
    text: String,
    why: Vec<Reason>,
    /// `None` when the search was asked for none, or the row is gone.
    written: Option<Provenance>,
}

impl PyHit {
    pub(crate) fn new(hit: cairn::Hit, written: Option<Provenance>) -> Self {
        let (kind, id) = target_parts(hit.target);
        PyHit {
            kind,
            id,
            score: hit.score,
            text: hit.text,
            why: hit.why,
            written,
        }
    }
}

#[pymethods]
impl PyHit {
    /// Why the hit was found: one `Reason` per channel that ranked it.
    #[getter]
    fn reasons(&self) -> Vec<PyReason> {
        self.why.iter().map(PyReason::from).collect()
    }

    /// The agent of the episode the target was written in, if any.
    #[getter]
    fn agent(&self) -> Option<&str> {
        self.written.as_ref().and_then(|w| w.agent.as_deref())
    }

    /// The source of that episode (a message id, a URL...), if any.
    #[getter]
    fn source(&self) -> Option<&str> {
        self.written.as_ref().and_then(|w| w.source.as_deref())
    }

    /// The id of that episode, if any.
    #[getter]
    fn episode(&self) -> Option<i64> {
        self.written
            .as_ref()
            .and_then(|w| w.episode)
            .map(|e| e.get())
    }

    /// When the target was written (a relation: first stated), as an aware UTC datetime.
    #[getter]
    fn written_at(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        datetime_opt(py, self.written.as_ref().map(|w| w.written))
    }

    /// A relation's validity start, if it has one.
    #[getter]
    fn valid_from(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        datetime_opt(py, self.written.as_ref().and_then(|w| w.valid_from))
    }

    /// A relation's validity end, if it has one.
    #[getter]
    fn valid_to(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        datetime_opt(py, self.written.as_ref().and_then(|w| w.valid_to))
    }

    fn __repr__(&self) -> String {
        format!(
            "Hit(kind={:?}, id={}, score={:.4}, text={:?}, agent={})",
            self.kind,
            self.id,
            self.score,
            self.text,
            opt_repr(self.agent())
        )
    }
}

/// Why a hit was found: `channel` is `"bm25"` (with `rank`, `score`), `"vector"` (with
/// `rank`, `similarity`) or `"graph"` (with `distance` hops from entity `seed`).
#[pyclass(frozen, module = "cairn._native", name = "Reason")]
#[derive(Clone)]
pub(crate) struct PyReason {
    /// `"bm25"`, `"vector"` or `"graph"`.
    #[pyo3(get)]
    channel: &'static str,
    /// 1-based rank within the channel (bm25, vector).
    #[pyo3(get)]
    rank: Option<usize>,
    /// The BM25 score (bm25).
    #[pyo3(get)]
    score: Option<f32>,
    /// Cosine similarity with the query (vector).
    #[pyo3(get)]
    similarity: Option<f32>,
    /// Relations between the seed and the hit (graph).
    #[pyo3(get)]
    distance: Option<u32>,
    /// The entity id the expansion started from (graph).
    #[pyo3(get)]
    seed: Option<i64>,
}

impl From<&Reason> for PyReason {
    fn from(reason: &Reason) -> Self {
        let none = PyReason {
            channel: "unknown",
            rank: None,
            score: None,
            similarity: None,
            distance: None,
            seed: None,
        };
        match reason {
            Reason::Bm25 { rank, score } => PyReason {
                channel: "bm25",
                rank: Some(*rank),
                score: Some(*score),
                ..none
            },
            Reason::Vector { rank, similarity } => PyReason {
                channel: "vector",
                rank: Some(*rank),
                similarity: Some(*similarity),
                ..none
            },
            Reason::Graph { distance, seed } => PyReason {
                channel: "graph",
                distance: Some(*distance),
                seed: Some(seed.get()),
                ..none
            },
            _ => none,
        }
    }
}

#[pymethods]
impl PyReason {
    fn __repr__(&self) -> String {
        match self.channel {
            "bm25" => format!(
                "Reason(channel='bm25', rank={}, score={:.4})",
                self.rank.unwrap_or(0),
                self.score.unwrap_or(0.0)
            ),
            "vector" => format!(
                "Reason(channel='vector', rank={}, similarity={:.4})",
                self.rank.unwrap_or(0),
                self.similarity.unwrap_or(0.0)
            ),
            "graph" => format!(
                "Reason(channel='graph', distance={}, seed={})",
                self.distance.unwrap_or(0),
                self.seed.unwrap_or(0)
            ),
            other => format!("Reason(channel={other:?})"),
        }
    }
}

/// Hits rendered as prompt text within a token budget (`Memory.context`).
#[pyclass(frozen, module = "cairn._native", name = "Context")]
pub(crate) struct PyContext {
    /// One line per hit, most useful first.
    #[pyo3(get)]
    text: String,
    /// The estimated tokens of `text`.
    #[pyo3(get)]
    tokens: usize,
    /// The hits that made it into `text`, in order.
    #[pyo3(get)]
    hits: Vec<Py<PyHit>>,
}

impl PyContext {
    pub(crate) fn new(text: String, tokens: usize, hits: Vec<Py<PyHit>>) -> Self {
        PyContext { text, tokens, hits }
    }
}

#[pymethods]
impl PyContext {
    fn __str__(&self) -> &str {
        &self.text
    }

    fn __repr__(&self) -> String {
        format!(
            "Context(tokens={}, hits={}, text={:?})",
            self.tokens,
            self.hits.len(),
            self.text
        )
    }
}

/// A relation (triple) as stored.
#[pyclass(frozen, module = "cairn._native", name = "Relation")]
pub(crate) struct PyRelation {
    inner: cairn::Relation,
}

impl From<cairn::Relation> for PyRelation {
    fn from(inner: cairn::Relation) -> Self {
        PyRelation { inner }
    }
}

#[pymethods]
impl PyRelation {
    /// The relation id.
    #[getter]
    fn id(&self) -> i64 {
        self.inner.id.get()
    }
    /// The subject's entity id.
    #[getter]
    fn subject(&self) -> i64 {
        self.inner.subject.get()
    }
    /// The subject's display name.
    #[getter]
    fn subject_name(&self) -> &str {
        &self.inner.subject_name
    }
    /// The predicate as first written.
    #[getter]
    fn predicate(&self) -> &str {
        &self.inner.predicate
    }
    /// The object's entity id.
    #[getter]
    fn object(&self) -> i64 {
        self.inner.object.get()
    }
    /// The object's display name.
    #[getter]
    fn object_name(&self) -> &str {
        &self.inner.object_name
    }
    /// How often the triple was asserted.
    #[getter]
    fn mentions(&self) -> i64 {
        self.inner.mentions
    }
    /// When it was first asserted.
    #[getter]
    fn first_seen(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.inner.first_seen)
    }
    /// When it was last asserted.
    #[getter]
    fn last_seen(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.inner.last_seen)
    }
    /// Start of validity, if set.
    #[getter]
    fn valid_from(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        datetime_opt(py, self.inner.valid_from)
    }
    /// End of validity, if set (`Memory.invalidate`).
    #[getter]
    fn valid_to(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        datetime_opt(py, self.inner.valid_to)
    }
    /// The episode it was first written in, if any.
    #[getter]
    fn episode(&self) -> Option<i64> {
        self.inner.episode.map(|e| e.get())
    }

    fn __repr__(&self) -> String {
        format!(
            "Relation(id={}, {:?} -{}-> {:?}, mentions={})",
            self.inner.id,
            self.inner.subject_name,
            self.inner.predicate,
            self.inner.object_name,
            self.inner.mentions
        )
    }
}

/// An observation (a free-text fact about one entity).
#[pyclass(frozen, module = "cairn._native", name = "Observation")]
pub(crate) struct PyObservation {
    inner: cairn::Observation,
}

impl From<cairn::Observation> for PyObservation {
    fn from(inner: cairn::Observation) -> Self {
        PyObservation { inner }
    }
}

#[pymethods]
impl PyObservation {
    /// The observation id.
    #[getter]
    fn id(&self) -> i64 {
        self.inner.id.get()
    }
    /// The entity it is about.
    #[getter]
    fn entity(&self) -> i64 {
        self.inner.entity.get()
    }
    /// The text.
    #[getter]
    fn text(&self) -> &str {
        &self.inner.text
    }
    /// When it was stored.
    #[getter]
    fn created_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.inner.created_at)
    }
    /// The episode it was written in, if any.
    #[getter]
    fn episode(&self) -> Option<i64> {
        self.inner.episode.map(|e| e.get())
    }

    fn __repr__(&self) -> String {
        format!(
            "Observation(id={}, text={:?})",
            self.inner.id, self.inner.text
        )
    }
}

/// An entity with everything known about it (`Memory.show`).
#[pyclass(frozen, module = "cairn._native", name = "EntityView")]
pub(crate) struct PyEntityView {
    entity: cairn::Entity,
    /// Every name the entity is reached by (display spellings).
    #[pyo3(get)]
    aliases: Vec<String>,
    /// Relations where it is subject or object.
    #[pyo3(get)]
    relations: Vec<Py<PyRelation>>,
    /// Its observations, oldest first.
    #[pyo3(get)]
    observations: Vec<Py<PyObservation>>,
}

impl PyEntityView {
    pub(crate) fn new(
        py: Python<'_>,
        entity: cairn::Entity,
        aliases: Vec<cairn::Alias>,
        relations: Vec<cairn::Relation>,
        observations: Vec<cairn::Observation>,
    ) -> PyResult<Self> {
        Ok(PyEntityView {
            entity,
            aliases: aliases.into_iter().map(|a| a.name).collect(),
            relations: relations
                .into_iter()
                .map(|r| Py::new(py, PyRelation::from(r)))
                .collect::<PyResult<_>>()?,
            observations: observations
                .into_iter()
                .map(|o| Py::new(py, PyObservation::from(o)))
                .collect::<PyResult<_>>()?,
        })
    }
}

#[pymethods]
impl PyEntityView {
    /// The entity id.
    #[getter]
    fn id(&self) -> i64 {
        self.entity.id.get()
    }
    /// The display name (as its first writer spelled it, or as renamed).
    #[getter]
    fn name(&self) -> &str {
        &self.entity.name
    }
    /// The kind (e.g. `person`), if set.
    #[getter]
    fn kind(&self) -> Option<&str> {
        self.entity.kind.as_deref()
    }
    /// The summary, if set.
    #[getter]
    fn summary(&self) -> Option<&str> {
        self.entity.summary.as_deref()
    }
    /// When it was created.
    #[getter]
    fn created_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.entity.created_at)
    }
    /// When it last changed.
    #[getter]
    fn updated_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.entity.updated_at)
    }
    /// The episode that created it, if any.
    #[getter]
    fn episode(&self) -> Option<i64> {
        self.entity.episode.map(|e| e.get())
    }

    fn __repr__(&self) -> String {
        format!(
            "EntityView(id={}, name={:?}, aliases={}, relations={}, observations={})",
            self.entity.id,
            self.entity.name,
            self.aliases.len(),
            self.relations.len(),
            self.observations.len()
        )
    }
}

/// A recorded episode, as read back.
#[pyclass(frozen, module = "cairn._native", name = "EpisodeInfo")]
pub(crate) struct PyEpisodeInfo {
    inner: cairn::EpisodeInfo,
}

impl From<cairn::EpisodeInfo> for PyEpisodeInfo {
    fn from(inner: cairn::EpisodeInfo) -> Self {
        PyEpisodeInfo { inner }
    }
}

#[pymethods]
impl PyEpisodeInfo {
    /// The episode id.
    #[getter]
    fn id(&self) -> i64 {
        self.inner.id.get()
    }
    /// The agent that wrote it.
    #[getter]
    fn agent(&self) -> Option<&str> {
        self.inner.agent.as_deref()
    }
    /// What the knowledge came from.
    #[getter]
    fn source(&self) -> Option<&str> {
        self.inner.source.as_deref()
    }
    /// When the source event happened.
    #[getter]
    fn at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.inner.at)
    }
    /// When the episode was recorded.
    #[getter]
    fn created_at(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        datetime(py, self.inner.created_at)
    }
    /// Caller metadata, decoded from JSON.
    #[getter]
    fn metadata(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        json_to_py(py, self.inner.metadata.as_deref())
    }
    /// The idempotency key, if one was given.
    #[getter]
    fn idempotency_key(&self) -> Option<&str> {
        self.inner.idempotency_key.as_deref()
    }

    fn __repr__(&self) -> String {
        format!(
            "EpisodeInfo(id={}, agent={}, source={})",
            self.inner.id,
            opt_repr(self.inner.agent.as_deref()),
            opt_repr(self.inner.source.as_deref())
        )
    }
}

//! `cairn.Batch`: triples and observations written in one transaction.

use parking_lot::Mutex;
use pyo3::prelude::*;

use cairn::{Batch, BatchReport, EntityRef, Triple};

use crate::convert::entity_ref;
use crate::memory::triple;

/// One queued write.
#[derive(Clone)]
pub(crate) enum Item {
    Triple(Triple<'static>),
    Observe(EntityRef<'static>, String),
}

/// Triples and observations collected in Python and written by `Memory.apply` or
/// `Memory.record` in one transaction: all of them, or (on any invalid item) none.
#[pyclass(frozen, module = "cairn._native", name = "Batch")]
pub(crate) struct PyBatch {
    // Frozen classes are shared between Python threads without a borrow flag; the
    // lock makes appends from several threads safe.
    items: Mutex<Vec<Item>>,
}

impl PyBatch {
    /// A copy of the items, so the library call runs without holding the lock.
    pub(crate) fn snapshot(&self) -> Vec<Item> {
        self.items.lock().clone()
    }

    /// The library's batch over `items`.
    pub(crate) fn build(items: &[Item]) -> Batch<'_> {
        let mut batch = Batch::new();
        for item in items {
            match item {
                Item::Triple(t) => batch.triple(t.clone()),
                Item::Observe(entity, text) => batch.observe(entity.clone(), text.as_str()),
            };
        }
        batch
    }
}

#[pymethods]
impl PyBatch {
    /// An empty batch.
    #[new]
    fn new() -> Self {
        PyBatch {
            items: Mutex::new(Vec::new()),
        }
    }

    /// Queues a triple (see `Memory.add_triple`); returns the batch, for chaining.
    #[pyo3(signature = (subject, predicate, object, *, valid_from=None, valid_to=None))]
    fn triple<'py>(
        slf: &Bound<'py, Self>,
        subject: &Bound<'py, PyAny>,
        predicate: &str,
        object: &Bound<'py, PyAny>,
        valid_from: Option<&Bound<'py, PyAny>>,
        valid_to: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let t = triple(subject, predicate, object, valid_from, valid_to)?;
        slf.get().items.lock().push(Item::Triple(t));
        Ok(slf.clone())
    }

    /// Queues an observation (see `Memory.observe`); returns the batch.
    fn observe<'py>(
        slf: &Bound<'py, Self>,
        entity: &Bound<'py, PyAny>,
        text: String,
    ) -> PyResult<Bound<'py, Self>> {
        let entity = entity_ref(entity, "entity")?;
        slf.get().items.lock().push(Item::Observe(entity, text));
        Ok(slf.clone())
    }

    fn __len__(&self) -> usize {
        self.items.lock().len()
    }

    fn __repr__(&self) -> String {
        format!("Batch({} items)", self.items.lock().len())
    }
}

/// What `Memory.apply` / `Memory.record` wrote: the relation and observation ids in
/// item order, the episode (`record`), and whether this was a replay of an earlier call
/// with the same idempotency key (nothing written).
#[pyclass(frozen, module = "cairn._native", name = "BatchReport")]
pub(crate) struct PyBatchReport {
    /// Relation ids, one per triple, in order.
    #[pyo3(get)]
    relations: Vec<i64>,
    /// Observation ids, one per observation, in order.
    #[pyo3(get)]
    observations: Vec<i64>,
    /// The episode the batch was recorded under (`record` only).
    #[pyo3(get)]
    episode: Option<i64>,
    /// `True` when an earlier call with the same key had written it.
    #[pyo3(get)]
    replayed: bool,
}

impl PyBatchReport {
    pub(crate) fn new(report: BatchReport, episode: Option<i64>, replayed: bool) -> Self {
        PyBatchReport {
            relations: report.relations.into_iter().map(|r| r.get()).collect(),
            observations: report.observations.into_iter().map(|o| o.get()).collect(),
            episode,
            replayed,
        }
    }
}

#[pymethods]
impl PyBatchReport {
    fn __repr__(&self) -> String {
        format!(
            "BatchReport(relations={:?}, observations={:?}, episode={:?}, replayed={})",
            self.relations,
            self.observations,
            self.episode,
            if self.replayed { "True" } else { "False" }
        )
    }
}
